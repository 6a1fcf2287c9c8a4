"""OpenAI Responses API items: `function_call` / `function_call_output` and the built-in tools.

Accepted records (one per JSONL line): a logged exchange `{"input": [...]|"text", "output":
[...]}` (a `response` object with `object: "response"`, `status`, `error` may carry the output),
or `{"items": [...]}`; optional `id`, `task`, `agent`, `skills`, `metadata`, `outcome` /
`reward` / `success`. Calls are joined to their outputs by `call_id`. Function tools have no
error flag (the output text is tested); built-in tools fail by `status: "failed"`, a non-zero
`exit_code`, a timeout, or an `error` object. Without an explicit outcome, a response whose
`status` is failed / incomplete / cancelled is a failed run; `completed` says nothing of the
task, so the outcome stays unknown.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from evolver.model import Trajectory, content_id

from ..errors import InvalidTrajectory
from .chat import _arguments
from .errortext import error_summary, looks_like_error

FORMAT = "openai-responses"
_ITEM_TYPES = {
    "message", "reasoning", "function_call", "function_call_output", "custom_tool_call",
    "custom_tool_call_output", "local_shell_call", "local_shell_call_output", "shell_call",
    "shell_call_output", "apply_patch_call", "apply_patch_call_output", "computer_call",
    "computer_call_output", "mcp_call", "web_search_call", "file_search_call",
    "code_interpreter_call", "image_generation_call",
}  # fmt: skip
# calls answered by a later `<type>_output` item; other `*_call` items hold their own result
_PAIRED = {
    "function_call", "custom_tool_call", "local_shell_call", "shell_call", "apply_patch_call",
    "computer_call",
}  # fmt: skip
_TEXT_PARTS = ("input_text", "output_text", "text", "refusal")
_BAD_STATUS = {"failed", "incomplete", "cancelled"}


def is_responses_record(record: Mapping[str, Any]) -> bool:
    """`items`, or an `output` / `input` list, holding typed Responses items."""
    if record.get("object") == "response" and isinstance(record.get("output"), list):
        return True
    return any(
        isinstance(record.get(key), list) and any(_is_item(i) for i in record[key])
        for key in ("items", "output", "input")
    )


def from_responses_record(record: dict[str, Any]) -> Trajectory:
    """A logged Responses exchange (input + output items, or `items`) as a trajectory."""
    items: list[Any] = []
    if isinstance(record.get("input"), str):
        items.append({"role": "user", "content": record["input"]})
    for key in ("input", "items", "output"):
        if isinstance(record.get(key), list):
            items.extend(record[key])
    steps = steps_from_items(items)
    outcome = record.get("outcome")
    if outcome is None and ("reward" in record or "success" in record):
        outcome = {"reward": record.get("reward"), "success": record.get("success")}
    if outcome is None:
        outcome = response_outcome(record)
    instructions = record.get("instructions")
    if isinstance(instructions, str) and instructions.strip():
        steps.insert(0, {"type": "message", "role": "system", "text": instructions})
    data = {
        "id": record.get("id") or content_id(record, prefix="responses"),
        "agent": record.get("agent") or record.get("model"),
        "task": record.get("task") or first_user_text(steps),
        "started_at": record.get("started_at"),
        "ended_at": record.get("ended_at"),
        "steps": steps,
        "outcome": outcome,
        "skills": record.get("skills") or [],
        "metadata": {"format": FORMAT, **(record.get("metadata") or {})},
    }
    from . import validate  # late import: the package module imports this one

    return validate(data)


def response_outcome(response: Mapping[str, Any]) -> dict[str, Any] | None:
    """A failed run when the response envelope's `status` says it did not complete."""
    status = response.get("status")
    if response.get("object") != "response" or str(status) not in _BAD_STATUS:
        return None
    error = response.get("error") if isinstance(response.get("error"), Mapping) else {}
    details = response.get("incomplete_details")
    reason = error.get("message") or (
        details.get("reason") if isinstance(details, Mapping) else None
    )
    return {"success": False, "reason": f"response {status}" + (f": {reason}" if reason else "")}


def steps_from_items(items: Sequence[Any], *, strict: bool = True) -> list[dict[str, Any]]:
    """Items as ordered steps. An output whose call is missing raises, or is dropped when
    not `strict` (a transcript that starts mid-session)."""
    steps: list[dict[str, Any]] = []
    pending: dict[str, dict[str, Any]] = {}
    for position, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise InvalidTrajectory(f"items[{position}] is {type(item).__name__}, not an object")
        kind = item.get("type") or ("message" if "role" in item else None)
        kind = kind if isinstance(kind, str) else None
        if kind == "message":
            message = _message(item, position)
            if message:
                steps.append(message)
        elif kind in _PAIRED:
            call = _call(item, kind, position)
            steps.append(call)
            if call["id"]:
                pending[call["id"]] = call
        elif kind and kind.endswith("_call"):
            steps.append(_builtin_call(item, kind))  # the item carries its own result
        elif kind and kind.endswith("_call_output"):
            key = str(item.get("call_id") or item.get("id") or "")
            call = pending.pop(key, None)
            if call is None:
                if strict:
                    raise InvalidTrajectory(
                        f"items[{position}] is a {kind} with no call {key!r} before it"
                    )
                continue
            _attach(call, item)
        # reasoning, compaction and unknown item types carry no step
    return steps


def output_text(output: Any) -> str:
    """A call output (a string, a list of input_text/... parts, or shell results) as text."""
    if output is None:
        return ""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        parts = []
        for part in output:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, Mapping) and ("stdout" in part or "stderr" in part):
                parts.extend(str(part.get(k)) for k in ("stdout", "stderr") if part.get(k))
            elif isinstance(part, Mapping) and str(part.get("type", "")).startswith("input_"):
                parts.append(f"[{part['type'].removeprefix('input_')}]")
            else:
                parts.append(json.dumps(part, default=str))
        return "\n".join(p for p in parts if p)
    return json.dumps(output, default=str)


def first_user_text(steps: list[dict[str, Any]]) -> str:
    for step in steps:
        if step["type"] == "message" and step["role"] == "user" and step["text"].strip():
            return step["text"]
    raise InvalidTrajectory("no task: the record has no `task` and no user message")


def _is_item(item: Any) -> bool:
    return isinstance(item, Mapping) and str(item.get("type")) in _ITEM_TYPES


def _message(item: Mapping[str, Any], position: int) -> dict[str, Any] | None:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise InvalidTrajectory(f"items[{position}] is a message with unknown role {role!r}")
    content = item.get("content")
    if isinstance(content, list):
        texts = [
            str(p.get("text") or p.get("refusal") or "")
            for p in content
            if isinstance(p, Mapping) and str(p.get("type")) in _TEXT_PARTS
        ]
        text = "\n".join(t for t in texts if t)
    else:
        text = content if isinstance(content, str) else ""
    if not text.strip():
        return None
    return {"type": "message", "role": "system" if role == "developer" else role, "text": text}


def _call(item: Mapping[str, Any], kind: str, position: int) -> dict[str, Any]:
    """A call answered by a later `*_output` item: function, custom, shell, patch, computer."""
    name = item.get("name") if kind in ("function_call", "custom_tool_call") else kind[:-5]
    if not isinstance(name, str) or not name:
        raise InvalidTrajectory(f"items[{position}] is a {kind} with no name")
    if kind == "function_call":
        arguments: Any = _arguments(item.get("arguments"))
    elif kind == "custom_tool_call":
        arguments = item.get("input") if isinstance(item.get("input"), str) else {}
    else:
        raw = item.get("action") or item.get("operation") or {}
        arguments = dict(raw) if isinstance(raw, Mapping) else {"action": raw}
    call = {
        "type": "tool_call",
        "id": str(item.get("call_id") or item.get("id") or "") or None,
        "name": name,
        "arguments": arguments,
    }
    if item.get("status") == "failed":
        _fail(call, f"{name} failed")
    return call


def _builtin_call(item: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """A hosted tool item (web/file search, code interpreter, image, MCP) with its result."""
    name = str(item.get("name") or kind[:-5]) if kind == "mcp_call" else kind[:-5]
    if kind == "mcp_call":
        arguments: Any = _arguments(item.get("arguments"))
        result = output_text(item.get("output"))
    else:
        raw = {k: item[k] for k in ("action", "queries", "code", "container_id") if k in item}
        arguments = raw
        outputs = item.get("outputs") if "outputs" in item else item.get("results")
        result = output_text(outputs) if outputs is not None else None
    call = {
        "type": "tool_call",
        "id": str(item.get("id") or "") or None,
        "name": name,
        "arguments": arguments,
        "result": result,
    }
    error = item.get("error")
    if isinstance(error, Mapping):
        detail = error.get("message") or error.get("content") or error.get("type")
        _fail(call, f"{name}: {detail}")
    elif error:
        _fail(call, f"{name}: {error}")
    elif item.get("status") == "failed":
        _fail(call, f"{name} failed")
    return call


def _attach(call: dict[str, Any], item: Mapping[str, Any]) -> None:
    """A `*_call_output` item's result on its call, with the strongest error signal it has."""
    output = item.get("output")
    text = output_text(output)
    call["result"] = text
    failure = None
    if isinstance(output, list):
        for part in output:
            outcome = part.get("outcome") if isinstance(part, Mapping) else None
            if isinstance(outcome, Mapping) and outcome.get("type") == "timeout":
                failure = "timed out"
            elif isinstance(outcome, Mapping) and outcome.get("exit_code") not in (None, 0):
                failure = f"exit code {outcome['exit_code']}"
    if item.get("status") == "failed":
        failure = failure or f"{call['name']} failed"
    if failure:
        _fail(call, f"{failure}: {error_summary(text)}" if text.strip() else failure)
    elif looks_like_error(text):
        _fail(call, error_summary(text))


def _fail(call: dict[str, Any], text: str) -> None:
    call["error"] = True
    call["error_text"] = text
