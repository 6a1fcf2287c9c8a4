"""A tool graph whose edges carry state (SIT-Graph): the graph, its state summaries and exports.

Edges count transitions and outcomes and summarise, redacted, what typically holds at that
point: the arguments the next call gets and the shape of the result before it. A run also reads
as a walk over the same nodes (START, its tools, END), which the analyses in
`evolver.graph_paths` and `evolver.graph_patterns` build on. Pure and deterministic.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import networkx as nx

from evolver.cluster import unique_runs
from evolver.graph import END, START, normalise_error
from evolver.model import ToolCall, Trajectory
from evolver.redact import redact, sanitize_inline

__all__ = [
    "END",
    "START",
    "enum_like",
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
    return _shown_key(str(key))


@lru_cache(maxsize=1 << 14)  # runs use a few hundred distinct keys, over and over
def _shown_key(text: str) -> str:
    if _LONG_NUMBER.search(text) or _MIXED_TOKEN.fullmatch(text):
        return ""
    return sanitize_inline(text, 40).replace('"', "'")


def enum_like(key: str, value: Any) -> str | None:
    """`value` as text when it is a short, non-identifying, enum-like scalar, else None."""
    if isinstance(value, str | int | float):  # hashable scalars (bool included) recur a lot
        return _enum_like_cached(str(key), value)
    return _enum_like_uncached(key, value)


@lru_cache(maxsize=1 << 16, typed=True)  # typed: True and 1 are different values here
def _enum_like_cached(key: str, value: str | int | float) -> str | None:
    return _enum_like_uncached(key, value)


def _enum_like_uncached(key: str, value: Any) -> str | None:
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
            text = enum_like(str(key), value)
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
