"""Functional skills: a stretch of steps two task groups share becomes one referenced skill."""

from __future__ import annotations

from evolver.changes import SkillDoc
from evolver.model import ToolCall, Trajectory
from evolver.pipeline import evolve
from evolver.skilldoc import problems


def run(rid: str, task: str, tools: list[str], success: bool = True) -> Trajectory:
    return Trajectory(
        id=rid,
        task=task,
        steps=[ToolCall(name=t, arguments={"account_id": "a"}, result="ok") for t in tools],
        outcome={"success": success},
    )


SHARED = ["verify_identity", "load_account"]


def two_task_groups() -> list[Trajectory]:
    refunds = [run(f"r{i}", "refund my last payment", [*SHARED, "issue_refund"]) for i in range(5)]
    closes = [
        run(f"c{i}", "close my savings account", [*SHARED, "close_account"]) for i in range(5)
    ]
    return refunds + closes


def test_a_shared_stretch_becomes_a_functional_skill_the_task_skills_reference():
    result = evolve(two_task_groups(), [])
    by_name = {c.skill: c for c in result.changes}
    functional = by_name["verify-identity-then-load-account"]
    assert functional.action == "create" and "recur in 2 task groups" in functional.reason
    assert "1. Call `verify_identity`" in functional.content
    assert problems(functional.content, functional.skill) == []
    for task_skill in ("refund-payment", "close-savings-account"):
        uses = by_name[task_skill].content.split("## Uses", 1)[1].split("\n## ", 1)[0]
        assert "`verify-identity-then-load-account` covers steps 1-2" in uses


def test_a_known_functional_skill_is_kept_not_copied():
    first = evolve(two_task_groups(), [])
    library = [SkillDoc(name=c.skill, text=c.content) for c in first.changes]
    assert evolve(two_task_groups(), library).empty


def test_a_reworded_functional_skill_is_updated_only_when_its_steps_change():
    name = "verify-identity-then-load-account"
    first = evolve(two_task_groups(), [])
    library = [SkillDoc(name=c.skill, text=c.content) for c in first.changes]
    reworded = [
        SkillDoc(name=d.name, text=d.text.replace("1. Call", "1. First, call"))
        if d.name == name
        else d
        for d in library
    ]
    assert name not in {c.skill for c in evolve(two_task_groups(), reworded).changes}
    more = [
        Trajectory(
            id=f"{g}{i}",
            task=t.task,
            steps=[ToolCall(name=n, arguments={"account_id": "a", "pin": "1"}) for n in tools],
            outcome={"success": True},
        )
        for g, t, tools in (
            ("x", two_task_groups()[0], [*SHARED, "issue_refund"]),
            ("y", two_task_groups()[5], [*SHARED, "close_account"]),
        )
        for i in range(6)
    ]
    changed = {c.skill: c for c in evolve(two_task_groups() + more, reworded).changes}
    assert changed[name].action == "update"  # a new argument key: the steps changed


def test_a_stretch_in_one_group_only_or_of_helper_tools_is_not_a_functional_skill():
    refunds = [run(f"r{i}", "refund my last payment", [*SHARED, "issue_refund"]) for i in range(5)]
    thinking = [
        run(f"t{i}", "close my savings account", ["think", "calculate", "close_account"])
        for i in range(5)
    ]
    names = {c.skill for c in evolve(refunds + thinking, []).changes}
    assert not any("-then-" in name for name in names)


LONG = ["search_code", "identify_code", "plan_code_change", "edit_code", "run_tests"]


def two_coding_groups() -> list[Trajectory]:
    """Two task groups whose runs share a five-step stretch, then end differently."""
    ends = (("a", "fix the parser crash", "finish"), ("b", "add a cli flag", "submit"))
    return [run(f"{g}{i}", task, [*LONG, last]) for g, task, last in ends for i in range(6)]


def test_a_long_shared_stretch_is_named_first_to_last_and_written_once():
    groups = two_coding_groups()
    functional = [c for c in evolve(groups, []).changes if "functional" in c.content]
    names = [c.skill for c in functional]
    # one skill for the stretch (not also one for each of its parts), named for its ends
    assert names == ["search-code-to-run-tests"], names
    change = functional[0]
    assert "# Shared steps: `search_code` → `identify_code`" in change.content
    assert problems(change.content, change.skill) == []


def test_a_functional_skill_named_by_an_earlier_release_keeps_its_name():
    groups = two_coding_groups()
    first = evolve(groups, [])
    old = "search-code-then-identify-code-then-plan-code-change-then"
    library = [
        SkillDoc(
            name=old if c.skill == "search-code-to-run-tests" else c.skill,
            text=c.content.replace("name: search-code-to-run-tests", f"name: {old}"),
        )
        for c in first.changes
    ]
    names = {c.skill for c in evolve(groups, library).changes}
    assert "search-code-to-run-tests" not in names  # no second copy beside the old one
