"""The store's contract, run on both backends: SQLite (a file) and PostgreSQL (a real server
that pgserver starts for the session, with a fresh database per test).

Every test takes `store` (or `location`) and runs once per backend; a few compare the two
backends' answers to the same writes, and guard that their migrations stay in step.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from evolver.model import Outcome, Trajectory
from skillforge.errors import StoreError
from skillforge.intake import QUARANTINE_PER_FILE, ingest_file
from skillforge.store import FileProgress, OutcomeResult, Quarantined, Store
from skillforge.stores import open_store
from tests.conftest import REPO_ROOT, write_jsonl

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


# -- a real PostgreSQL -------------------------------------------------------------------------


@functools.cache
def start_postgres() -> Any:
    """The PostgreSQL server of this test run (pgserver, from PyPI), started once and
    stopped at exit, or a skip saying why it cannot run here.

    Its data folder is not under pytest's temporary root: as root, pgserver runs the server
    as another user that needs to traverse the folder's parents, and any pytest starting
    meanwhile makes `pytest-of-root` 0700 again."""
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError as exc:
        pytest.skip(f"PostgreSQL tests need pgserver: pip install -e '.[dev]' ({exc})")
    pgdata = tempfile.mkdtemp(prefix="skillforge-pg-")
    atexit.register(shutil.rmtree, pgdata, ignore_errors=True)  # after pgserver's own stop
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pgserver.get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:  # any reason it cannot run here: no shared memory, no user, ...
        pytest.skip(f"pgserver could not start PostgreSQL here: {type(exc).__name__}: {exc}")


def fresh_database(server: Any) -> Iterator[str]:
    """A new, empty database on `server` (its URL), dropped afterwards."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server.get_uri(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield server.get_uri(name)
    with psycopg.connect(server.get_uri(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def postgres_server() -> Any:
    return start_postgres()


@pytest.fixture
def postgres_url(postgres_server: Any) -> Iterator[str]:
    yield from fresh_database(postgres_server)


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a store lives, as `open_store` takes it: a SQLite file or a PostgreSQL URL."""
    if request.param == "postgres":
        return request.getfixturevalue("postgres_url")
    return str(tmp_path / "state.db")


@pytest.fixture
def store(location: str) -> Iterator[Any]:
    with open_store(location) as opened:
        yield opened


# -- records ------------------------------------------------------------------------------------


def run(i: int, **extra: Any) -> Trajectory:
    record: dict[str, Any] = {
        "id": f"run-{i}",
        "task": f"cancel order W{i}",
        "started_at": (T0 + timedelta(minutes=i)).isoformat(),
        "ended_at": (T0 + timedelta(minutes=i, seconds=9)).isoformat(),
        "steps": [
            {"type": "tool_call", "name": "get_order", "arguments": {"id": i}, "result": "ok"},
            {"type": "tool_call", "name": "cancel_order", "arguments": {"id": i},
             "result": "Error: no", "error": i % 3 == 0},
        ],
        "outcome": {"success": i % 2 == 0, "reward": 1.0 if i % 2 == 0 else 0.0},
    }  # fmt: skip
    record.update(extra)
    return Trajectory.model_validate(record)


def lines(runs: list[Trajectory], first_line: int = 1) -> list[tuple[Trajectory, int]]:
    return [(t, first_line + k) for k, t in enumerate(runs)]


def proposal(pid: str, status: str = "open", created: int = 0) -> dict[str, Any]:
    return {
        "id": pid,
        "branch": f"evolve/{pid}",
        "status": status,
        "created_at": (T0 + timedelta(hours=created)).isoformat(timespec="seconds"),
        "description": f"proposal {pid}",
    }


def change(skill: str, fingerprint: str, **extra: Any) -> dict[str, Any]:
    return {
        "skill": skill,
        "action": "update",
        "fingerprint": fingerprint,
        "content_sha": "abc",
        "summary": f"{skill} changed",
        **extra,
    }


# -- intake ---------------------------------------------------------------------------------


def test_a_batch_stores_runs_and_the_file_offset_together(store):
    progress = FileProgress(offset=300, line=3, inode=77, dev=5, fingerprint="fp", bad_lines=1)
    bad = Quarantined("/in/a.jsonl", 2, 100, "not valid JSON", "{oops")
    result = store.record_batch("/in/a.jsonl", lines([run(1), run(3)]), [bad], progress, now=T0)
    assert (result.stored, result.duplicates, result.quarantined) == (2, 0, 1)
    assert store.file_progress("/in/a.jsonl") == progress
    assert store.file_progress("/in/other.jsonl") == FileProgress()
    assert store.trajectory_ids() == ["run-1", "run-3"]
    assert list(store.trajectories()) == [run(1), run(3)]  # every field round-trips

    later = FileProgress(offset=400, line=4, inode=77, dev=5, fingerprint="fp2", bad_lines=1)
    store.record_batch("/in/a.jsonl", lines([run(4)], 4), [], later, now=T0)
    assert store.file_progress("/in/a.jsonl") == later


def test_a_renamed_file_is_found_by_identity_and_its_progress_moves(store):
    store.record_batch("/in/a.jsonl", [], [], FileProgress(10, 1, inode=9, dev=2), now=T0)
    store.record_batch("/in/b.jsonl", [], [], FileProgress(20, 2, inode=9, dev=3), now=T0)
    found = store.progress_by_identity(2, 9)
    assert [(path, p.offset) for path, p in found] == [("/in/a.jsonl", 10)]
    store.record_batch("/in/a.jsonl.1", [], [], FileProgress(1, 1, inode=1, dev=2), now=T0)
    store.move_progress("/in/a.jsonl", "/in/a.jsonl.1")  # replaces what the new name had
    assert store.file_progress("/in/a.jsonl") == FileProgress()
    assert store.file_progress("/in/a.jsonl.1").offset == 10
    assert store.count("files") == 2


def test_the_same_run_is_stored_once_within_a_batch_across_batches_and_sources(store):
    first = store.record_batch("/a", lines([run(1), run(2), run(1)]), [], FileProgress(3, 3))
    assert (first.stored, first.duplicates) == (2, 1)
    again = store.record_batch("/b", lines([run(2), run(3)]), [], FileProgress(2, 2))
    assert (again.stored, again.duplicates) == (1, 1)
    assert store.add_trajectories([run(3), run(4)], source="http") == 1
    assert store.trajectory_ids() == ["run-1", "run-2", "run-3", "run-4"]
    assert store.counter("duplicates") == 2  # add_trajectories does not count its own
    assert store.count("trajectories") == store.stored_after(0) == 4
    # The first copy of a run is the one kept, with its source.
    assert store.count("trajectories", "id = ? AND source = ?", ["run-1", "/a:1"]) == 1


def test_ignored_duplicates_use_up_sequence_numbers_and_stored_after_counts_rows(store):
    store.add_trajectories([run(1), run(1), run(2)], source="t")
    evolved = store.high_water()
    store.add_trajectories([run(1), run(3)], source="t")
    assert store.high_water() > evolved
    assert store.stored_after(evolved) == 1
    assert [t.id for t in store.trajectories(after_seq=evolved)] == ["run-3"]
    assert [t.id for t in store.trajectories(upto_seq=evolved)] == ["run-1", "run-2"]


def unknown(i: int, **extra: Any) -> Trajectory:
    """`run(i)` as stored before its outcome was known."""
    return run(i, **extra).model_copy(update={"outcome": None})


def test_a_late_outcome_is_set_once_and_a_known_one_is_never_overwritten(store):
    skills = [{"name": "s", "version": "1"}]
    store.add_trajectories([unknown(4, skills=skills), run(5, skills=skills)], source="t")
    seq = store.high_water() - 1
    result = store.set_outcomes(
        [("run-4", Outcome(success=True, reason="user: it worked")),
         ("run-5", Outcome(success=True)), ("nope", Outcome(success=False))]
    )  # fmt: skip
    assert result == OutcomeResult(applied=("run-4",), known=("run-5",), missing=("nope",))
    four, five = store.trajectories()
    assert four.outcome == Outcome(success=True, reason="user: it worked")
    assert four.model_copy(update={"outcome": None}) == unknown(4, skills=skills)
    assert five == run(5, skills=skills)  # its own outcome (a failure) stays
    assert store.count("trajectories", "success = 1") == 1  # the column agrees with the JSON
    [version] = store.skill_versions("s")  # and so does the skill index
    assert (version["runs"], version["successes"], version["failures"]) == (2, 1, 1)
    assert store.outcome_updates_after(0) == [(1, seq)] and store.outcomes_high_water() == 1
    again = store.set_outcomes([("run-4", Outcome(success=False))])
    assert again == OutcomeResult(known=("run-4",)) and store.outcomes_high_water() == 1
    assert next(store.trajectories()).succeeded is True
    with pytest.raises(StoreError, match="not known"):
        store.set_outcomes([("run-4", Outcome(reason="no verdict"))])


def test_a_copy_that_brings_the_outcome_is_an_outcome_update_once(store):
    store.record_batch("/a", lines([unknown(1), unknown(2)]), [], FileProgress(2, 2), now=T0)
    other = run(2).model_copy(update={"task": "another run under a reused id"})
    first = store.record_batch("/b", lines([run(1), other]), [], FileProgress(2, 2), now=T0)
    assert (first.stored, first.outcomes, first.duplicates) == (0, 1, 1)
    again = store.record_received([run(1)], [], source="http:x")  # the same copy, sent again
    assert (again.stored, again.outcomes, again.duplicates) == (0, 0, 1)
    assert [t.succeeded for t in store.trajectories()] == [run(1).succeeded, None]
    assert store.count("trajectories") == 2 and store.outcomes_high_water() == 1
    # within one batch: the run, then a copy with its outcome
    both = store.record_batch("/c", lines([unknown(7), run(7)]), [], FileProgress(2, 2), now=T0)
    assert (both.stored, both.outcomes, both.duplicates) == (1, 1, 0)
    assert [t for t in store.trajectories() if t.id == "run-7"] == [run(7)]


def test_reading_many_runs_pages_through_them_in_order(store):
    runs = [run(i) for i in range(2345)]
    store.add_trajectories(runs, source="bulk")
    assert [t.id for t in store.trajectories()] == [t.id for t in runs]
    tail = list(store.trajectories(after_seq=2000))
    assert [t.id for t in tail] == [t.id for t in runs[2000:]]


def test_a_bad_line_is_quarantined_once_per_file_and_offset_and_redacted(store):
    secret = "sk-ant-api03-" + "A1b2C3d4" * 8
    bad = Quarantined("/a", 2, 50, f"bad key {secret}", f'{{"key": "{secret}"')
    assert store.record_batch("/a", [], [bad], FileProgress(60, 2)).quarantined == 1
    assert store.record_batch("/a", [], [bad], FileProgress(60, 2)).quarantined == 0
    [row] = store.quarantine()
    assert (row["file"], row["line"], row["offset"], row["lines"], row["last_line"]) == (
        "/a", 2, 50, 1, None,
    )  # fmt: skip
    assert secret not in row["reason"] + row["excerpt"]
    assert store.quarantined_lines() == 1


def test_a_quarantine_summary_row_is_updated_in_place_and_counted(store):
    keep = [Quarantined("/a", i, i * 10, "bad", "x") for i in (1, 2)]
    summary = Quarantined("/a", 3, 30, "2 more bad lines", "y", lines=2, last_line=4)
    assert store.record_batch("/a", [], [*keep, summary], FileProgress(50, 4)).quarantined == 2
    assert store.quarantine_summary("/a") == summary
    grown = Quarantined("/a", 3, 30, "5 more bad lines", "z", lines=5, last_line=9)
    assert store.record_batch("/a", [], [grown], FileProgress(99, 9)).quarantined == 0
    assert store.quarantine_summary("/a") == grown
    assert store.quarantine_summary("/b") is None
    assert store.quarantined_lines() == 2 + 5
    assert store.count("quarantine") == 3
    assert [r["line"] for r in store.quarantine(limit=2)] == [3, 2]  # newest first


def test_intake_of_a_real_file_with_too_many_bad_lines_keeps_a_capped_quarantine(store, tmp_path):
    path = tmp_path / "in" / "runs.jsonl"
    good = [run(i).model_dump(mode="json") for i in range(5)]
    write_jsonl(path, good[:2])
    with path.open("a") as handle:
        handle.write("not json\n" * (QUARANTINE_PER_FILE + 7))
    write_jsonl(path, [*good[2:], good[0]])
    result = ingest_file(store, path)
    assert (result.stored, result.duplicates) == (5, 1)
    assert result.quarantined == QUARANTINE_PER_FILE + 7
    assert store.count("quarantine") == QUARANTINE_PER_FILE + 1  # one by one, then a summary
    assert store.quarantined_lines() == QUARANTINE_PER_FILE + 7
    summary = store.quarantine_summary(str(path))
    assert summary is not None and (summary.lines, summary.last_line) == (7, 109)
    with path.open("a") as handle:
        handle.write("still not json\n")
    ingest_file(store, path)
    assert store.count("quarantine") == QUARANTINE_PER_FILE + 1  # counted into the summary
    assert store.quarantine_summary(str(path)).lines == 8
    assert store.file_progress(str(path.resolve())).bad_lines == QUARANTINE_PER_FILE + 8


def test_a_new_store_on_the_same_location_resumes_where_intake_stopped(location, tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [run(i).model_dump(mode="json") for i in range(3)])
    with open_store(location) as first:
        assert ingest_file(first, path).stored == 3
    write_jsonl(path, [run(3).model_dump(mode="json")])
    with open_store(location) as second:  # a restart, or another node
        result = ingest_file(second, path)
        assert (result.lines, result.stored, result.duplicates) == (1, 1, 0)
        assert second.file_progress(str(path.resolve())).line == 4


def test_records_received_over_the_network_are_stored_with_the_bad_ones(store):
    bad = Quarantined("http 10.0.0.1", 2, 1, "steps.0.name: required", "{}")
    result = store.record_received([run(1), run(2), run(1)], [bad], source="http 10.0.0.1")
    assert (result.stored, result.duplicates, result.quarantined) == (2, 1, 1)
    assert store.counter("duplicates") == 1
    assert store.count("trajectories", "source = ?", ["http 10.0.0.1"]) == 2


def test_text_with_nul_characters_is_stored_and_read_back_whole(store):
    odd = run(1, task="cancel\x00order", agent="bot\x00")
    store.add_trajectories([odd], source="weird\x00source")
    assert list(store.trajectories()) == [odd]
    assert store.count("trajectories") == 1


def test_count_takes_a_sqlite_condition(store):
    store.add_trajectories([run(i) for i in range(6)], source="t")
    assert store.count("trajectories") == 6
    assert store.count("trajectories", "success = 1") == 3
    assert store.count("trajectories", "seq > ? AND seq <= ?", [2, 4]) == 2
    assert store.count("trajectories", "task LIKE ?", ["%W1"]) == 1


# -- state and counters ----------------------------------------------------------------------


def test_daemon_state_is_replaced_key_by_key(store):
    assert store.state() == {} and store.counter("nothing") == 0
    store.set_state(pid="12", next_cycle="soon")
    store.set_state(pid="13", stopping=None)
    assert store.state() == {"pid": "13", "next_cycle": "soon", "stopping": None}


# -- cycles -------------------------------------------------------------------------------------


def test_cycles_start_finish_and_the_last_one_wins_a_tie(store):
    assert store.last_cycle() is None and store.evolved_high_water() == 0
    store.start_cycle("c1", 5, now=T0)
    store.finish_cycle("c1", "done", now=T0, trajectories=5, changes=2, proposal="c1")
    store.start_cycle("c2", 8, now=T0, outcomes=3)  # the same second: insertion order decides
    store.finish_cycle("c2", "failed", now=T0, error="boom")
    assert store.last_cycle()["id"] == "c2"
    done = store.last_cycle(status=["done", "nothing-new"])
    assert done == {
        "id": "c1", "started_at": T0.isoformat(), "finished_at": T0.isoformat(),
        "status": "done", "high_water": 5, "trajectories": 5, "changes": 2, "proposal": "c1",
        "error": None, "outcomes": 0,
    }  # fmt: skip
    assert store.evolved_high_water() == 5 and store.evolved_outcomes() == 0
    assert store.count("cycles") == 2


def test_cycles_left_running_by_a_crash_are_marked_interrupted(store):
    store.start_cycle("a", 1, now=T0)
    store.start_cycle("b", 2, now=T0 + timedelta(seconds=1))
    store.finish_cycle("b", "done", now=T0 + timedelta(seconds=2))
    store.start_cycle("c", 3, now=T0 + timedelta(seconds=3))
    assert store.interrupt_running_cycles(now=T0 + timedelta(minutes=1)) == ["a", "c"]
    assert store.last_cycle(status=["interrupted"])["id"] == "c"
    assert store.interrupt_running_cycles(now=T0) == []
    assert store.evolved_high_water() == 2


def test_memberships_are_replaced_whole(store):
    store.save_memberships({"run-1": "k1", "run-2": "k1"})
    store.save_memberships({"run-2": "k2", "run-3": "k2"})
    assert store.memberships() == {"run-2": "k2", "run-3": "k2"}
    store.save_memberships({})
    assert store.memberships() == {}


# -- proposals and review --------------------------------------------------------------------


def test_proposals_changes_and_decisions(store):
    store.add_proposal(proposal("p2", created=2), [change("b", "f2"), change("a", "f1", runs=4)])
    store.add_proposal(proposal("p1", created=1), [change("c", "f3")])
    assert [p["id"] for p in store.proposals()] == ["p1", "p2"]  # by creation time
    changes = store.proposal_changes("p2")
    assert [c["skill"] for c in changes] == ["a", "b"]
    assert (changes[0]["runs"], changes[0]["reason"], changes[1]["runs"]) == (4, None, None)
    store.decide("p1", "rejected", reason="too narrow", now=T0)
    store.set_pull_request("p2", 7, "https://git.example/pr/7")
    assert store.proposal("p1")["status"] == "rejected"
    assert store.proposal("p1")["decided_at"] == T0.isoformat()
    assert (store.proposal("p2")["pr_number"], store.proposal("p2")["pr_url"]) == (
        7, "https://git.example/pr/7",
    )  # fmt: skip
    assert store.proposal("nope") is None
    assert [p["id"] for p in store.proposals("open")] == ["p2"]
    assert store.known_changes(["rejected"]) == {("c", "f3")}
    assert store.known_changes(["open", "rejected"]) == {("a", "f1"), ("b", "f2"), ("c", "f3")}
    assert store.open_proposals_touching(["b", "c"]) == ["p2"]
    assert store.open_proposals_touching([]) == []


def test_a_proposal_that_cannot_be_recorded_leaves_nothing_half_written(store):
    store.add_proposal(proposal("p1"), [change("a", "f1")])
    with pytest.raises(StoreError, match="could not record proposal p1"):
        store.add_proposal(proposal("p1"), [change("z", "f9")])
    with pytest.raises(StoreError, match="could not record proposal p2"):
        store.add_proposal(proposal("p2"), [change("a", "f1"), change("a", "f2")])
    assert [p["id"] for p in store.proposals()] == ["p1"]
    assert [c["skill"] for c in store.proposal_changes("p1")] == ["a"]
    assert store.proposal_changes("p2") == []


def test_review_comments_are_kept_once_and_feed_back_into_the_next_change(store):
    store.add_proposal(proposal("p1"), [change("refunds", "f1")])
    comments = [
        {"key": "c2", "kind": "review", "author": "ana", "body": "Cite the policy.",
         "path": "refunds/SKILL.md", "state": "CHANGES_REQUESTED",
         "created_at": "2026-11-22T10:00:00Z"},
        {"key": "c1", "kind": "issue", "author": "bo", "body": "Too specific."},
        {"key": "c3", "kind": "review", "author": "cy", "body": "Unrelated.",
         "path": "other/SKILL.md", "created_at": "2026-11-22T09:00:00Z"},
    ]  # fmt: skip
    assert store.add_review_comments("p1", comments) == 3
    assert store.add_review_comments("p1", comments[:1]) == 0
    assert [c["key"] for c in store.review_comments("p1")] == ["c1", "c3", "c2"]  # undated first
    store.decide("p1", "rejected", reason="Too specific.", now=T0)
    assert store.feedback_for("refunds") == [
        "Earlier rejected on 2026-11-21: Too specific.",
        "Review comment by ana on refunds/SKILL.md: Cite the policy.",
    ]
    assert store.feedback_for("other") == []


# -- LLM cache and spend -------------------------------------------------------------------


def test_llm_cache_and_spend_per_cycle(store):
    assert store.llm_cache_get("k") is None
    store.llm_cache_put("k", '{"a": 1}', provider="openai", model="m", role="r", version="1")
    store.llm_cache_put("k", '{"a": 2}', provider="openai", model="m", role="r", version="1")
    assert store.llm_cache_get("k") == '{"a": 2}'
    call = {"provider": "openai", "model": "m", "role": "refine", "calls": 1,
            "input_tokens": 100, "output_tokens": 20, "cost_usd": 0.25}  # fmt: skip
    store.record_llm_calls("c1", [call, {**call, "cached": True, "calls": 0}])
    store.record_llm_calls("c2", [{**call, "skill": "s", "version": "3", "note": "refused"}])
    spend = store.llm_spend()
    assert list(spend) == ["c1", "c2"]
    assert spend["c1"] == {
        "calls": 1, "input_tokens": 200, "output_tokens": 40, "cost_usd": 0.5, "cached": 1,
        "noted": 0, "asks": 2,
    }  # fmt: skip
    assert spend["c2"]["noted"] == 1
    assert list(store.llm_spend(["c2"])) == ["c2"] and store.llm_spend([]) == {}
    asks = store.llm_calls("c1")
    assert [(a["cached"], a["skill"], a["note"]) for a in asks] == [(0, None, ""), (1, None, "")]
    assert store.llm_calls("c2")[0]["version"] == "3"


# -- skills and the ledger -------------------------------------------------------------------


def test_skill_usage_versions_and_ledger(store):
    loaded = [
        run(i, skills=[{"name": "refunds", "version": "1" if i < 4 else "2"},
                       {"name": "refunds", "version": "2" if i < 4 else "2"}])
        for i in range(6)
    ]  # fmt: skip
    loaded.append(run(9, skills=[{"name": "greet"}], outcome=None))
    store.record_batch("/a", lines(loaded), [], FileProgress(7, 7), now=T0)
    assert store.skill_usage() == {"refunds": 6, "greet": 1}
    detail = store.skill_usage_detail()
    assert detail["refunds"][:2] == (6, 3)
    assert detail["refunds"][2] == T0 + timedelta(minutes=5, seconds=9)  # the last run's end
    assert detail["greet"][:2] == (1, 0)
    versions = store.skill_versions("refunds")
    assert [(v["version"], v["runs"], v["successes"], v["failures"]) for v in versions] == [
        ("2", 6, 3, 3)
    ]  # the last loaded version of a name counts, as in SQLite
    [greet] = store.skill_versions("greet")
    assert (greet["version"], greet["successes"], greet["first_seen"]) == (
        None, None, T0.isoformat(timespec="seconds"),
    )  # fmt: skip
    store.add_proposal(proposal("p1", created=1), [change("refunds", "f1", runs=6, successes=3)])
    store.add_proposal(proposal("p2", created=2), [change("refunds", "f2", version="3")])
    store.decide("p1", "accepted", reason="good", now=T0)
    ledger = store.ledger("refunds")
    assert [(e["proposal"], e["status"], e["runs"], e["version"]) for e in ledger] == [
        ("p1", "accepted", 6, None), ("p2", "open", None, "3"),
    ]  # fmt: skip
    assert ledger[0]["decision_reason"] == "good"


# -- cluster state for incremental cycles ------------------------------------------------------


def test_cluster_state_round_trips(store):
    if not hasattr(Store, "save_cluster_state"):
        pytest.skip("store.py has no cluster state (m009) yet")
    store.add_trajectories([run(i) for i in range(5)], source="t")
    batches = list(store.run_batches(0, store.high_water(), size=2))
    assert [len(b) for b in batches] == [2, 2, 1]
    seqs = [seq for batch in batches for seq, _, _ in batch]
    assert [Trajectory.model_validate_json(j).id for b in batches for _, j, _ in b] == [
        f"run-{i}" for i in range(5)
    ]
    assert store.first_unassigned() == seqs[0]
    rows = [(seq, f"run-{i}", "k1" if i < 3 else "k2", i % 2, 1000 + i)
            for i, seq in enumerate(seqs)]  # fmt: skip
    store.add_cluster_runs(rows)
    store.add_cluster_runs([(seqs[0], "run-0", "k2", 0, 1000)])  # replaced
    assert store.first_unassigned() is None
    assert store.memberships()["run-0"] == "k2"
    assert [c for b in store.run_batches(0, seqs[-1]) for _, _, c in b] == [
        "k2", "k1", "k1", "k2", "k2",
    ]  # fmt: skip
    assert store.runs_by_seq([seqs[1], seqs[1]]).keys() == {seqs[1]}
    assert store.tasks_by_seq(seqs[:2]) == {seqs[0]: "cancel order W0", seqs[1]: "cancel order W1"}
    after = store.cluster_runs_after(["k1"], seqs[1], 5)
    assert after == [{"seq": seqs[2], "id": "run-2", "cluster": "k1", "success": 0,
                      "task": 1002}]  # fmt: skip
    assert store.cluster_runs_after([], 0, 5) == []
    store.move_clusters(["k2"], "k1")
    assert set(store.memberships().values()) == {"k1"}
    assert len(store.cluster_runs_after(["k1"], 0, 10)) == 5
    stats = {"cluster": "k1", "tally": "{}", "prefix": 3, "prefix_seq": seqs[2],
             "sample": "[1]", "anchors": "[]"}  # fmt: skip
    store.save_cluster_state([stats], {"k1": {"b": 2, "a": 1, "z": 0}}, {"a": 1, "b": 2},
                             {"high_water": "5"})  # fmt: skip
    store.save_cluster_state([{**stats, "prefix": 4}], {}, {"a": 3}, {"v": "2"})
    assert store.cluster_stats() == [{**stats, "prefix": 4}]
    assert store.cluster_features() == {"k1": {"a": 1, "b": 2}}
    assert store.feature_df() == {"a": 3, "b": 2}
    assert store.cluster_state_meta() == {"high_water": "5", "v": "2"}
    store.save_cluster_state([{**stats, "cluster": "k3"}], {"k3": {"c": 1}}, {}, {}, ["k1"])
    assert [s["cluster"] for s in store.cluster_stats()] == ["k3"]
    assert store.cluster_features() == {"k3": {"c": 1}}
    store.drop_cluster_runs_after(seqs[2])
    assert [r["seq"] for r in store.cluster_runs_after(["k1"], 0, 10)] == seqs[:3]
    store.save_memo({"x": "1", "y": "2"}, keep=())
    store.save_memo({"z": "3"}, keep={"x"})
    assert [store.memo_get(k) for k in "xyz"] == ["1", None, "3"]
    store.save_cluster_state([], {}, {}, {}, sets=[("f1", "k3", 2), ("f2", "k3", 1)])
    store.save_cluster_state([], {}, {}, {}, sets=[("f1", "k3", 1), ("f1", "k4", 1)])
    assert store.cluster_sets(["f1", "f9"]) == {"f1": {"k3": 3, "k4": 1}}
    store.clear_cluster_state()
    assert (store.cluster_stats(), store.cluster_features(), store.feature_df()) == ([], {}, {})
    assert (store.cluster_state_meta(), store.memo_get("x")) == ({}, None)
    assert store.cluster_sets(["f1"]) == {}
    assert store.cluster_runs_after(["k1"], 0, 10) == []
    assert len(store.memberships()) == 5  # memberships are kept


# -- both backends give the same answers ---------------------------------------------------------


def scenario(store: Any, tmp_path: Path) -> dict[str, Any]:
    """The same writes on any store, then every read, as plain data."""
    (tmp_path / "in.jsonl").unlink(missing_ok=True)
    path = write_jsonl(tmp_path / "in.jsonl", [run(i).model_dump(mode="json") for i in range(8)])
    with path.open("a") as handle:
        handle.write("{broken\n")
    ingest_file(store, path)
    store.record_batch("/b", lines([run(3), run(20, skills=[{"name": "s"}])]), [],
                       FileProgress(2, 2), now=T0)  # fmt: skip
    store.start_cycle("c1", store.high_water(), now=T0)
    store.finish_cycle("c1", "done", now=T0, trajectories=9, changes=1, proposal="p1")
    store.add_proposal(proposal("p1"), [change("s", "f", runs=1)])
    store.decide("p1", "rejected", reason="no", now=T0)
    store.save_memberships({"run-1": "k"})
    store.set_state(pid="1")
    return {
        "ids": store.trajectory_ids(),
        "runs": [t.model_dump() for t in store.trajectories()],
        "high_water": store.high_water(),
        "stored_after_3": store.stored_after(3),
        "duplicates": store.counter("duplicates"),
        "progress": store.file_progress(str(path.resolve())),
        "quarantine": [{k: v for k, v in r.items() if k != "at"} for r in store.quarantine()],
        "last_cycle": store.last_cycle(),
        "proposals": store.proposals(),
        "changes": store.proposal_changes("p1"),
        "ledger": store.ledger("s"),
        "versions": store.skill_versions("s"),
        "feedback": store.feedback_for("s"),
        "usage": store.skill_usage(),
        "memberships": store.memberships(),
        "state": store.state(),
    }


def test_sqlite_and_postgres_answer_the_same_writes_alike(tmp_path, postgres_url):
    with Store(tmp_path / "s.db") as lite:
        expected = scenario(lite, tmp_path)
    with open_store(postgres_url) as pg:
        got = scenario(pg, tmp_path)
    expected["progress"] = replace(expected["progress"], inode=None, dev=None)
    got["progress"] = replace(got["progress"], inode=None, dev=None)  # a new file each time
    assert got == expected


def table_columns_sqlite(path: Path) -> dict[str, list[str]]:
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {
            t: [r[1] for r in conn.execute(f"PRAGMA table_info([{t}])")]
            for t in tables
            if not t.startswith(("sqlite_", "_sqlite"))
        }


def test_postgres_migrations_mirror_sqlite_ones_name_for_name_and_column_for_column(
    tmp_path, postgres_url
):
    """Fails when store.py gains a migration or column that pgstore.py does not have yet
    (pgstore.py may be one ahead while store.py's is still being written)."""
    import psycopg

    Store(tmp_path / "s.db").close()
    with sqlite3.connect(tmp_path / "s.db") as conn:
        sqlite_names = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations")]
    open_store(postgres_url).close()
    with psycopg.connect(postgres_url) as conn:
        pg_names = [r[0] for r in conn.execute("SELECT name FROM _skillforge_migrations")]
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_%'"
            " ORDER BY table_name, ordinal_position"
        ).fetchall()
    assert set(sqlite_names) <= set(pg_names)
    pg_columns: dict[str, list[str]] = {}
    for table, column in rows:
        if not column.startswith("_"):  # _pos: SQLite's rowid
            pg_columns.setdefault(table, []).append(column)
    sqlite_columns = table_columns_sqlite(tmp_path / "s.db")
    assert {t: pg_columns.get(t) for t in sqlite_columns} == sqlite_columns


def test_migrations_run_once_even_when_nodes_start_together(postgres_url):
    import psycopg

    errors: list[BaseException] = []

    def start() -> None:
        try:
            open_store(postgres_url).close()
        except BaseException as exc:  # what a node starting up would have hit
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with psycopg.connect(postgres_url) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM _skillforge_migrations")]
    assert len(names) == len(set(names)) > 0


def test_an_unreachable_postgres_is_a_store_error_that_hides_the_password(postgres_server):
    host = postgres_server.get_uri().split("host=")[1]
    url = f"postgresql://postgres:hunter2@/no_such_db?host={host}"
    with pytest.raises(StoreError) as caught:
        open_store(url)
    message = str(caught.value)
    assert "hunter2" not in message
    assert "cannot connect to the store at postgresql://postgres:***@/no_such_db" in message
    assert "no_such_db" in message and "does not exist" in message


def test_an_unknown_kind_of_url_is_refused():
    with pytest.raises(StoreError, match="mysql://... is not a store"):
        open_store("mysql://root@localhost/db")


# -- two writers at once ---------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import random
    import sys
    from evolver.model import Outcome, Trajectory
    from skillforge.store import FileProgress
    from skillforge.stores import open_store

    location, node, n, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    runs = [
        Trajectory.model_validate({"id": f"run-{i}", "task": f"close ticket {i}", "steps": [],
                                   "skills": [{"name": "triage", "version": "1"}]})
        for i in range(n)
    ]
    if node == "b":
        random.Random(7).shuffle(runs)
    stored = 0
    with open_store(location) as store:
        print("ready", flush=True)
        sys.stdin.readline()  # both start together
        for start in range(0, n, batch):
            chunk = runs[start:start + batch]
            done = start + len(chunk)
            result = store.record_batch(
                f"/{node}/runs.jsonl", [(t, start + k + 1) for k, t in enumerate(chunk)], [],
                FileProgress(offset=done * 10, line=done),
            )
            stored += result.stored
    print(stored, flush=True)
    """
)


def test_two_processes_writing_the_same_runs_store_each_once_and_a_reader_misses_none(location):
    """Two intake nodes take in the same 3,000 runs at once while an evolver follows the high
    water: every run is stored once, and reading `(last high water, high water]` each time
    sees every run exactly once (sequence numbers are handed out in commit order)."""
    n, batch = 3000, 40
    open_store(location).close()  # migrated before both start
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, location, node, str(n), str(batch)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )  # fmt: skip
        for node in ("a", "b")
    ]
    seen: list[str] = []
    try:
        for writer in writers:
            assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        for writer in writers:
            assert writer.stdin is not None
            writer.stdin.write("go\n")
            writer.stdin.flush()
        with open_store(location) as reader:
            evolved = 0
            while any(w.poll() is None for w in writers):
                high = reader.high_water()
                seen += [t.id for t in reader.trajectories(after_seq=evolved, upto_seq=high)]
                evolved = high
            seen += [t.id for t in reader.trajectories(after_seq=evolved)]
            outputs = [w.communicate(timeout=120) for w in writers]
            for writer, (_, err) in zip(writers, outputs, strict=True):
                assert writer.returncode == 0, err
            stored = [int(out.split()[-1]) for out, _ in outputs]
            assert sum(stored) == n
            assert sorted(reader.trajectory_ids()) == sorted(f"run-{i}" for i in range(n))
            assert reader.counter("duplicates") == n
            assert reader.skill_usage() == {"triage": n}
            assert reader.file_progress("/a/runs.jsonl").line == n
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
    assert len(seen) == n and len(set(seen)) == n


def test_a_store_is_opened_again_after_the_server_drops_its_connection(postgres_url):
    import psycopg

    with open_store(postgres_url) as store:
        store.add_trajectories([run(1)], source="t")
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'skillforge' AND pid <> pg_backend_pid()"
            )
        with pytest.raises(StoreError, match="could not read"):
            store.trajectory_ids()  # the call that finds the connection gone fails cleanly
        assert store.trajectory_ids() == ["run-1"]  # the next one connects again


def test_a_cycle_runs_on_either_backend_with_the_same_outcome(tmp_path, postgres_url):
    """The cycle (cycle.py, unchanged) against each store: the same proposal either way."""
    from skillforge.config import load
    from skillforge.cycle import run_cycle
    from skillforge.library import LibraryRepo

    runs = [
        run(i, task=f"renew the permit number {i} for the customer", steps=[
            {"type": "tool_call", "name": "find_permit", "arguments": {"id": i}, "result": "ok"},
            {"type": "tool_call", "name": "renew_permit", "arguments": {"id": i},
             "result": "ok"},
        ], outcome={"success": i != 0})
        for i in range(6)
    ]  # fmt: skip
    outcomes = []
    for name, location in (("lite", str(tmp_path / "lite.db")), ("pg", postgres_url)):
        config = load(environ={}, cwd=tmp_path / name, overrides={"seed": REPO_ROOT / "skills"})
        repo = LibraryRepo.ensure(config.library_path, config.remote_url, seed=config.seed)
        with open_store(location) as store:
            store.add_trajectories(runs, source="test")
            result = run_cycle(store, repo, config, say=lambda line: None)
            again = run_cycle(store, repo, config, say=lambda line: None)
            changes = [
                {k: v for k, v in c.items() if k != "proposal"}
                for c in store.proposal_changes(result.proposal)
            ]
            outcomes.append(
                (result.status, result.changes, again.status, changes, store.evolved_high_water())
            )
    assert outcomes[0][0] == "done" and outcomes[0][1] >= 1
    assert outcomes[1] == outcomes[0]


def test_random_batches_agree_between_backends(tmp_path, postgres_url):
    """Random interleavings of batches, duplicates and bad lines: the same counts and ids."""
    rng = random.Random(15)
    plan = [
        (f"/f{rng.randrange(3)}", [rng.randrange(60) for _ in range(rng.randrange(1, 12))],
         rng.random() < 0.3)
        for _ in range(40)
    ]  # fmt: skip
    answers = []
    for opened in (Store(tmp_path / "s.db"), open_store(postgres_url)):
        with opened as store:
            results = []
            for k, (path, ids, bad) in enumerate(plan):
                q = [Quarantined(path, k, k, "bad", "x")] if bad else []
                r = store.record_batch(path, lines([run(i) for i in ids]), q, FileProgress(k, k))
                results.append((r.stored, r.duplicates, r.quarantined))
            answers.append((results, store.trajectory_ids(), store.high_water(),
                            store.counter("duplicates"), store.quarantined_lines()))  # fmt: skip
    assert answers[1] == answers[0]


def test_json_in_proposal_fields_is_stored_as_sqlite_utils_would(store):
    store.add_proposal({**proposal("p1"), "base": None}, [change("a", "f", runs=True)])
    assert store.proposal_changes("p1")[0]["runs"] == 1
    store.start_cycle("c", 0, now=T0)
    store.finish_cycle("c", "done", now=T0, error=json.dumps({"why": "x"}))
    assert json.loads(store.last_cycle()["error"]) == {"why": "x"}
