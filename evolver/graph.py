"""Tool-level evidence: the transition graph, the paths runs took, and the errors they hit.

The graph is built with networkx so it can be mined further; rendered as Mermaid for review
pages and as node-link JSON for tools. Error patterns and fingerprints feed the Evidence.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import networkx as nx

from evolver.changes import ErrorPattern, Evidence
from evolver.model import Trajectory
from evolver.naming import generalise, kinds_marked
from evolver.redact import redact, sanitize_inline
from evolver.skilldoc import slugify

__all__ = [
    "END",
    "HELPER_TOOLS",
    "START",
    "Transitions",
    "best_path",
    "error_patterns",
    "evidence",
    "changes_state",
    "fingerprint",
    "is_helper",
    "normalise_error",
    "path_counts",
    "recovered_errors",
    "to_json",
    "to_mermaid",
    "tool_graph",
    "tool_path",
    "transitions",
]

START = "START"
END = "END"
# Reasoning aids, not steps of a task: no procedure, precondition or shared step names them.
HELPER_TOOLS = frozenset({"skill", "think", "calculate", "calculator", "reason", "plan"})
# A tool whose name starts with one of these reads state; any other (that is no helper) may
# change it: cancel_order, update_reservation_flights, POST Observation.
_QUERY_WORDS = "get search list find read check calculate think lookup fetch query view"
_QUERY_PREFIXES = frozenset(_QUERY_WORDS.split())


@lru_cache(maxsize=4096)  # asked for every call of every run, of a few dozen tool names
def is_helper(tool: str) -> bool:
    """True for a reasoning aid (think, calculate, ...), whatever its spelling."""
    return slugify(tool) in HELPER_TOOLS


@lru_cache(maxsize=4096)
def changes_state(tool: str) -> bool:
    """True for a tool that may change state: neither a reasoning aid nor named as a query."""
    return not is_helper(tool) and slugify(tool).split("-")[0] not in _QUERY_PREFIXES


def tool_path(run: Trajectory) -> tuple[str, ...]:
    """Tool names in call order, consecutive repeats collapsed."""
    path: list[str] = []
    for call in run.tool_calls:
        if not path or path[-1] != call.name:
            path.append(call.name)
    return tuple(path)


def path_counts(runs: Iterable[Trajectory]) -> Counter[tuple[str, ...]]:
    """How many successful runs followed each (collapsed, non-empty) path."""
    counts: Counter[tuple[str, ...]] = Counter()
    for run in runs:
        if run.succeeded is True:
            path = tool_path(run)
            if path:
                counts[path] += 1
    return counts


def best_path(runs: Iterable[Trajectory]) -> tuple[str, ...]:
    """The path most successful runs followed (ties: shorter, then lexicographic); () if none."""
    counts = path_counts(runs)
    if not counts:
        return ()
    return min(counts, key=lambda p: (-counts[p], len(p), p))


def tool_graph(trajectories: Sequence[Trajectory]) -> nx.DiGraph:
    """Directed graph of observed tool transitions with counts and outcomes per edge and node."""
    edges: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"count": 0, "errors": 0, "runs": set(), "ok": set(), "failed": set()}
    )
    nodes: dict[str, Counter[str]] = defaultdict(Counter)
    for index, run in enumerate(sorted(trajectories, key=lambda r: r.id)):
        key = f"{run.id}\x00{index}"
        calls = run.tool_calls
        names = [START] + [c.name for c in calls] + [END]
        flags = [False] + [c.error for c in calls] + [False]
        nodes[START]["calls"] += 1
        nodes[END]["calls"] += 1
        for call in calls:
            nodes[call.name]["calls"] += 1
            nodes[call.name]["errors"] += int(call.error)
        for pos in range(1, len(names)):
            edge = edges[(names[pos - 1], names[pos])]
            edge["count"] += 1
            edge["errors"] += int(flags[pos])
            edge["runs"].add(key)
            if run.succeeded is True:
                edge["ok"].add(key)
            elif run.succeeded is False:
                edge["failed"].add(key)
    graph = nx.DiGraph()
    for name in sorted(nodes):
        graph.add_node(name, calls=nodes[name]["calls"], errors=nodes[name]["errors"])
    for src, dst in sorted(edges):
        e = edges[(src, dst)]
        known = len(e["ok"]) + len(e["failed"])
        graph.add_edge(
            src,
            dst,
            count=e["count"],
            runs=len(e["runs"]),
            successes=len(e["ok"]),
            failures=len(e["failed"]),
            errors=e["errors"],
            success_rate=round(len(e["ok"]) / known, 4) if known else None,
        )
    return graph


@dataclass
class Transitions:
    """The tool graph's counts, summed over runs: calls and errors per tool, and per transition
    its count, the runs that took it, of them successful and failed ones, and its errors.
    Every figure adds up run by run, so a store can keep a cluster's and add new runs to it."""

    nodes: dict[str, list[int]] = field(default_factory=dict)  # tool -> [calls, errors]
    edges: dict[tuple[str, str], list[int]] = field(
        default_factory=dict
    )  # [count, runs, ok, failed, errors]

    def add(self, other: Transitions) -> Transitions:
        """Add `other`'s counts to these (in place); returns self."""
        for name, (calls, errors) in other.nodes.items():
            mine = self.nodes.setdefault(name, [0, 0])
            mine[0] += calls
            mine[1] += errors
        for edge, counts in other.edges.items():
            mine = self.edges.setdefault(edge, [0, 0, 0, 0, 0])
            for i, n in enumerate(counts):
                mine[i] += n
        return self

    def subtract(self, other: Transitions) -> Transitions:
        """Take `other`'s counts out of these (in place), e.g. a run's share before its outcome
        changed; a tool or transition left with no counts is dropped, as if never seen."""
        for name, counts in other.nodes.items():
            _take_out(self.nodes, name, counts)
        for edge, counts in other.edges.items():
            _take_out(self.edges, edge, counts)
        return self

    def add_run(self, run: Trajectory) -> Transitions:
        """Add one run's share (in place, as `add(transitions(run))`); returns self."""
        return _add_run(self, run)

    def to_json(self) -> dict[str, Any]:
        return {
            "nodes": {k: list(v) for k, v in sorted(self.nodes.items())},
            "edges": [[a, b, *v] for (a, b), v in sorted(self.edges.items())],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Transitions:
        return cls(
            {str(k): [int(n) for n in v] for k, v in data.get("nodes", {}).items()},
            {(str(e[0]), str(e[1])): [int(n) for n in e[2:]] for e in data.get("edges", [])},
        )

    def graph(self) -> nx.DiGraph:
        """The graph `tool_graph` draws from the runs these counts came from."""
        graph = nx.DiGraph()
        for name in sorted(self.nodes):
            calls, errors = self.nodes[name]
            graph.add_node(name, calls=calls, errors=errors)
        for src, dst in sorted(self.edges):
            count, runs, ok, failed, errors = self.edges[(src, dst)]
            known = ok + failed
            graph.add_edge(
                src,
                dst,
                count=count,
                runs=runs,
                successes=ok,
                failures=failed,
                errors=errors,
                success_rate=round(ok / known, 4) if known else None,
            )
        return graph


def _take_out(table: dict[Any, list[int]], key: Any, counts: Sequence[int]) -> None:
    """Subtract `counts` from `table[key]` element by element, dropping the key at all zeros."""
    mine = table.setdefault(key, [0] * len(counts))
    for i, n in enumerate(counts):
        mine[i] -= n
    if not any(mine):
        del table[key]


def transitions(run: Trajectory) -> Transitions:
    """One run's share of the tool graph (see `Transitions`)."""
    return Transitions().add_run(run)


def _add_run(graph: Transitions, run: Trajectory) -> Transitions:
    calls = run.tool_calls
    nodes = graph.nodes
    for name in (START, END):
        nodes.setdefault(name, [0, 0])[0] += 1
    for call in calls:
        node = nodes.setdefault(call.name, [0, 0])
        node[0] += 1
        node[1] += int(call.error)
    names = [START] + [c.name for c in calls] + [END]
    flags = [False] + [c.error for c in calls] + [False]
    ok, failed = int(run.succeeded is True), int(run.succeeded is False)
    mine: dict[tuple[str, str], list[int]] = {}  # this run's edges: it counts once per edge
    for pos in range(1, len(names)):
        edge = mine.setdefault((names[pos - 1], names[pos]), [0, 1, ok, failed, 0])
        edge[0] += 1
        edge[4] += int(flags[pos])
    for key, counts in mine.items():
        total = graph.edges.get(key)
        if total is None:
            graph.edges[key] = counts
        else:
            for i, n in enumerate(counts):
                total[i] += n
    return graph


def _label(name: str) -> str:
    text = sanitize_inline(name, 60).replace('"', "'")
    return re.sub(r"[\[\]{}()]", " ", text).strip() or "tool"


def to_mermaid(g: nx.DiGraph, max_edges: int = 25) -> str:
    """A `flowchart LR` of the busiest transitions, with counts and success rates on the edges."""
    ranked = sorted(g.edges(data=True), key=lambda e: (-e[2].get("count", 0), e[0], e[1]))
    kept = sorted(ranked[:max_edges], key=lambda e: (e[0], e[1]))
    names = sorted({n for e in kept for n in e[:2]} - {START, END})
    ids = {START: "start_node", END: "end_node"}
    ids.update({name: f"t{i}" for i, name in enumerate(names)})
    lines = ["flowchart LR"]
    if any(START in e[:2] for e in kept):
        lines.append('    start_node(["START"])')
    if any(END in e[:2] for e in kept):
        lines.append('    end_node(["END"])')
    for name in names:
        calls = g.nodes[name].get("calls", 0)
        errors = g.nodes[name].get("errors", 0)
        extra = f", {errors} error{'s' * (errors != 1)}" if errors else ""
        lines.append(f'    {ids[name]}["{_label(name)}: {calls} call{"s" * (calls != 1)}{extra}"]')
    for src, dst, data in kept:
        rate = data.get("success_rate")
        shown = f"{rate:.0%} ok" if rate is not None else "outcome n/a"
        lines.append(f'    {ids[src]} -->|"{data.get("count", 0)}x, {shown}"| {ids[dst]}')
    return "\n".join(lines) + "\n"


def to_json(g: nx.DiGraph) -> dict[str, Any]:
    """The graph as networkx node-link data (plain JSON types)."""
    return nx.node_link_data(g, edges="edges")


def _ok(runs: Sequence[Trajectory]) -> list[Trajectory]:
    return [r for r in runs if r.succeeded is True]


def _failed(runs: Sequence[Trajectory]) -> list[Trajectory]:
    return [r for r in runs if r.succeeded is False]


def fingerprint(runs: Sequence[Trajectory]) -> str:
    """Hash of the sorted (trajectory id, success) pairs: equal evidence, equal fingerprint."""
    pairs = sorted(((r.id, r.succeeded) for r in runs), key=lambda p: (p[0], str(p[1])))
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:16]


FIRST_LINE_LIMIT = 400  # far beyond the 120 characters quoted; bounds the cost of redacting


def _first_line(text: str) -> str:
    """The first non-blank line, at most FIRST_LINE_LIMIT characters. A cut line loses its
    last, cut word too, so no half of a secret (too short to be recognised) survives."""
    line = text.lstrip().split("\n", 1)[0].strip()
    if len(line) <= FIRST_LINE_LIMIT:
        return line
    head = line[:FIRST_LINE_LIMIT]
    if not line[FIRST_LINE_LIMIT].strip():  # cut at a space: no word was cut
        return head
    words = head.rsplit(None, 1)
    return words[0] if len(words) == 2 else ""


def normalise_error(text: str) -> str:
    """A redacted, one-line, id-free form of an error message, for grouping and quoting."""
    return _normalised(text) if len(text or "") <= 4096 else _normalise(text)


@lru_cache(maxsize=1 << 16)  # the same errors recur across runs and stages
def _normalised(text: str) -> str:
    return _normalise(text)


def _normalise(text: str) -> str:
    line = redact(_first_line(text or ""))
    line = re.sub(r"^(?:error|exception)\s*[:\-]\s*", "", line, flags=re.I)
    line = re.sub(r"[\w.+-]*\d[\w+-]*", "N", line)
    # a quoted symbol, a path or a URL is one run's value, not the error: "Stock with symbol
    # 'AAP' not found" and "... 'MSFT' ..." are one error, "'<symbol>' not found"
    line = kinds_marked(generalise(line))
    return sanitize_inline(line, 120).replace('"', "'") or "error without a message"


def _errors(run: Trajectory) -> Iterator[tuple[str, str]]:
    """(tool, normalised message) for each failed call of a run."""
    for call in run.tool_calls:
        if call.error:
            yield call.name, normalise_error(call.error_text or call.result or "")


def error_patterns(runs: Sequence[Trajectory]) -> tuple[ErrorPattern, ...]:
    """Errors failed runs hit, grouped by tool and normalised message; most failed runs first."""
    count: Counter[tuple[str, str]] = Counter()
    failed_runs: Counter[tuple[str, str]] = Counter()
    sample: dict[tuple[str, str], str] = {}
    for run in sorted(_failed(runs), key=lambda r: r.id):
        hit: set[tuple[str, str]] = set()
        for tool, message in _errors(run):
            key = (tool, message.lower())
            sample.setdefault(key, message)
            count[key] += 1
            hit.add(key)
        failed_runs.update(hit)
    ranked = sorted(count, key=lambda k: (-failed_runs[k], -count[k], k))
    return tuple(
        ErrorPattern(
            tool=redact(k[0]), message=sample[k], count=count[k], failed_runs=failed_runs[k]
        )
        for k in ranked
    )


def recovered_errors(runs: Sequence[Trajectory]) -> Counter[tuple[str, str]]:
    """How many successful runs hit each (tool, message) error and still succeeded."""
    out: Counter[tuple[str, str]] = Counter()
    for run in _ok(runs):
        out.update({(redact(tool), msg.lower()) for tool, msg in _errors(run)})
    return out


def evidence(runs: Sequence[Trajectory]) -> Evidence:
    """The Evidence record for a group of runs (unknown outcomes count as neither)."""
    ok, failed = len(_ok(runs)), len(_failed(runs))
    return Evidence(
        trajectory_ids=tuple(sorted(r.id for r in runs)),
        runs=len(runs),
        successes=ok,
        failures=failed,
        success_rate=round(ok / (ok + failed), 4) if ok + failed else 0.0,
        errors=error_patterns(runs)[:20],
        fingerprint=fingerprint(runs),
    )
