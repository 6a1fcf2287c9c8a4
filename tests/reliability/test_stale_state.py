"""What a SIGKILLed daemon leaves behind (issue 14): the pid it stored, and the scratch
folders of a proposal it was building. `status` must not believe the pid, and a restart
must remove the folders, however many times the daemon is killed."""

from __future__ import annotations

import fcntl
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skillforge.library import SCRATCH, LibraryRepo
from tests.daemon_harness import DaemonProcess, wait_for
from tests.reliability.runs import WORDS, family, lines

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


def scratch_folders(daemon: DaemonProcess, tmpdir: Path) -> list[Path]:
    """Scratch folders where the old code put them ($TMPDIR) and where they go now."""
    root = daemon.home / "library" / ".git" / SCRATCH
    found = list(tmpdir.glob("skillforge-*"))
    return found + ([p for p in root.iterdir() if p.name != ".lock"] if root.is_dir() else [])


def wait_for_library_lock(daemon: DaemonProcess) -> None:
    """Git processes of a killed daemon hold the library lock until they finish; wait (by
    hand: LibraryRepo.lock() would itself clean the folders this test is about)."""
    with open(daemon.home / "library" / ".git" / "skillforge.lock", "a") as handle:
        deadline = time.monotonic() + 60
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                assert time.monotonic() < deadline, "the killed daemon's git never finished"
                time.sleep(0.05)


def test_sigkill_while_building_a_proposal_leaves_no_scratch_folder(tmp_path, monkeypatch):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))  # the daemon's; the old code's folders go here
    monkeypatch.setenv("SKILLFORGE_TEST_PAUSE", "commit:0")  # says when the commit starts
    daemon = DaemonProcess(
        tmp_path / "var",
        tmp_path / "inbox",
        evolve_after=10**9,  # only the start-up cycle runs
        evolve_every_minutes=600,
        sweep_seconds=0.2,
    )
    daemon.inbox.mkdir(parents=True)
    marker = "test pause at commit"
    landed = 0
    for attempt in range(12):
        if landed == 2:
            break
        # New runs each time, so that a start-up cycle runs even when a kill came too late.
        records = family(WORDS[attempt], start=attempt * 10)
        (daemon.inbox / f"agent-{attempt}.jsonl").write_text(lines(records))
        seen = daemon.output().count(marker)
        daemon.start()
        wait_for(
            lambda s=seen: daemon.output().count(marker) > s,
            timeout=120,
            what=marker,
            log=daemon.output,
            interval=0.005,
        )
        # Kill as soon as a scratch folder holds the proposal's temporary index.
        deadline = time.monotonic() + 30
        while not scratch_folders(daemon, tmpdir) and time.monotonic() < deadline:
            time.sleep(0.001)
        daemon.kill()
        wait_for_library_lock(daemon)
        left = scratch_folders(daemon, tmpdir)
        if left:
            landed += 1
            # The restart before this kill removed what the kill before it left.
            assert len(left) == 1, left
    assert landed == 2, "no kill landed while a scratch folder existed; the test proved nothing"
    monkeypatch.delenv("SKILLFORGE_TEST_PAUSE")
    done = daemon.output().count("proposed ")
    daemon.start()
    try:
        wait_for(
            lambda: daemon.output().count("proposed ") > done,
            timeout=120,
            what="the redone cycle's proposal",
            log=daemon.output,
        )
    finally:
        assert daemon.stop() == 0
    assert scratch_folders(daemon, tmpdir) == []


def test_a_live_process_keeps_its_scratch_folder_and_a_killed_one_loses_it(tmp_path):
    repo = LibraryRepo.ensure(tmp_path / "library", tmp_path / "library.git")
    holder = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from skillforge.library import LibraryRepo\n"
        "repo = LibraryRepo(Path(sys.argv[1]), Path(sys.argv[2]))\n"
        "with repo._scratch() as tmp:\n"
        "    print(tmp, flush=True)\n"
        "    time.sleep(600)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", holder, str(repo.workdir), str(repo.remote)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        folder = Path(proc.stdout.readline().strip())
        assert folder.parent == repo.git_dir / SCRATCH and folder.is_dir()
        with repo.lock():  # sweeps: the folder is in use, it stays
            pass
        assert folder.is_dir()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert folder.is_dir()  # SIGKILL skipped the cleanup
    with repo.lock():
        pass
    assert not folder.exists()
    assert [p.name for p in (repo.git_dir / SCRATCH).iterdir()] == [".lock"]
