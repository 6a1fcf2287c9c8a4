"""Watch the inbox: watchdog events say which files changed, a periodic sweep catches the rest.

inotify coalesces events (10,000 appends gave 197 here), so an event is only a hint that a
file changed; intake reads from its stored offset whatever the number of events.

The inbox is untrusted: only regular files inside it are ever listed. A symbolic link is
followed only when it leads to a regular file inside the inbox (that file is listed under its
own name); a link out of the inbox, to a folder outside it, or in a loop is skipped with one
warning, and never opened. Rotated names (`runs.jsonl.1`, `runs.jsonl-20261121`) are listed
too, so the lines a writer still appends to a file renamed by logrotate are read.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

log = logging.getLogger("skillforge.intake")

# `*.jsonl`, and the names logrotate gives it: `.1`, `.2`, ... or a date (not `.gz`); and the
# run files of SWE-agent (`<id>.traj`) and mini-swe-agent (`<id>.traj.json`), read whole once
# their agent has finished.
_NAME = re.compile(r".+\.jsonl(?:\.\d+|-\w+)?|.+\.traj(?:\.json)?")

SkipHandler = Callable[[Path, str], None]


def is_trajectory_file(name: str) -> bool:
    """Whether intake reads a file of this name: `*.jsonl`, a rotated `*.jsonl.1`, or a
    SWE-agent / mini-swe-agent run file (`*.traj`, `*.traj.json`)."""
    return _NAME.fullmatch(name) is not None


def _warn(path: Path, why: str) -> None:
    log.warning("intake: not reading %s: %s", path, why)


def _inside(root: str, real: str) -> bool:
    return real.startswith(root.rstrip(os.sep) + os.sep)


def _follow_link(root: str, link: str) -> tuple[str | None, str]:
    """Where a link inside the inbox leads: (its real path, "") for a regular file inside
    the inbox, else (None, why it is not read; "" when it is nothing intake would read)."""
    real = os.path.realpath(link)
    try:
        info = os.stat(real)
    except OSError as exc:
        return None, "a loop of symbolic links" if exc.errno == errno.ELOOP else ""
    if not _inside(root, real):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a file"
        return None, f"a symbolic link to {kind} outside the inbox ({real})"
    if not stat.S_ISREG(info.st_mode):
        return None, ""  # a link to a folder inside: its files are listed where they are
    return real, ""


def inbox_files(inbox: Path, *, on_skip: SkipHandler | None = None) -> list[Path]:
    """The trajectory files in the inbox, sorted, each once, never through a link out of it.

    Paths are under `inbox` as given (a file reached by a link inside the inbox under its
    own name). Each link or entry not read is passed to `on_skip` (default: a warning)."""
    skip = on_skip or _warn
    root = os.path.realpath(inbox)
    found: dict[str, Path] = {}
    pending = [(root, inbox)]
    while pending:
        real_dir, shown_dir = pending.pop()
        try:
            entries = list(os.scandir(real_dir))
        except OSError:
            continue  # gone or unreadable: the next sweep looks again
        for entry in entries:
            shown = shown_dir / entry.name
            try:
                if entry.is_symlink():
                    real, why = _follow_link(root, entry.path)
                    if real is None:
                        if why and (is_trajectory_file(entry.name) or "folder" in why):
                            skip(shown, why)
                        continue
                    if is_trajectory_file(entry.name) or is_trajectory_file(Path(real).name):
                        found.setdefault(real, inbox / os.path.relpath(real, root))
                elif entry.is_dir(follow_symlinks=False):
                    pending.append((entry.path, shown))
                elif is_trajectory_file(entry.name):
                    if entry.is_file(follow_symlinks=False):
                        found[entry.path] = shown
                    else:
                        skip(shown, "not a regular file")
            except OSError:
                continue  # vanished while looking
    return sorted(found.values())


def admit(inbox: Path, path: Path, *, on_skip: SkipHandler | None = None) -> Path | None:
    """`path` (from an event) as intake may read it: a regular file inside the inbox, under
    the inbox as given; None when it is not one (a link out is passed to `on_skip`)."""
    root = os.path.realpath(inbox)
    try:
        info = os.lstat(path)
    except OSError:
        return None  # gone: nothing to read
    if stat.S_ISLNK(info.st_mode):
        real, why = _follow_link(root, str(path))
        if real is None:
            if why:
                (on_skip or _warn)(path, why)
            return None
    else:
        real = os.path.realpath(path)
        if not _inside(root, real):
            (on_skip or _warn)(path, f"outside the inbox ({real})")
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
    return inbox / os.path.relpath(real, root)


class _Hints(FileSystemEventHandler):
    """Collects the paths of changed trajectory files from the observer thread."""

    def __init__(self, wake: threading.Event) -> None:
        self._paths: set[str] = set()
        self._lock = threading.Lock()
        self._wake = wake

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        for path in (event.src_path, getattr(event, "dest_path", "")):
            if isinstance(path, bytes):
                path = path.decode(errors="surrogateescape")
            if path and is_trajectory_file(os.path.basename(path)):
                with self._lock:
                    self._paths.add(path)
                self._wake.set()

    def take(self) -> set[str]:
        with self._lock:
            paths, self._paths = self._paths, set()
        return paths


def _once(on_skip: SkipHandler | None) -> SkipHandler:
    """`on_skip` (default: a warning) called once per path and reason, not every sweep."""
    seen: set[tuple[str, str]] = set()

    def skip(path: Path, why: str) -> None:
        if (str(path), why) not in seen:
            seen.add((str(path), why))
            (on_skip or _warn)(path, why)

    return skip


def watch_inbox(
    inbox: Path,
    *,
    stop: threading.Event,
    sweep_seconds: float = 5.0,
    polling: bool = False,
    on_skip: SkipHandler | None = None,
) -> Iterator[list[Path]]:
    """Yield lists of files to (re)read: all of them first, then changed ones, until `stop`;
    at least once per sweep, even an empty list (runs other hosts stored may be due a cycle).

    A link out of the inbox (or a loop) is never yielded; `on_skip` hears of it once
    (default: a logged warning)."""
    inbox.mkdir(parents=True, exist_ok=True)
    skip = _once(on_skip)
    wake = threading.Event()
    handler = _Hints(wake)
    observer = PollingObserver(timeout=1) if polling else Observer()
    observer.schedule(handler, str(inbox), recursive=True)
    observer.start()
    try:
        yield inbox_files(inbox, on_skip=skip)
        last_sweep = time.monotonic()
        while not stop.is_set():
            wake.wait(timeout=min(0.5, sweep_seconds))
            wake.clear()
            if stop.is_set():
                break
            hinted = (admit(inbox, Path(p), on_skip=skip) for p in handler.take())
            paths = {p for p in hinted if p is not None}
            swept = time.monotonic() - last_sweep >= sweep_seconds
            if swept:
                paths.update(inbox_files(inbox, on_skip=skip))
                last_sweep = time.monotonic()
            if paths or swept:  # a sweep yields even nothing: the caller's periodic work
                yield sorted(paths)
    finally:
        observer.stop()
        observer.join(timeout=5)
