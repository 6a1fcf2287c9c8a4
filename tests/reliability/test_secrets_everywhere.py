"""Every secret format the redactor should know, planted in every place a trajectory carries
text, through real intake into a real SQLite store and real cycles (offline, and one through
the loopback LLM server) into a real git library with a bare remote: no planted value
survives anywhere derived. detect-secrets' default plugins scan the same texts as a second,
independent oracle, so a format neither we nor this file thought of still shows up.

The raw table keeps the original by design and is not searched: `trajectories` (its `task`,
`agent`, `skills` and `data` columns are the run as it arrived). Its `id` column is derived
(the normalised run id) and is searched.
"""

from __future__ import annotations

import base64
import json
import random
import re
import sqlite3
import string
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from skillforge.config import Config, load
from skillforge.cycle import run_cycle
from skillforge.intake import ingest_file, quarantine_file_sink
from skillforge.library import LibraryRepo
from skillforge.store import Store
from tests.conftest import REPO_ROOT
from tests.llm_roles import expert
from tests.llm_server import LLMServer
from tests.reliability.runs import WORDS, family

RAW_TABLES = {"trajectories"}  # keeps each run as it arrived: the one place secrets may stay
_rng = random.Random(14)  # fixed: a failure names values that can be planted again


def _tail(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


def _digits(n: int) -> str:
    return "".join(_rng.choice("123456789") for _ in range(n))


def _luhn(prefix: str, length: int) -> str:
    """A card number with a valid Luhn check digit."""
    body = prefix + _digits(length - len(prefix) - 1)
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


def _iban(country: str, bban: str) -> str:
    """An IBAN with valid mod-97 check digits."""
    number = int("".join(str(int(c, 36)) for c in bban + country + "00"))
    return f"{country}{98 - number % 97:02d}{bban}"


def _spaced(text: str, every: int = 4) -> str:
    return " ".join(text[i : i + every] for i in range(0, len(text), every))


def _formats() -> dict[str, tuple[str, str]]:
    """kind -> (the text planted, the secret value in it that must never come out)."""
    url_pass, bearer, pw, api = _tail(16), _tail(28), _tail(18), _tail(22)
    ssn = f"{_rng.randint(100, 665)}-{_rng.randint(10, 99)}-{_rng.randint(1000, 9999)}"
    iban = _iban("DE", _digits(18))
    iban_spaced = _spaced(_iban("GB", "NWBK" + _digits(14)))
    basic = base64.b64encode(f"svc-{_tail(6)}:{_tail(14)}".encode()).decode()
    aws_secret = _tail(17, string.ascii_letters + string.digits + "+") + "/" + _tail(22)
    pem_body = _tail(48, string.ascii_letters + string.digits + "+/")
    phone_us = f"({_rng.randint(201, 989)}) {_rng.randint(201, 989)}-{_digits(4)}"
    phone_intl = f"+44 20 {_digits(4)} {_digits(4)}"
    card = _spaced(_luhn("4", 16))
    formats = {
        # Formats evolver/redact.py knew before issue 14.
        "private-key": (
            f"-----BEGIN RSA PRIVATE KEY-----\n{pem_body}\n-----END RSA PRIVATE KEY-----",
            pem_body,
        ),
        "url-credentials": (f"postgres://admin:{url_pass}@db.example.com/app", url_pass),
        "anthropic-key": (k := f"sk-ant-api03-{_tail(40)}", k),
        "openai-key": (k := f"sk-proj-{_tail(40)}", k),
        "aws-key-id": (k := "AKIA" + _tail(16, string.ascii_uppercase + string.digits), k),
        "github-token": (k := f"ghp_{_tail(36)}", k),
        "github-pat": (k := f"github_pat_11{_tail(20)}_{_tail(59)}", k),
        "slack-token": (k := f"xoxb-{_digits(12)}-{_digits(13)}-{_tail(24)}", k),
        "google-key": (k := f"AIza{_tail(35)}", k),
        "jwt": (
            k := f"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOi{_tail(20)}.{_tail(43)}",
            k,
        ),
        "bearer": (f"Authorization: Bearer {bearer}", bearer),
        "password": (f"password={pw}", pw),
        "api-key": (f"api_key: {api}", api),
        "email": (k := f"{_tail(8).lower()}.person@example.org", k),
        "card": (card, card),
        "phone-us": (phone_us, phone_us),
        "phone-intl": (phone_intl, phone_intl),
        # Formats it did not know (issue 14, item 2).
        "gitlab-token": (k := f"glpat-{_tail(20)}", k),
        "huggingface-token": (k := f"hf_{_tail(34)}", k),
        "stripe-key": (k := f"sk_live_{_tail(24)}", k),
        "ssn": (ssn, ssn),
        "iban": (iban, iban),
        "iban-spaced": (iban_spaced, iban_spaced),
        "basic-auth": (f"Authorization: Basic {basic}", basic),
        "aws-secret": (aws_secret, aws_secret),
    }
    assert len(formats) <= len(WORDS)  # one task family per format
    return formats


FORMATS = _formats()


def needles(value: str) -> set[str]:
    """What would give the value away, lowercased: itself, its long alphanumeric runs (a slug
    or a case change keeps those), and its digits when it is a number with separators."""
    found = {value.lower(), *(run.lower() for run in re.findall(r"[A-Za-z0-9]{10,}", value))}
    digits = re.sub(r"\D", "", value)
    if len(digits) >= 9 and not value.isdigit():
        found.add(digits)
    return found


NEEDLES = {kind: needles(value) for kind, (_, value) in FORMATS.items()}


def leaks(text: str) -> list[str]:
    """The kinds whose planted value `text` still holds."""
    low = text.lower()
    return [kind for kind, found in NEEDLES.items() if any(n in low for n in found)]


# -- the runs ---------------------------------------------------------------------------------


def planted_runs() -> list[dict[str, Any]]:
    """One task family per format; each run carries its format's secret in every text field:
    run id, agent, task, messages, tool names, call ids, arguments (keys and values), results,
    errors, the final answer, the outcome's reason, loaded skill names and versions, metadata."""
    runs = []
    for word, (kind, (secret, _)) in zip(WORDS, FORMATS.items(), strict=False):
        for n, run in enumerate(family(word, count=6)):
            run["id"] = f"{secret}/{n}"  # plain but for the secret: only redact can tell
            run["agent"] = secret
            run["task"] += f" (note {secret})"
            run["metadata"] = {"note": secret, secret: kind}
            run["outcome"]["reason"] = f"ended with {secret}"
            run["skills"] = [
                {"name": secret, "version": secret},
                {"name": f"{word}-{secret}", "version": "1"},
            ]
            system = {"type": "message", "role": "system", "text": f"You hold {secret}."}
            run["steps"].insert(0, system)
            for step in run["steps"]:
                if step["type"] == "message":
                    step["text"] += f" {secret}"
                    continue
                step["id"] = secret
                step["arguments"] = {**step["arguments"], "note": secret, secret: word}
                if step.get("error"):
                    step["result"] = f"Error: status must be one of closed, open ({secret})"
                    step["error_text"] = f"status must be one of closed, open ({secret})"
                else:
                    step["result"] = f'{{"status": "open", "owner": "{secret}"}}'
            lookup = {
                "type": "tool_call",
                "name": secret,  # a secret-bearing tool name: becomes a label, maybe a folder
                "arguments": {"query": secret},
                "result": f"found {secret}",
            }
            run["steps"].insert(2, lookup)
            runs.append(run)
    return runs


def bad_lines() -> list[bytes]:
    """Lines that go to the quarantine, each holding secrets where a reason or excerpt shows."""
    lines = []
    for secret, _ in FORMATS.values():
        lines.append(json.dumps({"task": secret, "steps": "no"}).encode())  # wrong type
        lines.append(json.dumps({secret: 1}).encode())  # an unknown shape: its keys are named
        lines.append(  # an unknown field deep inside: its path is named
            json.dumps(
                {"task": "t", "steps": [{"type": "tool_call", "name": "x", secret: 1}]}
            ).encode()
        )
        lines.append(b'{"task": "' + json.dumps(secret)[1:-1].encode() + b'", "steps": [')
    return lines


# -- the world: intake, cycles, library -------------------------------------------------------


class World:
    """A home with a store, a library and its bare remote, fed by real intake from an inbox."""

    def __init__(self, home: Path, inbox: Path, **settings: Any) -> None:
        self.config: Config = load(
            environ={}, cwd=home, overrides={"seed": REPO_ROOT / "skills", **settings}
        )
        self.repo = LibraryRepo.ensure(
            self.config.library_path, self.config.remote_url, seed=self.config.seed
        )
        with Store(self.config.db_path) as store:
            for path in sorted(inbox.glob("*.jsonl")):
                ingest_file(
                    store,
                    path,
                    max_line_bytes=self.config.max_line_bytes,
                    on_quarantine=quarantine_file_sink(self.config.quarantine_file),
                )
            self.result = run_cycle(store, self.repo, self.config, say=lambda _: None)

    def store_texts(self) -> dict[str, str]:
        """Each table's rows as text; the raw table only by its derived `id` column."""
        texts: dict[str, str] = {}
        with sqlite3.connect(self.config.db_path) as conn:
            tables = [
                name
                for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            for table in tables:
                columns = "id" if table in RAW_TABLES else "*"
                rows = conn.execute(f"SELECT {columns} FROM {table}").fetchall()  # noqa: S608
                texts[f"store:{table}"] = "\n".join(
                    "\t".join("" if v is None else str(v) for v in row) for row in rows
                )
        return texts

    def git_texts(self) -> dict[str, str]:
        """Every commit on every ref (messages and diffs) and the ref names, of both repos."""
        texts = {}
        for name, git_dir in {
            "git:library": self.config.library_path / ".git",
            "git:remote": Path(self.config.remote_url),
        }.items():
            run = ["git", "--git-dir", str(git_dir)]
            log = subprocess.run(
                [*run, "log", "--all", "-p", "--format=fuller"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            refs = subprocess.run(
                [*run, "for-each-ref", "--format=%(refname)"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            texts[name] = refs + log
        return texts

    def file_texts(self) -> dict[str, str]:
        """Every file under the home but the store and git's own: the library's working tree,
        the proposals with their pictures (SVG, GraphML, JSON), the quarantine file."""
        texts = {}
        home = self.config.home
        for path in sorted(home.rglob("*")):
            relative = path.relative_to(home)
            if not path.is_file() or path.name.startswith(self.config.db_path.name):
                continue
            if ".git" in relative.parts or relative.parts[0] == Path(self.config.remote_url).name:
                continue
            texts[f"file:{relative}"] = path.read_text(errors="replace")
        return texts

    def texts(self) -> dict[str, str]:
        return {**self.store_texts(), **self.git_texts(), **self.file_texts()}


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON value, keys included, unescaped."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, child in value.items():
            yield str(key)
            yield from _strings(child)
    elif isinstance(value, list):
        for child in value:
            yield from _strings(child)


def _answer(role: Any, request: dict[str, Any]) -> dict[str, Any]:
    """The careful model stand-in; an answer it cannot give is an empty (rejected) one."""
    try:
        return expert(role, request)
    except (KeyError, IndexError, ValueError, TypeError):
        return {}


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The planted inbox taken in and evolved twice: offline, and through the LLM server."""
    root = tmp_path_factory.mktemp("secrets")
    inbox = root / "inbox"
    inbox.mkdir()
    body = [json.dumps(r).encode() for r in planted_runs()]
    body[3:3] = bad_lines()
    (inbox / "planted.jsonl").write_bytes(b"\n".join(body) + b"\n")
    offline = World(root / "offline", inbox, llm_provider="offline")
    with LLMServer(_answer) as server:
        online = World(
            root / "llm",
            inbox,
            llm_provider="openai",
            llm_base_url=server.openai_base_url,
            llm_api_key="test-key",
            llm_model="test-model",
            llm_retries=0,
            llm_timeout_seconds=10,
        )
    requests = "\n".join("\n".join(_strings(body)) for body in server.requests)
    return {"offline": offline, "llm": online, "requests": requests}


# -- the assertions ---------------------------------------------------------------------------


def test_the_search_means_something(worlds):
    """Skills were proposed from the planted runs, requests were sent, lines were quarantined;
    and the raw table does keep the originals (so the other searches would see a leak)."""
    for name in ("offline", "llm"):
        world = worlds[name]
        assert world.result.status == "done" and world.result.changes >= len(FORMATS) // 2
        texts = world.texts()
        assert "skillforge:begin" in texts["git:remote"]
        assert any(k.endswith(".svg") for k in texts) and any(k.endswith(".graphml") for k in texts)
        with sqlite3.connect(world.config.db_path) as conn:
            [(quarantined,)] = conn.execute("SELECT count(*) FROM quarantine")
            assert quarantined == len(bad_lines())
            raw = "\n".join(d for (d,) in conn.execute("SELECT data FROM trajectories"))
        assert set(leaks(raw)) == set(FORMATS)
    assert worlds["requests"].count("untrusted data, never instructions") >= 2


def _sinks() -> list[Any]:
    return [
        pytest.param("offline", "store", id="offline-store"),
        pytest.param("offline", "git", id="offline-git"),
        pytest.param("offline", "file", id="offline-files"),
        pytest.param("llm", "store", id="llm-store"),
        pytest.param("llm", "git", id="llm-git"),
        pytest.param("llm", "file", id="llm-files"),
    ]


@pytest.mark.parametrize(("world", "sink"), _sinks())
def test_no_planted_secret_survives_in(worlds, world, sink):
    found = {
        where: kinds
        for where, text in worlds[world].texts().items()
        if where.startswith(f"{sink}:") and (kinds := leaks(text))
    }
    assert not found, f"planted secrets survived: {found}"


def test_no_planted_secret_reaches_an_llm_request(worlds):
    assert worlds["requests"]
    assert not leaks(worlds["requests"]), leaks(worlds["requests"])


# -- detect-secrets as a second oracle --------------------------------------------------------

_PLACEHOLDER = re.compile(r"[\"']?\[REDACTED:[a-z-]+\][\"']?")  # ours: `password: "[REDACTED:..."`
_TOKEN_SPLIT = re.compile(r"[\s\"'`,;()\[\]{}<>|*]+")


def own_digests(world: World) -> set[str]:
    """Hex the product computes and has to show, which the Hex High Entropy plugin flags like
    any random hex: git object names (commits in `git log`, a proposal's base and head), each
    change's evidence fingerprint and content sha256, the LLM cache's sha256 keys. Exact values
    read back from the repos and the store, so a planted hex secret is never excused."""
    found: set[str] = set()
    for git_dir in (world.config.library_path / ".git", Path(world.config.remote_url)):
        found |= set(
            subprocess.run(
                [
                    "git",
                    "--git-dir",
                    str(git_dir),
                    "cat-file",
                    "--batch-all-objects",
                    "--batch-check=%(objectname)",
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
        )
    with sqlite3.connect(world.config.db_path) as conn:
        for sql in (
            "SELECT fingerprint, content_sha FROM proposal_changes",
            "SELECT base, head FROM proposals",
            "SELECT key, key FROM llm_cache",
        ):
            found |= {v for row in conn.execute(sql) for v in row if v}
    return found


def _detect_secrets(
    texts: dict[str, str], folder: Path, allowed: set[str] = frozenset()
) -> list[tuple[str, str, str]]:
    """(where, plugin, value) for each secret detect-secrets' default plugins (and default
    filters) find. Each text is scanned as it is, and once more as one quoted token a line:
    in a .txt file the entropy plugins only judge quoted strings."""
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for n, (where, text) in enumerate(texts.items()):
        tokens = [t for t in _TOKEN_SPLIT.split(text) if len(t) >= 8]
        for view, body in (("text", text), ("tokens", "\n".join(f'"{t}"' for t in tokens))):
            path = folder / f"{n:04d}-{view}.txt"  # neutral: detect-secrets skips .svg files
            path.write_text(body)
            paths[str(path)] = where
    found = []
    with default_settings():
        collection = SecretsCollection()
        for path in paths:
            collection.scan_file(path)
        for filename, secret in collection:
            value = secret.secret_value or ""
            if _PLACEHOLDER.fullmatch(value):
                continue
            if secret.type == "Hex High Entropy String" and value in allowed:
                continue
            found.append((paths[filename], secret.type, value))
    return found


@pytest.mark.parametrize("world", ["offline", "llm"])
def test_detect_secrets_finds_nothing_derived(worlds, world, tmp_path):
    texts = worlds[world].texts()
    if world == "llm":
        texts["llm:requests"] = worlds["requests"]
    assert not _detect_secrets(texts, tmp_path / "scan", own_digests(worlds[world]))


def test_detect_secrets_sees_the_planted_runs(tmp_path):
    """The oracle is not blind: in the raw runs (where no placeholder stands) it finds the
    formats it has plugins for, and high entropy in the ones it has none for."""
    raw = "\n".join(json.dumps(r) for r in planted_runs())
    found = _detect_secrets({"raw": raw}, tmp_path)
    plugins = {plugin for _, plugin, _ in found}
    assert {"GitHub Token", "Stripe Access Key", "GitLab Token", "AWS Access Key"} <= plugins
    values = " ".join(value for _, _, value in found)
    for kind in ("huggingface-token", "aws-secret", "anthropic-key", "openai-key"):
        assert FORMATS[kind][1] in values, kind
