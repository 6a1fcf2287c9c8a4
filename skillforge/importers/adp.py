"""Agent Data Protocol trajectories (`neulab/agent-data-protocol`, schema 1.x: 1.0.0 to 1.5.0 seen).

A record is `{schema_version, id, content, details}`: `content` is the run in order, each item
an action or an observation named by its `class_`:

    api_action      {function, kwargs}     a call of `function` with `kwargs` as its arguments
    code_action     {language, content}    bash/sh/shell: a `bash` call {command}; python,
                                           ipython: a `python` call {code}; any other language:
                                           a call named after it {code}
    message_action  {content}              what the agent said
    text_observation {content, source}     from the user: the task (the first), then messages;
                                           from the environment: a call's result
    image_observation, web_observation     a result too, kept as a short text (path, url and a
                                           clipped accessibility tree)

An action's `description` is its thought (an assistant message before it). A result is the
observation with the call's `tool_call_id` (1.1.0 on), else the next environment observation,
or a user one that comes right after the call (WebShop and SWE-smith write tool output as the
user's). `generic_tool` {tool_name, tool_input} is read as a call of `tool_name`.

The task is the first user text, but AgentBench-style records open with the harness's rules
that the agent acknowledges ("Ok.") before the user gives the task: those rules are a system
message and the task is the text after. AgentBench OS records hold a solved example first: a
user text "Now, I will start a new problem ..." restarts the run, the steps before it left out.
Observations carry no error flag: a result reads as a failure by its text, a shell call's by
the rules the SWE-agent importer uses. `source` drifted across versions ("user_msg"/"agent"
before "user"/"assistant"); both spellings are read. The outcome is dataset-specific: `details`
`resolved`, `success` or `succeeded` (a bool, or its string as some converters wrote it) or
`reward`; else the per-step `reward` of the last item; else unknown. Never the agent's own
closing message (converters append a canned "<finish> I did it! </finish>").
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from evolver.model import Trajectory, content_id

from ..errors import InvalidTrajectory
from .errortext import (
    clip,
    error_summary,
    head_and_tail,
    looks_like_error,
    prints_file_content,
    shell_failure,
)
from .swe_agent import SAFE_ID_PART

FORMAT = "adp"
SUPPORTED_MAJOR = "1"  # minor versions add optional fields; 1.3.1 and 1.5.0 are in the wild
MAX_CODE_CHARS = 4_000
MAX_RESULT_CHARS = 10_000
MAX_PAGE_CHARS = 2_000  # a web page's accessibility tree: its start says where the agent is
_SHELL_LANGUAGES = frozenset({"bash", "sh", "shell", "zsh"})
_PYTHON_LANGUAGES = frozenset({"python", "ipython", "python3", "py"})
# Tools whose "command" argument is a shell command line (read by the shell-output rules).
_SHELL_TOOLS = frozenset(
    {"bash", "sh", "shell", "zsh", "execute_bash", "run_command", "run_shell_command",
     "exec_command", "terminal"}
)  # fmt: skip
_USER = frozenset({"user", "user_msg"})
_AGENT = frozenset({"agent", "assistant"})
_SOURCES = ("user", "user_msg", "environment", "agent", "assistant", "system")
_OUTCOME_FLAGS = ("resolved", "success", "succeeded")
_ACKNOWLEDGEMENT = re.compile(r"\s*ok\b", re.IGNORECASE)  # "Ok.", "OK. I'll follow your ..."
MAX_ACKNOWLEDGEMENT_CHARS = 100
_RESTART = re.compile(r"\s*Now, I will start a new problem\b.*?My problem is:\s*", re.DOTALL)
GENERIC_TOOL = "generic_tool"  # ADP's wrapper of a tool it has no name for


def is_adp_record(record: dict[str, Any]) -> bool:
    """An ADP record: a `content` list of items named by `class_`."""
    content = record.get("content")
    return isinstance(content, list) and any(
        isinstance(item, dict) and isinstance(item.get("class_"), str) for item in content
    )


def from_adp_record(record: dict[str, Any]) -> Trajectory:
    """One ADP record: its actions as calls with their observations; outcome from `details`."""
    version = record.get("schema_version")
    if version is not None and str(version).split(".")[0] != SUPPORTED_MAJOR:
        raise InvalidTrajectory(
            f"unsupported ADP schema_version {version!r}: expected {SUPPORTED_MAJOR}.x"
        )
    details = record.get("details", {})
    if not isinstance(details, dict):
        raise InvalidTrajectory("details is not an object")
    run = _Run()
    for position, item in enumerate(record["content"]):
        run.add(position, item)
    if run.task is None:
        raise InvalidTrajectory("no task: the record has no text_observation from the user")
    outcome, outcome_from = _outcome(details, record["content"])
    record_id = record.get("id")
    dataset = details.get("dataset") if isinstance(details.get("dataset"), str) else None
    data = {
        "id": _id(record, record_id, dataset, details.get("run_id")),
        "task": run.task,
        "steps": run.steps,
        "outcome": outcome,
        "metadata": {
            "format": FORMAT,
            "source": FORMAT,
            "task_id": record_id,
            "adp_id": record_id,
            "dataset": dataset,
            "schema_version": version,
            "outcome_from": outcome_from,
            "skipped_items": run.skipped,
            "example_steps": run.example_steps,
        },
    }
    from . import validate  # late import: the package module imports this one

    return validate(data)


def code_call(language: str, code: str) -> tuple[str, dict[str, Any]]:
    """The tool and arguments of a `code_action`, named as the operations layer resolves
    shell and Python tools: bash {command}, python {code}, else the language {code}."""
    lowered = language.strip().lower()
    code = clip(code, MAX_CODE_CHARS)
    if lowered in _SHELL_LANGUAGES:
        return "bash", {"command": code}
    if lowered in _PYTHON_LANGUAGES:
        return "python", {"code": code}
    return (lowered or "code"), {"code": code}


def is_acknowledgement(text: str) -> bool:
    """An agent's short "Ok." to the harness's rules, before the user gives the task."""
    return len(text) <= MAX_ACKNOWLEDGEMENT_CHARS and _ACKNOWLEDGEMENT.match(text) is not None


def restarted_task(text: str) -> str | None:
    """The problem an AgentBench OS user text starts after the solved example, if it is one."""
    found = _RESTART.match(text)
    if found is None:
        return None
    return text[found.end() :].strip() or None


def leading_rules(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The system message of the harness's rules that opens the steps, if one does."""
    return steps[:1] if steps and steps[0].get("role") == "system" else []


def tool_call(name: str, arguments: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The call as made: `generic_tool` {tool_name, tool_input} is a call of `tool_name`."""
    inner, given = arguments.get("tool_name"), arguments.get("tool_input")
    if name == GENERIC_TOOL and isinstance(inner, str) and inner.strip():
        return inner, given if isinstance(given, dict) else {"input": given}
    return name, arguments


def result_error(name: str, arguments: Any, result: str) -> str | None:
    """Why a tool result reads as a failure, if it does: a shell command's output by its first
    and last lines (the SWE-agent rules), any other result by `looks_like_error`."""
    command = arguments.get("command") if isinstance(arguments, dict) else None
    if name.lower() in _SHELL_TOOLS and isinstance(command, str):
        return shell_failure(result, viewer=prints_file_content(command))
    return error_summary(result) if looks_like_error(result) else None


class RunBuilder:
    """What an ADP or ATIF importer has built of a run so far: the task, the steps, and an
    "Ok." to the first user text held until the next item tells what that text was."""

    def __init__(self) -> None:
        self.task: str | None = None
        self.steps: list[dict[str, Any]] = []
        self.example_steps = 0  # steps of a solved example before the real task, left out
        self.acknowledged: str | None = None  # an "Ok." to the first user text, pending

    def said(self, role: str, text: str) -> None:
        if text.strip():
            self.steps.append({"type": "message", "role": role, "text": text})

    def acknowledges(self, text: str) -> bool:
        """An "Ok." right after the first user text: held until the next item says whether
        that text was the harness's rules (a user text follows) or the task."""
        if self.steps or self.task is None or not is_acknowledgement(text.strip()):
            return False
        self.acknowledged = text
        return True

    def after_rules(self, text: str) -> None:
        """The user text after an acknowledged one: the task; the rules a system message."""
        self.steps.append({"type": "message", "role": "system", "text": self.task})
        self.task, self.acknowledged = text.strip() or None, None

    def no_task_followed(self) -> None:
        """The held "Ok." was a plain reply: no user text came after it."""
        if self.acknowledged is not None:
            self.said("assistant", self.acknowledged)
            self.acknowledged = None

    def restart(self, task: str) -> None:
        """A new problem after a solved example: the example's steps are left out."""
        kept = leading_rules(self.steps)
        self.example_steps += len(self.steps) - len(kept)
        self.steps = kept
        self.task = task


class _Run(RunBuilder):
    """The run so far (`RunBuilder`), and the calls waiting for their result."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting: list[dict[str, Any]] = []
        self.skipped = 0  # items of a class this importer does not know

    def restart(self, task: str) -> None:
        """As `RunBuilder.restart`; the example's calls are not waited for either."""
        super().restart(task)
        self.waiting.clear()

    def add(self, position: int, item: Any) -> None:
        where = f"content[{position}]"
        if not isinstance(item, dict):
            raise InvalidTrajectory(f"{where} is not an object")
        kind = item.get("class_")
        if not isinstance(kind, str):
            raise InvalidTrajectory(f"{where} has no class_")
        if not (kind == "text_observation" and item.get("source") in _USER):
            self.no_task_followed()
        if kind == "api_action":
            function = item.get("function")
            if not isinstance(function, str) or not function.strip():
                raise InvalidTrajectory(f"{where}.function is not a name")
            kwargs = item.get("kwargs", {})
            if not isinstance(kwargs, dict):
                raise InvalidTrajectory(f"{where}.kwargs is not an object")
            self._call(item, *tool_call(function, kwargs))
        elif kind == "code_action":
            language, code = item.get("language"), item.get("content")
            if not isinstance(language, str) or not isinstance(code, str):
                raise InvalidTrajectory(f"{where} needs a language and content as strings")
            self._call(item, *code_call(language, code))
        elif kind == "message_action":
            text = _string(item.get("content"), f"{where}.content")
            if self.acknowledges(text):
                return
            self._thought(item)
            self.said("assistant", text)
        elif kind in ("text_observation", "json_observation"):
            content = item.get("content")
            text = content if kind == "text_observation" else _json(content)
            self._observed(item, _string(text, f"{where}.content"), where)
        elif kind == "image_observation":
            path = item.get("content")
            text = f"[image: {path}]" if isinstance(path, str) else "[image]"
            self._observed(item, text, where, textual=False)
        elif kind == "web_observation":
            self._answer(item, _page(item))
        else:
            self.skipped += 1

    def _call(self, item: dict[str, Any], name: str, arguments: dict[str, Any]) -> None:
        self._thought(item)
        call: dict[str, Any] = {"type": "tool_call", "name": name, "arguments": arguments}
        call_id = item.get("tool_call_id")
        if isinstance(call_id, str) and call_id:
            call["id"] = call_id
        self.steps.append(call)
        self.waiting.append(call)

    def _thought(self, item: dict[str, Any]) -> None:
        description = item.get("description")
        if isinstance(description, str):
            self.said("assistant", description)

    def _observed(
        self, item: dict[str, Any], text: str, where: str, *, textual: bool = True
    ) -> None:
        """A text, JSON or image observation, by its source (an image is never the task)."""
        source = item.get("source", "environment")
        if source not in _SOURCES:
            raise InvalidTrajectory(f"{where}.source {source!r} is not user, environment or agent")
        if source in _USER and self.acknowledged is not None:
            self.after_rules(text)
        elif source in _USER and self._answers_last_call(item):
            self._answer(item, text)
        elif source in _USER and self._waiting_for(item.get("tool_call_id")) is None:
            if self.task is None and textual:
                self.task = text.strip() or None
            elif self.task is not None and (restarted := restarted_task(text)):
                self.restart(restarted)
            elif self.task is not None:
                self.said("user", text)
        elif source in _AGENT:
            self.said("assistant", text)
        elif source == "system":
            self.said("system", text)
        else:
            self._answer(item, text)

    def _answers_last_call(self, item: dict[str, Any]) -> bool:
        """A user observation right after a call without an id: that call's output."""
        last = self.steps[-1] if self.steps else None
        return (
            not item.get("tool_call_id")
            and last is not None
            and last.get("type") == "tool_call"
            and "id" not in last
            and last in self.waiting
        )

    def _answer(self, item: dict[str, Any], text: str) -> None:
        """An environment observation: the result of the call it answers, else (after the
        task) what the environment told the agent; before the task, the harness's prompt."""
        call_id = item.get("tool_call_id")
        call = self._waiting_for(call_id)
        if call is None and self.waiting and not call_id:
            call = self.waiting[0]
        if call is None:
            if self.task is not None:
                self.said("user", text)
            return
        self.waiting.remove(call)
        call["result"] = head_and_tail(text, MAX_RESULT_CHARS)
        why = result_error(call["name"], call["arguments"], text)
        if why is not None:
            call["error"], call["error_text"] = True, why

    def _waiting_for(self, call_id: Any) -> dict[str, Any] | None:
        """The waiting call with this id; else, for an id none has, the first without one."""
        if not isinstance(call_id, str) or not call_id:
            return None
        found = next((c for c in self.waiting if c.get("id") == call_id), None)
        return found or next((c for c in self.waiting if "id" not in c), None)


def details_outcome(details: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The outcome a record's `details` gives, and which key gave it: `resolved`, `success` or
    `succeeded` as a flag, else `reward` (1.0 is a success); (None, None) when it gives none."""
    for key in _OUTCOME_FLAGS:
        flag = _flag(details.get(key))
        if flag is not None:
            return {"success": flag}, f"details.{key}"
    reward = _number(details.get("reward"))
    if reward is not None:
        return {"reward": reward}, "details.reward"
    return None, None


def _outcome(details: dict[str, Any], content: list[Any]) -> tuple[dict[str, Any] | None, Any]:
    """The outcome `details` gives, else the per-step reward of the last item."""
    outcome, given_by = details_outcome(details)
    if outcome is not None:
        return outcome, given_by
    last = content[-1] if content else None
    reward = _number(last.get("reward")) if isinstance(last, dict) else None
    if reward is not None:
        return {"reward": reward}, "step reward"
    return None, None


def _flag(value: Any) -> bool | None:
    """A bool, `"True"`/`"false"` (SWE-Gym's converter wrote `str(resolved)`), or 0/1."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _page(item: dict[str, Any]) -> str:
    """A web observation as a short text: its url and the start of its accessibility tree."""
    url, tree = item.get("url"), item.get("axtree")
    parts = [f"url: {url}" if isinstance(url, str) and url else "[web page]"]
    if isinstance(tree, str) and tree.strip():
        parts.append(clip(tree.strip(), MAX_PAGE_CHARS))
    return "\n".join(parts)


def _id(record: dict[str, Any], record_id: Any, dataset: str | None, run_id: Any) -> str:
    """`adp:[<dataset>:]<id>[:<run_id>]` (a dataset may hold several runs of one instance),
    else a hash of the record."""
    parts = [p for p in (dataset, record_id, run_id) if p is not None]
    if isinstance(record_id, str) and all(
        isinstance(p, str) and SAFE_ID_PART.fullmatch(p) for p in parts
    ):
        return ":".join((FORMAT, *parts))
    return content_id(record, prefix=FORMAT)


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidTrajectory(f"{where} is not a string")
    return value


def _json(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False, default=str) if value is not None else None
