"""SWE-agent runs: `<output_dir>/<instance_id>/<instance_id>.traj` (1.x) or `<run>/<id>.traj` (0.x).

A .traj is one JSON object: `trajectory` (steps of thought, action, observation and `state`, a
dict in 1.x and a JSON string in 0.x), `history` (the chat, whose assistant items carry the
OpenAI `tool_calls` in 1.x), `info` (exit_status, submission, model_stats) and `replay_config`
(a JSON string: the model, and in 1.x the problem statement). The agent's only tool is a shell
that also runs SWE-agent's own commands; each step's action is one call, its observation the
result:

    action                                     call
    edit N:M / insert N / append + text        str_replace_editor {command, path: open file}
    edit 'search' 'replace' (edit_replace)     str_replace_editor {command, path, old_str, new_str}
    str_replace_editor view|create|... PATH    str_replace_editor {command, path, ...}
    open, goto, scroll_*, find_file, search_*, bash {command}: operations.py names them
    create, submit, python x.py, ls, grep ...

A windowed edit names no file: it changes the file open at the time (the step's
`state.open_file`), so that file is the call's path. Tool errors have no flag: a call failed
when its observation reads as one (a shell or Python error, SWE-agent's usage and refusal
messages, a proposed edit with syntax errors, a timeout). For commands that print file content
or search hits (open, grep, cat ...) only the first line is read, and a shell error counts on the
first or the last line only: code and script output that mention errors are no failure.

Resolution is not in the trajectory (`exit_status == "submitted"` only says a patch was
sent): `records_in_document` attaches `run` (the run folder), `instance_id` and `resolved` from
a SWE-bench harness report beside the run (`resolved_ids` or `resolved`, in the run folder or
its parent); without one, outcome is None.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from functools import lru_cache
from pathlib import Path
from typing import Any

from evolver.model import Trajectory, content_id

from ..errors import InvalidTrajectory
from .errortext import clip, head_and_tail, prints_file_content, shell_failure

FORMAT = "swe-agent"
DOMAIN = "swe-bench"
MAX_ARGUMENT_CHARS = 2_000
MAX_RESULT_CHARS = 10_000  # a file window is ~100 lines; a test run or a recursive ls far more
MAX_REPORT_BYTES = 8 << 20  # a report on all of SWE-bench is ~300 kB; larger files are not one
_EDITOR = "str_replace_editor"
_WINDOW_EDITS = frozenset({"edit", "insert", "append"})
_NUMBERS = frozenset({"view_range", "insert_line"})  # str_replace_editor's integer flags
_NOT_CHECKED = frozenset({"submit"})  # its observation is the patch, whatever it holds
_EXIT_ACTION = re.compile(r"^exit_\w+$")  # the harness ending the run, not the agent's action
_RANGE = re.compile(r"(\d+)\s*:\s*(\d+)")
_LINE = re.compile(r"(\d+)\b")
_END_MARK = re.compile(r"\n?[ \t]*end_of_(?:edit|insert|append)\s*\Z")
_ISSUE = re.compile(r"ISSUE:\n(.*?)\n+INSTRUCTIONS:", re.DOTALL)
PR_DESCRIPTION = re.compile(r"<pr_description>\s*(.*?)\s*</pr_description>", re.DOTALL)
SAFE_ID_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+@/-]{0,127}")
_ATTACHED = ("instance_id", "run", "resolved")  # what swe_agent_records adds to a record
_MISSED_IDS = (  # report keys listing instances evaluated and not resolved
    "unresolved_ids", "error_ids", "empty_patch_ids", "completed_ids", "unresolved",
    "no_generation", "generated", "applied", "no_apply", "install_fail", "reset_failed",
    "test_errored", "test_timeout", "with_logs",
)  # fmt: skip


def is_swe_agent_record(record: dict[str, Any]) -> bool:
    """A .traj object: a `trajectory` and a `history` list beside an `info` object."""
    return (
        isinstance(record.get("trajectory"), list)
        and isinstance(record.get("history"), list)
        and isinstance(record.get("info"), dict)
    )


def swe_agent_records(
    record: dict[str, Any], source_name: str | None = None
) -> list[dict[str, Any]]:
    """The run of a .traj file, with its run folder, instance id and resolved label attached."""
    if not source_name:
        return [record]
    path = Path(source_name)
    instance_id = _instance_id(_replay_config(record.get("replay_config"))) or path.stem
    return [{**record, **run_labels(path, path.stem, instance_id)}]


def run_labels(path: Path, file_id: str, instance_id: str) -> dict[str, Any]:
    """The instance id, run folder and resolved label of the run file `path` named `file_id`
    (without its suffix), in `<run>/<id>/<id>.<suffix>` or `<run>/<id>.<suffix>`: the resolved
    label from a harness report in the run folder or its parent, when one covers the instance."""
    nested = path.parent.name == file_id  # <output_dir>/<id>/<id>.traj
    run_dir = path.parent.parent if nested else path.parent
    attached: dict[str, Any] = {"instance_id": instance_id}
    if run_dir.name:
        attached["run"] = run_dir.name
    resolved = _resolved(instance_id, (run_dir, run_dir.parent))
    if resolved is not None:
        attached["resolved"] = resolved
    return attached


def from_swe_agent_record(record: dict[str, Any]) -> Trajectory:
    """One SWE-agent run: its shell actions (edits as editor calls); resolved as outcome."""
    config = _replay_config(record.get("replay_config"))
    task = _task(record, config)
    if not task:
        raise InvalidTrajectory("no task: the trajectory has no problem statement or user message")
    steps: list[dict[str, Any]] = [{"type": "message", "role": "user", "text": task}]
    call_ids = _CallIds(record["history"])
    open_file = ""
    shape = "1.x"
    for position, step in enumerate(record["trajectory"]):
        if not isinstance(step, dict):
            raise InvalidTrajectory(f"trajectory[{position}] is not an object")
        action = step.get("action", "")
        if not isinstance(action, str):
            raise InvalidTrajectory(f"trajectory[{position}].action is not a string")
        if isinstance(step.get("state"), str):
            shape = "0.x"
        thought = step.get("thought")
        if isinstance(thought, str) and thought.strip():
            steps.append({"type": "message", "role": "assistant", "text": thought})
        # state is read after the action ran (an edit leaves the open file as it was); a step
        # without one keeps the file of the step before
        state_file = _open_file(step.get("state"))
        open_file = open_file if state_file is None else state_file
        if action.strip() and not _EXIT_ACTION.match(action.strip()):
            steps.append(_call(action, step.get("observation"), open_file or None, call_ids))
    info = record["info"]
    instance_id = record.get("instance_id") or _instance_id(config)
    return swe_bench_trajectory(
        record,
        FORMAT,
        task,
        steps,
        instance_id=instance_id,
        model=_model(config),
        version=_version(info, shape),
    )


def swe_bench_trajectory(
    record: dict[str, Any],
    fmt: str,
    task: str,
    steps: list[dict[str, Any]],
    *,
    instance_id: Any,
    model: str | None,
    version: str | None,
    metadata: dict[str, Any] | None = None,
) -> Trajectory:
    """A SWE-bench agent's run as a trajectory: its id, its outcome from the harness report
    attached by `run_labels` (never from `exit_status`), and the metadata both SWE-agent and
    mini-swe-agent runs carry; `metadata` adds the format's own."""
    info = record["info"]
    run = record.get("run")
    exit_status = info.get("exit_status") if isinstance(info.get("exit_status"), str) else None
    resolved = record.get("resolved")
    stats = info.get("model_stats") if isinstance(info.get("model_stats"), dict) else {}
    data = {
        "id": _id(record, run or model, instance_id, fmt),
        "agent": "/".join(p for p in (model, f"{fmt}-{version}" if version else "") if p),
        "task": task,
        "steps": steps,
        "outcome": {"success": resolved, "reason": exit_status}
        if isinstance(resolved, bool)
        else None,
        "metadata": {
            "format": fmt,
            "source": fmt,
            "task_id": instance_id,
            "instance_id": instance_id,
            "domain": DOMAIN,
            "run": run,
            "model": model,
            "version": version,
            "exit_status": exit_status,
            "cost": stats.get("instance_cost"),
            **(metadata or {}),
        },
    }
    from . import validate  # late import: the package module imports this one

    return validate(data)


class _CallIds:
    """The OpenAI call ids of the history's actions, taken in order by matching action text."""

    def __init__(self, history: list[Any]) -> None:
        self.items = [
            (item["action"].strip(), item["tool_calls"][0].get("id"), item["tool_calls"][0])
            for item in history
            if isinstance(item, dict)
            and item.get("role") == "assistant"
            and not item.get("is_demo")
            and isinstance(item.get("action"), str)
            and isinstance(item.get("tool_calls"), list)
            and item["tool_calls"]
            and isinstance(item["tool_calls"][0], dict)
        ]
        self.next = 0

    def take(self, action: str) -> tuple[str | None, dict[str, Any]]:
        """The id and function of the history item for `action` (None, {} when none)."""
        wanted = action.strip()
        for index in range(self.next, len(self.items)):
            text, call_id, call = self.items[index]
            if text == wanted:
                self.next = index + 1
                function = call.get("function")
                return (
                    call_id if isinstance(call_id, str) and call_id else None,
                    function if isinstance(function, dict) else {},
                )
        return None, {}


def _call(
    action: str, observation: Any, open_file: str | None, call_ids: _CallIds
) -> dict[str, Any]:
    command = action.strip()
    word = command.split(None, 1)[0]
    rest = command[len(word) + 1 :]  # after one blank: an edit's text keeps its indentation
    call_id, function = call_ids.take(action)
    if word in _WINDOW_EDITS:
        name, arguments = _EDITOR, _window_edit(word, rest, open_file)
    elif word == _EDITOR:
        name, arguments = _EDITOR, _editor_arguments(rest, function)
    else:
        name, arguments = "bash", {"command": clip(command, MAX_ARGUMENT_CHARS)}
    call: dict[str, Any] = {"type": "tool_call", "name": name, "arguments": arguments}
    if call_id:
        call["id"] = call_id
    if observation is None:
        return call
    result = observation if isinstance(observation, str) else _json(observation)
    call["result"] = _cut(result)
    viewer = prints_file_content(command)
    why = None if word in _NOT_CHECKED else shell_failure(result, viewer=viewer)
    if why is not None:
        call["error"], call["error_text"] = True, why
    return call


def _window_edit(word: str, rest: str, open_file: str | None) -> dict[str, Any]:
    """`edit N:M` / `insert N` / `append` with their text, on the file open at the time."""
    arguments: dict[str, Any] = {"command": word}
    if open_file:
        arguments["path"] = open_file
    head = rest.lstrip(" \t")
    lines = _RANGE.match(head) if word == "edit" else None
    line = _LINE.match(head) if word == "insert" else None
    if lines:
        arguments["start_line"], arguments["end_line"] = int(lines[1]), int(lines[2])
        head = head[lines.end() :].lstrip(" \t").removeprefix("\n")  # the text's own line
    elif line:
        arguments["insert_line"] = int(line[1])
        head = head[line.end() :].lstrip(" \t").removeprefix("\n")
    body = _END_MARK.sub("", head)
    literal = lines or line or body != head  # a text block ended by end_of_<command>
    words = None if literal or body[:1] not in ("'", '"') else _quoted(body)
    if words and "--line" in words[:-1]:  # edit_replace: `insert 'text' --line N`
        at = words.index("--line")
        if words[at + 1].isdigit():
            arguments["insert_line"] = int(words[at + 1])
        del words[at : at + 2]
    if word == "edit" and not lines and words and len(words) >= 2:
        # edit_replace: `edit 'search' 'replace' [replace-all]`
        arguments["old_str"], arguments["new_str"] = (
            clip(w, MAX_ARGUMENT_CHARS) for w in words[:2]
        )
    elif body:
        arguments["new_str"] = clip(words[0] if words else body, MAX_ARGUMENT_CHARS)
    return arguments


def _editor_arguments(rest: str, function: dict[str, Any]) -> dict[str, Any]:
    """`str_replace_editor <command> <path> --flag value ...`, or the call's own JSON arguments."""
    given: dict[str, Any] = {}
    raw = function.get("arguments") if function.get("name") == _EDITOR else None
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        given = parsed if isinstance(parsed, dict) else {}
    elif isinstance(raw, dict):
        given = raw
    if not given:
        words = _quoted(rest) or rest.split()
        if words:
            given["command"] = words[0]
        if len(words) > 1 and not words[1].startswith("--"):
            given["path"] = words[1]
        flag = None
        for word in words[2:] if "path" in given else words[1:]:
            if word.startswith("--") and len(word) > 2:
                flag = word[2:]
                continue
            if flag is None:
                continue
            value: Any = int(word) if flag in _NUMBERS and word.isdigit() else word
            held = given.get(flag)  # `--view_range 1 20` takes two values
            given[flag] = (
                value if held is None else [*(held if isinstance(held, list) else [held]), value]
            )
    return {k: clip(v, MAX_ARGUMENT_CHARS) if isinstance(v, str) else v for k, v in given.items()}


def _task(record: dict[str, Any], config: dict[str, Any]) -> str | None:
    """The problem statement of replay_config (1.x), else the issue in the first user message."""
    statement = config.get("problem_statement")
    text = statement.get("text") if isinstance(statement, dict) else statement
    if isinstance(text, str) and text.strip():
        return text.strip()
    for item in record["history"]:
        if not isinstance(item, dict) or item.get("role") != "user" or item.get("is_demo"):
            continue
        content = message_text(item.get("content"))
        if not content.strip():
            continue
        found = _ISSUE.search(content) or PR_DESCRIPTION.search(content)
        return (found.group(1) if found else content).strip()
    return None


def message_text(content: Any) -> str:
    """A message's content: a string, or the text of its content blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)
        )
    return ""


def _replay_config(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _open_file(state: Any) -> str | None:
    """The file open after a step (`state.open_file`, in a dict in 1.x, a JSON string in 0.x):
    "" when none is, None when the state does not say."""
    if isinstance(state, str):
        try:
            state = json.loads(state)
        except ValueError:
            return None
    value = state.get("open_file") if isinstance(state, dict) else None
    if not isinstance(value, str):
        return None
    return "" if value.strip() in ("", "n/a", "None") else value.strip()


def _model(config: dict[str, Any]) -> str | None:
    """agent.model.name (1.x) or agent.model.model_name (0.x), when it reads as a model name."""
    agent = config.get("agent")
    model = agent.get("model") if isinstance(agent, dict) else None
    if not isinstance(model, dict):
        return None
    name = model.get("name", model.get("model_name"))
    return name if isinstance(name, str) and SAFE_ID_PART.fullmatch(name) else None


def _version(info: dict[str, Any], shape: str) -> str:
    """`1.x` or `0.x`: SWE-agent's own version when given, else the shape of its state."""
    given = info.get("swe_agent_version")
    if isinstance(given, str) and re.match(r"\d+\.", given):
        return given.split(".", 1)[0] + ".x"
    return shape


def _instance_id(config: dict[str, Any]) -> str | None:
    """The instance the run solved, from 1.x replay_config's problem statement id."""
    statement = config.get("problem_statement")
    value = statement.get("id") if isinstance(statement, dict) else None
    return value if isinstance(value, str) and value else None


def _id(record: dict[str, Any], run: Any, instance_id: Any, fmt: str = FORMAT) -> str:
    """`<format>:<run or model>:<instance>`, else a hash of the run as written (what
    `run_labels` attached left out, so a report appearing later keeps the id)."""
    parts = (run, instance_id)
    if all(isinstance(p, str) and SAFE_ID_PART.fullmatch(p) for p in parts):
        return f"{fmt}:{run}:{instance_id}"
    own = {k: v for k, v in record.items() if k not in _ATTACHED}
    return content_id(own, prefix=fmt)


def _resolved(instance_id: str, folders: tuple[Path, ...]) -> bool | None:
    """Whether the first harness report in `folders` that covers the instance resolved it."""
    for folder in folders:
        try:
            stat = folder.stat()
        except OSError:
            continue
        for report in _json_files(str(folder), stat.st_mtime_ns):
            try:
                size_and_time = os.stat(report)
            except OSError:
                continue
            if size_and_time.st_size > MAX_REPORT_BYTES:
                continue
            verdict = _verdict(
                _report(report, size_and_time.st_mtime_ns, size_and_time.st_size), instance_id
            )
            if verdict is not None:
                return verdict
    return None


@lru_cache(maxsize=64)
def _json_files(folder: str, _mtime: int) -> tuple[str, ...]:
    """The .json files directly in a folder, sorted (re-listed when the folder changes)."""
    try:
        with os.scandir(folder) as entries:
            return tuple(
                sorted(e.path for e in entries if e.name.endswith(".json") and e.is_file())
            )
    except OSError:
        return ()


# A report: resolved ids, the ids it evaluated (None: every instance of the run), and per
# instance verdicts of a `report.json` ({id: {"resolved": bool}}).
_Report = tuple[frozenset[str], frozenset[str] | None, dict[str, bool]]


@lru_cache(maxsize=64)
def _report(path: str, _mtime: int, _size: int) -> _Report | None:
    """A SWE-bench harness or sb-cli report (`resolved_ids`, `resolved`), or None if not one."""
    try:
        document = json.loads(Path(path).read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    resolved = document.get("resolved_ids", document.get("resolved"))
    if _ids(resolved) is not None:
        missed = [_ids(document.get(k)) for k in _MISSED_IDS]
        listed = [ids for ids in missed if ids is not None]
        covered = frozenset().union(_ids(resolved) or (), *listed) if listed else None
        return _ids(resolved) or frozenset(), covered, {}
    verdicts = {
        key: value["resolved"]
        for key, value in document.items()
        if isinstance(value, dict) and isinstance(value.get("resolved"), bool)
    }
    return (frozenset(), frozenset(), verdicts) if verdicts else None


def _verdict(report: _Report | None, instance_id: str) -> bool | None:
    if report is None:
        return None
    resolved, covered, verdicts = report
    if instance_id in verdicts:
        return verdicts[instance_id]
    if instance_id in resolved:
        return True
    if covered is None or instance_id in covered:
        return False
    return None


def _ids(value: Any) -> frozenset[str] | None:
    if isinstance(value, list) and all(isinstance(i, str) for i in value):
        return frozenset(value)
    return None


def _quoted(text: str) -> list[str] | None:
    """The shell words of `text`, or None when its quotes do not close."""
    try:
        return shlex.split(text)
    except ValueError:
        return None


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _cut(text: str, limit: int = MAX_RESULT_CHARS) -> str:
    return head_and_tail(text, limit)
