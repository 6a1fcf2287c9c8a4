"""OpenAI Chat Completions message lists, and the tau-bench result record built on them.

Accepted records (one per JSONL line):
* `{"messages": [...], "outcome": {...}}` (or `reward` / `success` beside `messages`),
  with optional `id`, `task`, `agent`, `skills`, `metadata`, `started_at`, `ended_at`;
* tau-bench's `{"task_id", "reward", "info", "traj", "trial"}`.
Tool errors are taken from an explicit `error` flag where the producer sets one, else
recognised from the result text (`Error: ...`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from evolver.model import Trajectory, content_id

from ..errors import InvalidTrajectory
from .errortext import error_summary, looks_like_error


def is_chat_record(record: dict[str, Any]) -> bool:
    return isinstance(record.get("messages"), list)


def is_tau_record(record: dict[str, Any]) -> bool:
    return isinstance(record.get("traj"), list) and "reward" in record and "task_id" in record


def from_chat_record(record: dict[str, Any]) -> Trajectory:
    """A `{"messages": [...], ...outcome}` record as a trajectory."""
    return trajectory_from_record(record, steps_from_messages, "openai-chat", prefix="chat")


def trajectory_from_openai_messages(
    messages: Sequence[Mapping[str, Any]],
    *,
    task: str | None = None,
    success: bool | None = None,
    reward: float | None = None,
    agent: str | None = None,
    skills: Sequence[str] = (),
    id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Trajectory:
    """An OpenAI Chat Completions message list (as sent to the API) as a trajectory.

    `task` defaults to the first user message; the id, when not given, is a hash of the input.
    """
    return trajectory_from_parts(
        steps_from_messages([dict(m) if isinstance(m, Mapping) else m for m in messages]),
        {"messages": list(messages)},
        "openai-chat",
        prefix="chat",
        task=task,
        success=success,
        reward=reward,
        agent=agent,
        skills=skills,
        id=id,
        metadata=metadata,
    )


def trajectory_from_record(
    record: dict[str, Any],
    steps_from: Callable[[list[Any]], list[dict[str, Any]]],
    format: str,
    *,
    prefix: str,
) -> Trajectory:
    """A `{"messages", outcome|reward|success, id?, task?, ...}` record, its messages read by
    `steps_from`: the record shape shared by the chat-style importers."""
    steps = steps_from(record["messages"])
    system = record.get("system")  # Anthropic requests carry the system prompt beside messages
    if isinstance(system, str) and system.strip():
        steps.insert(0, {"type": "message", "role": "system", "text": system})
    outcome = record.get("outcome")
    if outcome is None and ("reward" in record or "success" in record):
        outcome = {"reward": record.get("reward"), "success": record.get("success")}
    data = {
        "id": record.get("id") or content_id(record, prefix=prefix),
        "agent": record.get("agent"),
        "task": record.get("task") or _first_user_text(steps),
        "started_at": record.get("started_at"),
        "ended_at": record.get("ended_at"),
        "steps": steps,
        "outcome": outcome,
        "skills": record.get("skills") or [],
        "metadata": {"format": format, **(record.get("metadata") or {})},
    }
    return _validated(data)


def trajectory_from_parts(
    steps: list[dict[str, Any]],
    source: Mapping[str, Any],
    format: str,
    *,
    prefix: str,
    task: str | None = None,
    success: bool | None = None,
    reward: float | None = None,
    agent: str | None = None,
    skills: Sequence[str] = (),
    id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Trajectory:
    """Converted steps plus the caller's keywords as a validated trajectory.

    Without `id`, the id hashes `source` and the keywords, so the same run gives the same id.
    """
    if isinstance(skills, str):
        raise InvalidTrajectory("skills must be a list of skill names, not one string")
    outcome = None
    if success is not None or reward is not None:
        outcome = {"success": success, "reward": reward}
    given = {"task": task, "outcome": outcome, "agent": agent, "skills": list(skills)}
    given["metadata"] = dict(metadata or {})
    data = {
        "id": id or content_id({**source, **given}, prefix=prefix),
        "agent": agent,
        "task": task or _first_user_text(steps),
        "steps": steps,
        "outcome": outcome,
        "skills": [{"name": name} for name in skills],
        "metadata": {"format": format, **(metadata or {})},
    }
    return _validated(data)


def from_tau_record(record: dict[str, Any]) -> Trajectory:
    """A tau-bench `EnvRunResult` (task_id, reward, info, traj, trial) as a trajectory."""
    info = record.get("info") or {}
    task = info.get("task") if isinstance(info.get("task"), dict) else {}
    steps = steps_from_messages(record["traj"])
    reward = record.get("reward")
    reason = info.get("error") or _tau_reason(info.get("reward_info"))
    gold = [a.get("name") for a in task.get("actions") or [] if isinstance(a, dict)]
    data = {
        "id": record.get("id") or content_id(record, prefix="tau"),
        "agent": record.get("agent"),
        "task": task.get("instruction") or _first_user_text(steps),
        "steps": steps,
        "outcome": {"reward": reward, "reason": reason} if reward is not None else None,
        "metadata": {
            "format": "tau-bench",
            "task_id": record.get("task_id"),
            "trial": record.get("trial"),
            "user_id": task.get("user_id"),
            "gold_actions": gold,
        },
    }
    return _validated(data)


def steps_from_messages(messages: list[Any]) -> list[dict[str, Any]]:
    """Chat messages as ordered steps; each tool result is joined to the call it answers."""
    steps: list[dict[str, Any]] = []
    pending: dict[str, dict[str, Any]] = {}  # call id -> its step, waiting for a result
    for position, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidTrajectory(
                f"messages[{position}] is {type(message).__name__}, not an object"
            )
        role = message.get("role")
        text = _text(message.get("content"))
        if role in ("system", "developer", "user"):
            steps.append(
                {"type": "message", "role": "user" if role == "user" else "system", "text": text}
            )
        elif role == "assistant":
            if text:
                steps.append({"type": "message", "role": "assistant", "text": text})
            for call in _calls(message):
                steps.append(call)
                if call["id"]:
                    pending[call["id"]] = call
        elif role in ("tool", "function"):
            call_id = message.get("tool_call_id") or message.get("id")
            call = pending.pop(call_id, None) if call_id else None
            if call is None:
                call = _last_unanswered(steps, message.get("name"))
            if call is None:
                raise InvalidTrajectory(
                    f"messages[{position}] is a tool result with no tool call before it"
                )
            _attach_result(call, text, message.get("error"))
        else:
            raise InvalidTrajectory(f"messages[{position}] has unknown role {role!r}")
    return steps


def _calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    raw = message.get("tool_calls") or []
    if message.get("function_call") and not raw:  # the legacy single-call field
        raw = [{"function": message["function_call"]}]
    calls = []
    for item in raw:
        if not isinstance(item, dict):
            raise InvalidTrajectory("a tool_calls entry is not an object")
        function = item.get("function") if isinstance(item.get("function"), dict) else item
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidTrajectory("a tool call has no function name")
        calls.append(
            {
                "type": "tool_call",
                "id": item.get("id"),
                "name": name,
                "arguments": _arguments(function.get("arguments")),
            }
        )
    return calls


def _arguments(raw: Any) -> dict[str, Any] | str:
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError:
            return raw  # kept verbatim: malformed arguments are evidence
        return parsed if isinstance(parsed, dict) else raw
    return json.dumps(raw)


def _attach_result(call: dict[str, Any], text: str, flag: Any) -> None:
    call["result"] = text
    failed = bool(flag) if isinstance(flag, bool) else looks_like_error(text)
    if failed:
        call["error"] = True
        call["error_text"] = error_summary(text) if text else "tool reported an error"


def _last_unanswered(steps: list[dict[str, Any]], name: str | None) -> dict[str, Any] | None:
    for step in reversed(steps):
        if step["type"] == "tool_call" and "result" not in step and name in (None, step["name"]):
            return step
    return None


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") if isinstance(p, dict) else str(p) for p in content]
        return "\n".join(p for p in parts if p)
    return json.dumps(content)


def _first_user_text(steps: list[dict[str, Any]]) -> str:
    for step in steps:
        if step["type"] == "message" and step["role"] == "user" and step["text"].strip():
            return step["text"]
    raise InvalidTrajectory("no task: the record has no `task` and no user message")


def _tau_reason(reward_info: Any) -> str | None:
    if not isinstance(reward_info, dict) or not isinstance(reward_info.get("info"), dict):
        return None
    checks = reward_info["info"]
    failed = [k for k, v in checks.items() if k.startswith("r_") and v in (False, 0, 0.0)]
    return f"failed checks: {', '.join(sorted(failed))}" if failed else None


def _validated(data: dict[str, Any]) -> Trajectory:
    from . import validate  # late import: the package module imports this one

    return validate(data)
