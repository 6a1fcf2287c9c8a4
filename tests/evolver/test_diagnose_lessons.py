"""Diagnosis without a same-task contrast: the lessons of the run's group decide."""

from __future__ import annotations

from evolver.diagnose import Category, Lessons, diagnose, diagnose_all, lessons
from tests.evolver.test_answers import lab_run
from tests.evolver.test_answers import planted as answered
from tests.evolver.test_conditions import order_run
from tests.evolver.test_conditions import planted as ordered


def test_a_call_under_a_failure_condition_is_the_root_cause():
    found = {d.trajectory_id: d for d in diagnose_all(ordered())}
    shipped = found["shipped0"]
    assert (shipped.category, shipped.tool, shipped.step) == (
        Category.POLICY_VIOLATION,
        "cancel_order",
        2,
    )
    assert "after get_order returned status = shipped" in shipped.evidence
    gift = found["gift0"]
    assert (gift.category, gift.tool) == (Category.INVALID_ARGUMENTS, "cancel_order")
    assert "with refund_method = gift_card" in gift.evidence
    assert found["plain"].category is Category.UNKNOWN  # it did what successes did


def test_an_answer_in_another_form_is_an_answer_format_failure():
    found = {d.trajectory_id: d for d in diagnose_all(answered())}
    wrong = found["dict0"]
    assert wrong.category is Category.ANSWER_FORMAT
    assert wrong.step == 2 and wrong.tool is None
    assert 'answered in the form FINISH([{"text": n}])' in wrong.evidence
    assert 'FINISH([n, "text"])' in wrong.evidence
    assert found["prose"].category is Category.ANSWER_FORMAT


def test_a_same_task_contrast_still_comes_first_and_no_lesson_means_unknown():
    run = order_run("x", "shipped", False)
    contrast = order_run("y", "shipped", True).model_copy(update={"task": run.task})
    taught = lessons(ordered())
    assert diagnose(run, [contrast], group=taught).category is not Category.POLICY_VIOLATION
    assert diagnose(run, group=taught).category is Category.POLICY_VIOLATION
    assert diagnose(run, group=Lessons()).category is Category.UNKNOWN
    assert diagnose(lab_run("z", "It was fine.", False)).category is Category.UNKNOWN


def test_lessons_come_from_the_runs_group_only():
    labs = [r.model_copy(update={"id": "lab-" + r.id}) for r in answered()]
    skill_of = {r.id: "orders" for r in ordered()} | {r.id: "labs" for r in labs}
    found = {d.trajectory_id: d for d in diagnose_all(ordered() + labs, skill_of=skill_of)}
    assert found["shipped0"].category is Category.POLICY_VIOLATION
    assert found["shipped0"].skill == "orders"
    # the labs group's answer form does not apply to orders, whose successes answer in prose
    assert found["plain"].category is Category.UNKNOWN
    assert found["lab-dict0"].category is Category.ANSWER_FORMAT


def test_unknown_says_whether_a_successful_run_was_there_to_compare():
    run = order_run("x", "pending", False)
    twin = order_run("x", "pending", True).model_copy(update={"id": "x-ok"})
    alike = diagnose(run, [twin])
    assert alike.category is Category.UNKNOWN
    assert "paths and arguments match a successful run" in alike.evidence
    alone = diagnose(run)
    assert "no successful run of the same task to compare" in alone.evidence
