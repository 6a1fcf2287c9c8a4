"""SIGKILL the real daemon again and again: mid-intake, and at every step of a cycle's commit,
push and record. After each restart nothing is lost or stored twice, the library passes
`git fsck`, main never holds a partial cycle, and the interrupted cycle is redone."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import time

import pytest

from skillforge.library import LibraryRepo
from tests.daemon_harness import DaemonProcess, wait_for
from tests.reliability.runs import WORDS, family, lines

pytestmark = pytest.mark.e2e

# Where each round kills the daemon: a named step of the cycle (the daemon pauses there,
# see skillforge.cycle.pause_point), "random" (a random delay after the commit starts),
# or "intake" (a random delay after a large append starts being read).
# The last round kills a cycle after it recorded its proposal, and the restart that follows
# brings no new runs: the redone cycle must still leave exactly one open proposal.
PLAN = ["commit", "push", "record", "supersede", "random"] * 4 + ["intake", "supersede"]
AT_POINT = ("commit", "push", "record", "supersede")
LANDED = 20  # kills that must land inside a cycle's commit/push/record, or mid-intake


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True)
    assert done.returncode == 0, f"git {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
    return done.stdout


def heads(repo) -> dict[str, str]:
    out = git("--git-dir", str(repo), "for-each-ref", "--format=%(objectname) %(refname)")
    pairs = (line.split(" ", 1) for line in out.splitlines())
    return {ref.removeprefix("refs/heads/"): sha for sha, ref in pairs if "refs/heads/" in ref}


def query(daemon: DaemonProcess, sql: str) -> list[tuple]:
    with sqlite3.connect(f"file:{daemon.home / 'skillforge.db'}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchall()


def bulk(round_no: int, count: int) -> list[dict]:
    """Many small runs of one family (enough lines that intake takes a while)."""
    return family("bulk", start=round_no * count, count=count, prefix=f"bulk{round_no}")


def test_sigkill_during_intake_and_cycles_loses_nothing_and_keeps_main_whole(tmp_path, monkeypatch):
    daemon = DaemonProcess(
        tmp_path / "var",
        tmp_path / "inbox",
        evolve_after=10**9,  # only the start-up cycle runs, once per start
        evolve_every_minutes=600,
        sweep_seconds=0.2,
    )
    daemon.inbox.mkdir(parents=True)
    remote, workdir = daemon.home / "library.git", daemon.home / "library"
    rng = random.Random(20261121)
    expected: set[str] = set()
    main_sha: str | None = None
    landed: dict[str, int] = {}
    # A random kill comes within `window` s of the commit starting; a fast machine can finish
    # commit, push and record sooner, so each kill that came too late halves the window.
    window = 0.05
    for round_no, where in enumerate(PLAN):
        records = family(WORDS[round_no % len(WORDS)], start=round_no * 10)
        if round_no == len(PLAN) - 1:
            records = []  # the last round's cycle is a redo of the one before
        if where == "intake":
            records += bulk(round_no, 2000)
        for n, chunk in enumerate((records[0::3], records[1::3], records[2::3])):
            with (daemon.inbox / f"agent-{n}.jsonl").open("a") as handle:
                handle.write(lines(chunk))
        expected |= {r["id"] for r in records}
        point = {"random": "commit:0", "intake": ""}.get(where, where)
        monkeypatch.setenv("SKILLFORGE_TEST_PAUSE", point)
        before = len(daemon.stored_ids())
        done = daemon.output().count("proposed ")
        daemon.start()
        if where == "intake":
            wait_for(
                lambda b=before: len(daemon.stored_ids()) > b,
                timeout=60,
                what="intake",
                interval=0.005,
            )
            time.sleep(rng.uniform(0.0, 0.1))
            in_window = len(daemon.stored_ids()) < len(expected)
        else:
            marker = f"test pause at {point.split(':')[0]}"
            seen = daemon.output().count(marker)
            wait_for(
                lambda s=seen, m=marker: daemon.output().count(m) > s,
                timeout=60,
                what=marker,
                log=daemon.output,
                interval=0.005,  # the kill's moment counts from here
            )
            if where == "random":
                time.sleep(rng.uniform(0.0, window))
            in_window = True
        daemon.kill()
        # git processes the daemon started outlive it and hold the library lock until they
        # finish (a push may still be landing): wait for them, as a restarted daemon does.
        with LibraryRepo(workdir, remote).lock(timeout=60):
            pass
        if where == "random":  # landed in the window unless the cycle got to its end
            in_window = daemon.output().count("proposed ") == done
            window /= 1 if in_window else 2
        landed[where] = landed.get(where, 0) + in_window
        # Whatever the moment of the kill: main is the seed, and the repositories are whole.
        main_sha = main_sha or heads(remote)["main"]
        assert heads(remote)["main"] == main_sha and heads(workdir / ".git")["main"] == main_sha
        git("--git-dir", str(remote), "fsck", "--full", "--no-progress")

    monkeypatch.delenv("SKILLFORGE_TEST_PAUSE")
    daemon.start()
    try:
        wait_for(
            lambda: query(
                daemon,
                "SELECT count(*) FROM cycles WHERE status = 'done' AND high_water ="
                " (SELECT max(seq) FROM trajectories)",
            )[0][0],
            timeout=120,
            what="a finished cycle over every stored run",
            log=daemon.output,
        )
    finally:
        assert daemon.stop() == 0

    assert all(landed[k] == PLAN.count(k) for k in AT_POINT), landed
    assert sum(landed.values()) >= LANDED, landed
    ids = daemon.stored_ids()
    assert len(ids) == len(expected) and set(ids) == expected  # each run exactly once
    assert daemon.quarantined() == 0  # no half line was read as a bad one
    for repo in (remote, workdir / ".git"):
        git("--git-dir", str(repo), "fsck", "--full", "--no-progress")
        assert heads(repo)["main"] == main_sha  # no cycle ever touches main
    assert query(daemon, "SELECT count(*) FROM cycles WHERE status = 'running'") == [(0,)]
    interrupted = query(daemon, "SELECT count(*) FROM cycles WHERE status = 'interrupted'")[0][0]
    assert interrupted >= sum(landed[k] for k in AT_POINT)  # each killed cycle was redone
    # Exactly one open proposal: its branch is on the remote, nothing else is, and it holds
    # a commit for each of its changes on top of main.
    [(proposal, branch)] = query(daemon, "SELECT id, branch FROM proposals WHERE status='open'")
    remote_branches = {b for b in heads(remote) if b != "main"}
    assert remote_branches == {branch}
    rows = query(daemon, f"SELECT skill FROM proposal_changes WHERE proposal = '{proposal}'")
    skills = {skill for (skill,) in rows}
    changed = git("--git-dir", str(remote), "diff", "--name-only", f"main...{branch}").split()
    assert {path.split("/")[0] for path in changed} == skills
    assert (daemon.home / "proposals" / f"{proposal}.md").is_file()
