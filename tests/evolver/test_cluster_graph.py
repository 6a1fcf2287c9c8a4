"""Clustering of runs and the tool transition graph."""

from __future__ import annotations

import json
import random

from evolver.cluster import cluster, task_tokens
from evolver.graph import END, START, best_path, to_json, to_mermaid, tool_graph, tool_path
from tests.evolver.conftest import refund_runs, run, shipping_runs, synthetic


def test_task_tokens_drop_noise() -> None:
    toks = task_tokens(
        "You are Mia Li (mia_li_3668). Please cancel the 2 flights on HAT136 to JFK!"
    )
    assert {"cancel", "flight", "jfk"} <= toks
    assert not toks & {"you", "are", "the", "mia", "please", "hat136", "mia_li_3668", "on", "to"}


def test_two_families_become_two_clusters() -> None:
    runs = refund_runs() + shipping_runs()
    clusters = cluster(runs, 0.3)
    groups = [{t.id[0] for t in c.members} for c in clusters]
    assert sorted(map(sorted, groups)) == [["r"], ["s"]]
    assert [c.size for c in clusters] == [7, 5]  # biggest first
    refund = clusters[0]
    assert "refund" in refund.keywords
    assert refund.tools[:2] == ("find_order", "issue_refund")
    assert refund.id.startswith("c-") and len(refund.id) == 10


def test_unrelated_runs_are_singletons() -> None:
    runs = refund_runs() + [
        run("z-1", "Translate the poem into French", ["translate"]),
        run("z-2", "Plot rainfall statistics", ["plot_chart"]),
    ]
    sizes = sorted(c.size for c in cluster(runs, 0.3))
    assert sizes == [1, 1, 7]


def test_order_does_not_matter() -> None:
    runs = synthetic(300)
    shuffled = runs[:]
    random.Random(3).shuffle(shuffled)
    a, b = cluster(runs, 0.3), cluster(shuffled, 0.3)
    assert [(c.id, c.ids, c.keywords, c.tools) for c in a] == [
        (c.id, c.ids, c.keywords, c.tools) for c in b
    ]


def test_cluster_id_survives_a_few_more_runs() -> None:
    before = {c.id for c in cluster(refund_runs() + shipping_runs(), 0.3)}
    after = cluster(refund_runs() + shipping_runs() + shipping_runs("s2", 2), 0.3)
    assert {c.id for c in after} == before


def test_large_synthetic_set_recovers_its_families() -> None:
    runs = synthetic(1200)
    clusters = cluster(runs, 0.3)
    big = [c for c in clusters if c.size >= 20]
    assert 10 <= len(big) <= 14  # twelve families
    for c in big:  # each big cluster is dominated by one family's action tool
        actions = [
            call.name
            for r in c.members
            for call in r.tool_calls
            if isinstance(call.arguments, dict) and "reason" in call.arguments
        ]
        top = max(set(actions), key=actions.count)
        assert actions.count(top) / len(actions) > 0.8


def test_tool_path_and_best_path() -> None:
    a = run("a", "t", ["find", "find", "fix", "fix", "find"])
    assert tool_path(a) == ("find", "fix", "find")
    runs = [
        run("1", "t", ["x", "y", "z"]),
        run("2", "t", ["x", "z"]),
        run("3", "t", ["x", "y", "z"]),
        run("4", "t", ["x", "z"]),
        run("5", "t", ["q"], success=False),
        run("6", "t", ["q"], success=False),
        run("7", "t", ["q"], success=False),
    ]
    assert best_path(runs) == ("x", "z")  # a tie in count goes to the shorter path
    assert best_path(runs[:3]) == ("x", "y", "z")
    assert best_path(runs[4:]) == ()
    assert best_path(refund_runs()) == ("find_order", "issue_refund")


def test_tool_graph_counts() -> None:
    runs = refund_runs()
    g = tool_graph(runs)
    e = g.edges["find_order", "issue_refund"]
    assert (e["count"], e["runs"], e["successes"], e["failures"]) == (6, 6, 3, 3)
    assert e["errors"] == 3 and e["success_rate"] == 0.5
    loop = g.edges["issue_refund", "issue_refund"]
    assert (loop["count"], loop["errors"], loop["failures"]) == (1, 1, 1)
    assert g.edges[START, "find_order"]["count"] == 7
    assert g.edges["escalate_ticket", END]["successes"] == 0
    assert g.nodes["issue_refund"]["calls"] == 8 and g.nodes["issue_refund"]["errors"] == 4
    data = to_json(g)
    assert json.loads(json.dumps(data)) == data
    assert {n["id"] for n in data["nodes"]} >= {START, END, "think"}


def test_unknown_outcomes_are_neither() -> None:
    g = tool_graph([run("u", "t", ["a"], success=None)])
    assert g.edges[START, "a"]["success_rate"] is None
    assert g.edges[START, "a"]["runs"] == 1


def test_mermaid_is_safe_and_bounded() -> None:
    hostile = ['a"]-->evil["x', "<script>", "end", "x|y", "../../etc/passwd"]
    runs = [run(f"h{i}", "t", [name, "ok_tool"]) for i, name in enumerate(hostile)]
    text = to_mermaid(tool_graph(runs), max_edges=25)
    assert text.startswith("flowchart LR\n")
    assert "<" not in text and "evil[" not in text
    for line in text.splitlines()[1:]:
        assert line.startswith("    ")
        assert line.count('"') % 2 == 0
    small = to_mermaid(tool_graph(synthetic(200)), max_edges=5)
    assert sum("-->" in line for line in small.splitlines()) == 5


def test_task_tokens_are_those_of_every_word_token_read_one_by_one() -> None:
    """task_tokens matches only word tokens without a decimal digit: the same words as reading
    every \\w+ token and dropping those with a digit, short ones, stopwords and names."""
    import json
    import random
    import re

    from evolver.cluster import _PLACEHOLDER, STOPWORDS, _proper, _stem
    from evolver.redact import redact
    from tests.evolver.conftest import AIRLINE

    def reference(text: str) -> frozenset[str]:
        clean = _PLACEHOLDER.sub(" ", redact(text or ""))
        out = set()
        for match in re.finditer(r"\w+", clean):
            tok = match.group(0).lower()
            if len(tok) < 3 or tok in STOPWORDS or any(c.isdigit() for c in tok):
                continue
            if not _proper(match, clean):
                out.add(_stem(tok))
        return frozenset(out)

    texts = ["", "İİ İs ab abc x²yz café_2 _foo foo_bar ①② Straße ÆØÅ naïve 42nd 3D models"]
    if AIRLINE.exists():
        texts += [r["info"]["task"]["instruction"] for r in json.loads(AIRLINE.read_text())]
    rng = random.Random(5)
    alphabet = "aZ9_ -.,İı²①éß\n\"'(:"
    texts += ["".join(rng.choice(alphabet) for _ in range(60)) for _ in range(3000)]
    for text in texts:
        assert task_tokens(text) == reference(text), text
