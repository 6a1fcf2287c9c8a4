"""A cluster as a cycle sees it: figures of all its runs, and a bounded sample of them.

Every stage that reads runs (lessons, diagnoses, checks, the state graph, naming, the skill's
text) reads at most `k` runs of a cluster: a sample that is a pure function of its member
set, so a store can keep it and update it from new runs alone, and a rebuild from the stored
runs finds the same. The figures of all its runs (size, outcomes, loaded skills, the tool
graph, feature counts) are sums over runs, kept exactly. Pure: no I/O.

The sample is the `k` runs with the smallest hash of their id among the cluster's first
`checkpoint(n, k)` runs (all of them up to `k`); the checkpoint steps up by half, so a cluster
of n > k runs is learned again each time it has grown by half, not at every run: a store that
adds m runs to it redraws its sample about m / (n / 2) times, at O(k) each. (By half, not by a
quarter: a redrawn sample re-tests the lessons of every cluster sharing its tools, seconds of
work, and halving how often that happens halves a cycle's expected cost above the new runs'.)
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from evolver.cluster import Cluster, features
from evolver.diagnose import task_key
from evolver.graph import Transitions
from evolver.model import Trajectory

__all__ = [
    "ANCHORS",
    "SAMPLE_SIZE",
    "Group",
    "Ref",
    "Tally",
    "bottom",
    "checkpoint",
    "groups_of",
    "rank",
    "ref",
    "tally",
    "task_hash",
]

SAMPLE_SIZE = 200  # runs of a cluster any stage reads
ANCHORS = 150  # a cluster's oldest requests: what it is named from, and others against
_MASK = (1 << 64) - 1


def rank(run_id: str) -> str:
    """The hash a sample is drawn by (the smallest first): 16 hex digits of sha256(id)."""
    return hashlib.sha256(run_id.encode()).hexdigest()[:16]


def checkpoint(n: int, k: int = SAMPLE_SIZE) -> int:
    """How many of a cluster's first runs (by arrival) its sample is drawn from: all `n` up
    to `k`, then k, 3k/2, 9k/4, ... (each half more, rounded up), the last one reached."""
    if n <= k:
        return n
    at = k
    while (nxt := (3 * at + 1) // 2) <= n:
        at = nxt
    return at


@dataclass(frozen=True)
class Ref:
    """A sampled run as the cycle knows it without reading it: id, outcome, and a 32-bit hash
    of its task (`diagnose.task_key`), so runs of the same task can be found across clusters
    (a hash shared by two tasks only adds a candidate that reading the runs then drops)."""

    id: str
    success: bool | None
    task: int

    def to_json(self) -> list[Any]:
        return [self.id, self.success, self.task]

    @classmethod
    def from_json(cls, data: Sequence[Any]) -> Ref:
        return cls(str(data[0]), None if data[1] is None else bool(data[1]), int(data[2]))


def task_hash(run: Trajectory) -> int:
    """32 bits of sha256 of the run's `diagnose.task_key`: small enough that a store never
    holds what reads as a secret token."""
    return int.from_bytes(hashlib.sha256(task_key(run).encode()).digest()[:4], "big")


def ref(run: Trajectory) -> Ref:
    """The `Ref` of a run."""
    return Ref(run.id, run.succeeded, task_hash(run))


def bottom(items: Iterable[Ref], k: int) -> tuple[Ref, ...]:
    """The `k` refs with the smallest `rank`, sorted by id: merging two clusters' bottoms and
    taking the bottom again gives the bottom of their union."""
    return tuple(sorted(sorted(items, key=lambda r: (rank(r.id), r.id))[:k], key=lambda r: r.id))


@dataclass
class Tally:
    """Figures of a cluster's runs that add up run by run: how many, their outcomes, a
    fingerprint (a sum of their hashes, so new runs update it), the skills they had loaded
    (runs, with a known outcome, of those successful, failed with it loaded first) and the
    tool graph (`Transitions`)."""

    runs: int = 0
    successes: int = 0
    failures: int = 0
    fold: int = 0
    loaded: dict[str, list[int]] = field(default_factory=dict)
    failed_unloaded: int = 0  # failed runs that reported no loaded skill
    graph: Transitions = field(default_factory=Transitions)

    @property
    def fingerprint(self) -> str:
        return f"{self.fold:016x}"

    def add(self, other: Tally) -> Tally:
        """Add `other`'s figures to these (in place); returns self."""
        self.runs += other.runs
        self.successes += other.successes
        self.failures += other.failures
        self.fold = (self.fold + other.fold) & _MASK
        for skill, counts in other.loaded.items():
            mine = self.loaded.setdefault(skill, [0, 0, 0, 0])
            for i, n in enumerate(counts):
                mine[i] += n
        self.failed_unloaded += other.failed_unloaded
        self.graph.add(other.graph)
        return self

    def subtract(self, other: Tally) -> Tally:
        """Take `other`'s figures out of these (in place); returns self. With `add`, it swaps
        a run's figures for new ones (its outcome became known): `subtract(tally(old))`,
        then `add(tally(new))`. A loaded skill left with no runs is dropped."""
        self.runs -= other.runs
        self.successes -= other.successes
        self.failures -= other.failures
        self.fold = (self.fold - other.fold) & _MASK
        for skill, counts in other.loaded.items():
            mine = self.loaded.setdefault(skill, [0, 0, 0, 0])
            for i, n in enumerate(counts):
                mine[i] -= n
            if not any(mine):
                del self.loaded[skill]
        self.failed_unloaded -= other.failed_unloaded
        self.graph.subtract(other.graph)
        return self

    def add_run(self, run: Trajectory) -> Tally:
        """Add one run's figures (in place, as `add(tally(run))`); returns self."""
        return _add_run(self, run)

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "successes": self.successes,
            "failures": self.failures,
            "fold": [self.fold >> 32, self.fold & 0xFFFFFFFF],  # decimal halves, not hex
            "loaded": {k: list(v) for k, v in sorted(self.loaded.items())},
            "failed_unloaded": self.failed_unloaded,
            "graph": self.graph.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Tally:
        return cls(
            runs=int(data["runs"]),
            successes=int(data["successes"]),
            failures=int(data["failures"]),
            fold=(int(data["fold"][0]) << 32) | int(data["fold"][1]),
            loaded={str(k): [int(n) for n in v] for k, v in data["loaded"].items()},
            failed_unloaded=int(data["failed_unloaded"]),
            graph=Transitions.from_json(data["graph"]),
        )


def tally(run: Trajectory) -> Tally:
    """One run's `Tally`."""
    return Tally().add_run(run)


def _add_run(total: Tally, run: Trajectory) -> Tally:
    ok, failed = run.succeeded is True, run.succeeded is False
    digest = hashlib.sha256(json.dumps([run.id, run.succeeded]).encode()).hexdigest()
    total.runs += 1
    total.successes += ok
    total.failures += failed
    total.fold = (total.fold + int(digest[:16], 16)) & _MASK
    first = run.skills[0].name if run.skills else None
    known = int(run.succeeded is not None)
    for name in {s.name for s in run.skills}:
        counts = total.loaded.setdefault(name, [0, 0, 0, 0])
        counts[0] += 1
        counts[1] += known
        counts[2] += ok
        counts[3] += failed and name == first
    total.failed_unloaded += failed and not run.skills
    total.graph.add_run(run)
    return total


@dataclass(frozen=True)
class Group:
    """A cluster for a cycle: its id, keywords and tools, how many of its runs have each
    feature (`counts`), the `Tally` of all its runs, a `sample` of them (at most k, sorted by
    id; all of them when the cluster is small) and its oldest requests (`anchors`, at most
    ANCHORS): a cluster is named from them, and contrasted with other clusters' by them, so
    its name does not drift as it grows, nor move when another cluster is resampled."""

    id: str
    keywords: tuple[str, ...]
    tools: tuple[str, ...]
    tally: Tally
    counts: Mapping[str, int]
    sample: tuple[Ref, ...]
    anchors: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return self.tally.runs

    @property
    def sampled(self) -> bool:
        """Whether the sample is short of the cluster's runs."""
        return self.tally.runs > len(self.sample)

    @cached_property
    def fp(self) -> str:
        """A hash of the sample: which runs, with which outcomes."""
        pairs = [[r.id, r.success] for r in self.sample]
        return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:32]


def groups_of(
    clusters: Sequence[Cluster], k: int = SAMPLE_SIZE
) -> tuple[list[Group], dict[str, tuple[Trajectory, ...]]]:
    """Groups of clusters whose members are all their runs, in memory, and each one's sample
    runs: the smallest `k` by `rank` (there is no arrival order here, so no checkpoint), and
    the tasks of its first runs by id as anchors."""
    groups: list[Group] = []
    samples: dict[str, tuple[Trajectory, ...]] = {}
    for c in clusters:
        total = Tally()
        counts: Counter[str] = Counter()
        for run in c.members:
            total.add(tally(run))
            counts.update(features(run))
        picked = {r.id for r in bottom(map(ref, c.members), k)}
        runs = tuple(r for r in c.members if r.id in picked)
        anchors = tuple(r.task for r in c.members[:ANCHORS])
        sample = tuple(map(ref, runs))
        groups.append(Group(c.id, c.keywords, c.tools, total, dict(counts), sample, anchors))
        samples[c.id] = runs
    return groups, samples
