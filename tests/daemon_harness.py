"""Run the real daemon as a subprocess on temporary folders, and look at what it did."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import REPO_ROOT


class DaemonProcess:
    """`skillforge serve` in a child process, with its output captured to a file."""

    def __init__(self, home: Path, inbox: Path, **settings: object) -> None:
        self.home, self.inbox = home, inbox
        self.config = home.parent / "skillforge.toml"
        lines = [f'home = "{home}"', f'inbox = "{inbox}"', f'seed = "{REPO_ROOT / "skills"}"']
        lines += [
            f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v)}".replace("'", '"')
            for k, v in settings.items()
        ]
        self.config.write_text("[skillforge]\n" + "\n".join(lines) + "\n")
        self.log = home.parent / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "skillforge.cli", "--config", str(self.config), *args]
        return subprocess.run(
            command, capture_output=True, text=True, check=check, env=os.environ.copy()
        )

    def start(self) -> DaemonProcess:
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "skillforge.cli", "--config", str(self.config), "serve"],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 60) -> int:
        assert self.proc is not None
        self.proc.terminate()
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=30)

    def stored_ids(self) -> list[str]:
        db = self.home / "skillforge.db"
        if not db.exists():
            return []
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
            try:
                return [row[0] for row in conn.execute("SELECT id FROM trajectories")]
            except sqlite3.OperationalError:  # tables not created yet
                return []

    def quarantined(self) -> int:
        with sqlite3.connect(f"file:{self.home / 'skillforge.db'}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT count(*) FROM quarantine").fetchone()[0]


def wait_for(
    condition: Callable[[], object],
    *,
    timeout: float,
    what: str,
    log: Callable[[], str] = str,
    interval: float = 0.1,
) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{log()}")
