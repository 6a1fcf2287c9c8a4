"""Measuring a library: AUROC, skill specs, matching, compliance, the report and convergence."""

from __future__ import annotations

import json

import pytest

from evolver.changes import ChangeSet, ClusterReport, Evidence, SkillChange, SkillDoc
from evolver.checks import validated
from evolver.cluster import cluster
from evolver.evaluate import (
    auroc,
    blind,
    choose_threshold,
    compliance,
    convergence,
    evaluate,
    match,
    naive_fewer_calls,
    naive_no_errors,
    pitfall_hits,
)
from evolver.model import LoadedSkill
from evolver.skillspec import Pitfall, SkillSpec, skill_spec
from evolver.synthesize import synthesize
from tests.evolver.conftest import refund_runs, run, shipping_runs

REFUND = """---
name: issue-refund
description: 'Issue refund. Use when a request involves refund, damaged or order.'
---
# Issue refund

<!-- skillforge:begin -->
## When to use

- Key terms: refund, damaged, blender, customer
- Main tools: `find_order` (7 of 7 runs), `issue_refund` (7 of 7 runs)

## Procedure

Followed by 3 of 4 successful runs:

1. Call `find_order` with `order_id`.
2. Call `issue_refund` with `amount`, `order_id`.

Other paths that worked:

- `lookup_customer` → `issue_refund` (2 runs)

## Pitfalls

- `issue_refund` failed with "refund window closed for order N": seen 4 times in 3 failed runs.
- `escalate_ticket` was used by 1 failed run and by no successful run.
- `find_order` was called more than twice in 2 failed runs; no successful run did.
- `issue_refund` was called more than once in 2 failed runs; no successful run was.

## Evidence

- Runs: 7 (4 succeeded, 3 failed, 0 unknown); success rate 57%
<!-- skillforge:end -->
"""

SHIPPING = """---
name: update-address
description: 'Update address. Use when a request involves shipping, address or parcel.'
---
<!-- skillforge:begin -->
## When to use

- Key terms: shipping, address, parcel, apartment

## Procedure

1. Call `lookup_parcel` with `parcel_id`.
2. Call `update_address` with `address`, `parcel_id`.

## Pitfalls

- No errors or failure-only tools in these runs.
<!-- skillforge:end -->
"""

TASK = "Refund the damaged blender order A1 for the customer"
FIND = ("find_order", {"order_id": "A1"}, None)
REFUND_OK = ("issue_refund", {"order_id": "A1", "amount": 10}, None)
CLOSED = ("issue_refund", {"order_id": "A1"}, "Error: refund window closed for order A1")


def spec(text: str = REFUND, name: str = "issue-refund") -> SkillSpec:
    parsed = skill_spec(SkillDoc(name=name, text=text))
    assert parsed is not None
    return parsed


# --- AUROC ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scores", "labels", "expected"),
    [
        ([0.9, 0.8, 0.2, 0.1], [True, True, False, False], 1.0),  # perfect
        ([0.1, 0.2, 0.8, 0.9], [True, True, False, False], 0.0),  # inverted
        ([0.5, 0.5, 0.5, 0.5], [True, False, True, False], 0.5),  # all equal
        ([1, 1, 0, 0], [True, False, True, False], 0.5),  # ties within each score
        ([0.9, 0.8, 0.7, 0.6, 0.5], [True, False, True, False, False], 5 / 6),
        ([0.5, 0.5, 0.2], [True, False, False], 0.75),  # one tie counted half: (0.5 + 1) / 2
        ([3, 1, 2, 2], [True, False, True, False], 0.875),  # (1 + 1 + 1 + 0.5) / 4
    ],
)
def test_auroc_on_hand_computed_cases(scores, labels, expected) -> None:
    assert auroc(scores, labels) == pytest.approx(expected)


def test_auroc_needs_both_classes_and_equal_lengths() -> None:
    assert auroc([0.1, 0.2], [True, True]) is None
    assert auroc([], []) is None
    with pytest.raises(ValueError):
        auroc([0.1], [True, False])


def test_threshold_is_the_best_youden_cut() -> None:
    assert choose_threshold([0.1, 0.4, 0.6, 0.9], [False, False, True, True]) == 0.6
    assert choose_threshold([0.2, 0.3], [True, True]) == 0.5  # one class: the default


# --- reading a skill --------------------------------------------------------------------------


def test_skill_spec_reads_procedure_paths_and_pitfalls() -> None:
    s = spec()
    assert s.procedure == (("find_order", ("order_id",)), ("issue_refund", ("amount", "order_id")))
    assert s.paths == (("find_order", "issue_refund"), ("lookup_customer", "issue_refund"))
    assert s.pitfalls == (
        Pitfall("issue_refund", "error", "refund window closed for order n"),
        Pitfall("escalate_ticket", "failed-only"),
        Pitfall("issue_refund", "limit", limit=1),
    )  # the malformed `find_order` limit line is not a pitfall
    assert {"refund", "damaged", "blender"} <= s.terms
    assert s.known_tools == {"find_order", "issue_refund", "lookup_customer"}


def test_a_skill_without_a_procedure_or_frontmatter_gives_no_spec() -> None:
    assert skill_spec(SkillDoc(name="x", text="no frontmatter")) is None
    assert skill_spec(SkillDoc(name="x", text="---\nname: x\n---\n# Notes only\n")) is None


def test_synthesized_skills_round_trip_through_checks_json() -> None:
    runs = refund_runs(n_ok=8, n_failed=6)
    for i in range(4):  # failed runs that keep retrying the refund
        calls = [FIND, CLOSED, CLOSED, CLOSED]
        task = f"Refund the broken kettle order C{i} for the customer"
        runs.append(run(f"r-loop-{i}", task, calls, False))
    c = next(c for c in cluster(runs + shipping_runs(), 0.3) if c.members[0].id.startswith("r"))
    # the pipeline tests a cluster's lessons on its intent family; here, every refund run
    change = synthesize(c, "issue-refund", checked=validated(runs))
    assert change is not None
    written = json.loads(change.files["checks.json"])["checks"]
    assert written and all(w["says"] in change.content for w in written)
    s = skill_spec(SkillDoc(name=change.skill, text=change.content, files=change.files))
    assert s is not None and s.checks is not None
    assert [c.to_json() for c, _, _ in s.checks.checks] == [
        {k: v for k, v in w.items() if k not in ("id", "says", "held_out", "weight", "weighting")}
        for w in written
    ]
    # a run that keeps retrying a failed refund scores lower than one that does it right
    looping = run("h1", TASK, [FIND, CLOSED, CLOSED, CLOSED], True)
    right = run("h2", TASK, [FIND, REFUND_OK], False)
    assert compliance(looping, s) < compliance(right, s)


# --- compliance -----------------------------------------------------------------------------


def test_following_the_procedure_is_fully_compliant() -> None:
    assert compliance(run("a", TASK, [FIND, "think", REFUND_OK]), spec()) == 1.0
    other_path = run("b", TASK, [("lookup_customer", {}, None), REFUND_OK])
    assert compliance(other_path, spec()) == 1.0


def test_skipping_a_step_or_calling_unknown_tools_lowers_compliance() -> None:
    full = compliance(run("a", TASK, [FIND, REFUND_OK]), spec())
    skipped = compliance(run("b", TASK, [REFUND_OK]), spec())
    detour = compliance(run("c", TASK, [FIND, ("browse_web", {}, None), REFUND_OK]), spec())
    wrong = compliance(run("d", TASK, [("browse_web", {}, None)]), spec())
    assert full == 1.0
    assert skipped == pytest.approx(0.5 * 1 / 2 + 0.5 * 1)  # half the steps, all known tools
    assert detour == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)  # in order, one call of three unknown
    assert wrong == 0.0
    assert compliance(run("e", TASK, []), spec()) == 0.0  # no call, nothing followed


def test_each_pitfall_hit_halves_compliance() -> None:
    s = spec()
    error = run("a", TASK, [FIND, CLOSED, REFUND_OK])
    assert [p.kind for p in pitfall_hits(error, s)] == ["error", "limit"]
    assert compliance(error, s) == pytest.approx(0.25)
    escalated = run("b", TASK, [FIND, REFUND_OK, ("escalate_ticket", {}, None)])
    assert [p.kind for p in pitfall_hits(escalated, s)] == ["failed-only"]
    assert compliance(escalated, s) == pytest.approx((0.5 + 0.5 * 2 / 3) / 2)
    other_error = run("c", TASK, [FIND, ("issue_refund", {}, "Error: card declined")])
    assert pitfall_hits(other_error, s) == []  # a different error is not this pitfall


def test_compliance_never_sees_the_outcome() -> None:
    calls = [FIND, REFUND_OK]
    won, lost = run("a", TASK, calls, True), run("a", TASK, calls, False)
    assert compliance(won, spec()) == compliance(lost, spec())
    tagged = won.model_copy(update={"metadata": {"gold_actions": ["issue_refund"]}})
    seen = blind(tagged)
    assert seen.outcome is None and seen.metadata == {} and seen.steps == won.steps


# --- matching, coverage, the report -----------------------------------------------------------


def test_a_run_matches_the_skill_of_its_task_and_tools_or_none() -> None:
    specs = [spec(), spec(SHIPPING, "update-address")]
    refund = run("a", TASK, [FIND, REFUND_OK])
    parcel = run("b", "Change the shipping address on parcel P7", [("lookup_parcel", {}, None)])
    words_only = run("c", "My blender arrived damaged, I want a refund", [])
    poem = run("d", "Write a haiku about autumn leaves", [("compose_text", {}, None)])
    assert match(refund, specs)[0].name == "issue-refund"
    assert match(parcel, specs)[0].name == "update-address"
    assert match(words_only, specs)[0].name == "issue-refund"
    skill, similarity = match(poem, specs)
    assert skill is None and similarity == 0.0


def test_evaluate_reports_coverage_rates_and_aurocs() -> None:
    library = [
        SkillDoc(name="issue-refund", text=REFUND),
        SkillDoc(name="update-address", text=SHIPPING),
    ]
    runs = [
        run("ok-1", TASK, [FIND, REFUND_OK], True),
        run("ok-2", TASK, [FIND, "think", REFUND_OK], True),
        run("ok-3", TASK, [FIND, ("browse_web", {}, None), REFUND_OK], True),
        run("bad-1", TASK, [FIND, CLOSED, CLOSED], False),
        run("bad-2", TASK, [("browse_web", {}, None), ("escalate_ticket", {}, None)], False),
        run(
            "ship-ok",
            "Change the shipping address on parcel P1",
            [("lookup_parcel", {}, None), ("update_address", {}, None)],
            True,
        ),
        run("poem", "Write a haiku about autumn leaves", [("compose_text", {}, None)], False),
        run("unknown", TASK, [FIND, REFUND_OK], None),  # no outcome: not measured
    ]
    report = evaluate(library, runs)
    assert (report.runs, report.matched) == (7, 6)
    assert report.coverage == pytest.approx(6 / 7)
    refund = next(s for s in report.skills if s.name == "issue-refund")
    assert (refund.runs, refund.successes) == (5, 3)
    assert (refund.compliant, refund.compliant_successes) == (3, 3)
    assert (refund.noncompliant, refund.noncompliant_successes) == (2, 0)
    assert refund.auroc == 1.0
    overall = report.overall
    assert overall.runs == 6 and overall.compliant_rate == 1.0 and overall.noncompliant_rate == 0.0
    fewer = auroc([naive_fewer_calls(r) for r in runs[:6]], [r.succeeded for r in runs[:6]])
    assert overall.naive["fewer tool calls"] == pytest.approx(fewer)
    assert naive_no_errors(runs[3]) == -2.0 and naive_fewer_calls(runs[3]) == -3.0
    poem = next(s for s in report.scored if s.run == "poem")
    assert poem.skill is None and poem.compliance is None


FUNCTIONAL = """---
name: find-order-then-issue-refund
description: 'Shared steps: find_order, then issue_refund. Use when a task needs these calls in
  this order; several task-level skills refer to it.'
metadata:
  skillforge.managed: 'true'
  skillforge.kind: functional
---
<!-- skillforge:begin -->
## Procedure

1. Call `find_order` with `order_id`.
2. Call `issue_refund` with `amount`, `order_id`.
<!-- skillforge:end -->
"""


def test_runs_fall_under_task_skills_not_functional_ones() -> None:
    functional = spec(FUNCTIONAL, "find-order-then-issue-refund")
    assert functional.functional and not spec().functional
    terse = run("terse", "Please sort this out", [FIND, REFUND_OK], True)
    # by tools alone the shared steps are the closest skill, but they are not a whole task
    assert match(terse, [spec(), functional])[0] is functional
    library = [
        SkillDoc(name="issue-refund", text=REFUND),
        SkillDoc(name="find-order-then-issue-refund", text=FUNCTIONAL),
    ]
    report = evaluate(library, [terse, run("ok", TASK, [FIND, REFUND_OK], True)])
    assert report.matched == 2
    assert {s.skill for s in report.scored} == {"issue-refund"}
    shared = next(s for s in report.skills if s.name == "find-order-then-issue-refund")
    assert shared.runs == 0 and shared.auroc is None  # listed, but no run falls under it


# --- convergence ----------------------------------------------------------------------------


def _change(name: str, content: str) -> SkillChange:
    ev = Evidence(
        trajectory_ids=("a",), runs=1, successes=1, failures=0, success_rate=1.0, fingerprint="f"
    )
    return SkillChange(
        skill=name,
        action="update",
        content=content,
        summary="s",
        reason="r",
        evidence=ev,
        cluster="c",
    )


def _report(cid: str, size: int, status: str, skill: str | None) -> ClusterReport:
    return ClusterReport(
        id=cid, size=size, successes=1, skill=skill, top_tools=(), keywords=(), status=status
    )


def test_convergence_counts_runs_whose_skill_needed_new_guidance() -> None:
    refreshed = REFUND.replace("Runs: 7 (4 succeeded", "Runs: 9 (5 succeeded")
    revised = REFUND.replace("1. Call `find_order`", "1. Call `lookup_customer`")
    changes = ChangeSet(
        changes=(_change("issue-refund", refreshed), _change("update-address", revised)),
        clusters=(
            _report("c1", 30, "changed", "issue-refund"),
            _report("c2", 10, "changed", "update-address"),
            _report("c3", 40, "unchanged", "other"),
            _report("c4", 20, "too-small", None),
        ),
        trajectories=100,
    )
    assert convergence(changes) == pytest.approx(0.4)
    library = [
        SkillDoc(name="issue-refund", text=REFUND),
        SkillDoc(name="update-address", text=SHIPPING),
    ]
    assert convergence(changes, library) == pytest.approx(0.1)  # evidence only: not counted
    assert convergence(ChangeSet()) == 0.0


def test_loaded_skills_do_not_decide_the_match() -> None:
    specs = [spec(), spec(SHIPPING, "update-address")]
    loaded = run("a", TASK, [FIND, REFUND_OK]).model_copy(
        update={"skills": [LoadedSkill(name="update-address")]}
    )
    assert match(loaded, specs)[0].name == "issue-refund"
