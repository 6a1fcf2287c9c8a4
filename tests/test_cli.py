"""The CLI: each command works through `main([...])`, has help, and is in the README."""

from __future__ import annotations

import json
import shutil

import pytest

from skillforge import cli
from tests.conftest import REPO_ROOT


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A checkout-like folder: seed skills and an inbox with two airline runs and a bad line."""
    shutil.copytree(REPO_ROOT / "skills", tmp_path / "skills")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_command_has_help_and_is_in_the_readme():
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    assert {"serve", "ingest", "evolve", "status", "schema", "review", "history"} <= set(
        sub.choices
    )
    helps = {action.dest: action.help for action in sub._choices_actions}
    readme = (REPO_ROOT / "README.md").read_text()
    for name in sub.choices:
        assert helps.get(name), f"`skillforge {name}` has no help text"
        assert f"skillforge {name}" in readme, f"README does not show `skillforge {name}`"


def test_schema_prints_the_trajectory_json_schema(capsys):
    code, out, _ = run(capsys, "schema")
    schema = json.loads(out)
    assert code == 0 and schema["title"] == "Trajectory"
    assert {"id", "task", "steps", "outcome", "skills"} <= set(schema["properties"])


def test_ingest_evolve_review_and_status_from_the_command_line(capsys, workdir, airline_records):
    inbox = workdir / "trajectories"
    inbox.mkdir()
    lines = [json.dumps(r) for r in airline_records if r["trial"] in (0, 1)] + ["{oops"]
    (inbox / "runs.jsonl").write_text("\n".join(lines) + "\n")

    code, out, _ = run(capsys, "ingest", "trajectories")
    assert code == 0
    assert "101 lines: 100 trajectories stored, 0 already stored, 1 quarantined" in out

    code, out, _ = run(capsys, "evolve")
    assert code == 0 and "review:      skillforge review show" in out
    proposal = out.split("proposal ", 1)[1].split(":", 1)[0]

    code, out, _ = run(capsys, "review", "list")
    assert proposal in out and "open" in out
    code, out, _ = run(capsys, "review", "show", proposal)
    assert "diff --git" in out and f"# Skill proposal {proposal}" in out

    code, out, _ = run(capsys, "status")
    assert "ingested     100 trajectories" in out and "quarantined  1 lines" in out
    assert "runs.jsonl:101: not valid JSON" in out
    assert f"  {proposal}" in out

    code, out, _ = run(capsys, "review", "reject", proposal, "--reason", "not now")
    assert code == 0 and "rejected" in out
    code, out, _ = run(capsys, "history", "cancel-flight")
    assert code == 0 and f"{proposal}  create -> version 1  rejected (not now)" in out
    code, out, _ = run(capsys, "history", "no-such-skill")
    assert code == 0 and "no history for 'no-such-skill'" in out
    code, _, err = run(capsys, "review", "accept", proposal)
    assert code == 1 and "already rejected" in err


def test_an_unknown_proposal_is_a_clear_error(capsys, workdir):
    code, _, err = run(capsys, "review", "show", "nope")
    assert code == 1 and "no proposal 'nope'" in err and "skillforge review list" in err


def test_a_missing_ingest_path_is_a_clear_error(capsys, workdir):
    code, _, err = run(capsys, "ingest", "does-not-exist")
    assert code == 1 and "does-not-exist does not exist" in err
