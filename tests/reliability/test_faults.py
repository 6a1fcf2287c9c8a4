"""Disk and remote faults while the real daemon runs: an unreachable remote, and a full disk
under git. The cycle fails cleanly (the daemon says so and keeps serving), nothing is lost,
main and the remote stay whole, and the next cycle after the fault clears proposes.

A full disk is simulated without root: git runs through a wrapper that, while a flag file
exists, sets a file-size limit of 0 (`ulimit -f 0`, SIGXFSZ ignored), so every file git
writes fails with EFBIG as it would with ENOSPC. The store is not limited: a store that
cannot write is intake's fault, and intake retries from its stored offset."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Callable

import pytest

from skillforge.library import LibraryRepo
from tests.daemon_harness import DaemonProcess, wait_for
from tests.reliability.runs import family, lines

pytestmark = pytest.mark.e2e

FULL_DISK_GIT = """#!/bin/sh
if [ -e "{flag}" ]; then ulimit -f 0; trap '' XFSZ; fi
exec git "$@"
"""


def remote_heads(remote) -> dict[str, str]:
    out = subprocess.run(
        ["git", "ls-remote", "--heads", str(remote)], capture_output=True, text=True, check=True
    ).stdout
    return {
        ref.removeprefix("refs/heads/"): sha for sha, ref in (x.split() for x in out.splitlines())
    }


def open_proposals(daemon: DaemonProcess) -> list[str]:
    with sqlite3.connect(f"file:{daemon.home / 'skillforge.db'}?mode=ro", uri=True) as conn:
        return [b for (b,) in conn.execute("SELECT branch FROM proposals WHERE status = 'open'")]


def start(tmp_path) -> DaemonProcess:
    daemon = DaemonProcess(
        tmp_path / "var",
        tmp_path / "inbox",
        evolve_after=10,
        evolve_every_minutes=0.05,  # the retry: every 3 s
        sweep_seconds=0.2,
    )
    daemon.start()
    wait_for(lambda: "skillforge serving" in daemon.output(), timeout=60, what="start")
    return daemon


def fault_then_recovery(
    daemon: DaemonProcess, cause: Callable[[], object], clear: Callable[[], object]
) -> None:
    """Append runs during the fault: the cycle fails cleanly and nothing is lost; clear the
    fault: the next cycle proposes, and every run is stored once."""
    remote = daemon.home / "library.git"
    main = remote_heads(remote)["main"]
    cause()
    runs = family("invoice", count=8) + family("parcel", count=8)
    (daemon.inbox / "runs.jsonl").write_text(lines(runs))
    wait_for(
        lambda: "cycle failed" in daemon.output(),
        timeout=60,
        what="a failed cycle",
        log=daemon.output,
    )
    assert daemon.proc.poll() is None  # still serving
    assert set(daemon.stored_ids()) == {r["id"] for r in runs}  # intake went on
    assert open_proposals(daemon) == []
    clear()
    wait_for(
        lambda: open_proposals(daemon),
        timeout=60,
        what="a proposal after the fault",
        log=daemon.output,
    )
    [branch] = open_proposals(daemon)
    heads = remote_heads(remote)
    assert heads["main"] == main and set(heads) == {"main", branch}
    # The daemon cycles every 3 s; checking under its lock keeps a fetch or push out of fsck.
    with LibraryRepo(daemon.home / "library", remote).lock(timeout=60):
        for git_dir in (remote, daemon.home / "library" / ".git"):
            subprocess.run(
                ["git", "--git-dir", str(git_dir), "fsck", "--full"],
                check=True,
                capture_output=True,
            )
    ids = daemon.stored_ids()
    assert len(ids) == len(runs) and set(ids) == {r["id"] for r in runs}


def test_an_unreachable_remote_fails_the_cycle_cleanly_and_it_is_retried(tmp_path):
    daemon = start(tmp_path)
    remote = daemon.home / "library.git"
    away = remote.with_name("library.git.unreachable")
    try:
        fault_then_recovery(
            daemon, cause=lambda: remote.rename(away), clear=lambda: away.rename(remote)
        )
    finally:
        assert daemon.stop() == 0
    assert "cycle failed" in daemon.output() and "Traceback" not in daemon.output()


def test_a_full_disk_under_git_fails_the_cycle_cleanly_and_it_is_retried(tmp_path, monkeypatch):
    flag = tmp_path / "disk-full"
    wrapper = tmp_path / "git-on-a-full-disk"
    wrapper.write_text(FULL_DISK_GIT.format(flag=flag))
    wrapper.chmod(0o755)
    monkeypatch.setenv("GIT_PYTHON_GIT_EXECUTABLE", str(wrapper))
    daemon = start(tmp_path)
    try:
        fault_then_recovery(daemon, cause=flag.touch, clear=flag.unlink)
    finally:
        assert daemon.stop() == 0
    output = daemon.output()
    assert "cycle failed" in output and "Traceback" not in output
    with sqlite3.connect(daemon.home / "skillforge.db") as conn:
        failed = conn.execute("SELECT error FROM cycles WHERE status = 'failed'").fetchall()
    assert failed  # the failed cycle is on record, with git's reason
