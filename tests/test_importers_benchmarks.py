"""Benchmark results: tau2-bench `Results` and MedAgentBench `overall.json`, on the real corpora."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from evolver.model import Message, ToolCall, Trajectory
from skillforge.errors import InvalidTrajectory
from skillforge.importers import parse_line, parse_record, records_in_document
from skillforge.importers.medagentbench import model_from_source
from skillforge.intake import ingest_file
from skillforge.store import Store
from tests.conftest import CORPORA

TAU2 = CORPORA / "tau2-bench-gpt41"
MAB = CORPORA / "medagentbench"
USER_DEVICE_TOOLS = {"check_status_bar", "toggle_airplane_mode", "reboot_device", "can_send_mms"}


def _load(paths: list[Path]) -> list[Trajectory]:
    runs = []
    for path in sorted(paths):
        document = json.loads(path.read_bytes())
        runs += [parse_record(r) for r in records_in_document(document, source_name=str(path))]
    return runs


@pytest.fixture(scope="module")
def tau2() -> list[Trajectory]:
    if not TAU2.is_dir():
        pytest.skip(f"shared corpus missing: {TAU2}")
    return _load(list(TAU2.glob("*.json")))


@pytest.fixture(scope="module")
def mab() -> list[Trajectory]:
    if not MAB.is_dir():
        pytest.skip(f"shared corpus missing: {MAB}")
    return _load(list(MAB.glob("*_overall.json")))


def _by_id(runs: list[Trajectory], rid: str) -> Trajectory:
    [run] = [r for r in runs if r.id == rid]
    return run


# tau2-bench


def test_tau2_counts_match_the_provenance(tau2):
    assert len(tau2) == 200 and len({r.id for r in tau2}) == 200
    assert all(r.id.startswith("tau2:") for r in tau2)
    assert Counter(r.succeeded for r in tau2) == {True: 139, False: 61}
    assert Counter(r.metadata["domain"] for r in tau2) == {
        "airline": 40,
        "retail": 80,
        "telecom": 80,
    }
    assert Counter(r.agent for r in tau2) == {
        "gpt-4.1": 100,
        "ft:gpt-4.1-2025-04-14:sierra:tau2-full-sft:BzrYdMNm": 100,
    }
    # PROVENANCE.md says user_stop for all 200; the files say otherwise for six failed runs
    assert Counter(r.outcome.reason for r in tau2) == {
        "user_stop": 194,
        "max_steps": 5,
        "too_many_errors": 1,
    }


def test_tau2_keeps_only_the_agents_tool_calls_and_all_47_errors(tau2):
    raw_errors = raw_user_calls = 0
    for path in TAU2.glob("*.json"):
        for sim in json.loads(path.read_bytes())["simulations"]:
            for m in sim["messages"]:
                raw_errors += m["role"] == "tool" and m.get("error") is True
                raw_user_calls += sum(c["requestor"] == "user" for c in m.get("tool_calls") or [])
    assert (raw_errors, raw_user_calls) == (47, 902)
    calls = [c for r in tau2 for c in r.tool_calls]
    assert len(calls) == 1749  # the agent's own calls; the user's 902 device actions dropped
    assert sum(c.error for c in calls) == 47  # every error was on an agent-side call
    assert not {c.name for c in calls} & USER_DEVICE_TOOLS
    assert all(c.result is not None for c in calls)


def test_tau2_hand_checked_retail_run(tau2):
    run = _by_id(tau2, "tau2:553390e7-0f21-4fe6-8b3f-4e65ed6cffd3")
    assert run.task.startswith("You just placed an order but you realize that your card has only")
    assert run.agent == "gpt-4.1" and run.succeeded is False
    assert run.outcome.reward == 0.0 and run.outcome.reason == "user_stop"
    first, second = run.tool_calls[:2]
    assert (first.name, first.arguments) == (
        "find_user_id_by_email",
        {"email": "daikisanchez1479@example.com"},
    )
    assert first.error and first.error_text == "Error: User not found"
    assert second.name == "find_user_id_by_name_zip" and second.result == "daiki_sanchez_3253"
    assert not second.error
    assert run.tool_calls[-1].name == "cancel_pending_order"
    assert run.metadata == {
        "format": "tau2-bench",
        "task_id": "36",
        "domain": "retail",
        "trial": 0,
        "action_checks": [
            {"name": "modify_pending_order_items", "match": False, "requestor": "assistant"}
        ],
    }
    assert isinstance(run.steps[0], Message) and run.steps[0].role == "assistant"


def test_tau2_telecom_run_keeps_the_users_words_but_not_their_device_calls(tau2):
    run = _by_id(tau2, "tau2:53759db8-5657-4a7b-b6fa-18c09fd8b859")
    assert [c.name for c in run.tool_calls] == [
        "get_customer_by_phone",
        "get_details_by_id",
        "get_details_by_id",
    ]
    assert sum(isinstance(s, Message) and s.role == "user" for s in run.steps) == 10
    assert run.metadata["domain"] == "telecom" and run.succeeded is True
    assert {c["requestor"] for c in run.metadata["action_checks"]} == {"user"}


def test_tau2_results_expand_with_their_task_and_fall_back_without_one():
    sim = {
        "id": "s1",
        "task_id": "7",
        "termination_reason": "agent_stop",
        "reward_info": {"reward": 1.0, "action_checks": []},
        "messages": [
            {"role": "user", "content": "cancel my order"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "name": "cancel", "arguments": {"id": 1}, "requestor": "assistant"}
                ],
            },
            {"role": "tool", "id": "c1", "content": "ok", "requestor": "assistant", "error": False},
        ],
    }
    task = {"id": "7", "description": {"purpose": "Cancel an order."}, "user_scenario": None}
    document = {"info": {}, "tasks": [task], "simulations": [sim]}
    [record] = records_in_document(document)
    run = parse_record(record)
    assert (run.id, run.task, run.outcome.reason) == ("tau2:s1", "Cancel an order.", "agent_stop")
    assert run.succeeded is True and run.tool_calls[0].result == "ok"
    alone = parse_record(sim)  # a simulation written on its own: the first user words are the task
    assert alone.task == "cancel my order"
    with pytest.raises(InvalidTrajectory, match="as a .json file"):
        parse_line(json.dumps(document).encode())


# MedAgentBench


def test_medagentbench_counts_match_the_provenance(mab):
    assert len(mab) == 400 and len({r.id for r in mab}) == 400
    assert Counter(r.succeeded for r in mab) == {True: 241, False: 159}
    assert Counter(r.outcome.reason for r in mab if not r.succeeded) == {
        "completedIncorrect": 143,
        "agent invalid action": 16,
    }
    calls = [c for r in mab for c in r.tool_calls]
    assert len(calls) == 436
    assert Counter(c.name for c in calls) == {
        "GET Observation": 248,
        "GET Patient": 90,
        "POST ServiceRequest": 53,
        "POST Observation": 40,
        "POST MedicationRequest": 5,
    }
    errors = Counter(c.error_text.split(":")[0] for c in calls if c.error)
    assert errors == {"Error in sending the GET request": 8, "Invalid POST request": 4}
    posts = Counter(type(c.arguments).__name__ for c in calls if c.name.startswith("POST"))
    assert posts == {"dict": 94, "str": 4}  # the 4 invalid POSTs carry a body that is not JSON
    assert Counter(r.agent for r in mab) == {
        "gpt-4o": 100,
        "gpt-4o-mini": 100,
        "deepseekv3": 100,
        "llama-3.3": 100,
    }


def test_medagentbench_hand_checked_run(mab):
    run = _by_id(mab, "mab:llama-3.3:99")
    assert run.task.startswith("What’s the last HbA1C (hemoglobin A1C) value in the chart")
    assert run.metadata["task_id"] == 99 and run.metadata["status"] == "completedIncorrect"
    get, post = run.tool_calls
    assert (get.name, get.arguments) == ("GET Observation", {"code": "A1C", "patient": "S6488980"})
    assert get.result.startswith("Here is the response from the GET request") and not get.error
    # the agent wrote FINISH after the JSON body: not JSON, kept verbatim, and the server said so
    assert post.name == "POST ServiceRequest" and isinstance(post.arguments, str)
    assert post.arguments.startswith('{\n  "resourceType": "ServiceRequest"')
    assert post.arguments.endswith("}\nFINISH([-1])")
    assert post.error and post.error_text == "Invalid POST request"
    assert run.steps[-1] == Message(role="assistant", text="FINISH([-1])")
    assert run.outcome.success is False and run.outcome.reason == "completedIncorrect"


def test_medagentbench_query_values_are_kept_as_typed(mab):
    patient = [
        c.arguments
        for r in mab
        for c in r.tool_calls
        if c.name == "GET Patient" and r.agent == "gpt-4o"
    ]
    assert {"name": "Dana Sandoval", "birthdate": "1989-04-19"} in patient  # a space in the URL
    dated = [
        c.arguments["date"]
        for r in mab
        for c in r.tool_calls
        if isinstance(c.arguments, dict) and "date" in c.arguments
    ]
    assert "ge2023-11-12T10:15:00+00:00" in dated  # `+` not read as a space


def test_a_malformed_action_is_a_message_not_a_call():
    record = {
        "index": 3,
        "status": "agent invalid action",
        "result": None,
        "model": "m",
        "history": [
            {"role": "user", "content": "rules...\nQuestion: What is the MRN of Jo?"},
            {"role": "agent", "content": 'FINISH [{"result": "S1"}]'},
        ],
    }
    run = parse_record(record)
    assert run.task == "What is the MRN of Jo?" and run.tool_calls == []
    assert run.steps[-1] == Message(role="assistant", text='FINISH [{"result": "S1"}]')
    assert run.outcome.reason == "agent invalid action"


@pytest.mark.parametrize(
    ("source", "model"),
    [
        ("/x/gpt-4o-mini_overall.json", "gpt-4o-mini"),
        ("outputs/Jan17v1/llama-3.3/medagentbench-std/overall.json", "llama-3.3"),
        ("C:\\runs\\deepseekv3_overall.json", "deepseekv3"),
        (None, None),
    ],
)
def test_the_model_comes_from_the_file_path(source, model):
    assert model_from_source(source) == model


def test_without_a_model_name_runs_of_two_files_stay_apart():
    def document(accuracy: float) -> dict[str, Any]:
        history = [{"role": "user", "content": "Question: q"}, {"role": "agent", "content": "x"}]
        return {
            "validation": {"completed": accuracy},
            "custom": {"raw_results": [{"index": 0, "status": "s", "history": history}]},
        }

    a, b = (parse_record(r) for d in (document(0.5), document(0.6)) for r in records_in_document(d))
    assert a.id != b.id and a.id.startswith("mab:")


# intake of whole files


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "state.db") as s:
        yield s


def test_intake_takes_whole_benchmark_files_in_once(store, tmp_path):
    tau2_file = TAU2 / "gpt-4.1_airline_default_gpt-4.1_1trials.json"
    mab_file = MAB / "gpt-4o_overall.json"
    if not (tau2_file.exists() and mab_file.exists()):
        pytest.skip("shared corpora missing")
    copy = tmp_path / "gpt-4o_overall.json"
    copy.write_bytes(mab_file.read_bytes())
    assert ingest_file(store, tau2_file).stored == 20
    result = ingest_file(store, copy)
    assert (result.lines, result.stored, result.quarantined) == (100, 100, 0)
    assert ingest_file(store, copy).stored == 0  # unchanged: nothing again
    ids = store.trajectory_ids()
    assert "mab:gpt-4o:0" in ids and sum(i.startswith("tau2:") for i in ids) == 20


def test_every_call_of_both_corpora_is_a_tool_call_with_object_or_text_arguments(tau2, mab):
    for run in (*tau2, *mab):
        for step in run.steps:
            assert isinstance(step, Message | ToolCall)
            if isinstance(step, ToolCall):
                assert isinstance(step.arguments, dict | str)


@pytest.mark.parametrize(
    ("flag", "content", "error"),
    [(True, "done", True), (False, "Error: boom", False), (None, "Error: boom", True)],
)
def test_tau2_error_flag_decides_and_text_only_when_it_is_missing(flag, content, error):
    result = {"role": "tool", "id": "c1", "content": content, "requestor": "assistant"}
    if flag is not None:
        result["error"] = flag
    sim = {
        "id": "s",
        "task_id": "1",
        "reward_info": {"reward": 0.0},
        "messages": [
            {"role": "user", "content": "help"},
            {"role": "assistant", "tool_calls": [{"id": "c1", "name": "t", "arguments": {}}]},
            result,
        ],
    }
    assert parse_record(sim).tool_calls[0].error is error
