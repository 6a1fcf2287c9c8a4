"""The state-annotated tool graph and its analyses, on hand-built runs with known answers."""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from typing import Any

import networkx as nx

from evolver.cluster import cluster
from evolver.graph_paths import ConfidentPath, confident_paths, error_branches
from evolver.graph_patterns import Composite, composites, loops, preconditions
from evolver.model import Message, Outcome, ToolCall, Trajectory
from evolver.stategraph import END, START, result_summary, state_graph, to_graphml, to_json
from tests.evolver.conftest import run

SECRET = "sk-ant-api03-PLANTEDsecretVALUE0123456789"
GH_TOKEN = "ghp_PLANTEDtokenVALUE0123456789abcdef"
EMAIL = "jane.planted@example.com"


def call(
    name: str, args: dict[str, Any] | None = None, result: str = "ok", error: str = ""
) -> ToolCall:
    return ToolCall(
        name=name,
        arguments=args or {},
        result=error or result,
        error=bool(error),
        error_text=error or None,
    )


def traj(rid: str, task: str, calls: list[ToolCall], success: bool | None) -> Trajectory:
    return Trajectory(
        id=rid,
        task=task,
        steps=[Message(role="user", text=task), *calls],
        outcome=None if success is None else Outcome(success=success),
    )


def orders() -> list[Trajectory]:
    """Four successes look the order up, then cancel; two failures cancel blind and hit an error."""
    out = []
    for i, cabin in enumerate(["economy", "economy", "economy", "business"]):
        out.append(
            traj(
                f"ok-{i}",
                f"Cancel order {i} because of a change of plan",
                [
                    call(
                        "get_order",
                        {"order_id": f"W{1000 + i}"},
                        json.dumps({"status": "pending", "cabin": cabin, "id": f"W{1000 + i}"}),
                    ),
                    call(
                        "cancel_order",
                        {"order_id": f"W{1000 + i}", "reason": "change of plan", "email": EMAIL},
                    ),
                ],
                True,
            )
        )
    for i in range(2):
        out.append(
            traj(
                f"bad-{i}",
                f"Cancel the order {i} today",
                [
                    call(
                        "cancel_order",
                        {"order_id": f"W{2000 + i}", "reason": "change of plan"},
                        error=f"Error: order W{2000 + i} is not pending",
                    ),
                    call("transfer_to_human"),
                ],
                False,
            )
        )
    return out


def test_edges_count_transitions_outcomes_and_errors() -> None:
    g = state_graph(orders())
    assert set(g.nodes) == {START, END, "get_order", "cancel_order", "transfer_to_human"}
    e = g.edges["get_order", "cancel_order"]
    assert (e["count"], e["runs"], e["successes"], e["failures"], e["errors"]) == (4, 4, 4, 0, 0)
    assert e["success_rate"] == 1.0 and e["error_rate"] == 0.0
    blind = g.edges[START, "cancel_order"]
    assert (blind["count"], blind["failures"], blind["errors"], blind["error_rate"]) == (
        2,
        2,
        2,
        1.0,
    )
    assert blind["success_rate"] == 0.0
    assert g.edges["cancel_order", END]["successes"] == 4
    node = g.nodes["cancel_order"]
    assert (node["calls"], node["errors"], node["runs"], node["successes"]) == (6, 2, 6, 4)
    assert g.nodes[START]["calls"] == 6


def test_unknown_outcomes_are_left_out_of_the_rate() -> None:
    runs = [run("u-1", "x", ["a"], None), run("u-2", "y", ["a"], True)]
    e = state_graph(runs).edges[START, "a"]
    assert (e["runs"], e["successes"], e["failures"], e["success_rate"]) == (2, 1, 0, 1.0)
    assert state_graph([runs[0]]).edges[START, "a"]["success_rate"] is None


def test_state_summarises_arguments_and_the_result_before() -> None:
    g = state_graph(orders())
    state = g.edges["get_order", "cancel_order"]["state"]
    assert state["args"] == ["email", "order_id", "reason"]
    assert state["arg_values"] == {"reason": ["change of plan"]}  # no ids, no emails
    assert state["after"] == [{"summary": "{cabin, id, status}", "count": 4}]
    assert state["after_values"] == {"cabin": ["economy"], "status": ["pending"]}
    after_error = g.edges["cancel_order", "transfer_to_human"]["state"]["after"]
    assert after_error == [{"summary": "error: order N is not pending", "count": 2}]


def test_typical_values_need_several_runs_and_tasks_and_no_identifiers() -> None:
    args = {
        "cabin": "economy",
        "user_id": "mia_li_3668",
        "amount": 12345,
        "bags": 2,
        "code": "HAT136",
        "first_name": "Mia",  # identifying by its key, though it looks like an enum
        "account": "gold",
        "reservation_id": "HATHAT",
    }
    same_task = [traj(f"s{i}", "same task", [call("book", args)], True) for i in range(3)]
    assert state_graph(same_task).edges[START, "book"]["state"]["arg_values"] == {}
    two_tasks = [traj(f"t{i}", f"task {i}", [call("book", args)], True) for i in range(2)]
    values = state_graph(two_tasks).edges[START, "book"]["state"]["arg_values"]
    assert values == {"bags": ["2"], "cabin": ["economy"]}


def test_result_summary_shapes() -> None:
    assert result_summary(call("f", result='[{"b": 1, "a": 2}]')) == "list of {a, b}"
    assert result_summary(call("f", result="255.0")) == "number"
    ids_as_keys = '{"W1234": {}, "HAT136": 1, "status": "ok"}'
    assert result_summary(call("f", result=ids_as_keys)) == "{status, +2}"
    assert result_summary(call("f", result="")) == "empty"
    assert result_summary(call("f", result="Transfer 42 done")) == "text: Transfer N done"
    assert result_summary(call("f", error="Error: seat 12A taken")) == "error: seat N taken"


def planted() -> list[Trajectory]:
    """Secrets and an email in arguments, results and errors, in runs of different tasks."""
    out = []
    for i in range(3):
        out.append(
            traj(
                f"p-{i}",
                f"Rotate the credentials of service {i}",
                [
                    call(
                        "lookup",
                        {"note": f"use {SECRET}", "owner": EMAIL, SECRET: 1},
                        json.dumps({"token": GH_TOKEN, "contact": EMAIL, "status": "active"}),
                    ),
                    call("rotate", {"key": SECRET}, f"rotated, new key {SECRET} mailed to {EMAIL}"),
                    call(
                        "notify", {"to": EMAIL}, error=f"Error: cannot reach {EMAIL} with {SECRET}"
                    ),
                    call("done"),
                ],
                i != 0,
            )
        )
    return out


def test_planted_secrets_never_reach_the_summaries_or_exports() -> None:
    from evolver.drawing import to_mermaid, to_svg

    g = state_graph(planted())
    texts = {
        "state": json.dumps([d["state"] for _, _, d in g.edges(data=True)]),
        "json": json.dumps(to_json(g)),
        "graphml": to_graphml(g),
        "mermaid": to_mermaid(g),
        "svg": to_svg(g),
    }
    for where, text in texts.items():
        for secret in (SECRET, GH_TOKEN, EMAIL, "PLANTED", "planted@"):
            assert secret not in text, (where, secret)
    assert "\\u27e8secret\\u27e9" in texts["state"]  # the key is there, its value ⟨secret⟩


def test_confident_paths_from_runs_and_from_the_graph() -> None:
    runs = [run(f"ok-{i}", f"t{i}", ["a", "b"]) for i in range(4)]
    runs += [run("bad-1", "t", ["a", "c"], False)]
    best = confident_paths(runs)
    assert best[0] == ConfidentPath((START, "a", "b", END), 4, 0.8)
    assert confident_paths(state_graph(runs))[0] == best[0]
    assert confident_paths(runs, min_rate=0.9)[0].tools == ("a", "b", END)
    assert confident_paths(runs, min_support=5) == ()


def test_confident_paths_rank_by_transitions_covered() -> None:
    runs = [run(f"x-{i}", f"t{i}", ["a", "b", "c", "d"]) for i in range(2)]
    runs += [run(f"y-{i}", f"u{i}", ["e", "f"]) for i in range(3)]
    tools = [p.tools for p in confident_paths(runs)]
    assert tools[0] == (START, "a", "b", "c", "d", END)  # 2 runs x 5 edges beat 3 runs x 3
    assert (START, "e", "f", END) in tools


def test_error_branch_where_failures_turn_off() -> None:
    runs = [run(f"ok-{i}", f"t{i}", ["find", "check", "refund"]) for i in range(3)]
    runs += [
        run(
            f"bad-{i}",
            f"u{i}",
            ["find", "check", ("escalate", {}, "Error: ticket T-991 locked")],
            False,
        )
        for i in range(2)
    ]
    runs += [run("bad-x", "v", ["refund"], False)]
    branches = error_branches(runs)
    first = branches[0]
    assert (first.prefix, first.expected, first.taken) == (
        (START, "find", "check"),
        "refund",
        "escalate",
    )
    assert (first.failed_runs, first.successful_runs) == (2, 3)
    assert [(e.tool, e.message, e.count, e.failed_runs) for e in first.errors] == [
        ("escalate", "ticket N locked", 2, 2)
    ]
    assert first.run_ids == ("bad-0", "bad-1")
    assert (branches[1].prefix, branches[1].expected, branches[1].taken) == (
        (START,),
        "find",
        "refund",
    )


def test_a_failure_on_a_successful_path_is_no_branch() -> None:
    runs = [run("ok", "t", ["a", "b"]), run("bad", "u", ["a", "b"], False)]
    assert error_branches(runs) == ()


def test_loops_are_found_per_run_and_aggregated() -> None:
    err = "Error: not found"
    looping = run(
        "loop-1",
        "t",
        [
            ("search", {"q": "x"}, err),
            ("search", {"q": "x"}, err),
            ("search", {"q": "y"}, None),
            "a",
            "b",
            "a",
            "b",
            "a",
            "done",
        ],
        False,
    )
    calm = run("calm", "u", ["a", "b", "done"])
    again = run("loop-2", "v", [("search", {"q": "z"}, None)] * 3)
    report = loops([calm, looping, again])
    assert [r.run_id for r in report.runs] == ["loop-1", "loop-2"]
    found = {(lp.kind, lp.tools): lp for lp in report.runs[0].loops}
    assert set(found) == {
        ("repeat", ("search",)),
        ("same-call", ("search",)),
        ("oscillation", ("a", "b")),
        ("same-call", ("a",)),  # no arguments, so the very same call each time
        ("same-call", ("b",)),
    }
    rep, same, osc = (
        found[("repeat", ("search",))],
        found[("same-call", ("search",))],
        found[("oscillation", ("a", "b"))],
    )
    assert (rep.start, rep.calls, rep.errors, rep.distinct_args) == (0, 3, 2, 2)
    assert (same.calls, same.errors, same.distinct_args) == (2, 2, 1)
    assert (osc.start, osc.calls) == (3, 5)
    patterns = {(p.kind, p.tools): p for p in report.patterns}
    assert (
        patterns[("repeat", ("search",))].runs,
        patterns[("repeat", ("search",))].failed_runs,
    ) == (2, 1)
    assert patterns[("repeat", ("search",))].occurrences == 2
    assert report.patterns[0].tools == ("search",) and report.patterns[0].runs == 2


def test_precondition_and_the_failure_that_skipped_it() -> None:
    runs = [
        run(f"ok-{i}", f"t{i}", ["get_order", *(["think"] * (i % 2)), "cancel_order"])
        for i in range(4)
    ]
    runs += [run("bad-1", "u", ["cancel_order", "get_order"], False)]
    runs += [run("bad-2", "v", ["get_order", "cancel_order"], False)]
    found = preconditions(runs)
    assert [(p.before, p.tool) for p in found] == [("get_order", "cancel_order")]
    p = found[0]
    assert (p.support, p.confidence, p.failed_with_tool, p.violating_failures) == (
        4,
        1.0,
        2,
        ("bad-1",),
    )
    assert preconditions(runs, min_support=5) == ()
    runs.append(run("ok-x", "w", ["cancel_order"]))  # one success without it: 4/5 < 0.9
    assert preconditions(runs) == ()
    assert preconditions(runs, min_confidence=0.8)[0].confidence == 0.8


def test_a_reasoning_helper_is_never_a_precondition() -> None:
    runs = [run(f"ok-{i}", f"t{i}", ["get_order", "think", "cancel_order"]) for i in range(4)]
    found = {(p.before, p.tool) for p in preconditions(runs)}
    assert found == {("get_order", "cancel_order")}  # not (get_order, think), (think, cancel)


def test_composite_shared_by_two_clusters() -> None:
    billing = [
        run(f"b{i}", f"b{i}", ["auth", "load_account", "charge", "receipt"]) for i in range(3)
    ]
    support = [run(f"s{i}", f"s{i}", ["auth", "load_account", "open_ticket"]) for i in range(3)]
    other = [run(f"o{i}", f"o{i}", ["search", "summarise"]) for i in range(3)]
    found = composites({"billing": billing, "support": support, "other": other})
    assert found == (Composite(("auth", "load_account"), ("billing", "support"), 6, 1.0),)
    assert composites({"billing": billing, "support": support}, min_clusters=3) == ()
    assert composites({"billing": billing, "s": support}, min_len=3) == ()


def test_composites_need_confident_transitions() -> None:
    mixed = [
        run(f"m{i}", f"m{i}", ["auth", "load_account" if i < 2 else "other"]) for i in range(4)
    ]
    same = [run(f"n{i}", f"n{i}", ["auth", "load_account"]) for i in range(3)]
    assert composites({"m": mixed, "n": same}) == ()  # P(load_account | auth) = 0.5 in "m"


def test_json_and_graphml_exports() -> None:
    g = state_graph(orders())
    data = to_json(g)
    assert json.loads(json.dumps(data)) == data
    assert [n["id"] for n in data["nodes"]] == sorted(g.nodes)
    assert [(e["source"], e["target"]) for e in data["edges"]] == sorted(g.edges)
    text = to_graphml(g)
    root = ET.fromstring(text)
    assert root.tag.endswith("graphml")
    back = nx.parse_graphml(text)
    state = json.loads(back.edges["get_order", "cancel_order"]["state"])
    assert state["arg_values"] == {"reason": ["change of plan"]}
    assert back.edges["get_order", "cancel_order"]["count"] == 4
    assert (
        "success_rate"
        not in nx.parse_graphml(to_graphml(state_graph([run("n", "t", ["a"], None)]))).edges[
            START, "a"
        ]
    )


def test_same_runs_in_any_order_give_identical_output() -> None:
    runs = orders() + planted()
    runs += [run(f"l{i}", f"l{i}", ["a", "b", "a", "b", "c"], i % 2 == 0) for i in range(5)]
    shuffled = runs[:]
    random.Random(7).shuffle(shuffled)
    for source in (runs, shuffled, runs + runs[:3]):
        g = state_graph(source)
        out = (
            json.dumps(to_json(g)),
            to_graphml(g),
            confident_paths(source),
            error_branches(source),
            loops(source),
            preconditions(source),
            composites(
                {
                    "x": [r for r in source if r.id[0] in "bol"],
                    "y": [r for r in source if r.id[0] not in "bo"],
                }
            ),
        )
        if source is runs:
            first = out
        assert out == first


def test_airline_trials(airline01: list[Trajectory]) -> None:
    g = state_graph(airline01)
    assert g.nodes[START]["calls"] == len(airline01) == 100
    assert sum(d["count"] for _, _, d in g.in_edges(END, data=True)) == 100
    details = g.edges["get_user_details", "get_reservation_details"]["state"]
    assert details["args"] == ["reservation_id"]
    assert "membership" in details["after_values"]
    pre = {(p.before, p.tool) for p in preconditions(airline01)}
    assert ("get_reservation_details", "cancel_reservation") in pre
    assert any(b.errors for b in error_branches(airline01))
    repeats = {(p.kind, p.tools): p for p in loops(airline01).patterns}
    assert repeats[("repeat", ("update_reservation_flights",))].errors > 0
    paths = confident_paths(airline01)
    assert paths and all(p.success_rate >= 0.8 and p.support >= 2 for p in paths)
    groups = {c.id: c.members for c in cluster(airline01, 0.3)}
    for comp in composites(groups):
        assert len(comp.clusters) >= 2 and len(comp.tools) >= 2
    text = json.dumps(to_json(g))
    assert "@" not in text.replace("[REDACTED:email]", "")
