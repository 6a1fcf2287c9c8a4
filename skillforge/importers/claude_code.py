"""Claude Code session transcripts (`~/.claude/projects/<encoded-cwd>/<session-id>.jsonl`).

Each line is an event; `user` / `assistant` events carry an Anthropic Messages `message`, so
tool errors are the `tool_result` blocks' `is_error`. A whole file is one run:
* the task is the first real user prompt (not a meta line, a tool result or local command
  output; a slash command reads as `/name args`);
* skills are those invoked through the `Skill` tool (`input.skill`) that did not fail, and the
  `commandName` of a successful `toolUseResult`;
* sidechain (subagent) events in a main transcript are the subagent's, not the agent's, and
  are left out; a file holding only sidechain events (`<session>/subagents/`) is its own run;
* the outcome is known only from a headless run's final `result` event (`subtype: success`
  and not `is_error`, else failed with the subtype as reason); otherwise it stays unknown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from evolver.model import Trajectory, content_id

from ..errors import InvalidTrajectory
from .anthropic import steps_from_anthropic_messages

FORMAT = "claude-code"
EVENT_TYPES = {"user", "assistant", "system", "summary", "result"}
_NOT_A_PROMPT = re.compile(r"^\s*(?:<local-command-|<command-message>[^<]*</command-message>\s*$"
                           r"|Caveat: The messages below)")  # fmt: skip
_COMMAND = re.compile(r"<command-name>([^<]*)</command-name>")
_COMMAND_ARGS = re.compile(r"<command-args>([^<]*)</command-args>")


def is_claude_code_event(event: Any) -> bool:
    """A transcript line: a user/assistant event with a `message`, or a session bookkeeping line."""
    if not isinstance(event, Mapping) or str(event.get("type")) not in EVENT_TYPES:
        return False
    return isinstance(event.get("message"), Mapping) or "sessionId" in event or "uuid" in event


def trajectory_from_claude_code(events: Iterable[Any], source: str = "") -> Trajectory:
    """The run a transcript records, with its task, calls, errors, skills and timestamps."""
    events = [e for e in events if isinstance(e, Mapping)]
    chat = [e for e in events if e.get("type") in ("user", "assistant")]
    subagent = bool(chat) and all(e.get("isSidechain") for e in chat)
    if not subagent:
        chat = [e for e in chat if not e.get("isSidechain")]
    messages: list[dict[str, Any]] = []
    task = None
    skills: list[str] = []
    for event in chat:
        message = event.get("message")
        if not isinstance(message, Mapping) or event.get("isMeta"):
            continue  # meta lines: injected skill bodies, caveats
        content = message.get("content")
        if event["type"] == "user":
            content = _drop_local_output(content)
            if content is None:
                continue
            if task is None and not event.get("isCompactSummary"):
                task = _prompt(content)
        messages.append({"role": event["type"], "content": content})
        result = event.get("toolUseResult")
        if (
            isinstance(result, Mapping)
            and result.get("commandName")
            and result.get("success") is not False
        ):
            skills.append(str(result["commandName"]))
    steps = steps_from_anthropic_messages(messages, strict=False)
    for step in steps:
        if step["type"] == "tool_call" and step["name"] == "Skill" and not step.get("error"):
            arguments = step["arguments"] if isinstance(step["arguments"], dict) else {}
            name = arguments.get("skill") or arguments.get("command")
            if isinstance(name, str) and name.strip():
                skills.append(name.strip().lstrip("/"))
    if not task:
        raise InvalidTrajectory("no task: the transcript has no user prompt")
    first = next((e for e in events if e.get("sessionId")), {})
    session = first.get("sessionId")
    stamps = [e["timestamp"] for e in chat if isinstance(e.get("timestamp"), str)]
    data = {
        "id": _id(session, subagent, source, events),
        "agent": _agent(chat),
        "task": task,
        "started_at": stamps[0] if stamps else None,
        "ended_at": stamps[-1] if stamps else None,
        "steps": steps,
        "outcome": _outcome(events),
        "skills": [{"name": n} for n in dict.fromkeys(skills)],
        "metadata": {
            "format": FORMAT,
            "session_id": session,
            "cwd": first.get("cwd"),
            "git_branch": first.get("gitBranch"),
            "version": first.get("version"),
            **({"subagent": True} if subagent else {}),
        },
    }
    from . import validate  # late import: the package module imports this one

    return validate(data)


def _prompt(content: Any) -> str | None:
    """The user's words in a user message, if it is a prompt (not tool results)."""
    if isinstance(content, list):
        texts = [
            str(b.get("text") or "")
            for b in content
            if isinstance(b, Mapping) and b.get("type") == "text"
        ]
        content = "\n".join(t for t in texts if t)
    if not isinstance(content, str) or not content.strip():
        return None
    command = _COMMAND.search(content)
    if command:
        args = _COMMAND_ARGS.search(content)
        return f"{command.group(1)} {args.group(1) if args else ''}".strip()
    return content.strip()


def _drop_local_output(content: Any) -> Any:
    """User text that is not the user's (local command output, caveats) is left out."""
    if isinstance(content, str):
        return None if _NOT_A_PROMPT.match(content) else content
    if isinstance(content, list):
        kept = [
            b
            for b in content
            if not (
                isinstance(b, Mapping)
                and b.get("type") == "text"
                and _NOT_A_PROMPT.match(str(b.get("text") or ""))
            )
        ]
        return kept or None
    return content


def _agent(chat: list[Mapping[str, Any]]) -> str:
    for event in chat:
        message = event.get("message")
        model = message.get("model") if isinstance(message, Mapping) else None
        if isinstance(model, str) and model and not model.startswith("<"):
            return f"claude-code ({model})"
    return "claude-code"


def _outcome(events: list[Mapping[str, Any]]) -> dict[str, Any] | None:
    results = [e for e in events if e.get("type") == "result"]
    if not results:
        return None
    result = results[-1]
    subtype = result.get("subtype")
    if subtype == "success" and not result.get("is_error"):
        return {"success": True}
    reason = result.get("terminal_reason") or subtype or "error"
    return {"success": False, "reason": str(reason)}


def _id(session: Any, subagent: bool, source: str, events: list[Mapping[str, Any]]) -> str:
    """The session id (a session's runs keep it), the subagent's file name beside it."""
    if not session:
        return content_id(events, prefix=FORMAT)
    return f"{FORMAT}:{session}" + (f"/{Path(source).stem}" if subagent else "")
