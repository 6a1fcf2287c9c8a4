"""Answer forms: the structure successful runs answered in is taught, read back and checked."""

from __future__ import annotations

from evolver.answers import FREE_TEXT, answer_form, answer_forms, final_answer
from evolver.changes import SkillDoc
from evolver.cluster import cluster
from evolver.evaluate import answers_as_taught, compliance
from evolver.model import Message, Outcome, ToolCall, Trajectory
from evolver.skillspec import skill_spec
from evolver.synthesize import synthesize


def lab_run(rid: str, answer: str | None, success: bool) -> Trajectory:
    steps: list[Message | ToolCall] = [
        Message(role="user", text=f"What is the last HbA1C value of patient S{rid} and its date?"),
        ToolCall(name="get_observation", arguments={"code": "A1C"}, result='{"total": 1}'),
    ]
    if answer is not None:
        steps.append(Message(role="assistant", text=answer))
    return Trajectory(id=rid, task=steps[0].text, steps=steps, outcome=Outcome(success=success))


def test_a_form_keeps_the_structure_and_drops_the_values():
    assert answer_form('FINISH([6.1, "2023-10-13T22:22:00+00:00"])') == 'FINISH([n, "text"])'
    assert answer_form('FINISH([{"value": 6.1}])') == 'FINISH([{"text": n}])'
    assert answer_form("FINISH([-1])") == "FINISH([n])"
    assert answer_form('{"ok": true, "count": 3}') == '{"text": true, "text": n}'
    assert answer_form("The last value is 6.1%, recorded in October (see chart).") == FREE_TEXT
    assert answer_form("") == FREE_TEXT and answer_form(None) == FREE_TEXT


def test_the_final_answer_is_the_last_assistant_message_that_says_something():
    run = lab_run("1", "FINISH([1])", True)
    run = run.model_copy(update={"steps": [*run.steps, Message(role="assistant", text="  ")]})
    assert final_answer(run) == "FINISH([1])"
    assert final_answer(lab_run("2", None, True)) is None


def planted() -> list[Trajectory]:
    runs = [lab_run(f"ok{i}", f'FINISH([{i}.5, "2023-10-1{i}"])', True) for i in range(5)]
    runs += [lab_run(f"dict{i}", f'FINISH([{{"value": {i}.5}}])', False) for i in range(3)]
    runs.append(lab_run("prose", "The value is 5.5, taken last week.", False))
    runs.append(lab_run("ok-prose", "It was 5.9 on 2023-10-02.", True))
    return runs


def test_the_taught_form_is_written_read_back_and_checked():
    found = answer_forms(planted())
    assert found is not None
    assert found.forms == (('FINISH([n, "text"])', 5),)
    assert (found.answered, found.failed_other) == (6, 4)
    (group,) = cluster(planted())
    change = synthesize(group, "last-hba1c")
    assert change is not None
    assert (
        '- Give the final answer in the form `FINISH([n, "text"])`. (held out: 100% of 5 runs '
        "that did succeeded, 20% of 5 that did not)"
    ) in change.content
    doc = SkillDoc(name=change.skill, text=change.content, files=change.files)
    spec = skill_spec(doc)
    assert spec is not None and spec.checks is not None
    good = lab_run("h1", 'FINISH([7.0, "2024-01-01"])', False)  # outcomes are not looked at
    bad = lab_run("h2", 'FINISH([{"value": 7.0}])', True)
    assert compliance(good, spec) > 0.5 > compliance(bad, spec)
    # a person's skill that names the form in prose is read and checked the old way
    prose = SkillDoc(
        name="last-hba1c",
        text=change.content.split("<!-- skillforge:begin -->")[0]
        + "## Procedure\n\n1. Call `get_observation`.\n\n## Verification\n\n"
        '- Successful runs gave the final answer as `FINISH([n, "text"])` (5 runs).\n',
    )
    old = skill_spec(prose)
    assert old is not None and old.answer_forms == {'FINISH([n, "text"])'}
    assert answers_as_taught(good, old) and not answers_as_taught(bad, old)


def test_prose_or_disagreeing_answers_teach_no_form():
    prose = [lab_run(f"p{i}", f"It was {i}.5 last week.", True) for i in range(4)]
    assert answer_forms(prose) is None
    mixed = [lab_run(f"m{i}", f"FINISH([{i}])", True) for i in range(2)]
    mixed += [lab_run(f"q{i}", f"Value {i}, fine.", True) for i in range(3)]
    assert answer_forms(mixed) is None  # the form covers fewer than half the answers
