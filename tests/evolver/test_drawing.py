"""Mermaid and SVG drawings of the tool graph: well-formed, safe, deterministic, readable."""

from __future__ import annotations

import random
import re
import xml.etree.ElementTree as ET

from evolver.drawing import edge_colour, is_failing, to_mermaid, to_svg
from evolver.graph import tool_graph
from evolver.layout import _crossings, _layout
from evolver.model import Trajectory
from evolver.stategraph import END, START, state_graph
from tests.evolver.conftest import run

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = ['say "hi"', "a --> b", "<script>alert(1)</script>", "pipe|name", "[x](y){z};#1", "&amp;"]


def family() -> list[Trajectory]:
    """Lookups then a refund (succeeds); lookups then a failing retry loop (fails)."""
    runs = [run(f"ok-{i}", f"t{i}", ["lookup", "refund"]) for i in range(4)]
    runs += [
        run(
            f"bad-{i}",
            f"u{i}",
            ["lookup", ("retry", {}, "Error: busy"), ("retry", {}, "Error: busy")],
            False,
        )
        for i in range(3)
    ]
    return runs


def hostile() -> list[Trajectory]:
    return [run(f"h{i}", f"t{i}", HOSTILE, i % 2 == 0) for i in range(3)]


def _mermaid_edges(text: str) -> list[str]:
    return [line for line in text.splitlines() if "-->|" in line]


def test_mermaid_marks_failing_and_confident_edges() -> None:
    g = state_graph(family())
    text = to_mermaid(g, title="Refunds")
    lines = text.splitlines()
    assert lines[:4] == ["---", 'title: "Refunds"', "---", "flowchart LR"]
    edges = _mermaid_edges(text)
    ids = {m[1]: m[0] for m in re.findall(r'(t\d+)\["([a-z]+)#lt;', text)} or {
        name: node for node, name in re.findall(r'(t\d+)\["([a-z_]+)<br/>', text)
    }
    assert set(ids) == {"lookup", "refund", "retry"}
    index = {line.strip(): i for i, line in enumerate(edges)}
    fail = index[f'{ids["lookup"]} -->|"3x, 0% ok"| {ids["retry"]}']
    good = index[f'{ids["lookup"]} -->|"4x, 100% ok"| {ids["refund"]}']
    styles = {line.split()[1]: line for line in lines if line.strip().startswith("linkStyle")}
    failing = next(v for v in styles.values() if "dasharray" in v)
    bold = next(v for v in styles.values() if "#1a9850" in v)
    assert str(fail) in failing.split()[1].split(",")
    assert str(good) in bold.split()[1].split(",")
    assert str(good) not in failing.split()[1].split(",")
    assert "retry<br/>6 calls, 6 errors" in text
    assert "class " in text and "erring" in text


def test_mermaid_keeps_the_busiest_edges() -> None:
    runs = [run(f"r{i}", f"t{i}", [f"tool{j}" for j in range(i % 7 + 1)]) for i in range(30)]
    text = to_mermaid(state_graph(runs), max_edges=5)
    assert len(_mermaid_edges(text)) == 5


def test_mermaid_is_safe_with_hostile_tool_names() -> None:
    text = to_mermaid(state_graph(hostile()), title='Evil "title"\n---\nx: y')
    assert "<script" not in text and "-->" not in "".join(re.findall(r'"[^"]*"', text))
    for line in text.splitlines()[4:]:
        line = re.sub(r"#(\d+|quot);", "", line.strip().replace("<br/>", " "))
        assert re.fullmatch(
            r'(flowchart LR|\w+\(\["[^"\[\]|<>]*"\]\)|t\d+\["[^"\[\]|<>(){};]*"\]'
            r'|\w+ -->\|"[^"|]*"\| \w+|linkStyle [\d,]+ [^"]+|classDef .+|class [\w,]+ erring)',
            line,
        ), line
    assert text.splitlines()[1] == "title: \"Evil 'title' --- x: y\""
    assert text.count("\n---\n") == 1


def test_mermaid_accepts_the_plain_tool_graph() -> None:
    text = to_mermaid(tool_graph(family()))
    assert "flowchart LR" in text and "start_node" in text


def _svg(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == f"{SVG}svg"
    return root


def _boxes(root: ET.Element) -> dict[str, tuple[float, float]]:
    """Tool name -> (x, y) of its box."""
    out = {}
    for group in root.iter(f"{SVG}g"):
        texts = [t.text for t in group.iter(f"{SVG}text")]
        rect = group.find(f"{SVG}rect")
        if rect is not None and texts:
            out[texts[0]] = (float(rect.get("x", 0)), float(rect.get("y", 0)))
    return out


def test_svg_is_well_formed_and_layered_from_start() -> None:
    g = state_graph(family())
    root = _svg(to_svg(g, title="Refunds"))
    boxes = _boxes(root)
    assert set(boxes) == {START, END, "lookup", "refund", "retry"}
    assert boxes[START][1] < boxes["lookup"][1] < boxes["refund"][1] < boxes[END][1]
    assert boxes["lookup"][1] < boxes["retry"][1] < boxes[END][1]
    paths = [p for p in root.iter(f"{SVG}path") if p.get("marker-end")]
    assert len(paths) == g.number_of_edges()
    colours = {p.findtext(f"{SVG}title").split(":")[0]: p.get("stroke") for p in paths}
    assert colours["lookup → refund"] == edge_colour(1.0) == "#1a9850"
    assert colours["lookup → retry"] == edge_colour(0.0)
    assert "state" not in colours  # tooltips carry the state summary, not raw attributes
    retry = next(p for p in paths if p.findtext(f"{SVG}title").startswith("retry → retry"))
    assert retry.get("stroke-dasharray")  # every call it leads to fails
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "Refunds" in texts and "4× · 100%" in texts and "6 calls · 6 errors" in texts
    assert "80% or more" in texts  # the legend


def test_svg_widths_follow_counts_and_max_edges_is_kept() -> None:
    runs = [run(f"r{i}", f"t{i}", [f"tool{j}" for j in range(i % 9 + 1)]) for i in range(40)]
    g = state_graph(runs)
    root = _svg(to_svg(g, max_edges=6))
    paths = [p for p in root.iter(f"{SVG}path") if p.get("marker-end")]
    assert len(paths) == 6
    width = {p.findtext(f"{SVG}title").split(":")[0]: float(p.get("stroke-width")) for p in paths}
    assert width[f"{START} → tool0"] == max(width.values())
    busiest = sorted(g.edges, key=lambda e: -g.edges[e]["count"])[:6]
    assert set(width) == {f"{u} → {v}" for u, v in busiest}
    by_count = sorted(busiest, key=lambda e: g.edges[e]["count"])
    assert [width[f"{u} → {v}"] for u, v in by_count] == sorted(width.values())


def test_svg_is_safe_with_hostile_names() -> None:
    text = to_svg(state_graph(hostile()), title="<b>&'\"</b>")
    root = _svg(text)
    assert not any(el.tag.endswith("script") for el in root.iter())
    assert "<script" not in text and "<b>" not in text
    for el in root.iter():
        for value in [el.text or "", *el.attrib.values()]:
            assert "<" not in value and ">" not in value


def test_drawings_are_deterministic() -> None:
    runs = family() + hostile()
    shuffled = runs[:]
    random.Random(2).shuffle(shuffled)
    a, b = state_graph(runs), state_graph(shuffled)
    assert to_svg(a, title="x") == to_svg(b, title="x")
    assert to_mermaid(a) == to_mermaid(b)


def test_barycentre_ordering_removes_avoidable_crossings() -> None:
    # two parallel lanes whose depth-first order starts them crossed
    weight = {
        (START, "a"): 5,
        (START, "b"): 4,
        ("a", "d"): 5,
        ("b", "c"): 4,
        ("c", "f"): 4,
        ("d", "e"): 5,
        ("e", END): 5,
        ("f", END): 4,
        ("a", "f"): 1,
    }
    nodes = {n for e in weight for n in e}
    lay = _layout(nodes, weight, {n: 100.0 for n in nodes})
    links = [(x, y) for ch in lay.chains.values() for x, y in zip(ch, ch[1:], strict=False)]
    assert _crossings(lay.order, links) == 0
    assert lay.layer[START] == 0 and lay.layer[END] == max(lay.layer.values())
    xs = [lay.x[n] for row in lay.order for n in row]
    assert len(set(xs)) > 1


def test_cycles_are_drawn() -> None:
    runs = [run(f"c{i}", f"t{i}", ["a", "b", "a", "b", "c"], i % 2 == 0) for i in range(4)]
    g = state_graph(runs)
    root = _svg(to_svg(g))
    drawn = {
        p.findtext(f"{SVG}title").split(":")[0]
        for p in root.iter(f"{SVG}path")
        if p.get("marker-end")
    }
    assert {"a → b", "b → a", "b → c"} <= drawn


def test_failing_rule() -> None:
    assert is_failing({"count": 4, "errors": 2, "success_rate": 0.9})
    assert is_failing({"count": 4, "errors": 0, "success_rate": 0.2})
    assert not is_failing({"count": 4, "errors": 1, "success_rate": 0.5})
    assert not is_failing({"count": 4, "errors": 0, "success_rate": None})


def test_empty_and_tool_less_graphs_still_draw() -> None:
    for runs in ([], [run("quiet", "just chat", [])]):
        g = state_graph(runs)
        root = _svg(to_svg(g))
        assert len([p for p in root.iter(f"{SVG}path") if p.get("marker-end")]) == len(runs)
        assert to_mermaid(g).startswith("flowchart LR\n")
