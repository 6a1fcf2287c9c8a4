"""Anthropic Messages (`tool_use` / `tool_result` content blocks, with the `is_error` flag).

Accepted records (one per JSONL line): `{"messages": [...], "system"?, "outcome"?}` (or
`reward` / `success` beside `messages`) with optional `id`, `task`, `agent`, `skills`,
`metadata`, `started_at`, `ended_at` — the same envelope as OpenAI chat records, told apart
by its content blocks. Server tools (`server_tool_use` + `*_tool_result`) count as calls too;
their failures are an `*_error` content type or a non-zero `return_code`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from evolver.model import Trajectory

from ..errors import InvalidTrajectory
from .chat import trajectory_from_parts, trajectory_from_record
from .errortext import error_summary, looks_like_error

FORMAT = "anthropic-messages"
_CALL_BLOCKS = ("tool_use", "server_tool_use", "mcp_tool_use")
_OWN_BLOCKS = {*_CALL_BLOCKS, "tool_result", "thinking", "redacted_thinking"}


def is_anthropic_record(record: Mapping[str, Any]) -> bool:
    """A `messages` list whose content blocks only Anthropic uses (tool_use, tool_result...)."""
    messages = record.get("messages")
    return isinstance(messages, list) and any(_has_own_block(m) for m in messages)


def from_anthropic_record(record: dict[str, Any]) -> Trajectory:
    """A `{"messages": [...content blocks...], ...outcome}` record as a trajectory."""
    return trajectory_from_record(record, steps_from_anthropic_messages, FORMAT, prefix="anthropic")


def trajectory_from_anthropic_messages(
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
    """An Anthropic Messages list (as sent to the API) as a trajectory.

    `task` defaults to the first user text; the id, when not given, is a hash of the input.
    """
    return trajectory_from_parts(
        steps_from_anthropic_messages(list(messages)),
        {"messages": list(messages)},
        FORMAT,
        prefix="anthropic",
        task=task,
        success=success,
        reward=reward,
        agent=agent,
        skills=skills,
        id=id,
        metadata=metadata,
    )


def steps_from_anthropic_messages(
    messages: Sequence[Any], *, strict: bool = True
) -> list[dict[str, Any]]:
    """Messages as ordered steps; each `tool_result` is joined to its `tool_use` by id.

    A result with no call before it raises, or is dropped when not `strict` (transcripts)."""
    steps: list[dict[str, Any]] = []
    pending: dict[str, dict[str, Any]] = {}
    for position, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidTrajectory(
                f"messages[{position}] is {type(message).__name__}, not an object"
            )
        role = message.get("role")
        if role not in ("user", "assistant", "system"):
            raise InvalidTrajectory(f"messages[{position}] has unknown role {role!r}")
        content = message.get("content")
        if isinstance(content, str):
            _add_text(steps, role, [content])
            continue
        if content is None:
            continue
        if not isinstance(content, list):
            raise InvalidTrajectory(f"messages[{position}].content is neither text nor a list")
        texts: list[str] = []
        for index, block in enumerate(content):
            where = f"messages[{position}].content[{index}]"
            if not isinstance(block, Mapping):
                raise InvalidTrajectory(f"{where} is not an object")
            kind = block.get("type") if isinstance(block.get("type"), str) else None
            if kind == "text":
                texts.append(str(block.get("text") or ""))
            elif kind in _CALL_BLOCKS:
                _add_text(steps, role, texts)
                texts = []
                call = call_step(block, where)
                steps.append(call)
                if call["id"]:
                    pending[call["id"]] = call
            elif kind and kind.endswith("tool_result"):
                _add_text(steps, role, texts)
                texts = []
                call = pending.pop(str(block.get("tool_use_id")), None)
                if call is not None:
                    attach_result(call, block)
                elif strict:
                    raise InvalidTrajectory(f"{where} is a {kind} with no tool_use before it")
            # thinking, images, documents and unknown blocks carry no step
        _add_text(steps, role, texts)
    return steps


def call_step(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A `tool_use`-like block as a tool_call step (its `input` object as the arguments)."""
    name = block.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidTrajectory(f"{where} is a tool call with no name")
    arguments = block.get("input")
    return {
        "type": "tool_call",
        "id": str(block["id"]) if block.get("id") else None,
        "name": name,
        "arguments": arguments if isinstance(arguments, dict | str) else {},
    }


def attach_result(call: dict[str, Any], block: Mapping[str, Any]) -> None:
    """Put a `tool_result` block's text on its call; `is_error` decides, else the text does."""
    content = block.get("content")
    text, failure = _server_result(content) if isinstance(content, Mapping) else (None, None)
    if text is None:
        text = result_text(content)
    call["result"] = text
    flag = block.get("is_error")
    failed = flag if isinstance(flag, bool) else failure is not None or looks_like_error(text)
    if failed:
        call["error"] = True
        call["error_text"] = failure or (
            error_summary(text) if text.strip() else "tool reported an error"
        )


def result_text(content: Any) -> str:
    """A tool result's content (a string or a list of text/image/document blocks) as text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text":
                parts.append(str(part.get("text") or ""))
            elif isinstance(part, Mapping) and part.get("type") in ("image", "document"):
                parts.append(f"[{part['type']}]")
            else:
                parts.append(json.dumps(part, default=str))
        return "\n".join(p for p in parts if p)
    return json.dumps(content, default=str)


def _server_result(content: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(text, failure) of a server tool's structured result: `*_error` types, `return_code`."""
    kind = str(content.get("type") or "")
    if kind.endswith("_error"):
        code = content.get("error_code")
        return json.dumps(content, default=str), f"{kind}: {code}" if code else kind
    if "return_code" in content:
        out = "\n".join(str(content.get(k)) for k in ("stdout", "stderr") if content.get(k))
        code = content.get("return_code")
        failed = isinstance(code, int) and code != 0
        return out, (f"exit code {code}: " + error_summary(out or "no output")) if failed else None
    return None, None


def _add_text(steps: list[dict[str, Any]], role: str, texts: list[str]) -> None:
    text = "\n".join(t for t in texts if t)
    if text.strip():
        steps.append({"type": "message", "role": role, "text": text})


def _has_own_block(message: Any) -> bool:
    content = message.get("content") if isinstance(message, Mapping) else None
    return isinstance(content, list) and any(
        isinstance(b, Mapping)
        and isinstance(b.get("type"), str)
        and (b["type"] in _OWN_BLOCKS or b["type"].endswith("_tool_result"))
        for b in content
    )
