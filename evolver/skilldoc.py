"""SKILL.md as data: parse and render frontmatter, check it, name skills, own a managed block.

The rules mirror the strict check in `check_skills.py` (the Agent Skills spec plus the hosted
validators), so what skillforge writes loads everywhere. Text outside the managed block
belongs to people and is never rewritten.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import yaml

from evolver.changes import MANAGED_KEY
from evolver.redact import redact

__all__ = [
    "ALLOWED_KEYS",
    "BLOCK_BEGIN",
    "BLOCK_END",
    "KEY_ORDER",
    "NAME_RE",
    "find_managed_block",
    "is_managed",
    "parse",
    "problems",
    "render",
    "replace_managed_block",
    "slugify",
    "split",
]

KEY_ORDER = ("name", "description", "license", "compatibility", "metadata", "allowed-tools")
ALLOWED_KEYS = frozenset(KEY_ORDER)
NAME_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_NAME = 64
MAX_DESCRIPTION = 1024
MAX_BODY_LINES = 500
BLOCK_BEGIN = "<!-- skillforge:begin -->"
BLOCK_END = "<!-- skillforge:end -->"

_FRONTMATTER = re.compile(r"^---\n(.*?)\n---\n?", re.S)
_RESERVED = re.compile(r"anthropic|claude")
_REDACTED = re.compile(r"\[REDACTED:[a-z-]+\]")
_ALNUM_RUN = re.compile(r"[A-Za-z0-9]+")


def split(text: str) -> tuple[str, str]:
    """Split a SKILL.md into its raw frontmatter text (with the `---` lines) and its body."""
    match = _FRONTMATTER.match(text)
    if not match:
        raise ValueError(
            "SKILL.md must open with a '---' line and a YAML frontmatter closed by '---'"
        )
    return text[: match.end()], text[match.end() :]


def parse(text: str) -> tuple[dict[str, Any], str]:
    """Read a SKILL.md into (frontmatter, body); ValueError says what is broken."""
    text = text.replace("\r\n", "\n")
    head, body = split(text)
    match = _FRONTMATTER.match(head)
    assert match is not None
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise ValueError(f"frontmatter is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("frontmatter is not a YAML mapping")
    return data, body


def _ordered(frontmatter: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in KEY_ORDER:
        if key in frontmatter and frontmatter[key] is not None:
            out[key] = frontmatter[key]
    for key in sorted(k for k in frontmatter if k not in ALLOWED_KEYS):
        out[key] = frontmatter[key]
    meta = out.get("metadata")
    if isinstance(meta, dict):
        out["metadata"] = {str(k): "" if v is None else str(v) for k, v in meta.items()}
    return out


def render(frontmatter: dict[str, Any], body: str) -> str:
    """Write frontmatter (spec key order, metadata values as strings) and body as SKILL.md."""
    dumped = yaml.safe_dump(
        _ordered(frontmatter),
        sort_keys=False,
        allow_unicode=True,
        width=10**6,
        default_flow_style=False,
    )
    return f"---\n{dumped}---\n{body}"


def problems(text: str, folder: str) -> list[str]:
    """What stops `text` (the SKILL.md in `folder`) from passing the strict check; [] if none."""
    match = _FRONTMATTER.match(text)
    if not match:
        return ["no YAML frontmatter opening the file"]
    try:
        fm = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        return [f"frontmatter is not valid YAML: {exc}"]
    if not isinstance(fm, dict):
        return ["frontmatter is not a mapping"]
    out: list[str] = []
    extra = set(fm) - ALLOWED_KEYS
    if extra:
        out.append(f"unexpected frontmatter keys: {sorted(map(str, extra))}")
    name = fm.get("name")
    if not isinstance(name, str) or not (1 <= len(name) <= MAX_NAME) or not NAME_RE.match(name):
        out.append(f"bad name: {name!r}")
    elif name != folder:
        out.append(f"name {name!r} differs from folder {folder!r}")
    elif _RESERVED.search(name):
        out.append(f"name {name!r} holds a reserved word")
    desc = fm.get("description")
    if not isinstance(desc, str) or not (1 <= len(desc.strip()) <= MAX_DESCRIPTION):
        out.append("description missing or longer than 1024 characters")
    elif "<" in desc or ">" in desc:
        out.append("description holds angle brackets")
    comp = fm.get("compatibility")
    if comp is not None and not (isinstance(comp, str) and 1 <= len(comp) <= 500):
        out.append("compatibility not a string of 1-500 characters")
    meta = fm.get("metadata")
    if meta is not None and not (
        isinstance(meta, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    ):
        out.append("metadata is not a map of strings to strings")
    lines = len(text[match.end() :].splitlines())
    if lines > MAX_BODY_LINES:
        out.append(f"body has {lines} lines (keep under {MAX_BODY_LINES})")
    return out


def token_like(word: str) -> bool:
    """Whether a run of letters and digits reads as a key, token or id rather than a word: it
    mixes both and is long (16+), or is 10+ with 4+ digits, or switches between them 5+ times."""
    digits = sum(ch.isdigit() for ch in word)
    if not digits or digits == len(word):
        return False
    switches = sum(a.isdigit() != b.isdigit() for a, b in zip(word, word[1:], strict=False))
    return len(word) >= 16 or (len(word) >= 10 and digits >= 4) or switches >= 5


def _unsecret(text: str) -> str:
    """`text` without what `redact` would replace and without token-like runs (before camel
    case splits a token into innocent-looking pieces)."""
    text = _REDACTED.sub(" ", redact(text))
    return _ALNUM_RUN.sub(lambda m: " " if token_like(m.group(0)) else m.group(0), text)


def slugify(text: str, max_length: int = MAX_NAME) -> str:
    """A valid skill name from any text: ASCII, lowercase, hyphenated, no reserved words, and
    no secret or token-like word (a tool named `get_ghp_...` never names a folder)."""
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode("ascii")
    text = _unsecret(text)
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", text).lower()
    text = re.sub(r"[^a-z0-9]+", "-", text)
    while _RESERVED.search(text):
        text = _RESERVED.sub("-", text)
    text = re.sub(r"-+", "-", text).strip("-")
    limit = max(1, min(max_length, MAX_NAME))
    if len(text) > limit:
        cut = text[:limit]
        text = cut.rsplit("-", 1)[0] if "-" in cut and text[limit] != "-" else cut
        text = text.strip("-")
    return text or "skill"


def is_managed(frontmatter: dict[str, Any]) -> bool:
    """True when skillforge wrote this skill (metadata marks it managed)."""
    meta = frontmatter.get("metadata")
    return isinstance(meta, dict) and str(meta.get(MANAGED_KEY, "")).strip().lower() == "true"


def find_managed_block(body: str) -> tuple[int, int] | None:
    """(start, end) offsets of the managed block with its markers; None when there is none."""
    begins = body.count(BLOCK_BEGIN)
    ends = body.count(BLOCK_END)
    if begins == 0 and ends == 0:
        return None
    start = body.find(BLOCK_BEGIN)
    end = body.find(BLOCK_END)
    if begins != 1 or ends != 1 or end < start:
        raise ValueError(
            "the skillforge markers are malformed (need one begin before one end); "
            "fix them by hand before skillforge can update this skill"
        )
    return start, end + len(BLOCK_END)


def replace_managed_block(body: str, block: str) -> str:
    """Put `block` between the markers, replacing the old block or appending; other text stays."""
    wrapped = f"{BLOCK_BEGIN}\n{block.strip(chr(10))}\n{BLOCK_END}"
    span = find_managed_block(body)
    if span is not None:
        return body[: span[0]] + wrapped + body[span[1] :]
    if not body:
        return wrapped + "\n"
    separator = "\n" if body.endswith("\n") else "\n\n"
    return body + separator + wrapped + "\n"
