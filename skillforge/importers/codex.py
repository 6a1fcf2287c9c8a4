"""Codex CLI rollouts (`~/.codex/sessions/YYYY/MM/DD/rollout-<ts>-<uuid>.jsonl`).

Each line is `{"timestamp", "type", "payload"}`. `response_item` payloads are Responses API
items (see `responses.py`); `session_meta` names the session, `turn_context` the model, and
`event_msg` carries runtime events, of which `exec_command_end` gives a shell call's exit code
and `user_message` the user's prompt. A whole file is one run; a tool call failed when its
exit code is non-zero (from `exec_command_end`, or the `metadata.exit_code` older builds put
in the output JSON), or when its output reads as an error. Codex records no task outcome, so
it stays unknown. Unknown line and item types are ignored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from evolver.model import Trajectory, content_id

from ..errors import InvalidTrajectory
from .errortext import error_summary
from .responses import steps_from_items

FORMAT = "codex"
LINE_TYPES = {"session_meta", "response_item", "event_msg", "turn_context", "compacted"}
# user-role messages Codex writes itself: context, not the user's words
_FAILURE_WORD = re.compile(r"\b(?:error|failed|failure|fatal|not found|denied)\b", re.IGNORECASE)
_INJECTED = ("<environment_context>", "<user_instructions>", "# AGENTS.md instructions")


def is_codex_line(event: Any) -> bool:
    return (
        isinstance(event, Mapping)
        and str(event.get("type")) in LINE_TYPES
        and isinstance(event.get("payload"), Mapping)
    )


def trajectory_from_codex(events: Iterable[Any]) -> Trajectory:
    """The run a rollout records: its prompt, calls with exit codes, model and times."""
    events = [e for e in events if is_codex_line(e)]
    meta: Mapping[str, Any] = {}
    model = None
    items: list[dict[str, Any]] = []
    exit_codes: dict[str, int] = {}
    prompts: list[str] = []
    for event in events:
        kind, payload = event["type"], event["payload"]
        if kind == "session_meta":
            meta = payload.get("meta") if isinstance(payload.get("meta"), Mapping) else payload
        elif kind == "turn_context" and isinstance(payload.get("model"), str):
            model = model or payload["model"]
        elif kind == "response_item":
            items.append(_item(payload, exit_codes))
        elif kind == "event_msg" and payload.get("type") == "exec_command_end":
            code = payload.get("exit_code")
            if isinstance(code, int) and payload.get("call_id"):
                exit_codes[str(payload["call_id"])] = code
        elif kind == "event_msg" and payload.get("type") == "user_message":
            message = payload.get("message")
            if isinstance(message, str) and message.strip():
                prompts.append(message)
    steps = steps_from_items(items, strict=False)
    for step in steps:
        code = exit_codes.get(step.get("id") or "")
        if step["type"] == "tool_call" and code:
            summary = _failure_line(step.get("result") or "")
            step["error"] = True
            step["error_text"] = f"exit code {code}" + (f": {summary}" if summary else "")
    task = prompts[0] if prompts else _first_prompt(steps)
    if not task:
        raise InvalidTrajectory("no task: the rollout has no user message")
    stamps = [e["timestamp"] for e in events if isinstance(e.get("timestamp"), str)]
    session = meta.get("id")
    data = {
        "id": f"{FORMAT}:{session}" if session else content_id(events, prefix=FORMAT),
        "agent": f"codex ({model})" if model else "codex",
        "task": task,
        "started_at": stamps[0] if stamps else None,
        "ended_at": stamps[-1] if stamps else None,
        "steps": steps,
        "outcome": None,
        "metadata": {
            "format": FORMAT,
            "session_id": session,
            "cwd": meta.get("cwd"),
            "cli_version": meta.get("cli_version"),
            "originator": meta.get("originator"),
        },
    }
    from . import validate  # late import: the package module imports this one

    return validate(data)


def _item(payload: Mapping[str, Any], exit_codes: dict[str, int]) -> dict[str, Any]:
    """A response item, with Codex's own conventions turned into plain Responses items."""
    item = dict(payload)
    if item.get("type") == "message" and item.get("role") == "user":
        text = _text(item.get("content"))
        if text.lstrip().startswith(_INJECTED):
            item["role"] = "developer"
    if item.get("type") in ("function_call_output", "custom_tool_call_output"):
        output = item.get("output")
        wrapped = _json_object(output) if isinstance(output, str) else None
        if wrapped is not None and "output" in wrapped:  # {"output": ..., "metadata": {...}}
            item["output"] = wrapped["output"]
            metadata = wrapped.get("metadata")
            code = metadata.get("exit_code") if isinstance(metadata, Mapping) else None
            if isinstance(code, int) and item.get("call_id"):
                exit_codes.setdefault(str(item["call_id"]), code)
    return item


def _failure_line(output: str) -> str:
    """The line of a failed command's output that says what failed, else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if _FAILURE_WORD.search(line):
            return error_summary(line)
    return error_summary(lines[-1]) if lines else ""


def _first_prompt(steps: list[dict[str, Any]]) -> str | None:
    for step in steps:
        if step["type"] == "message" and step["role"] == "user" and step["text"].strip():
            return step["text"]
    return None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text") or "") for p in content if isinstance(p, Mapping))
    return ""


def _json_object(text: str) -> dict[str, Any] | None:
    if not text.lstrip().startswith("{"):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
