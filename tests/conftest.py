"""Shared fixtures: an isolated git identity and HOME, the shared trajectory corpora, and a
loader for one SWE-agent or mini-swe-agent run file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from evolver.model import Trajectory
from skillforge.importers import parse_record, records_in_document

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPORA = REPO_ROOT.parent / "shared" / "corpora"
AIRLINE = CORPORA / "tau-bench-airline" / "gpt-4o-airline.json"
CHECK_SKILLS = REPO_ROOT.parent / "shared" / "tools" / "check_skills.py"
# A developer's real keys must never turn a test into a paid API call or a real pull request.
PROVIDER_VARIABLES = frozenset(
    f"{provider}_{what}"
    for provider in ("ANTHROPIC", "OPENAI")
    for what in ("API_KEY", "BASE_URL", "MODEL", "AUTH_TOKEN")
) | {"GITHUB_TOKEN", "GITEA_TOKEN", "GH_TOKEN"}


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Tests never touch the real HOME, the machine's git configuration, or real API keys."""
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text(
        "[user]\n\tname = skillforge tests\n\temail = tests@skillforge.invalid\n"
        "[init]\n\tdefaultBranch = main\n[commit]\n\tgpgsign = false\n"
    )
    for key in list(os.environ):
        if key.startswith(("GIT_", "SKILLFORGE_")) or key in PROVIDER_VARIABLES:
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    return home


@pytest.fixture(scope="session")
def airline_records() -> list[dict[str, Any]]:
    if not AIRLINE.exists():
        pytest.skip(f"shared corpus missing: {AIRLINE}")
    return json.loads(AIRLINE.read_text())


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    return path


def load_run_file(path: Path, source: str | None = "same") -> Trajectory:
    """The one run of a SWE-agent or mini-swe-agent run file, labelled as `records_in_document`
    labels it from `source` (the file's own path by default; None for no path)."""
    document = json.loads(path.read_bytes())
    [record] = records_in_document(document, str(path) if source == "same" else source)
    return parse_record(record)
