"""Clusters keep their identity across cycles, so skills are updated, not duplicated."""

from __future__ import annotations

import json

import pytest

from evolver.changes import SkillDoc
from evolver.cluster import cluster
from evolver.model import ToolCall, Trajectory
from evolver.pipeline import evolve
from tests.conftest import AIRLINE


@pytest.fixture(scope="module")
def airline():
    from skillforge.importers import parse_record

    if not AIRLINE.exists():
        pytest.skip("shared corpus missing")
    records = json.loads(AIRLINE.read_text())
    return {t: [parse_record(r) for r in records if r["trial"] == t] for t in range(4)}


def test_earlier_runs_keep_their_clusters_and_new_runs_join_them(airline):
    first = evolve(airline[0] + airline[1], [])
    later = evolve(sum(airline.values(), []), [], memberships=first.memberships)
    for run_id, cluster_id in first.memberships.items():
        assert later.memberships[run_id] == cluster_id
    new_ids = {t.id for t in airline[2] + airline[3]}
    joined = sum(1 for rid in new_ids if later.memberships[rid] in set(first.memberships.values()))
    assert joined / len(new_ids) > 0.9  # the same tasks again: they join the known groups


def test_a_second_cycle_updates_the_skills_it_wrote_instead_of_adding_copies(airline):
    first = evolve(airline[0] + airline[1], [])
    library = [SkillDoc(name=c.skill, text=c.content) for c in first.changes]
    later = evolve(sum(airline.values(), []), library, memberships=first.memberships)
    created = {c.skill for c in later.changes if c.action == "create"}
    assert not created & {d.name for d in library}
    updated = {c.skill for c in later.changes if c.action == "update"}
    assert updated and updated <= {d.name for d in library}


def run(i: int, task: str, tools: list[str], success: bool = True) -> Trajectory:
    return Trajectory(
        id=f"{tools[0]}-{i}",
        task=task,
        steps=[ToolCall(name=t, arguments={}) for t in tools],
        outcome={"success": success},
    )


def test_an_unlike_run_starts_its_own_cluster_rather_than_joining_one():
    refunds = [run(i, "refund my order please", ["get_order", "refund_order"]) for i in range(6)]
    prior = {c_run.id: c.id for c in cluster(refunds) for c_run in c.members}
    poem = run(0, "write a sonnet about autumn leaves", ["compose_poem"])
    after = {r.id: c.id for c in cluster([*refunds, poem], prior=prior) for r in c.members}
    assert after[poem.id] not in set(prior.values())


def test_a_cluster_too_mixed_to_teach_one_skill_is_left_alone():
    tasks = ["refund my order", "book a flight to Oslo", "reset my router", "renew a passport"]
    tools = [["refund_order"], ["book_flight"], ["reboot_router"], ["passport_form"]]
    runs = [run(i, tasks[i % 4], tools[i % 4]) for i in range(8)]
    forced = {r.id: "c-forced" for r in runs}  # an earlier cycle's bad grouping
    result = evolve(runs, [], memberships=forced)
    [report] = [c for c in result.clusters if c.id == "c-forced"]
    assert report.status == "too-mixed" and not result.changes
