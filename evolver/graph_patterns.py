"""Recurring shapes in runs: loops, prerequisite tools, composite procedures across clusters."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from evolver.cluster import unique_runs
from evolver.graph import END, START, is_helper
from evolver.model import ToolCall, Trajectory
from evolver.stategraph import _contains, _failed, _ok, _seq, _tool

__all__ = [
    "Composite",
    "Loop",
    "LoopPattern",
    "LoopReport",
    "Precondition",
    "RunLoops",
    "chains_of",
    "composites",
    "composites_from",
    "loops",
    "preconditions",
]

# --- loops -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loop:
    """One loop in a run: a tool repeated, the same call repeated, or two tools alternating."""

    kind: str  # "repeat" (≥3 in a row), "same-call" (identical tool and arguments), "oscillation"
    tools: tuple[str, ...]
    start: int  # index of its first call among the run's tool calls
    calls: int
    errors: int
    distinct_args: int  # different argument sets among those calls (1: the very same call)


@dataclass(frozen=True)
class RunLoops:
    """The loops of one run."""

    run_id: str
    succeeded: bool | None
    loops: tuple[Loop, ...]


@dataclass(frozen=True)
class LoopPattern:
    """A loop aggregated over runs (oscillations keyed by their sorted pair of tools)."""

    kind: str
    tools: tuple[str, ...]
    runs: int
    failed_runs: int
    occurrences: int
    calls: int
    errors: int


@dataclass(frozen=True)
class LoopReport:
    """Loops per run (runs with none are left out) and aggregated, most runs first."""

    runs: tuple[RunLoops, ...]
    patterns: tuple[LoopPattern, ...]


def _args(call: ToolCall) -> str:
    return json.dumps(call.arguments, sort_keys=True, default=str)


def _loop(kind: str, tools: tuple[str, ...], calls: Sequence[ToolCall], idx: list[int]) -> Loop:
    hit = [calls[k] for k in idx]
    errors = sum(c.error for c in hit)
    return Loop(kind, tools, idx[0], len(idx), errors, len({_args(c) for c in hit}))


def _run_loops(calls: Sequence[ToolCall]) -> list[Loop]:
    names = [_tool(c.name) for c in calls]
    out: list[Loop] = []
    i = 0
    while i < len(names):  # a tool repeated 3 or more times in a row
        j = i
        while j < len(names) and names[j] == names[i]:
            j += 1
        if j - i >= 3:
            out.append(_loop("repeat", (names[i],), calls, list(range(i, j))))
        i = j
    same: dict[tuple[str, str], list[int]] = defaultdict(list)
    for k, call in enumerate(calls):
        same[(names[k], _args(call))].append(k)
    out.extend(_loop("same-call", (n,), calls, idx) for (n, _), idx in same.items() if len(idx) > 1)
    i = 0
    while i < len(names) - 1:  # A B A B ...
        j = i + 2
        while names[i] != names[i + 1] and j < len(names) and names[j] == names[j - 2]:
            j += 1
        if names[i] != names[i + 1] and j - i >= 4:
            out.append(_loop("oscillation", (names[i], names[i + 1]), calls, list(range(i, j))))
            i = j - 1
        else:
            i += 1
    return sorted(out, key=lambda lp: (lp.start, lp.kind, lp.tools))


def loops(runs: Sequence[Trajectory]) -> LoopReport:
    """Repeated and cyclic calls per run, and the same aggregated over runs."""
    per_run: list[RunLoops] = []
    agg: dict[tuple[str, tuple[str, ...]], list[tuple[Trajectory, Loop]]] = defaultdict(list)
    for run in unique_runs(runs):
        found = _run_loops(run.tool_calls)
        if found:
            per_run.append(RunLoops(run.id, run.succeeded, tuple(found)))
        for lp in found:
            agg[
                (lp.kind, tuple(sorted(lp.tools)) if lp.kind == "oscillation" else lp.tools)
            ].append((run, lp))
    patterns = [
        LoopPattern(
            kind,
            tools,
            runs=len({r.id for r, _ in hits}),
            failed_runs=len({r.id for r, _ in hits if r.succeeded is False}),
            occurrences=len(hits),
            calls=sum(lp.calls for _, lp in hits),
            errors=sum(lp.errors for _, lp in hits),
        )
        for (kind, tools), hits in agg.items()
    ]
    patterns.sort(key=lambda p: (-p.runs, -p.failed_runs, -p.errors, p.kind, p.tools))
    return LoopReport(tuple(per_run), tuple(patterns))


# --- preconditions -----------------------------------------------------------------------


@dataclass(frozen=True)
class Precondition:
    """`before` comes before the first `tool` call in `confidence` of the successful runs
    that call `tool`; the failed runs that called `tool` without it are the evidence."""

    before: str
    tool: str
    support: int  # successful runs calling `tool` with `before` first
    confidence: float
    failed_with_tool: int
    violating_failures: tuple[str, ...]  # ids of failed runs that called `tool` without it


def _firsts(run: Trajectory) -> dict[str, int]:
    out: dict[str, int] = {}
    for k, call in enumerate(run.tool_calls):
        out.setdefault(_tool(call.name), k)
    return out


def preconditions(
    runs: Sequence[Trajectory], *, min_support: int = 3, min_confidence: float = 0.9
) -> tuple[Precondition, ...]:
    """Tools that successful runs call before another; most violating failures first."""
    with_tool: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    for run in _ok(runs):
        first = _firsts(run)
        with_tool.update(first.keys())
        pairs.update((x, y) for y in first for x in first if first[x] < first[y])
    failed = [(r.id, _firsts(r)) for r in _failed(runs)]
    out = []
    for (x, y), n in pairs.items():
        conf = n / with_tool[y]
        if n < min_support or conf < min_confidence or is_helper(x) or is_helper(y):
            continue
        calling = [(rid, f) for rid, f in failed if y in f]
        bad = tuple(rid for rid, f in calling if f.get(x, len(f) + 10**9) > f[y])
        out.append(Precondition(x, y, n, round(conf, 4), len(calling), tuple(sorted(bad))))
    return tuple(
        sorted(
            out,
            key=lambda p: (-len(p.violating_failures), -p.confidence, -p.support, p.before, p.tool),
        )
    )


# --- composites --------------------------------------------------------------------------


@dataclass(frozen=True)
class Composite:
    """A tool sequence fused by P(next | tool) in successful runs of several clusters."""

    tools: tuple[str, ...]
    clusters: tuple[str, ...]
    runs: int  # successful runs of those clusters that contain it
    confidence: float  # the weakest P(next | tool) along it, over those clusters


def _chains(
    seqs: Sequence[tuple[str, ...]], min_confidence: float, min_support: int
) -> dict[tuple[str, ...], float]:
    """Greedy fusion: from each tool follow its successor while P(B | A) > min_confidence;
    every part of at least two tools of each chain, with its weakest P."""
    follow: dict[str, Counter[str]] = defaultdict(Counter)
    for seq in seqs:
        for a, b in zip(seq, seq[1:], strict=False):
            follow[a][b] += 1
    best: dict[str, tuple[str, float]] = {}
    for a, nxt in follow.items():
        b = min(nxt, key=lambda t: (-nxt[t], t))
        p = nxt[b] / sum(nxt.values())
        if a != START and b != END and b != a and p > min_confidence and nxt[b] >= min_support:
            best[a] = (b, p)
    out: dict[tuple[str, ...], float] = {}
    for a in sorted(best):
        chain, probs = [a], []
        while chain[-1] in best and best[chain[-1]][0] not in chain:
            chain.append(best[chain[-1]][0])
            probs.append(best[chain[-2]][1])
        for i in range(len(chain) - 1):
            for j in range(i + 2, len(chain) + 1):
                out[tuple(chain[i:j])] = min(probs[i : j - 1])
    return out


Chains = Mapping[tuple[str, ...], tuple[float, int]]  # chain -> (weakest P, ok runs with it)


def chains_of(
    runs: Sequence[Trajectory],
    *,
    min_len: int = 2,
    min_confidence: float = 0.8,
    min_support: int = 2,
) -> dict[tuple[str, ...], tuple[float, int]]:
    """One cluster's fused chains of at least `min_len` tools, each with its weakest
    P(next | tool) and how many of the cluster's successful runs contain it: all that
    `composites_from` needs of the cluster, so it can be kept per cluster."""
    seqs = [_seq(r) for r in _ok(runs)]
    return {
        chain: (p, sum(1 for s in seqs if _contains(s, chain)))
        for chain, p in sorted(_chains(seqs, min_confidence, min_support).items())
        if len(chain) >= min_len
    }


def composites(
    runs_by_cluster: Mapping[str, Sequence[Trajectory]],
    *,
    min_clusters: int = 2,
    min_len: int = 2,
    min_confidence: float = 0.8,
    min_support: int = 2,
) -> tuple[Composite, ...]:
    """Composite procedures (MACRO tool transition fusion) recurring in ≥ min_clusters clusters,
    longest of equal cluster set kept; most clusters, then longest, first."""
    found = {
        cid: chains_of(rs, min_len=min_len, min_confidence=min_confidence, min_support=min_support)
        for cid, rs in sorted(runs_by_cluster.items())
    }
    return composites_from(found, min_clusters=min_clusters)


def composites_from(
    chains_by_cluster: Mapping[str, Chains], *, min_clusters: int = 2
) -> tuple[Composite, ...]:
    """`composites` from each cluster's `chains_of`."""
    seen: dict[tuple[str, ...], dict[str, tuple[float, int]]] = defaultdict(dict)
    for cid, chains in sorted(chains_by_cluster.items()):
        for chain, found in chains.items():
            seen[chain][cid] = found
    kept = {c: v for c, v in seen.items() if len(v) >= min_clusters}
    out = []
    for chain, where in sorted(kept.items()):
        if any(
            len(o) > len(chain) and set(kept[o]) == set(where) and _contains(o, chain) for o in kept
        ):
            continue
        n = sum(runs for _, runs in where.values())
        weakest = min(p for p, _ in where.values())
        out.append(Composite(chain, tuple(sorted(where)), n, round(weakest, 4)))
    return tuple(sorted(out, key=lambda c: (-len(c.clusters), -len(c.tools), -c.runs, c.tools)))
