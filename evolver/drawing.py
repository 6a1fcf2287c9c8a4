"""Pictures of a tool graph: Mermaid for review pages, and a standalone SVG with its own layout.

The SVG's layered layout comes from `evolver.layout`; this module draws on it: edge width by
count, colour by success rate, dashes where most calls fail, the most confident path haloed.
Every piece of text is redacted and escaped. Same graph, same bytes.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

from evolver.graph import END, START
from evolver.graph_paths import confident_paths
from evolver.layout import DUMMY_W, Edge, _Layout, _layout
from evolver.redact import sanitize_inline

__all__ = ["edge_colour", "is_failing", "to_mermaid", "to_svg"]


def is_failing(data: Mapping[str, Any]) -> bool:
    """An edge most of whose calls fail, or that few runs through it succeed."""
    rate = data.get("success_rate")
    return _error_rate(data) >= 0.5 or (rate is not None and rate <= 0.2)


def _error_rate(data: Mapping[str, Any]) -> float:
    if data.get("error_rate") is not None:
        return float(data["error_rate"])
    return data.get("errors", 0) / data["count"] if data.get("count") else 0.0


def _pick(g: nx.DiGraph, max_edges: int) -> tuple[list[Edge], set[Edge]]:
    """The edges to draw (the best confident path first, then the busiest), sorted; and the
    edges of that path."""
    best = confident_paths(g, limit=1)
    path = set(zip(best[0].tools, best[0].tools[1:], strict=False)) if best else set()
    busiest = sorted(g.edges, key=lambda e: (-g.edges[e].get("count", 0), e))
    kept: list[Edge] = sorted(path)[:max_edges]
    kept += [e for e in busiest if e not in path][: max(max_edges - len(kept), 0)]
    return sorted(kept), path


def _percent(data: Mapping[str, Any]) -> str:
    rate = data.get("success_rate")
    return "outcome n/a" if rate is None else f"{rate:.0%} ok"


# --- Mermaid -----------------------------------------------------------------------------

_MERMAID_ESCAPES = str.maketrans({c: f"#{ord(c)};" for c in '#"[](){}<>|;&`'} | {'"': "#quot;"})


def _mm(text: str, limit: int = 60) -> str:
    """Text safe inside a quoted Mermaid label: redacted, one line, entity-escaped."""
    return sanitize_inline(text, limit).translate(_MERMAID_ESCAPES) or "tool"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def to_mermaid(g: nx.DiGraph, *, title: str | None = None, max_edges: int = 25) -> str:
    """A `flowchart LR` of the busiest transitions (count and success rate on each edge);
    failing edges dashed red, the most confident path bold green."""
    kept, path = _pick(g, max_edges)
    names = sorted({n for e in kept for n in e} - {START, END})
    ids = {START: "start_node", END: "end_node"} | {n: f"t{i}" for i, n in enumerate(names)}
    lines = []
    if title:
        lines += ["---", f'title: "{sanitize_inline(title, 100).replace(chr(34), chr(39))}"', "---"]
    lines.append("flowchart LR")
    for end in (START, END):
        if any(end in e for e in kept):
            runs = g.nodes[end].get("calls", 0)
            lines.append(f'    {ids[end]}(["{end}<br/>{_plural(runs, "run")}"])')
    for name in names:
        node = g.nodes[name]
        calls, errors = node.get("calls", 0), node.get("errors", 0)
        extra = f", {_plural(errors, 'error')}" if errors else ""
        lines.append(f'    {ids[name]}["{_mm(name)}<br/>{_plural(calls, "call")}{extra}"]')
    failing, bold = [], []
    for i, (src, dst) in enumerate(kept):
        data = g.edges[src, dst]
        label = f"{data.get('count', 0)}x, {_percent(data)}".translate(_MERMAID_ESCAPES)
        lines.append(f'    {ids[src]} -->|"{label}"| {ids[dst]}')
        if is_failing(data):
            failing.append(str(i))
        elif (src, dst) in path:
            bold.append(str(i))
    if failing:
        style = "stroke:#c92a2a,stroke-width:2px,stroke-dasharray:5 5"
        lines.append(f"    linkStyle {','.join(failing)} {style}")
    if bold:
        lines.append(f"    linkStyle {','.join(bold)} stroke:#1a9850,stroke-width:4px")
    errs = [ids[n] for n in names if g.nodes[n].get("errors", 0)]
    if errs:
        lines.append("    classDef erring stroke:#c92a2a,stroke-width:2px")
        lines.append(f"    class {','.join(errs)} erring")
    return "\n".join(lines) + "\n"


# --- SVG: style --------------------------------------------------------------------------

BOX_H, ROW_GAP, MARGIN, CHAR_W = 44.0, 92.0, 24.0, 6.6
BUCKETS = (  # success rate floor, colour, legend
    (0.8, "#1a9850", "80% or more of the runs through it succeed"),
    (0.5, "#d4a300", "50-79%"),
    (0.2, "#e8590c", "20-49%"),
    (0.0, "#c92a2a", "under 20%"),
)
UNKNOWN = "#8c8c8c"
_INK = {"#1a9850": "#11663a", "#d4a300": "#7a5e00", "#e8590c": "#a63d06", "#c92a2a": "#a11d1d"}
_XML_BAD = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def edge_colour(rate: float | None) -> str:
    """The colour of an edge with this success rate (grey when unknown)."""
    return UNKNOWN if rate is None else next(c for floor, c, _ in BUCKETS if rate >= floor)


def _x(text: str, limit: int = 200) -> str:
    """Text safe inside SVG: redacted, one line, XML-escaped."""
    return html.escape(_XML_BAD.sub("", sanitize_inline(text, limit)), quote=True)


# --- SVG: drawing ------------------------------------------------------------------------

Point = tuple[float, float]


def _bezier(p: Point, q: Point, t: float) -> Point:
    """The point at `t` on the vertical-tangent cubic from p to q that `_d` draws."""
    dy = (q[1] - p[1]) / 2
    s = 1 - t
    y = s**3 * p[1] + 3 * s * s * t * (p[1] + dy) + 3 * s * t * t * (q[1] - dy) + t**3 * q[1]
    return s**3 * p[0] + 3 * s * s * t * p[0] + 3 * s * t * t * q[0] + t**3 * q[0], y


def _d(points: list[Point]) -> str:
    out = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
    for p, q in zip(points, points[1:], strict=False):
        dy = (q[1] - p[1]) / 2
        if abs(p[0] - q[0]) < 0.05:
            out.append(f"L{q[0]:.1f},{q[1]:.1f}")
        else:
            out.append(
                f"C{p[0]:.1f},{p[1] + dy:.1f} {q[0]:.1f},{q[1] - dy:.1f} {q[0]:.1f},{q[1]:.1f}"
            )
    return " ".join(out)


def _free(box: tuple[float, float, float, float], taken: list[tuple[float, ...]]) -> bool:
    x, y, w, h = box
    return not any(x < a + c and a < x + w and y < b + d and b < y + h for a, b, c, d in taken)


def _tooltip(u: str, v: str, data: Mapping[str, Any]) -> str:
    """The edge's numbers and state summary, for hovering."""
    state = data.get("state") or {}
    parts = [
        f"{u} → {v}: {_plural(data.get('count', 0), 'transition')}, {_percent(data)}, "
        f"{_plural(data.get('errors', 0), 'error')}"
    ]
    if state.get("args"):
        parts.append("args: " + ", ".join(map(str, state["args"])))
    if state.get("arg_values"):
        parts.append("typical: " + json.dumps(state["arg_values"], sort_keys=True))
    if state.get("after"):
        parts.append("after: " + str(state["after"][0].get("summary", "")))
    return _x(". ".join(parts), 400)


@dataclass(frozen=True)
class _Frame:
    """Where things go: row tops, box widths, horizontal centres."""

    top: float
    width: dict[str, float]
    x: dict[str, float]
    layer: dict[str, int]

    def y(self, n: str) -> float:  # top of the node's row
        return self.top + self.layer[n] * (BOX_H + ROW_GAP)

    def port(self, n: str, bottom: bool, i: int, k: int) -> Point:
        w = self.width.get(n, 0.0)
        x = self.x[n] - w / 2 + w * (0.2 + 0.6 * (i + 0.5) / k)
        return round(x, 1), self.y(n) + (BOX_H if bottom else 0.0)


def _route(
    f: _Frame, lay: _Layout, e: Edge, ports: Mapping[tuple[Edge, int], Point]
) -> list[Point]:
    chain = lay.chains[e]
    pts = [ports[(e, 0)]]
    for d in chain[1:-1]:
        pts += [(f.x[d], f.y(d)), (f.x[d], f.y(d) + BOX_H)]
    pts.append(ports[(e, 1)])
    return pts if chain[0] == e[0] else pts[::-1]


def _ports(f: _Frame, lay: _Layout) -> dict[tuple[Edge, int], Point]:
    """Each edge's ends, spread along the box sides in the order of where they lead."""
    sides: dict[tuple[str, bool], list[tuple[float, Edge, int]]] = {}
    for e, chain in lay.chains.items():
        sides.setdefault((chain[0], True), []).append((f.x[chain[1]], e, 0))
        sides.setdefault((chain[-1], False), []).append((f.x[chain[-2]], e, 1))
    out = {}
    for (n, bottom), items in sorted(sides.items()):
        items.sort(key=lambda it: (it[0], it[1]))
        for i, (_, e, end) in enumerate(items):
            out[(e, end)] = f.port(n, bottom, i, len(items))
    return out


def _label(data: Mapping[str, Any]) -> str:
    text = f"{data.get('count', 0)}× · " + _percent(data).replace(" ok", "")
    return text + (f" · {data['errors']} err" if data.get("errors") else "")


def _width(text: str) -> float:
    return CHAR_W * len(text) + 4


def _edge(g: nx.DiGraph, e: Edge, d: str, spots: list[Point], how: dict[str, Any]) -> list[str]:
    """The path (with a halo on the confident path), and the label at the first free spot."""
    data = g.edges[e]
    colour = edge_colour(data.get("success_rate"))
    text = _label(data)
    w, h = _width(text), 14.0
    taken = how["taken"]
    spot = next((s for s in spots if _free((s[0] - w / 2, s[1] - h / 2, w, h), taken)), spots[0])
    taken.append((spot[0] - w / 2, spot[1] - h / 2, w, h))
    stroke = 1.2 + 5.3 * math.sqrt(data.get("count", 1) / how["most"])
    dash = ' stroke-dasharray="7 4"' if _error_rate(data) >= 0.5 else ""
    out = []
    if e in how["path"]:
        out.append(
            f'<path d="{d}" stroke="#1a9850" stroke-opacity="0.22" stroke-width="{stroke + 10:.1f}"'
            ' fill="none" stroke-linecap="round"/>'
        )
    out.append(
        f'<path d="{d}" stroke="{colour}" stroke-width="{stroke:.1f}" fill="none"{dash} '
        f'marker-end="url(#arrow-{colour[1:]})"><title>{_tooltip(*e, data)}</title></path>'
    )
    ink = _INK.get(colour, "#4a4a4a")
    back = (
        f'<rect x="{spot[0] - w / 2:.1f}" y="{spot[1] - h / 2:.1f}" width="{w:.1f}" '
        f'height="{h:.0f}" rx="3" fill="#fff" fill-opacity="0.88"/>'
    )
    at = f'x="{spot[0]:.1f}" y="{spot[1] + 4:.1f}"'
    return [*out, back + f'<text {at} class="label" fill="{ink}">{_x(text)}</text>']


def _box(g: nx.DiGraph, n: str, f: _Frame) -> str:
    """A tool's box with its call and error counts; START and END as dark pills."""
    calls, errors = g.nodes[n].get("calls", 0), g.nodes[n].get("errors", 0)
    w, x, y = f.width[n], f.x[n], f.y(n)
    if n in (START, END):
        style, sub, cls = 'fill="#2d3748" stroke="#2d3748" rx="22"', _plural(calls, "run"), " dark"
    else:
        edge = "#c92a2a" if errors else "#4a5568"
        style, cls = f'fill="#f7fafc" stroke="{edge}" rx="6"', ""
        sub = _plural(calls, "call") + (f" · {_plural(errors, 'error')}" if errors else "")
    limit = max(int((w - 12) / CHAR_W), 6)
    return (
        f'<g class="node{cls}"><title>{_x(f"{n}: {sub}", 300)}</title>'
        f'<rect x="{x - w / 2:.1f}" y="{y:.1f}" width="{w:.1f}" height="{BOX_H:.0f}" {style} '
        f'stroke-width="1.5"/><text x="{x:.1f}" y="{y + 19:.1f}" class="name">{_x(n, limit)}'
        f'</text><text x="{x:.1f}" y="{y + 34:.1f}" class="sub">{_x(sub)}</text></g>'
    )


_STYLE = (
    "<style>text{font-family:Helvetica,Arial,sans-serif}"
    ".label{font-size:11px;text-anchor:middle}.name{font-size:12.5px;font-weight:bold;"
    "fill:#1a202c;text-anchor:middle}.sub{font-size:11px;fill:#4a5568;text-anchor:middle}"
    ".dark .name{fill:#fff}.dark .sub{fill:#e2e8f0}.legend{font-size:11.5px;fill:#2d3748}</style>"
)


_W4 = ' stroke-width="4"'


def _legend(y: float, most: int) -> tuple[list[str], float]:
    """Two lines: the colour scale, then dashes, halo and width."""
    rows = [
        [(c, text, _W4) for _, c, text in BUCKETS] + [(UNKNOWN, "outcome unknown", _W4)],
        [
            (
                "#c92a2a",
                "dashed: half or more of the calls it leads to fail",
                _W4 + ' stroke-dasharray="7 4"',
            ),
            (
                "#1a9850",
                "halo: the most confident path",
                ' stroke-opacity="0.22" stroke-width="12"',
            ),
            (
                "#4a5568",
                f"width: transitions (thickest {most}); label: transitions · success · errors",
                _W4,
            ),
        ],
    ]
    out: list[str] = []
    right = 0.0
    for r, items in enumerate(rows):
        x, base = MARGIN, y + 22 * r
        for colour, text, extra in items:
            out.append(
                f'<line x1="{x:.0f}" y1="{base:.0f}" x2="{x + 26:.0f}" y2="{base:.0f}" '
                f'stroke="{colour}"{extra}/>'
            )
            out.append(
                f'<text x="{x + 32:.0f}" y="{base + 4:.0f}" class="legend">{_x(text)}</text>'
            )
            x += 48 + CHAR_W * len(text)
            right = max(right, x)
    return out, right


def to_svg(g: nx.DiGraph, *, title: str | None = None, max_edges: int = 40) -> str:
    """A standalone SVG of the busiest transitions, layered top to bottom from START: edge
    width by count, colour by success rate, dashed when most calls fail, confident path haloed."""
    kept, path = _pick(g, max_edges)
    nodes = {n for e in kept for n in e}
    loops = {u for u, v in kept if u == v}
    longest = max((len(sanitize_inline(n, 34)) for n in nodes), default=8)
    box_w = min(max(CHAR_W * longest + 24, 110.0), 250.0)
    width = {n: box_w for n in nodes}
    for n in loops:  # room on both sides (the layout is symmetric) for the loop and its label
        width[n] += 2 * (30 + _width(_label(g.edges[n, n])))
    lay = _layout(nodes, {e: int(g.edges[e].get("count", 1)) for e in kept}, width)
    top = MARGIN + (50.0 if title else 26.0)
    f = _Frame(top, {n: box_w for n in nodes}, {n: x + MARGIN for n, x in lay.x.items()}, lay.layer)
    ports = _ports(f, lay)
    how: dict[str, Any] = {
        "taken": [(f.x[n] - box_w / 2, f.y(n), box_w, BOX_H) for n in nodes],
        "most": max((g.edges[e].get("count", 1) for e in kept), default=1),
        "path": path,
    }
    drawn: list[list[str]] = []
    for e in sorted(kept, key=lambda e: (-g.edges[e].get("count", 0), e)):
        u, v = e
        if u == v:
            x0, y0 = f.x[u] + box_w / 2, f.y(u) + BOX_H / 2
            d = f"M{x0:.1f},{y0 - 9:.1f} C{x0 + 40:.1f},{y0 - 26:.1f} {x0 + 40:.1f},"
            d += f"{y0 + 26:.1f} {x0:.1f},{y0 + 9:.1f}"
            spots = [(x0 + 30 + _width(_label(g.edges[e])) / 2, y0)]
        elif e in lay.chains:
            pts = _route(f, lay, e, ports)
            d = _d(pts)
            gaps = [(p, q) for p, q in zip(pts, pts[1:], strict=False) if abs(p[1] - q[1]) > BOX_H]
            gaps = gaps or [(pts[0], pts[-1])]
            spots = [_bezier(p, q, t) for t in (0.5, 0.35, 0.65, 0.2, 0.8) for p, q in gaps]
        else:
            continue
        drawn.append(_edge(g, e, d, spots, how))
    halos = [p for parts in drawn for p in parts[:-2]]
    paths = [parts[-2] for parts in drawn]
    labels = [parts[-1] for parts in drawn]
    right = max((f.x[n] + width.get(n, DUMMY_W) / 2 for n in f.x), default=0.0)
    bottom = max((f.y(n) + BOX_H for n in nodes), default=top)
    legend, legend_w = _legend(bottom + 40, how["most"])
    w_all = max(right + MARGIN, legend_w + MARGIN)
    h_all = bottom + 40 + 22 * 2 + MARGIN
    runs = g.nodes[START].get("calls", 0) if START in g else 0
    tools = len(set(g.nodes) - {START, END})
    sub = (
        f"{_plural(runs, 'run')}. Showing {len(nodes - {START, END})} of {_plural(tools, 'tool')}"
        f" and the {len(kept)} busiest of {g.number_of_edges()} transitions; hover for state."
    )
    markers = "".join(
        f'<marker id="arrow-{c[1:]}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="10" '
        f'markerHeight="10" markerUnits="userSpaceOnUse" orient="auto">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{c}"/></marker>'
        for c in sorted({UNKNOWN, *(c for _, c, _ in BUCKETS)})
    )
    head = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w_all:.0f}" height="{h_all:.0f}" '
        f'viewBox="0 0 {w_all:.0f} {h_all:.0f}">',
        f"<title>{_x(title or 'tool graph', 120)}</title>",
        _STYLE,
        f"<defs>{markers}</defs>",
        f'<rect width="{w_all:.0f}" height="{h_all:.0f}" fill="#fff"/>',
    ]
    if title:
        head.append(
            f'<text x="{MARGIN}" y="{MARGIN + 10}" font-size="18" font-weight="bold" '
            f'fill="#1a202c">{_x(title, 120)}</text>'
        )
    head.append(f'<text x="{MARGIN}" y="{top - 14:.0f}" class="legend">{_x(sub)}</text>')
    body = [*halos, *paths, *(_box(g, n, f) for n in sorted(nodes)), *labels]
    return "\n".join([*head, *body, *legend, "</svg>"]) + "\n"
