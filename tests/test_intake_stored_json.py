"""What intake keeps as a run's JSON (`data`): the line itself when it reads back as the run,
else the run's dump; and the fast strict decoder never changes what a line becomes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evolver.model import Trajectory
from skillforge.errors import InvalidTrajectory
from skillforge.importers import MAX_FREE_DEPTH, parse_record, read_line, read_record
from skillforge.intake import ingest_file
from skillforge.store import Store
from tests.conftest import write_jsonl


def native(run_id: str | None = "run-1", **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "task": "Cancel order W123",
        "steps": [
            {"type": "message", "role": "user", "text": "Please cancel order W123"},
            {"type": "tool_call", "id": "call_1", "name": "get_order",
             "arguments": {"order_id": "W123"}, "result": "{\"status\": \"pending\"}"},
        ],
        "outcome": {"success": True},
        **extra,
    }  # fmt: skip
    if run_id is not None:
        record["id"] = run_id
    return record


def line(record: Any) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode()


def reads_back(data: str, run: Trajectory) -> bool:
    return Trajectory.model_validate_json(data) == run


def test_a_run_in_the_schema_keeps_its_line_as_sent():
    raw = line(native(started_at="2026-11-21T10:00:00", metadata={"n": 10**30}))
    run, data = read_line(raw)
    assert data == raw.decode()
    assert reads_back(data, run)
    assert run.metadata["n"] == 10**30 and isinstance(run.metadata["n"], int)  # exact
    assert run.started_at is not None and run.started_at.tzinfo is not None


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(native(None), id="no id: a content hash is the id"),
        pytest.param(native("ghp_" + "a1B2" * 9), id="an id holding a token"),
        pytest.param(native("run with spaces"), id="an id not plain"),
        pytest.param(
            native(steps=[{"type": "tool_call", "name": "sk-" + "A1b2" * 8, "arguments": {}}]),
            id="a tool name holding a key",
        ),
        pytest.param(native(skills=[{"name": "Not A Skill!"}]), id="a loaded skill made safe"),
        pytest.param(
            {"id": "chat-1", "messages": [{"role": "user", "content": "hi"}], "success": True},
            id="another format",
        ),
    ],
)
def test_a_run_changed_on_the_way_in_keeps_its_dump(record):
    run, data = read_line(line(record))
    assert data == run.model_dump_json()
    assert data != line(record).decode()
    assert reads_back(data, run)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"id": "r1", "task": "t", "metadata": {"v": NaN}}',
        b'{"id": "r1", "task": "t", "metadata": {"v": 1e400}}',
        b'{"id": "r1", "task": "t", "metadata": {"v": -Infinity}}',
    ],
)
def test_json_only_python_reads_is_taken_as_before_and_dumped(raw):
    """Lines the strict decoder refuses go to `json.loads`, as they always did."""
    run, data = read_line(raw)
    assert run == parse_record(json.loads(raw))
    assert data == run.model_dump_json()


def test_a_lone_surrogate_is_still_quarantined_with_the_reason_it_had():
    raw = b'{"id": "r1", "task": "x\\ud800"}'
    with pytest.raises(InvalidTrajectory) as caught:
        read_line(raw)
    with pytest.raises(InvalidTrajectory) as before:
        parse_record(json.loads(raw))
    assert caught.value.reason == before.value.reason


def nest(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("where", ["metadata", "arguments"])
def test_metadata_and_arguments_nest_at_most_the_limit(where):
    def record(depth: int) -> dict[str, Any]:
        deep = {"v": nest(depth - 1)}  # the object itself is one level
        if where == "metadata":
            return native(metadata=deep)
        return native(steps=[{"type": "tool_call", "name": "t", "arguments": deep}])

    run, data = read_line(line(record(MAX_FREE_DEPTH)))
    assert reads_back(data, run)
    with pytest.raises(InvalidTrajectory, match=f"nested over {MAX_FREE_DEPTH} levels"):
        read_line(line(record(MAX_FREE_DEPTH + 1)))


def test_a_record_from_a_document_keeps_its_dump():
    run, data = read_record(native())
    assert data == run.model_dump_json()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)
lax = st.sampled_from(
    [
        {},
        {"outcome": {"reward": "1"}},
        {"outcome": {"reward": 1, "success": "false"}},
        {"outcome": {"reward": True}},
        {"started_at": "2026-11-21T10:00:00", "ended_at": 1790000000},
        {"started_at": "2026-11-21T10:00:00+02:00"},
        {"agent": None, "skills": [{"name": "confirm-first", "version": "2"}]},
        {"schema_version": "1"},
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    metadata=st.dictionaries(st.text(max_size=6), json_values, max_size=4),
    arguments=json_values,
    extra=lax,
    error_text=st.none() | st.text(max_size=10),
    ascii_only=st.booleans(),
    run_id=st.none() | st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,12}", fullmatch=True),
)
def test_a_line_becomes_the_run_json_loads_made_and_its_data_reads_back_as_it(
    metadata, arguments, extra, error_text, ascii_only, run_id
):
    step: dict[str, Any] = {"type": "tool_call", "name": "lookup", "arguments": arguments}
    if error_text is not None:
        step["error_text"] = error_text
    record = native(run_id, steps=[step], metadata=metadata, **extra)
    raw = json.dumps(record, ensure_ascii=ascii_only).encode()
    try:
        before = parse_record(json.loads(raw))
    except InvalidTrajectory as exc:
        with pytest.raises(InvalidTrajectory) as caught:
            read_line(raw)
        assert caught.value.reason == exc.reason
        return
    run, data = read_line(raw)
    assert run == before
    assert reads_back(data, run)


def test_intake_stores_the_line_and_reads_back_the_runs_it_parsed(tmp_path: Path):
    records = [native(f"run-{i}", metadata={"i": i, "big": 2**70}) for i in range(5)]
    records.append(native(None))  # dumped: its id is a hash
    path = write_jsonl(tmp_path / "in" / "a.jsonl", records)
    with Store(tmp_path / "s.db") as store:
        result = ingest_file(store, path)
        assert result.stored == 6
        stored = list(store.trajectories())
    assert stored == [read_line(raw).trajectory for raw in path.read_bytes().splitlines()]
    with sqlite3.connect(tmp_path / "s.db") as conn:
        data = [d for (d,) in conn.execute("SELECT data FROM trajectories ORDER BY seq")]
    lines = path.read_text().splitlines()
    assert data[:5] == lines[:5]
    assert data[5] == stored[5].model_dump_json()
