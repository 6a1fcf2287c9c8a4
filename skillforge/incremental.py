"""The evolver over the stored cluster state: a cycle's evolve step, reading runs lazily.

`evolve_state` hands `evolver.pipeline.evolve_groups` the state's clusters, a mapping of their
sample runs that reads a cluster's runs from the store only when a stage asks (and only the
runs a check pool keeps), and the stage memo kept in the store, read key by key. So a cycle
reads the new runs (`ClusterState.advance`) and the samples of what they changed, not the
history; `tests/test_incremental.py` counts the runs it reads.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from evolver.changes import ChangeSet, SkillDoc
from evolver.hygiene import SkillUsage
from evolver.memo import Memo
from evolver.model import Trajectory
from evolver.operations import with_operations
from evolver.pipeline import MERGE_ROUNDS, EvolveParams, evolve_groups, plan_merges
from evolver.stages import Stages

from .clusterstate import ClusterState
from .store import Store

__all__ = ["Evolved", "StoredMemo", "StoredSamples", "evolve_state", "evolve_stored"]


class StoredSamples(Mapping[str, tuple[Trajectory, ...]]):
    """Each cluster's sample runs (operations applied), read from the store on first ask;
    `read` counts the runs read, for the tests."""

    def __init__(
        self,
        store: Store,
        order: Mapping[str, Sequence[tuple[str, int]]],
        previous: StoredSamples | None = None,
    ) -> None:
        self.store = store
        self.order = order  # cluster -> its sample's (run id, seq), by id
        self.seqs = {cid: [seq for _, seq in pairs] for cid, pairs in order.items()}
        self.read = previous.read if previous else 0
        self._runs: dict[str, tuple[Trajectory, ...]] = {}
        self._picked: dict[str, Trajectory] = dict(previous._picked) if previous else {}
        if previous is not None:  # what was read before, for clusters with the same sample
            for cid, runs in previous._runs.items():
                if list(previous.seqs[cid]) == list(self.seqs.get(cid, ())):
                    self._runs[cid] = runs

    def __getitem__(self, cid: str) -> tuple[Trajectory, ...]:
        if cid not in self._runs:
            self._runs[cid] = tuple(self._read(self.order[cid]))
        return self._runs[cid]

    def _read(self, pairs: Sequence[tuple[str, int]]) -> list[Trajectory]:
        missing = [seq for rid, seq in pairs if rid not in self._picked]
        data = self.store.runs_by_seq(missing) if missing else {}
        for rid, seq in pairs:
            if rid not in self._picked:
                raw = Trajectory.model_validate_json(data[seq])
                self._picked[rid] = with_operations(raw)
                self.read += 1
        return [self._picked[rid] for rid, _ in pairs]

    def __iter__(self) -> Iterator[str]:
        return iter(self.seqs)

    def __len__(self) -> int:
        return len(self.seqs)

    def tasks(self, cid: str) -> list[str]:
        """The requests of a cluster's sample runs, in its order, without reading the runs."""
        if cid in self._runs:
            return [r.task for r in self._runs[cid]]
        found = self.store.tasks_by_seq(self.seqs[cid])
        return [found[seq] for seq in self.seqs[cid]]

    def pick(self, cid: str, ids: Collection[str]) -> list[Trajectory]:
        """Some runs of a cluster's sample (by id, in its order), reading only those."""
        if cid in self._runs:
            return [r for r in self._runs[cid] if r.id in ids]
        return self._read([(rid, seq) for rid, seq in self.order[cid] if rid in ids])


class StoredMemo(MutableMapping[str, str]):
    """The stage results earlier cycles kept, read from the store key by key as the evolver
    asks (a cycle reads those of what it looks at, not all); new ones stay here until
    `Evolved.save_memo`. Iterating gives the new ones."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.added: dict[str, str] = {}

    def __getitem__(self, key: str) -> str:
        found = self.added.get(key)
        if found is None:
            found = self.store.memo_get(key)
        if found is None:
            raise KeyError(key)
        return found

    def __setitem__(self, key: str, value: str) -> None:
        self.added[key] = value

    def __delitem__(self, key: str) -> None:
        del self.added[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.added)

    def __len__(self) -> int:
        return len(self.added)


@dataclass
class Evolved:
    """A cycle's evolver result over the stored state, and what the proposal step needs:
    the sample runs (read lazily), the memo to keep, how many runs, and clusters resampled."""

    changeset: ChangeSet
    runs: int
    samples: StoredSamples
    memo: Memo
    resampled: int
    fps: dict[str, str]  # each cluster's sample fingerprint (Group.fp)

    def save_memo(self, store: Store) -> None:
        """Keep the stage results this cycle asked for (new ones added, the rest dropped)."""
        store.save_memo(dict(self.memo.saved), keep=self.memo.used)


def evolve_stored(
    store: Store,
    library: Sequence[SkillDoc],
    params: EvolveParams,
    *,
    upto: int,
    usage: Mapping[str, SkillUsage] | None = None,
    now: datetime | None = None,
) -> Evolved:
    """Take the runs up to `upto` into the state, merge what has one intent, evolve."""
    state = ClusterState.current(store, params)
    state.advance(upto)
    return evolve_state(state, library, params, usage=usage, now=now)


def evolve_state(
    state: ClusterState,
    library: Sequence[SkillDoc],
    params: EvolveParams,
    *,
    usage: Mapping[str, SkillUsage] | None = None,
    now: datetime | None = None,
) -> Evolved:
    """Merge the state's clusters that have one intent, and evolve it against `library`."""
    store = state.store
    memo = Memo(StoredMemo(store))
    weights = state.weights()
    groups, order = state.groups(params)
    samples = StoredSamples(store, order)
    for _ in range(MERGE_ROUNDS):
        merges = plan_merges(groups, Stages(groups, samples, memo, weights), params)
        if not merges:
            break
        state.merge(merges)
        groups, order = state.groups(params)
        samples = StoredSamples(store, order, samples)
    changeset = evolve_groups(
        groups,
        samples,
        library,
        params,
        df=state.df,
        known=frozenset(state.known),
        usage=usage,
        now=now,
        memo=memo,
    )
    fps = {g.id: g.fp for g in groups}
    return Evolved(changeset, state.runs, samples, memo, len(state.redrawn), fps)
