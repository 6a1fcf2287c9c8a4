"""Where the SVG's boxes go: a layered (Sugiyama-style) layout of a tool graph, computed here.

Cycles broken by a depth-first search from START, longest-path layers, dummy points on long
edges, barycentre ordering to reduce crossings, then a few passes that align nodes with their
neighbours. Same edges and widths, same layout.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import networkx as nx

from evolver.graph import END, START

__all__ = ["DUMMY_W", "NODE_GAP", "Edge"]

Edge = tuple[str, str]
NODE_GAP, DUMMY_W = 30.0, 12.0  # space between boxes in a row; width of a dummy point


def _dummy(n: str) -> bool:
    return n.startswith("\x00")


@dataclass
class _Layout:
    layer: dict[str, int]  # row of each node and dummy point, START at the top
    order: list[list[str]]  # per row, left to right (dummy points start with NUL)
    x: dict[str, float]  # horizontal centres
    chains: dict[Edge, list[str]]  # each edge's points from its upper to its lower end


def _search(nodes: set[str], weight: Mapping[Edge, int]) -> tuple[list[str], set[Edge]]:
    """Depth-first from START (then from unreached nodes by name), busiest edges first:
    the discovery order, and the back edges that close cycles."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for (u, v), _ in sorted(weight.items(), key=lambda kv: (-kv[1], kv[0])):
        if u != v:
            succ[u].append(v)
    order: list[str] = []
    back: set[Edge] = set()
    state: dict[str, int] = {}
    for root in [START, *sorted(nodes - {START, END}), END]:
        if root in state or root not in nodes:
            continue
        state[root] = 1
        order.append(root)
        stack = [(root, iter(succ[root]))]
        while stack:
            node, todo = stack[-1]
            for nxt in todo:
                if state.get(nxt) == 1:
                    back.add((node, nxt))
                elif nxt not in state:
                    state[nxt] = 1
                    order.append(nxt)
                    stack.append((nxt, iter(succ[nxt])))
                    break
            else:
                state[node] = 2
                stack.pop()
    return order, back


def _layers(found: list[str], dag: nx.DiGraph) -> dict[str, int]:
    """Longest-path rows; END on the last row; other sources just above their first successor."""
    rank = {n: i for i, n in enumerate(found)}
    layer: dict[str, int] = {}
    for n in nx.lexicographical_topological_sort(dag, key=lambda n: rank[n]):
        layer[n] = max((layer[p] + 1 for p in dag.predecessors(n)), default=0)
    if END in layer and len(layer) > 1:
        layer[END] = max(v for n, v in layer.items() if n != END) + 1
    for n in found:
        if n not in (START, END) and not dag.in_degree(n) and dag.out_degree(n):
            layer[n] = max(min(layer[s] for s in dag.successors(n)) - 1, int(START in layer))
    return layer


def _crossings(order: list[list[str]], links: Iterable[Edge]) -> int:
    """How many pairs of links between the same two rows cross."""
    pos = {n: (i, j) for i, row in enumerate(order) for j, n in enumerate(row)}
    by_gap: dict[int, list[tuple[int, int]]] = {}
    for a, b in links:
        by_gap.setdefault(pos[a][0], []).append((pos[a][1], pos[b][1]))
    return sum(
        1
        for pairs in by_gap.values()
        for i, (a1, b1) in enumerate(pairs)
        for a2, b2 in pairs[i + 1 :]
        if (a1 - a2) * (b1 - b2) < 0
    )


Near = Mapping[str, list[tuple[str, int]]]


def _mean(n: str, near: Near, pos: Mapping[str, float]) -> float:
    total = sum(w for _, w in near[n])
    return sum(pos[m] * w for m, w in near[n]) / total if total else pos[n]


def _layout(nodes: set[str], weight: Mapping[Edge, int], width: Mapping[str, float]) -> _Layout:
    """Rows, order within rows (barycentre sweeps, fewest crossings kept) and x positions."""
    found, back = _search(nodes, weight)
    dag = nx.DiGraph()
    dag.add_nodes_from(found)
    dag.add_edges_from((v, u) if (u, v) in back else (u, v) for u, v in weight if u != v)
    layer = _layers(found, dag)
    rank = {n: float(i) for i, n in enumerate(found)}
    chains: dict[Edge, list[str]] = {}
    link_w: dict[Edge, int] = {}
    for k, (u, v) in enumerate(sorted(weight)):
        a, b = (v, u) if (u, v) in back else (u, v)
        if u == v or layer[a] >= layer[b]:
            continue
        chain = [a] + [f"\x00{k}:{i}" for i in range(layer[a] + 1, layer[b])] + [b]
        for i, d in enumerate(chain[1:-1]):
            layer[d], rank[d] = layer[a] + 1 + i, rank[a] + (rank[b] + 1) / 1000
        chains[(u, v)] = chain
        for x, y in zip(chain, chain[1:], strict=False):
            link_w[(x, y)] = link_w.get((x, y), 0) + weight[(u, v)]
    order = [
        sorted((n for n in layer if layer[n] == i), key=lambda n: (rank[n], n))
        for i in range(max(layer.values(), default=-1) + 1)
    ]
    up: dict[str, list[tuple[str, int]]] = {n: [] for n in layer}
    down: dict[str, list[tuple[str, int]]] = {n: [] for n in layer}
    for (x, y), w in sorted(link_w.items()):
        down[x].append((y, w))
        up[y].append((x, w))
    best, fewest = [list(row) for row in order], _crossings(order, link_w)
    for sweep in range(16):
        near = up if sweep % 2 == 0 else down
        for i in range(1, len(order)) if sweep % 2 == 0 else range(len(order) - 2, -1, -1):
            pos = {n: float(j) for row in order for j, n in enumerate(row)}
            order[i].sort(key=lambda n: (_mean(n, near, pos), pos[n], n))
        crossings = _crossings(order, link_w)
        if crossings < fewest:
            best, fewest = [list(row) for row in order], crossings
    return _Layout(layer, best, _positions(best, up, down, width), chains)


def _positions(
    order: list[list[str]], up: Near, down: Near, width: Mapping[str, float]
) -> dict[str, float]:
    """Horizontal centres: packed, then pulled towards their neighbours without overlapping."""

    def gap(a: str, b: str) -> float:
        space = 8.0 if _dummy(a) or _dummy(b) else NODE_GAP
        return (width.get(a, DUMMY_W) + width.get(b, DUMMY_W)) / 2 + space

    x: dict[str, float] = {}
    for row in order:
        for i, n in enumerate(row):
            x[n] = x[row[i - 1]] + gap(row[i - 1], n) if i else 0.0
    for sweep in range(12):
        for row in order if sweep % 2 == 0 else order[::-1]:
            want = {n: _mean(n, up if sweep % 2 == 0 else down, x) for n in row}
            fwd: list[float] = []
            for i, n in enumerate(row):
                fwd.append(max(want[n], fwd[-1] + gap(row[i - 1], n)) if i else want[n])
            bwd = list(fwd)
            for i in range(len(row) - 1, -1, -1):
                last = i == len(row) - 1
                bwd[i] = (
                    want[row[i]]
                    if last
                    else min(want[row[i]], bwd[i + 1] - gap(row[i], row[i + 1]))
                )
            for i, n in enumerate(row):
                x[n] = (fwd[i] + bwd[i]) / 2
    low = min((x[n] - width.get(n, DUMMY_W) / 2 for n in x), default=0.0)
    return {n: round(v - low, 2) for n, v in x.items()}
