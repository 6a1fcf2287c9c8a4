"""A daemon's cycle runs in a child process: killing the cycle leaves intake serving, and
killing the daemon ends the cycle (no orphan holds the library lock)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.daemon_harness import DaemonProcess, wait_for
from tests.reliability.runs import family, lines

pytestmark = pytest.mark.e2e


def cycle_children(daemon_pid: int) -> list[int]:
    """Pids of `python -m skillforge.cycle_process <daemon_pid>` processes."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"skillforge.cycle_process" in argv and str(daemon_pid).encode() in argv:
            found.append(int(entry.name))
    return found


@pytest.fixture
def paused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DaemonProcess:
    """A daemon whose first cycle is paused before it commits."""
    if not Path("/proc/self/cmdline").exists():
        pytest.skip("finds the cycle process through /proc")
    monkeypatch.setenv("SKILLFORGE_TEST_PAUSE", "commit")
    daemon = DaemonProcess(
        tmp_path / "var", tmp_path / "inbox", evolve_every_minutes=600, sweep_seconds=0.2
    )
    daemon.inbox.mkdir(parents=True)
    (daemon.inbox / "a.jsonl").write_text(lines(family("invoice", count=8)))
    daemon.start()
    wait_for(lambda: "test pause at commit" in daemon.output(), timeout=120,
             what="the cycle's pause", log=daemon.output)  # fmt: skip
    return daemon


def test_a_killed_cycle_process_leaves_intake_serving(paused: DaemonProcess) -> None:
    assert paused.proc is not None
    [child] = cycle_children(paused.proc.pid)
    assert child != paused.proc.pid
    os.kill(child, signal.SIGKILL)
    wait_for(lambda: "killed by SIGKILL" in paused.output(), timeout=60,
             what="the daemon noticing", log=paused.output)  # fmt: skip
    before = len(paused.stored_ids())
    with (paused.inbox / "b.jsonl").open("a") as handle:
        handle.write(lines(family("refund", count=5)))
    wait_for(lambda: len(paused.stored_ids()) == before + 5, timeout=60,
             what="intake after the cycle died", log=paused.output)  # fmt: skip
    assert paused.proc.poll() is None
    assert paused.stop() == 0


def test_killing_the_daemon_ends_its_cycle_process(paused: DaemonProcess) -> None:
    assert paused.proc is not None
    pid = paused.proc.pid
    assert cycle_children(pid)
    paused.kill()
    wait_for(lambda: not cycle_children(pid), timeout=30, what="the cycle process to end")
