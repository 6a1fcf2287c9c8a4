"""Load: several writer processes append to many files at once (their own and shared ones)
while the real daemon takes the lines in and runs cycles; nothing is lost or stored twice."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from tests.daemon_harness import DaemonProcess, wait_for
from tests.reliability.runs import WORDS, family, lines

pytestmark = pytest.mark.e2e

WRITERS, FAMILIES_EACH, RUNS_EACH = 4, 3, 120  # 4 x 3 x 120 = 1440 runs
SHARED_FILES, OWN_FILES = 8, 6  # 8 files every writer appends to, 6 of its own: 32 in all

# One write per line on an O_APPEND descriptor, as agents are told to write; a random file
# each time, and short pauses, so writing lasts seconds and cycles run meanwhile.
WRITER = r"""
import os, random, sys, time
plan, inbox, me = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(me)
names = [f"shared-{n}.jsonl" for n in range({shared})] + [
    f"writer{me}/own-{n}.jsonl" for n in range({own})]
os.makedirs(os.path.join(inbox, f"writer{me}"), exist_ok=True)
fds = {}
for line in open(plan, encoding="utf-8"):
    name = rng.choice(names)
    if name not in fds:
        fds[name] = os.open(os.path.join(inbox, name), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fds[name], line.encode())
    if rng.random() < 0.5:
        time.sleep(0.02)
""".replace("{shared}", str(SHARED_FILES)).replace("{own}", str(OWN_FILES))


def evolved_all(daemon: DaemonProcess) -> bool:
    """A finished cycle has seen every stored run."""
    with sqlite3.connect(f"file:{daemon.home / 'skillforge.db'}?mode=ro", uri=True) as conn:
        return bool(
            conn.execute(
                "SELECT count(*) FROM cycles WHERE status = 'done'"
                " AND high_water = (SELECT max(seq) FROM trajectories)"
            ).fetchone()[0]
        )


def test_many_writers_many_files_while_cycles_run_nothing_lost_nothing_twice(tmp_path):
    daemon = DaemonProcess(
        tmp_path / "var",
        tmp_path / "inbox",
        evolve_after=250,  # a cycle every few hundred runs, while the writers still write
        evolve_every_minutes=600,
        sweep_seconds=0.5,
    )
    daemon.inbox.mkdir(parents=True)
    expected: set[str] = set()
    plans = []
    for me in range(WRITERS):
        runs = []
        for f in range(FAMILIES_EACH):
            word = WORDS[me * FAMILIES_EACH + f]
            runs += family(word, count=RUNS_EACH, prefix=f"w{me}")
        runs.sort(key=lambda r: r["id"][::-1])  # interleave the families
        expected |= {r["id"] for r in runs}
        plan = tmp_path / f"plan-{me}.jsonl"
        plan.write_text(lines(runs))
        plans.append(plan)
    daemon.start()
    try:
        wait_for(lambda: "skillforge serving" in daemon.output(), timeout=60, what="start")
        writers = [
            subprocess.Popen([sys.executable, "-c", WRITER, str(plan), str(daemon.inbox), str(me)])
            for me, plan in enumerate(plans)
        ]
        assert all(w.wait(timeout=120) == 0 for w in writers)
        wait_for(
            lambda: len(daemon.stored_ids()) >= len(expected),
            timeout=120,
            what="every line",
            log=daemon.output,
        )
        # The last runs may be fewer than evolve_after: a cycle by hand, while the daemon
        # still serves, must see every one of them (it waits for the library lock).
        daemon.cli("evolve")
        assert evolved_all(daemon), daemon.output()
    finally:
        assert daemon.stop() == 0
    ids = daemon.stored_ids()
    assert len(ids) == len(expected) and set(ids) == expected
    assert daemon.quarantined() == 0
    files = list(daemon.inbox.rglob("*.jsonl"))
    assert len(files) == SHARED_FILES + WRITERS * OWN_FILES
    with sqlite3.connect(daemon.home / "skillforge.db") as conn:
        done = conn.execute("SELECT count(*) FROM cycles WHERE status = 'done'").fetchone()[0]
        offsets = dict(conn.execute("SELECT path, offset FROM files"))
    assert done >= 2, daemon.output()  # cycles ran while the writers wrote
    assert all(offsets[str(p.resolve())] == p.stat().st_size for p in files)  # all read
