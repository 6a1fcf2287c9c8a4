"""`skillforge hook`: a Claude Code hook that takes the session's transcript into the inbox.

Claude Code runs a command hook with a JSON object on stdin (`session_id`, `transcript_path`,
`cwd`, `hook_event_name`, ...). On `SessionEnd`, `skillforge hook` imports the transcript the
object names (as `skillforge import --format claude-code` would), so every session reaches the
daemon without a cron job or a copy. A hook must never stand in the agent's way: whatever goes
wrong is one line on stderr and exit code 0. `skillforge hook --settings` prints the entry to
merge into `~/.claude/settings.json`.

A session is taken once, when it first ends: its id is `claude-code:<session>`, so the
transcript of a session resumed and ended again is a copy of a stored run, and the turns
added after the first end are not read.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any, TextIO

from ..config import Config
from ..errors import SkillforgeError
from ..output import write_line
from .import_ import import_

EVENT = "SessionEnd"
MAX_PAYLOAD = 1 << 20  # a hook's object is a few hundred bytes; more is not one


def hook(config: Config, stdin: TextIO | None = None) -> int:
    """Import the transcript a Claude Code hook's JSON object names; always 0."""
    source = sys.stdin if stdin is None else stdin
    try:
        payload = json.loads(source.read(MAX_PAYLOAD) or "null")
    except (ValueError, OSError) as exc:
        return _skip(f"the hook's input is not a JSON object ({exc})")
    path = payload.get("transcript_path") if isinstance(payload, dict) else None
    if not isinstance(path, str) or not path.strip():
        return _skip("the hook's input names no transcript_path")
    transcript = Path(path).expanduser()
    if not transcript.is_file():
        return _skip(f"no transcript at {transcript}")
    try:
        if import_(config, [transcript], format="claude-code"):
            return _skip(f"{transcript} holds no Claude Code session skillforge can read")
    except SkillforgeError as exc:
        return _skip(str(exc))
    return 0


def settings(config: Config, program: str | None = None) -> dict[str, Any]:
    """The `hooks` entry for `~/.claude/settings.json` that runs `skillforge hook` on
    `SessionEnd` into this configuration's inbox (absolute, whatever the session's cwd)."""
    words = [program or _program(), "--inbox", str(config.inbox.resolve()), "hook"]
    command = " ".join(shlex.quote(w) for w in words)
    return {"hooks": {EVENT: [{"hooks": [{"type": "command", "command": command}]}]}}


def print_settings(config: Config) -> int:
    """Print `settings`, to merge into `~/.claude/settings.json`."""
    write_line(json.dumps(settings(config), indent=2))
    return 0


def _program() -> str:
    """The skillforge command as installed beside this interpreter, else `skillforge`."""
    installed = Path(sys.executable).with_name("skillforge")
    return str(installed) if installed.is_file() else "skillforge"


def _skip(why: str) -> int:
    write_line(f"skillforge hook: nothing imported: {why}", stream=sys.stderr)
    return 0
