"""Per-cluster state in the store, updated from new runs only: what makes a cycle cost what
changed, not what is stored.

For each run it has seen, the state keeps its cluster and what sampling needs (`cluster_runs`);
for each cluster its `Tally` (figures of all its runs, adding up run by run), its feature
counts, its sample (at most k runs, `evolver.groups`) and its oldest runs (for naming); for
all runs, each feature's document frequency and the tools known to work. A cycle reads the
new runs (seq above the state's high water) once, in batches, and keeps only their digests:

* a new run with a cluster already (a membership written before) stays in it;
* else, as `evolver.cluster.cluster` decides, it joins the cluster most earlier runs with its
  very features are in (`cluster_sets`), else the existing cluster whose centroid (from the
  feature counts, under the idf of all runs) it is most similar to, or it is grouped with the
  other new runs left over (Louvain over their distinct feature sets);
* each touched cluster's figures are added to; its sample is redrawn only when it grows past
  a checkpoint (half as many runs more), from the runs it gained since the last one.

An outcome that arrives after its run (`Store.set_outcomes`, logged in `outcome_updates` with
an increasing id) is read after the state's mark of them (`outcomes` in its meta data): a run
the state counted with its outcome unknown (`cluster_runs.success`) has those figures swapped
for its figures now, in its cluster's `Tally` and wherever the state keeps its `Ref` (the
sample, `cluster_runs`); a run not counted yet is read later with its outcome. What was
counted, not the order of events, decides, so an update racing a cycle is applied once.

Merges of clusters with one intent (`evolver.pipeline.plan_merges`) are applied here; the
evolve step over the state is `incremental.py`. Nothing depends on the order of cycles: the
state after any history of cycles is the one `rebuild` computes from the stored runs and
their memberships, which the tests check.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from evolver.cluster import (
    centroid,
    characteristic,
    cluster_id,
    features,
    group_sets,
    idf_weight,
    join_existing,
    most_common,
)
from evolver.groups import ANCHORS, Group, Ref, Tally, bottom, checkpoint, ref, tally
from evolver.model import (
    SUCCESS_REWARD,
    LoadedSkill,
    Outcome,
    ToolCall,
    Trajectory,
    content_id,
)
from evolver.operations import with_operations
from evolver.pipeline import EvolveParams

from .store import Store

__all__ = ["ClusterRow", "ClusterState", "digest_run", "rebuild", "set_key"]

VERSION = "2"  # of the state's layout and rules; another one is rebuilt


@dataclass
class ClusterRow:
    """One cluster's state: figures, feature counts, its sample and where it was drawn from
    (the first `prefix` runs, the last of them `prefix_seq`), and its oldest runs."""

    id: str
    tally: Tally = field(default_factory=Tally)
    counts: Counter[str] = field(default_factory=Counter)
    prefix: int = 0
    prefix_seq: int = 0
    sample: dict[str, tuple[Ref, int]] = field(default_factory=dict)  # id -> (ref, seq)
    anchors: list[int] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        sample = [[*r.to_json(), seq] for r, seq in sorted(self.sample.values(), key=_by_id)]
        return {
            "cluster": self.id,
            "tally": json.dumps(self.tally.to_json(), sort_keys=True),
            "prefix": self.prefix,
            "prefix_seq": self.prefix_seq,
            "sample": json.dumps(sample),
            "anchors": json.dumps(self.anchors),
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any], counts: Mapping[str, int]) -> ClusterRow:
        sample = {e[0]: (Ref.from_json(e[:3]), int(e[3])) for e in json.loads(row["sample"])}
        return cls(
            id=row["cluster"],
            tally=Tally.from_json(json.loads(row["tally"])),
            counts=Counter(counts),
            prefix=row["prefix"],
            prefix_seq=row["prefix_seq"],
            sample=sample,
            anchors=json.loads(row["anchors"]),
        )


def _by_id(entry: tuple[Ref, int]) -> str:
    return entry[0].id


Key = tuple[str | None, frozenset[str]]  # (membership or None, feature set) of new runs


@dataclass
class _Bucket:
    """New runs that go to one cluster together: those with one feature set and one
    membership (or none: runs with equal features all land in one cluster)."""

    tally: Tally = field(default_factory=Tally)
    runs: int = 0
    first_id: str = ""


def digest_run(data: str) -> Trajectory:
    """A stored run as the cluster state reads it: its request, outcome, loaded skills,
    metadata and tool calls, built without validating what was validated when it arrived,
    and without its messages (half a run's bytes, which the state never reads). The two
    validators whose effect the state reads are applied: an error text makes a call failed,
    a reward of 1 makes a run a success, a record without an id has its content's. A test
    checks that every digest is the same as of the validated run."""
    raw = json.loads(data)
    calls = []
    for step in raw.get("steps") or ():
        if step.get("type") != "tool_call":
            continue
        error_text = step.get("error_text")
        calls.append(
            ToolCall.model_construct(
                id=step.get("id"),
                name=step["name"],
                arguments=step.get("arguments", {}),
                result=step.get("result"),
                error=bool(step.get("error")) or bool(error_text),
                error_text=error_text,
            )
        )
    outcome = raw.get("outcome")
    if outcome is not None:
        success, reward = outcome.get("success"), outcome.get("reward")
        if success is None and reward is not None:
            success = reward >= SUCCESS_REWARD
        outcome = Outcome.model_construct(
            success=success, reward=reward, reason=outcome.get("reason")
        )
    return Trajectory.model_construct(
        id=raw.get("id") or content_id(raw),
        agent=raw.get("agent"),
        task=raw["task"],
        steps=calls,
        outcome=outcome,
        skills=[
            LoadedSkill.model_construct(name=s["name"], version=s.get("version"))
            for s in raw.get("skills") or ()
        ],
        metadata=raw.get("metadata") or {},
    )


def set_key(feats: frozenset[str]) -> str:
    """A feature set as the store keeps it."""
    return json.dumps(sorted(feats))


class ClusterState:
    """The state as loaded from the store, and the operations of a cycle on it."""

    def __init__(self, store: Store, params: EvolveParams) -> None:
        self.store = store
        self.k = params.sample_size
        self.similarity = params.similarity
        meta = store.cluster_state_meta()
        self.upto = int(meta.get("upto", 0))
        self.outcomes = int(meta.get("outcomes", 0))  # outcome updates taken in, by id
        self.known: set[str] = set(json.loads(meta.get("known", "[]")))
        store.drop_cluster_runs_after(self.upto)  # left by a cycle that died before saving
        features = store.cluster_features()
        self.rows = {
            r["cluster"]: ClusterRow.from_row(r, features.get(r["cluster"], {}))
            for r in store.cluster_stats()
        }
        self.df: Counter[str] = Counter(store.feature_df())
        self.resampled: set[str] = set()
        self._sampled_before = {cid for cid, row in self.rows.items() if row.prefix}

    @property
    def redrawn(self) -> set[str]:
        """Clusters whose sample, drawn in an earlier cycle, this cycle drew again (a new
        cluster's first sample, or one drawn and merged within this cycle, is no redraw)."""
        return self.resampled & self._sampled_before

    @classmethod
    def current(cls, store: Store, params: EvolveParams) -> ClusterState:
        """The state, rebuilt first when it is missing for runs already clustered (a store
        of an earlier release) or was kept under other rules."""
        meta = store.cluster_state_meta()
        fits = meta.get("version") == VERSION and meta.get("sample_size") == str(params.sample_size)
        if (meta and not fits) or (not meta and store.count("cluster_members")):
            return rebuild(store, params)
        return cls(store, params)

    # --- new runs ----------------------------------------------------------------------------

    def advance(self, upto: int) -> int:
        """Take in the outcomes that arrived for runs already counted, then the stored runs
        after the state's high water up to `upto`; returns how many runs."""
        self.take_outcomes()
        if upto <= self.upto:
            return 0
        buckets: dict[Key, _Bucket] = {}
        records: list[tuple[int, Ref, Key]] = []  # (seq, ref, bucket)
        interned: dict[frozenset[str], frozenset[str]] = {}
        df_new: Counter[str] = Counter()
        for batch in self.store.run_batches(self.upto, upto):
            for seq, data, prior in batch:
                run = with_operations(digest_run(data))
                found = features(run)
                feats = interned.setdefault(found, found)
                key = (prior, feats)
                bucket = buckets.get(key)
                if bucket is None:
                    bucket = buckets[key] = _Bucket(first_id=run.id)
                bucket.tally.add_run(run)
                bucket.runs += 1
                bucket.first_id = min(bucket.first_id, run.id)
                df_new.update(feats)
                self.known.update(
                    c.name for c in run.tool_calls if run.succeeded is True or not c.error
                )
                records.append((seq, ref(run), key))
        self.df.update(df_new)
        target = self._assign(buckets)
        added: dict[str, list[tuple[int, Ref]]] = {}
        for seq, r, key in records:
            added.setdefault(target[key], []).append((seq, r))
        sets: Counter[tuple[str, str]] = Counter()
        for key, bucket in buckets.items():
            row = self.rows.setdefault(target[key], ClusterRow(target[key]))
            row.tally.add(bucket.tally)
            row.counts.update(dict.fromkeys(key[1], bucket.runs))
            sets[(set_key(key[1]), target[key])] += bucket.runs
        for cid, runs in sorted(added.items()):
            self._grow(self.rows[cid], runs)
        self.store.add_cluster_runs(
            [
                (seq, r.id, target[key], None if r.success is None else int(r.success), r.task)
                for seq, r, key in records
            ]
        )  # fmt: skip
        self.upto = upto
        self._save(sorted(added), df_new, sets=[(k, c, n) for (k, c), n in sets.items()])
        return len(records)

    def take_outcomes(self) -> int:
        """Swap in the figures of counted runs whose outcome became known since the state's
        mark; returns how many runs changed."""
        updates = self.store.outcome_updates_after(self.outcomes)
        if not updates:
            return 0
        counted = self.store.counted_runs([seq for _, seq in updates])
        pending = {seq: cid for seq, (cid, success) in counted.items() if success is None}
        changed: list[tuple[int, int]] = []
        for seq, data in sorted(self.store.runs_by_seq(list(pending)).items()):
            run = with_operations(digest_run(data))
            if run.succeeded is not None:  # else still unknown: nothing to swap
                self._swap(self.rows[pending[seq]], run)
                changed.append((seq, int(run.succeeded)))
        self.outcomes = updates[-1][0]
        touched = sorted({pending[seq] for seq, _ in changed})
        self._save(touched, Counter(), outcomes=changed)
        return len(changed)

    def _swap(self, row: ClusterRow, run: Trajectory) -> None:
        """In the cluster that counted `run` with its outcome unknown: those figures out, its
        figures now in, and its ref in the sample (if there) with its outcome."""
        before = run.model_copy(update={"outcome": None})
        row.tally.subtract(tally(before)).add(tally(run))
        self.known.update(c.name for c in run.tool_calls if run.succeeded is True or not c.error)
        if run.id in row.sample:
            row.sample[run.id] = (ref(run), row.sample[run.id][1])

    def _assign(self, buckets: Mapping[Key, _Bucket]) -> dict[Key, str]:
        """Each bucket's cluster (as `evolver.cluster.cluster` decides): its membership; else
        the cluster most earlier runs with its very features are in; else the nearest
        existing centroid; else a new cluster of the leftover feature sets grouped among
        themselves."""
        weights = self.weights()
        target: dict[Key, str] = {}
        kept: dict[str, Counter[str]] = {cid: Counter(row.counts) for cid, row in self.rows.items()}
        fresh: dict[frozenset[str], _Bucket] = {}
        for key, bucket in buckets.items():
            cid, feats = key
            if cid is not None:
                target[key] = cid
                kept.setdefault(cid, Counter()).update(dict.fromkeys(feats, bucket.runs))
            else:
                fresh[feats] = bucket
        order = sorted(fresh, key=lambda fs: fresh[fs].first_id)
        joined: dict[frozenset[str], str] = {}
        if kept and order:
            held = self.store.cluster_sets([set_key(fs) for fs in order])
            for (cid, feats), bucket in buckets.items():
                if cid is not None:
                    where = held.setdefault(set_key(feats), {})
                    where[cid] = where.get(cid, 0) + bucket.runs
            centres = {cid: centroid(counts, weights) for cid, counts in sorted(kept.items())}
            nearest = join_existing(order, centres, weights, self.similarity)
            for fs, cid in zip(order, nearest, strict=True):
                same = held.get(set_key(fs))
                found = most_common(same) if same else cid
                if found:
                    joined[fs] = found
        pool = [fs for fs in order if fs not in joined]
        parts = group_sets([(fs, fresh[fs].runs) for fs in pool], weights, self.similarity)
        seen = set(kept)
        for sets in sorted(
            ([pool[i] for i in part] for part in parts),
            key=lambda p: (-sum(fresh[s].runs for s in p), min(fresh[s].first_id for s in p)),
        ):
            counts: Counter[str] = Counter()
            for fs in sets:
                counts.update(dict.fromkeys(fs, fresh[fs].runs))
            words, tools = characteristic(counts, sum(fresh[s].runs for s in sets), weights)
            cid = cluster_id(words, tools, seen)
            seen.add(cid)
            joined.update(dict.fromkeys(sets, cid))
        target.update({(None, fs): cid for fs, cid in joined.items()})
        return target

    def _grow(self, row: ClusterRow, added: Sequence[tuple[int, Ref]]) -> None:
        """Anchors and sample of a cluster that gained `added` runs (oldest first, all newer
        than any it had): the sample is redrawn only when its checkpoint moves."""
        if len(row.anchors) < ANCHORS:
            row.anchors = (row.anchors + [seq for seq, _ in added])[:ANCHORS]
        wanted = checkpoint(row.tally.runs, self.k)
        if wanted == row.prefix:
            return
        need = wanted - row.prefix
        stored = self.store.cluster_runs_after([row.id], row.prefix_seq, need)
        more = [(r["seq"], Ref(r["id"], _outcome(r["success"]), r["task"])) for r in stored]
        more = (more + list(added))[:need]
        seqs = {r.id: seq for r, seq in row.sample.values()} | {r.id: seq for seq, r in more}
        picked = bottom([r for r, _ in row.sample.values()] + [r for _, r in more], self.k)
        row.sample = {r.id: (r, seqs[r.id]) for r in picked}
        row.prefix, row.prefix_seq = wanted, more[-1][0]
        self.resampled.add(row.id)

    def merge(self, merges: Sequence[Sequence[str]]) -> None:
        """Apply merges ([head, others...]): the others' runs become the head's, its sample
        is drawn again from their union."""
        dropped: list[str] = []
        for head, *others in merges:
            row = self.rows[head]
            for other in others:
                gone = self.rows.pop(other)
                row.tally.add(gone.tally)
                row.counts.update(gone.counts)
                row.anchors = sorted(row.anchors + gone.anchors)[:ANCHORS]
                dropped.append(other)
            members = self.store.cluster_runs_after(
                [head, *others], 0, checkpoint(row.tally.runs, self.k)
            )
            refs = [Ref(r["id"], _outcome(r["success"]), r["task"]) for r in members]
            seqs = {r["id"]: r["seq"] for r in members}
            row.sample = {r.id: (r, seqs[r.id]) for r in bottom(refs, self.k)}
            row.prefix, row.prefix_seq = len(members), members[-1]["seq"]
            self.store.move_clusters(others, head)
            self.resampled.add(head)
        self._save([m[0] for m in merges], Counter(), dropped=dropped)

    def _save(
        self,
        touched: Sequence[str],
        df_changed: Counter[str],
        dropped: Sequence[str] = (),
        sets: Sequence[tuple[str, str, int]] = (),
        outcomes: Sequence[tuple[int, int]] = (),
    ) -> None:
        rows = [self.rows[cid] for cid in touched]
        self.store.save_cluster_state(
            [row.row() for row in rows],
            {row.id: dict(row.counts) for row in rows},
            {f: self.df[f] for f in df_changed},
            {
                "upto": str(self.upto),
                "outcomes": str(self.outcomes),
                "version": VERSION,
                "sample_size": str(self.k),
                "known": json.dumps(sorted(self.known)),
            },
            dropped=dropped,
            sets=sets,
            outcomes=outcomes,
        )

    # --- what a cycle reads ------------------------------------------------------------------

    def weights(self) -> dict[str, float]:
        """Each feature's idf weight over all runs the state has seen."""
        return {f: idf_weight(n) for f, n in self.df.items() if n}

    @property
    def runs(self) -> int:
        return sum(row.tally.runs for row in self.rows.values())

    def groups(self, params: EvolveParams) -> tuple[list[Group], dict[str, list[tuple[str, int]]]]:
        """The clusters as the evolver takes them (biggest first), and each one's sample as
        (run id, seq) by id, to read the runs by. Oldest requests are read for the clusters
        that may be eligible for a skill (only they are named)."""
        weights = self.weights()
        rows = sorted(self.rows.values(), key=lambda r: (-r.tally.runs, r.id))
        named = {
            r.id for r in rows
            if r.tally.runs >= params.min_runs and r.tally.successes >= params.min_successes
        }  # fmt: skip
        tasks = self.store.tasks_by_seq([s for r in rows if r.id in named for s in r.anchors])
        groups = []
        for row in rows:
            words, tools = characteristic(row.counts, row.tally.runs, weights)
            sample = tuple(r for r, _ in sorted(row.sample.values(), key=_by_id))
            anchors = tuple(tasks[s] for s in row.anchors) if row.id in named else ()
            groups.append(Group(row.id, words, tools, row.tally, dict(row.counts), sample, anchors))
        order = {
            row.id: [(r.id, seq) for r, seq in sorted(row.sample.values(), key=_by_id)]
            for row in rows
        }
        return groups, order


def _outcome(value: int | None) -> bool | None:
    return None if value is None else bool(value)


def rebuild(store: Store, params: EvolveParams) -> ClusterState:
    """Recompute all state from the stored runs and their memberships, up to the first run
    that has none (later ones are the next cycle's new runs)."""
    store.clear_cluster_state()
    state = ClusterState(store, params)
    first = store.first_unassigned()
    state.advance(store.high_water() if first is None else first - 1)
    state._save([], Counter())  # the meta data, even for an empty store
    return state
