"""Agent Data Protocol records: actions as calls with the observations that answer them, errors
read from observation text, outcome only from the dataset's `details` or a step reward.

The fixtures follow neulab/agent-data-protocol's pydantic schema (`schema/trajectory.py`,
`schema/version.py` SCHEMA_VERSION 1.2.0 with 1.1.0 and 1.0.0 supported,
`schema/action/{api,code,message}.py`, `schema/observation/{text,image,web}.py`): the 1.2.0
record links calls and results by `tool_call_id`; the 1.0.0 one uses the older
`"user_msg"` source and no ids; `resolved` is a string as SWE-Gym's converter writes it.
"""

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
from skillforge.importers import parse_line, parse_record, record_format
from skillforge.importers.files import Skipped, detect_format, read_file
from skillforge.store import Store

FIXTURES = Path(__file__).parent / "fixtures" / "adp"
SWE_GYM = FIXTURES / "swe-gym_std.json"  # a list: a 1.2.0 record and a 1.0.0 one
MIXED = FIXTURES / "mixed_std.jsonl"  # web, tau-bench, and a malformed line


def _records() -> list[dict[str, Any]]:
    return json.loads(SWE_GYM.read_bytes())


def _record(*content: Any, **details: Any) -> dict[str, Any]:
    """A small 1.2.0 record: a task, then the given items."""
    task = {"class_": "text_observation", "source": "user", "content": "Fix calc.add"}
    return {"schema_version": "1.2.0", "id": "calc_1", "content": [task, *content],
            "details": details}  # fmt: skip


def _bash(command: str, call_id: str | None = None, **extra: Any) -> dict[str, Any]:
    item = {"class_": "code_action", "language": "bash", "content": command, "description": None}
    return {**item, **({"tool_call_id": call_id} if call_id else {}), **extra}


def _env(text: str, call_id: str | None = None, **extra: Any) -> dict[str, Any]:
    item = {"class_": "text_observation", "source": "environment", "content": text}
    return {**item, **({"tool_call_id": call_id} if call_id else {}), **extra}


def test_calls_take_the_results_with_their_ids_and_errors_from_the_text():
    run = parse_record(_records()[0])
    assert record_format(_records()[0]) == "adp"
    assert run.id == "adp:swe-gym:pandas-dev__pandas-51401:run-1"
    assert run.task.startswith("<uploaded_files>") and run.task.endswith("</pr_description>")
    assert run.agent is None
    view, grep, tests, script, diff = run.tool_calls
    assert view.name == "str_replace_editor" and view.id == "call_000001"
    assert view.arguments == {
        "command": "view", "path": "/workspace/pandas-dev__pandas__2.0/pandas/utils.py",
    }  # fmt: skip
    assert view.error and view.error_text.startswith("ERROR: Invalid `path` parameter")
    # call_000003 was answered before call_000002: each took the result with its own id
    assert grep.result.startswith("7225:    def min(") and not grep.error
    assert tests.id == "call_000003" and tests.result.startswith("F.\nFAILED")
    assert tests.error_text == "AttributeError: 'ArrowStringArray' object has no attribute 'min'"
    assert script.name == "python" and script.arguments["code"].startswith("import pandas")
    assert diff.result.startswith("diff --git") and not diff.error  # a diff that mentions errors
    said = [s.text for s in run.steps if isinstance(s, Message)]
    assert said[:3] == [
        "Let me look at the helpers first.", "Find Index.min.", "And run the tests that cover it.",
    ]  # fmt: skip
    assert said[-1] == "<finish> I have successfully completed the task. </finish>"
    assert not any("helpful assistant" in text for text in said)  # the prompt before the task
    assert run.succeeded is False  # details.resolved "False", not the agent's "<finish>"
    assert run.metadata == {
        "format": "adp", "source": "adp", "task_id": "pandas-dev__pandas-51401",
        "adp_id": "pandas-dev__pandas-51401", "dataset": "swe-gym", "schema_version": "1.2.0",
        "outcome_from": "details.resolved", "skipped_items": 0, "example_steps": 0,
    }  # fmt: skip


def test_code_actions_are_shell_and_python_calls_whose_operations_resolve():
    resolved = with_operations(parse_record(_records()[0]))
    assert [c.name for c in resolved.tool_calls] == [
        "read file", "grep", "pytest", "python exec", "git diff",
    ]  # fmt: skip
    record = _record(
        {"class_": "code_action", "language": "shell", "content": "git diff --stat",
         "description": None},
        {"class_": "code_action", "language": "ipython", "content": "!pip install pyyaml",
         "description": None},
        {"class_": "code_action", "language": "sql", "content": "SELECT name FROM users",
         "description": None},
        {"class_": "code_action", "language": "javascript", "content": "console.log(1)",
         "description": None},
    )  # fmt: skip
    calls = parse_record(record).tool_calls
    assert [(c.name, *c.arguments) for c in calls] == [
        ("bash", "command"), ("python", "code"), ("sql", "code"), ("javascript", "code"),
    ]  # fmt: skip
    assert [c.name for c in with_operations(parse_record(record)).tool_calls] == [
        "git diff", "pip install", "sql select", "javascript",
    ]  # fmt: skip


def test_an_older_record_reads_user_msg_and_takes_the_next_observation_as_result():
    run = parse_record(_records()[1])
    assert run.id == "adp:agenttuning_os:agenttuning_os_12"
    assert run.task == "How many .txt files are there under /data?"  # source "user_msg"
    count, find = run.tool_calls
    assert count.name == find.name == "bash"  # "sh" is a shell too
    assert count.id is None and count.error
    assert count.error_text == "ls: cannot access '/data': No such file or directory"
    assert find.result == "7" and not find.error
    assert [c.name for c in with_operations(run).tool_calls] == ["ls", "find"]
    assert run.outcome is None and run.metadata["outcome_from"] is None  # details say nothing
    assert run.metadata["schema_version"] == "1.0.0"


@pytest.mark.parametrize(
    ("details", "last", "success", "reward", "given_by"),
    [
        ({"resolved": True}, {}, True, None, "details.resolved"),
        ({"resolved": "true"}, {}, True, None, "details.resolved"),
        ({"success": False}, {}, False, None, "details.success"),
        ({"succeeded": 1}, {}, True, None, "details.succeeded"),
        ({"reward": 1.0}, {}, True, 1.0, "details.reward"),
        ({"reward": 0}, {"reward": 1.0}, False, 0.0, "details.reward"),  # details first
        ({"reward": "0.5"}, {}, False, 0.5, "details.reward"),
        ({}, {"reward": 1.0}, True, 1.0, "step reward"),
        ({"resolved": "maybe", "reward": None}, {}, None, None, None),
        ({}, {}, None, None, None),
    ],
)  # fmt: skip
def test_the_outcome_comes_from_details_or_the_last_step_reward(
    details, last, success, reward, given_by
):
    done = {"class_": "message_action", "content": "<finish> I did it! </finish>", **last}
    run = parse_record(_record(_bash("pytest", "c1"), _env("1 passed", "c1"), done, **details))
    assert run.succeeded is success
    assert (run.outcome.reward if run.outcome else None) == reward
    assert run.metadata["outcome_from"] == given_by


def test_web_and_image_observations_are_kept_as_short_results():
    web, tau, broken = list(read_file(MIXED))
    assert web.id == "adp:mind2web:mind2web_3" and web.succeeded is True  # the step reward
    shown = web.steps[0]  # the page before any action: what the environment showed
    assert isinstance(shown, Message) and shown.role == "user"
    assert shown.text.startswith("url: https://www.united.com/en/us\n[1] RootWebArea")
    typed, clicked = web.tool_calls
    assert typed.arguments == {"bid": "12", "text": "Pittsburgh"}
    assert typed.result.endswith("textbox 'From' value='Pittsburgh'")
    assert clicked.result == "[image: screenshots/mind2web_3_2.png]"
    tree = "\n".join(f"[{i}] link 'item {i}'" for i in range(2000))
    page = {
        "class_": "web_observation",
        "tool_call_id": "c1",
        "html": "<html>" * 5000,
        "axtree": tree,
        "url": None,
        "image_observation": None,
        "viewport_size": None,
    }
    goto = {"class_": "api_action", "function": "goto", "kwargs": {}, "tool_call_id": "c1"}
    [call] = parse_record(_record(goto, page)).tool_calls  # fmt: skip
    assert call.result.startswith("[web page]\n[0] link") and len(call.result) < 2_100
    assert tau.succeeded is False and tau.outcome.reward == 0.0
    assert tau.tool_calls[0].error_text == "Error: user not found"
    assert broken == Skipped(str(MIXED), 3, "content[1] is not an object")


def test_read_file_detects_adp_in_a_json_list_and_in_jsonl_lines():
    assert detect_format(SWE_GYM) == detect_format(MIXED) == "adp"
    runs = list(read_file(SWE_GYM))
    assert [r.id for r in runs] == [
        "adp:swe-gym:pandas-dev__pandas-51401:run-1", "adp:agenttuning_os:agenttuning_os_12",
    ]  # fmt: skip
    forced = list(read_file(SWE_GYM, "adp"))
    assert [r.id for r in forced] == [r.id for r in runs]
    line = MIXED.read_bytes().splitlines()[1]  # the inbox takes a record per line
    assert parse_line(line).id == "adp:tau-bench:tau-bench_retail_7"


def test_one_record_as_a_whole_json_file(tmp_path):
    path = tmp_path / "one.json"
    path.write_text(json.dumps(_records()[1]))
    [run] = read_file(path)
    assert run.id == "adp:agenttuning_os:agenttuning_os_12"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"schema_version": "2.0.0"}, "unsupported ADP schema_version '2.0.0'"),
        ({"details": ["resolved"]}, "details is not an object"),
        ({"content": [{"class_": "message_action", "content": "hi"}]}, "no task"),
        ({"content": [{"class_": "text_observation", "source": "user", "content": "t"}, 7]},
         r"content\[1\] is not an object"),
        ({"content": [{"class_": "text_observation", "source": "user", "content": "t"},
                      {"function": "ls"}]}, r"content\[1\] has no class_"),
        ({"content": [{"class_": "text_observation", "source": "user", "content": "t"},
                      {"class_": "api_action", "function": "ls", "kwargs": "-la"}]},
         r"content\[1\]\.kwargs is not an object"),
        ({"content": [{"class_": "text_observation", "source": "user", "content": "t"},
                      {"class_": "api_action", "kwargs": {}}]},
         r"content\[1\]\.function is not a name"),
        ({"content": [{"class_": "text_observation", "source": "user", "content": "t"},
                      {"class_": "code_action", "language": "bash", "content": None}]},
         r"content\[1\] needs a language and content"),
        ({"content": [{"class_": "text_observation", "source": "robot", "content": "t"}]},
         r"content\[0\]\.source 'robot' is not user, environment or agent"),
        ({"content": [{"class_": "text_observation", "source": "user", "content": ["t"]}]},
         r"content\[0\]\.content is not a string"),
    ],
)  # fmt: skip
def test_a_malformed_record_is_an_invalid_trajectory_with_its_reason(change, reason):
    record = {**_records()[0], **change}
    assert record_format(record) == "adp"
    with pytest.raises(InvalidTrajectory, match=reason):
        parse_record(record)


def test_detection_needs_content_items_with_a_class():
    assert record_format({"id": "x", "content": ["hello"]}) != "adp"
    assert record_format({"id": "x", "content": "hello"}) != "adp"
    assert record_format({"messages": [{"role": "user", "content": "hi"}]}) == "openai-chat"
    unversioned = {**_records()[1]}  # ADP's older sample files carry no schema_version
    del unversioned["schema_version"]
    assert parse_record(unversioned).id == "adp:agenttuning_os:agenttuning_os_12"


def test_items_of_unknown_classes_are_counted_and_ids_fall_back_to_a_hash():
    record = _record({"class_": "video_observation", "content": "clip.mp4"})
    record["id"] = "calc 1"  # not a plain id
    run = parse_record(record)
    assert run.metadata["skipped_items"] == 1 and run.tool_calls == []
    assert run.id.startswith("adp:") and run.id == parse_record(record).id  # stable
    assert parse_record(_record()).id == "adp:calc_1"  # no dataset


def test_a_user_observation_with_a_call_id_is_that_calls_result():
    # converters before 1.2.0 wrote some tool results as source "user" (tool_call_links.py
    # moves those to "environment"); one with the call's id answers the call
    result = {"class_": "text_observation", "source": "user", "content": "ok", "tool_call_id": "c1"}
    run = parse_record(_record(_bash("make", "c1"), result, _env("later feedback")))
    [call] = run.tool_calls
    assert call.result == "ok" and run.steps[-1].text == "later feedback"


def test_skillforge_import_reads_adp_files(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    samples = tmp_path / "samples"
    shutil.copytree(FIXTURES, samples)
    where = ["--home", str(tmp_path / "var"), "--inbox", str(tmp_path / "inbox")]
    assert cli.main([*where, "import", str(samples)]) == 0
    out = capsys.readouterr().out
    assert "3 files: imported 8 runs into" in out and "skipped 1" in out
    assert "content[1] is not an object" in out
    assert cli.main([*where, "ingest", str(tmp_path / "inbox")]) == 0
    with Store(tmp_path / "var" / "skillforge.db") as store:
        stored = {t.id: t.succeeded for t in store.trajectories()}
    assert stored == {
        "adp:swe-gym:pandas-dev__pandas-51401:run-1": False,
        "adp:agenttuning_os:agenttuning_os_12": None,
        "adp:mind2web:mind2web_3": True,
        "adp:tau-bench:tau-bench_retail_7": False,
        "adp:alfworld_1": None, "adp:os_7": None, "adp:webshop_3": None, "adp:chat_1": None,
    }  # fmt: skip


AGENTBENCH = FIXTURES / "agentbench_shapes_std.json"  # shapes of neulab's real samples


def _agentbench() -> list[Any]:
    return [i for i in read_file(AGENTBENCH) if not isinstance(i, Skipped)]


def test_any_1x_schema_version_is_read():
    """1.3.1 and 1.5.0 records (most real samples) were all rejected as unsupported."""
    runs = _agentbench()
    assert [r.metadata["schema_version"] for r in runs] == ["1.5.0", "1.3.1", None, "1.3.1"]


def test_rules_the_agent_acknowledges_are_a_system_message_and_the_task_follows():
    alfworld, _, webshop, _ = _agentbench()
    assert alfworld.task.startswith("Here is your task.")
    first = alfworld.steps[0]
    assert isinstance(first, Message) and first.role == "system"
    assert first.text.startswith("Interact with a household")
    said = [s.text for s in alfworld.steps if isinstance(s, Message)]
    assert "OK. I'll follow your instructions." not in said
    go, take = alfworld.tool_calls
    assert not go.error and take.result == "Nothing happened."
    assert webshop.task.startswith("WebShop [SEP] Instruction:")


def test_an_ok_not_followed_by_a_user_text_is_a_reply_and_the_task_stays():
    chat = _agentbench()[3]
    assert chat.task == "Rename the job to a short uuid."
    said = [s.text for s in chat.steps if isinstance(s, Message)]
    assert said == [
        "OK, looking at the job naming code.", "I replaced the hash with a short uuid.",
        "Inline it, no helper.",
    ]  # fmt: skip
    assert chat.outcome is None  # session_success is a 0-100 score, not an outcome


def test_a_solved_example_before_a_new_problem_is_left_out():
    os_run = _agentbench()[1]
    assert os_run.task == "How many .log files are under /var?"
    (find,) = os_run.tool_calls
    assert find.arguments == {"command": "find /var -name '*.log' | wc -l"} and find.result == "4"
    assert os_run.metadata["example_steps"] == 3  # thought, call, answer
    assert [c.name for c in with_operations(os_run).tool_calls] == ["find"]


def test_user_sourced_output_right_after_a_call_without_id_is_its_result():
    webshop = _agentbench()[2]
    search, buy = webshop.tool_calls
    assert search.result.endswith("$8.99") and buy.result.startswith("Your implementation")
    said = [s.text for s in webshop.steps if isinstance(s, Message) and s.role == "user"]
    assert said == []


def test_a_generic_tool_is_a_call_of_the_tool_it_names():
    (search,) = _agentbench()[3].tool_calls
    assert search.name == "WebSearch" and search.arguments == {"query": "python short uuid"}
