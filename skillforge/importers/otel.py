"""OpenTelemetry GenAI spans exported as OTLP JSON (`resourceSpans[].scopeSpans[].spans[]`).

A document (or each line of a collector's JSONL file export) is an `ExportTraceServiceRequest`.
Spans are grouped by trace; each outermost `invoke_agent` span is one run, holding the
`execute_tool` spans below it (a trace without one is one run). Tool calls are ordered by start
time: `gen_ai.tool.name`, `gen_ai.tool.call.id` / `.arguments` / `.result`; a call failed when
its status code is ERROR (2) or it has an `error.type`. The task is the first user text of the
agent span's `gen_ai.input.messages` (else of the earliest span that has them); a run whose
spans recorded no input messages (content capture is opt-in) cannot be imported. The outcome is
the agent span's status: ERROR is a failed run, OK a completed one, UNSET unknown.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from evolver.model import Trajectory

from ..errors import InvalidTrajectory
from .chat import _arguments

FORMAT = "otel"
_ERROR, _OK = 2, 1
_STATUS_CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


def is_otlp_document(document: Any) -> bool:
    return isinstance(document, Mapping) and isinstance(document.get("resourceSpans"), list)


def spans_in(documents: Iterable[Any]) -> list[dict[str, Any]]:
    """Every span of the documents, attributes flattened into a plain dict."""
    spans = []
    for document in documents:
        if not is_otlp_document(document):
            raise InvalidTrajectory("not an OTLP JSON trace export: it has no `resourceSpans`")
        for resource in document["resourceSpans"]:
            scopes = resource.get("scopeSpans") if isinstance(resource, Mapping) else None
            for scope in scopes if isinstance(scopes, list) else []:
                raw = scope.get("spans") if isinstance(scope, Mapping) else None
                for span in raw if isinstance(raw, list) else []:
                    if isinstance(span, Mapping):
                        spans.append({**span, "attributes": attributes(span.get("attributes"))})
    return spans


def trajectories_from_otlp(
    documents: Iterable[Any],
) -> Iterator[tuple[str, Trajectory | InvalidTrajectory]]:
    """(trace or agent span id, run or the reason it is not one) for each run in the export."""
    traces: dict[str, list[dict[str, Any]]] = {}
    for span in spans_in(documents):
        traces.setdefault(str(span.get("traceId") or ""), []).append(span)
    for trace_id, spans in traces.items():
        by_id = {str(s.get("spanId")): s for s in spans}
        agents = [s for s in spans if _operation(s) == "invoke_agent"]
        roots = [s for s in agents if not _ancestor(s, by_id, agents)]
        groups: dict[str | None, list[dict[str, Any]]] = {str(s.get("spanId")): [] for s in roots}
        if not roots:
            groups[None] = []
        for span in spans:
            if _operation(span) == "execute_tool":
                root = _ancestor(span, by_id, roots)
                key = str(root.get("spanId")) if root else next(iter(groups))
                groups[key].append(span)
        for key, tools in groups.items():
            root = by_id.get(key) if key else None
            where = f"trace {trace_id}" + (f" span {key}" if key and len(roots) > 1 else "")
            try:
                yield where, _trajectory(trace_id, root, tools, spans)
            except InvalidTrajectory as exc:
                yield where, exc


def attributes(raw: Any) -> dict[str, Any]:
    """OTLP `[{key, value: {stringValue|intValue|...}}]` (or an already flat dict) as a dict."""
    if isinstance(raw, Mapping):
        return dict(raw)
    out: dict[str, Any] = {}
    for entry in raw if isinstance(raw, list) else []:
        if isinstance(entry, Mapping) and isinstance(entry.get("key"), str):
            out[entry["key"]] = any_value(entry.get("value"))
    return out


def any_value(value: Any) -> Any:
    """One OTLP `AnyValue` as plain JSON (intValue arrives as a string in OTLP JSON)."""
    if not isinstance(value, Mapping):
        return value
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return value["boolValue"]
    for kind, number in (("intValue", int), ("doubleValue", float)):
        if kind in value:
            try:
                return number(value[kind])
            except (TypeError, ValueError):
                return value[kind]  # kept as sent
    if "arrayValue" in value:
        return [any_value(v) for v in (value["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in value:
        return attributes((value["kvlistValue"] or {}).get("values", []))
    return value.get("bytesValue")


def _trajectory(
    trace_id: str,
    root: dict[str, Any] | None,
    tools: list[dict[str, Any]],
    spans: list[dict[str, Any]],
) -> Trajectory:
    task = _task(root) if root else None
    if task is None:
        earliest = sorted(spans, key=_start)
        task = next((t for t in map(_task, earliest) if t), None)
    if not task:
        raise InvalidTrajectory(
            "no task: no span recorded gen_ai.input.messages with a user message "
            "(enable content capture in the instrumentation)"
        )
    attrs = root["attributes"] if root else {}
    steps = [{"type": "message", "role": "user", "text": task}]
    steps.extend(_call(span) for span in sorted(tools, key=_start))
    model = attrs.get("gen_ai.request.model") or next(
        (s["attributes"]["gen_ai.request.model"] for s in sorted(spans, key=_start)
         if s["attributes"].get("gen_ai.request.model")),
        None,
    )  # fmt: skip
    name = attrs.get("gen_ai.agent.name")
    agent = " ".join(str(p) for p in (name, f"({model})" if model else None) if p) or None
    span_id = str(root.get("spanId")) if root else None
    data = {
        "id": f"{FORMAT}:{trace_id}" + (f":{span_id}" if span_id else ""),
        "agent": agent,
        "task": task,
        "started_at": _time(root.get("startTimeUnixNano")) if root else None,
        "ended_at": _time(root.get("endTimeUnixNano")) if root else None,
        "steps": steps,
        "outcome": _outcome(root) if root else None,
        "metadata": {
            "format": FORMAT,
            "trace_id": trace_id,
            "span_id": span_id,
            "provider": attrs.get("gen_ai.provider.name") or attrs.get("gen_ai.system"),
            "conversation_id": attrs.get("gen_ai.conversation.id"),
        },
    }
    from . import validate  # late import: the package module imports this one

    return validate(data)


def _call(span: dict[str, Any]) -> dict[str, Any]:
    attrs = span["attributes"]
    name = attrs.get("gen_ai.tool.name") or str(span.get("name") or "").removeprefix(
        "execute_tool "
    )
    if not name:
        raise InvalidTrajectory(f"span {span.get('spanId')} is an execute_tool with no tool name")
    result = attrs.get("gen_ai.tool.call.result")
    call = {
        "type": "tool_call",
        "id": attrs.get("gen_ai.tool.call.id") or span.get("spanId"),
        "name": name,
        "arguments": _arguments(attrs.get("gen_ai.tool.call.arguments")),
        "result": result if isinstance(result, str) or result is None else json.dumps(result),
    }
    failure = _failure(span)
    if failure:
        call["error"] = True
        call["error_text"] = failure
    return call


def _failure(span: Mapping[str, Any]) -> str | None:
    """Why a span failed: its ERROR status message, `error.type`, or an exception event."""
    status = span.get("status") if isinstance(span.get("status"), Mapping) else {}
    error_type = span["attributes"].get("error.type")
    if _status_code(status) != _ERROR and not error_type:
        return None
    exception = None
    events = span.get("events")
    for event in events if isinstance(events, list) else []:
        if isinstance(event, Mapping) and event.get("name") == "exception":
            exception = attributes(event.get("attributes")).get("exception.message")
    message = status.get("message") or exception
    parts = [str(p) for p in (error_type, message) if p]
    return ": ".join(parts) if parts else "span status ERROR"


def _outcome(root: Mapping[str, Any]) -> dict[str, Any] | None:
    status = root.get("status") if isinstance(root.get("status"), Mapping) else {}
    failure = _failure(root)
    if failure:
        return {"success": False, "reason": failure}
    return {"success": True} if _status_code(status) == _OK else None


def _task(span: Mapping[str, Any]) -> str | None:
    """The first user text part of a span's `gen_ai.input.messages`."""
    raw = span["attributes"].get("gen_ai.input.messages")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            return None
    for message in raw if isinstance(raw, list) else []:
        if not isinstance(message, Mapping) or message.get("role") != "user":
            continue
        parts = message.get("parts")
        texts = [
            str(p.get("content") or "")
            for p in (parts if isinstance(parts, list) else [])
            if isinstance(p, Mapping) and p.get("type") == "text"
        ]
        text = "\n".join(t for t in texts if t)
        if text.strip():
            return text
    return None


def _operation(span: Mapping[str, Any]) -> str | None:
    operation = span["attributes"].get("gen_ai.operation.name")
    if operation:
        return str(operation)
    name = str(span.get("name") or "")
    return name.split(" ", 1)[0] if name.startswith(("execute_tool", "invoke_agent")) else None


def _ancestor(
    span: Mapping[str, Any], by_id: Mapping[Any, dict[str, Any]], among: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The nearest ancestor of `span` that is one of `among`."""
    wanted = {id(s) for s in among}
    seen: set[int] = set()
    parent = by_id.get(str(span.get("parentSpanId")))
    while parent is not None and id(parent) not in seen:
        if id(parent) in wanted:
            return parent
        seen.add(id(parent))
        parent = by_id.get(str(parent.get("parentSpanId")))
    return None


def _status_code(status: Mapping[str, Any]) -> int:
    code = status.get("code", 0)
    if isinstance(code, str):
        return _STATUS_CODES.get(code, int(code) if code.isdigit() else 0)
    return code if isinstance(code, int) else 0


def _start(span: Mapping[str, Any]) -> int:
    value = span.get("startTimeUnixNano")
    try:
        return int(value) if value is not None else 0
    except (TypeError, ValueError):
        return 0


def _time(nanos: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(nanos) / 1e9, tz=UTC) if nanos else None
    except (TypeError, ValueError, OverflowError):
        return None
