"""One cluster to one SkillChange: naming, procedure, pitfalls, evidence, updates."""

from __future__ import annotations

from evolver.changes import SkillDoc
from evolver.cluster import Cluster, cluster
from evolver.diagnose import Diagnosis, diagnose_all
from evolver.graph import error_patterns, evidence, fingerprint
from evolver.skillbody import argument_keys, requests_line
from evolver.skilldoc import BLOCK_BEGIN, BLOCK_END, parse, problems
from evolver.synthesize import action_tool, derive_name, legacy_names, synthesize, tool_idf
from tests.evolver.conftest import refund_runs, run, shipping_runs


def _refund_cluster() -> Cluster:
    runs = refund_runs() + shipping_runs()
    return next(c for c in cluster(runs, 0.3) if c.members[0].id.startswith("r"))


def _section(content: str, title: str) -> str:
    return content.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0].split(BLOCK_END)[0]


def test_planted_error_pattern_is_counted() -> None:
    patterns = error_patterns(refund_runs())
    assert len(patterns) == 1
    p = patterns[0]
    assert (p.tool, p.message, p.count, p.failed_runs) == (
        "issue_refund",
        "refund window closed for order N",
        4,
        3,
    )


def test_errors_in_successful_runs_are_not_failure_patterns() -> None:
    runs = refund_runs(n_failed=0) + [
        run("x", "t", [("issue_refund", {}, "Error: timeout after 30s")], success=True)
    ]
    assert error_patterns(runs) == ()


def _big_refund_cluster() -> Cluster:
    """Enough refund tasks (8 successes, 6 failures) for a lesson to be tested on tasks it
    was not learned from."""
    runs = refund_runs(n_ok=8, n_failed=6) + shipping_runs()
    return next(c for c in cluster(runs, 0.3) if c.members[0].id.startswith("r"))


def test_pitfalls_are_the_lessons_that_held_out_with_their_figures() -> None:
    change = synthesize(_big_refund_cluster(), "issue-refund")
    assert change is not None
    pitfalls = _section(change.content, "Pitfalls")
    notes = _section(change.content, "Tool notes")
    # every failed run both left out `amount` and hit the refund-window error: one piece of
    # evidence, so one line (the argument rule), with the held-out figures
    figures = "(held out: 100% of 8 runs that did succeeded, 0% of 6 that did not)"
    amount = "- Pass `amount` to every `issue_refund` call. " + figures
    error = '- `issue_refund` failing with "refund window closed for order N"'
    assert (amount in notes) != (error in pitfalls)
    # one failed run escalated: a one-off is evidence, never a lesson
    assert "escalate_ticket" not in pitfalls
    assert "B12345" not in change.content  # ids inside error texts are abstracted


def test_small_clusters_write_no_untested_lessons() -> None:
    """7 runs cannot test a lesson on held-out tasks: the skill says so, and shows what was
    seen as evidence only."""
    change = synthesize(_refund_cluster(), "issue-refund")
    assert change is not None
    assert "None has held out yet" in _section(change.content, "Pitfalls")
    evidence = _section(change.content, "Evidence")
    assert "Most common path of successful runs (3 of 4): `find_order` → `issue_refund`" in (
        evidence
    )
    assert 'Error seen: `issue_refund` "refund window closed for order N"' in evidence


def test_argument_rules_that_held_out_become_tool_notes() -> None:
    change = synthesize(_big_refund_cluster(), "issue-refund")
    assert change is not None
    notes = _section(change.content, "Tool notes")
    assert "- Pass `customer` to every `find_order` call. (held out: 100% of 7" in notes
    assert argument_keys(refund_runs(), "find_order") == ["order_id", "customer"]


def test_new_skill_content_and_metadata() -> None:
    c = _refund_cluster()
    change = synthesize(c, "issue-refund", max_listed_ids=3)
    assert change is not None and change.action == "create"
    assert problems(change.content, "issue-refund") == []
    fm, body = parse(change.content)
    assert fm["name"] == "issue-refund"
    assert fm["metadata"] == {
        "skillforge.managed": "true",
        "skillforge.cluster": c.id,
        "skillforge.evidence": "7 runs, 57% success",
        "skillforge.fingerprint": change.evidence.fingerprint,
        "skillforge.version": "1",
    }
    assert "refund" in fm["description"] and "find_order" in fm["description"]
    assert body.startswith("# Issue refund\n")
    assert body.count(BLOCK_BEGIN) == 1 and body.count(BLOCK_END) == 1
    for title in ("When to use", "Procedure", "Pitfalls", "Evidence"):
        assert f"\n## {title}\n" in body.split(BLOCK_BEGIN)[1]
    ev = _section(change.content, "Evidence")
    assert "`r-bad-0`, `r-bad-1`, `r-bad-2` and 4 more" in ev
    assert len(change.evidence.trajectory_ids) == 7
    assert change.summary == "Add issue-refund: 4/7 runs succeed via find_order → issue_refund"


def test_fingerprint_depends_on_ids_and_outcomes_only() -> None:
    a = refund_runs()
    assert fingerprint(a) == fingerprint(list(reversed(a)))
    flipped = [run(a[0].id, a[0].task, [], success=False), *a[1:]]
    assert fingerprint(flipped) != fingerprint(a)
    assert evidence(a).success_rate == round(4 / 7, 4)


def test_unknown_outcomes_count_as_neither() -> None:
    runs = refund_runs() + [run("u-1", "Refund order", ["find_order"], success=None)]
    ev = evidence(runs)
    assert (ev.runs, ev.successes, ev.failures) == (8, 4, 3)
    assert ev.success_rate == round(4 / 7, 4)


def test_names_say_the_intent_of_the_requests_never_the_tool() -> None:
    c = _refund_cluster()
    weights = tool_idf(c.members)
    assert action_tool(c, weights) == "issue_refund"  # find_order is a query tool
    assert derive_name(c, weights, set()) == "refund-order"
    taken = {"refund-order"}
    second = derive_name(c, weights, taken)
    assert second != "refund-order" and second.startswith("refund-order-")
    assert derive_name(c, weights, taken | {second}) not in taken | {second}


def test_earlier_tool_names_stay_recognised_so_old_skills_are_updated() -> None:
    c = _refund_cluster()
    assert legacy_names(c, tool_idf(c.members)) == ["issue-refund"]


def test_a_look_up_cluster_is_named_by_what_it_asks_not_its_tool() -> None:
    for tool in ("get_weather", "think"):
        runs = [run(f"q{i}", "Summarise weather forecast for harbour", [tool]) for i in range(4)]
        c = cluster(runs, 0.3)[0]
        assert derive_name(c, tool_idf(runs), set()) == "summarize-weather-forecast"


def _managed(c: Cluster) -> SkillDoc:
    change = synthesize(c, "issue-refund")
    assert change is not None
    return SkillDoc(name="issue-refund", text=change.content)


def test_same_evidence_gives_no_change() -> None:
    c = _refund_cluster()
    assert synthesize(c, "issue-refund", _managed(c)) is None


def test_managed_skill_is_updated_in_place_keeping_edits_outside_the_block() -> None:
    old = _refund_cluster()
    doc = _managed(old)
    edited = doc.text.replace(
        "# Issue refund\n", "# Issue refund\n\nReviewer: check the policy first.\n"
    )
    edited += "\nA footnote a reviewer added.\n"
    more = refund_runs() + refund_runs("r2", 2, 1) + shipping_runs()
    new = next(c for c in cluster(more, 0.3) if c.members[0].id.startswith("r"))
    change = synthesize(new, "issue-refund", SkillDoc(name="issue-refund", text=edited))
    assert change is not None and change.action == "update" and change.skill == "issue-refund"
    fm, body = parse(change.content)
    assert fm["metadata"]["skillforge.version"] == "2"
    assert "Reviewer: check the policy first." in body
    assert body.endswith("\nA footnote a reviewer added.\n")
    assert "10 runs" in fm["metadata"]["skillforge.evidence"]
    assert "version 1 to 2" in change.reason
    assert problems(change.content, "issue-refund") == []


PERSON = """---
name: issue-refund
description: How our team issues refunds (hand-written).
license: Apache-2.0
---
# Refunds, the way we do them

Always apologise first. Never refund more than the order total.
"""


def _attributed(c: Cluster, name: str) -> list[Diagnosis]:
    return diagnose_all(c.members, skill_of={r.id: name for r in c.members})


def _with_new_failures(n: int = 3) -> Cluster:
    """The refund cluster plus n failed runs hitting an error the skill does not know yet."""
    extra = [
        run(
            f"r-new-{i}",
            f"Refund the damaged blender order C{i} for the customer",
            [
                ("find_order", {"order_id": f"C{i}"}, None),
                ("issue_refund", {"order_id": f"C{i}"}, "Error: amount exceeds the order total"),
            ],
            False,
        )
        for i in range(n)
    ]
    runs = refund_runs() + extra + shipping_runs()
    return next(x for x in cluster(runs, 0.3) if x.members[0].id.startswith("r"))


def test_a_person_written_skill_waits_until_failures_are_attributed_to_it() -> None:
    c = _refund_cluster()
    doc = SkillDoc(name="issue-refund", text=PERSON)
    assert synthesize(c, "issue-refund", doc) is None  # nothing attributed to it
    assert synthesize(c, "issue-refund", doc, diagnoses=_attributed(c, "issue-refund"))


def test_a_rewrite_needs_new_guidance_and_enough_new_runs() -> None:
    c = _refund_cluster()
    first = synthesize(c, "issue-refund")
    assert first is not None
    doc = SkillDoc(name="issue-refund", text=first.content)
    one_more = _with_new_failures(1)
    assert synthesize(one_more, "issue-refund", doc) is None  # 1 new run < rewrite_after (3)
    three_more = _with_new_failures(3)
    rewrite = synthesize(three_more, "issue-refund", doc)
    assert rewrite is not None and "amount exceeds the order total" in rewrite.content
    assert "3 runs with a known outcome arrived since it was written" in rewrite.reason
    more_of_the_same = refund_runs("r9", n_ok=4, n_failed=0)[1:]  # no detour, no failure
    counts_only = next(
        x
        for x in cluster(refund_runs() + more_of_the_same + shipping_runs(), 0.3)
        if x.members[0].id.startswith("r")
    )
    # only the figures moved (no new check held out either: checks are tested on their own)
    assert synthesize(counts_only, "issue-refund", doc, checked=[]) is None


def test_person_written_skill_keeps_its_text() -> None:
    c = _refund_cluster()
    change = synthesize(
        c,
        "issue-refund",
        SkillDoc(name="issue-refund", text=PERSON),
        diagnoses=_attributed(c, "issue-refund"),
    )
    assert change is not None and change.action == "update"
    assert change.content.startswith(PERSON)  # frontmatter and body byte-identical, block after
    assert "person-written" in change.reason
    fm, body = parse(change.content)
    assert fm["description"] == "How our team issues refunds (hand-written)."
    assert "metadata" not in fm
    assert "## Pitfalls" in body.split(BLOCK_BEGIN)[1]
    assert problems(change.content, "issue-refund") == []
    # a second pass with the same runs changes nothing; edits outside the block survive new runs
    again = SkillDoc(name="issue-refund", text=change.content)
    assert synthesize(c, "issue-refund", again) is None
    edited = change.content.replace("Always apologise first.", "Always apologise, then listen.")
    more = _with_new_failures(3)
    updated = synthesize(
        more,
        "issue-refund",
        SkillDoc(name="issue-refund", text=edited),
        diagnoses=_attributed(more, "issue-refund"),
    )
    assert updated is not None
    assert updated.content.split(BLOCK_BEGIN)[0] == edited.split(BLOCK_BEGIN)[0]
    assert f"- Runs: {more.size} (" in updated.content


def test_reviewer_description_edit_alone_is_not_reverted() -> None:
    c = _refund_cluster()
    doc = _managed(c)
    fm, _ = parse(doc.text)
    edited = doc.text.replace(fm["description"], "Refunds, reworded by a reviewer.")
    assert synthesize(c, "issue-refund", SkillDoc(name="issue-refund", text=edited)) is None
    # An edit inside the block stands too, until new evidence makes a rewrite worth proposing.
    tampered = doc.text.replace("None has held out yet", "Be careful with refunds")
    assert tampered != doc.text
    assert synthesize(c, "issue-refund", SkillDoc(name="issue-refund", text=tampered)) is None
    rewrite = synthesize(
        _with_new_failures(3), "issue-refund", SkillDoc(name="issue-refund", text=tampered)
    )
    assert rewrite is not None and "Be careful with refunds" not in rewrite.content


def test_person_skill_with_bad_frontmatter_is_flagged_not_rewritten() -> None:
    text = "---\nname: issue-refund\ndescription: d\nversion: 3\n---\nNotes.\n"
    c = _refund_cluster()
    doc = SkillDoc(name="issue-refund", text=text)
    change = synthesize(c, "issue-refund", doc, diagnoses=_attributed(c, "issue-refund"))
    assert change is not None and change.content.startswith(text)
    assert "needs a person's fix" in change.reason and "version" in change.reason



def test_a_request_quoting_a_value_keeps_each_excerpt_in_one_pair_of_quotes() -> None:
    line = requests_line(['"⟨value⟩" in admin can add without this permission', "Bug in expand"])
    assert line == (
        "- Requests like: \"'⟨value⟩' in admin can add without this permission\"; \"Bug in expand\""
    )
