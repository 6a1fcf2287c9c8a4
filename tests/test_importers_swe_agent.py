"""SWE-agent .traj files (0.x and 1.x): shell actions as calls, edits on the open file, errors read
from observations, resolution from the SWE-bench harness report beside the run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from evolver.model import Message
from evolver.operations import with_operations
from skillforge import cli
from skillforge.errors import InvalidTrajectory
from skillforge.importers import parse_record, record_format
from skillforge.importers.files import read_file
from skillforge.importers.swe_agent import is_swe_agent_record
from skillforge.store import Store
from tests.conftest import load_run_file

FIXTURES = Path(__file__).parent / "fixtures" / "swe_agent"
RUN_1X = FIXTURES / "default__gpt-4o__t-0.00__p-1.00__c-3.00___swe_bench_lite_test"
SYMPY = RUN_1X / "sympy__sympy-20590" / "sympy__sympy-20590.traj"
DJANGO = RUN_1X / "django__django-11099" / "django__django-11099.traj"
RUN_0X = FIXTURES / "gpt4__SWE-bench_Lite__default__t-0.00__p-0.95__c-2.00__install-1"
MARSHMALLOW = RUN_0X / "marshmallow-code__marshmallow-1867.traj"


def _traj(steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A small 1.x .traj: the given steps, an issue in the first user message."""
    return {
        "environment": "main",
        "trajectory": steps,
        "history": [
            {"role": "system", "content": "You are a programmer.", "message_type": "system_prompt"},
            {"role": "user", "content": "Fix the bug in calc.add", "message_type": "user"},
        ],
        "info": {"exit_status": "submitted"},
        **extra,
    }


def _step(action: str, observation: str = "", open_file: str = "n/a") -> dict[str, Any]:
    return {
        "action": action,
        "observation": observation,
        "thought": "",
        "state": {"open_file": open_file, "working_dir": "/testbed"},
    }


def test_a_1x_traj_is_its_calls_in_order_with_results_errors_and_the_resolved_label():
    run = load_run_file(SYMPY)
    assert record_format(json.loads(SYMPY.read_bytes())) == "swe-agent"
    assert run.id == f"swe-agent:{RUN_1X.name}:sympy__sympy-20590"
    assert run.agent == "gpt-4o/swe-agent-1.x"
    assert run.task.startswith("Symbol instances have __dict__ since 1.7?")
    assert run.succeeded is True and run.outcome.reason == "submitted"
    assert run.metadata == {
        "format": "swe-agent", "source": "swe-agent", "task_id": "sympy__sympy-20590",
        "instance_id": "sympy__sympy-20590", "domain": "swe-bench", "run": RUN_1X.name,
        "model": "gpt-4o", "version": "1.x", "exit_status": "submitted", "cost": 0.42,
    }  # fmt: skip
    calls = run.tool_calls
    assert [c.name for c in calls] == [
        "str_replace_editor", "bash", "str_replace_editor", "bash", "str_replace_editor",
        "str_replace_editor", "bash", "bash", "bash",
    ]  # fmt: skip
    assert [c.id for c in calls] == [f"call_0{i}" for i in range(1, 10)]
    view, grep, create, repro, edit, test_edit, lint, tests, submit = calls
    assert view.arguments == {"command": "view", "path": "/testbed"}
    assert create.arguments["file_text"] == "import sympy\nprint(sympy.Symbol('s').__dict__)\n"
    assert edit.arguments == {
        "command": "str_replace",
        "path": "/testbed/sympy/core/_print_helpers.py",
        "old_str": "class Printable:\n",
        "new_str": "class Printable:\n    __slots__ = ()\n",
    }
    assert repro.arguments == {"command": "python reproduce.py"}
    assert tests.result == "........................\n24 passed in 0.41s"
    assert [c.error for c in calls] == [False, False, False, True, False, True, True, False, False]
    assert repro.error_text == "ModuleNotFoundError: No module named 'mpmath'"
    assert test_edit.error_text.startswith("No replacement was performed, old_str")
    assert lint.error_text == "/bin/bash: line 1: pyflakes: command not found"
    assert not grep.error  # hits quoting a traceback are no failure of grep
    assert not submit.error  # the patch is the result, whatever it says
    thoughts = [s.text for s in run.steps if isinstance(s, Message) and s.role == "assistant"]
    assert thoughts[0] == "Let me look at the repository first." and len(thoughts) == 9
    assert "api_key" not in run.model_dump_json()  # replay_config is read, never copied


def test_a_1x_traj_without_tool_calls_reads_its_action_strings():
    run = load_run_file(DJANGO)
    assert run.succeeded is False and run.outcome.reason == "submitted (exit_cost)"
    assert run.task.startswith("UsernameValidator allows trailing newline")  # the PR description
    view, edit, check = run.tool_calls
    path = "/testbed/django/contrib/auth/validators.py"
    assert view.arguments == {"command": "view", "path": path, "view_range": [1, 20]}
    assert edit.arguments == {
        "command": "str_replace",
        "path": path,
        "old_str": "regex = r'^[\\w.@+-]+$'",
        "new_str": "regex = r'\\A[\\w.@+-]+\\Z'",
    }
    assert view.id is None and not view.error and not edit.error
    assert check.error and check.error_text == "SyntaxError: EOL while scanning string literal"


def test_a_0x_traj_with_its_state_as_a_json_string():
    run = load_run_file(MARSHMALLOW)
    assert run.id == f"swe-agent:{RUN_0X.name}:marshmallow-code__marshmallow-1867"
    assert run.agent == "gpt4/swe-agent-0.x" and run.metadata["version"] == "0.x"
    assert run.task.startswith("TimeDelta serialization precision\nHi there!")  # not the demo
    assert run.task.endswith("it seems that `345` is correct.")  # the issue without instructions
    assert run.outcome is None  # submitted, but no harness report says whether it resolved
    assert run.metadata["exit_status"] == "submitted"
    calls = run.tool_calls
    assert [c.name for c in calls] == [
        "bash", "str_replace_editor", "bash", "bash", "bash", "str_replace_editor",
        "str_replace_editor", "bash", "bash", "bash", "str_replace_editor", "bash", "bash", "bash",
        "bash", "bash",
    ]  # fmt: skip
    assert calls[0].arguments == {"command": "create reproduce.py"}
    fields = "/marshmallow-code__marshmallow/src/marshmallow/fields.py"
    broken, fixed = calls[5], calls[6]
    assert fixed.arguments == {
        "command": "edit",
        "path": fields,  # a windowed edit changes the open file
        "start_line": 1475,
        "end_line": 1475,
        "new_str": "        return int(round(value.total_seconds() / base_unit.total_seconds()))",
    }
    assert broken.error and broken.error_text.startswith("Your proposed edit has introduced new")
    assert not fixed.error
    insert = calls[10]
    assert insert.arguments["command"] == "insert" and insert.arguments["insert_line"] == 870
    assert insert.arguments["path"] == "/marshmallow-code__marshmallow/tests/test_serialization.py"
    assert insert.arguments["new_str"].startswith("    def test_timedelta_rounding(self):\n")
    assert calls[1].arguments["path"] == "/marshmallow-code__marshmallow/reproduce.py"
    assert calls[4].result.startswith("[File: ") and not calls[4].error  # quotes a Traceback
    errors = [(i, c.error_text) for i, c in enumerate(calls) if c.error]
    assert errors == [(5, broken.error_text), (12, "Usage: goto <line>")]


def test_operations_of_imported_runs_name_edits_searches_and_runs():
    runs = (with_operations(load_run_file(p)) for p in (SYMPY, DJANGO, MARSHMALLOW))
    sympy, django, marshmallow = runs
    assert [c.name for c in sympy.tool_calls] == [
        "ls", "grep -r", "create source file", "python script", "edit source file",
        "edit test file", "pyflakes", "pytest", "submit",
    ]  # fmt: skip
    assert [c.name for c in django.tool_calls] == ["read file", "edit source file", "python -c"]
    assert [c.name for c in marshmallow.tool_calls] == [
        "create source file", "edit source file", "python script", "find files", "read file",
        "edit source file", "edit source file", "grep", "read test file", "goto",
        "edit test file", "scroll_down", "goto", "pytest", "rm", "submit",
    ]  # fmt: skip


def _copy(tmp_path: Path, source: Path, *where: str) -> Path:
    target = tmp_path.joinpath(*where)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)
    return target


def test_resolution_comes_only_from_a_harness_report_beside_the_run(tmp_path):
    instance = "marshmallow-code__marshmallow-1867"
    path = _copy(tmp_path, MARSHMALLOW, "runs", "my_run", f"{instance}.traj")  # 0.x: flat
    assert load_run_file(path).outcome is None
    report = path.parent / "results.json"
    report.write_text(json.dumps({"resolved": [instance], "applied": [instance]}))
    assert load_run_file(path).succeeded is True
    report.write_text(json.dumps({"resolved": ["other__other-1"]}))  # the run's whole evaluation
    assert load_run_file(path).succeeded is False
    report.write_text(  # an sb-cli / harness report that did not evaluate this instance
        json.dumps({"resolved_ids": ["a__a-1"], "unresolved_ids": ["b__b-2"], "error_ids": []})
    )
    assert load_run_file(path).outcome is None
    report.unlink()
    (tmp_path / "runs" / "gpt4.my_run.json").write_text(  # in the run folder's parent
        json.dumps({"resolved_ids": [], "unresolved_ids": [], "empty_patch_ids": [instance]})
    )
    run = load_run_file(path)
    assert run.succeeded is False and run.id == f"swe-agent:my_run:{instance}"
    (tmp_path / "runs" / "gpt4.my_run.json").write_text(
        json.dumps({instance: {"patch_successfully_applied": True, "resolved": True}})
    )  # a per-instance report.json
    assert load_run_file(path).succeeded is True
    (tmp_path / "runs" / "notes.json").write_text("[1, 2")  # not JSON: not a report
    assert load_run_file(path).succeeded is True


def test_a_1x_run_folder_holds_one_folder_per_instance(tmp_path):
    path = _copy(tmp_path, DJANGO, "out", "django__django-11099", "django__django-11099.traj")
    assert load_run_file(path).outcome is None
    (tmp_path / "out" / "results.json").write_text(
        json.dumps({"resolved_ids": ["django__django-11099"]})
    )
    run = load_run_file(path)
    assert run.succeeded is True and run.metadata["run"] == "out"
    assert run.id == "swe-agent:out:django__django-11099"


def test_without_its_path_a_run_has_no_label_and_an_id_from_its_model():
    run = load_run_file(SYMPY, source=None)
    assert run.outcome is None
    assert run.id == "swe-agent:gpt-4o:sympy__sympy-20590"  # replay_config names both
    bare = parse_record(json.loads(MARSHMALLOW.read_bytes()))  # 0.x names no instance
    assert bare.id.startswith("swe-agent:") and bare.metadata["task_id"] is None
    assert bare.id == parse_record(json.loads(MARSHMALLOW.read_bytes())).id  # stable


@pytest.mark.parametrize(
    ("action", "observation", "failed"),
    [
        ("ls /nope", "ls: cannot access '/nope': No such file or directory", True),
        ("python x.py", "python: can't open file '/testbed/x.py': [Errno 2] No such file", True),
        ("search_dir error", 'Found 3 matches for "error" in /testbed:\n/testbed/a.py (3)', False),
        ("grep -rn error src", "src/a.py:12:    raise ValueError('error: bad')\nError: x", False),
        ("python r.py", "Caught ValueError: x\nScript completed successfully, no errors.", False),
        ("python r.py", "Before\nTypeError: unsupported operand type(s)", True),
        ("search_dir foo", 'More than 100 files matched for "foo" in /testbed. Narrow it.', True),
        ("python long.py", "EXECUTION TIMED OUT", True),
        ("vim a.py", "Interactive operation 'vim' is not supported by this environment.", True),
        (
            "sleep 900",
            "The command 'sleep 900' was cancelled because it took more than 300 s",
            True,
        ),
        ("open nope.py", "File nope.py not found", True),
        ("create a.py", "Error: File 'a.py' already exists.", True),
        (
            "scroll_up",
            "[File: /testbed/a.py (9 lines total)]\n1:Traceback (most recent call last)",
            False,
        ),
        ("python -c 'print(1)'", "1", False),
        ("cd /testbed && grep -rn Traceback .", "a.py:3: Traceback (most recent call last)", False),
        ("cd /testbed && python r.py", "ok\nTraceback (most recent call last):\n  x", True),
        ("python r.py", "Parsed: 3\nResult: cannot convert 'x'\nDone", False),
        ("python r.py && mv a b", "Done\nmv: cannot stat 'a': No such file or directory", True),
        ("git apply fix.patch", "error: patch failed: a.py:3", True),
        ("rm x", "Your command ran successfully and did not produce any output.", False),
        ("submit", "Traceback (most recent call last):\n+raise KeyError", False),
    ],
)
def test_errors_are_read_from_the_observation(action: str, observation: str, failed: bool):
    [call] = parse_record(_traj([_step(action, observation)])).tool_calls
    assert call.error is failed
    assert call.result == observation


def test_edit_commands_name_the_open_file_or_none():
    steps = [
        _step("edit 3:4\n    return a + b\nend_of_edit", "File updated.", "/testbed/calc.py"),
        _step(
            "edit 'a - b' 'a + b' False", "Replaced 1 occurrences.", "/testbed/tests/test_calc.py"
        ),
        _step("insert 'import os' --line 1", "[File: /testbed/calc.py]", "/testbed/calc.py"),
        _step("append\n'doc'\nprint('done')\nend_of_append", "File updated."),  # nothing open
        _step("exit_cost", "Exited"),  # the harness ending the run
        _step("", ""),
    ]
    run = parse_record(_traj(steps))
    window, replace, insert, append = run.tool_calls
    assert window.arguments == {
        "command": "edit",
        "path": "/testbed/calc.py",
        "start_line": 3,
        "end_line": 4,
        "new_str": "    return a + b",
    }
    assert replace.arguments == {
        "command": "edit",
        "path": "/testbed/tests/test_calc.py",
        "old_str": "a - b",
        "new_str": "a + b",
    }
    assert insert.arguments == {
        "command": "insert",
        "path": "/testbed/calc.py",
        "insert_line": 1,
        "new_str": "import os",
    }
    assert append.arguments == {"command": "append", "new_str": "'doc'\nprint('done')"}
    ops = [c.name for c in with_operations(run).tool_calls]
    assert ops == ["edit source file", "edit test file", "edit source file", "edit file"]


def test_long_observations_and_texts_are_cut():
    observation = "x" * 30_000 + "\nValueError: late"
    edit = "edit 1:1\n" + "y" * 5_000 + "\nend_of_edit"
    long, edited = parse_record(_traj([_step("python a.py", observation), _step(edit)])).tool_calls
    assert len(long.result) < 10_100 and long.result.endswith("ValueError: late")
    assert long.error_text == "ValueError: late"
    assert len(edited.arguments["new_str"]) == 2_000


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d["trajectory"].insert(1, "python a.py"), "trajectory[1] is not an object"),
        (
            lambda d: d["trajectory"][0].update(action=["ls"]),
            "trajectory[0].action is not a string",
        ),
        (lambda d: d.update(history=[]), "no task"),
    ],
)
def test_a_malformed_traj_is_an_invalid_trajectory(change, reason):
    document = json.loads(MARSHMALLOW.read_bytes())
    change(document)
    with pytest.raises(InvalidTrajectory) as raised:
        parse_record(document)
    assert raised.value.reason.startswith(reason)


def test_detection_needs_the_three_parts():
    document = json.loads(SYMPY.read_bytes())
    assert is_swe_agent_record(document)
    for key in ("trajectory", "history", "info"):
        assert not is_swe_agent_record({k: v for k, v in document.items() if k != key})
    intercode_human = {"environment": "ic_bash", "query": "q", "trajectory": [], "info": {}}
    assert record_format(intercode_human) == "intercode"


def test_read_file_takes_a_traj_whole_and_a_run_folder(tmp_path):
    items = list(read_file(SYMPY))
    assert [r.id for r in items] == [f"swe-agent:{RUN_1X.name}:sympy__sympy-20590"]
    forced = list(read_file(MARSHMALLOW, "swe-agent"))
    assert forced[0].metadata["format"] == "swe-agent"


def test_skillforge_import_takes_a_folder_of_traj_files(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    where = ["--home", str(tmp_path / "var"), "--inbox", str(tmp_path / "inbox")]
    assert cli.main([*where, "import", str(FIXTURES)]) == 0
    out = capsys.readouterr().out
    # preds.json and the harness report are read as files too, and skipped as no runs
    assert "5 files: imported 3 runs into" in out and "skipped 2" in out
    assert cli.main([*where, "ingest", str(tmp_path / "inbox")]) == 0
    assert "3 trajectories stored" in capsys.readouterr().out
    with Store(tmp_path / "var" / "skillforge.db") as store:
        stored = {t.metadata["task_id"]: t.succeeded for t in store.trajectories()}
    assert stored == {
        "sympy__sympy-20590": True,
        "django__django-11099": False,
        "marshmallow-code__marshmallow-1867": None,
    }


def test_skillforge_ingest_takes_a_traj_file_named_on_the_command_line(capsys, tmp_path):
    where = ["--home", str(tmp_path / "var"), "--inbox", str(tmp_path / "inbox")]
    assert cli.main([*where, "ingest", str(SYMPY)]) == 0
    assert "1 trajectories stored" in capsys.readouterr().out
    with Store(tmp_path / "var" / "skillforge.db") as store:
        [run] = store.trajectories()
    assert run.metadata["task_id"] == "sympy__sympy-20590" and run.succeeded is True
