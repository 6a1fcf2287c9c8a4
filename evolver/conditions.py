"""Conditions under which a tool's calls went wrong: argument values, and the state before them.

SIT-Graph's state at a call, made checkable. At each call a run knows a set of facts: the
enum-like values of the call's own arguments (`cabin` = `business`), and those in the latest
result of each earlier tool (`get_reservation_details` returned `insurance` = `no`). A fact
seen at a tool's calls in several failed runs and in none of the successful runs that called
it, and unlikely to be so by chance (a one-sided Fisher exact test), is a condition to avoid:
a policy the agent broke, or an argument value that never works. A key or value that reads
as instructions, a command or a link (`evolver.markup.looks_injected`) is no state: it is
never a fact, so no check or skill quotes it. Pure.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from evolver.cluster import unique_runs
from evolver.graph import is_helper
from evolver.markup import looks_injected
from evolver.model import Trajectory
from evolver.redact import sanitize_inline
from evolver.stategraph import enum_like

__all__ = ["Condition", "Fact", "facts", "failure_conditions"]

MIN_FAILED = 2  # failed runs with the fact at the tool's calls, of as many different tasks
MIN_OK = 2  # successful runs that called the tool: "none of them" must mean something
ALPHA = 0.1  # chance of so many failed runs and no successful one if the fact did not matter
MAX_CONDITIONS = 5
MAX_LIST_ITEMS = 10  # items of a list of objects read for facts (flights of a reservation)
SMALL_NUMBER = 10  # larger numbers are amounts and measures, not states
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")  # a number sent as text
_KIND_OF_ID = re.compile(r"([a-z]+(?:_[a-z]+)*)_\d+")  # credit_card_7334: its kind is a state
# ...but not the id of a person, whose "kind" is their name (olivia_gonzalez_2305)
_PERSON_KEY = re.compile(
    r"(?i)user|customer|patient|member|owner|person|client|employee|traveller|traveler|passenger"
    r"|name|mail|login|account|contact|author|subject"
)


@dataclass(frozen=True, order=True)
class Fact:
    """`key` was `value`: in the call's own arguments (`source` ""), or in the latest result
    of the tool `source`."""

    source: str
    key: str
    value: str

    def held(self, quote: Callable[[str], str] = str) -> str:
        """How it held at a call, in words: `with k = v`, or `after T returned k = v`."""
        said = f"{quote(self.key)} = {quote(self.value)}"
        return f"after {quote(self.source)} returned {said}" if self.source else f"with {said}"


@dataclass(frozen=True)
class Condition:
    """A fact at `tool`'s calls that only failed runs had."""

    tool: str
    fact: Fact
    failed_runs: int  # failed runs that called `tool` with the fact
    ok_runs: int  # successful runs that called `tool`, none with the fact
    p_value: float


def _value(key: str, value: Any) -> str | None:
    """A value that can be a state: short enum-like text, true/false, a small count, or the kind
    of an id (`credit_card_…`). Amounts, measures, names and ids are not."""
    if isinstance(value, str | int | float):  # bool included; the same values recur a lot
        return _scalar_value(key, value)
    return None


@lru_cache(maxsize=1 << 16, typed=True)
def _scalar_value(key: str, value: str | int | float) -> str | None:
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        value = float(value) if any(ch in value for ch in ".eE") else int(value)
    if isinstance(value, float) or (
        isinstance(value, int) and not isinstance(value, bool) and abs(value) > SMALL_NUMBER
    ):
        return None
    if isinstance(value, str) and (m := _KIND_OF_ID.fullmatch(value.strip())):
        return None if _PERSON_KEY.search(key) else m.group(1) + "_…"
    text = enum_like(key, value)
    return None if text is None or looks_injected(text) else text


@lru_cache(maxsize=1 << 14)
def _shown(key: str) -> bool:
    return (
        0 < len(key) <= 40
        and sanitize_inline(key, 40) == key
        and "`" not in key
        and not looks_injected(key)
    )


def _flatten(data: Any) -> Iterator[tuple[str, str]]:
    """(key path, value) for the state-like values of an object, one level of nesting deep."""
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        key = str(key)
        inner: list[tuple[str, Any]] = []
        if isinstance(value, dict):
            inner = [(f"{key}.{k}", v) for k, v in value.items()]
        elif isinstance(value, list):
            inner = [
                (f"{key}[].{k}", v)
                for item in value[:MAX_LIST_ITEMS]
                if isinstance(item, dict)
                for k, v in item.items()
            ]
        else:
            inner = [(key, value)]
        for path, v in inner:
            if isinstance(v, dict | list) or not _shown(path):
                continue
            if (text := _value(path, v)) is not None:
                yield path, text


def facts(
    run: Trajectory, tools: Collection[str] | None = None
) -> list[tuple[str, frozenset[Fact]]]:
    """Each tool call of the run, in order, with the facts that held when it was made; with
    `tools`, only calls of those tools get their facts (the others an empty set), which spares
    reading results no condition asks about."""
    latest: dict[str, str] = {}  # tool -> its latest successful result, unread
    read: dict[str, frozenset[Fact]] = {}  # tool -> the facts of that result, once read
    out: list[tuple[str, frozenset[Fact]]] = []
    for call in run.tool_calls:
        known: set[Fact] = set()
        if tools is None or call.name in tools:
            for src, result in latest.items():
                if src not in read:
                    read[src] = _result_facts(src, result)
                known |= read[src]
            if isinstance(call.arguments, dict):
                known.update(
                    Fact("", str(k), text)
                    for k, v in call.arguments.items()
                    if _shown(str(k)) and (text := _value(str(k), v)) is not None
                )
        out.append((call.name, frozenset(known)))
        if not call.error and not is_helper(call.name) and call.result:
            latest[call.name] = call.result
            read.pop(call.name, None)
    return out


def _result_facts(tool: str, result: str) -> frozenset[Fact]:
    try:
        data = json.loads(result)
    except ValueError:
        return frozenset()
    return frozenset(Fact(tool, path, value) for path, value in _flatten(data))


def _p_value(failed: int, ok: int, hits: int) -> float:
    """Chance that `hits` runs, drawn from `failed` failed and `ok` successful ones, are all
    failed ones (the one-sided Fisher exact test with no successful run among them)."""
    return math.comb(failed, hits) / math.comb(failed + ok, hits)


def failure_conditions(
    runs: Sequence[Trajectory], alpha: float = ALPHA, limit: int = MAX_CONDITIONS
) -> list[Condition]:
    """Facts at a tool's calls in failed runs only, strongest evidence first. Retries of one
    task are one piece of evidence, so the failed runs must span different tasks; of facts
    that mark the very same failed runs (a reservation's cabin and its fare class), one is
    kept."""
    judged = [r for r in unique_runs(runs) if r.succeeded is not None]
    ok_calls: Counter[str] = Counter()
    failed_tasks: dict[str, set[str]] = defaultdict(set)
    for run in judged:
        for tool in {c.name for c in run.tool_calls if not is_helper(c.name)}:
            if run.succeeded:
                ok_calls[tool] += 1
            else:
                failed_tasks[tool].add(run.task)
    candidates = {t for t, tasks in failed_tasks.items() if len(tasks) >= MIN_FAILED}
    candidates &= {t for t, n in ok_calls.items() if n >= MIN_OK}
    if not candidates:
        return []
    calling: dict[bool, Counter[str]] = {True: Counter(), False: Counter()}
    having: dict[bool, Counter[tuple[str, Fact]]] = {True: Counter(), False: Counter()}
    marked: dict[tuple[str, Fact], set[str]] = defaultdict(set)
    tasks: dict[tuple[str, Fact], set[str]] = defaultdict(set)
    for run in judged:
        at: dict[str, set[Fact]] = defaultdict(set)
        for tool, held in facts(run, candidates):
            if tool in candidates:
                at[tool] |= held
        for tool, held in at.items():
            calling[run.succeeded][tool] += 1
            having[run.succeeded].update((tool, f) for f in held)
            if not run.succeeded:
                for f in held:
                    marked[(tool, f)].add(run.id)
                    tasks[(tool, f)].add(run.task)
    found = []
    for (tool, fact), n in having[False].items():
        ok = calling[True][tool]
        if len(tasks[(tool, fact)]) < MIN_FAILED or ok < MIN_OK or having[True][(tool, fact)]:
            continue
        p = _p_value(calling[False][tool], ok, n)
        if p <= alpha:
            found.append(Condition(tool, fact, n, ok, p))
    found.sort(key=lambda c: (c.p_value, -c.failed_runs, c.tool, c.fact))
    kept: list[Condition] = []
    seen: set[tuple[str, frozenset[str]]] = set()
    for c in found:
        key = (c.tool, frozenset(marked[(c.tool, c.fact)]))
        if key not in seen:
            seen.add(key)
            kept.append(c)
    return kept[:limit]
