"""The OTLP trace receiver: spans made by the real opentelemetry-sdk, encoded by its own OTLP
protobuf encoder (or as OTLP JSON), buffered until their trace is complete, then stored as runs
exactly once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from skillforge import otlp
from skillforge.store import Store, utcnow
from skillforge.stores import AnyStore, open_store
from tests.test_store_backends import fresh_database, start_postgres

PROTOBUF = "application/x-protobuf"


def agent_run(
    task: str, tools: list[tuple[str, dict, str | None]], *, ok: bool = True
) -> list[ReadableSpan]:
    """One agent invocation as a GenAI-instrumented SDK records it: tool spans, then the root."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test-agent")
    messages = json.dumps([{"role": "user", "parts": [{"type": "text", "content": task}]}])
    with tracer.start_as_current_span("invoke_agent support") as agent:
        agent.set_attribute("gen_ai.operation.name", "invoke_agent")
        agent.set_attribute("gen_ai.agent.name", "support")
        agent.set_attribute("gen_ai.request.model", "gpt-4o")
        agent.set_attribute("gen_ai.input.messages", messages)
        for i, (name, arguments, error) in enumerate(tools):
            with tracer.start_as_current_span(f"execute_tool {name}") as tool:
                tool.set_attribute("gen_ai.operation.name", "execute_tool")
                tool.set_attribute("gen_ai.tool.name", name)
                tool.set_attribute("gen_ai.tool.call.id", f"call_{i}")
                tool.set_attribute("gen_ai.tool.call.arguments", json.dumps(arguments))
                if error:
                    tool.set_attribute("error.type", error)
                    tool.set_status(Status(StatusCode.ERROR, error))
                else:
                    tool.set_attribute("gen_ai.tool.call.result", "ok")
        agent.set_status(Status(StatusCode.OK if ok else StatusCode.ERROR))
    provider.shutdown()
    return list(exporter.get_finished_spans())  # in the order they ended: the root last


def protobuf(spans: list[ReadableSpan]) -> dict:
    return otlp.decode(encode_spans(spans).SerializeToString(), PROTOBUF)


@pytest.fixture(scope="session")
def postgres_server() -> Any:
    return start_postgres()


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgres":
        yield from fresh_database(request.getfixturevalue("postgres_server"))
    else:
        yield str(tmp_path / "skillforge.db")


@pytest.fixture
def store(location: str) -> Iterator[AnyStore]:
    with open_store(location) as opened:
        yield opened


def test_a_trace_sent_in_two_exports_becomes_one_run_when_its_root_arrives(store: AnyStore) -> None:
    calls = [("get_order", {"order_id": "W1"}, None), ("cancel_order", {}, "Shipped")]
    spans = agent_run("Cancel order W1", calls)
    now = utcnow()
    first = otlp.receive(store, protobuf(spans[:-1]), source="otlp:test", now=now)
    assert (first.spans, first.stored) == (2, 0)
    assert store.count("trajectories") == 0
    assert store.count("otlp_spans") == 2

    second = otlp.receive(store, protobuf(spans[-1:]), source="otlp:test", now=now)
    assert (second.spans, second.stored) == (1, 1)
    assert store.count("otlp_spans") == 0
    [run] = store.trajectories()
    assert run.task == "Cancel order W1"
    assert [c.name for c in run.tool_calls] == ["get_order", "cancel_order"]
    assert [c.error for c in run.tool_calls] == [False, True]
    assert run.tool_calls[0].arguments == {"order_id": "W1"}
    assert run.succeeded is True
    trace_id = format(spans[-1].context.trace_id, "032x")
    assert trace_id in run.id


def test_a_retried_export_stores_nothing_twice(store: AnyStore) -> None:
    spans = agent_run("Refund order W2", [("refund", {"order_id": "W2"}, None)], ok=False)
    document = protobuf(spans)
    now = utcnow()
    assert otlp.receive(store, document, source="otlp:test", now=now).stored == 1
    again = otlp.receive(store, document, source="otlp:test", now=now)
    assert (again.stored, again.duplicates) == (0, 1)
    [run] = store.trajectories()
    assert run.succeeded is False


def test_a_trace_whose_root_never_comes_is_stored_once_it_goes_quiet(store: AnyStore) -> None:
    spans = agent_run("Look up order W3", [("get_order", {"order_id": "W3"}, None)])
    now = utcnow()
    otlp.receive(store, protobuf(spans[:-1]), source="otlp:test", now=now)
    early = otlp.flush_settled(store, source="otlp:test", now=now + timedelta(seconds=5))
    assert early.stored + early.quarantined == 0
    late = otlp.flush_settled(store, source="otlp:test", now=now + timedelta(seconds=60))
    # The tool span alone carries no task (the root held the request): quarantined with a reason.
    assert late.quarantined == 1
    assert store.count("otlp_spans") == 0
    [entry] = store.quarantine()
    assert "no task" in entry["reason"]


def test_otlp_json_and_protobuf_give_the_same_run(store: AnyStore, tmp_path: Path) -> None:
    spans = agent_run("Cancel order W4", [("cancel_order", {"order_id": "W4"}, None)])
    from_protobuf = protobuf(spans)
    # OTLP JSON as a Collector's otlphttp exporter sends it: hex ids, camelCase, enum names.
    body = json.dumps(from_protobuf).encode()
    from_json = otlp.decode(body, "application/json; charset=utf-8")
    otlp.receive(store, from_json, source="otlp:json", now=utcnow())
    with Store(tmp_path / "other.db") as other:
        otlp.receive(other, from_protobuf, source="otlp:pb", now=utcnow())
        assert [t.model_dump() for t in other.trajectories()] == [
            t.model_dump() for t in store.trajectories()
        ]


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"\xff\x00 not protobuf", PROTOBUF, "not an OTLP protobuf"),
        (b"{not json", "application/json", "not valid JSON"),
        (b'{"resourceSpans": 3}', "application/json", "must be a list"),
        (b"{}", "text/plain", "unsupported Content-Type"),
    ],
)
def test_a_body_that_is_not_a_trace_export_is_refused_with_the_reason(
    body: bytes, content_type: str, reason: str
) -> None:
    with pytest.raises(otlp.InvalidExport, match=reason):
        otlp.decode(body, content_type)


def test_the_answer_is_an_export_response_in_the_request_encoding() -> None:
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    raw, kind = otlp.response(PROTOBUF, rejected=2, message="2 spans had no trace id")
    assert kind == PROTOBUF
    parsed = trace_service_pb2.ExportTraceServiceResponse.FromString(raw)
    assert parsed.partial_success.rejected_spans == 2
    raw, kind = otlp.response("application/json")
    assert (json.loads(raw), kind) == ({}, "application/json")


# -- over HTTP, from the SDK's own OTLP/HTTP exporter -------------------------------------


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_the_sdk_exporter_sends_spans_to_v1_traces_and_they_become_runs(
    tmp_path: Path, compression: str
) -> None:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from skillforge.config import load
    from skillforge.http_intake import IntakeServer

    token = "otlp-token"
    config = load(
        environ={}, cwd=tmp_path, overrides={"http": "127.0.0.1:0", "http_token": token}
    )
    stored: list[int] = []
    with IntakeServer(config, on_stored=lambda s: stored.append(s.count("trajectories"))) as srv:
        exporter = OTLPSpanExporter(
            endpoint=f"{srv.url}/v1/traces",
            headers={"Authorization": f"Bearer {token}"},
            compression=Compression.Gzip if compression == "gzip" else Compression.NoCompression,
        )
        provider = TracerProvider()
        # One export per span as it ends, as a busy BatchSpanProcessor may split a trace.
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("agent")
        for n in range(3):
            messages = json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": f"Refund order W{n}"}]}]
            )
            with tracer.start_as_current_span("invoke_agent support") as agent:
                agent.set_attribute("gen_ai.operation.name", "invoke_agent")
                agent.set_attribute("gen_ai.input.messages", messages)
                for tool in ("get_order", "refund"):
                    with tracer.start_as_current_span(f"execute_tool {tool}") as span:
                        span.set_attribute("gen_ai.operation.name", "execute_tool")
                        span.set_attribute("gen_ai.tool.name", tool)
                        span.set_attribute("gen_ai.tool.call.arguments", f'{{"order": "W{n}"}}')
                agent.set_status(Status(StatusCode.OK))
        provider.shutdown()
        wrong = OTLPSpanExporter(endpoint=f"{srv.url}/v1/traces", headers={})
        from opentelemetry.sdk.trace.export import SpanExportResult

        assert wrong.export(agent_run("x", [])) == SpanExportResult.FAILURE  # 401
    with Store(config.db_path) as store:
        runs = sorted(store.trajectories(), key=lambda t: t.task)
        assert [t.task for t in runs] == [f"Refund order W{n}" for n in range(3)]
        assert all([c.name for c in t.tool_calls] == ["get_order", "refund"] for t in runs)
        assert store.count("otlp_spans") == 0
    assert stored and stored[-1] == 3
