"""Several hosts, one store: two real daemons take runs over HTTP into one PostgreSQL
database (pgserver) and share one library remote. One leads the cycles; SIGKILL it in the
middle of a cycle and the other takes over, redoes the cycle and proposes; every run is
stored exactly once and no two cycles ever run at once."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_harness import DaemonProcess, wait_for
from tests.reliability.runs import family
from tests.test_store_backends import fresh_database, start_postgres

pytestmark = pytest.mark.e2e
TOKEN = "fleet-token"


@pytest.fixture
def database() -> Iterator[str]:
    yield from fresh_database(start_postgres())


def sql(url: str, query: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


class Node(DaemonProcess):
    """One host: its own home, inbox and library working copy; the shared store and remote."""

    def __init__(
        self, root: Path, name: str, database: str, remote: Path, **settings: object
    ) -> None:
        (root / name).mkdir(parents=True)
        super().__init__(
            root / name / "var",
            root / name / "inbox",
            db=database,
            remote=str(remote),
            http="127.0.0.1:0",
            http_token=TOKEN,
            evolve_after=20,
            evolve_every_minutes=600,
            sweep_seconds=0.2,
            **settings,
        )
        self.name = name

    def url(self) -> str:
        found = re.search(r"http intake on (http://[0-9.:]+)/v1/trajectories", self.output())
        assert found, self.output()
        return found.group(1)

    def post(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        body = "\n".join(json.dumps(r) for r in records).encode()
        request = urllib.request.Request(
            f"{self.url()}/v1/trajectories",
            data=body,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read())


def test_two_hosts_one_store_the_leader_dies_mid_cycle_and_the_other_takes_over(
    tmp_path: Path, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = tmp_path / "library.git"
    first, second = Node(tmp_path, "a", database, remote), Node(tmp_path, "b", database, remote)
    monkeypatch.setenv("SKILLFORGE_TEST_PAUSE", "commit")  # the first node's cycle stops there
    first.start()
    wait_for(lambda: "this daemon leads" in first.output(), timeout=60,
             what="the first node to lead", log=first.output)  # fmt: skip
    monkeypatch.delenv("SKILLFORGE_TEST_PAUSE")
    second.start()
    try:
        wait_for(lambda: "another daemon leads" in second.output(), timeout=60,
                 what="the second node to follow", log=second.output)  # fmt: skip
        records = family("invoice", count=12) + family("refund", count=12)
        assert first.post(records[0::2])["accepted"] == 12
        assert second.post(records[1::2])["accepted"] == 12  # stored by the follower...
        # ...and the leader, seeing 24 new runs in the shared store, starts a cycle.
        wait_for(lambda: "test pause at commit" in first.output(), timeout=120,
                 what="the leader's cycle", log=first.output)  # fmt: skip
        assert "test pause" not in second.output()
        first.kill()  # SIGKILL, mid-cycle: its cycle process dies with it
        wait_for(lambda: "this daemon leads" in second.output(), timeout=60,
                 what="the follower to take over", log=second.output)  # fmt: skip
        wait_for(
            lambda: sql(database, "SELECT count(*) FROM cycles WHERE status = 'done'")[0][0],
            timeout=180,
            what="the new leader's cycle",
            log=second.output,
        )
        more = family("payout", count=6)
        assert second.post(more)["accepted"] == 6
        assert second.post(more)["duplicates"] == 6  # sent again: stored once
    finally:
        assert second.stop() == 0

    ids = [row[0] for row in sql(database, "SELECT id FROM trajectories")]
    assert sorted(ids) == sorted(r["id"] for r in records + more)
    statuses = sql(database, "SELECT status, started_at, finished_at FROM cycles ORDER BY id")
    assert [s for s, *_ in statuses].count("interrupted") == 1  # the dead leader's
    assert "running" not in [s for s, *_ in statuses]
    done = [(start, end) for s, start, end in statuses if s == "done"]
    assert done and all(end for _, end in done)
    # The proposal was pushed to the shared remote by the node that took over.
    branches = subprocess.run(
        ["git", "--git-dir", str(remote), "for-each-ref", "--format=%(refname:short)"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    [(proposal, branch)] = sql(database, "SELECT id, branch FROM proposals WHERE status = 'open'")
    assert branch in branches
    assert (second.home / "proposals" / f"{proposal}.md").is_file()


def test_an_intake_only_host_never_leads_even_when_no_one_else_does(
    tmp_path: Path, database: str
) -> None:
    node = Node(tmp_path, "intake", database, tmp_path / "library.git", lead_cycles=False)
    node.start()
    try:
        wait_for(lambda: "only takes runs in" in node.output(), timeout=60,
                 what="the intake-only notice", log=node.output)  # fmt: skip
        assert node.post(family("invoice", count=30))["accepted"] == 30
        wait_for(lambda: sql(database, "SELECT count(*) FROM trajectories")[0][0] == 30,
                 timeout=30, what="the runs")  # fmt: skip
    finally:
        assert node.stop() == 0
    assert sql(database, "SELECT count(*) FROM cycles") == [(0,)]
    assert "leads" not in node.output()


def test_one_corpus_through_sqlite_and_through_two_intake_hosts_into_postgres_gives_one_library(
    tmp_path: Path, database: str, airline_records: list[dict[str, Any]]
) -> None:
    import threading

    from skillforge.config import load
    from skillforge.cycle import run_cycle
    from skillforge.http_intake import IntakeServer
    from skillforge.importers import parse_record
    from skillforge.library import LibraryRepo
    from skillforge.stores import open_store
    from tests.conftest import REPO_ROOT

    corpus = airline_records[:160]

    def library(db: str, name: str, post: Any) -> dict[str, str]:
        config = load(
            environ={},
            cwd=tmp_path,
            overrides={"home": str(tmp_path / name), "db": db, "seed": str(REPO_ROOT / "skills")},
        )
        post(config)
        repo = LibraryRepo.ensure(config.library_path, config.remote_url, seed=config.seed)
        with open_store(config.store_location) as store:
            result = run_cycle(store, repo, config, say=lambda _: None)
        assert result.proposal and result.changes
        docs = repo.skills(f"evolve/{result.proposal}")
        return {d.name: d.text + json.dumps(d.files, sort_keys=True) for d in docs}

    def one_sqlite_host(config: Any) -> None:
        with open_store(config.store_location) as store:
            store.add_trajectories([parse_record(r) for r in corpus], source="test")

    def two_http_hosts(config: Any) -> None:
        hosts = [
            IntakeServer(config.model_copy(update={"http": "127.0.0.1:0"})).start()
            for _ in range(2)
        ]

        def send(host: IntakeServer, part: list[dict[str, Any]]) -> None:
            for start in range(0, len(part), 10):  # many small requests, interleaved
                body = "\n".join(json.dumps(r) for r in part[start : start + 10]).encode()
                request = urllib.request.Request(
                    f"{host.url}/v1/trajectories",
                    data=body,
                    headers={"Content-Type": "application/x-ndjson"},
                )
                with urllib.request.urlopen(request, timeout=60) as answer:
                    assert answer.status == 202

        threads = [
            threading.Thread(target=send, args=(hosts[n], corpus[n::2])) for n in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for host in hosts:
            host.stop()

    alone = library(str(tmp_path / "alone.db"), "alone", one_sqlite_host)
    fleet = library(database, "fleet", two_http_hosts)
    assert alone and fleet == alone


def test_evolve_from_the_command_line_refuses_while_a_daemon_leads_a_shared_store(
    tmp_path: Path, database: str
) -> None:
    node = Node(tmp_path, "a", database, tmp_path / "library.git")
    node.start()
    try:
        wait_for(lambda: "this daemon leads" in node.output(), timeout=60,
                 what="the node to lead", log=node.output)  # fmt: skip
        refused = node.cli("evolve", check=False)
        assert refused.returncode == 1
        assert "a skillforge daemon leads the cycles" in refused.stderr + refused.stdout
    finally:
        assert node.stop() == 0
    assert node.cli("evolve").returncode == 0  # nobody leads now
