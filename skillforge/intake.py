"""Read trajectories from JSONL files into the store, exactly once.

Only complete lines are read (a line still being written waits for its newline). The
byte offset after the last consumed line is stored with the rows it produced, in one
transaction, so a restart resumes exactly there. A line that is not a trajectory goes
to the quarantine with its file, line number and reason, and intake goes on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from evolver.model import Trajectory
from evolver.redact import redact

from .errors import IntakeError, InvalidTrajectory
from .importers import parse_line, parse_record, records_in_document
from .store import FileProgress, Quarantined, Store, utcnow

BATCH_LINES = 500
READ_CHUNK = 1 << 20


@dataclass
class IngestResult:
    """What one pass over one or more files did."""

    files: int = 0
    lines: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, other: IngestResult) -> None:
        self.files += other.files
        self.lines += other.lines
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.quarantined += other.quarantined
        self.notes.extend(other.notes)


QuarantineSink = Callable[[Quarantined], None]


def ingest_file(
    store: Store,
    path: Path,
    *,
    max_line_bytes: int = 8 << 20,
    on_quarantine: QuarantineSink | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> IngestResult:
    """Take in the complete lines of `path` that were not taken in before."""
    if path.suffix == ".json":
        return _ingest_json_document(store, path, on_quarantine=on_quarantine)
    key = str(path.resolve())
    try:
        stat = path.stat()
    except FileNotFoundError:
        return IngestResult()
    progress = store.file_progress(key)
    if (
        progress.inode is not None and progress.inode != stat.st_ino
    ) or stat.st_size < progress.offset:
        progress = FileProgress()  # replaced or truncated: start again from the top
    result = IngestResult(files=1)
    if stat.st_size == 0:
        result.notes.append(f"{path}: empty file, nothing to take in")
    if stat.st_size <= progress.offset:
        return result
    offset, line_no = progress.offset, progress.line
    parsed: list[tuple[Trajectory, int]] = []
    bad: list[Quarantined] = []
    pending_bytes = 0

    def flush() -> None:
        nonlocal parsed, bad, pending_bytes
        batch = store.record_batch(key, parsed, bad, FileProgress(offset, line_no, stat.st_ino))
        result.stored += batch.stored
        result.duplicates += batch.duplicates
        result.quarantined += batch.quarantined
        if on_quarantine:
            for entry in bad:
                on_quarantine(entry)
        if on_progress:
            on_progress(pending_bytes)
        parsed, bad, pending_bytes = [], [], 0

    with path.open("rb") as handle:
        handle.seek(offset)
        for raw, end in _complete_lines(handle, offset):
            line_no += 1
            pending_bytes += end - offset
            line_offset, offset = offset, end
            raw = raw.rstrip(b"\r")
            if not raw.strip():
                continue
            result.lines += 1
            try:
                if len(raw) > max_line_bytes:
                    raise InvalidTrajectory(
                        f"line is {len(raw)} bytes, over the limit of {max_line_bytes}"
                    )
                parsed.append((parse_line(raw), line_no))
            except InvalidTrajectory as exc:
                bad.append(Quarantined(str(path), line_no, line_offset, exc.reason, excerpt(raw)))
            if len(parsed) + len(bad) >= BATCH_LINES:
                flush()
    if parsed or bad or offset != progress.offset:
        flush()
    return result


def ingest_paths(
    store: Store,
    paths: Iterable[Path],
    **options: object,
) -> IngestResult:
    """`ingest_file` over files and folders (every *.jsonl below a folder)."""
    total = IngestResult()
    for path in expand(paths):
        total.add(ingest_file(store, path, **options))  # type: ignore[arg-type]
    return total


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and the *.jsonl files below each folder, sorted."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*.jsonl") if p.is_file()))
        elif path.exists():
            files.append(path)
        else:
            raise IntakeError(f"{path} does not exist")
    return files


def excerpt(raw: bytes, limit: int = 300) -> str:
    """The start of a bad line, readable and with secrets redacted."""
    text = raw[: limit * 4].decode("utf-8", errors="backslashreplace")
    text = redact(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _complete_lines(handle, start: int):  # type: ignore[no-untyped-def]
    """Yield (line bytes, offset after its newline); a trailing partial line is left."""
    buffer = b""
    position = start
    while True:
        chunk = handle.read(READ_CHUNK)
        if not chunk:
            return
        buffer += chunk
        lines = buffer.split(b"\n")
        buffer = lines.pop()
        for line in lines:
            position += len(line) + 1
            yield line, position


def _ingest_json_document(
    store: Store, path: Path, *, on_quarantine: QuarantineSink | None
) -> IngestResult:
    """A whole .json file: a record, an array (tau-bench), a tau2 or MedAgentBench results file."""
    key = str(path.resolve())
    stat = path.stat()
    progress = store.file_progress(key)
    result = IngestResult(files=1)
    if progress.offset == stat.st_size and progress.inode == stat.st_ino:
        return result
    try:
        document = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntakeError(f"{path} is not a JSON document: {exc}") from exc
    records = records_in_document(document, source_name=str(path))
    parsed, bad = [], []
    for index, record in enumerate(records, start=1):
        try:
            parsed.append((parse_record(record), index))
        except InvalidTrajectory as exc:
            raw = json.dumps(record).encode()
            bad.append(Quarantined(str(path), index, index, exc.reason, excerpt(raw)))
    batch = store.record_batch(
        key, parsed, bad, FileProgress(stat.st_size, len(records), stat.st_ino)
    )
    if on_quarantine:
        for entry in bad:
            on_quarantine(entry)
    result.lines = len(records)
    result.stored, result.duplicates, result.quarantined = (
        batch.stored,
        batch.duplicates,
        batch.quarantined,
    )
    return result


def quarantine_file_sink(path: Path) -> QuarantineSink:
    """Append each quarantined line to a readable JSONL file (the table stays authoritative)."""

    def sink(entry: Quarantined) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "at": utcnow().isoformat(timespec="seconds"),
            "file": entry.file,
            "line": entry.line,
            "reason": entry.reason,
            "excerpt": entry.excerpt,
        }
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    return sink


def pending_bytes(store: Store, paths: Iterable[Path]) -> int:
    """How many bytes of these files are not yet taken in (for a progress bar's total)."""
    total = 0
    for path in paths:
        size = path.stat().st_size
        offset = store.file_progress(str(path.resolve())).offset
        total += size - offset if size >= offset else size
    return total
