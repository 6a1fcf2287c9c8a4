"""The daemon's triggers with the real watchdog observer and the real apscheduler job."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest

from skillforge import cli
from skillforge.config import load
from skillforge.daemon import Daemon
from skillforge.errors import SkillforgeError
from skillforge.importers import parse_record
from tests.conftest import REPO_ROOT


class Running:
    """A Daemon on a thread, collecting what it says."""

    def __init__(self, tmp_path, **settings):
        self.config = load(
            environ={}, cwd=tmp_path, overrides={"seed": REPO_ROOT / "skills", **settings}
        )
        self.lines: list[str] = []
        self.daemon = Daemon(self.config, say=self.lines.append)
        self.thread = threading.Thread(target=self.daemon.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        self.wait_for("skillforge serving")
        return self

    def __exit__(self, *exc):
        self.daemon.stop.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "the daemon did not stop"
        assert self.lines[-1] == "skillforge stopped"

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in list(self.lines) if text in line]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no line with {text!r} in {timeout}s:\n" + "\n".join(self.lines))


@pytest.fixture
def airline_lines(airline_records) -> str:
    return "".join(json.dumps(r) + "\n" for r in airline_records if r["trial"] in (0, 1))


def test_the_interval_job_runs_a_cycle(tmp_path, airline_lines):
    # Neither start-up (the inbox is empty then) nor the count (far below) may trigger it.
    with Running(tmp_path, evolve_every_minutes=0.01, evolve_after=10**6, sweep_seconds=0.2) as run:
        (run.config.inbox / "runs.jsonl").write_text(airline_lines)
        run.wait_for("ingested 100 trajectories")
        announced = run.wait_for("proposal ")
    assert "skill changes on branch evolve/" in announced


def test_waiting_runs_start_a_cycle_at_start_up(tmp_path, airline_lines):
    inbox = tmp_path / "trajectories"
    inbox.mkdir()
    (inbox / "runs.jsonl").write_text(airline_lines)
    with Running(tmp_path, evolve_every_minutes=600, evolve_after=1, sweep_seconds=0.1) as run:
        run.wait_for("proposal ")
        time.sleep(1.0)  # sweeps during and after the cycle must not ask for another
    assert not [line for line in run.lines if "no new trajectories" in line]


def test_enough_new_runs_start_a_cycle_early(tmp_path, airline_lines):
    with Running(tmp_path, evolve_every_minutes=600, evolve_after=50, sweep_seconds=0.2) as run:
        (run.config.inbox / "runs.jsonl").write_text(airline_lines)
        run.wait_for("proposal ")


def test_a_second_daemon_on_the_same_store_is_refused(tmp_path):
    # Two would both claim the store's pid and both run cycles; the lock file says which
    # one is alive (status reads it), so the second one must not start at all.
    with Running(tmp_path, evolve_every_minutes=600, sweep_seconds=0.2) as run:
        second = Daemon(run.config, say=lambda text: None)
        failed: list[BaseException] = []

        def serve() -> None:
            try:
                second.run()
            except BaseException as exc:
                failed.append(exc)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        thread.join(timeout=60)
        second.stop.set()  # if it did start, let it go
        assert failed and isinstance(failed[0], SkillforgeError), failed
        assert re.search(r"another skillforge daemon \(pid \d+\)", str(failed[0]))
        assert run.thread.is_alive()


def test_outcomes_that_arrive_after_their_runs_start_a_cycle_early(tmp_path, airline_records):
    runs = [parse_record(r) for r in airline_records if r["trial"] == 0]
    known = [json.loads(r.model_dump_json()) for r in runs]
    unknown = [{k: v for k, v in d.items() if k != "outcome"} for d in known]
    with Running(tmp_path, evolve_every_minutes=600, evolve_after=20, sweep_seconds=0.2) as run:
        (run.config.inbox / "runs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in unknown))
        run.wait_for(f"reading {len(runs)} new trajectories")
        (run.config.inbox / "verdicts.jsonl").write_text(
            "".join(json.dumps(d) + "\n" for d in known)
        )
        run.wait_for("reading 0 new trajectories")  # the outcomes alone asked for a cycle


def test_a_coding_agents_run_file_is_taken_when_the_agent_stops(tmp_path):
    source = (
        REPO_ROOT / "tests" / "fixtures" / "swe_agent"
        / "default__gpt-4o__t-0.00__p-1.00__c-3.00___swe_bench_lite_test"
        / "django__django-11099" / "django__django-11099.traj"
    )  # fmt: skip
    finished = json.loads(source.read_text())
    midway = {**finished, "info": {k: v for k, v in finished["info"].items() if k != "exit_status"}}
    with Running(tmp_path, evolve_every_minutes=600, evolve_after=10**6, sweep_seconds=0.1) as run:
        target = run.config.inbox / "lite" / "django__django-11099" / "django__django-11099.traj"
        target.parent.mkdir(parents=True)
        target.write_text(json.dumps(midway))
        time.sleep(1.0)  # ten sweeps and the write's events: nothing is taken yet
        assert not [line for line in run.lines if line.startswith("ingested")]
        target.write_text(json.dumps(finished))
        assert run.wait_for("ingested 1 trajectories").startswith("ingested 1 trajectories")


def test_a_verdict_given_with_skillforge_label_starts_a_cycle_early(tmp_path, airline_records):
    runs = [parse_record(r) for r in airline_records if r["trial"] == 0][:30]
    unknown = [json.loads(r.model_copy(update={"outcome": None}).model_dump_json()) for r in runs]
    with Running(tmp_path, evolve_every_minutes=600, evolve_after=20, sweep_seconds=0.2) as run:
        (run.config.inbox / "runs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in unknown))
        run.wait_for(f"reading {len(runs)} new trajectories")
        home = ["--home", str(run.config.home), "--inbox", str(run.config.inbox)]
        ids = [r.id for r in runs]
        assert cli.main([*home, "label", *ids, "--success", "--reason", "reviewed"]) == 0
        run.wait_for("reading 0 new trajectories")  # the next sweep saw the verdicts
