"""Coding agents' run files in the inbox: SWE-agent's `<id>.traj` and mini-swe-agent's
`<id>.traj.json` are rewritten as the agent goes, so intake takes one only once its
`info.exit_status` says the agent stopped, and then exactly once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from skillforge.intake import ingest_file
from skillforge.store import Store
from skillforge.watcher import inbox_files, is_trajectory_file
from tests.conftest import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures"
SWE_RUN = "default__gpt-4o__t-0.00__p-1.00__c-3.00___swe_bench_lite_test"
SWE_TRAJ = FIXTURES / "swe_agent" / SWE_RUN / "sympy__sympy-20590" / "sympy__sympy-20590.traj"
MINI_RUN = "sweb-verified_claude-sonnet-4_bash-only"
MINI_TRAJ = (
    FIXTURES / "mini_swe_agent" / "runs" / MINI_RUN / "astropy__astropy-12907"
    / "astropy__astropy-12907.traj.json"
)  # fmt: skip


def _unfinished(source: Path, target: Path) -> dict:
    """The run as its agent writes it midway: the same file, no exit status yet."""
    run = json.loads(source.read_text())
    run["info"] = {k: v for k, v in run["info"].items() if k != "exit_status"}
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(run))
    return run


def test_run_files_are_listed_wherever_they_are_under_the_inbox(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    swe = inbox / SWE_RUN / "sympy__sympy-20590" / "sympy__sympy-20590.traj"
    mini = inbox / MINI_RUN / "astropy__astropy-12907" / "astropy__astropy-12907.traj.json"
    for source, target in ((SWE_TRAJ, swe), (MINI_TRAJ, mini)):
        target.parent.mkdir(parents=True)
        shutil.copy(source, target)
    (inbox / "notes.json").write_text("{}")  # another JSON file is not a run file
    assert inbox_files(inbox) == sorted([swe, mini])
    assert is_trajectory_file("x.traj") and is_trajectory_file("x.traj.json")
    assert not is_trajectory_file("x.json") and not is_trajectory_file("x.trajectory")


def test_a_run_file_is_taken_once_its_agent_has_finished(tmp_path: Path) -> None:
    path = tmp_path / "inbox" / "sympy__sympy-20590" / "sympy__sympy-20590.traj"
    with Store(tmp_path / "store.db") as store:
        for source in (SWE_TRAJ, MINI_TRAJ):
            target = path if source is SWE_TRAJ else path.with_name("a.traj.json")
            _unfinished(source, target)
            midway = ingest_file(store, target)
            assert (midway.stored, midway.waiting) == (0, 1)

            shutil.copy(source, target)  # the agent stops: exit_status is written
            done = ingest_file(store, target)
            assert (done.stored, done.waiting) == (1, 0)
            again = ingest_file(store, target)
            assert (again.stored, again.duplicates, again.waiting) == (0, 0, 0)
        stored = [t for t in store.trajectories()]
    assert len(stored) == 2
    assert all(len(t.tool_calls) > 3 for t in stored)  # whole runs, not their first steps
