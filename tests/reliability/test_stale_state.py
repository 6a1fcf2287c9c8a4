"""What a SIGKILLed daemon leaves behind (issue 14): the pid it stored. `status` must not
believe it."""

from __future__ import annotations

import re

import pytest

from tests.daemon_harness import DaemonProcess, wait_for

pytestmark = pytest.mark.e2e


def daemon_line(daemon: DaemonProcess) -> str:
    out = daemon.cli("status").stdout
    return re.search(r"^daemon +(.*)$", out, re.M).group(1)  # type: ignore[union-attr]


def test_status_does_not_believe_the_pid_a_killed_daemon_left(tmp_path):
    daemon = DaemonProcess(tmp_path / "var", tmp_path / "inbox", evolve_every_minutes=600)
    daemon.start()
    wait_for(lambda: "skillforge serving" in daemon.output(), timeout=60, what="start")
    assert daemon.proc is not None
    pid = daemon.proc.pid
    assert daemon_line(daemon).startswith(f"running (pid {pid}); next cycle ")
    daemon.kill()
    line = daemon_line(daemon)
    assert line.startswith(f"not running (last seen pid {pid}, stopped uncleanly at about 20")
    assert line.endswith("; next cycle not scheduled")
    # Restarted, it is running again; stopped cleanly, it leaves no pid to doubt.
    daemon.start()
    wait_for(lambda: daemon.output().count("skillforge serving") == 2, timeout=60, what="start")
    assert daemon_line(daemon).startswith(f"running (pid {daemon.proc.pid})")
    assert daemon.stop() == 0
    assert daemon_line(daemon) == "not running; next cycle not scheduled"
