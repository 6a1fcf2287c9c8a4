"""A declarative mapping that reads a JSON trajectory format skillforge does not know.

A mapping file (TOML, or JSON with the same keys) says which fields of a record hold what.
Values are dotted paths into the record (`result.score`, `turns.0.text`: numbers index lists):

    format = "my-agent"           # label kept in metadata.format (default "mapped")
    records = "runs"              # in a .json document: where the list of runs is (optional)
    task = "question"             # required: the task text
    steps = "history"             # required: the list of steps
    id = "run_id"                 # optional; without it the id hashes the record
    agent = "model"               # optional
    skills = "skills_loaded"      # optional: a list of skill names
    started_at = "start"          # optional timestamps (ISO 8601)
    ended_at = "end"

    [call]                        # within one step; a step whose `name` is present is a call
    name = "tool"                 # required
    arguments = "input"           # an object, or a JSON string
    result = "observation"
    error = "is_error"            # true/false; a non-empty string is the error text;
                                  # absent: the result text is tested (`Error: ...`)
    id = "call_id"

    [message]                     # optional: other steps become messages
    text = "text"
    role = "role"                 # user / assistant / system (others read as assistant)

    [outcome]                     # optional
    success = "correct"           # true/false, or compared with success_values
    success_values = ["passed"]   # optional: values that mean success
    reward = "score"
    reason = "verdict"

JSONL files give one record per line; a .json file gives its `records` list, or itself.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evolver.model import Trajectory, content_id

from ..errors import InvalidTrajectory, MappingError
from .errortext import error_summary, looks_like_error

_PATH = r"^[^.\s]+(\.[^.\s]+)*$"


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CallFields(_Part):
    name: str = Field(pattern=_PATH)
    arguments: str | None = Field(None, pattern=_PATH)
    result: str | None = Field(None, pattern=_PATH)
    error: str | None = Field(None, pattern=_PATH)
    id: str | None = Field(None, pattern=_PATH)


class MessageFields(_Part):
    text: str = Field(pattern=_PATH)
    role: str | None = Field(None, pattern=_PATH)


class OutcomeFields(_Part):
    success: str | None = Field(None, pattern=_PATH)
    success_values: list[Any] | None = None
    reward: str | None = Field(None, pattern=_PATH)
    reason: str | None = Field(None, pattern=_PATH)


class FormatMapping(_Part):
    """Which fields of a record hold the task, steps, calls, results and outcome."""

    format: str = Field("mapped", min_length=1, max_length=60)
    records: str | None = Field(None, pattern=_PATH)
    task: str = Field(pattern=_PATH)
    steps: str = Field(pattern=_PATH)
    id: str | None = Field(None, pattern=_PATH)
    agent: str | None = Field(None, pattern=_PATH)
    skills: str | None = Field(None, pattern=_PATH)
    started_at: str | None = Field(None, pattern=_PATH)
    ended_at: str | None = Field(None, pattern=_PATH)
    call: CallFields
    message: MessageFields | None = None
    outcome: OutcomeFields | None = None

    @field_validator("format")
    @classmethod
    def _plain(cls, value: str) -> str:
        if not all(c.isalnum() or c in "-_." for c in value):
            raise ValueError("use letters, digits, '-', '_' or '.'")
        return value


def load_mapping(path: Path) -> FormatMapping:
    """Read and validate a mapping file (.toml, else JSON); every problem is a MappingError."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"cannot read mapping file {path}: {exc}") from exc
    try:
        raw = tomllib.loads(text) if path.suffix != ".json" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise MappingError(f"mapping file {path} is not valid {kind}: {exc}") from exc
    if not isinstance(raw, dict):
        raise MappingError(f"mapping file {path} must hold a table of keys")
    try:
        return FormatMapping.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'mapping'}: {e['msg']}"
            for e in exc.errors()[:5]
        )
        raise MappingError(f"invalid mapping file {path}: {problems}") from exc


def mapped_records(mapping: FormatMapping, document: Any) -> list[Any]:
    """The runs of a whole .json document: its `records` list, a top-level list, or itself."""
    if mapping.records:
        found = lookup(document, mapping.records)
        if not isinstance(found, list):
            raise InvalidTrajectory(f"`{mapping.records}` is not a list in this document")
        return found
    return document if isinstance(document, list) else [document]


def from_mapped_record(mapping: FormatMapping, record: Any) -> Trajectory:
    """One record read through the mapping."""
    if not isinstance(record, Mapping):
        raise InvalidTrajectory("a record is not a JSON object")
    task = lookup(record, mapping.task)
    if not isinstance(task, str) or not task.strip():
        raise InvalidTrajectory(f"no task: `{mapping.task}` is missing or not text")
    raw_steps = lookup(record, mapping.steps)
    if not isinstance(raw_steps, list):
        raise InvalidTrajectory(f"`{mapping.steps}` is missing or not a list")
    steps = [{"type": "message", "role": "user", "text": task}]
    for index, raw in enumerate(raw_steps):
        step = _step(mapping, raw, index)
        if step:
            steps.append(step)
    skills = lookup(record, mapping.skills) if mapping.skills else None
    record_id = lookup(record, mapping.id) if mapping.id else None
    agent = lookup(record, mapping.agent) if mapping.agent else None
    if record_id in (None, ""):
        record_id = content_id(record, prefix=mapping.format)
    data = {
        "id": str(record_id),
        "agent": str(agent) if agent is not None else None,
        "task": task,
        "started_at": lookup(record, mapping.started_at) if mapping.started_at else None,
        "ended_at": lookup(record, mapping.ended_at) if mapping.ended_at else None,
        "steps": steps,
        "outcome": _outcome(mapping.outcome, record) if mapping.outcome else None,
        "skills": [{"name": str(s)} for s in skills] if isinstance(skills, list) else [],
        "metadata": {"format": mapping.format},
    }
    from . import validate  # late import: the package module imports this one

    return validate(data)


def lookup(record: Any, path: str) -> Any:
    """The value at a dotted path, or None where any part is missing."""
    value = record
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.lstrip("-").isdigit():
            index = int(part)
            value = value[index] if -len(value) <= index < len(value) else None
        else:
            return None
    return value


def _step(mapping: FormatMapping, raw: Any, index: int) -> dict[str, Any] | None:
    fields = mapping.call
    name = lookup(raw, fields.name)
    if isinstance(name, str) and name.strip():
        arguments = lookup(raw, fields.arguments) if fields.arguments else None
        if isinstance(arguments, str):
            try:
                parsed = json.loads(arguments)
                arguments = parsed if isinstance(parsed, dict) else arguments
            except json.JSONDecodeError:
                pass
        result = lookup(raw, fields.result) if fields.result else None
        text = result if isinstance(result, str) or result is None else json.dumps(result)
        call: dict[str, Any] = {
            "type": "tool_call",
            "id": _text_or_none(lookup(raw, fields.id)) if fields.id else None,
            "name": name,
            "arguments": arguments if isinstance(arguments, dict | str) else {},
            "result": text,
        }
        flag = lookup(raw, fields.error) if fields.error else None
        if isinstance(flag, str) and flag.strip():
            call.update(error=True, error_text=flag)
        elif flag is True or (flag is None and looks_like_error(text)):
            call.update(error=True, error_text=error_summary(text) if text else "tool failed")
        return call
    if mapping.message:
        text = lookup(raw, mapping.message.text)
        if isinstance(text, str) and text.strip():
            role = lookup(raw, mapping.message.role) if mapping.message.role else None
            role = role if role in ("user", "assistant", "system") else "assistant"
            return {"type": "message", "role": role, "text": text}
    if mapping.message is None and not isinstance(raw, Mapping):
        raise InvalidTrajectory(f"steps[{index}] is not an object")
    return None


def _outcome(fields: OutcomeFields, record: Any) -> dict[str, Any] | None:
    success = lookup(record, fields.success) if fields.success else None
    if success is not None and fields.success_values is not None:
        success = success in fields.success_values
    elif success is not None and not isinstance(success, bool):
        raise InvalidTrajectory(
            f"`{fields.success}` is {success!r}, not true/false: set outcome.success_values"
        )
    reward = lookup(record, fields.reward) if fields.reward else None
    if reward is not None and not isinstance(reward, int | float):
        raise InvalidTrajectory(f"`{fields.reward}` is {reward!r}, not a number")
    reason = lookup(record, fields.reason) if fields.reason else None
    if success is None and reward is None:
        return None
    return {"success": success, "reward": reward, "reason": _text_or_none(reason)}


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
