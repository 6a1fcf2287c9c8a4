"""Intake: complete lines only, offsets that survive restarts, duplicates once, quarantine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skillforge.intake import ingest_file, ingest_paths, quarantine_file_sink
from skillforge.store import Store
from tests.conftest import write_jsonl


def native(i: int, **extra) -> dict:
    return {
        "id": f"run-{i}",
        "task": f"cancel order W{i}",
        "steps": [
            {"type": "tool_call", "name": "cancel_order", "arguments": {"order_id": f"W{i}"}}
        ],
        "outcome": {"success": i % 2 == 0},
        **extra,
    }


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "state.db") as s:
        yield s


def stored_ids(store: Store) -> list[str]:
    return store.trajectory_ids()


def test_only_complete_lines_are_read_and_the_rest_waits(store, tmp_path):
    path = write_jsonl(tmp_path / "in" / "a.jsonl", [native(1)])
    half = json.dumps(native(2))
    with path.open("a") as handle:
        handle.write(half[:20])  # a writer is mid-line
    first = ingest_file(store, path)
    assert (first.stored, first.quarantined) == (1, 0)
    with path.open("a") as handle:
        handle.write(half[20:] + "\n")
    second = ingest_file(store, path)
    assert (second.stored, second.quarantined) == (1, 0)
    assert stored_ids(store) == ["run-1", "run-2"]


def test_restart_resumes_at_the_stored_offset(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [native(i) for i in range(3)])
    with Store(tmp_path / "s.db") as store:
        ingest_file(store, path)
    write_jsonl(path, [native(3)])
    with Store(tmp_path / "s.db") as store:  # a new process, same database
        result = ingest_file(store, path)
        assert (result.lines, result.stored, result.duplicates) == (1, 1, 0)
        assert store.file_progress(str(path.resolve())).line == 4


def test_the_same_trajectory_twice_is_stored_once(store, tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [native(1), native(1)])
    b = write_jsonl(tmp_path / "b.jsonl", [native(1), native(2)])
    result = ingest_paths(store, [a, b])
    assert (result.stored, result.duplicates) == (2, 2)
    assert store.counter("duplicates") == 2
    # Ignored duplicates still use up sequence numbers: what waits for a cycle is counted.
    assert store.stored_after(0) == 2


def test_a_truncated_or_replaced_file_is_read_again_from_the_top(store, tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [native(1), native(2)])
    ingest_file(store, path)
    path.write_text(json.dumps(native(3)) + "\n")  # rotated: shorter than the stored offset
    assert ingest_file(store, path).stored == 1
    assert stored_ids(store) == ["run-1", "run-2", "run-3"]


BAD_LINES = {
    "truncated": (b'{"id": "t", "task": "x", "steps": [{"type": "tool_c', "not valid JSON"),
    "invalid-json": (b"{'single': 'quotes'}", "not valid JSON"),
    "wrong-schema": (
        b'{"task": "x", "steps": [{"type": "tool_call", "name": 7}]}',
        "steps.0.tool_call.name",
    ),
    "non-utf8": (b'{"task": "caf\xe9"}', "not valid UTF-8: byte 0xe9"),
    "not-an-object": (b'"just a string"', "a JSON string is not a trajectory"),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_a_bad_line_is_quarantined_with_file_line_and_reason(store, tmp_path, case):
    raw, reason = BAD_LINES[case]
    path = tmp_path / "in.jsonl"
    good_before, good_after = json.dumps(native(1)).encode(), json.dumps(native(2)).encode()
    path.write_bytes(good_before + b"\n" + raw + b"\n" + good_after + b"\n")
    sink_path = tmp_path / "quarantine.jsonl"
    result = ingest_file(store, path, on_quarantine=quarantine_file_sink(sink_path))
    assert (result.stored, result.quarantined) == (2, 1)
    assert stored_ids(store) == ["run-1", "run-2"]  # the good lines around it are untouched
    [row] = store.quarantine()
    assert (row["file"], row["line"]) == (str(path), 2)
    assert reason in row["reason"]
    [readable] = [json.loads(line) for line in sink_path.read_text().splitlines()]
    assert (readable["file"], readable["line"], readable["reason"]) == (str(path), 2, row["reason"])
    assert ingest_file(store, path).quarantined == 0  # read once: not quarantined again


def test_an_empty_file_is_reported_and_changes_nothing(store, tmp_path):
    path = tmp_path / "empty.jsonl"
    path.touch()
    result = ingest_file(store, path)
    assert (result.stored, result.quarantined, result.lines) == (0, 0, 0)
    assert any("empty file" in note for note in result.notes)
    assert store.count("quarantine") == 0


def test_blank_lines_are_skipped_but_counted_for_line_numbers(store, tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"\n   \n" + json.dumps(native(1)).encode() + b"\r\n{bad\n")
    result = ingest_file(store, path)
    assert (result.stored, result.quarantined) == (1, 1)
    assert store.quarantine()[0]["line"] == 4


def test_an_oversized_line_is_quarantined(store, tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [native(1, metadata={"blob": "x" * 5000}), native(2)])
    result = ingest_file(store, path, max_line_bytes=2048)
    assert (result.stored, result.quarantined) == (1, 1)
    assert "line longer than 2048 bytes" in store.quarantine()[0]["reason"]


def test_quarantine_excerpts_are_redacted(store, tmp_path):
    path = tmp_path / "a.jsonl"
    secret = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4"
    path.write_text('{"task": "x", "api_key": "' + secret + '", broken\n')
    ingest_file(store, path)
    assert secret not in store.quarantine()[0]["excerpt"]


def test_a_json_array_file_is_taken_in_record_by_record(store, tmp_path, airline_records):
    path = tmp_path / "results.json"
    path.write_text(json.dumps([*airline_records[:3], {"bogus": True}]))
    result = ingest_file(store, path)
    assert (result.stored, result.quarantined) == (3, 1)
    assert store.quarantine()[0]["line"] == 4
    assert ingest_file(store, path).stored == 0  # unchanged file: nothing again


def test_an_excerpt_never_shows_part_of_a_secret_that_straddles_where_it_was_cut() -> None:
    from skillforge.intake import excerpt

    key = "-----BEGIN PRIVATE KEY-----\n" + "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n" * 33
    key += "-----END PRIVATE KEY-----"  # 1,142 bytes that redact to a short placeholder
    aws = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    for cut in range(8, 32, 4):  # bytes of the secret within the first 1,200
        raw = f'{{"f": "{"z" * (31 - cut)}", "k": "{key}", "aws": "{aws}", "y": "{"y" * 2000}"'
        assert raw.index(aws) == 1200 - cut
        text = excerpt(raw.encode())
        assert "[REDACTED:private-key]" in text
        assert not any(aws[i : i + 8] in text for i in range(len(aws) - 7)), (cut, text)
