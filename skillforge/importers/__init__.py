"""Turn one record of a known trajectory format into a `Trajectory`, or say why not.

`parse_line(raw_bytes)` is what intake calls for each complete JSONL line;
`parse_record(obj)` takes an already-decoded JSON object. Both raise `InvalidTrajectory`
with a one-line reason, which the quarantine shows. `records_in_document(doc)` splits a whole
.json file (an array, a tau2 `Results`, a MedAgentBench `overall.json`) into per-run records.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from evolver.model import Trajectory

from ..errors import InvalidTrajectory
from .chat import from_chat_record, from_tau_record, is_chat_record, is_tau_record
from .medagentbench import (
    from_medagentbench_record,
    is_medagentbench_document,
    is_medagentbench_record,
    medagentbench_records,
)
from .native import from_native_record, is_native_record
from .tau2 import from_tau2_record, is_tau2_record, is_tau2_results, tau2_records

__all__ = ["parse_line", "parse_record", "records_in_document", "validate"]


def records_in_document(document: Any, source_name: str | None = None) -> list[Any]:
    """The per-run records of a whole JSON document; `source_name` (its path) may name the model."""
    if isinstance(document, list):
        return document
    if is_tau2_results(document):
        return tau2_records(document)
    if is_medagentbench_document(document):
        return medagentbench_records(document, source_name)
    return [document]


def parse_record(record: Any) -> Trajectory:
    """Detect the record's format and convert it."""
    if not isinstance(record, dict):
        raise InvalidTrajectory(
            f"a JSON {_json_type(record)} is not a trajectory; expected an object"
        )
    if is_tau_record(record):
        return from_tau_record(record)
    if is_tau2_record(record):
        return from_tau2_record(record)
    if is_medagentbench_record(record):
        return from_medagentbench_record(record)
    if is_tau2_results(record) or is_medagentbench_document(record):
        raise InvalidTrajectory(
            "a whole benchmark results document holds many runs: take it in as a .json file"
        )
    if is_chat_record(record):
        return from_chat_record(record)
    if is_native_record(record):
        return from_native_record(record)
    keys = ", ".join(sorted(record)[:8]) or "none"
    raise InvalidTrajectory(
        "unrecognised record: expected the skillforge schema (task, steps), an OpenAI chat "
        "record (messages), a tau-bench record (task_id, reward, traj), a tau2-bench "
        f"simulation or a MedAgentBench result (index, status, history); its keys: {keys}"
    )


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
        where = ".".join(str(p) for p in error["loc"]) or "record"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def _json_type(value: Any) -> str:
    return {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )
