"""Read trajectories from JSONL files into the store, exactly once.

Only complete lines are read (a line still being written waits for its newline). The byte
offset after the last consumed line is stored with the rows it produced, in one transaction,
so a restart resumes exactly there.

A file is followed by what it is, not only by its name: its device and inode, and a
fingerprint of the bytes before the offset (the first and the last 4 KiB). A file renamed
beside itself (logrotate's `runs.jsonl` -> `runs.jsonl.1`) keeps its progress under the new
name and its remaining lines are read; a file truncated, rewritten (bigger, or to the same
size) or replaced, even on a reused inode, is read again from the top. A run read again is
counted as a duplicate by its id, never stored twice, unless it was stored with an unknown
outcome and this copy is the same run with its outcome known (a harness report written after
the run): then that outcome is set (`Store.set_outcomes`) and counted in `outcomes`.

A line that is not a trajectory goes to the quarantine with its file, line number and reason
(redacted: a parser's message may quote the input), and intake goes on. After
QUARANTINE_PER_FILE bad lines of one file, one summary row counts the rest and their range. A
line longer than `max_line_bytes` is read through without being kept and quarantined once. The
last name of a path is never followed if it is a symbolic link (see `watcher` for the inbox).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from evolver.model import Trajectory
from evolver.redact import redact

from .errors import IntakeError, InvalidTrajectory
from .importers import read_line, read_record, records_in_document, run_finished
from .store import FileProgress, Quarantined, Store, utcnow
from .watcher import inbox_files

BATCH_LINES = 500  # stored lines per transaction
BATCH_BYTES = 256 << 10  # ... or bytes read: the runs a batch holds are walked by every
# collection of the cyclic garbage collector until they are stored, so big runs go in small batches
READ_CHUNK = 1 << 20
FINGERPRINT_BYTES = 4096  # of the head and of the bytes just before the offset
QUARANTINE_PER_FILE = 100  # bad lines of one file kept one by one; the rest are counted
BOM = b"\xef\xbb\xbf"


@dataclass
class IngestResult:
    """What one pass over one or more files did."""

    files: int = 0
    lines: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    outcomes: int = 0  # stored runs whose unknown outcome a copy of them brought
    waiting: int = 0  # run files whose agent has not finished (read again when they change)
    notes: list[str] = field(default_factory=list)

    def add(self, other: IngestResult) -> None:
        self.files += other.files
        self.lines += other.lines
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.quarantined += other.quarantined
        self.outcomes += other.outcomes
        self.waiting += other.waiting
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
    """Take in the complete lines of `path` that were not taken in before.

    Raises IntakeError when `path` is a symbolic link, a loop of them, or not a regular
    file (nothing of it is read); a path that does not exist takes nothing in."""
    if path.suffix in (".json", ".traj"):  # whole documents (a SWE-agent run is one .traj)
        return _ingest_json_document(store, path, on_quarantine=on_quarantine)
    try:
        handle, key = _open_regular(path)
    except FileNotFoundError:
        return IngestResult()
    with handle:
        reader = _FileIntake(store, path, key, handle, max_line_bytes, on_quarantine, on_progress)
        try:
            return reader.run()
        except OSError as exc:  # e.g. EIO: taken in up to the last batch, retried later
            raise IntakeError(f"cannot read {path}: {exc}") from exc


def ingest_paths(
    store: Store,
    paths: Iterable[Path],
    **options: object,
) -> IngestResult:
    """`ingest_file` over files and folders (every *.jsonl, or rotated *.jsonl.1, below one)."""
    total = IngestResult()
    for path in expand(paths):
        total.add(ingest_file(store, path, **options))  # type: ignore[arg-type]
    return total


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files as given (a link named here is followed: it was asked for), and the trajectory
    files below each folder, sorted, without following links out of the folder."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(inbox_files(path))
        elif path.exists():
            files.append(Path(os.path.realpath(path)) if path.is_symlink() else path)
        else:
            raise IntakeError(f"{path} does not exist")
    return files


EXCERPT_WINDOW = 64 * 1024  # bytes of a bad line redacted for its excerpt


def excerpt(raw: bytes, limit: int = 300) -> str:
    """The start of a bad line, readable and with secrets redacted.

    Redacted first, cut after: a secret cut in two before redaction is no longer recognised,
    and a redacted block (a private key) may pull later text into the excerpt. The window
    redacted ends at whitespace, so no token is cut at its end either."""
    window = raw[:EXCERPT_WINDOW]
    if len(raw) > len(window):
        window = window[: max(window.rfind(b" "), window.rfind(b"\n"), 0)]
    text = redact(window.decode("utf-8", errors="backslashreplace"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _open_regular(path: Path) -> tuple[BinaryIO, str]:
    """Open `path` for reading without following a link in its last name, and without
    blocking on a FIFO: the file, and its real path (the key of its progress)."""
    real = os.path.join(os.path.realpath(path.parent), path.name)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(real, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise IntakeError(
                f"{path} is a symbolic link (or a loop of them); intake does not follow links:"
                " name the file it leads to"
            ) from exc
        raise IntakeError(f"cannot read {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise IntakeError(f"{path} is not a regular file")
    return os.fdopen(fd, "rb", buffering=0), real


@dataclass
class _Skipped:
    """A line over the limit, read through: its size (newline included), first and last bytes."""

    size: int = 0
    head: bytes = b""
    tail: bytes = b""

    def grow(self, data: bytes) -> None:
        self.size += len(data)
        if len(self.head) < FINGERPRINT_BYTES:
            self.head += data[: FINGERPRINT_BYTES - len(self.head)]
        self.tail = (self.tail + data[-FINGERPRINT_BYTES:])[-FINGERPRINT_BYTES:]


def _complete_lines(
    handle: BinaryIO, start: int, limit: int
) -> Iterator[tuple[bytes | _Skipped, int]]:
    """Yield (line bytes, offset after its newline) for each complete line from `start`; a
    line longer than `limit` comes as a `_Skipped`, never held whole. A trailing partial
    line is left for later (it is read again, as it grows, until its newline arrives)."""
    buffer = b""
    position = start  # the file offset of buffer[0]
    skipping: _Skipped | None = None
    while chunk := handle.read(READ_CHUNK):
        if skipping is not None:
            newline = chunk.find(b"\n")
            if newline < 0:
                skipping.grow(chunk)
                continue
            skipping.grow(chunk[: newline + 1])
            position += skipping.size
            yield skipping, position
            skipping, chunk = None, chunk[newline + 1 :]
        if b"\n" in chunk:
            lines = (buffer + chunk).split(b"\n")
            buffer = lines.pop()
            for line in lines:
                position += len(line) + 1
                if len(line) > limit:
                    over = _Skipped()
                    over.grow(line + b"\n")
                    yield over, position
                else:
                    yield line, position
        else:
            buffer += chunk
        if len(buffer) > limit:
            skipping = _Skipped()
            skipping.grow(buffer)
            buffer = b""


def _fingerprint(head: bytes, tail: bytes) -> str:
    digest = hashlib.blake2b(head, digest_size=16)
    digest.update(tail)
    return f"{len(head)}:{len(tail)}:{digest.hexdigest()}"


@dataclass
class _Summary:
    """Bad lines of one file past QUARANTINE_PER_FILE: counted, with their range."""

    line: int
    offset: int
    excerpt: str
    lines: int = 0
    last_line: int = 0
    last_reason: str = ""

    def row(self, file: str) -> Quarantined:
        reason = (
            f"{self.lines} more bad lines, lines {self.line}-{self.last_line}, counted but not"
            f" kept one by one (over {QUARANTINE_PER_FILE} from this file); the last:"
            f" {self.last_reason}"
        )
        return Quarantined(
            file, self.line, self.offset, redact(reason), self.excerpt, self.lines, self.last_line
        )


class _FileIntake:
    """One pass over one open file: where to start, then line by line in batches."""

    def __init__(
        self,
        store: Store,
        path: Path,
        key: str,
        handle: BinaryIO,
        max_line_bytes: int,
        on_quarantine: QuarantineSink | None,
        on_progress: Callable[[int], None] | None,
    ) -> None:
        self.store, self.path, self.key, self.handle = store, path, key, handle
        self.limit, self.on_quarantine, self.on_progress = (
            max_line_bytes,
            on_quarantine,
            on_progress,
        )
        self.stat = os.fstat(handle.fileno())
        self.result = IngestResult(files=1)
        self.head = b""  # the file's first bytes consumed, up to FINGERPRINT_BYTES
        self.tail: deque[bytes] = deque()  # the last bytes consumed, at least FINGERPRINT_BYTES
        self.tail_size = 0
        self.parsed: list[tuple[Trajectory, int]] = []
        self.data: list[str] = []  # the JSON the store keeps for each parsed run
        self.bad: list[Quarantined] = []
        self.summary: _Summary | None = None
        self.summary_dirty = self.summary_grew = False  # since the last flush; in this pass
        self.pending_lines = self.pending_bytes = 0
        self.offset = self.line_no = self.bad_lines = 0
        self.saved = FileProgress()  # what the store holds under this file's name

    # -- where to start -------------------------------------------------------------------

    def _start(self) -> FileProgress | None:
        """The progress to go on from (a fresh one when the file is new or was rewritten);
        None when this file is being read under another name (a hard link)."""
        st = self.stat
        progress = self.saved = self.store.file_progress(self.key)
        if progress == FileProgress():
            for other, known in self.store.progress_by_identity(st.st_dev, st.st_ino):
                if other == self.key:
                    continue
                if _identity(other) == (st.st_dev, st.st_ino):
                    self.result.notes.append(f"{self.path}: the same file as {other}, read there")
                    return None
                self.store.move_progress(other, self.key)  # renamed to this name
                progress = self.saved = known
                break
        elif progress.inode is not None and not _same_file(progress, st):
            self.saved = FileProgress()  # what is stored under this name moves or is replaced
            self._follow_renamed(progress)
            self.result.notes.append(f"{self.path}: a new file under this name, read from the top")
            return FileProgress()
        if (progress.offset or progress.line) and not self._verified(progress):
            self.result.notes.append(
                f"{self.path}: rewritten since it was read; read again from the top"
                " (runs already stored count as duplicates)"
            )
            return FileProgress()
        return progress

    def _verified(self, progress: FileProgress) -> bool:
        """Whether the bytes before the offset are still those that were read (a file read
        before fingerprints were kept is trusted as far as it is long enough)."""
        offset = progress.offset
        if self.stat.st_size < offset:
            return False
        size = min(FINGERPRINT_BYTES, offset)
        head = os.pread(self.handle.fileno(), size, 0)
        tail = os.pread(self.handle.fileno(), size, offset - size)
        if progress.fingerprint is not None:
            head_size, tail_size, _ = progress.fingerprint.split(":")
            seen = _fingerprint(head[: int(head_size)], tail[len(tail) - int(tail_size) :])
            if seen != progress.fingerprint:
                return False
        self.head = head  # what the next fingerprint starts from
        self._push_tail(tail)
        return True

    def _follow_renamed(self, progress: FileProgress) -> None:
        """The file read under this name was replaced: when it was renamed beside it (log
        rotation), its progress goes with it and its remaining lines are read now."""
        moved = _follow(self.store, self.key, progress)
        if moved is None:
            return
        renamed = self.path.parent / os.path.basename(moved)
        self.result.notes.append(f"{self.path}: renamed to {renamed}, read on there")
        self.result.add(
            ingest_file(
                self.store,
                renamed,
                max_line_bytes=self.limit,
                on_quarantine=self.on_quarantine,
                on_progress=self.on_progress,
            )
        )

    # -- reading --------------------------------------------------------------------------

    def run(self) -> IngestResult:
        progress = self._start()
        if progress is None:
            return self.result
        fresh = progress == FileProgress()
        if self.stat.st_size == 0:
            self.result.notes.append(f"{self.path}: empty file, nothing to take in")
        self.offset, self.line_no = progress.offset, progress.line
        self.bad_lines = progress.bad_lines
        if self.bad_lines > QUARANTINE_PER_FILE:
            known = self.store.quarantine_summary(str(self.path))
            if known is not None:
                self.summary = _Summary(known.line, known.offset, known.excerpt, known.lines)
                self.summary.last_line = known.last_line or known.line
        self.handle.seek(self.offset)
        for line, end in _complete_lines(self.handle, self.offset, self.limit):
            self._take(line, end)
            if (
                len(self.parsed) + len(self.bad) >= BATCH_LINES
                or self.pending_lines >= 20 * BATCH_LINES
                or self.pending_bytes >= BATCH_BYTES
            ):
                self._flush()
        if self.parsed or self.bad or self.summary_dirty or self.offset != self.saved.offset:
            self._flush()
        elif fresh and self.saved != FileProgress() and self.stat.st_size:
            self._flush()  # a rewrite with no complete line yet: remember this file's identity
        if self.summary_grew and self.on_quarantine and self.summary:
            self.on_quarantine(self.summary.row(str(self.path)))
        return self.result

    def _take(self, line: bytes | _Skipped, end: int) -> None:
        """Consume one complete line ending at offset `end`."""
        start = self.offset
        self.line_no += 1
        self.pending_lines += 1
        self.pending_bytes += end - start
        self.offset = end
        if isinstance(line, _Skipped):
            if len(self.head) < FINGERPRINT_BYTES:
                self.head += line.head[: FINGERPRINT_BYTES - len(self.head)]
            self._push_tail(line.tail)
            self.result.lines += 1
            reason = (
                f"line longer than {self.limit} bytes ({line.size - 1:,} bytes): skipped unread"
            )
            self._bad(start, reason, line.head)
            return
        if len(self.head) < FINGERPRINT_BYTES:
            self.head += (line + b"\n")[: FINGERPRINT_BYTES - len(self.head)]
        self._push_tail(line)
        self._push_tail(b"\n")
        raw = line[len(BOM) :] if start == 0 and line.startswith(BOM) else line
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            return
        self.result.lines += 1
        try:
            trajectory, data = read_line(raw)
        except InvalidTrajectory as exc:
            self._bad(start, exc.reason, raw)
            return
        self.parsed.append((trajectory, self.line_no))
        self.data.append(data)

    def _push_tail(self, piece: bytes) -> None:
        """Keep the last consumed bytes, at least FINGERPRINT_BYTES of them."""
        if not piece:
            return
        self.tail.append(piece)
        self.tail_size += len(piece)
        while self.tail_size - len(self.tail[0]) >= FINGERPRINT_BYTES:
            self.tail_size -= len(self.tail.popleft())

    def _bad(self, offset: int, reason: str, raw: bytes) -> None:
        """A bad line: kept one by one up to QUARANTINE_PER_FILE of this file, then counted."""
        self.bad_lines += 1
        if self.bad_lines <= QUARANTINE_PER_FILE:
            entry = Quarantined(str(self.path), self.line_no, offset, redact(reason), excerpt(raw))
            self.bad.append(entry)
            return
        if self.summary is None:
            self.summary = _Summary(self.line_no, offset, excerpt(raw))
        self.summary.lines += 1
        self.summary.last_line, self.summary.last_reason = self.line_no, reason
        self.summary_dirty = self.summary_grew = True
        self.result.quarantined += 1

    def _flush(self) -> None:
        """Store the batch and the progress after it (with its fingerprint) together."""
        tail = b"".join(self.tail)[-FINGERPRINT_BYTES:]
        progress = FileProgress(
            self.offset,
            self.line_no,
            self.stat.st_ino,
            self.stat.st_dev,
            _fingerprint(self.head, tail) if self.offset else None,
            self.bad_lines,
        )
        rows = list(self.bad)
        if self.summary and self.summary_dirty:
            rows.append(self.summary.row(str(self.path)))
        batch = self.store.record_batch(self.key, self.parsed, rows, progress, data=self.data)
        self.result.stored += batch.stored
        self.result.duplicates += batch.duplicates
        self.result.quarantined += batch.quarantined
        self.result.outcomes += batch.outcomes
        if self.on_quarantine:
            for entry in self.bad:
                self.on_quarantine(entry)
        if self.on_progress:
            self.on_progress(self.pending_bytes)
        self.parsed, self.data, self.bad, self.summary_dirty = [], [], [], False
        self.pending_lines = self.pending_bytes = 0


def _follow(store: Store, key: str, progress: FileProgress, depth: int = 0) -> str | None:
    """The file read under `key` (its identity in `progress`) is no longer there: find it
    renamed in the same folder and move its progress with it; its new path, or None (gone,
    or moved elsewhere). Progress held under the new name moves on first, as it does when
    logrotate shifts `.1` to `.2` before `runs.jsonl` becomes `.1`."""
    try:
        entries = list(os.scandir(os.path.dirname(key)))
    except OSError:
        return None
    for entry in entries:
        try:
            if entry.path == key or entry.inode() != progress.inode:
                continue
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not (stat.S_ISREG(info.st_mode) and _same_file(progress, info)):
            continue
        held = store.file_progress(entry.path)
        if held.inode is not None and _same_file(held, info):
            return None  # tracked under that name already: `key`'s inode was reused there
        if held.inode is not None and depth < 32:
            _follow(store, entry.path, held, depth + 1)
        store.move_progress(key, entry.path)
        return entry.path
    return None


def _same_file(progress: FileProgress, info: os.stat_result) -> bool:
    return progress.inode == info.st_ino and progress.dev in (None, info.st_dev)


def _identity(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return info.st_dev, info.st_ino


# The progress of a run file whose agent has not finished: no run taken from it yet; while
# the file stays as it is, it is not parsed again (SWE-agent's can be megabytes, every sweep).
UNFINISHED = -1


def _ingest_json_document(
    store: Store, path: Path, *, on_quarantine: QuarantineSink | None
) -> IngestResult:
    """A whole .json file: a record, an array (tau-bench), a tau2 or MedAgentBench results file,
    a SWE-agent or mini-swe-agent run (once its agent has finished)."""
    try:
        handle, key = _open_regular(path)
        with handle:
            stat_ = os.fstat(handle.fileno())
            progress = store.file_progress(key)
            if progress.offset == stat_.st_size and progress.inode == stat_.st_ino:
                return IngestResult(files=1, waiting=int(progress.line == UNFINISHED))
            content = handle.read()
    except OSError as exc:
        raise IntakeError(f"cannot read {path}: {exc}") from exc
    result = IngestResult(files=1)
    try:
        document = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntakeError(f"{path} is not a JSON document: {exc}") from exc
    if not run_finished(document):  # read again once the agent writes the file again
        unfinished = FileProgress(stat_.st_size, UNFINISHED, stat_.st_ino, stat_.st_dev)
        store.record_batch(key, [], [], unfinished)
        return IngestResult(files=1, waiting=1)
    records = records_in_document(document, source_name=str(path))
    parsed, data, bad = [], [], []
    for index, record in enumerate(records, start=1):
        try:
            trajectory, dumped = read_record(record)
            parsed.append((trajectory, index))
            data.append(dumped)
        except InvalidTrajectory as exc:
            raw = json.dumps(record).encode()
            bad.append(Quarantined(str(path), index, index, redact(exc.reason), excerpt(raw)))
    progress = FileProgress(stat_.st_size, len(records), stat_.st_ino, stat_.st_dev)
    batch = store.record_batch(key, parsed, bad, progress, data=data)
    if on_quarantine:
        for entry in bad:
            on_quarantine(entry)
    result.lines = len(records)
    result.stored, result.duplicates, result.quarantined, result.outcomes = (
        batch.stored,
        batch.duplicates,
        batch.quarantined,
        batch.outcomes,
    )
    return result


def quarantine_file_sink(path: Path) -> QuarantineSink:
    """Append each quarantined line to a readable JSONL file (the table stays authoritative);
    reason and excerpt redacted, whoever made the entry."""

    def sink(entry: Quarantined) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "at": utcnow().isoformat(timespec="seconds"),
            "file": entry.file,
            "line": entry.line,
            "reason": redact(entry.reason),
            "excerpt": redact(entry.excerpt),
        }
        if entry.last_line is not None:
            record.update(lines=entry.lines, last_line=entry.last_line)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    return sink


def pending_bytes(store: Store, paths: Iterable[Path]) -> int:
    """How many bytes of these files are not yet taken in (for a progress bar's total)."""
    total = 0
    for path in paths:
        try:
            size = path.stat().st_size
        except OSError:
            continue
        offset = store.file_progress(os.path.realpath(path)).offset
        total += size - offset if size >= offset else size
    return total
