"""Failure diagnosis: planted failures with known answers, precedence, attribution, corpora."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from evolver.diagnose import Category, Diagnosis, classify_error, diagnose, diagnose_all, task_key
from evolver.model import Message, ToolCall, Trajectory
from tests.evolver.conftest import run

TASK = "Cancel order W1 for the customer"
TAU2 = Path("/work/shared/corpora/tau2-bench-gpt41")


def oks(n: int = 3, calls: list | None = None) -> list[Trajectory]:
    """Successful runs of TASK: look the order up, then cancel it."""
    calls = calls or [
        ("get_order", {"order_id": "W1"}, None),
        ("cancel_order", {"order_id": "W1"}, None),
    ]
    return [run(f"ok-{i}", TASK, calls) for i in range(n)]


def test_a_planted_loop_is_found_at_its_first_call():
    calls = [("get_order", {"order_id": "W1"}, None)] + [
        ("cancel_order", {"order_id": "W1", "reason": "x"}, None) for _ in range(3)
    ]
    failed = run("bad", TASK, calls, success=False)
    d = diagnose(failed, oks(3, ["get_order", "cancel_order", "notify"]))  # a loop beats the stop
    assert (d.category, d.tool, d.step) == (Category.REPETITION_LOOP, "cancel_order", 2)
    assert "3 times" in d.evidence
    failing = run(
        "bad2", TASK, [("search", {"q": str(i)}, "Error: no results") for i in range(4)], False
    )
    d = diagnose(failing)
    assert (d.category, d.tool, d.step) == (Category.REPETITION_LOOP, "search", 1)
    assert "4 times" in d.evidence


def test_polling_with_changing_results_is_not_a_loop():
    steps = [Message(role="user", text=TASK)] + [
        ToolCall(name="get_status", arguments={"id": "L1"}, result=f"state {i}") for i in range(4)
    ]
    polling = Trajectory(id="p", task=TASK, steps=steps, outcome={"success": False})
    assert diagnose(polling).category is Category.UNKNOWN


def test_a_planted_missing_prerequisite():
    failed = run(
        "bad",
        TASK,
        [("cancel_order", {"order_id": "W1"}, None), ("get_order", {"order_id": "W1"}, None)],
        success=False,
    )
    d = diagnose(failed, oks())
    assert d.category is Category.MISSING_PREREQUISITE
    assert (d.step, d.tool, d.expected, d.contrast_runs) == (1, "cancel_order", "get_order", 3)
    assert "before get_order" in d.evidence


def test_a_planted_premature_stop_names_the_missing_tool():
    failed = run("bad", TASK, [("get_order", {"order_id": "W1"}, None)], success=False)
    d = diagnose(failed, oks())
    assert (d.category, d.step, d.tool, d.expected) == (
        Category.PREMATURE_STOP,
        None,
        "cancel_order",
        "cancel_order",
    )
    gave_up = run("bad2", TASK, [("get_order", {}, None), ("transfer_to_human", {}, None)], False)
    longer = oks(2, ["get_order", "check_policy", "cancel_order"])
    d = diagnose(gave_up, longer)
    assert (d.category, d.step, d.tool, d.expected) == (
        Category.PREMATURE_STOP,
        2,
        "cancel_order",
        "check_policy",
    )


def test_a_different_tool_where_successes_call_another_is_a_wrong_tool():
    failed = run("bad", TASK, [("get_order", {}, None), ("refund_order", {}, None)], success=False)
    d = diagnose(failed, oks())
    assert (d.category, d.step, d.tool, d.expected) == (
        Category.WRONG_TOOL,
        2,
        "refund_order",
        "cancel_order",
    )
    assert "expected cancel_order, called refund_order" in d.evidence
    extra = run("bad2", TASK, ["get_order", "cancel_order", "delete_account"], success=False)
    d = diagnose(extra, oks())
    assert (d.category, d.tool, d.expected) == (Category.WRONG_TOOL, "delete_account", None)


def test_planted_wrong_arguments_from_error_text_and_from_contrast():
    bad_args = [
        ("get_order", {"order_id": "W1"}, None),
        ("cancel_order", {"order_id": "W1", "reason": "meh"}, "Error: invalid parameter 'reason'"),
    ]
    d = diagnose(run("bad", TASK, bad_args, success=False))
    assert (d.category, d.step, d.tool) == (Category.INVALID_ARGUMENTS, 2, "cancel_order")
    same_path = [
        ("get_order", {"order_id": "W1"}, None),
        ("cancel_order", {"order_id": "W9"}, None),
    ]
    d = diagnose(run("bad2", TASK, same_path, success=False), oks())
    assert (d.category, d.step, d.tool) == (Category.INVALID_ARGUMENTS, 2, "cancel_order")
    assert "(in order_id)" in d.evidence


def test_a_hallucinated_tool_by_its_error_and_by_the_known_tools():
    unknown = run(
        "bad", TASK, [("get_order", {}, None), ("fetch_all", {}, "Unknown action fetch_all")], False
    )
    d = diagnose(unknown, oks())
    assert (d.category, d.step, d.tool) == (Category.HALLUCINATED_TOOL, 2, "fetch_all")
    invented = run("bad2", TASK, [("order_lookup", {}, "Error: something went wrong")], False)
    assert diagnose(invented, known_tools={"get_order"}).category is Category.HALLUCINATED_TOOL
    assert diagnose(invented).category is Category.TOOL_ERROR  # nothing says the tool is unknown


def test_an_unrecovered_environment_failure_beats_the_contrast():
    timeout = [("get_order", {}, None), ("cancel_order", {}, "Error: 503 Service Unavailable")]
    d = diagnose(
        run("bad", TASK, timeout, success=False), oks(2, ["get_order", "cancel_order", "notify"])
    )
    assert (d.category, d.step, d.tool) == (Category.ENVIRONMENT_FAILURE, 2, "cancel_order")
    retried = [
        ("get_order", {}, "Error: request timed out"),
        ("get_order", {"order_id": "W1"}, None),
        (
            "cancel_order",
            {"order_id": "W1", "reason": "x"},
            "Error: non-pending order cannot be cancelled",
        ),
    ]
    d = diagnose(run("bad2", TASK, retried, success=False))
    assert (d.category, d.step, d.tool) == (Category.POLICY_VIOLATION, 3, "cancel_order")


def test_errors_that_successes_also_hit_are_not_the_cause():
    lookup = ("find_user", {"email": "a@b.c"}, "Error: User not found")
    succeeded = [run(f"ok-{i}", TASK, [lookup, "get_order", "cancel_order"]) for i in range(2)]
    failed = run("bad", TASK, [lookup, "get_order", "cancel_order", "cancel_order"], False)
    alone = diagnose(failed)  # alone, the error is the only sign of trouble
    assert (alone.category, alone.tool) == (Category.INVALID_ARGUMENTS, "find_user")
    d = diagnose(failed, succeeded)
    assert (d.category, d.tool, d.contrast_runs) == (Category.UNKNOWN, None, 2)


def test_nothing_to_go_on_is_unknown():
    d = diagnose(run("bad", TASK, ["get_order", "cancel_order"], success=False))
    assert (d.category, d.step, d.tool, d.contrast_runs) == (Category.UNKNOWN, None, None, 0)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("Unknown action get_weather", Category.HALLUCINATED_TOOL),
        ("Error: connection reset by peer", Category.ENVIRONMENT_FAILURE),
        ("Error: 429 Too Many Requests", Category.ENVIRONMENT_FAILURE),
        ("Error: Non-delivered order cannot be exchanged", Category.POLICY_VIOLATION),
        (
            "Error: payment amount does not add up, total price is 305, but paid 255",
            Category.POLICY_VIOLATION,
        ),
        ("Error: gift card balance is not enough", Category.POLICY_VIOLATION),
        ("Error: Order not found", Category.INVALID_ARGUMENTS),
        ("Error: flight HAT1 not available on date 2024-05-01", Category.INVALID_ARGUMENTS),
        (
            "Error in sending the GET request: 400 Client Error:  for url: x",
            Category.INVALID_ARGUMENTS,
        ),
        ("Invalid POST request", Category.INVALID_ARGUMENTS),
        ("Error: reason must be one of ...", Category.INVALID_ARGUMENTS),
        ("Error: disk quota", Category.TOOL_ERROR),
    ],
)
def test_error_text_categories(text, category):
    assert classify_error(text, ToolCall(name="t", arguments={"id": "1"})) is category


def test_not_found_without_typed_arguments_is_a_tool_error():
    assert classify_error("Error: config not found", ToolCall(name="t")) is Category.TOOL_ERROR


def test_diagnose_all_groups_by_task_and_attributes_skills():
    failed_own = run(
        "bad-own", TASK, ["cancel_order", "get_order"], False, skills=["cancel-orders"]
    )
    failed_map = run("bad-map", TASK, ["get_order"], success=False)
    other_task = run("bad-other", "Book a table for two", ["book_table"], success=False)
    runs = [*oks(2), failed_own, failed_map, other_task]
    found = {
        d.trajectory_id: d for d in diagnose_all(runs, skill_of={"bad-own": "x", "bad-map": "y"})
    }
    assert set(found) == {"bad-own", "bad-map", "bad-other"}
    assert found["bad-own"].skill == "cancel-orders"  # the run's own loaded skill comes first
    assert found["bad-map"].skill == "y" and found["bad-other"].skill is None
    assert found["bad-own"].category is Category.MISSING_PREREQUISITE
    assert found["bad-map"].category is Category.PREMATURE_STOP
    assert (found["bad-other"].contrast_runs, found["bad-other"].category) == (0, Category.UNKNOWN)


def test_task_ids_group_runs_whatever_their_text():
    a = run("a", "text one", ["x"]).model_copy(update={"metadata": {"task_id": 7, "domain": "d"}})
    b = run("b", "text two", ["x"]).model_copy(update={"metadata": {"task_id": 7, "domain": "d"}})
    c = run("c", "text two", ["x"]).model_copy(update={"metadata": {"task_id": 7, "domain": "e"}})
    assert task_key(a) == task_key(b) != task_key(c)
    assert task_key(run("d", "  Text   ONE ", [])) == task_key(run("e", "text one", []))


def test_evidence_is_redacted_and_one_line():
    leaky = [("send_mail", {"to": "x"}, "Error: invalid address jane.doe@example.com\nline two")]
    d = diagnose(run("bad", TASK, leaky, success=False))
    assert "jane.doe" not in d.evidence and "\n" not in d.evidence
    assert d.category is Category.INVALID_ARGUMENTS


def test_a_diagnosis_is_frozen_and_serialisable():
    d = diagnose(run("bad", TASK, ["get_order"], success=False), oks())
    assert Diagnosis.model_validate_json(d.model_dump_json()) == d
    with pytest.raises(ValueError):
        d.category = Category.UNKNOWN  # type: ignore[misc]
    assert json.loads(d.model_dump_json())["category"] == "premature-stop"


def test_diagnose_imports_nothing_with_side_effects():
    code = (
        "import sys, evolver.diagnose\n"
        "bad = {'sqlite_utils','git','apscheduler','watchdog','httpx','anthropic','openai',"
        "'skillforge','requests','sqlite3','urllib3','aiohttp'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in bad))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr


def test_on_the_airline_corpus_every_step_points_at_its_tool(airline01):
    found = diagnose_all(airline01)
    assert len(found) == sum(r.succeeded is False for r in airline01)
    runs = {r.id: r for r in airline01}
    for d in found:
        if d.step is not None and d.category is not Category.PREMATURE_STOP:
            step = runs[d.trajectory_id].steps[d.step]
            assert isinstance(step, ToolCall) and step.name == d.tool
    counts = Counter(d.category for d in found)
    assert counts[Category.POLICY_VIOLATION] > 0 and counts[Category.WRONG_TOOL] > 0


@pytest.fixture(scope="module")
def tau2_runs() -> list[Trajectory]:
    if not TAU2.is_dir():
        pytest.skip(f"shared corpus missing: {TAU2}")
    from skillforge.importers import parse_record, records_in_document

    runs = []
    for path in sorted(TAU2.glob("*.json")):
        runs += [parse_record(r) for r in records_in_document(json.loads(path.read_bytes()))]
    return runs


def test_tau2_runs_the_benchmark_stopped_for_looping_are_loops(tau2_runs):
    found = {d.trajectory_id: d for d in diagnose_all(tau2_runs)}
    stopped = [r for r in tau2_runs if r.outcome.reason in ("max_steps", "too_many_errors")]
    assert len(stopped) == 6
    assert {found[r.id].category for r in stopped} == {Category.REPETITION_LOOP}


def test_tau2_hand_checked_divergence(tau2_runs):
    found = {d.trajectory_id: d for d in diagnose_all(tau2_runs)}
    [skipped] = [
        r
        for r in tau2_runs
        if r.metadata["domain"] == "retail" and r.metadata["task_id"] == "101" and not r.succeeded
    ]
    d = found[skipped.id]  # successes change the address first; this run went straight to items
    assert (d.category, d.tool, d.expected, d.contrast_runs) == (
        Category.MISSING_PREREQUISITE,
        "modify_pending_order_items",
        "modify_pending_order_address",
        1,
    )
    missed = {c["name"] for c in skipped.metadata["action_checks"] if not c["match"]}
    assert d.expected in missed  # the benchmark agrees on what was left out
