"""Worked examples: requests a cluster's successful runs resolved, and the changes they made.

A skill's procedure says how this kind of task goes; it cannot say which changes a given
request needs (cancel, or refuse and change nothing; change the flight and the bags, or only
the flight). Requests recur, so a skill lists the ones that succeeded, each as its most
telling words and the state-changing tools its successful runs called, as ExpeL keeps an
experience pool of successes. A new request that shares most words of an example should
make the same changes. Words from a part of a request that reads as instructions, a command
or a link (`evolver.markup`) are never an example's. Pure.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from evolver.cluster import task_tokens, unique_runs
from evolver.graph import changes_state
from evolver.markup import injected_spans, strip_injected
from evolver.model import Trajectory

__all__ = ["Example", "changes_made", "nearest_example", "worked_examples"]

MAX_EXAMPLES = 20  # the requests most successful runs made, one line each
WORDS = 10  # the most distinctive words of a request within its cluster
MIN_REQUESTS = 2  # a word must be in this many requests of the cluster: no one-off names or quirks
MIN_SHARED = 0.8  # of an example's words, a request shares at least this share to be "like" it


@dataclass(frozen=True)
class Example:
    """A request (its telling words, in the order it used them) that `runs` successful runs
    resolved by calling the state-changing tools `changes` (none: the right answer changed
    nothing)."""

    words: tuple[str, ...]
    changes: frozenset[str]
    runs: int


def changes_made(run: Trajectory) -> frozenset[str]:
    """The state-changing tools a run called without an error."""
    return frozenset(c.name for c in run.tool_calls if not c.error and changes_state(c.name))


def _in_order(words: set[str], text: str) -> tuple[str, ...]:
    lowered = text.lower()

    def first_use(word: str) -> tuple[int, str]:
        at = lowered.find(word)
        return (at if at >= 0 else len(lowered), word)

    return tuple(sorted(words, key=first_use))


def worked_examples(runs: Sequence[Trajectory], limit: int = MAX_EXAMPLES) -> list[Example]:
    """One example per request the cluster's runs succeeded at, most successful runs first.

    A request's words are its `WORDS` rarest within the cluster (what sets it apart from the
    cluster's other requests); its changes are those most of its successful runs made."""
    runs = unique_runs(runs)
    df: Counter[str] = Counter(w for r in runs for w in task_tokens(r.task))
    shared: Counter[str] = Counter(w for t in {r.task for r in runs} for w in task_tokens(t))
    n = len(runs)
    by_task: dict[str, list[Trajectory]] = defaultdict(list)
    for run in runs:
        if run.succeeded is True:
            by_task[run.task].append(run)
    found: dict[tuple[str, ...], Example] = {}
    for task, ok in sorted(by_task.items()):
        tainted = _tainted(task)
        told = (w for w in task_tokens(task) if shared[w] >= MIN_REQUESTS and w not in tainted)
        rarest = sorted(told, key=lambda w: (-math.log(1 + n / df[w]), w))[:WORDS]
        if not rarest:
            continue
        words = _in_order(set(rarest), task)
        changes, _ = Counter(changes_made(r) for r in ok).most_common(1)[0]
        key = tuple(sorted(words))
        if key not in found or len(ok) > found[key].runs:
            found[key] = Example(words, changes, len(ok))
    ranked = sorted(found.values(), key=lambda e: (-e.runs, sorted(e.words)))
    return ranked[:limit]


def _tainted(task: str) -> frozenset[str]:
    """The words of a request that stand only in its parts reading as instructions, a command
    or a link."""
    spans = injected_spans(task)
    if not spans:
        return frozenset()
    inside = {w for span in spans for w in task_tokens(span)}
    return frozenset(inside - task_tokens(strip_injected(task)))


def nearest_example(task: str, examples: Sequence[Example]) -> Example | None:
    """The example whose words the request shares most (at least `MIN_SHARED` of them); ties go
    to the one more runs stand behind, then to the first listed."""
    tokens = task_tokens(task)
    best: tuple[float, int, Example | None] = (MIN_SHARED - 1e-9, 0, None)
    for example in examples:
        if not example.words:
            continue
        share = sum(1 for w in example.words if w in tokens) / len(example.words)
        if (share, example.runs) > best[:2]:
            best = (share, example.runs, example)
    return best[2]
