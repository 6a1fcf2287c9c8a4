"""Agent Data Protocol trajectories (`neulab/agent-data-protocol`, schema 1.0.0 to 1.2.0).

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
observation with the call's `tool_call_id` (1.1.0 on), else the next environment observation.
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
SUPPORTED_VERSIONS = ("1.2.0", "1.1.0", "1.0.0")
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


def is_adp_record(record: dict[str, Any]) -> bool:
    """An ADP record: a `content` list of items named by `class_`."""
    content = record.get("content")
    return isinstance(content, list) and any(
        isinstance(item, dict) and isinstance(item.get("class_"), str) for item in content
    )


def from_adp_record(record: dict[str, Any]) -> Trajectory:
    """One ADP record: its actions as calls with their observations; outcome from `details`."""
    version = record.get("schema_version")
    if version is not None and version not in SUPPORTED_VERSIONS:
        raise InvalidTrajectory(
            f"unsupported ADP schema_version {version!r}: expected {', '.join(SUPPORTED_VERSIONS)}"
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


def result_error(name: str, arguments: Any, result: str) -> str | None:
    """Why a tool result reads as a failure, if it does: a shell command's output by its first
    and last lines (the SWE-agent rules), any other result by `looks_like_error`."""
    command = arguments.get("command") if isinstance(arguments, dict) else None
    if name.lower() in _SHELL_TOOLS and isinstance(command, str):
        return shell_failure(result, viewer=prints_file_content(command))
    return error_summary(result) if looks_like_error(result) else None


class _Run:
    """The steps built so far, the task, and the calls waiting for their result."""

    def __init__(self) -> None:
        self.task: str | None = None
        self.steps: list[dict[str, Any]] = []
        self.waiting: list[dict[str, Any]] = []
        self.skipped = 0  # items of a class this importer does not know

    def add(self, position: int, item: Any) -> None:
        where = f"content[{position}]"
        if not isinstance(item, dict):
            raise InvalidTrajectory(f"{where} is not an object")
        kind = item.get("class_")
        if not isinstance(kind, str):
            raise InvalidTrajectory(f"{where} has no class_")
        if kind == "api_action":
            function = item.get("function")
            if not isinstance(function, str) or not function.strip():
                raise InvalidTrajectory(f"{where}.function is not a name")
            kwargs = item.get("kwargs", {})
            if not isinstance(kwargs, dict):
                raise InvalidTrajectory(f"{where}.kwargs is not an object")
            self._call(item, function, kwargs)
        elif kind == "code_action":
            language, code = item.get("language"), item.get("content")
            if not isinstance(language, str) or not isinstance(code, str):
                raise InvalidTrajectory(f"{where} needs a language and content as strings")
            self._call(item, *code_call(language, code))
        elif kind == "message_action":
            self._thought(item)
            self._said("assistant", _string(item.get("content"), f"{where}.content"))
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
            self._said("assistant", description)

    def _said(self, role: str, text: str) -> None:
        if text.strip():
            self.steps.append({"type": "message", "role": role, "text": text})

    def _observed(
        self, item: dict[str, Any], text: str, where: str, *, textual: bool = True
    ) -> None:
        """A text, JSON or image observation, by its source (an image is never the task)."""
        source = item.get("source", "environment")
        if source not in _SOURCES:
            raise InvalidTrajectory(f"{where}.source {source!r} is not user, environment or agent")
        if source in _USER and self._waiting_for(item.get("tool_call_id")) is None:
            if self.task is None and textual:
                self.task = text.strip() or None
            elif self.task is not None:
                self._said("user", text)
        elif source in _AGENT:
            self._said("assistant", text)
        elif source == "system":
            self._said("system", text)
        else:
            self._answer(item, text)

    def _answer(self, item: dict[str, Any], text: str) -> None:
        """An environment observation: the result of the call it answers, else (after the
        task) what the environment told the agent; before the task, the harness's prompt."""
        call_id = item.get("tool_call_id")
        call = self._waiting_for(call_id)
        if call is None and self.waiting and not call_id:
            call = self.waiting[0]
        if call is None:
            if self.task is not None:
                self._said("user", text)
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
