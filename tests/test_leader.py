"""The cycle leader lock, on its own: one leader among processes (a PostgreSQL advisory lock,
or an flock beside a SQLite file); when the leader dies, SIGKILL included, another takes over.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evolver.model import Trajectory
from skillforge.stores import leader_lock, open_store
from tests.conftest import REPO_ROOT
from tests.test_store_backends import fresh_database, start_postgres

ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


@pytest.fixture(scope="session")
def postgres_server() -> Any:
    return start_postgres()  # the one server of this test run


@pytest.fixture
def postgres_url(postgres_server: Any) -> Iterator[str]:
    yield from fresh_database(postgres_server)


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return request.getfixturevalue("postgres_url")
    return str(tmp_path / "state.db")


def test_one_leader_at_a_time_and_stepping_down_hands_over(location):
    first, second = leader_lock(location), leader_lock(location)
    try:
        assert first.try_lead()
        assert first.try_lead()  # asking again while leading: still the leader
        assert not second.try_lead()
        assert (first.still_leading(), second.still_leading()) == (True, False)
        first.release()
        assert not first.still_leading()
        assert second.try_lead()
        assert not first.try_lead()
    finally:
        first.release()
        second.release()


def test_locks_of_other_names_do_not_exclude_each_other(location):
    cycle, other = leader_lock(location, "cycle"), leader_lock(location, "nightly")
    try:
        assert cycle.try_lead() and other.try_lead()
    finally:
        cycle.release()
        other.release()


CANDIDATE = textwrap.dedent(
    """
    import sys
    import time
    from skillforge.stores import leader_lock

    lock = leader_lock(sys.argv[1])
    print("following", flush=True)
    while True:
        if lock.try_lead():
            print("leading", time.time(), flush=True)
            while lock.still_leading():
                time.sleep(0.05)
            print("lost", flush=True)
        time.sleep(0.05)
    """
)


def candidate(location: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CANDIDATE, location],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "following"
    return proc


def test_when_the_leader_process_is_killed_the_other_takes_over(location):
    leader = candidate(location)
    follower = None
    try:
        assert leader.stdout is not None
        assert leader.stdout.readline().startswith("leading")
        follower = candidate(location)
        time.sleep(1.0)  # the follower keeps trying, and must not lead meanwhile
        assert follower.poll() is None
        os.kill(leader.pid, signal.SIGKILL)
        leader.wait(timeout=10)
        killed = time.time()
        assert follower.stdout is not None
        line = follower.stdout.readline().split()  # the follower's next line: it leads
        assert line[0] == "leading", line
        took_over = float(line[1]) - killed
        assert took_over < 5.0  # measured: about 0.05 s (one retry) on either backend
        print(f"takeover after SIGKILL: {took_over:.3f} s")
    finally:
        for proc in (leader, follower):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def test_a_leader_whose_session_is_cut_knows_it_and_another_takes_over(postgres_url):
    import psycopg

    leader, other = leader_lock(postgres_url), leader_lock(postgres_url)
    try:
        assert leader.try_lead() and not other.try_lead()
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            [(cut,)] = admin.execute(
                "SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l"
                " WHERE l.locktype = 'advisory' AND l.granted"
            ).fetchall()
        assert cut == 1  # as if the leader's host dropped off the network
        assert not leader.still_leading()
        assert other.try_lead()
        assert not leader.try_lead()
    finally:
        leader.release()
        other.release()


def test_leadership_is_per_schema_so_deployments_sharing_a_database_do_not_collide(
    postgres_url,
):
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("CREATE SCHEMA alpha; CREATE SCHEMA beta")
    urls = [f"{postgres_url}&options=-csearch_path%3D{schema}" for schema in ("alpha", "beta")]
    locks = [leader_lock(url) for url in urls]
    try:
        assert all(lock.try_lead() for lock in locks)
        assert not leader_lock(urls[0]).try_lead()
        with open_store(urls[0]) as store:  # and each schema holds its own store
            store.set_state(owner="alpha")
        with open_store(urls[1]) as store:
            assert store.state() == {}
    finally:
        for lock in locks:
            lock.release()


# -- cycles under the lock: what the daemon will do -------------------------------------------

EVOLVER = textwrap.dedent(
    """
    import json
    import sys
    import time
    from datetime import UTC, datetime
    from skillforge.stores import leader_lock, open_store

    location, name = sys.argv[1], sys.argv[2]
    lock = leader_lock(location)
    with open_store(location) as store:
        k, leading = 0, False
        while True:
            if not lock.try_lead():
                leading = False
                time.sleep(0.05)
                continue
            if not leading:  # just took over: a dead leader's cycle is redone
                leading = True
                store.interrupt_running_cycles(now=datetime.now(UTC))
            evolved, high = store.evolved_high_water(), store.high_water()
            if high == evolved:
                time.sleep(0.05)
                continue
            k += 1
            cycle, start = f"{name}-{k}", time.time()
            store.start_cycle(cycle, high, now=datetime.now(UTC))
            print(json.dumps({"cycle": cycle, "start": start}), flush=True)
            ids = [t.id for t in store.trajectories(after_seq=evolved, upto_seq=high)]
            time.sleep(0.5)  # the work
            if not lock.still_leading():
                continue
            store.finish_cycle(cycle, "done", now=datetime.now(UTC), trajectories=len(ids))
            print(json.dumps({"cycle": cycle, "start": start, "end": time.time(),
                              "ids": ids}), flush=True)
    """
)


def test_cycles_under_the_lock_are_never_run_twice_at_once_and_none_is_lost(location):
    """Two evolvers contend while runs arrive; the leader is SIGKILLed mid-cycle. The other
    takes over, marks the dead cycle interrupted and evolves its runs again; cycles never
    overlap, and every run goes through exactly one finished cycle."""
    open_store(location).close()
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-c", EVOLVER, location, name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for name in ("a", "b")
    }
    events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
    readers = [
        threading.Thread(target=_follow, args=(name, proc, events), daemon=True)
        for name, proc in procs.items()
    ]
    for reader in readers:
        reader.start()
    seen: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
    try:
        with open_store(location) as store:
            batches = iter(range(1, 100))

            def add_runs() -> None:
                b = next(batches)
                runs = [Trajectory(id=f"b{b}-{i}", task=f"task {b} {i}") for i in range(20)]
                store.add_trajectories(runs, source="test")

            add_runs()
            name, event = events.get(timeout=30)  # the leader began a cycle: kill it now
            seen[name].append(event)
            victim, survivor = name, "b" if name == "a" else "a"
            killed = time.time()
            os.kill(procs[victim].pid, signal.SIGKILL)
            procs[victim].wait(timeout=10)
            for _ in range(3):
                add_runs()
                time.sleep(0.2)
            deadline = time.time() + 30
            while store.evolved_high_water() < store.high_water() and time.time() < deadline:
                time.sleep(0.05)
            assert store.evolved_high_water() == store.high_water(), "nobody evolved the rest"
            all_ids = store.trajectory_ids()
            interrupted = store.last_cycle(status=["interrupted"])
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    for reader in readers:
        reader.join(timeout=10)
    while not events.empty():
        name, event = events.get()
        seen[name].append(event)
    assert [e for e in seen[victim] if "end" in e] == []  # killed in its first cycle
    assert interrupted is not None and interrupted["id"] == seen[victim][0]["cycle"]
    assert seen[survivor] and all(e["start"] > killed for e in seen[survivor])
    finished = sorted((e for e in seen[survivor] if "end" in e), key=lambda e: e["start"])
    for earlier, later in itertools.pairwise(finished):
        assert earlier["end"] <= later["start"]  # one cycle at a time
    evolved = [i for e in finished for i in e["ids"]]
    assert sorted(evolved) == sorted(all_ids)  # each run in exactly one finished cycle


def _follow(name: str, proc: subprocess.Popen[str], events: queue.Queue[Any]) -> None:
    """Pass a process's JSON lines on as (its name, the event)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("{"):
            events.put((name, json.loads(line)))
