"""Paths through the state graph: the confident ones, and where failed runs turn off them."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx

from evolver.changes import ErrorPattern
from evolver.graph import normalise_error
from evolver.model import Trajectory
from evolver.stategraph import _contains, _failed, _groups, _ok, _seq, state_graph

__all__ = ["ConfidentPath", "ErrorBranch", "confident_paths", "error_branches"]

# --- confident paths ---------------------------------------------------------------------


@dataclass(frozen=True)
class ConfidentPath:
    """A path whose every edge is confident; support: successful runs that followed it all."""

    tools: tuple[str, ...]
    support: int
    success_rate: float  # the lowest edge success rate along it


def _confident(g: nx.DiGraph, min_support: int, min_rate: float) -> nx.DiGraph:
    h = nx.DiGraph()
    for u, v, d in sorted(g.edges(data=True), key=lambda e: (e[0], e[1])):
        rate = d.get("success_rate")
        if (
            u != v
            and rate is not None
            and rate >= min_rate
            and d.get("successes", 0) >= min_support
        ):
            h.add_edge(u, v, rate=rate, support=d.get("successes", 0))
    return h


def _maximal_paths(h: nx.DiGraph, budget: int = 5000) -> list[tuple[str, ...]]:
    """Maximal simple paths of `h` from its entry nodes (then from uncovered nodes), bounded."""
    out: list[tuple[str, ...]] = []
    covered: set[str] = set()
    starts = sorted(n for n in h if h.in_degree(n) == 0)
    for node in [*starts, *(n for n in sorted(h) if n not in starts)]:
        if node in covered and node not in starts:
            continue
        stack: list[tuple[str, ...]] = [(node,)]
        while stack and len(out) < budget:
            path = stack.pop()
            covered.update(path)
            nxt = sorted((s for s in h.successors(path[-1]) if s not in path), reverse=True)
            if not nxt and len(path) > 1:
                out.append(path)
            stack.extend(path + (s,) for s in nxt)
    return out


def _stretches(seq: tuple[str, ...], h: nx.DiGraph, longest: int = 12) -> set[tuple[str, ...]]:
    """Every part (2 to `longest` tools) of `seq` that moves along edges of `h` only."""
    out: set[tuple[str, ...]] = set()
    start = 0
    for i in range(1, len(seq) + 1):
        if i == len(seq) or not h.has_edge(seq[i - 1], seq[i]):
            for a in range(start, i - 1):
                out.update(seq[a:b] for b in range(a + 2, min(i, a + longest) + 1))
            start = i
    return out


def _weakest(h: nx.DiGraph, path: tuple[str, ...], attr: str) -> Any:
    return min(h.edges[a, b][attr] for a, b in zip(path, path[1:], strict=False))


def confident_paths(
    source: nx.DiGraph | Sequence[Trajectory],
    *,
    min_support: int = 2,
    min_rate: float = 0.8,
    limit: int = 10,
) -> tuple[ConfidentPath, ...]:
    """Paths along edges with success rate ≥ min_rate and support ≥ min_support, best first.

    From runs: the stretches successful runs followed (support: how many runs followed all of
    it; only the longest stretch of equal support is kept). From a graph: maximal simple
    paths, support being the weakest edge's successes. Best: most transitions covered."""
    if isinstance(source, nx.DiGraph):
        h = _confident(source, min_support, min_rate)
        found = [
            ConfidentPath(p, _weakest(h, p, "support"), _weakest(h, p, "rate"))
            for p in _maximal_paths(h)
        ]
    else:
        h = _confident(state_graph(source), min_support, min_rate)
        support: Counter[tuple[str, ...]] = Counter()
        for run in _ok(source):
            support.update(_stretches(_seq(run), h))
        kept = sorted(c for c, n in support.items() if n >= min_support)
        found = [
            ConfidentPath(c, support[c], _weakest(h, c, "rate"))
            for c in kept
            if not any(
                len(o) > len(c) and support[o] == support[c] and _contains(o, c) for o in kept
            )
        ]
    ranked = sorted(
        set(found),
        key=lambda p: (-p.support * (len(p.tools) - 1), -p.support, -p.success_rate, p.tools),
    )
    return tuple(ranked[:limit])


# --- error branches ----------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorBranch:
    """Where failed runs leave the successful paths: after `prefix`, `taken`, not `expected`."""

    prefix: tuple[str, ...]
    expected: str  # what most successful runs with this prefix call next
    taken: str  # what the failed runs call instead
    failed_runs: int
    successful_runs: int  # successful runs that share the prefix and call `expected`
    errors: tuple[ErrorPattern, ...]  # errors the failed runs hit from the branch on
    run_ids: tuple[str, ...]  # the failed runs


def _error_patterns(hits: Mapping[tuple[str, str], list[str]]) -> tuple[ErrorPattern, ...]:
    ranked = sorted(hits, key=lambda k: (-len(set(hits[k])), -len(hits[k]), k))
    return tuple(
        ErrorPattern(tool=t, message=m, count=len(hits[(t, m)]), failed_runs=len(set(hits[(t, m)])))
        for t, m in ranked
    )


def error_branches(runs: Sequence[Trajectory]) -> tuple[ErrorBranch, ...]:
    """For each failed run, the longest prefix it shares with a successful run and where it
    turns off; grouped by (prefix, expected, taken), most failed runs first."""
    trie: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
    for run in _ok(runs):
        seq = _seq(run)
        for i in range(1, len(seq)):
            trie[seq[:i]][seq[i]] += 1
    found: dict[tuple[tuple[str, ...], str], list[str]] = defaultdict(list)
    errors: dict[tuple[tuple[str, ...], str], dict[tuple[str, str], list[str]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for run in _failed(runs):
        groups = _groups(run)
        seq = tuple(name for name, _ in groups)
        i = 1
        while i < len(seq) and seq[i] in trie.get(seq[:i], {}):
            i += 1
        if i == len(seq) or seq[:i] not in trie:
            continue  # it followed a successful path all the way, or no successful run at all
        key = (seq[:i], seq[i])
        found[key].append(run.id)
        for name, calls in groups[i:]:
            for call in calls:
                if call.error:
                    msg = normalise_error(call.error_text or call.result or "")
                    errors[key][(name, msg)].append(run.id)
    out = []
    for (prefix, taken), ids in found.items():
        nxt = trie[prefix]
        expected = min(nxt, key=lambda t: (-nxt[t], t))
        out.append(
            ErrorBranch(
                prefix,
                expected,
                taken,
                len(ids),
                nxt[expected],
                _error_patterns(errors[(prefix, taken)]),
                tuple(sorted(ids)),
            )
        )
    return tuple(sorted(out, key=lambda b: (-b.failed_runs, -b.successful_runs, b.prefix, b.taken)))
