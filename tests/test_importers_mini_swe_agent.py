"""mini-swe-agent .traj.json files (text-based and tool-call runs): each command a bash call,
failures from the return code, resolution from the SWE-bench harness report beside the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evolver.model import Message
from evolver.operations import with_operations
from skillforge.errors import InvalidTrajectory
from skillforge.importers import parse_record, record_format
from skillforge.importers.files import read_file
from skillforge.importers.mini_swe_agent import is_mini_swe_agent_record
from tests.conftest import load_run_file

RUNS = Path(__file__).parent / "fixtures" / "mini_swe_agent" / "runs"
TEXT_RUN = RUNS / "sweb-verified_claude-sonnet-4_bash-only"
ASTROPY = TEXT_RUN / "astropy__astropy-12907" / "astropy__astropy-12907.traj.json"
TOOL_RUN = RUNS / "sweb-verified_gpt-5-mini_toolcall"
DJANGO = TOOL_RUN / "django__django-11133" / "django__django-11133.traj.json"


def _run(messages: list[dict[str, Any]], **info: Any) -> dict[str, Any]:
    """A small text-based run: the given messages after an issue."""
    return {
        "info": {"exit_status": "Submitted", "mini_version": "1.9.1", **info},
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Please solve this issue: Fix calc.add\n\nYou can "
             "execute bash commands and edit files to implement the necessary changes."},
            *messages,
        ],
        "trajectory_format": "mini-swe-agent-1",
    }  # fmt: skip


def _said(command: str) -> dict[str, Any]:
    return {"role": "assistant", "content": f"THOUGHT: go.\n\n```bash\n{command}\n```"}


def test_a_text_based_run_is_its_commands_with_results_failures_and_the_resolved_label():
    run = load_run_file(ASTROPY)
    assert record_format(json.loads(ASTROPY.read_bytes())) == "mini-swe-agent"
    assert run.id == f"mini-swe-agent:{TEXT_RUN.name}:astropy__astropy-12907"
    assert run.agent == "anthropic/claude-sonnet-4-20250514/mini-swe-agent-1.x"
    assert run.task.startswith("Modeling's `separability_matrix` does not compute")
    assert run.task.endswith("are not separable.")  # the PR description, no instructions
    assert run.succeeded is True and run.outcome.reason == "Submitted"
    assert run.metadata == {
        "format": "mini-swe-agent", "source": "mini-swe-agent",
        "task_id": "astropy__astropy-12907", "instance_id": "astropy__astropy-12907",
        "domain": "swe-bench", "run": TEXT_RUN.name,
        "model": "anthropic/claude-sonnet-4-20250514", "version": "1.x", "shape": "text",
        "exit_status": "Submitted", "cost": 0.21, "api_calls": 10, "format_errors": 1,
    }  # fmt: skip
    calls = run.tool_calls
    assert {c.name for c in calls} == {"bash"} and len(calls) == 8  # the format error ran nothing
    grep, view, write, repro, fix, tests, install, submit = calls
    assert grep.arguments == {"command": 'grep -rn "def separability_matrix" astropy/'}
    assert grep.result == "astropy/modeling/separable.py:66:def separability_matrix(transform):"
    assert write.result == "" and not write.error
    assert [c.error for c in calls] == [False, False, False, True, False, True, True, False]
    assert repro.error_text == "ModuleNotFoundError: No module named 'erfa'"
    assert tests.error_text == "1 failed, 250 passed in 31.2s"  # returncode 1, the summary line
    assert tests.result.startswith("FFFF") and "12345 characters elided" in tests.result
    assert (
        install.error_text == "timed out: pip install scipy"
        and install.result == "Collecting scipy"
    )
    assert submit.result.startswith("diff --git a/astropy/modeling/separable.py")  # the patch
    thoughts = [s.text for s in run.steps if isinstance(s, Message) and s.role == "assistant"]
    assert thoughts[0] == "THOUGHT: Let me find where separability_matrix is defined."
    assert "```" not in thoughts[-1]


def test_a_tool_call_run_matches_results_to_calls_by_id():
    run = load_run_file(DJANGO)
    assert run.id == f"mini-swe-agent:{TOOL_RUN.name}:django__django-11133"
    assert run.agent == "openai/gpt-5-mini/mini-swe-agent-2.x"
    assert run.task.startswith("HttpResponse doesn't handle memoryview objects\n")
    assert run.task.endswith("<memory at 0x7fcc47ab2648>'.")  # "Please solve this issue:" cut
    assert run.succeeded is False  # the report lists it unresolved
    assert run.metadata["shape"] == "tool-call" and run.metadata["format_errors"] == 1
    calls = run.tool_calls
    assert [c.id for c in calls] == ["call_a1", "call_a2", "call_b1", "call_c1", "call_d1",
                                     "call_e1", "call_f1"]  # fmt: skip
    grep, find, _, pytest_run, runtests, diff, submit = calls
    assert grep.result == "django/http/response.py:223:    def make_bytes(self, value):"
    assert find.result.startswith("django/http/__init__.py")  # answered before grep
    assert pytest_run.error and pytest_run.error_text.startswith("ERROR: file or directory")
    assert not runtests.error and not diff.error
    assert submit.result is None  # the run ended with it: its answer is the exit message


def test_operations_of_imported_runs_name_searches_edits_and_runs():
    text, tools = (with_operations(load_run_file(p)) for p in (ASTROPY, DJANGO))
    assert [c.name for c in text.tool_calls] == [
        "grep -r", "nl", "write file", "python script", "sed -i", "pytest", "pip install",
        "git add",
    ]  # fmt: skip
    assert [c.name for c in tools.tool_calls] == [
        "grep -r", "find", "sed -i", "pytest", "python test script", "git diff", "cat",
    ]  # fmt: skip


def test_resolution_comes_only_from_a_harness_report(tmp_path):
    instance = "astropy__astropy-12907"
    target = tmp_path / "my_run" / instance / f"{instance}.traj.json"
    target.parent.mkdir(parents=True)
    target.write_bytes(ASTROPY.read_bytes())
    run = load_run_file(target)
    assert run.outcome is None and run.metadata["exit_status"] == "Submitted"  # not a verdict
    assert run.id == f"mini-swe-agent:my_run:{instance}"
    (tmp_path / "my_run" / "report.json").write_text(json.dumps({"resolved_ids": [instance]}))
    assert load_run_file(target).succeeded is True
    (tmp_path / "my_run" / "report.json").write_text(json.dumps({"resolved": []}))
    assert load_run_file(target).succeeded is False


def test_without_its_path_a_run_is_named_by_its_model_or_its_content():
    run = load_run_file(ASTROPY, source=None)
    assert run.outcome is None and run.metadata["instance_id"] is None
    assert run.id.startswith("mini-swe-agent:")
    assert run.id == load_run_file(ASTROPY, source=None).id  # stable
    document = json.loads(ASTROPY.read_bytes())
    document["info"]["instance_id"] = "astropy__astropy-12907"
    named = parse_record(document)
    assert named.id == "mini-swe-agent:anthropic/claude-sonnet-4-20250514:astropy__astropy-12907"


@pytest.mark.parametrize(
    ("observation", "failed", "result"),
    [
        ("<returncode>0</returncode>\n<output>\nTraceback: ok\n</output>", False, "Traceback: ok"),
        ("<returncode>1</returncode>\n<output>\n</output>", True, ""),
        ("<returncode>2</returncode>\n<output>\ngrep: x: No such file or directory\n</output>",
         True, "grep: x: No such file or directory"),
        ("<exception>OSError: boom</exception>\n<returncode>-1</returncode>\n<output>\n</output>",
         True, ""),
    ],
)  # fmt: skip
def test_failures_come_from_the_return_code(observation: str, failed: bool, result: str):
    messages = [_said("grep -rn add ."), {"role": "user", "content": observation}]
    [call] = parse_record(_run(messages)).tool_calls
    assert call.error is failed and call.result == result


def test_a_format_error_is_no_call_and_a_later_user_message_is_kept():
    messages = [
        {"role": "assistant", "content": "I think so."},  # no code block
        {"role": "user", "content": "Your reply had no command (a custom template)."},
        _said("ls"),
        {"role": "user", "content": "<returncode>0</returncode>\n<output>\ncalc.py\n</output>"},
        {"role": "user", "content": "Also keep the tests green."},
    ]
    run = parse_record(_run(messages))
    [call] = run.tool_calls
    assert call.result == "calc.py" and run.metadata["format_errors"] == 1
    assert run.steps[-1].text == "Also keep the tests green."
    assert run.task == "Fix calc.add"


def test_detection_takes_mini_swe_agent_runs_only():
    document = json.loads(DJANGO.read_bytes())
    assert is_mini_swe_agent_record(document)
    del document["trajectory_format"]
    assert record_format(document) == "mini-swe-agent"  # info.mini_version says it
    del document["info"]["mini_version"]
    assert record_format(document) != "mini-swe-agent"
    chat = {"messages": [{"role": "user", "content": "hi"}], "info": {}}
    assert record_format(chat) == "openai-chat"


def test_a_malformed_run_is_an_invalid_trajectory():
    with pytest.raises(InvalidTrajectory, match="no task"):
        parse_record({"messages": [], "trajectory_format": "mini-swe-agent-1"})
    with pytest.raises(InvalidTrajectory, match=r"messages\[2\] is not an object"):
        parse_record(_run(["ls"]))


def test_read_file_takes_a_traj_json_whole():
    items = list(read_file(ASTROPY))
    assert [r.id for r in items] == [f"mini-swe-agent:{TEXT_RUN.name}:astropy__astropy-12907"]
    forced = list(read_file(DJANGO, "mini-swe-agent"))
    assert forced[0].metadata["format"] == "mini-swe-agent" and forced[0].succeeded is False
