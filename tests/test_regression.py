"""Regression watch: a merged version whose runs do worse yields a revert in the next proposal."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from evolver.changes import ChangeSet, Evidence, SkillChange
from evolver.hygiene import fisher_less
from evolver.model import Trajectory
from evolver.regression import VersionRuns, judge, revert_change, skill_version
from evolver.skilldoc import parse, problems
from skillforge import review
from skillforge.config import load
from skillforge.cycle import run_cycle
from skillforge.library import CommitSpec, FileChange, LibraryRepo
from skillforge.regression import versions_on_main, with_reverts
from skillforge.store import Store


def skill_text(version: str, step: str) -> str:
    return (
        "---\nname: ship-order\ndescription: Ship an order after checking its address.\n"
        f"metadata:\n  skillforge.managed: 'true'\n  skillforge.version: '{version}'\n---\n"
        "# Ship order\n\nA person's note outside the block.\n\n<!-- skillforge:begin -->\n"
        f"## Procedure\n\n1. Call `get_order`.\n2. {step}\n<!-- skillforge:end -->\n"
    )


V1 = skill_text("1", "Call `verify_address`, then `ship_order`.")
V2 = skill_text("2", "Call `ship_order` straight away.")


def runs(version: str, ok: int, failed: int, prefix: str = "") -> list[Trajectory]:
    return [
        Trajectory(
            id=f"{prefix}v{version}-{i}",
            task=f"ship order W{i}",
            outcome={"success": i < ok},
            skills=[{"name": "ship-order", "version": version}],
        )
        for i in range(ok + failed)
    ]


def quiet(_: str) -> None:
    pass


def reverts(store: Store, proposal: str | None) -> list[str]:
    """Summaries of the revert changes a cycle's proposal holds."""
    changes = store.proposal_changes(proposal) if proposal else []
    return [c["summary"] for c in changes if c["summary"].startswith("Revert ")]


@pytest.fixture
def merged_v2(tmp_path: Path):
    """A library whose ship-order went from version 1 (seed) to version 2 (merged)."""
    seed = tmp_path / "seed" / "ship-order"
    seed.mkdir(parents=True)
    (seed / "SKILL.md").write_text(V1)
    config = load(environ={}, cwd=tmp_path, overrides={"seed": tmp_path / "seed"})
    repo = LibraryRepo.ensure(config.library_path, config.remote_url, seed=config.seed)
    repo.commit_on_branch(
        "evolve/v2", [CommitSpec("Update ship-order", (FileChange("ship-order/SKILL.md", V2),))]
    )
    with repo.lock():
        repo.merge("evolve/v2", "Accept v2")
    with Store(config.db_path) as store:
        yield config, repo, store


# -- the decision ---------------------------------------------------------------------


def test_a_significant_drop_with_enough_runs_is_a_regression():
    counts = [VersionRuns("1", 12, 10), VersionRuns("2", 12, 2)]
    check = judge("ship-order", counts, "2", "1", min_runs=10)
    assert check.regressed
    assert check.p_value == pytest.approx(fisher_less(2, 10, 10, 2))
    assert check.p_value < 0.05
    assert "success fell from 83% (10/12 runs) with version 1 to 17% (2/12 runs)" in check.why


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        (VersionRuns("1", 9, 9), VersionRuns("2", 12, 0), "too few runs"),  # min sample
        (VersionRuns("1", 12, 7), VersionRuns("2", 12, 5), "not significant"),
        (VersionRuns("1", 12, 5), VersionRuns("2", 12, 9), "did not do worse"),
    ],
)
def test_no_regression_without_a_sample_a_significant_drop_or_a_drop(old, new, why):
    check = judge("ship-order", [old, new], "2", "1", min_runs=10)
    assert not check.regressed and why in check.why


def test_the_revert_restores_the_old_text_renumbered_with_the_figures():
    check = judge("ship-order", [VersionRuns("1", 12, 10), VersionRuns("2", 12, 2)], "2", "1")
    change = revert_change("ship-order", V1, check)
    assert change.action == "update" and problems(change.content, "ship-order") == []
    assert skill_version(change.content) == "3"
    assert parse(change.content)[1] == parse(V1)[1]  # the body of version 1, word for word
    assert change.summary.startswith(
        "Revert ship-order to version 1: success fell from 83% (12 runs) to 17% (12 runs), p="
    )
    again = revert_change(
        "ship-order",
        V1,
        judge("ship-order", [VersionRuns("1", 12, 10), VersionRuns("2", 20, 3)], "2", "1"),
    )
    assert again.evidence.fingerprint == change.evidence.fingerprint  # same revert, same key


# -- on real git and a real store ---------------------------------------------------------


def test_versions_are_read_from_mains_history(merged_v2):
    _, repo, _ = merged_v2
    history = versions_on_main(repo, "ship-order")
    assert [state.version for state in history] == ["2", "1"]
    assert repo.read("ship-order/SKILL.md", history[1].commit) == V1


def test_a_merged_change_followed_by_worse_runs_yields_a_revert_proposal(merged_v2, tmp_path):
    config, repo, store = merged_v2
    store.add_trajectories(runs("1", 10, 2) + runs("2", 2, 10), source="test")
    result = run_cycle(store, repo, config, say=quiet)
    [change] = [c for c in store.proposal_changes(result.proposal) if c["skill"] == "ship-order"]
    assert change["summary"].startswith(
        "Revert ship-order to version 1: success fell from 83% (12 runs) to 17% (12 runs), p="
    )
    assert change["version"] == "3"
    assert "Revert ship-order" in store.proposal(result.proposal)["description"]
    review.accept(store, repo, result.proposal)
    clone = tmp_path / "agent"
    subprocess.run(["git", "clone", "-q", config.remote_url, str(clone)], check=True)
    text = (clone / "ship-order" / "SKILL.md").read_text()
    assert "verify_address" in text and skill_version(text) == "3"
    # Version 3 has no runs yet: the next cycle has nothing to revert.
    store.add_trajectories(runs("3", 1, 0, prefix="later-"), source="test")
    later = run_cycle(store, repo, config, say=quiet)
    assert reverts(store, later.proposal) == []


def test_too_few_runs_of_the_new_version_propose_no_revert(merged_v2):
    config, repo, store = merged_v2
    store.add_trajectories(runs("1", 10, 2) + runs("2", 0, 9), source="test")
    result = run_cycle(store, repo, config, say=quiet)
    assert reverts(store, result.proposal) == []


def test_a_rejected_revert_is_not_proposed_again_for_the_same_versions(merged_v2):
    config, repo, store = merged_v2
    store.add_trajectories(runs("1", 10, 2) + runs("2", 2, 10), source="test")
    first = run_cycle(store, repo, config, say=quiet)
    review.reject(store, repo, first.proposal, reason="version 2 is what we want")
    store.add_trajectories(runs("2", 0, 5, prefix="more-"), source="test")
    second = run_cycle(store, repo, config, say=quiet)
    assert reverts(store, second.proposal) == []


def test_the_evolvers_own_change_to_a_reverted_skill_waits(merged_v2):
    config, repo, store = merged_v2
    store.add_trajectories(runs("1", 10, 2) + runs("2", 2, 10), source="test")
    evidence = Evidence(
        trajectory_ids=("a",), runs=1, successes=1, failures=0, success_rate=1.0, fingerprint="f"
    )
    rewrite = SkillChange(
        skill="ship-order",
        action="update",
        content=skill_text("3", "Ship it."),
        summary="Update ship-order",
        reason="r",
        evidence=evidence,
        cluster="c-1",
    )
    other = rewrite.model_copy(update={"skill": "other-skill"})
    said: list[str] = []
    out = with_reverts(
        store, repo, ChangeSet(changes=(rewrite, other)), min_runs=10, say=said.append
    )
    assert [(c.skill, c.cluster) for c in out.changes] == [
        ("ship-order", "regression"),
        ("other-skill", "c-1"),
    ]
    assert any("skip the evolver's change to ship-order" in line for line in said)
