"""OTLP/HTTP trace receiver: OpenTelemetry GenAI spans in, trajectories out.

An OpenTelemetry SDK or a Collector POSTs an `ExportTraceServiceRequest` (protobuf or JSON)
to `/v1/traces`. A span is exported when it ends, so one trace arrives over several exports
and its root span (the agent invocation) comes last. Spans therefore wait in the store's
`otlp_spans` table (migration m008) until their trace is complete: its root span (no parent)
has arrived, or no span of it came for `settle` seconds. A complete trace becomes runs
through the OTLP importer (`importers/otel.py`) and is stored; only then are its spans
deleted. The spans of an export are on disk before the sender hears back, and run ids come
from trace and span ids, so a crash at any point loses nothing, and a retried export or a
re-assembled trace stores nothing twice.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from evolver.model import Trajectory

from .errors import IntakeError, InvalidTrajectory
from .importers.otel import trajectories_from_otlp
from .intake import excerpt
from .store import Quarantined
from .stores import AnyStore

__all__ = [
    "JSON_TYPES",
    "PROTOBUF_TYPES",
    "InvalidExport",
    "Received",
    "SETTLE_SECONDS",
    "decode",
    "flush_settled",
    "receive",
    "response",
]

PROTOBUF_TYPES = frozenset({"application/x-protobuf", "application/protobuf"})
JSON_TYPES = frozenset({"application/json"})
SETTLE_SECONDS = 30.0
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


class InvalidExport(IntakeError):
    """A body that is not an OTLP trace export (the sender gets 400 and the reason)."""


@dataclass(frozen=True)
class Received:
    """What one export did: spans buffered, runs stored from traces it completed."""

    spans: int
    rejected: int
    stored: int
    duplicates: int
    quarantined: int
    ids: tuple[str, ...] = ()


def decode(body: bytes, content_type: str) -> dict[str, Any]:
    """The export as OTLP JSON (ids in hex), whichever encoding it came in."""
    kind = content_type.split(";")[0].strip().lower()
    if kind in PROTOBUF_TYPES:
        return _from_protobuf(body)
    if kind not in JSON_TYPES:
        raise InvalidExport(
            f"unsupported Content-Type {kind!r}; OTLP/HTTP sends application/x-protobuf "
            "or application/json"
        )
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InvalidExport(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(document, Mapping) or not isinstance(
        document.get("resourceSpans", []), list
    ):
        raise InvalidExport("not an OTLP trace export: `resourceSpans` must be a list")
    return dict(document)


def response(content_type: str, rejected: int = 0, message: str = "") -> tuple[bytes, str]:
    """An `ExportTraceServiceResponse` in the request's encoding, and its Content-Type."""
    kind = content_type.split(";")[0].strip().lower()
    if kind in PROTOBUF_TYPES:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

        answer = trace_service_pb2.ExportTraceServiceResponse()
        if rejected or message:
            answer.partial_success.rejected_spans = rejected
            answer.partial_success.error_message = message
        return answer.SerializeToString(), "application/x-protobuf"
    body: dict[str, Any] = {}
    if rejected or message:
        body["partialSuccess"] = {"rejectedSpans": str(rejected), "errorMessage": message}
    return json.dumps(body).encode(), "application/json"


def receive(
    store: AnyStore,
    document: Mapping[str, Any],
    *,
    source: str,
    now: datetime,
    settle: float = SETTLE_SECONDS,
) -> Received:
    """Buffer the export's spans, then store the runs of every trace now complete."""
    rows, rejected = _span_rows(document, now)
    store.buffer_spans(rows)
    touched = sorted({row[0] for row in rows})
    done = _assemble(store, store.traces_ready(touched, _quiet(now, settle)), source)
    return Received(len(rows), rejected, *done)


def flush_settled(
    store: AnyStore, *, source: str, now: datetime, settle: float = SETTLE_SECONDS
) -> Received:
    """Store the runs of traces whose root never came but which went quiet `settle` ago."""
    return Received(0, 0, *_assemble(store, store.traces_ready([], _quiet(now, settle)), source))


def _from_protobuf(body: bytes) -> dict[str, Any]:
    from google.protobuf.json_format import MessageToDict
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    request = trace_service_pb2.ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise InvalidExport(
            f"the body is not an OTLP protobuf ExportTraceServiceRequest: {exc}"
        ) from exc
    document = MessageToDict(request)
    for resource in document.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                for field in _ID_FIELDS:  # protobuf JSON gives bytes as base64; OTLP JSON as hex
                    if span.get(field):
                        span[field] = base64.b64decode(span[field]).hex()
    return document


def _span_rows(
    document: Mapping[str, Any], now: datetime
) -> tuple[list[tuple[str, str, int, str, str]], int]:
    """(trace, span, is root, received at, span JSON) per span, and how many were unusable."""
    rows, rejected = [], 0
    at = now.isoformat()
    for span in _spans(document):
        trace_id, span_id = span.get("traceId"), span.get("spanId")
        if not isinstance(trace_id, str) or not trace_id or not isinstance(span_id, str):
            rejected += 1
            continue
        root = 0 if span.get("parentSpanId") else 1
        rows.append((trace_id, span_id or "-", root, at, json.dumps(span)))
    return rows, rejected


def _spans(document: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    for resource in document.get("resourceSpans") or []:
        scopes = resource.get("scopeSpans") if isinstance(resource, Mapping) else None
        for scope in scopes if isinstance(scopes, list) else []:
            spans = scope.get("spans") if isinstance(scope, Mapping) else None
            for span in spans if isinstance(spans, list) else []:
                if isinstance(span, Mapping):
                    yield span


def _quiet(now: datetime, settle: float) -> str:
    return (now - timedelta(seconds=settle)).isoformat()


def _assemble(
    store: AnyStore, traces: Sequence[str], source: str
) -> tuple[int, int, int, tuple[str, ...]]:
    """Turn buffered traces into runs, store them, then drop their spans."""
    good: list[Trajectory] = []
    bad: list[Quarantined] = []
    for trace_id in traces:
        spans = [json.loads(data) for data in store.trace_spans(trace_id)]
        document = {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}
        for where, run in trajectories_from_otlp([document]):
            if isinstance(run, InvalidTrajectory):
                raw = json.dumps(document).encode()
                bad.append(Quarantined(f"{source} {where}", 1, 0, run.reason, excerpt(raw)))
            else:
                good.append(run)
    if not traces:
        return 0, 0, 0, ()
    result = store.record_received(good, bad, source=source)
    store.drop_traces(traces)
    return result.stored, result.duplicates, result.quarantined, tuple(t.id for t in good)
