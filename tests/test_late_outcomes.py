"""Outcomes that arrive after their run: a harness report written after the runs, a verdict
given later. Intake takes a copy that brings the outcome as an update (once), `skillforge
label` sets one by hand, and incremental cycles learn from it: the state after any history
of ingests, cycles and outcome updates is the state a rebuild computes from the stored runs."""

from __future__ import annotations

import functools
import json
import shutil
import sqlite3

import pytest

from evolver.model import Trajectory
from evolver.pipeline import EvolveParams
from skillforge import cli, cycle
from skillforge.commands import rebuild as rebuild_command
from skillforge.cycle import run_cycle
from skillforge.intake import ingest_paths
from skillforge.store import Store
from tests.test_importers_swe_agent import DJANGO
from tests.test_incremental import STATE, evolve_once, family, quiet, setup


def hidden(runs: list[Trajectory], ids: set[str]) -> list[Trajectory]:
    """The runs as they first arrive: those in `ids` without their outcome."""
    return [r.model_copy(update={"outcome": None}) if r.id in ids else r for r in runs]


def settle(store: Store, runs: list[Trajectory]) -> None:
    """The outcomes of these runs arrive (each run's own)."""
    pairs = [(r.id, r.outcome) for r in runs if r.outcome is not None]
    result = store.set_outcomes(pairs, source="test")
    assert len(result.applied) == len(pairs)


def state_tables(config) -> dict[str, list[tuple]]:
    """The state tables and memberships, without the state's mark of outcome updates read
    (a store that never had an update has none to mark)."""
    with sqlite3.connect(config.db_path) as conn:
        found = {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()  # noqa: S608
            for t in (*STATE, "cluster_members")
        }
    found["cluster_state"] = [r for r in found["cluster_state"] if r[0] != "outcomes"]
    return found


def skills(changeset) -> dict[str, tuple]:
    return {c.skill: (c.content, c.files, c.evidence) for c in changeset.changes}


# -- intake -----------------------------------------------------------------------------------


def test_a_swe_agent_run_imported_again_after_the_harness_report_gets_its_outcome(
    capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    where = ["--home", str(tmp_path / "var"), "--inbox", str(tmp_path / "inbox")]
    instance = "django__django-11099"
    target = tmp_path / "out" / instance / f"{instance}.traj"
    target.parent.mkdir(parents=True)
    shutil.copy(DJANGO, target)

    def take_in() -> str:
        assert cli.main([*where, "import", str(tmp_path / "out")]) == 0
        assert cli.main([*where, "ingest", str(tmp_path / "inbox")]) == 0
        return capsys.readouterr().out

    assert "1 trajectories stored" in take_in()  # the harness has not run yet
    (tmp_path / "out" / "results.json").write_text(json.dumps({"resolved_ids": [instance]}))
    said = take_in()
    assert "0 trajectories stored, 0 already stored, 0 quarantined," in said
    assert "1 outcomes of stored runs set" in said
    third = take_in()  # imported once more: nothing changes
    assert "1 already stored" in third and "outcomes of stored runs" not in third
    with Store(tmp_path / "var" / "skillforge.db") as store:
        [run] = store.trajectories()
        assert run.succeeded is True and run.id == f"swe-agent:out:{instance}"
        assert store.outcomes_high_water() == 1 and store.count("trajectories", "success = 1") == 1


def test_a_jsonl_line_sent_again_with_its_outcome_sets_it_once(tmp_path):
    call = {"type": "tool_call", "name": "refund"}
    line = {"id": "r1", "task": "Refund order 7", "steps": [call]}
    inbox = tmp_path / "runs.jsonl"
    inbox.write_text(json.dumps(line) + "\n")
    with Store(tmp_path / "s.db") as store:
        assert ingest_paths(store, [inbox]).stored == 1
        with inbox.open("a") as handle:
            handle.write(json.dumps({**line, "outcome": {"reward": 1.0}}) + "\n")
        first = ingest_paths(store, [inbox])
        assert (first.stored, first.outcomes, first.duplicates) == (0, 1, 0)
        with inbox.open("a") as handle:  # the same again: nothing changes
            handle.write(json.dumps({**line, "outcome": {"reward": 0.0}}) + "\n")
        again = ingest_paths(store, [inbox])
        assert (again.stored, again.outcomes, again.duplicates) == (0, 0, 1)
        [run] = store.trajectories()
        assert run.succeeded is True and run.outcome.reward == 1.0
        assert store.outcomes_high_water() == 1


# -- cycles -----------------------------------------------------------------------------------


@pytest.fixture
def small_samples(monkeypatch):
    """Samples of 20 runs, so clusters are sampled, and resampled as they grow."""
    small = functools.partial(EvolveParams, sample_size=20)
    monkeypatch.setattr(cycle, "EvolveParams", small)
    monkeypatch.setattr(rebuild_command, "EvolveParams", small)


def test_outcomes_arriving_between_cycles_leave_the_state_and_skills_a_rebuild_gives(
    tmp_path, small_samples
):
    refunds, tables, units = family("refund", 0, 90), family("table", 0, 40), family("units", 0, 30)
    late = {r.id for r in refunds[::3] + tables[::4] + units[5:12]}
    batches = [
        refunds[:50] + tables[:20] + units[:10],
        refunds[50:] + tables[20:],
        units[10:],
    ]
    config, repo = setup(tmp_path, "late")
    everything = [r for batch in batches for r in batch]
    statuses = []
    with Store(config.db_path) as store:
        store.add_trajectories(hidden(batches[0], late), source="test")
        statuses.append(run_cycle(store, repo, config, say=quiet).status)
        settle(store, [r for r in refunds[:30] if r.id in late])  # runs the state counted
        statuses.append(run_cycle(store, repo, config, say=quiet).status)  # outcomes only
        store.add_trajectories(hidden(batches[1], late), source="test")
        # runs counted a cycle ago, and runs stored but not counted yet
        settle(store, [r for r in refunds[30:70] + tables[10:30] if r.id in late])
        statuses.append(run_cycle(store, repo, config, say=quiet).status)
        store.add_trajectories(hidden(batches[2], late), source="test")
        statuses.append(run_cycle(store, repo, config, say=quiet).status)
        settle(store, [r for r in everything if r.id in late and not store_has_outcome(store, r)])
        statuses.append(run_cycle(store, repo, config, say=quiet).status)
        statuses.append(run_cycle(store, repo, config, say=quiet).status)
        assert [t.outcome for t in store.trajectories()] == [r.outcome for r in everything]
    assert statuses == ["done"] * 5 + ["nothing-new"]
    kept = state_tables(config)
    changes, _ = evolve_once(config, repo)
    # a rebuild of this store finds what the history kept
    assert cli.main(["--home", str(config.home), "rebuild"]) == 0
    assert state_tables(config) == kept
    # and so does a store that had every outcome from the start, in the same clusters
    other, other_repo = setup(tmp_path, "known")
    with Store(other.db_path) as store, Store(config.db_path) as first:
        store.add_trajectories(everything, source="test")
        store.save_memberships(first.memberships())
    assert cli.main(["--home", str(other.home), "rebuild"]) == 0
    assert state_tables(other) == kept
    assert skills(evolve_once(other, other_repo)[0]) == skills(changes)


def store_has_outcome(store: Store, run: Trajectory) -> bool:
    return store.count("trajectories", "id = ? AND success IS NOT NULL", [run.id]) == 1


def test_a_late_success_is_counted_in_the_evolved_skills_evidence(tmp_path):
    config, repo = setup(tmp_path, "evidence")
    refunds = family("refund", 0, 60)
    late = [r for r in refunds if r.succeeded][:15]
    with Store(config.db_path) as store:
        store.add_trajectories(hidden(refunds, {r.id for r in late}), source="test")
    before, _ = evolve_once(config, repo)
    [learned] = [c for c in before.changes if "refund" in c.skill]
    with Store(config.db_path) as store:
        settle(store, late)
    after, _ = evolve_once(config, repo)
    [relearned] = [c for c in after.changes if c.skill == learned.skill]
    assert relearned.evidence.runs == learned.evidence.runs == 60
    assert relearned.evidence.successes == learned.evidence.successes + 15
    assert relearned.evidence.failures == learned.evidence.failures
    assert relearned.evidence.fingerprint != learned.evidence.fingerprint


# -- the command ------------------------------------------------------------------------------


def test_skillforge_label_sets_unknown_outcomes_and_reports_known_and_missing_ids(
    capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    where = ["--home", str(tmp_path / "var"), "--inbox", str(tmp_path / "inbox")]
    runs = tmp_path / "runs.jsonl"
    records = [
        {"id": "a", "task": "Refund order 1"},
        {"id": "b", "task": "Refund order 2"},
        {"id": "c", "task": "Refund order 3", "outcome": {"success": False}},
    ]
    runs.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert cli.main([*where, "ingest", str(runs)]) == 0
    capsys.readouterr()
    assert cli.main([*where, "status"]) == 0
    status = capsys.readouterr().out
    assert "3 trajectories (0 succeeded, 1 failed, 2 unknown)" in status
    assert "skillforge label" in status

    code = cli.main([*where, "label", "a", "c", "nope", "a", "--success", "--reason", "user: ok"])
    out, err = capsys.readouterr()
    assert code == 2
    assert "set a: success" in out and "kept c: its outcome was known already" in out
    assert "no run is stored under nope" in err and "set a" not in err
    code = cli.main([*where, "label", "b", "--failure"])
    assert code == 0 and "set b: failure" in capsys.readouterr().out
    assert cli.main([*where, "status"]) == 0
    status = capsys.readouterr().out
    assert "(1 succeeded, 2 failed) from" in status and "skillforge label" not in status
    with pytest.raises(SystemExit):  # a verdict is required
        cli.main([*where, "label", "b"])
    with Store(tmp_path / "var" / "skillforge.db") as store:
        outcomes = {t.id: t.outcome for t in store.trajectories()}
        assert store.outcomes_high_water() == 2
    assert (outcomes["a"].success, outcomes["a"].reason) == (True, "user: ok")
    assert (outcomes["b"].success, outcomes["c"].success) == (False, False)
