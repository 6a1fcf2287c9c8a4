"""Read a whole file of any known format as trajectories, saying why each part that is not one
was skipped.

Per-record formats (one JSON object = one run: native, openai-chat, openai-responses,
anthropic-messages, tau-bench, tau2-bench, medagentbench, intercode, moatless, swe-agent,
mini-swe-agent, adp, atif) come one per JSONL line or inside a .json document (a SWE-agent .traj
is one too, a mini-swe-agent .traj.json, and a Harbor ATIF trajectory.json). Per-file formats
hold a run across many lines (claude-code, codex) or spans (otel) and can only be read whole.
`detect_format` sniffs a file; `read_file` converts it, in the format given or the one detected
(per record, for record files).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evolver.model import Trajectory

from ..errors import FormatMismatchError, IntakeError, InvalidTrajectory
from . import RECORD_FORMATS, parse_record, record_format, records_in_document
from .claude_code import is_claude_code_event, trajectory_from_claude_code
from .codex import is_codex_line, trajectory_from_codex
from .mapping import FormatMapping, from_mapped_record, mapped_records
from .otel import is_otlp_document, trajectories_from_otlp

FILE_FORMATS = ("claude-code", "codex", "otel")
FORMATS = (*RECORD_FORMATS, *FILE_FORMATS)
_SUFFIXES = (".jsonl", ".json", ".traj")
_DOCUMENTS = (".json", ".traj")  # read whole; any other file as JSONL lines
SNIFF_LINES = 50  # lines looked at to tell a transcript from a file of records


@dataclass(frozen=True)
class Skipped:
    """A part of a file that is not a run: the file, its line (JSONL) or index / trace, why."""

    source: str
    line_or_index: int | str | None
    reason: str


Item = Trajectory | Skipped


@dataclass(frozen=True)
class _Loaded:
    """A file as one JSON document, or as numbered JSONL lines (each a value or the error)."""

    document: Any = None
    lines: tuple[tuple[int, Any], ...] | None = None

    def values(self) -> list[Any]:
        if self.lines is None:
            return [self.document]
        return [v for _, v in self.lines if not isinstance(v, InvalidTrajectory)]


def files_in(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and the *.jsonl, *.json and *.traj files below each folder, sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            below = (p for pattern in ("*.json*", "*.traj") for p in path.rglob(pattern))
            found.extend(sorted(p for p in below if p.is_file() and p.suffix in _SUFFIXES))
        elif path.is_file():
            found.append(path)
        else:
            raise IntakeError(f"{path} does not exist")
    return found


def detect_format(path: Path) -> str:
    """The format of a file, by its content; FormatMismatchError when none is recognised."""
    return _detect(_load(path), path)


def read_file(
    path: Path, format: str | None = None, *, mapping: FormatMapping | None = None
) -> Iterator[Item]:
    """The runs in `path`, and a `Skipped` for each part that is not one.

    With `format`, the file must be in it (else FormatMismatchError); with `mapping`, records
    are read through it. A file that cannot be parsed, or is in no known format, is one
    `Skipped`."""
    if format is not None and format not in FORMATS:
        raise FormatMismatchError(f"unknown format {format!r}; known: {', '.join(FORMATS)}")
    source = str(path)
    try:
        loaded = _load(path)
    except InvalidTrajectory as exc:
        yield Skipped(source, None, exc.reason)
        return
    if mapping is not None:
        yield from _records(loaded, source, mapping=mapping)
        return
    if format is not None:
        _check(loaded, path, format)
        name = format
    else:
        try:
            name = _detect(loaded, path)
        except FormatMismatchError as exc:
            yield Skipped(source, None, str(exc).removeprefix(f"{path}: "))
            return
    if name == "claude-code":
        yield from _bad_lines(loaded, source)
        yield from _whole(source, lambda: trajectory_from_claude_code(loaded.values(), source))
    elif name == "codex":
        yield from _bad_lines(loaded, source)
        yield from _whole(source, lambda: trajectory_from_codex(loaded.values()))
    elif name == "otel":
        yield from _bad_lines(loaded, source)
        try:
            for where, run in trajectories_from_otlp(loaded.values()):
                yield run if isinstance(run, Trajectory) else Skipped(source, where, run.reason)
        except InvalidTrajectory as exc:
            yield Skipped(source, None, exc.reason)
    else:
        yield from _records(loaded, source, forced=format)


def _load(path: Path) -> _Loaded:
    """A .json or .traj file as one document; any other file as JSONL lines."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise IntakeError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if path.suffix in _DOCUMENTS:
        return _Loaded(document=_decode(raw))
    lines = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if line.strip():
            try:
                lines.append((number, _decode(line.rstrip(b"\r"))))
            except InvalidTrajectory as exc:
                lines.append((number, exc))
    return _Loaded(lines=tuple(lines))


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidTrajectory(f"not valid UTF-8 at byte {exc.start}") from exc
    except json.JSONDecodeError as exc:
        raise InvalidTrajectory(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError as exc:
        raise InvalidTrajectory("not valid JSON: nested too deeply") from exc


def _detect(loaded: _Loaded, path: Path) -> str:
    if loaded.lines is None:
        document = loaded.document
        if is_otlp_document(document):
            return "otel"
        records = records_in_document(document, str(path))
        found = record_format(records[0]) if records else None
    else:
        values = loaded.values()[:SNIFF_LINES]
        if any(is_codex_line(v) for v in values):
            return "codex"
        if any(is_claude_code_event(v) and "message" in v for v in values):
            return "claude-code"
        if values and all(is_otlp_document(v) for v in values):
            return "otel"
        found = next((f for f in map(record_format, values) if f), None)
    if found is None:
        raise FormatMismatchError(
            f"{path}: not in a known trajectory format ({', '.join(FORMATS)}); "
            "for another JSON format, describe it in a mapping file (--mapping)"
        )
    return found


def _check(loaded: _Loaded, path: Path, format: str) -> None:
    """FormatMismatchError unless the file's content is in `format` (its first record is)."""
    values = loaded.values()[:SNIFF_LINES]
    if format == "codex":
        ok = any(is_codex_line(v) for v in values)
    elif format == "claude-code":
        ok = any(is_claude_code_event(v) and "message" in v for v in values)
    elif format == "otel":
        ok = bool(values) and all(is_otlp_document(v) for v in values)
    else:
        if loaded.lines is None:
            values = records_in_document(loaded.document, str(path))
        test = RECORD_FORMATS[format][0]
        first = next((v for v in values if isinstance(v, dict)), None)
        ok = first is not None and test(first)
    if not ok:
        try:
            actual = f"it looks like {_detect(loaded, path)}"
        except FormatMismatchError:
            actual = "it is in no known format"
        raise FormatMismatchError(f"{path} is not in the {format} format: {actual}")


def _records(
    loaded: _Loaded,
    source: str,
    *,
    forced: str | None = None,
    mapping: FormatMapping | None = None,
) -> Iterator[Item]:
    """Each record of a JSONL file (numbered by line) or a .json document (by index)."""
    if loaded.lines is not None:
        numbered: Iterable[tuple[int, Any]] = loaded.lines
    else:
        try:
            if mapping is not None:
                records = mapped_records(mapping, loaded.document)
            else:
                records = records_in_document(loaded.document, source)
        except InvalidTrajectory as exc:
            yield Skipped(source, None, exc.reason)
            return
        numbered = enumerate(records)
    for where, record in numbered:
        try:
            if isinstance(record, InvalidTrajectory):
                raise record
            if mapping is not None:
                yield from_mapped_record(mapping, record)
            elif forced is None:
                yield parse_record(record)
            else:
                test, convert = RECORD_FORMATS[forced]
                if not (isinstance(record, dict) and test(record)):
                    raise InvalidTrajectory(f"not a {forced} record")
                # parse_record adds intake's guards; the converter alone where detection
                # would pick another format first (forced chat on Anthropic-shaped messages)
                yield parse_record(record) if record_format(record) == forced else convert(record)
        except InvalidTrajectory as exc:
            yield Skipped(source, where, exc.reason)


def _bad_lines(loaded: _Loaded, source: str) -> Iterator[Skipped]:
    for number, value in loaded.lines or ():
        if isinstance(value, InvalidTrajectory):
            yield Skipped(source, number, value.reason)


def _whole(source: str, convert: Callable[[], Trajectory]) -> Iterator[Item]:
    try:
        yield convert()
    except InvalidTrajectory as exc:
        yield Skipped(source, None, exc.reason)
