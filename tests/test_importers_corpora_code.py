"""Coding-agent corpora: InterCode logs (bash, SQL, Python, CTF), moatless-tools SWE-bench runs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from evolver.model import Message, ToolCall, Trajectory
from skillforge import cli
from skillforge.errors import InvalidTrajectory
from skillforge.importers import parse_record, record_format, records_in_document
from skillforge.importers.intercode import MAX_RESULT_CHARS
from skillforge.store import Store
from tests.conftest import CORPORA

INTERCODE = CORPORA / "intercode" / "data"
MOATLESS = CORPORA / "moatless-swebench-lite" / "evaluations"
GPT4_BASH = "/c/intercode/data/results/bash/gpt-4/ic_bash_multiturn_gpt-4_10_turns_fs_1.json"


def _runs(document: Any, source: str | None = None) -> list[Trajectory]:
    return [parse_record(r) for r in records_in_document(document, source_name=source)]


def _record(env: str, actions: list[str], observations: list[str], **extra: Any) -> dict:
    """An InterCode run shaped like the logs, shortened."""
    history = {
        "actions": actions,
        "observations": observations,
        "rewards": [0.0] * len(actions),
        "valid_action": extra.pop("valid", [True] * len(actions)),
        **extra.pop("history", {}),
    }
    record = {
        "environment": env,
        "dataset": extra.pop("dataset", "./data/nl2bash/nl2bash_fs_1.json"),
        "task_id": extra.pop("task_id", 3),
        "query": extra.pop("query", "Count the .txt files under /testbed"),
        "turn_history": history,
        "summary": {"max_reward": 1.0, "max_reward_idx": 1, "turns_taken": 2, "turns_max": 10},
    }
    return {**record, **extra}


# InterCode


def test_a_bash_log_becomes_one_run_per_index_named_by_its_path():
    run = _record(
        "ic_bash",
        ["ls /testbed | wc -l", "find /testbed -name '*.txt' | wc -l", "xxd -p /testbed/a"],
        ["9\n", "4\n", "/bin/bash: line 1: xxd: command not found\n"],
        valid=[True, False, True],
    )
    document = {"0": run, "7": {**run, "summary": {"max_reward": 0.33}}}
    first, second = _runs(document, GPT4_BASH)
    assert first.id == "intercode:bash:gpt-4:ic_bash_multiturn_gpt-4_10_turns_fs_1:0"
    assert second.id.endswith(":7") and first.agent == "gpt-4/multiturn_10_turns"
    assert first.task == "Count the .txt files under /testbed"
    assert isinstance(first.steps[0], Message) and first.steps[0].role == "user"
    calls = first.tool_calls
    assert [c.name for c in calls] == ["bash"] * 3
    assert calls[0].arguments == {"command": "ls /testbed | wc -l"} and calls[0].result == "9\n"
    assert [c.error for c in calls] == [False, True, True]  # valid_action false; the text
    assert calls[2].error_text == "/bin/bash: line 1: xxd: command not found"
    assert (first.succeeded, first.outcome.reward) == (True, 1.0)
    assert (second.succeeded, second.outcome.reward) == (False, 0.33)
    assert first.metadata["domain"] == "ic_bash/nl2bash_fs_1" and first.metadata["task_id"] == 3
    assert first.metadata["strategy"] == "multiturn_10_turns"
    assert first.metadata["source"] == "intercode" == record_format(document["0"])


@pytest.mark.parametrize(
    ("path", "model", "strategy"),
    [
        (GPT4_BASH, "gpt-4", "multiturn_10_turns"),
        ("r/results/sql/gpt-3.5/ic_sql_multiturn_gpt-3.5-1_turns_handicap.json", "gpt-3.5",
         "multiturn_1_turns_handicap"),
        ("r/results/bash/gpt-3.5/ic_bash_plan_solve_fs_2.json", "gpt-3.5", "plan_solve"),
        ("r/results/bash/gpt-3.5/ic_bash_react_10_turns_fs_4.json", "gpt-3.5", "react_10_turns"),
        # the gpt-3.5 folder holds a run the file name says is gpt-4's
        ("r/results/python/gpt-3.5/ic_python_multiturn_gpt-4_7_turns.json", "gpt-4",
         "multiturn_7_turns"),
        ("r/results/ctf/ic_ctf_gpt-4_25_turns.json", "gpt-4", "25_turns"),
        ("C:\\r\\results\\sql\\human\\ic_sql_multiturn_human_10_turns.json", "human",
         "multiturn_10_turns"),
    ],
)  # fmt: skip
def test_the_model_and_strategy_come_from_the_path(path, model, strategy):
    [run] = _runs({"0": _record("ic_sql", ["SELECT 1"], ["[(1,)]"])}, path)
    assert (run.metadata["model"], run.metadata["strategy"]) == (model, strategy)
    assert run.agent == f"{model}/{strategy}"


def test_react_thoughts_execute_and_submit_in_sql():
    record = _record(
        "ic_sql",
        ["execute[SELECT name FROM players]", "execute[DESCRIBE players]", "submit"],
        ["Error executing query: Unknown column 'name' in 'field list'", "[('pid',)]", "[]"],
        valid=[False, True, True],
        history={"thoughts": ["Select the names.", "", "Done."]},
        dataset="./data/spider/dev_spider.json",
        hardness="easy",
    )
    [run] = _runs({"0": record}, "x/results/sql/gpt-3.5/ic_sql_react_10_turns.json")
    kinds = [(s.type, getattr(s, "name", None) or getattr(s, "text", None)) for s in run.steps]
    assert kinds[1:] == [
        ("message", "Select the names."),
        ("tool_call", "sql"),
        ("tool_call", "sql"),
        ("message", "Done."),
        ("tool_call", "submit"),
    ]
    query, describe, submit = run.tool_calls
    assert query.arguments == {"query": "SELECT name FROM players"} and query.error
    assert query.error_text == "Error executing query: Unknown column 'name' in 'field list'"
    assert not describe.error and submit.arguments == {} and not submit.error
    assert run.metadata["domain"] == "ic_sql/dev_spider" and run.metadata["hardness"] == "easy"


def test_ctf_commands_are_unwrapped_and_the_flag_is_the_submitted_answer():
    record = _record(
        "ic_ctf",
        ['cmd /bin/bash -c "cat flag.py"', "python3 flag.py", "submit picoCTF{abc}"],
        ["print('x')\n", "Traceback (most recent call last):\n  ...\nKeyError: 1\n", "correct"],
        dataset="./data/ctf/ctf_test.json",
        task_id=0,
    )
    del record["turn_history"]["valid_action"]  # the 25-turn CTF log has none
    [run] = _runs({"0": record}, "x/results/ctf/ic_ctf_gpt-4_25_turns.json")
    cat, python, submit = run.tool_calls
    assert cat.name == python.name == "bash" and cat.arguments == {
        "command": '/bin/bash -c "cat flag.py"'
    }
    assert python.error and python.error_text == "Traceback (most recent call last):"
    assert submit.name == "submit" and submit.arguments == {"answer": "picoCTF{abc}"}
    assert run.metadata["domain"] == "ic_ctf/ctf_test"


@pytest.mark.parametrize(
    ("observation", "error"),
    [
        ("{'output': '', 'error': ''}", False),
        ("Test case did not pass. Please try again.", False),  # a 0 reward, not a tool error
        ("Failed 2/3 Test Cases. Please try again.", False),
        ("{'error': 'Error: invalid syntax (<string>, line 1)'}", True),
        ("Error executing action: invalid syntax (<unknown>, line 1)", True),
    ],
)
def test_python_errors_are_the_interpreters_not_failed_tests(observation, error):
    record = _record("ic_python", ["def f():\n    return 1"], [observation], valid=[None])
    [run] = _runs(
        {"0": record}, "x/results/python/gpt-3.5/ic_python_multiturn_gpt-3.5_7_turns.json"
    )
    [call] = run.tool_calls
    assert call.name == "python" and call.arguments == {"code": "def f():\n    return 1"}
    assert call.error is error


@pytest.mark.parametrize(
    ("observation", "error"),
    [
        ("ls: cannot access '/system': No such file or directory\n", True),
        ("/bin/bash: -c: line 2: syntax error: unexpected end of file\n", True),
        ("find: '/x': Permission denied\n3\n", True),
        ("/testbed/a.txt\n/testbed/no_such_file_or_directory.txt\n", False),
        ("", False),
    ],
)
def test_bash_stderr_reads_as_an_error(observation, error):
    [run] = _runs({"0": _record("ic_bash", ["ls"], [observation])}, GPT4_BASH)
    assert run.tool_calls[0].error is error


def test_a_blocked_reply_is_a_message_and_a_huge_observation_is_clipped():
    huge = "a\n" * 300_000 + "tail: the end\n"
    record = _record("ic_bash", ["ls -R /", "blocked"], [huge], valid=[True])  # 1 observation
    [run] = _runs({"0": record}, GPT4_BASH)
    [call] = run.tool_calls
    assert len(call.result) < MAX_RESULT_CHARS + 100 and "characters omitted" in call.result
    assert call.result.startswith("a\na\n") and call.result.endswith("tail: the end\n")
    assert isinstance(run.steps[-1], Message) and run.steps[-1].text.startswith("blocked")


def test_plan_and_solve_logs_human_sessions_and_runs_without_a_summary():
    plan = _record("ic_bash", ["ls"], ["a\n"], history={"steps": ["List the folder."]})
    del plan["dataset"]
    meta = {"data_path": "./data/nl2bash/nl2bash_fs_2.json", "env": "bash"}
    [run] = _runs(
        {"meta": meta, "logs": {"4": plan}}, "x/results/bash/gpt-3.5/ic_bash_plan_solve_fs_2.json"
    )
    assert run.id == "intercode:bash:gpt-3.5:ic_bash_plan_solve_fs_2:4"
    assert (
        run.metadata["domain"] == "ic_bash/nl2bash_fs_2" and run.steps[1].text == "List the folder."
    )
    human = {
        "environment": "ic_sql",
        "query_idx": 809,
        "query": "Which languages are spoken by only one country?",
        "gold": "SELECT ...",
        "reward": 1.0,
        "trajectory": [{"action": "show tables;", "observation": "('city',)('country',)"}],
    }
    [session] = _runs({"809": human}, "x/results/sql/human/ic_sql_multiturn_human_10_turns.json")
    assert session.agent == "human/multiturn_10_turns" and session.succeeded is True
    assert (session.metadata["domain"], session.metadata["task_id"]) == ("ic_sql/dev_spider", 809)
    assert session.tool_calls[0].arguments == {"query": "show tables;"}
    unscored = _record("ic_sql", ["SELECT 1"], ["[(1,)]"])
    del unscored["summary"]
    [run] = _runs({"0": unscored})
    assert run.outcome is None and run.id.startswith("intercode:")  # no path: a content hash


def test_task_files_are_not_claimed_and_a_whole_log_is_not_one_record():
    tasks = [{"query": "Count files", "gold": "ls | wc -l"}]
    assert records_in_document(tasks, "data/nl2bash/nl2bash_fs_4.json") == tasks
    with pytest.raises(InvalidTrajectory, match="unrecognised record"):
        parse_record(tasks[0])
    with pytest.raises(InvalidTrajectory, match="whole benchmark results document"):
        parse_record({"0": _record("ic_sql", ["SELECT 1"], ["[(1,)]"])})
    with pytest.raises(InvalidTrajectory, match="no task"):
        parse_record(_record("ic_sql", ["SELECT 1"], ["[(1,)]"], query=" "))


# moatless-tools

ISSUE = "UsernameValidator allows trailing newline in usernames\nDescription\n..."


def _v1() -> dict[str, Any]:
    """A v0.0.1 (`steps`) trajectory, shortened from django__django-11099 and -16820."""
    action = [
        (
            "search",
            {"query": "UsernameValidator regex", "file_pattern": "**/validators.py"},
            {
                "file_context": [
                    {
                        "file_path": "django/contrib/auth/validators.py",
                        "spans": [{"span_id": "ASCIIUsernameValidator", "tokens": 1333}],
                    }
                ],
                "message": "Found 1 code spans.",
            },
        ),
        (
            "identify",
            {
                "reasoning": "The regex is in ASCIIUsernameValidator.",
                "files_with_spans": [
                    {
                        "file_path": "django/contrib/auth/validators.py",
                        "span_ids": ["ASCIIUsernameValidator"],
                    }
                ],
            },
            {},
        ),
        (
            "request_for_change",
            {"description": "Use \\A and \\Z.", "file_path": "x.py", "span_id": "Nope"},
            {"response": "Span not found: Nope. Available spans: ASCIIUsernameValidator"},
        ),
        (
            "request_for_change",
            {
                "description": "Use \\A and \\Z.",
                "file_path": "django/contrib/auth/validators.py",
                "span_id": "ASCIIUsernameValidator",
            },
            {"response": "class ASCIIUsernameValidator(validators.RegexValidator):\n    ..."},
        ),
        (
            "search_replace",
            {
                "file_path": "django/contrib/auth/validators.py",
                "start_line": 8,
                "end_line": 15,
                "replacement_code": "x" * 5000,
            },
            {"diff": None, "updated": False, "error": None, "new_span_ids": None},
        ),
        (
            "reject",
            {"reason": "The code in the search tag is the same as in the replace tag."},
            None,
        ),
        (
            "specify_lines",
            {"thoughts": "Lines 8-9 hold the regex.", "start_line": 8, "end_line": 9},
            {"response": "    regex = r'^[\\w.@+-]+$'"},
        ),
        (
            "search_replace",
            {
                "file_path": "django/contrib/auth/validators.py",
                "start_line": 8,
                "end_line": 9,
                "replacement_code": "    regex = r'\\A[\\w.@+-]+\\Z'",
            },
            {
                "diff": "--- a\n+++ b\n-    regex = r'^'\n+    regex = r'\\A'",
                "updated": True,
                "error": None,
                "new_span_ids": [],
            },
        ),
        ("finish", {"reason": "The regex no longer accepts a trailing newline."}, None),
    ]
    steps = [
        {
            "name": "Loop",
            "actions": [{"name": n, "input": i, **({"output": o} if o is not None else {})}],
        }
        for n, i, o in action
    ]
    return {
        "name": "moatless",
        "input": {"problem_statement": ISSUE},
        "steps": steps,
        "output": {"message": "done"},
        "info": {
            "evaluation_name": "20240609_moatless_gpt4o_2",
            "instance_id": "django__django-11099",
            "duration": 11.4,
            "total_cost": 0.04,
            "submission": "diff --git ...",
        },
    }


def _v2() -> dict[str, Any]:
    """A v0.0.2 (`transitions`) trajectory, shortened from django__django-11564 and -11583."""
    state = {"model": "gpt-4o-2024-05-13", "temperature": 0.2}

    def transition(name: str, *actions: dict, **extra: Any) -> dict:
        return {"name": name, "state": {**state, **extra}, "actions": list(actions)}

    return {
        "name": "AgenticLoop",
        "initial_message": ISSUE,
        "transitions": [
            transition(
                "SearchCode",
                {
                    "action": {"thoughts": "Find the validators.", "file_pattern": "**/*.py"},
                    "retry_message": "You must provide at least one the search attributes",
                },
                {
                    "action": {
                        "thoughts": "Search by class.",
                        "class_name": "ASCIIUsernameValidator",
                    },
                    "output": {
                        "ranked_spans": [
                            {"file_path": "v.py", "span_id": "ASCIIUsernameValidator", "rank": 0}
                        ],
                        "query": None,
                        "class_name": "ASCIIUsernameValidator",
                    },
                },
            ),
            transition(
                "IdentifyCode",
                {
                    "action": {
                        "thoughts": "It is there.",
                        "identified_spans": [{"file_path": "v.py", "span_ids": ["A"]}],
                        "complete": True,
                    },
                    "output": {"message": "It is there."},
                },
            ),
            transition(
                "PlanToCode",
                {
                    "action": {
                        "thoughts": "Change the regex.",
                        "action": {
                            "instructions": "Use \\A and \\Z.",
                            "file_path": "v.py",
                            "span_id": "ASCIIUsernameValidator",
                        },
                    },
                    "output": {
                        "instructions": "Use \\A and \\Z.",
                        "file_path": "v.py",
                        "span_id": "ASCIIUsernameValidator",
                        "start_line": 8,
                        "end_line": 15,
                    },
                },
            ),
            transition(
                "EditCode",
                {
                    "action": {"content": "<replace>\n    regex = r'\\A'\n</replace>"},
                    "output": {
                        "message": "Applied the change to v.py.",
                        "diff": "--- v.py\n+++ v.py",
                        "lint_messages": [
                            {"lint_id": "C0301", "message": "Line too long (106/100)", "line": 3},
                            {"lint_id": "E0401", "message": "Unable to import 'x'", "line": 1},
                        ],
                    },
                },
                {
                    "action": {"content": "<replace>\n    f()\n</replace>"},
                    "output": {
                        "message": "Applied the change to v.py.",
                        "diff": "--- v.py\n+++ v.py",
                        "lint_messages": [
                            {"lint_id": "E0602", "message": "Undefined variable 'f'", "line": 9}
                        ],
                    },
                },
            ),
            transition(
                "PlanToCode",
                {
                    "action": {
                        "thoughts": "Done.",
                        "action": {"message": "Fixed the regex.", "finish": True},
                    },
                    "output": {"message": "Fixed the regex."},
                },
            ),
            transition("Finished", message="Fixed the regex."),
        ],
        "info": {
            "evaluation_name": "20240616_moatless_temp_0_2_gpt-4o-2024-05-13",
            "instance_id": "django__django-11099",
            "total_cost": 0.04,
            "submission": "diff",
        },
    }


def _run_folder(root: Path, run: str, document: dict, resolved: list[str] | None) -> Path:
    """`<root>/evaluations/<run>/trajs/<id>.json`, with a result.json when `resolved` is given."""
    trajs = root / "evaluations" / run / "trajs"
    trajs.mkdir(parents=True)
    if resolved is not None:
        (trajs.parent / "result.json").write_text(json.dumps({"resolved": resolved}))
    path = trajs / f"{document['info']['instance_id']}.json"
    path.write_text(json.dumps(document))
    return path


def _load(path: Path) -> Trajectory:
    [run] = _runs(json.loads(path.read_bytes()), str(path))
    return run


def test_v1_calls_are_named_by_operation_without_free_text(tmp_path):
    path = _run_folder(tmp_path, "20240609_moatless_gpt4o", _v1(), ["django__django-11099"])
    run = _load(path)
    assert run.id == "moatless:20240609_moatless_gpt4o:django__django-11099"
    assert run.agent == "gpt-4o/moatless-v0.0.1" and run.task == ISSUE and run.succeeded is True
    assert run.metadata == {
        "format": "moatless", "source": "moatless", "task_id": "django__django-11099",
        "domain": "swe-bench-lite", "run": "20240609_moatless_gpt4o", "version": "v0.0.1",
        "status": None, "cost": 0.04,
    }  # fmt: skip
    names = [c.name for c in run.tool_calls]
    assert names == [
        "search_code", "identify_code", "plan_code_change", "plan_code_change", "edit_code",
        "reject", "clarify_code_change", "edit_code", "finish",
    ]  # fmt: skip
    search, identify, refused, plan, no_op, reject, clarify, edit, finish = run.tool_calls
    assert (
        search.result
        == "Found 1 code spans.\ndjango/contrib/auth/validators.py: ASCIIUsernameValidator"
    )
    assert "reasoning" not in identify.arguments and identify.result is None
    assert "thoughts" not in clarify.arguments and clarify.arguments["start_line"] == 8
    texts = [s.text for s in run.steps if isinstance(s, Message)]
    assert texts[1:] == ["The regex is in ASCIIUsernameValidator.", "Lines 8-9 hold the regex."]
    assert len(no_op.arguments["replacement_code"]) == 2000  # long code is cut
    assert [c.error for c in run.tool_calls] == [
        False,
        False,
        True,
        False,
        True,
        True,
        False,
        False,
        False,
    ]
    assert refused.error_text.startswith("Span not found: Nope")
    assert no_op.error_text == "the edit changed nothing"
    assert reject.error_text.startswith("The code in the search tag is the same")
    assert edit.result.startswith("--- a") and finish.arguments == {
        "reason": "The regex no longer accepts a trailing newline."
    }


def test_v2_transitions_map_to_the_same_operations(tmp_path):
    path = _run_folder(tmp_path, "20240617_moatless_gpt-4o-2024-05-13", _v2(), [])
    run = _load(path)
    assert run.agent == "gpt-4o-2024-05-13/moatless-v0.0.2" and run.succeeded is False
    names = [c.name for c in run.tool_calls]
    assert names == [
        "search_code", "search_code", "identify_code", "plan_code_change", "edit_code", "edit_code",
        "finish",
    ]  # fmt: skip
    retried, search, identify, plan, styled, broken, finish = run.tool_calls
    assert retried.error and retried.error_text.startswith("You must provide at least one")
    assert search.arguments == {"class_name": "ASCIIUsernameValidator"} and not search.error
    assert search.result == "v.py: ASCIIUsernameValidator"
    assert identify.result is None  # the output only echoed its thoughts
    assert plan.arguments == {
        "instructions": "Use \\A and \\Z.",
        "file_path": "v.py",
        "span_id": "ASCIIUsernameValidator",
    }
    assert json.loads(plan.result) == {
        "file_path": "v.py",
        "span_id": "ASCIIUsernameValidator",
        "start_line": 8,
        "end_line": 15,
    }
    assert not styled.error  # style warnings and the linter's own import errors are no failure
    assert broken.error and broken.error_text == "E0602 Undefined variable 'f' (line 9)"
    assert finish.arguments == {"message": "Fixed the regex.", "finish": True} and not finish.error
    assert sum(c.name == "finish" for c in run.tool_calls) == 1  # the Finished state adds none
    assert run.steps[1].text == "Find the validators."


def test_a_rejected_state_is_a_failed_reject_call():
    document = _v2()
    document["transitions"][-1] = {
        "name": "Rejected",
        "state": {"model": "gpt-4o", "message": "Max transitions exceeded for state EditCode."},
        "actions": [],
    }
    del document["transitions"][-2]
    [run] = _runs(document)
    reject = run.tool_calls[-1]
    assert reject.name == "reject" and reject.error
    assert reject.error_text == "Max transitions exceeded for state EditCode."


def test_labels_come_from_result_json_else_labels_jsonl_else_none(tmp_path):
    run_name = "20240609_moatless_gpt4o"
    path = _run_folder(tmp_path, run_name, _v1(), None)
    assert _load(path).outcome is None
    rows = [
        {"run": run_name, "instance_id": "django__django-11099", "resolved": True},
        {"run": "other", "instance_id": "django__django-11099", "resolved": False},
    ]
    (tmp_path / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert _load(path).succeeded is True
    (path.parent.parent / "result.json").write_text(json.dumps({"resolved": ["x"]}))
    assert _load(path).succeeded is False  # the run's own result.json wins
    elsewhere = tmp_path / "elsewhere.json"  # not in <run>/trajs/: no run folder to read
    elsewhere.write_text(path.read_text())
    assert _load(elsewhere).outcome is None
    [alone] = _runs(_v1())  # no path: no run folder, no label; the id from info
    assert alone.outcome is None
    assert alone.id == "moatless:20240609_moatless_gpt4o_2:django__django-11099"


# the real corpora


@pytest.fixture(scope="module")
def intercode() -> list[Trajectory]:
    if not INTERCODE.is_dir():
        pytest.skip(f"shared corpus missing: {INTERCODE}")
    runs = []
    for path in sorted((INTERCODE / "results").rglob("*.json")):
        runs += _runs(json.loads(path.read_bytes()), str(path))
    return runs


def test_intercode_counts(intercode):
    """PROVENANCE counts top-level records with a summary: 16,409 (bash 1,602/461, sql
    14,474/5,344, python 236/139, ctf 97/40). The importer also reads the plan-and-solve files'
    `logs` (PROVENANCE took `{meta, logs}` for 2 records: 1,278 runs) and the 15 human sessions."""
    assert len(intercode) == 17_702 and len({r.id for r in intercode}) == 17_702
    env = Counter(r.metadata["domain"].split("/")[0] for r in intercode)
    won = Counter(r.metadata["domain"].split("/")[0] for r in intercode if r.succeeded)
    assert env == {"ic_bash": 1_802, "ic_sql": 15_567, "ic_python": 236, "ic_ctf": 97}
    assert won == {"ic_bash": 517, "ic_sql": 5_885, "ic_python": 139, "ic_ctf": 40}
    logs_files = {  # `{"meta", "logs"}` documents
        "ic_bash_plan_solve_fs_2", "ic_bash_plan_solve_fs_3", "ic_bash_plan_solve_fs_4",
        "ic_bash_plan_solve_refine_3_turns", "ic_sql_plan_solve",
        "ic_sql_plan_solve_refine_3_turns",
    }  # fmt: skip
    plan_solve = [r for r in intercode if r.metadata["log"]["file"] in logs_files]
    assert len(plan_solve) == 1_278 and sum(bool(r.succeeded) for r in plan_solve) == 56 + 528
    human = [r for r in intercode if r.agent == "human/multiturn_10_turns"]
    assert (len(human), sum(bool(r.succeeded) for r in human)) == (15, 13)
    by_agent = Counter(r.agent for r in intercode if r.metadata["domain"].startswith("ic_sql"))
    assert (
        by_agent["gpt-4/multiturn_10_turns"] == 1_034
        and by_agent["vicuna/multiturn_10_turns"] == 1_033
    )
    tasks: dict[tuple, set[str]] = {}
    for run in intercode:  # (domain, task_id) names one task across all files
        tasks.setdefault((run.metadata["domain"], run.metadata["task_id"]), set()).add(run.task)
    assert len(tasks) == 1_450 and all(len(texts) == 1 for texts in tasks.values())
    calls = Counter(c.name for r in intercode for c in r.tool_calls)
    assert set(calls) == {"bash", "sql", "python", "submit"} and calls["submit"] == 1_285
    assert all(r.outcome is not None for r in intercode)


@pytest.fixture(scope="module")
def moatless() -> list[Trajectory]:
    if not MOATLESS.is_dir():
        pytest.skip(f"shared corpus missing: {MOATLESS}")
    return [_load(p) for p in sorted(MOATLESS.glob("*/trajs/*.json"))]


def test_moatless_counts(moatless):
    runs = Counter((r.metadata["run"], r.agent, r.succeeded) for r in moatless)
    assert runs == {
        ("20240609_moatless_gpt4o", "gpt-4o/moatless-v0.0.1", True): 70,
        ("20240609_moatless_gpt4o", "gpt-4o/moatless-v0.0.1", False): 230,
        ("20240617_moatless_gpt-4o-2024-05-13", "gpt-4o-2024-05-13/moatless-v0.0.2", True): 74,
        ("20240617_moatless_gpt-4o-2024-05-13", "gpt-4o-2024-05-13/moatless-v0.0.2", False): 226,
    }
    assert len({r.id for r in moatless}) == 600
    assert all(r.metadata["task_id"] and r.tool_calls for r in moatless)  # sympy-20322 names none
    names = Counter(c.name for r in moatless for c in r.tool_calls)
    assert set(names) == {
        "search_code", "identify_code", "plan_code_change", "clarify_code_change", "edit_code",
        "finish", "reject",
    }  # fmt: skip
    errors = Counter(c.name for r in moatless for c in r.tool_calls if c.error)
    assert errors["reject"] == names["reject"] == 18 and errors["finish"] == 0
    assert all(isinstance(s, Message | ToolCall) for r in moatless for s in r.steps)


def test_skillforge_ingest_takes_one_file_of_each(capsys, tmp_path, monkeypatch):
    files = [
        INTERCODE / "results" / "ctf" / "ic_ctf_gpt-4_25_turns.json",
        MOATLESS / "20240609_moatless_gpt4o" / "trajs" / "django__django-11099.json",
    ]
    if not all(f.exists() for f in files):
        pytest.skip("shared corpora missing")
    monkeypatch.chdir(tmp_path)
    where = ["--home", str(tmp_path / "var"), "--inbox", str(tmp_path / "inbox")]
    code = cli.main([*where, "ingest", *map(str, files)])
    assert code == 0
    assert "5 trajectories stored, 0 already stored, 0 quarantined" in capsys.readouterr().out
    with Store(tmp_path / "var" / "skillforge.db") as store:
        stored = {t.id: t for t in store.trajectories()}
    assert "intercode:ctf:gpt-4:ic_ctf_gpt-4_25_turns:0" in stored
    assert stored["moatless:20240609_moatless_gpt4o:django__django-11099"].succeeded is True
