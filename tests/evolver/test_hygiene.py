"""Hygiene: near-duplicates become merge proposals, unused or harmful skills retirements."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from evolver.changes import SkillDoc
from evolver.hygiene import (
    SkillUsage,
    fisher_less,
    merge_changes,
    near_duplicates,
    unused,
    worse_than_without,
)
from evolver.model import LoadedSkill, ToolCall, Trajectory
from evolver.skilldoc import problems

NOW = datetime(2026, 11, 21, tzinfo=UTC)


def skill(name: str, description: str, steps: list[str], *, managed: bool = True) -> SkillDoc:
    meta = "metadata:\n  skillforge.managed: 'true'\n" if managed else ""
    body = "\n".join(f"{i}. Call `{tool}` with `order_id`." for i, tool in enumerate(steps, 1))
    text = (
        f"---\nname: {name}\ndescription: {description}\n{meta}---\n# {name}\n\n"
        f"<!-- skillforge:begin -->\n## Procedure\n\n{body}\n\n## Pitfalls\n\n"
        f'- `{steps[-1]}` failed with "already shipped": seen 3 times in 2 failed runs.\n'
        "<!-- skillforge:end -->\n"
    )
    return SkillDoc(name=name, text=text)


REFUND = skill(
    "issue-refund",
    "Refund an order after checking it was delivered.",
    ["get_order", "refund_order"],
)
REFUND_COPY = skill(
    "refund-order", "Refund an order once it was delivered.", ["get_order", "refund_order"]
)
WEATHER = skill("get-weather", "Look up the weather forecast for a city.", ["get_forecast"])


def test_two_near_identical_skills_are_paired_and_a_distinct_one_is_not():
    [dup] = near_duplicates([WEATHER, REFUND_COPY, REFUND])
    assert {dup.keep, dup.drop} == {"issue-refund", "refund-order"}
    assert dup.similarity >= 0.6
    assert near_duplicates([WEATHER, REFUND]) == []


def test_the_more_used_skill_is_kept_and_a_person_written_one_always_is():
    [dup] = near_duplicates([REFUND, REFUND_COPY], usage={"refund-order": SkillUsage(runs=40)})
    assert (dup.keep, dup.drop) == ("refund-order", "issue-refund")
    person = skill(
        "refund-order",
        "Refund an order once it was delivered.",
        ["get_order", "refund_order"],
        managed=False,
    )
    [dup] = near_duplicates([REFUND, person], usage={"issue-refund": SkillUsage(runs=99)})
    assert (dup.keep, dup.drop) == ("refund-order", "issue-refund")
    assert "a person wrote it" in dup.why


def test_two_person_written_skills_are_never_proposed_for_merging():
    a = skill(
        "issue-refund",
        "Refund an order after checking it was delivered.",
        ["get_order", "refund_order"],
        managed=False,
    )
    b = skill(
        "refund-order",
        "Refund an order once it was delivered.",
        ["get_order", "refund_order"],
        managed=False,
    )
    assert near_duplicates([a, b]) == []


def test_a_merge_folds_the_guidance_in_and_retires_the_duplicate():
    [dup] = near_duplicates([REFUND, REFUND_COPY])
    keep, drop = (
        {REFUND.name: REFUND, REFUND_COPY.name: REFUND_COPY}[dup.keep],
        {REFUND.name: REFUND, REFUND_COPY.name: REFUND_COPY}[dup.drop],
    )
    update, retire = merge_changes(keep, drop, dup)
    assert update.skill == keep.name and update.action == "update"
    assert f"## Merged from {drop.name}" in update.content
    assert 'failed with "already shipped"' in update.content.split("## Merged from")[1]
    assert update.content.index("<!-- skillforge:end -->") < update.content.index("## Merged from")
    assert problems(update.content, keep.name) == []
    assert (retire.skill, retire.action, retire.content) == (drop.name, "retire", "")
    assert keep.name in retire.reason


def test_unused_managed_skills_are_retired_but_young_or_person_written_ones_are_not():
    person = skill("confirm-first", "Confirm before changes.", ["confirm"], managed=False)
    old, young = NOW - timedelta(days=200), NOW - timedelta(days=5)
    usage = {
        "issue-refund": SkillUsage(runs=3, last_used=NOW - timedelta(days=120), added=old),
        "refund-order": SkillUsage(runs=0, added=young),
        "get-weather": SkillUsage(runs=9, last_used=NOW - timedelta(days=2), added=old),
        "confirm-first": SkillUsage(runs=0, added=old),
    }
    found = unused([REFUND, REFUND_COPY, WEATHER, person], usage, now=NOW, unused_days=90)
    assert [r.skill for r in found] == ["issue-refund"]
    assert "last 90 days" in found[0].reason


def run(i: int, success: bool, loaded: bool) -> Trajectory:
    return Trajectory(
        id=f"r{i}",
        task="refund order",
        steps=[ToolCall(name="refund_order", arguments={})],
        outcome={"success": success},
        skills=[LoadedSkill(name="issue-refund")] if loaded else [],
    )


def test_a_skill_whose_runs_do_significantly_worse_is_proposed_for_retirement():
    runs = [run(i, i % 5 == 0, True) for i in range(20)] + [
        run(100 + i, i % 5 != 0, False) for i in range(20)
    ]
    [retire] = worse_than_without({"issue-refund": runs})
    assert retire.skill == "issue-refund" and "20%" in retire.reason and "80%" in retire.reason


@pytest.mark.parametrize("with_rate", [0.8, 0.7])
def test_no_retirement_without_a_significant_drop(with_rate):
    with_ok = int(20 * with_rate)
    runs = [run(i, i < with_ok, True) for i in range(20)] + [
        run(100 + i, i < 16, False) for i in range(20)
    ]
    assert worse_than_without({"issue-refund": runs}) == []


def test_fisher_exact_matches_a_hand_computed_table():
    # [[1, 9], [11, 3]]: P(X <= 1) = (C(10,0)C(14,12) + C(10,1)C(14,11)) / C(24,12)
    assert fisher_less(1, 9, 11, 3) == pytest.approx((91 + 10 * 364) / 2704156)
    assert fisher_less(5, 5, 5, 5) > 0.5


def test_evolve_proposes_merging_two_near_duplicate_skills_it_does_not_otherwise_change():
    from evolver.pipeline import evolve

    unrelated = [
        Trajectory(
            id=f"w{i}",
            task="forecast for Oslo",
            steps=[ToolCall(name="get_forecast", arguments={"city": "Oslo"})],
            outcome={"success": True},
        )
        for i in range(2)
    ]
    result = evolve(unrelated, [REFUND, REFUND_COPY, WEATHER])
    by_skill = {c.skill: c for c in result.changes}
    assert {c.action for c in result.changes} == {"update", "retire"}
    [retired] = [c for c in result.changes if c.action == "retire"]
    kept = ({"issue-refund", "refund-order"} - {retired.skill}).pop()
    assert f"## Merged from {retired.skill}" in by_skill[kept].content
    assert "get-weather" not in by_skill


def test_unused_skills_are_only_judged_when_usage_is_reported():
    from evolver.pipeline import evolve

    old = NOW - timedelta(days=400)
    usage = {"get-weather": SkillUsage(runs=0, added=old)}
    assert not evolve([], [WEATHER]).changes  # no usage reported: cannot tell
    [retire] = evolve([], [WEATHER], usage=usage, now=NOW).changes
    assert (retire.skill, retire.action) == ("get-weather", "retire")
