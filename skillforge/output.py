"""All user-facing output goes through here: lines, and a progress bar on a terminal."""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import TextIO

_lock = threading.Lock()


def write_line(text: str = "", *, stream: TextIO | None = None) -> None:
    """Print one line (thread-safe, flushed: the daemon's output is read live)."""
    stream = stream or sys.stdout
    with _lock:
        stream.write(text + "\n")
        stream.flush()


class Progress:
    """A progress bar over a known total; on a non-terminal, one line when done."""

    def __init__(self, total: int, label: str, *, unit: str = "B", stream: TextIO | None = None):
        self.total = max(total, 0)
        self.done = 0
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self._last_draw = 0.0
        self._started = time.monotonic()

    def __enter__(self) -> Progress:
        self._draw(force=True)
        return self

    def update(self, amount: int) -> None:
        self.done = min(self.done + amount, self.total) if self.total else self.done + amount
        self._draw()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self.done = self.total or self.done
        self._draw(force=True)
        if self.live:
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.live or (not force and now - self._last_draw < 0.1):
            return
        self._last_draw = now
        share = self.done / self.total if self.total else 1.0
        bar = "#" * int(share * 30)
        text = f"\r{self.label} [{bar:<30}] {share:4.0%} {_size(self.done, self.unit)}"
        with _lock:
            self.stream.write(text)
            self.stream.flush()


def _size(amount: int, unit: str) -> str:
    if unit != "B":
        return f"{amount} {unit}"
    for suffix in ("B", "KB", "MB", "GB"):
        if amount < 1024 or suffix == "GB":
            return f"{amount:.0f} {suffix}" if suffix == "B" else f"{amount:.1f} {suffix}"
        amount /= 1024  # type: ignore[assignment]
    return f"{amount} B"
