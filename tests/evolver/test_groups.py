"""Bounded samples, figures that add up, and the stage memo: what incremental cycles rest on."""

from __future__ import annotations

import json
import random

from evolver import EvolveParams, evolve
from evolver.checks import profile
from evolver.cluster import cluster, features, idf
from evolver.graph import Transitions, to_json, tool_graph, transitions
from evolver.groups import Ref, Tally, bottom, checkpoint, groups_of, rank, ref, tally
from evolver.memo import Memo, decode_profiles, encode_profiles
from evolver.operations import with_operations
from evolver.pipeline import evolve_groups
from evolver.stages import known_tools
from tests.evolver.conftest import refund_runs, shipping_runs, synthetic
from tests.evolver.conftest import run as make_run


def test_checkpoints_step_up_by_half_and_never_pass_the_size():
    assert [checkpoint(n, 8) for n in (0, 5, 8, 9, 11, 12, 17, 18, 26, 27, 40)] == [
        0, 5, 8, 8, 8, 12, 12, 18, 18, 27, 27,
    ]  # fmt: skip
    sizes = [checkpoint(n, 200) for n in range(1, 5000)]
    assert sizes == sorted(sizes) and all(
        s <= n for n, s in zip(range(1, 5000), sizes, strict=True)
    )
    assert len(set(sizes[199:])) == 8  # a 5,000-run cluster was resampled 7 times


def test_the_bottom_of_bottoms_is_the_bottom_of_the_union():
    rng = random.Random(3)
    refs = [Ref(f"run-{rng.random()}", rng.random() < 0.5, 0) for _ in range(500)]
    a, b = refs[:300], refs[300:]
    assert bottom(bottom(a, 20) + bottom(b, 20), 20) == bottom(refs, 20)
    assert [r.id for r in bottom(refs, 20)] == sorted(r.id for r in bottom(refs, 20))
    assert max(rank(r.id) for r in bottom(refs, 20)) < min(
        rank(r.id) for r in refs if r not in bottom(refs, 20)
    )


def test_tallies_add_up_and_round_trip_through_json():
    runs = synthetic(60)
    whole = Tally()
    for run in runs:
        whole.add(tally(run))
    halves = Tally()
    for part in (runs[:25], runs[25:]):
        t = Tally()
        for run in part:
            t.add(tally(run))
        halves.add(t)
    assert halves == whole
    assert Tally.from_json(json.loads(json.dumps(whole.to_json()))) == whole
    assert (whole.runs, whole.successes) == (60, sum(r.succeeded is True for r in runs))


def test_a_run_whose_outcome_became_known_is_swapped_out_of_a_tally():
    """subtract(old) then add(new) gives the tally of the runs as they are now, as if the
    run had arrived with its outcome; taking every run out leaves an empty tally."""
    runs = synthetic(40) + refund_runs()
    unknown = [r.model_copy(update={"outcome": None}) for r in runs[:10]]
    kept = Tally()
    for run in unknown + runs[10:]:
        kept.add(tally(run))
    for old, new in zip(unknown, runs[:10], strict=True):
        kept.subtract(tally(old)).add(tally(new))
    whole = Tally()
    for run in runs:
        whole.add(tally(run))
    assert kept == whole and kept.to_json() == whole.to_json()
    for run in runs:
        kept.subtract(tally(run))
    assert kept == Tally()


def test_summed_transitions_draw_the_tool_graph():
    runs = synthetic(80) + refund_runs()
    total = Transitions()
    for run in runs:
        total.add(transitions(run))
    again = Transitions.from_json(json.loads(json.dumps(total.to_json())))
    assert to_json(again.graph()) == to_json(tool_graph(runs))


def _refunds(n: int) -> list:
    return [
        make_run(
            f"refund-{i:03d}",
            f"Refund the damaged order A{i} for the customer",
            [
                ("find_order", {"order_id": f"A{i}"}, None),
                ("issue_refund", {"order_id": f"A{i}"}, None if i % 5 > 1 else "Error: closed"),
            ],
            success=i % 5 > 1,
        )
        for i in range(n)
    ]


def test_a_sampled_cluster_is_learned_from_k_runs_and_reports_all_of_them():
    runs = _refunds(50)
    params = EvolveParams(sample_size=12)
    [change] = evolve(runs, [], params).changes
    assert change.evidence.runs == 50 and change.evidence.successes == 30
    assert len(change.evidence.trajectory_ids) == 12  # the sample
    assert "- Runs: 50 (30 succeeded, 20 failed, 0 unknown)" in change.content
    assert "learned from 12 of the 50 runs" in change.content
    whole = evolve(runs, [], EvolveParams()).changes[0]
    assert whole.evidence.fingerprint != change.evidence.fingerprint  # all runs, other hash
    assert "- Sample:" not in whole.content


def _inputs(runs):
    runs = [with_operations(r) for r in runs]
    groups, samples = groups_of(cluster(runs))
    df = {}
    for run in runs:
        for f in features(run):
            df[f] = df.get(f, 0) + 1
    return groups, samples, df, known_tools(runs)


def test_kept_stage_results_give_the_same_changeset_and_read_no_runs():
    runs = synthetic(240) + refund_runs() + shipping_runs()
    groups, samples, df, known = _inputs(runs)
    saved: dict[str, str] = {}
    first = evolve_groups(groups, samples, [], df=df, known=known, memo=Memo(saved))
    assert saved and first.changes

    class Unread(dict):
        def __getitem__(self, key):
            raise AssertionError(f"read the runs of {key}")

    memo = Memo(dict(saved))
    again = evolve_groups(groups, Unread(samples), [], df=df, known=known, memo=memo)
    assert again == first and not memo.misses
    fresh = evolve_groups(groups, samples, [], df=df, known=known, memo=Memo())
    assert fresh == first  # a memo only saves time


def test_idf_weights_come_from_counts_that_add_up():
    runs = synthetic(50)
    df: dict[str, int] = {}
    for run in runs:
        for f in features(run):
            df[f] = df.get(f, 0) + 1
    assert idf(features(r) for r in runs) == {f: idf([[f]] * n)[f] for f, n in df.items()}
    assert ref(runs[0]).task == ref(runs[0].model_copy(update={"id": "other"})).task


def test_profiles_round_trip_through_json():
    from tests.evolver.conftest import AIRLINE

    runs = synthetic(80) + refund_runs()
    if AIRLINE.exists():
        from skillforge.importers import parse_record

        runs += [parse_record(r) for r in json.loads(AIRLINE.read_text())[:60]]
    found = [profile(r) for r in runs]
    kept = json.dumps(encode_profiles(found))
    assert decode_profiles(json.loads(kept), [r.task for r in runs]) == found
    assert runs[0].task not in kept  # requests are not kept: the caller gives them back


def test_a_pool_reads_only_the_runs_the_lessons_stage_keeps():
    from evolver.checks import MAX_POOL, validated
    from evolver.stages import Stages

    runs = [with_operations(r) for r in synthetic(1400)]
    groups, samples = groups_of(cluster(runs), k=400)
    ids = [g.id for g in groups]
    stages = Stages(groups, samples, Memo(), {})
    kept = stages._kept_pool(ids)
    whole = [r for cid in ids for r in samples[cid]]
    assert len(whole) > MAX_POOL == len(kept)
    assert validated(kept) == validated(whole)
