"""Turn one record of a known trajectory format into a `Trajectory`, or say why not.

`parse_line(raw_bytes)` is what intake calls for each complete JSONL line;
`parse_record(obj)` takes an already-decoded JSON object. Both raise `InvalidTrajectory`
with a one-line reason, which the quarantine shows. `records_in_document(doc)` splits a whole
.json file (an array, a tau2 `Results`, a MedAgentBench `overall.json`, an InterCode log, a
moatless-tools traj with its run's resolved label) into per-run records.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from evolver.model import Trajectory, with_safe_names
from evolver.redact import redact

from ..errors import InvalidTrajectory
from .anthropic import from_anthropic_record, is_anthropic_record
from .chat import from_chat_record, from_tau_record, is_chat_record, is_tau_record
from .claude_code import is_claude_code_event
from .codex import is_codex_line
from .intercode import (
    from_intercode_record,
    intercode_records,
    is_intercode_document,
    is_intercode_record,
)
from .medagentbench import (
    from_medagentbench_record,
    is_medagentbench_document,
    is_medagentbench_record,
    medagentbench_records,
)
from .moatless import from_moatless_record, is_moatless_record, moatless_records
from .native import from_native_record, is_native_record
from .otel import is_otlp_document
from .responses import from_responses_record, is_responses_record
from .tau2 import from_tau2_record, is_tau2_record, is_tau2_results, tau2_records

__all__ = [
    "RECORD_FORMATS",
    "parse_line",
    "parse_record",
    "record_format",
    "records_in_document",
    "validate",
]


def records_in_document(document: Any, source_name: str | None = None) -> list[Any]:
    """The per-run records of a whole JSON document; `source_name` (its path) may name the model."""
    if isinstance(document, list):
        return document
    if is_tau2_results(document):
        return tau2_records(document)
    if is_medagentbench_document(document):
        return medagentbench_records(document, source_name)
    if is_intercode_document(document):
        return intercode_records(document, source_name)
    if isinstance(document, dict) and is_moatless_record(document):
        return moatless_records(document, source_name)
    return [document]


# Per-record formats, in detection order (the benchmark shapes first: they have `messages` too).
RECORD_FORMATS: dict[str, tuple[Callable[[dict[str, Any]], bool], Callable[..., Trajectory]]] = {
    "tau-bench": (is_tau_record, from_tau_record),
    "tau2-bench": (is_tau2_record, from_tau2_record),
    "medagentbench": (is_medagentbench_record, from_medagentbench_record),
    "intercode": (is_intercode_record, from_intercode_record),
    "moatless": (is_moatless_record, from_moatless_record),
    "anthropic-messages": (is_anthropic_record, from_anthropic_record),
    "openai-responses": (is_responses_record, from_responses_record),
    "openai-chat": (is_chat_record, from_chat_record),
    "native": (is_native_record, from_native_record),
}


def record_format(record: Any) -> str | None:
    """The name of the per-record format `record` is in, or None."""
    if not isinstance(record, dict):
        return None
    return next((name for name, (test, _) in RECORD_FORMATS.items() if test(record)), None)


def parse_record(record: Any) -> Trajectory:
    """Detect the record's format and convert it; its names made safe, a reason redacted."""
    try:
        return _parse_record(record)
    except InvalidTrajectory as exc:
        reason = redact(exc.reason)  # a reason quotes keys and values of the untrusted record
        if reason == exc.reason:
            raise
        raise InvalidTrajectory(reason) from exc


def _parse_record(record: Any) -> Trajectory:
    if not isinstance(record, dict):
        raise InvalidTrajectory(
            f"a JSON {_json_type(record)} is not a trajectory; expected an object"
        )
    if (
        is_tau2_results(record)
        or is_medagentbench_document(record)
        or is_intercode_document(record)
    ):
        raise InvalidTrajectory(
            "a whole benchmark results document holds many runs: take it in as a .json file"
        )
    whole_file = _whole_file_format(record)
    if whole_file:
        raise InvalidTrajectory(f"{whole_file}: convert the file with `skillforge import PATH`")
    name = record_format(record)
    if name is not None:
        return _storable(name, record)
    keys = ", ".join(sorted(record)[:8]) or "none"
    raise InvalidTrajectory(
        "unrecognised record: expected the skillforge schema (task, steps), an OpenAI chat "
        "record (messages), Anthropic messages (tool_use blocks), OpenAI Responses items "
        "(input/output/items), a tau-bench record (task_id, reward, traj), a tau2-bench "
        "simulation, a MedAgentBench result (index, status, history), an InterCode run "
        "(environment, turn_history) or a moatless-tools trajectory (transitions or steps); "
        f"its keys: {keys}"
    )


MAX_FREE_DEPTH = 64  # metadata or arguments nested deeper could not be read back from the store


def _storable(name: str, record: dict[str, Any]) -> Trajectory:
    """Convert with the `name` importer. Whatever a hostile record trips (a wrong type deep
    inside, a lone surrogate, nesting the store could not read back) is an InvalidTrajectory:
    the line is quarantined, never a crash of intake (found by tests/reliability). The run's
    id, loaded skills and tool names are made safe here, once, for every format."""
    try:
        trajectory = with_safe_names(RECORD_FORMATS[name][1](record))
        trajectory.model_dump_json()  # what the store writes: fails on lone surrogates
    except InvalidTrajectory:
        raise
    except ValidationError as exc:
        raise InvalidTrajectory(f"not a valid trajectory: {describe(exc)}") from exc
    except RecursionError as exc:
        raise InvalidTrajectory("not a valid trajectory: nested too deeply") from exc
    except Exception as exc:  # untrusted input must never crash intake
        reason = redact(f"malformed {name} record: {type(exc).__name__}: {exc}")
        raise InvalidTrajectory(reason[:300]) from exc
    free = [trajectory.metadata, *(call.arguments for call in trajectory.tool_calls)]
    if max(map(_depth, free)) > MAX_FREE_DEPTH:
        raise InvalidTrajectory(
            f"not a valid trajectory: metadata or arguments nested over {MAX_FREE_DEPTH} levels"
        )
    return trajectory


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in a JSON value (iteratively: no recursion limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def _whole_file_format(record: dict[str, Any]) -> str | None:
    """Why a record is one part of a file that holds runs as a whole, if it is."""
    if is_otlp_document(record):
        return "an OpenTelemetry trace export holds spans, not runs"
    if is_codex_line(record):
        return "a line of a Codex rollout is one event of a run"
    if is_claude_code_event(record) and ("sessionId" in record or "uuid" in record):
        return "a line of a Claude Code transcript is one event of a run"
    return None


def parse_line(raw: bytes) -> Trajectory:
    """One JSONL line (without its newline) as a trajectory."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidTrajectory(
            f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at position {exc.start}"
        ) from exc
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidTrajectory(f"not valid JSON: {exc.msg} at column {exc.colno}") from exc
    except RecursionError as exc:
        raise InvalidTrajectory("not valid JSON: nested too deeply") from exc
    return parse_record(record)


def validate(data: dict[str, Any]) -> Trajectory:
    """Validate against the schema, turning pydantic's report into one readable line."""
    try:
        return Trajectory.model_validate(data)
    except ValidationError as exc:
        raise InvalidTrajectory(f"not a valid trajectory: {describe(exc)}") from exc
    except RecursionError as exc:
        raise InvalidTrajectory("not a valid trajectory: nested too deeply") from exc


def describe(exc: ValidationError, limit: int = 3) -> str:
    """`steps.2.name: Field required; outcome.reward: ...` for the first few errors."""
    parts = []
    for error in exc.errors()[:limit]:
        # Each part alone: a key from the record is untrusted, and `.` would hide a number.
        where = ".".join(redact(str(p)) for p in error["loc"]) or "record"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def _json_type(value: Any) -> str:
    return {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )
