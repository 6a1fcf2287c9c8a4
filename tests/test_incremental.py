"""Incremental cycles: the cluster state kept after any history of cycles is the state a
rebuild computes from the stored runs, a cycle reads only the samples of clusters new runs
reached, and the skills of the clusters they did not reach stay as they were."""

from __future__ import annotations

import functools
import json
import sqlite3

import pytest

from evolver.changes import ChangeSet
from evolver.model import Outcome, ToolCall, Trajectory
from evolver.pipeline import EvolveParams
from skillforge import cycle, incremental
from skillforge.cli import main
from skillforge.commands import rebuild as rebuild_command
from skillforge.config import load
from skillforge.cycle import run_cycle
from skillforge.importers import parse_record, records_in_document
from skillforge.library import LibraryRepo
from skillforge.store import Store
from tests.conftest import CORPORA, REPO_ROOT

TAU2 = CORPORA / "tau2-bench-gpt41"
STATE = (
    "cluster_runs",
    "cluster_stats",
    "cluster_features",
    "feature_df",
    "cluster_sets",
    "cluster_state",
)


def quiet(_: str) -> None:
    pass


@pytest.fixture
def small_samples(monkeypatch):
    """Samples of 20 runs, so the airline clusters are sampled, and resampled as they grow."""
    small = functools.partial(EvolveParams, sample_size=20)
    monkeypatch.setattr(cycle, "EvolveParams", small)
    monkeypatch.setattr(rebuild_command, "EvolveParams", small)


def setup(tmp_path, name):
    home = tmp_path / name
    config = load(environ={}, cwd=home, overrides={"home": home, "seed": REPO_ROOT / "skills"})
    repo = LibraryRepo.ensure(config.library_path, config.remote_url, seed=config.seed)
    return config, repo


def tables(config) -> dict[str, list[tuple]]:
    """The state tables and the memberships, every row (the stage memo is a cache: left out)."""
    with sqlite3.connect(config.db_path) as conn:
        return {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()  # noqa: S608
            for t in (*STATE, "cluster_members")
        }


def proposed(config, repo) -> dict[str, tuple[str | None, str | None]]:
    """SKILL.md and checks.json of every skill the newest open proposal changes."""
    with Store(config.db_path) as store:
        [newest] = store.proposals("open")[-1:]
        skills = [c["skill"] for c in store.proposal_changes(newest["id"])]
    branch = newest["branch"]
    return {
        s: (repo.read(f"{s}/SKILL.md", branch), repo.read(f"{s}/checks.json", branch))
        for s in skills
    }


def test_an_incremental_history_gives_the_state_and_skills_a_rebuild_gives(
    tmp_path, airline_records, small_samples
):
    runs = [parse_record(r) for r in airline_records]
    for path in sorted(TAU2.glob("*.json")):
        runs += [parse_record(r) for r in records_in_document(json.loads(path.read_bytes()))]
    batches = [runs[:120], runs[120:220], runs[220:280], runs[280:340], runs[340:]]
    config, repo = setup(tmp_path, "incremental")
    said: list[list[str]] = []
    for batch in batches:  # a cycle after each batch: new runs are all each one reads
        with Store(config.db_path) as store:
            store.add_trajectories(batch, source="test")
            said.append([])
            assert run_cycle(store, repo, config, say=said[-1].append).status == "done"
    again = [any("drew their sample again" in line for line in lines) for lines in said]
    assert not again[0] and any(again[1:])  # a first sample is no redraw
    incremental = tables(config)
    resampled = {
        row[0]: json.loads(row[1])["runs"] > row[2] for row in incremental["cluster_stats"]
    }
    assert any(resampled.values())  # some clusters outgrew their sample
    # The same runs in one go, in the clusters the history left them in: rebuild, one cycle.
    other, other_repo = setup(tmp_path, "rebuilt")
    with Store(other.db_path) as store, Store(config.db_path) as first:
        store.add_trajectories(runs, source="test")
        store.save_memberships(first.memberships())
    assert main(["--home", str(other.home), "rebuild"]) == 0
    with Store(other.db_path) as store:
        assert run_cycle(store, other_repo, other, say=quiet).status == "done"
    assert tables(other) == incremental
    assert proposed(other, other_repo) == proposed(config, repo)
    # and a rebuild of the incremental store finds what it kept
    assert main(["--home", str(config.home), "rebuild"]) == 0
    assert tables(config) == incremental


def run(i: int, family: str, success: bool) -> Trajectory:
    """A run of one of three families that share no task word and no tool."""
    task, tools = {
        "refund": (f"Refund the damaged blender order {i}", ["find_order", "issue_refund"]),
        "table": (f"Book a dinner table at restaurant {i}", ["search_venue", "reserve_table"]),
        "units": (f"Convert {i} gallons into liters quickly", ["unit_convert"]),
    }[family]
    calls = [
        ToolCall(
            name=t,
            arguments={"n": i % 7},
            result="done" if success or t != tools[-1] else None,
            error_text=None if success or t != tools[-1] else f"{t} refused the request",
        )
        for t in tools
    ]
    return Trajectory(
        id=f"{family}-{i:03d}", task=task, steps=calls, outcome=Outcome(success=success)
    )


def family(name: str, start: int, n: int) -> list[Trajectory]:
    return [run(i, name, i % 3 != 0) for i in range(start, start + n)]


def evolve_once(config, repo) -> tuple[ChangeSet, incremental.Evolved]:
    """The evolver step of a cycle over the stored state, keeping its stage results."""
    params = EvolveParams(min_runs=config.min_runs, min_successes=config.min_successes)
    with Store(config.db_path) as store:
        found = incremental.evolve_stored(
            store, repo.skills("main"), params, upto=store.high_water()
        )
        found.save_memo(store)
    return found.changeset, found


def test_a_cycle_reads_only_the_samples_of_the_clusters_new_runs_reached(tmp_path):
    config, repo = setup(tmp_path, "reads")
    with Store(config.db_path) as store:
        store.add_trajectories(
            family("refund", 0, 80) + family("table", 0, 30) + family("units", 0, 30),
            source="test",
        )
    before, first = evolve_once(config, repo)
    assert len(before.changes) == 3
    assert first.samples.read == 140  # the first cycle reads every sample: all the runs
    cluster_of = {c.skill: c.cluster for c in before.changes}
    refunds = next(c for c in before.changes if "refund" in c.skill).cluster
    with Store(config.db_path) as store:
        store.add_trajectories(family("refund", 80, 10), source="test")
    after, second = evolve_once(config, repo)
    # the refund cluster's sample (all its 90 runs) is read again; nothing else is
    assert second.samples.read == 90
    assert second.memo.misses and second.memo.hits
    with Store(config.db_path) as store:
        members = store.memberships()
    assert {members[f"refund-{i:03d}"] for i in range(80, 90)} == {refunds}
    unchanged = {c.skill: c for c in before.changes if c.cluster != refunds}
    assert {c.skill: c for c in after.changes if c.cluster != refunds} == unchanged
    [grown] = [c for c in after.changes if c.cluster == refunds]
    assert grown.evidence.runs == 90 and cluster_of[grown.skill] == refunds
    _, third = evolve_once(config, repo)  # nothing new: nothing read, nothing computed
    assert third.samples.read == 0 and not third.memo.misses


def test_rebuild_on_an_empty_store_and_after_a_cycle(tmp_path, capsys):
    config, repo = setup(tmp_path, "cli")
    assert main(["--home", str(config.home), "rebuild"]) == 0
    assert "0 runs in 0 clusters" in capsys.readouterr().out
    with Store(config.db_path) as store:
        store.add_trajectories(family("units", 0, 12), source="test")
        run_cycle(store, repo, config, say=quiet)
        store.add_trajectories(family("units", 12, 3), source="test")
    assert main(["--home", str(config.home), "rebuild"]) == 0
    said = capsys.readouterr().out
    assert "12 runs in 1 clusters" in said and "3 newer runs have no cluster yet" in said


def test_the_state_reads_each_stored_run_as_its_validated_form_reads():
    """`digest_run` skips validation and messages: every figure the state keeps of a run is
    the same as of the run validated in full, for stored dumps and raw lines alike."""
    from evolver.checks import task_key as checks_task_key
    from evolver.cluster import features
    from evolver.groups import ref, tally
    from evolver.operations import with_operations
    from skillforge.clusterstate import digest_run
    from tests.reliability.test_secrets_everywhere import planted_runs

    texts = [t.model_dump_json() for t in _corpus_runs()]
    texts += [json.dumps(r) for r in planted_runs()]
    texts += [
        json.dumps(r)
        for r in (
            {"id": "a", "task": "Refund 3", "outcome": {"reward": 1.0}, "steps": [
                {"type": "tool_call", "name": "refund", "error_text": "closed"},
                {"type": "tool_call", "name": "bash", "arguments": {"command": "pytest -x"}},
                {"type": "tool_call", "name": "sql", "arguments": "SELECT 1"},
                {"type": "message", "role": "assistant", "text": "done"}]},
            {"id": "b", "task": "t", "outcome": {"reward": 0.5}, "metadata": {"task_id": 7},
             "skills": [{"name": "s-1"}, {"name": "s-2", "version": "3"}]},
            {"id": "c", "task": "no outcome, no steps"},
            {"task": "no id: the record's content hash is its id", "metadata": {"k": [1, 2]}},
        )
    ]  # fmt: skip
    assert len(texts) > 500
    for text in texts:
        full = with_operations(Trajectory.model_validate_json(text))
        light = with_operations(digest_run(text))
        assert light.id == full.id
        assert features(light) == features(full)
        assert tally(light).to_json() == tally(full).to_json()
        assert ref(light) == ref(full) and checks_task_key(light) == checks_task_key(full)
        assert [(c.name, c.error, c.arguments, c.result) for c in light.tool_calls] == [
            (c.name, c.error, c.arguments, c.result) for c in full.tool_calls
        ]
        assert (light.succeeded, light.skills, light.metadata) == (
            full.succeeded,
            full.skills,
            full.metadata,
        )


def _corpus_runs() -> list[Trajectory]:
    from tests.conftest import AIRLINE

    runs = []
    if AIRLINE.exists():
        runs += [parse_record(r) for r in json.loads(AIRLINE.read_text())]
    for path in sorted(TAU2.glob("*.json")):
        runs += [parse_record(r) for r in records_in_document(json.loads(path.read_bytes()))]
    return runs
