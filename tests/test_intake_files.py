"""Intake on files that misbehave: links out of the inbox, loops, files rewritten or rotated
under the reader, a byte-order mark, huge lines and floods of bad lines. Real files, real
SQLite, the real watchdog observer."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skillforge import intake
from skillforge.errors import IntakeError
from skillforge.intake import expand, ingest_file, quarantine_file_sink
from skillforge.store import Quarantined, Store
from skillforge.watcher import inbox_files, watch_inbox


def run(name: str, **extra) -> dict:
    return {
        "id": name,
        "task": f"close ticket {name}",
        "steps": [{"type": "tool_call", "name": "close_ticket", "arguments": {"id": name}}],
        "outcome": {"success": True},
        **extra,
    }


def jsonl(*names: str) -> bytes:
    return b"".join(json.dumps(run(n)).encode() + b"\n" for n in names)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "state.db") as s:
        yield s


def stored_once(store: Store) -> list[str]:
    """The stored ids, checked to be stored once each."""
    ids = store.trajectory_ids()
    assert len(ids) == len(set(ids))
    return sorted(ids)


# -- links: never followed out of the inbox, never a crash --------------------------------------


@pytest.fixture
def hostile_inbox(tmp_path: Path) -> tuple[Path, Path]:
    """An inbox with one real file and links out of it, to a folder and in a loop."""
    inbox, outside = tmp_path / "inbox", tmp_path / "outside"
    inbox.mkdir()
    outside.mkdir()
    (outside / "secret.jsonl").write_bytes(jsonl("outside-1", "outside-2"))
    (inbox / "real.jsonl").write_bytes(jsonl("in-1"))
    (inbox / "sub").mkdir()
    (inbox / "sub" / "deep.jsonl").write_bytes(jsonl("in-2"))
    (inbox / "stolen.jsonl").symlink_to(outside / "secret.jsonl")
    (inbox / "folder.jsonl").symlink_to(outside)
    (inbox / "outside-dir").symlink_to(outside)
    (inbox / "loop.jsonl").symlink_to(inbox / "loop.jsonl")
    (inbox / "a.jsonl").symlink_to(inbox / "b.jsonl")
    (inbox / "b.jsonl").symlink_to(inbox / "a.jsonl")
    (inbox / "alias.jsonl").symlink_to(inbox / "real.jsonl")  # inside: the real file, once
    return inbox, outside


def test_the_inbox_lists_no_link_out_of_it_and_no_loop(hostile_inbox, caplog):
    inbox, _ = hostile_inbox
    with caplog.at_level(logging.WARNING, logger="skillforge.intake"):
        files = inbox_files(inbox)
    real = inbox.resolve()
    assert files == [real / "real.jsonl", real / "sub" / "deep.jsonl"]
    warned = "\n".join(r.getMessage() for r in caplog.records)
    for name in ("stolen.jsonl", "folder.jsonl", "outside-dir", "loop.jsonl", "a.jsonl"):
        assert name in warned


def test_ingest_file_refuses_a_link_a_folder_and_a_loop_without_crashing(hostile_inbox, store):
    inbox, outside = hostile_inbox
    for name in ("stolen.jsonl", "folder.jsonl", "loop.jsonl", "a.jsonl"):
        with pytest.raises(IntakeError):
            ingest_file(store, inbox / name)
    assert store.trajectory_ids() == [] and store.count("quarantine") == 0
    assert store.count("files") == 0  # nothing of the target was even looked at


def test_a_folder_given_to_ingest_is_read_without_its_links_out(hostile_inbox, store):
    inbox, outside = hostile_inbox
    files = expand([inbox])
    assert all(outside.resolve() not in p.resolve().parents for p in files)
    for path in files:
        ingest_file(store, path)
    assert stored_once(store) == ["in-1", "in-2"]


def test_the_watcher_skips_links_made_while_it_runs_and_warns_once(tmp_path, store, caplog):
    inbox, outside = tmp_path / "inbox", tmp_path / "outside"
    inbox.mkdir()
    outside.mkdir()
    (outside / "secret.jsonl").write_bytes(jsonl("outside-1"))
    (inbox / "real.jsonl").write_bytes(jsonl("in-1"))
    stop = threading.Event()
    seen: list[Path] = []
    sweeps_after_links = 0
    deadline = time.monotonic() + 60
    with caplog.at_level(logging.WARNING, logger="skillforge.intake"):
        for n, batch in enumerate(watch_inbox(inbox, stop=stop, sweep_seconds=0.1)):
            seen += batch
            for path in batch:
                ingest_file(store, path)
            if n == 0:  # the first full listing is out: now the hostile links appear
                (inbox / "stolen.jsonl").symlink_to(outside / "secret.jsonl")
                (inbox / "loop.jsonl").symlink_to(inbox / "loop.jsonl")
                (inbox / "folder.jsonl").symlink_to(outside)
                with (outside / "secret.jsonl").open("ab") as handle:  # events out there too
                    handle.write(jsonl("outside-2"))
            elif any(p.name == "real.jsonl" for p in batch):  # a sweep listed the inbox
                sweeps_after_links += 1
            if sweeps_after_links >= 5 or time.monotonic() > deadline:
                stop.set()
    assert sweeps_after_links >= 5
    assert {p.name for p in seen} == {"real.jsonl"}
    assert stored_once(store) == ["in-1"]
    warnings = [r.getMessage() for r in caplog.records]
    for name in ("stolen.jsonl", "loop.jsonl", "folder.jsonl"):
        assert sum(name in w for w in warnings) == 1, warnings


# -- files rewritten under the reader -----------------------------------------------------------


NEW = ["new-1", "new-2", "new-3"]


def rewrite_bigger(path: Path) -> list[str]:
    with path.open("r+b") as handle:  # truncated, then written again, bigger: same inode
        handle.truncate(0)
        handle.write(jsonl(*NEW))
    return NEW


def rewrite_same_size(path: Path) -> list[str]:
    body = jsonl(*NEW[:2])
    assert len(body) == path.stat().st_size
    with path.open("r+b") as handle:
        handle.write(body)
    return NEW[:2]


def recreate_reusing_the_inode(path: Path) -> list[str]:
    inode = path.stat().st_ino
    path.unlink()
    path.write_bytes(jsonl(*NEW))
    if path.stat().st_ino != inode:
        pytest.skip("this file system did not reuse the inode")
    return NEW


@pytest.mark.parametrize(
    "rewrite",
    [rewrite_bigger, rewrite_same_size, recreate_reusing_the_inode],
    ids=lambda f: f.__name__,
)
def test_a_rewritten_file_is_read_again_from_the_top(store, tmp_path, rewrite):
    path = tmp_path / "runs.jsonl"
    path.write_bytes(jsonl("old-1", "old-2"))
    assert ingest_file(store, path).stored == 2
    new = rewrite(path)
    result = ingest_file(store, path)
    assert store.count("quarantine") == 0  # no half line read from the old offset
    assert stored_once(store) == sorted(["old-1", "old-2", *new])
    assert result.stored == len(new)
    assert any("rewritten" in note for note in result.notes)
    again = ingest_file(store, path)
    assert (again.stored, again.duplicates, again.lines) == (0, 0, 0)


def test_a_rewrite_that_keeps_the_first_lines_stores_each_run_once(store, tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_bytes(jsonl("a", "b"))
    ingest_file(store, path)
    with path.open("r+b") as handle:  # an editor saves the file with a line changed
        handle.truncate(0)
        handle.write(jsonl("a", "c", "b"))
    result = ingest_file(store, path)
    assert (result.stored, result.duplicates) == (1, 2)
    assert stored_once(store) == ["a", "b", "c"]


def test_appending_after_a_restart_is_not_taken_for_a_rewrite(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_bytes(jsonl(*(f"r{i}" for i in range(200))))  # more than the fingerprinted 4 KiB
    with Store(tmp_path / "s.db") as store:
        ingest_file(store, path)
    with path.open("ab") as handle:
        handle.write(jsonl("r200"))
    with Store(tmp_path / "s.db") as store:
        result = ingest_file(store, path)
        assert (result.lines, result.stored, result.duplicates, result.notes) == (1, 1, 0, [])


# -- rotation by rename -------------------------------------------------------------------------


@pytest.mark.parametrize("first", ["new", "rotated"])
def test_a_file_rotated_by_rename_is_followed_to_its_end(store, tmp_path, first):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    path, rotated = inbox / "runs.jsonl", inbox / "runs.jsonl.1"
    path.write_bytes(jsonl("r1", "r2"))
    writer = path.open("ab", buffering=0)  # an agent that keeps its file open
    ingest_file(store, path)
    os.rename(path, rotated)  # logrotate: rename, then a new file under the old name
    writer.write(jsonl("r3", "r4"))  # still going to the renamed file
    path.write_bytes(jsonl("n1"))
    order = [path, rotated] if first == "new" else [rotated, path]
    for p in order:  # the watcher hints both names, in either order
        ingest_file(store, p)
    assert stored_once(store) == ["n1", "r1", "r2", "r3", "r4"]
    writer.write(jsonl("r5"))  # the writer has not reopened yet
    writer.close()
    assert rotated.resolve() in inbox_files(inbox)  # a rotated name is still watched
    for p in inbox_files(inbox):
        ingest_file(store, p)
    assert stored_once(store) == ["n1", "r1", "r2", "r3", "r4", "r5"]
    assert store.counter("duplicates") == 0  # followed, never read again from the top


def test_rotation_that_shifts_older_files_keeps_each_file_s_progress(store, tmp_path):
    """logrotate with `rotate 2`: `.1` becomes `.2` before `runs.jsonl` becomes `.1`."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    log = inbox / "runs.jsonl"

    def sweep() -> None:
        for p in inbox_files(inbox):
            ingest_file(store, p)

    log.write_bytes(jsonl("a1"))
    first = log.open("ab", buffering=0)
    sweep()
    os.rename(log, inbox / "runs.jsonl.1")
    log.write_bytes(jsonl("b1"))
    second = log.open("ab", buffering=0)
    sweep()
    os.rename(inbox / "runs.jsonl.1", inbox / "runs.jsonl.2")
    os.rename(log, inbox / "runs.jsonl.1")
    log.write_bytes(jsonl("c1"))
    first.write(jsonl("a2"))  # both old writers still write to their files
    second.write(jsonl("b2"))
    first.close()
    second.close()
    sweep()
    assert stored_once(store) == ["a1", "a2", "b1", "b2", "c1"]
    assert store.counter("duplicates") == 0


# -- a byte-order mark ----------------------------------------------------------------------------


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_line(store, tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + jsonl("b1", "b2"))
    result = ingest_file(store, path)
    assert (result.stored, result.quarantined) == (2, 0)
    assert store.file_progress(str(path.resolve())).offset == path.stat().st_size


# -- huge lines: skipped unread, in bounded memory ------------------------------------------------


def test_a_huge_line_is_skipped_without_being_held_in_memory(store, tmp_path):
    path = tmp_path / "huge.jsonl"
    limit, huge = 1 << 20, 64 << 20
    with path.open("wb") as handle:
        handle.write(jsonl("before"))
        handle.write(b'{"task": "' + b"x" * huge)  # still being written: no newline yet
    tracemalloc.start()
    try:
        first = ingest_file(store, path, max_line_bytes=limit)
        with path.open("ab") as handle:
            handle.write(b'"}\n' + jsonl("after"))
        second = ingest_file(store, path, max_line_bytes=limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * limit, f"peak {peak:,} bytes for a {huge:,}-byte line"
    assert (first.stored, first.quarantined) == (1, 0)  # the partial line waits
    assert (second.stored, second.quarantined) == (1, 1)
    [row] = store.quarantine()
    assert (row["file"], row["line"]) == (str(path), 2)
    assert f"line longer than {limit} bytes" in row["reason"]
    assert row["excerpt"].startswith('{"task": "xxx') and len(row["excerpt"]) <= 300
    assert stored_once(store) == ["after", "before"]


line_kinds = st.lists(
    st.tuples(st.sampled_from(["run", "junk", "blank"]), st.integers(0, 300)),
    min_size=1,
    max_size=14,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line_kinds, st.integers(150, 400), st.integers(1, 64), st.integers(0, 4000))
def test_lines_across_read_chunks_and_writes_are_split_as_written(kinds, limit, chunk, cut):
    """Whatever the read size and wherever a writer pauses, each line is taken once: a run
    stored, junk quarantined, a line over the limit quarantined as such, and nothing taken
    for a rewrite."""
    body, expect_ids, expect_bad = b"", [], {}
    for n, (kind, pad) in enumerate(kinds, start=1):
        if kind == "run":
            line = json.dumps(run(f"r{n}", metadata={"pad": "p" * pad})).encode()
        else:
            line = b"junk" + b" junk" * (pad // 5) if kind == "junk" else b" " * (pad % 3)
        body += line + b"\n"
        if len(line) > limit:
            expect_bad[n] = "longer than"
        elif kind == "run":
            expect_ids.append(f"r{n}")
        elif kind == "junk":
            expect_bad[n] = "not valid JSON"
    cut = min(cut, len(body))
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        patch.setattr(intake, "READ_CHUNK", chunk)
        path = Path(tmp) / "runs.jsonl"
        path.write_bytes(body[:cut])  # the writer pauses anywhere, mid-line included
        with Store(Path(tmp) / "s.db") as store:
            first = ingest_file(store, path, max_line_bytes=limit)
            with path.open("ab") as handle:
                handle.write(body[cut:])
            second = ingest_file(store, path, max_line_bytes=limit)
            ids = sorted(store.trajectory_ids())
            rows = {r["line"]: r["reason"] for r in store.quarantine(limit=100)}
            offset = store.file_progress(str(path.resolve())).offset
    assert ids == sorted(expect_ids)
    assert sorted(rows) == sorted(expect_bad)
    assert all(expect_bad[n] in reason for n, reason in rows.items())
    assert offset == len(body)
    assert first.notes == [] or "empty file" in first.notes[0]
    assert not any("rewritten" in note for note in second.notes)


# -- a flood of bad lines: a bounded quarantine, intake goes on ------------------------------------


def test_the_quarantine_keeps_a_few_bad_lines_per_file_and_counts_the_rest(store, tmp_path):
    path, sink = tmp_path / "junk.jsonl", tmp_path / "quarantine.jsonl"
    cap = intake.QUARANTINE_PER_FILE
    bad = cap * 5
    body = b"".join(
        (jsonl(f"good-{i}") if i % 100 == 0 else f"not json {i}\n".encode()) for i in range(bad)
    )
    path.write_bytes(body)
    good = {f"good-{i}" for i in range(0, bad, 100)}
    result = ingest_file(store, path, on_quarantine=quarantine_file_sink(sink))
    assert set(stored_once(store)) == good
    assert result.quarantined == bad - len(good)
    rows = store.quarantine(limit=10_000)
    assert len(rows) == cap + 1
    [summary] = [r for r in rows if r["last_line"] is not None]
    assert summary["lines"] == bad - len(good) - cap
    assert summary["last_line"] == bad  # lines are numbered from 1
    assert f"lines {summary['line']}-{bad}" in summary["reason"]
    assert store.quarantined_lines() == bad - len(good)
    assert len(sink.read_text().splitlines()) <= cap + 2

    with path.open("ab") as handle:  # more junk later: the same summary row counts it
        handle.write(b"more junk\n" * 10 + jsonl("good-late"))
    ingest_file(store, path)
    rows = store.quarantine(limit=10_000)
    assert len(rows) == cap + 1
    [summary] = [r for r in rows if r["last_line"] is not None]
    assert (summary["lines"], summary["last_line"]) == (
        bad - len(good) - cap + 10,
        bad + 10,
    )
    assert "good-late" in store.trajectory_ids()


# -- what the quarantine keeps is redacted --------------------------------------------------------

TOKEN = "ghp_" + "PLANTEDgithubTOKEN0123456789abcdEF"


def test_quarantine_reasons_and_excerpts_are_redacted_in_the_table_and_the_file(store, tmp_path):
    path, sink = tmp_path / "a.jsonl", tmp_path / "quarantine.jsonl"
    echoed = {"messages": [{"role": f"Authorization: Bearer {TOKEN}", "content": "x"}]}
    path.write_bytes(json.dumps({**echoed, "reward": 1}).encode() + b"\n")
    ingest_file(store, path, on_quarantine=quarantine_file_sink(sink))
    [row] = store.quarantine()
    assert "unknown role" in row["reason"]  # the parser quoted the input
    assert "PLANTED" not in row["reason"] and "PLANTED" not in row["excerpt"]
    assert "PLANTED" not in sink.read_text()


def test_every_way_into_the_quarantine_is_redacted(store, tmp_path):
    """HTTP intake hands the store its own rows and sink entries: both are redacted."""
    leak = Quarantined("http", 1, 0, f"bad role {TOKEN!r}", f'{{"token": "{TOKEN}"}}')
    store.record_received([], [leak], source="http")
    sink = tmp_path / "quarantine.jsonl"
    quarantine_file_sink(sink)(leak)
    [row] = store.quarantine()
    assert "PLANTED" not in row["reason"] + row["excerpt"]
    assert "PLANTED" not in sink.read_text()
