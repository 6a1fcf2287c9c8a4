"""A tool graph whose edges carry state (SIT-Graph), and what it shows about a group of runs.

Edges count transitions and outcomes and summarise, redacted, what typically holds at that
point: the arguments the next call gets and the shape of the result before it. The analyses
find confident paths, where failures branch off, loops, prerequisites and composite
procedures shared by clusters (MACRO's tool transition fusion). Pure and deterministic.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from evolver.changes import ErrorPattern
from evolver.cluster import unique_runs
from evolver.graph import END, START, normalise_error
from evolver.model import ToolCall, Trajectory
from evolver.redact import redact, sanitize_inline

__all__ = [
    "END",
    "START",
    "Composite",
    "ConfidentPath",
    "ErrorBranch",
    "Loop",
    "LoopPattern",
    "LoopReport",
    "Precondition",
    "RunLoops",
    "composites",
    "confident_paths",
    "error_branches",
    "loops",
    "preconditions",
    "result_summary",
    "state_graph",
    "to_graphml",
    "to_json",
]

MAX_KEYS = 8  # keys shown in a result shape
MAX_VALUES = 3  # typical values kept per key
_SENSITIVE_KEY = re.compile(
    r"(?i)(?:id|ids|uuid|guid)$|name|mail|phone|mobile|addr|street|zip|postcode|postal|dob|birth"
    r"|ssn|passport|password|passwd|passphrase|pwd|token|secret|key|card|iban|account|credential"
    r"|auth|session|cookie|signature|^ip$"
)
_MIXED_TOKEN = re.compile(r"(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]+")  # HAT136, user_3668, 2a-f
_LONG_NUMBER = re.compile(r"\d{4}")


def _tool(name: str) -> str:
    return redact(name)


def _key(key: Any) -> str:
    """A key as shown: redacted and one line; "" for keys that look like ids (W1234, HAT136)."""
    text = str(key)
    if _LONG_NUMBER.search(text) or _MIXED_TOKEN.fullmatch(text):
        return ""
    return sanitize_inline(text, 40).replace('"', "'")


def _enum_like(key: str, value: Any) -> str | None:
    """`value` as text when it is a short, non-identifying, enum-like scalar, else None."""
    if _SENSITIVE_KEY.search(str(key)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        text = repr(value)
        return text if sum(ch.isdigit() for ch in text) <= 3 else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not 0 < len(text) <= 40 or len(text.split()) > 6 or any(ch in text for ch in "@/\\:"):
        return None
    if _LONG_NUMBER.search(text) or _MIXED_TOKEN.search(text) or redact(text) != text:
        return None
    return text if sanitize_inline(text, 40) == text and '"' not in text else None


def _shape(data: dict[str, Any]) -> str:
    """The keys of a JSON object, sorted, at most MAX_KEYS (id-like keys only counted)."""
    keys = sorted({_key(k) for k in data} - {""})[:MAX_KEYS]
    more = f", +{len(data) - len(keys)}" if len(data) > len(keys) else ""
    return "{" + ", ".join(keys) + more + "}"


def _parse(result: str | None) -> Any:
    try:
        return json.loads(result or "")
    except ValueError:
        return None


def result_summary(call: ToolCall) -> str:
    """A short, redacted, id-free summary of a call's result: its shape, or the error."""
    if call.error:
        return "error: " + normalise_error(call.error_text or call.result or "")
    if not (call.result or "").strip():
        return "empty"
    data = _parse(call.result)
    if isinstance(data, dict):
        return _shape(data)
    if isinstance(data, list):
        first = data[0] if data else None
        inner = _shape(first) if isinstance(first, dict) else type(first).__name__
        return f"list of {inner}" if data else "empty list"
    if isinstance(data, bool | int | float):
        return "number" if not isinstance(data, bool) else "true/false"
    text = data if isinstance(data, str) else call.result or ""
    return "text: " + normalise_error(text)[:80]


@dataclass
class _Values:
    """Scalar values seen under each key, with the runs and tasks they came from."""

    runs: dict[str, dict[str, set[str]]]
    tasks: dict[str, dict[str, set[str]]]

    @classmethod
    def new(cls) -> _Values:
        return cls(defaultdict(lambda: defaultdict(set)), defaultdict(lambda: defaultdict(set)))

    def add(self, data: Any, run: Trajectory) -> None:
        if not isinstance(data, dict):
            return
        for key, value in data.items():
            text = _enum_like(str(key), value)
            if text is not None and _key(key) == str(key):
                self.runs[_key(key)][text].add(run.id)
                self.tasks[_key(key)][text].add(run.task)

    def typical(self, keys: Iterable[str]) -> dict[str, list[str]]:
        """Per key, the values that recur across runs of different tasks, most runs first."""
        out: dict[str, list[str]] = {}
        for key in sorted(keys):
            seen = self.runs.get(key, {})
            good = [v for v in seen if len(seen[v]) >= 2 and len(self.tasks[key][v]) >= 2]
            if good:
                out[key] = sorted(good, key=lambda v: (-len(seen[v]), v))[:MAX_VALUES]
        return out


@dataclass
class _Edge:
    count: int = 0
    errors: int = 0
    runs: set[str] = field(default_factory=set)
    ok: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    arg_keys: Counter[str] = field(default_factory=Counter)
    after: Counter[str] = field(default_factory=Counter)
    args: _Values = field(default_factory=_Values.new)
    results: _Values = field(default_factory=_Values.new)

    def observe(self, run: Trajectory, prev: ToolCall | None, nxt: ToolCall | None) -> None:
        """Count one transition of `run` from the call `prev` into the call `nxt`."""
        self.count += 1
        self.runs.add(run.id)
        if run.succeeded is not None:
            (self.ok if run.succeeded else self.failed).add(run.id)
        if nxt is not None:
            self.errors += int(nxt.error)
            if isinstance(nxt.arguments, dict):
                self.arg_keys.update({_key(k) for k in nxt.arguments} - {""})
                self.args.add(nxt.arguments, run)
        if prev is not None:
            self.after[result_summary(prev)] += 1
            if not prev.error:
                self.results.add(_parse(prev.result), run)


def _state(e: _Edge) -> dict[str, Any]:
    keys = sorted(k for k, n in e.arg_keys.items() if 2 * n >= e.count)
    top = sorted(e.after.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    return {
        "args": keys,
        "arg_values": e.args.typical(keys),
        "after": [{"summary": s, "count": n} for s, n in top],
        "after_values": dict(list(e.results.typical(e.results.runs).items())[:MAX_KEYS]),
    }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def state_graph(runs: Sequence[Trajectory]) -> nx.DiGraph:
    """Tools plus START and END as nodes; each observed transition an edge with state."""
    edges: dict[tuple[str, str], _Edge] = defaultdict(_Edge)
    nodes: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"calls": 0, "errors": 0, "runs": set(), "ok": set(), "failed": set()}
    )
    for run in unique_runs(runs):
        calls: list[ToolCall | None] = [None, *run.tool_calls, None]
        names = [START, *(_tool(c.name) for c in run.tool_calls), END]
        for name, call in zip(names, calls, strict=True):
            node = nodes[name]
            node["calls"] += 1
            node["errors"] += int(call.error) if call else 0
            node["runs"].add(run.id)
            if run.succeeded is not None:
                node["ok" if run.succeeded else "failed"].add(run.id)
        for pos in range(1, len(names)):
            edges[(names[pos - 1], names[pos])].observe(run, calls[pos - 1], calls[pos])
    g = nx.DiGraph()
    for name in sorted(nodes):
        n = nodes[name]
        g.add_node(
            name,
            calls=n["calls"],
            errors=n["errors"],
            runs=len(n["runs"]),
            successes=len(n["ok"]),
            failures=len(n["failed"]),
        )
    for src, dst in sorted(edges):
        e = edges[(src, dst)]
        g.add_edge(
            src,
            dst,
            count=e.count,
            runs=len(e.runs),
            successes=len(e.ok),
            failures=len(e.failed),
            success_rate=_rate(len(e.ok), len(e.ok) + len(e.failed)),
            errors=e.errors,
            error_rate=_rate(e.errors, e.count),
            state=_state(e),
        )
    return g


# --- sequences ---------------------------------------------------------------------------


def _groups(run: Trajectory) -> list[tuple[str, list[ToolCall]]]:
    """START, the tools in order with consecutive repeats merged (keeping the calls), END."""
    out: list[tuple[str, list[ToolCall]]] = [(START, [])]
    for call in run.tool_calls:
        name = _tool(call.name)
        if out[-1][0] == name:
            out[-1][1].append(call)
        else:
            out.append((name, [call]))
    return [*out, (END, [])]


def _seq(run: Trajectory) -> tuple[str, ...]:
    return tuple(name for name, _ in _groups(run))


def _contains(seq: Sequence[str], part: Sequence[str]) -> bool:
    n = len(part)
    return any(tuple(seq[i : i + n]) == tuple(part) for i in range(len(seq) - n + 1))


def _ok(runs: Sequence[Trajectory]) -> list[Trajectory]:
    return [r for r in unique_runs(runs) if r.succeeded is True]


def _failed(runs: Sequence[Trajectory]) -> list[Trajectory]:
    return [r for r in unique_runs(runs) if r.succeeded is False]


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
        if n < min_support or conf < min_confidence:
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
    seen: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
    seqs = {cid: [_seq(r) for r in _ok(rs)] for cid, rs in sorted(runs_by_cluster.items())}
    for cid, cseqs in seqs.items():
        for chain, p in _chains(cseqs, min_confidence, min_support).items():
            if len(chain) >= min_len:
                seen[chain][cid] = p
    kept = {c: v for c, v in seen.items() if len(v) >= min_clusters}
    out = []
    for chain, where in sorted(kept.items()):
        if any(
            len(o) > len(chain) and set(kept[o]) == set(where) and _contains(o, chain) for o in kept
        ):
            continue
        n = sum(1 for cid in where for s in seqs[cid] if _contains(s, chain))
        out.append(Composite(chain, tuple(sorted(where)), n, round(min(where.values()), 4)))
    return tuple(sorted(out, key=lambda c: (-len(c.clusters), -len(c.tools), -c.runs, c.tools)))


# --- export ------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(v) for v in value]
        return sorted(items, key=json.dumps) if isinstance(value, set | frozenset) else items
    return value


def to_json(g: nx.DiGraph) -> dict[str, Any]:
    """Node-link data with plain JSON types, nodes and edges sorted, keys sorted."""
    return {
        "directed": True,
        "multigraph": False,
        "graph": _plain(dict(g.graph)),
        "nodes": [{"id": n, **_plain(g.nodes[n])} for n in sorted(g.nodes)],
        "edges": [{"source": u, "target": v, **_plain(g.edges[u, v])} for u, v in sorted(g.edges)],
    }


def _scalar(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key in sorted(attrs):
        value = attrs[key]
        if value is None:
            continue
        if isinstance(value, Mapping | list | tuple | set | frozenset):
            value = json.dumps(_plain(value), sort_keys=True, ensure_ascii=False)
        out[key] = value
    return out


def to_graphml(g: nx.DiGraph) -> str:
    """GraphML text; non-scalar attributes (such as `state`) as JSON strings, None left out."""
    h = nx.DiGraph()
    h.add_nodes_from((n, _scalar(g.nodes[n])) for n in sorted(g.nodes))
    h.add_edges_from((u, v, _scalar(g.edges[u, v])) for u, v in sorted(g.edges))
    return "\n".join(nx.generate_graphml(h)) + "\n"
