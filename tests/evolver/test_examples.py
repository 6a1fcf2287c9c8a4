"""Worked examples: the changes each kind of request needed are taught, read back and checked.

A planted store: cancel requests need `cancel_pending_order`, return requests need
`return_delivered_order_items`, and status questions must change nothing. Failed runs make the
wrong change for their request."""

from __future__ import annotations

from evolver.changes import SkillDoc
from evolver.checks import profile
from evolver.cluster import Cluster
from evolver.diagnose import Category, diagnose_all
from evolver.evaluate import compliance
from evolver.examples import changes_made, nearest_example, worked_examples
from evolver.graph import changes_state
from evolver.model import Message, Outcome, ToolCall, Trajectory
from evolver.prompts import writer
from evolver.skillspec import skill_spec
from evolver.synthesize import synthesize

REQUESTS = {
    "cancel": "Please cancel my pending lamp order W{n}, I ordered it by mistake",
    "return": "Please return the delivered lamp from order W{n}, it arrived broken",
    "status": "Is order W{n} still pending? Only checking its status, change nothing",
}
RIGHT = {"cancel": "cancel_pending_order", "return": "return_delivered_order_items", "status": ""}


def store_run(
    rid: str, kind: str, n: int, change: str, success: bool, extra: str = ""
) -> Trajectory:
    task = REQUESTS[kind].format(n=n) + extra
    steps: list[Message | ToolCall] = [
        Message(role="user", text=task),
        ToolCall(name="think", arguments={"thought": "look the order up"}),
        ToolCall(name="get_order_details", arguments={"order_id": f"W{n}"}, result="{}"),
    ]
    if change:
        steps.append(ToolCall(name=change, arguments={"order_id": f"W{n}"}, result="{}"))
    steps.append(Message(role="assistant", text="Done."))
    return Trajectory(id=rid, task=task, steps=steps, outcome=Outcome(success=success))


def planted() -> list[Trajectory]:
    runs = []
    for kind in REQUESTS:
        runs += [store_run(f"{kind}{n}", kind, n, RIGHT[kind], True) for n in range(3)]
    runs.append(store_run("quirk", "cancel", 7, RIGHT["cancel"], True, extra=" zanzibar"))
    runs += [
        store_run(f"bad{n}", "return", 10 + n, "cancel_pending_order", False) for n in range(3)
    ]
    runs.append(store_run("nosy", "status", 20, "cancel_pending_order", False))
    return runs


def store() -> Cluster:
    return Cluster(id="c-store", members=tuple(planted()), keywords=("order",), tools=())


def test_a_tool_changes_state_unless_it_reads_or_reasons():
    assert changes_state("cancel_pending_order") and changes_state("POST Observation")
    assert not changes_state("get_order_details") and not changes_state("search_flights")
    assert not changes_state("think") and not changes_state("GET Patient")
    made = changes_made(store_run("x", "cancel", 1, "cancel_pending_order", True))
    assert made == {"cancel_pending_order"}


def test_each_request_that_succeeded_is_an_example_of_the_changes_it_needed():
    found = worked_examples(planted())
    by_change = {e.changes: e for e in found}
    assert set(by_change) == {
        frozenset({"cancel_pending_order"}),
        frozenset({"return_delivered_order_items"}),
        frozenset(),
    }
    assert {"return", "delivered", "broken"} <= set(
        by_change[frozenset({"return_delivered_order_items"})].words
    )
    assert all("zanzibar" not in e.words for e in found)  # one request's quirk is not telling
    assert all(len(e.words) <= 10 for e in found)


def test_a_request_like_an_example_is_matched_to_it_and_an_unlike_one_to_none():
    found = worked_examples(planted())
    like = nearest_example(REQUESTS["return"].format(n=99), found)
    assert like is not None and like.changes == {"return_delivered_order_items"}
    assert nearest_example("Book two seats to Lisbon for next Friday", found) is None


def test_examples_are_written_read_back_and_a_wrong_change_lowers_compliance():
    change = synthesize(store(), "order-requests")
    assert change is not None
    assert "## Examples" in change.content
    assert '": changed nothing (' in change.content  # the status question changed nothing
    assert "(held out: 100% of 10 runs that did succeeded, 0% of 4 that did not)" in (
        change.content
    )
    spec = skill_spec(SkillDoc(name=change.skill, text=change.content, files=change.files))
    assert spec is not None and spec.checks is not None
    (example,) = [c for c, _, _ in spec.checks.checks if c.kind == "example"]
    assert set(example.examples) == set(worked_examples(planted()))

    right = store_run("h1", "return", 50, "return_delivered_order_items", True)
    wrong = store_run("h2", "return", 51, "cancel_pending_order", False)
    nosy = store_run("h3", "status", 52, "cancel_pending_order", False)
    assert example.complies(profile(right))
    assert not example.complies(profile(wrong)) and not example.complies(profile(nosy))
    assert compliance(wrong, spec) < compliance(right, spec)
    assert compliance(nosy, spec) < compliance(store_run("h4", "status", 53, "", True), spec)


def test_a_cluster_whose_requests_all_need_the_same_changes_gets_no_examples():
    same = [store_run(f"c{n}", "cancel", n, RIGHT["cancel"], True) for n in range(4)]
    group = Cluster(id="c-cancel", members=tuple(same), keywords=("cancel",), tools=())
    change = synthesize(group, "cancel-order")
    assert change is not None and "## Examples" not in change.content
    spec = skill_spec(SkillDoc(name=change.skill, text=change.content, files=change.files))
    assert spec is not None and spec.examples == ()
    assert spec.checks is not None
    assert not any(c.kind == "example" for c, _, _ in spec.checks.checks)


def test_example_words_are_redacted_before_they_are_chosen():
    email = " and mail olivia.gonzalez@example.com the receipt"
    runs = [store_run(f"m{n}", "cancel", n, RIGHT["cancel"], True, extra=email) for n in range(2)]
    runs += [store_run(f"s{n}", "status", n, "", True) for n in range(2)]
    group = Cluster(id="c-m", members=tuple(runs), keywords=("order",), tools=())
    change = synthesize(group, "order-mail")
    assert change is not None
    written = change.content + "".join(change.files.values())
    assert "olivia" not in written and "gonzalez" not in written


def test_a_failed_run_that_made_other_changes_than_a_like_request_is_diagnosed_by_them():
    stopped = store_run("stopped", "return", 30, "", False)  # looked the order up, then stopped
    runs = [*planted(), stopped]
    found = {d.trajectory_id: d for d in diagnose_all(runs)}
    swapped = found["bad0"]
    assert swapped.category is Category.WRONG_TOOL
    assert (swapped.tool, swapped.expected) == (
        "cancel_pending_order",
        "return_delivered_order_items",
    )
    assert swapped.step == 3 and "like request" in swapped.evidence
    assert found["nosy"].category is Category.POLICY_VIOLATION  # changed what it should not
    assert "changed nothing" in found["nosy"].evidence
    assert found["stopped"].category is Category.PREMATURE_STOP
    assert found["stopped"].expected == "return_delivered_order_items"


def test_a_skill_the_llm_writes_keeps_the_examples_as_the_evidence_gave_them():
    change = synthesize(store(), "order-requests")
    assert change is not None
    written = writer.WrittenSkill(
        title="Order requests",
        description="Handles requests about an order. Use when a customer asks about an order.",
        when_to_use=["A customer asks about an order."],
        preconditions=[],
        procedure=["Call `get_order_details` with `order_id`."],
        verification=[],
        pitfalls=[],
        guardrails=[],
    )
    text = writer.render_written(written, change.content)
    spec = skill_spec(SkillDoc(name=change.skill, text=text, files=change.files))
    draft = skill_spec(SkillDoc(name=change.skill, text=change.content, files=change.files))
    assert spec is not None and draft is not None
    assert spec.examples == draft.examples and len(spec.examples) == 3


def test_an_example_no_excerpt_can_quote_is_its_telling_words_as_a_list() -> None:
    from evolver.checks import Check, Measured
    from evolver.examples import Example
    from evolver.skillbody import _examples_of

    examples = (
        Example(("always", "lamp", "past", "order", "hours"), frozenset({"cancel_order"}), 2),
        Example(("always", "able", "hours"), frozenset(), 1),  # nothing but filler
    )
    kept = Measured(Check("example", "changes", examples=examples), 4, 5, 1, 5, 0.01, 3, 3)
    lines = _examples_of([], kept)  # no run's request to quote
    assert lines[2:] == ['- "lamp, order": changed `cancel_order` (2 runs)']
