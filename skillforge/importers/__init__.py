"""Turn one record of a known trajectory format into a `Trajectory`, or say why not.

`parse_line(raw_bytes)` is what intake calls for each complete JSONL line;
`parse_record(obj)` takes an already-decoded JSON object. Both raise `InvalidTrajectory`
with a one-line reason, which the quarantine shows. `read_line` and `read_record` also give
the JSON the store keeps for the run (`Parsed.data`), worked out once: the line itself when
it is a run in the skillforge schema that reads back as the same trajectory, else its dump.
`records_in_document(doc)` splits a whole .json file (an array, a tau2 `Results`, a
MedAgentBench `overall.json`, an InterCode log, a moatless-tools traj, a SWE-agent .traj or a
mini-swe-agent .traj.json with its run's resolved label, a Harbor ATIF trajectory with its
trial's reward) into per-run records.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

import msgspec
from pydantic import ValidationError

from evolver.model import Trajectory, with_safe_names
from evolver.redact import redact

from ..errors import InvalidTrajectory
from .adp import from_adp_record, is_adp_record
from .anthropic import from_anthropic_record, is_anthropic_record
from .atif import atif_records, from_atif_record, is_atif_record
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
from .mini_swe_agent import (
    from_mini_swe_agent_record,
    is_mini_swe_agent_record,
    mini_swe_agent_records,
)
from .moatless import from_moatless_record, is_moatless_record, moatless_records
from .native import from_native_record, is_native_record
from .otel import is_otlp_document
from .responses import from_responses_record, is_responses_record
from .swe_agent import from_swe_agent_record, is_swe_agent_record, swe_agent_records
from .tau2 import from_tau2_record, is_tau2_record, is_tau2_results, tau2_records

__all__ = [
    "RECORD_FORMATS",
    "Parsed",
    "parse_line",
    "parse_record",
    "read_line",
    "read_record",
    "record_format",
    "records_in_document",
    "run_finished",
    "validate",
]

# Strict JSON, about twice as fast as `json.loads`, integers of any size kept exact. What it
# refuses (NaN, 1e400, a lone surrogate, deep nesting, bad JSON) goes to `json.loads`, which
# decides as before and words the reason.
_decode_strict = msgspec.json.Decoder().decode


class Parsed(NamedTuple):
    """A run, and the JSON text the store keeps for it (it reads back as `trajectory`)."""

    trajectory: Trajectory
    data: str


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
    if isinstance(document, dict) and is_swe_agent_record(document):
        return swe_agent_records(document, source_name)
    if isinstance(document, dict) and is_mini_swe_agent_record(document):
        return mini_swe_agent_records(document, source_name)
    if isinstance(document, dict) and is_atif_record(document):
        return atif_records(document, source_name)
    return [document]


def run_finished(document: Any) -> bool:
    """Whether a run file is whole: SWE-agent and mini-swe-agent rewrite theirs as the agent
    goes and set `info.exit_status` when it stops; any other document is whole as written."""
    if not isinstance(document, dict) or not (
        is_swe_agent_record(document) or is_mini_swe_agent_record(document)
    ):
        return True
    info = document.get("info")
    status = info.get("exit_status") if isinstance(info, dict) else None
    return isinstance(status, str) and bool(status.strip())


# Per-record formats, in detection order (the benchmark shapes first: they have `messages` too).
RECORD_FORMATS: dict[str, tuple[Callable[[dict[str, Any]], bool], Callable[..., Trajectory]]] = {
    "tau-bench": (is_tau_record, from_tau_record),
    "tau2-bench": (is_tau2_record, from_tau2_record),
    "medagentbench": (is_medagentbench_record, from_medagentbench_record),
    "intercode": (is_intercode_record, from_intercode_record),
    "moatless": (is_moatless_record, from_moatless_record),
    "swe-agent": (is_swe_agent_record, from_swe_agent_record),
    "mini-swe-agent": (is_mini_swe_agent_record, from_mini_swe_agent_record),
    # before the chat shapes and native (an ATIF trajectory has `steps`): each is told by its
    # own mark, `content` items with a `class_` and a `schema_version` "ATIF-..."
    "adp": (is_adp_record, from_adp_record),
    "atif": (is_atif_record, from_atif_record),
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
    return read_record(record).trajectory


def read_record(record: Any, line: str | None = None) -> Parsed:
    """`parse_record`, and the JSON to store: `line` (the record's own strict JSON text, if
    given) when the record is in the skillforge schema and reads back as the same run."""
    try:
        return _parse_record(record, line)
    except InvalidTrajectory as exc:
        reason = redact(exc.reason)  # a reason quotes keys and values of the untrusted record
        if reason == exc.reason:
            raise
        raise InvalidTrajectory(reason) from exc


def _parse_record(record: Any, line: str | None) -> Parsed:
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
        return _storable(name, record, line)
    keys = ", ".join(sorted(record)[:8]) or "none"
    raise InvalidTrajectory(
        "unrecognised record: expected the skillforge schema (task, steps), an OpenAI chat "
        "record (messages), Anthropic messages (tool_use blocks), OpenAI Responses items "
        "(input/output/items), a tau-bench record (task_id, reward, traj), a tau2-bench "
        "simulation, a MedAgentBench result (index, status, history), an InterCode run "
        "(environment, turn_history), a moatless-tools trajectory (transitions or steps), a "
        "SWE-agent .traj (trajectory, history, info), a mini-swe-agent run (messages, "
        "info.mini_version), an Agent Data Protocol record (content items with class_) or a "
        "Harbor ATIF trajectory (schema_version ATIF-..., steps); "
        f"its keys: {keys}"
    )


MAX_FREE_DEPTH = 64  # metadata or arguments nested deeper could not be read back from the store


def _storable(name: str, record: dict[str, Any], line: str | None) -> Parsed:
    """Convert with the `name` importer. Whatever a hostile record trips (a wrong type deep
    inside, a lone surrogate, nesting the store could not read back) is an InvalidTrajectory:
    the line is quarantined, never a crash of intake (found by tests/reliability). The run's
    id, loaded skills and tool names are made safe here, once, for every format.

    The store keeps `line` itself when it is this run as sent: the skillforge schema, with its
    own id and no name made safe (validating `line` as JSON then gives the same run; being
    strict JSON it holds no lone surrogate). Else the run's dump, made here once."""
    try:
        converted = RECORD_FORMATS[name][1](record)
        trajectory = with_safe_names(converted)
        if (
            line is not None
            and name == "native"
            and trajectory is converted
            and record.get("id") == trajectory.id
        ):
            data = line
        else:
            data = trajectory.model_dump_json()  # what the store writes: fails on lone surrogates
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
    if _nested_over(free, MAX_FREE_DEPTH + 1):  # one level more: the list of them
        raise InvalidTrajectory(
            f"not a valid trajectory: metadata or arguments nested over {MAX_FREE_DEPTH} levels"
        )
    return Parsed(trajectory, data)


def _nested_over(value: list[Any] | dict[str, Any], limit: int) -> bool:
    """Whether lists and objects nest over `limit` levels deep in a JSON container
    (iteratively: no recursion limit; only containers are visited)."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if level > limit:
            return True
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list):
                stack.append((child, level + 1))
    return False


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
    return read_line(raw).trajectory


def read_line(raw: bytes) -> Parsed:
    """One JSONL line (without its newline) as a trajectory, and the JSON to store for it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidTrajectory(
            f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at position {exc.start}"
        ) from exc
    try:
        record = _decode_strict(raw)
    except (msgspec.DecodeError, RecursionError):
        return read_record(_loads(text))  # not strict JSON: `json.loads` decides, as before
    return read_record(record, text)


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidTrajectory(f"not valid JSON: {exc.msg} at column {exc.colno}") from exc
    except RecursionError as exc:
        raise InvalidTrajectory("not valid JSON: nested too deeply") from exc


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
