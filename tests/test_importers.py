"""Importers: the project's schema, OpenAI chat records and tau-bench records."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from evolver.model import Trajectory
from skillforge.errors import InvalidTrajectory
from skillforge.importers import parse_line, parse_record
from skillforge.importers.errortext import looks_like_error


def test_tau_bench_corpus_counts_match_its_provenance(airline_records):
    runs = [parse_record(r) for r in airline_records]
    assert len(runs) == 200
    assert sum(len(t.tool_calls) for t in runs) == 1164
    assert sum(c.error for t in runs for c in t.tool_calls) == 73  # "Error: ..." texts only
    assert Counter(t.succeeded for t in runs) == {True: 84, False: 116}
    assert len({t.id for t in runs}) == 200


def test_tau_bench_record_keeps_task_errors_and_order(airline_records):
    run = parse_record(airline_records[0])
    assert run.task.startswith("You are mia_li_3668")
    names = [c.name for c in run.tool_calls]
    assert names[0] == "get_user_details" and "book_reservation" in names
    failed = [c for c in run.tool_calls if c.error]
    assert failed[0].name == "book_reservation"
    assert failed[0].error_text.startswith("Error: payment amount does not add up")
    assert failed[0].arguments["user_id"] == "mia_li_3668"
    assert run.metadata["format"] == "tau-bench" and run.metadata["trial"] == 0
    assert run.metadata["gold_actions"] == ["book_reservation"]


def chat_record(**extra):
    return {
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "c2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "{not json"},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "c2", "content": "Invalid argument: city"},
            {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "18C"}]},
            {"role": "assistant", "content": "It is 18C."},
        ],
        **extra,
    }


def test_chat_record_joins_results_by_call_id_and_detects_text_errors():
    run = parse_record(chat_record(reward=1.0, agent="demo"))
    first, second = run.tool_calls
    assert (first.arguments, first.result, first.error) == ({"city": "Paris"}, "18C", False)
    assert second.arguments == "{not json" and second.error
    assert second.error_text == "Invalid argument: city"
    assert run.task == "Weather in Paris?" and run.succeeded is True and run.agent == "demo"


def test_chat_record_honours_an_explicit_error_flag():
    record = chat_record(outcome={"success": False, "reason": "user gave up"})
    record["messages"][4]["error"] = True  # "18C" does not read as an error; the flag decides
    run = parse_record(record)
    assert run.tool_calls[0].error and run.outcome.reason == "user gave up"


def test_same_record_gets_the_same_id_and_a_different_one_differs():
    assert parse_record(chat_record()).id == parse_record(chat_record()).id
    assert parse_record(chat_record()).id != parse_record(chat_record(reward=0)).id


def test_native_schema_round_trips():
    native = {
        "id": "run-1",
        "agent": "a",
        "task": "cancel order W1",
        "steps": [
            {"type": "message", "role": "user", "text": "cancel W1"},
            {
                "type": "tool_call",
                "name": "cancel_order",
                "arguments": {"order_id": "W1"},
                "result": "Error: shipped",
                "error_text": "shipped",
            },
        ],
        "outcome": {"reward": 0.0},
        "skills": [{"name": "cancel-order", "version": "2"}],
    }
    run = parse_line(json.dumps(native).encode())
    assert run.tool_calls[0].error  # error_text implies error
    assert run.succeeded is False and run.skills[0].version == "2"
    assert Trajectory.model_validate_json(run.model_dump_json()) == run


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"task": "x", "steps": [', "not valid JSON"),
        (b"\xff\xfe{}", "not valid UTF-8: byte 0xff at position 0"),
        (b"[1, 2]", "a JSON array is not a trajectory"),
        (b'{"foo": 1}', "unrecognised record"),
        (
            b'{"task": "x", "steps": [{"type": "tool_call"}]}',
            "steps.0.tool_call.name: Field required",
        ),
        (b'{"task": "x", "outcome": {"reward": "high"}}', "outcome.reward"),
        (b'{"messages": [{"role": "tool", "content": "x"}]}', "no tool call before it"),
        (b'{"messages": [{"role": "assistant", "content": "hi"}]}', "no task"),
    ],
)
def test_bad_lines_say_why(raw, reason):
    with pytest.raises(InvalidTrajectory) as info:
        parse_line(raw)
    assert reason in info.value.reason


@pytest.mark.parametrize(
    "text",
    [
        "Error: flight not found",
        "error: x",
        "Traceback (most recent call last):\n ...",
        "Unknown action foo",
        '{"error": "bad id"}',
        "bash: foo: command not found",
        "Exit code: 2",
    ],
)
def test_error_texts_are_recognised(text):
    assert looks_like_error(text)


@pytest.mark.parametrize(
    "text",
    ["", "18C", "No errors found", '{"error": null, "ok": true}', "errors: 0", "Exit code: 0"],
)
def test_ordinary_results_are_not_errors(text):
    assert not looks_like_error(text)
