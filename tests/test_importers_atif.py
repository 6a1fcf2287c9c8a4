"""Harbor ATIF trajectories: tool calls matched to their results by id, errors read from the
result text, the outcome only from the Harbor trial's result.json beside the run.

The fixtures follow neulab/agent-data-protocol's `schema/atif.py` (ATIF_SCHEMA_VERSION
"ATIF-v1.7": Step, ToolCall, ObservationResult, Metrics, Agent, ATIFTrajectory) and Harbor's
trial layout and result (`models/trial/paths.py`: `<trial>/agent/trajectory.json`,
`<trial>/result.json`; `models/trial/result.py` TrialResult with `verifier_result.rewards`,
`models/verifier/result.py`), as read in a fork of laude-institute/harbor. `adp_converted.jsonl`
is shaped as ADP's `adp_trajectory_to_atif` writes it (details under `extra.adp_details`).
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from evolver.model import Message, Trajectory
from evolver.operations import with_operations
from skillforge import cli
from skillforge.errors import InvalidTrajectory
from skillforge.importers import parse_record, record_format, records_in_document
from skillforge.importers.files import detect_format, read_file
from skillforge.store import Store

FIXTURES = Path(__file__).parent / "fixtures" / "atif"
JOB = FIXTURES / "jobs" / "2025-11-03__14-20-07"
TRIAL = JOB / "fix-git__Xy7kQ2p"
TRAJECTORY = TRIAL / "agent" / "trajectory.json"
CONVERTED = FIXTURES / "adp_converted.jsonl"
SESSION = "8d1f2c4e-5b6a-4c3d-9e8f-0a1b2c3d4e5f"


def _document() -> dict[str, Any]:
    return json.loads(TRAJECTORY.read_bytes())


def _load(path: Path) -> Trajectory:
    [record] = records_in_document(json.loads(path.read_bytes()), str(path))
    return parse_record(record)


def _trial(tmp_path: Path, result: dict[str, Any] | None, *, nested: bool = True) -> Path:
    """A copy of the trial with the given result.json (none when None); its trajectory path."""
    trial = tmp_path / "job" / "task__abc"
    target = trial / "agent" / "trajectory.json" if nested else trial / "trajectory.json"
    target.parent.mkdir(parents=True)
    shutil.copy(TRAJECTORY, target)
    if result is not None:
        (trial / "result.json").write_text(json.dumps(result))
    return target


def _atif(*steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A small ATIF trajectory: a user step asking, then the given steps."""
    ask = {"step_id": 1, "source": "user", "message": "Fix calc.add"}
    numbered = [{"step_id": i, **s} for i, s in enumerate(steps, start=2)]
    return {"schema_version": "ATIF-v1.7", "session_id": "s1", "agent": {"name": "a"},
            "steps": [ask, *numbered], **extra}  # fmt: skip


def test_a_harbor_trial_is_its_calls_with_results_by_id_and_the_trials_reward():
    run = _load(TRAJECTORY)
    assert record_format(_document()) == "atif"
    assert run.id == f"atif:{SESSION}"
    assert run.agent == "anthropic/claude-sonnet-4-5/claude-code"
    assert run.task.startswith("The repository in /app/repo has an unfinished merge.")
    status, readme, tests, edit, stage = run.tool_calls
    # the Read result came first: each result went to the call with its source_call_id
    assert status.id == "toolu_01A" and status.result.startswith("On branch master")
    assert readme.id == "toolu_01B" and readme.result.startswith("     1\t# repo")
    assert tests.error and tests.error_text == "ModuleNotFoundError: No module named 'yaml'"
    assert edit.result == "The file /app/repo/src/app.py has been updated."  # text parts
    assert not any(c.error for c in (status, readme, edit, stage))
    said = [(s.role, s.text) for s in run.steps if isinstance(s, Message)]
    assert said == [
        ("assistant", "I'll look at the state of the merge first."),
        ("assistant", "Keeping both changes in src/app.py."),
        ("assistant", "The conflict in src/app.py is resolved and staged."),
    ]  # the system prompt is no step
    assert run.succeeded is True and run.outcome.reward == 1.0
    assert run.started_at.isoformat() == "2025-11-03T14:20:31.512000+00:00"
    assert run.ended_at.isoformat() == "2025-11-03T14:21:02.405000+00:00"
    assert run.metadata == {
        "format": "atif", "source": "atif", "schema_version": "ATIF-v1.7", "session_id": SESSION,
        "trajectory_id": None, "segment": None, "agent_name": "claude-code",
        "agent_version": "2.0.31", "model": "anthropic/claude-sonnet-4-5", "task_id": "fix-git",
        "trial": "fix-git__Xy7kQ2p", "rewards": {"reward": 1.0},
        "outcome_from": "harbor result.json", "cost": 0.0384, "copied_steps": 0, "example_steps": 0,
        "subagent_trajectories": 1, "continued_trajectory_ref": None,
    }  # fmt: skip


def test_operations_of_an_imported_trial_resolve():
    assert [c.name for c in with_operations(_load(TRAJECTORY)).tool_calls] == [
        "git status", "read file", "pytest", "edit source file", "git add",
    ]  # fmt: skip


def test_the_outcome_comes_only_from_the_trials_result_json(tmp_path):
    assert parse_record(_document()).outcome is None  # no path: nothing beside it
    assert parse_record(_document()).id == f"atif:{SESSION}"
    assert _load(_trial(tmp_path / "none", None)).outcome is None
    timed_out = {
        "task_name": "fix-git", "trial_name": "task__abc",
        "verifier_result": {"rewards": {"reward": 0.0}},
        "exception_info": {"exception_type": "AgentTimeoutError",
                           "exception_message": "Agent execution timed out after 900 seconds"},
    }  # fmt: skip
    run = _load(_trial(tmp_path / "failed", timed_out))
    assert run.succeeded is False and run.outcome.reason == "AgentTimeoutError"
    assert run.id == f"atif:{SESSION}"  # what was attached is not part of the id
    unverified = {"trial_name": "task__abc", "verifier_result": None,
                  "exception_info": {"exception_type": "EnvironmentStartTimeoutError"}}  # fmt: skip
    assert _load(_trial(tmp_path / "unverified", unverified)).outcome is None
    job_summary = {"id": "j1", "n_total_trials": 1, "stats": {"n_trials": 1}}  # not a trial's
    assert _load(_trial(tmp_path / "job", job_summary)).outcome is None
    beside = _trial(tmp_path / "flat", {"trial_name": "t", "verifier_result": {"rewards":
                                        {"pass": 1}}}, nested=False)  # fmt: skip
    assert _load(beside).succeeded is True  # the one reward there is, in the same folder


def test_continuations_skip_copied_steps_and_subagent_files_get_no_reward(tmp_path):
    agent = _trial(tmp_path, json.loads((TRIAL / "result.json").read_bytes())).parent
    continued = copy.deepcopy(_document())
    for step in continued["steps"][:4]:
        step["is_copied_context"] = True
    (agent / "trajectory.cont-1.json").write_text(json.dumps(continued))
    run = _load(agent / "trajectory.cont-1.json")
    assert run.id == f"atif:{SESSION}:cont-1" and run.metadata["segment"] == "cont-1"
    assert run.task.startswith("The repository in /app/repo")  # from the copied user step
    assert [c.id for c in run.tool_calls] == ["toolu_03A", "toolu_04A"]
    assert run.metadata["copied_steps"] == 3 and run.succeeded is True
    summary = _atif({"source": "agent", "message": "The agent resolved a merge conflict."})
    (agent / "trajectory.summarization-1-summary.json").write_text(json.dumps(summary))
    sub = _load(agent / "trajectory.summarization-1-summary.json")
    assert sub.id == "atif:s1:summarization-1-summary" and sub.outcome is None


def test_a_result_without_an_id_answers_the_steps_first_open_call():
    calls = [
        {"tool_call_id": "c1", "function_name": "bash", "arguments": {"command": "ls"}},
        {"tool_call_id": "c2", "function_name": "bash", "arguments": {"command": "pwd"}},
    ]
    results = [{"source_call_id": "c2", "content": "/app"}, {"content": "a.py"},
               {"content": "[the environment restarted]"}]  # fmt: skip
    run = parse_record(_atif({"source": "agent", "tool_calls": calls,
                              "observation": {"results": results}}))  # fmt: skip
    ls, pwd = run.tool_calls
    assert (ls.result, pwd.result) == ("a.py", "/app")
    assert run.steps[-1] == Message(role="user", text="[the environment restarted]")


def test_a_converted_adp_trajectory_keeps_the_outcome_of_its_details():
    assert detect_format(CONVERTED) == "atif"
    failed, unknown = read_file(CONVERTED)
    assert failed.id == "atif:agenttuning_os_12" and failed.succeeded is False
    assert failed.metadata["outcome_from"] == "extra.adp_details.success"
    [count] = failed.tool_calls
    assert count.name == "execute_bash" and count.error
    assert count.error_text == "ls: cannot access '/data': No such file or directory"
    assert unknown.outcome is None
    assert unknown.steps[0] == Message(role="user", text="[Search] [Back to Search]")
    assert unknown.tool_calls[0].result == "[B07X] AmazonBasics AA 12-pack $8.99"


def test_read_file_detects_a_trajectory_json_and_imports_a_job_folder(
    capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    assert detect_format(TRAJECTORY) == "atif"
    [run] = read_file(TRAJECTORY, "atif")
    assert run.succeeded is True
    where = ["--home", str(tmp_path / "var"), "--inbox", str(tmp_path / "inbox")]
    assert cli.main([*where, "import", str(FIXTURES)]) == 0
    out = capsys.readouterr().out
    # the trial's result.json is read as a file too, and skipped as no run
    assert "4 files: imported 5 runs into" in out and "skipped 1" in out
    assert cli.main([*where, "ingest", str(tmp_path / "inbox")]) == 0
    with Store(tmp_path / "var" / "skillforge.db") as store:
        stored = {t.id: t.succeeded for t in store.trajectories()}
    assert stored == {
        f"atif:{SESSION}": True, "atif:agenttuning_os_12": False, "atif:webshop_41": None,
        "atif:os_7": None, "atif:db_1": None,
    }  # fmt: skip


def test_detection_takes_atif_before_the_skillforge_schema():
    document = _document()
    assert record_format({**document, "schema_version": "ATIF-v1.2"}) == "atif"
    del document["schema_version"]
    assert record_format(document) == "native"  # steps alone are the skillforge schema's


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"steps": []}, "steps is not a non-empty list"),
        ({"steps": {"1": {}}}, "steps is not a non-empty list"),
        ({"steps": [{"step_id": 1, "source": "agent", "message": "hi"}]}, "no task"),
        ({"steps": [{"step_id": 1, "source": "user", "message": "t"}, "step"]},
         r"steps\[1\] is not an object"),
        ({"steps": [{"step_id": 1, "source": "human", "message": "t"}]},
         r"steps\[0\]\.source 'human' is not system, user or agent"),
        ({"steps": [{"step_id": 1, "source": "user", "message": 7}]},
         r"steps\[0\]\.message is not a string or a list of parts"),
        ({"steps": [{"step_id": 1, "source": "user", "message": "t"},
                    {"step_id": 2, "source": "agent", "tool_calls": {"id": "c1"}}]},
         r"steps\[1\]\.tool_calls is not a list"),
        ({"steps": [{"step_id": 1, "source": "user", "message": "t"},
                    {"step_id": 2, "source": "agent", "tool_calls": [{"tool_call_id": "c1"}]}]},
         r"steps\[1\]\.tool_calls\[0\]\.function_name is not a name"),
        ({"steps": [{"step_id": 1, "source": "user", "message": "t"},
                    {"step_id": 2, "source": "agent", "observation": {"results": "ok"}}]},
         r"steps\[1\]\.observation\.results is not a list"),
        ({"steps": [{"step_id": 1, "source": "user", "message": "t"},
                    {"step_id": 2, "source": "agent", "tool_calls": [
                        {"tool_call_id": "c1", "function_name": "ls", "arguments": [1]}]}]},
         r"steps\[1\]\.tool_calls\[0\]\.arguments is not an object"),
    ],
)  # fmt: skip
def test_a_malformed_trajectory_is_an_invalid_trajectory_with_its_reason(change, reason):
    record = {**_document(), **change}
    assert record_format(record) == "atif"
    with pytest.raises(InvalidTrajectory, match=reason):
        parse_record(record)


def test_agentbench_shapes_converted_by_adp():
    """The OS run's solved example is left out; the DB rules the agent acknowledged are a
    system message; a generic_tool is a call of the tool it names."""
    os_run, db = (i for i in read_file(FIXTURES / "agentbench_os_atif.json"))
    assert os_run.task == "How many .log files are under /var?"
    find, search = os_run.tool_calls
    assert find.arguments == {"command": "find /var -name '*.log' | wc -l"}
    assert search.name == "WebSearch" and search.arguments == {"query": "find -name"}
    assert os_run.metadata["example_steps"] == 3
    assert db.task == "Insert a row ('Emily', 25) into the table Customers."
    assert db.steps[0].role == "system" and db.steps[0].text.endswith("Ok? Understood?")
    assert [c.name for c in db.tool_calls] == ["execute_mysql"]
