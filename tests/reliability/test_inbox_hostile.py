"""The real daemon on an inbox that fights back: links out of it, a link loop, a file rotated
by rename while its writer keeps writing, a file rewritten to the same size, a byte-order mark
and a 200 MB line. The daemon keeps serving, reads nothing outside the inbox, loses no line,
stores no run twice, and holds no huge line in memory."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from tests.daemon_harness import DaemonProcess, wait_for
from tests.reliability.runs import family, lines

pytestmark = pytest.mark.e2e


def serve(tmp_path: Path, **settings: object) -> DaemonProcess:
    """A daemon that only takes runs in (no cycle starts during the test)."""
    daemon = DaemonProcess(
        tmp_path / "var",
        tmp_path / "inbox",
        evolve_after=1_000_000,
        evolve_every_minutes=600,
        sweep_seconds=0.2,
        **settings,
    )
    daemon.inbox.mkdir(parents=True, exist_ok=True)
    return daemon


def query(daemon: DaemonProcess, sql: str) -> list[tuple]:
    with sqlite3.connect(f"file:{daemon.home / 'skillforge.db'}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchall()


def stored(daemon: DaemonProcess, runs: list[dict]) -> bool:
    return {r["id"] for r in runs} <= set(daemon.stored_ids())


def test_links_out_of_the_inbox_are_never_read_and_never_stop_the_daemon(tmp_path):
    daemon = serve(tmp_path)
    inbox, outside = daemon.inbox, tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jsonl").write_text(lines(family("stolen", count=3)))
    good = family("invoice", count=3)
    (inbox / "good.jsonl").write_text(lines(good))
    before = {  # present when the daemon starts: its first listing meets them
        "stolen.jsonl": outside / "secret.jsonl",
        "loop.jsonl": inbox / "loop.jsonl",
        "outside-dir": outside,
    }
    after = {  # made while it serves: watchdog events name them
        "folder.jsonl": outside,
        "passwd.jsonl": Path("/etc/passwd"),
        "ring-a.jsonl": inbox / "ring-b.jsonl",
        "ring-b.jsonl": inbox / "ring-a.jsonl",
    }
    for name, target in before.items():
        (inbox / name).symlink_to(target)
    daemon.start()
    try:
        wait_for(lambda: stored(daemon, good), timeout=90, what="the good runs", log=daemon.output)
        for name, target in after.items():
            (inbox / name).symlink_to(target)
        with (outside / "secret.jsonl").open("a") as handle:  # events out there change nothing
            handle.write(lines(family("stolen", start=3, count=2)))
        links = sorted({*before, *after})
        wait_for(
            lambda: all(f"not reading {inbox / n}" in daemon.output() for n in links),
            timeout=60,
            what="a warning for each link",
            log=daemon.output,
        )
        more = family("invoice", start=3, count=3)
        for n, run in enumerate(more):  # several sweeps pass while these arrive one by one
            with (inbox / "good.jsonl").open("a") as handle:
                handle.write(lines([run]))
            so_far = more[: n + 1]
            wait_for(lambda: stored(daemon, so_far), timeout=60, what="a later run")  # noqa: B023
            time.sleep(0.3)  # let a sweep or two list the links again
        assert daemon.proc.poll() is None, daemon.output()  # still serving
    finally:
        assert daemon.stop() == 0, daemon.output()
    output = daemon.output()
    assert "Traceback" not in output
    assert sorted(daemon.stored_ids()) == sorted(r["id"] for r in good + more)
    assert daemon.quarantined() == 0  # /etc/passwd's lines were never read
    for name in links:
        warnings = [line for line in output.splitlines() if f"not reading {inbox / name}" in line]
        assert len(warnings) == 1, (name, warnings)
    assert query(daemon, "SELECT count(*) FROM files WHERE path LIKE '%outside%'") == [(0,)]


def test_rotation_rewrite_and_a_byte_order_mark_lose_nothing_and_duplicate_nothing(tmp_path):
    daemon = serve(tmp_path)
    inbox = daemon.inbox
    runs = {word: family(word, count=4) for word in ("alpha", "beta", "gamma", "delta")}
    log, rotated = inbox / "runs.jsonl", inbox / "runs.jsonl.1"
    writer = log.open("ab", buffering=0)  # an agent that keeps its log open, as logrotate meets it
    daemon.start()
    try:
        writer.write(lines(runs["alpha"]).encode())
        wait_for(lambda: stored(daemon, runs["alpha"]), timeout=90, what="alpha", log=daemon.output)
        os.rename(log, rotated)  # logrotate's default: rename, then create a new file
        writer.write(lines(runs["beta"]).encode())  # the writer has not reopened yet
        log.write_bytes(b"\xef\xbb\xbf" + lines(runs["gamma"]).encode())  # a BOM on line one
        wait_for(
            lambda: stored(daemon, runs["beta"] + runs["gamma"]),
            timeout=60,
            what="the rotated file's rest and the new file",
            log=daemon.output,
        )
        writer.write(lines(runs["delta"]).encode())  # still later, to the renamed file
        writer.close()
        wait_for(lambda: stored(daemon, runs["delta"]), timeout=60, what="delta", log=daemon.output)

        same = inbox / "same-size.jsonl"
        first, second = family("epsilon", count=3), family("epsilon", start=3, count=3)
        assert len(lines(first)) == len(lines(second))
        same.write_text(lines(first))
        wait_for(lambda: stored(daemon, first), timeout=60, what="epsilon", log=daemon.output)
        with same.open("r+") as handle:  # rewritten in place, to the very same size
            handle.write(lines(second))
        wait_for(lambda: stored(daemon, second), timeout=60, what="the rewrite", log=daemon.output)
        assert daemon.proc.poll() is None
    finally:
        assert daemon.stop() == 0, daemon.output()
    every = [r["id"] for group in (*runs.values(), first, second) for r in group]
    ids = daemon.stored_ids()
    assert sorted(ids) == sorted(every)  # each once
    assert daemon.quarantined() == 0  # the BOM did not spoil gamma's first line
    assert query(daemon, "SELECT coalesce(sum(value), 0) FROM counters") == [(0,)]  # no re-reads


def peak_rss(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_a_200_mb_line_is_skipped_without_being_held_in_memory(tmp_path):
    daemon = serve(tmp_path)
    daemon.start()
    path = daemon.inbox / "huge.jsonl"
    try:
        wait_for(lambda: "skillforge serving" in daemon.output(), timeout=90, what="start")
        warm = family("zeta", count=1)
        (daemon.inbox / "warm.jsonl").write_text(lines(warm))
        wait_for(lambda: stored(daemon, warm), timeout=60, what="a first run", log=daemon.output)
        baseline = peak_rss(daemon.proc.pid)
        before, after = family("eta", count=1), family("eta", start=1, count=1)
        with path.open("wb") as handle:
            handle.write(lines(before).encode())
            handle.write(b'{"task": "')
            block = b"x" * (1 << 20)
            for _ in range(200):  # 200 MB in one line
                handle.write(block)
            handle.write(b'"}\n' + lines(after).encode())
        wait_for(
            lambda: stored(daemon, before + after) and daemon.quarantined() == 1,
            timeout=120,
            what="the runs around the huge line",
            log=daemon.output,
        )
        grew = peak_rss(daemon.proc.pid) - baseline
        assert daemon.proc.poll() is None
    finally:
        assert daemon.stop() == 0, daemon.output()
        path.unlink(missing_ok=True)
    assert grew < 64 << 20, f"the daemon's peak memory grew {grew:,} bytes"
    [(line, reason)] = query(daemon, "SELECT line, reason FROM quarantine")
    assert line == 2 and f"line longer than {8 << 20} bytes" in reason
