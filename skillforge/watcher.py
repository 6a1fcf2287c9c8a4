"""Watch the inbox: watchdog events say which files changed, a periodic sweep catches the rest.

inotify coalesces events (10,000 appends gave 197 here), so an event is only a hint that a
file changed; intake reads from its stored offset whatever the number of events.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

PATTERN = "*.jsonl"


class _Hints(FileSystemEventHandler):
    """Collects the paths of changed *.jsonl files from the observer thread."""

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
            if path and path.endswith(".jsonl"):
                with self._lock:
                    self._paths.add(path)
                self._wake.set()

    def take(self) -> set[str]:
        with self._lock:
            paths, self._paths = self._paths, set()
        return paths


def inbox_files(inbox: Path) -> list[Path]:
    return sorted(p for p in inbox.rglob(PATTERN) if p.is_file())


def watch_inbox(
    inbox: Path, *, stop: threading.Event, sweep_seconds: float = 5.0, polling: bool = False
) -> Iterator[list[Path]]:
    """Yield lists of files to (re)read: all of them first, then changed ones, until `stop`."""
    inbox.mkdir(parents=True, exist_ok=True)
    wake = threading.Event()
    handler = _Hints(wake)
    observer = PollingObserver(timeout=1) if polling else Observer()
    observer.schedule(handler, str(inbox), recursive=True)
    observer.start()
    try:
        yield inbox_files(inbox)
        last_sweep = time.monotonic()
        while not stop.is_set():
            wake.wait(timeout=min(0.5, sweep_seconds))
            wake.clear()
            if stop.is_set():
                break
            paths = {Path(p) for p in handler.take()}
            if time.monotonic() - last_sweep >= sweep_seconds:
                paths.update(inbox_files(inbox))
                last_sweep = time.monotonic()
            if paths:
                yield sorted(paths)
    finally:
        observer.stop()
        observer.join(timeout=5)
