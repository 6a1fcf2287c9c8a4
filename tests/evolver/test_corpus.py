"""The tau-bench airline corpus (GPT-4o, trials 0-1): real runs through the whole pipeline."""

from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path

import pytest

from evolver import Trajectory, evolve, parse
from tests.evolver.conftest import AIRLINE, apply, load_airline
from tests.evolver.test_pipeline import _check_all


def test_airline_trials_give_several_grounded_skills(
    airline01: list[Trajectory], tmp_path: Path
) -> None:
    started = time.perf_counter()
    cs = evolve(airline01, [])
    print(f"\nevolve() on {len(airline01)} airline runs: {time.perf_counter() - started:.2f}s")
    assert len(airline01) == 100 and cs.trajectories == 100
    assert len(cs.changes) >= 2  # one skill per intent: cancel, change
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)+", c.skill) for c in cs.changes)
    assert sum(r.size for r in cs.clusters) == 100
    by_id = {r.id: r for r in airline01}
    lessons = 0
    for change in cs.changes:
        members = [by_id[i] for i in change.evidence.trajectory_ids]
        used = {call.name for r in members for call in r.tool_calls}
        procedure = change.content.split("## Procedure\n", 1)[1].split("## Pitfalls", 1)[0]
        steps = re.findall(r"^\d+\. Call `([^`]+)`", procedure, re.M)
        assert set(steps) <= used, change.skill
        # every lesson in checks.json is in the skill, with its held-out figures
        written = json.loads(change.files.get("checks.json", '{"checks": []}'))["checks"]
        for check in written:  # a functional skill (shared steps) has none
            assert check["says"] in change.content, (change.skill, check["says"])
            lessons += 1
        assert change.content.count("(held out") >= len(written)
        fm, _ = parse(change.content)
        assert fm["metadata"]["skillforge.cluster"] == change.cluster
        assert change.evidence.successes >= 2
    assert any("cancel" in c.skill for c in cs.changes)
    assert lessons >= 3  # 100 runs on 50 tasks are enough to test some lessons out of sample
    _check_all(tmp_path, cs)


def test_airline_cycle_is_stable(airline01: list[Trajectory]) -> None:
    first = evolve(airline01, [])
    shuffled = airline01[:]
    random.Random(11).shuffle(shuffled)
    assert evolve(shuffled, []).model_dump_json() == first.model_dump_json()
    assert evolve(shuffled, apply(first, [])).empty


@pytest.mark.skipif(not AIRLINE.exists(), reason="tau-bench airline corpus not available")
def test_airline_all_trials_timing() -> None:
    runs = load_airline([0, 1, 2, 3])
    started = time.perf_counter()
    cs = evolve(runs, [])
    print(f"\nevolve() on {len(runs)} airline runs: {time.perf_counter() - started:.2f}s")
    assert cs.trajectories == 200


def test_airline_skills_ignore_unrelated_new_runs(airline01: list[Trajectory]) -> None:
    from tests.evolver.conftest import run, shipping_runs

    before = {c.skill: c for c in evolve(airline01, []).changes}
    lonely = run("lonely-1", "translate a poem into Latin", [], success=None)
    after = {c.skill: c for c in evolve(airline01 + [lonely], []).changes}
    assert {k: c.content for k, c in after.items()} == {k: c.content for k, c in before.items()}
    # a new family sharing a few words may reorder key terms, but not regroup the runs
    more = {c.skill: c for c in evolve(airline01 + [lonely] + shipping_runs(), []).changes}
    evidence = {k: c.evidence.fingerprint for k, c in before.items()}
    assert {k: more[k].evidence.fingerprint for k in before} == evidence
