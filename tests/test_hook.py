"""`skillforge hook`: Claude Code runs it on SessionEnd with a JSON object on stdin; the
session's transcript reaches the inbox, and nothing it is given can fail the agent."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

from skillforge import cli
from skillforge.commands.hook import settings
from skillforge.config import load
from skillforge.store import Store
from tests.conftest import REPO_ROOT

SESSION = REPO_ROOT / "tests" / "data" / "formats" / "claude_code_session.jsonl"
SESSION_ID = "5c1e7f2a-8b3d-4e6f-9a1b-2c3d4e5f6a7b"


def _command(tmp_path: Path) -> list[str]:
    """The command `skillforge hook --settings` tells Claude Code to run."""
    config = load(environ={}, cwd=tmp_path, overrides={"inbox": tmp_path / "inbox"})
    entry = settings(config)["hooks"]["SessionEnd"][0]["hooks"][0]
    assert entry["type"] == "command"
    return shlex.split(entry["command"])


def _end_session(command: list[str], payload: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, input=payload, capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_a_session_end_imports_the_transcript_into_the_inbox(tmp_path: Path) -> None:
    transcript = tmp_path / "projects" / "-home-dev-shop-api" / f"{SESSION_ID}.jsonl"
    transcript.parent.mkdir(parents=True)
    shutil.copy(SESSION, transcript)
    elsewhere = tmp_path / "some-project"  # Claude Code runs hooks in the session's cwd
    elsewhere.mkdir()
    payload = {
        "session_id": SESSION_ID,
        "transcript_path": str(transcript),
        "cwd": str(elsewhere),
        "hook_event_name": "SessionEnd",
        "reason": "prompt_input_exit",
    }
    done = _end_session(_command(tmp_path), json.dumps(payload), elsewhere)
    assert done.returncode == 0, done.stderr
    [written] = (tmp_path / "inbox").glob("imported-*.jsonl")
    [run] = [json.loads(line) for line in written.read_text().splitlines()]
    assert run["id"] == f"claude-code:{SESSION_ID}"
    assert not list(elsewhere.iterdir())  # nothing written where the session ran

    # the daemon's intake takes it in; a second end of the same session adds nothing
    _end_session(_command(tmp_path), json.dumps(payload), elsewhere)
    home = tmp_path / "var"
    assert cli.main(["--home", str(home), "ingest", str(tmp_path / "inbox")]) == 0
    with Store(home / "skillforge.db") as store:
        assert [t.id for t in store.trajectories()] == [f"claude-code:{SESSION_ID}"]


def test_what_a_hook_cannot_use_is_one_line_on_stderr_and_never_fails_the_agent(
    tmp_path: Path,
) -> None:
    not_a_session = tmp_path / "notes.jsonl"
    not_a_session.write_text('{"hello": "world"}\n')
    for payload, said in [
        ("", "no transcript_path"),
        ("{not json", "not a JSON object"),
        ('["a", "list"]', "no transcript_path"),
        ('{"hook_event_name": "SessionEnd"}', "no transcript_path"),
        (json.dumps({"transcript_path": str(tmp_path / "gone.jsonl")}), "no transcript at"),
        (json.dumps({"transcript_path": str(not_a_session)}), "not in the claude-code format"),
    ]:
        done = _end_session(_command(tmp_path), payload, tmp_path)
        assert done.returncode == 0, (payload, done.stderr)
        [line] = [x for x in done.stderr.splitlines() if x.startswith("skillforge hook:")]
        assert "nothing imported" in line and said in line, (payload, line)
        assert not list(tmp_path.glob("inbox/*.jsonl")), payload


def test_settings_print_the_entry_for_claude_codes_settings_file(tmp_path: Path, capsys) -> None:
    inbox = tmp_path / "inbox"
    assert cli.main(["--inbox", str(inbox), "hook", "--settings"]) == 0
    printed = json.loads(capsys.readouterr().out)
    [group] = printed["hooks"]["SessionEnd"]
    [entry] = group["hooks"]
    words = shlex.split(entry["command"])
    assert words[-1] == "hook" and words[words.index("--inbox") + 1] == str(inbox.resolve())
