"""The stages of a cycle that read runs, each over cluster samples and memoized (`Memo`).

A stage's key is made of everything it reads: the samples (`Group.fp`, which runs with which
outcomes; a stored run never changes), and its other inputs as values. So a cluster no new
run reached, whose inputs are as they were, costs a lookup, and its sample is never read:
`samples` may load a cluster's runs only when it is asked for them. Pure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import replace

from evolver.changes import SkillChange, SkillDoc
from evolver.checks import (
    MAX_POOL,
    CrossfitParams,
    Measured,
    Profile,
    combined,
    profile,
    task_folds,
    validated,
)
from evolver.cluster import TOOL_PREFIX, Cluster, centroid, cohesion, families
from evolver.composite import FunctionalSkill, functional_changes
from evolver.diagnose import Diagnosis, Lessons, diagnose, lessons, task_key
from evolver.graph_patterns import chains_of
from evolver.groups import Group
from evolver.markup import looks_injected
from evolver.memo import (
    Memo,
    decode_change,
    decode_diagnoses,
    decode_lessons,
    decode_measured,
    decode_profiles,
    decode_view,
    digest,
    encode_change,
    encode_diagnoses,
    encode_lessons,
    encode_measured,
    encode_profiles,
    encode_view,
)
from evolver.model import Trajectory
from evolver.naming import intent, intent_name, is_filler
from evolver.skillbody import ok_runs, tainted_words, tool_runs
from evolver.synthesize import (
    View,
    candidate_names_from,
    legacy_names_from,
    naming_requests,
    view,
)
from evolver.weights import joint_weights

__all__ = ["Stages", "contrast_index", "known_tools"]

Chain = tuple[str, ...]


class Stages:
    """The memoized stages of one cycle over `groups`, whose sample runs `samples` gives."""

    def __init__(
        self,
        groups: Sequence[Group],
        samples: Mapping[str, Sequence[Trajectory]],
        memo: Memo,
        weights: Mapping[str, float],
    ) -> None:
        self.groups = {g.id: g for g in groups}
        self.samples = samples
        self.memo = memo
        self.weights = weights
        self._profiles: dict[str, Profile] = {}
        self._group_of = {r.id: g.id for g in groups for r in g.sample}
        self._tested: dict[tuple[str, ...], list[Measured]] = {}

    def runs(self, g: Group) -> tuple[Trajectory, ...]:
        return tuple(self.samples[g.id])

    def cluster(self, g: Group) -> Cluster:
        """The group as a cluster of its sample runs."""
        return Cluster(g.id, self.runs(g), g.keywords, g.tools)

    # --- clustering and naming ---------------------------------------------------------------

    def cohesion(self, g: Group) -> float:
        return self.memo("cohesion", [g.fp], lambda: cohesion(self.cluster(g)))

    def intent(self, g: Group, background: Sequence[str]) -> tuple[str, str]:
        found = self.memo(
            "intent",
            [digest(list(g.anchors)), digest(list(background))],
            lambda: list(intent(naming_requests(g.anchors), background)),
        )
        return (found[0], found[1])

    def terms(self, g: Group) -> list[str]:
        """`skillbody.key_terms` of the group's cluster."""
        tainted = set(self.memo("tainted", [g.fp], lambda: sorted(tainted_words(self.runs(g)))))
        return [
            k
            for k in g.keywords
            if k not in tainted and not looks_injected(k) and not is_filler(k)
        ]

    def candidate_names(self, g: Group, background: Sequence[str]) -> list[str]:
        base = self.memo(
            "intent-name",
            [digest(list(g.anchors)), digest(list(background))],
            lambda: intent_name(naming_requests(g.anchors), background),
        )
        return candidate_names_from(base, self.terms(g))

    def legacy_names(self, g: Group, tool_weights: Mapping[str, float]) -> list[str]:
        def ok_tools() -> list[object]:
            ok = ok_runs(self.runs(g))
            return [dict(tool_runs(ok)), len(ok)]

        counts, n_ok = self.memo("ok-tools", [g.fp], ok_tools)
        return legacy_names_from(counts, n_ok, tool_weights, g.keywords)

    def derive_name(self, g: Group, background: Sequence[str], taken: Collection[str]) -> str:
        return self.memo(
            "derive-name",
            [digest(list(g.anchors)), digest(list(background)), sorted(taken)],
            lambda: intent_name(naming_requests(g.anchors), background, taken),
        )

    # --- lessons and diagnoses ---------------------------------------------------------------

    def chains(self, g: Group) -> dict[Chain, tuple[float, int]]:
        found = self.memo(
            "chains",
            [g.fp],
            lambda: [[list(c), p, n] for c, (p, n) in chains_of(self.runs(g)).items()],
        )
        return {tuple(c): (p, n) for c, p, n in found}

    def lessons(self, g: Group) -> Lessons:
        return self.memo(
            "lessons", [g.fp], lambda: lessons(self.runs(g)), encode_lessons, decode_lessons
        )

    def diagnoses(
        self, g: Group, skill: str, known_tools: Collection[str], by_task: Mapping[int, list]
    ) -> list[Diagnosis]:
        """The diagnoses of the group's failed sample runs, contrasted with the successful
        sample runs of the same task in any group (`by_task`: task hash -> [(group, id)])."""
        tasks = sorted({r.task for r in g.sample if r.success is False})
        contrast = {t: sorted(by_task.get(t, ()), key=lambda gi: gi[1]) for t in tasks}

        def compute() -> list[Diagnosis]:
            taught = self.lessons(g)
            ok: dict[str, list[Trajectory]] = {}
            for t, refs in contrast.items():
                wanted = {rid for _, rid in refs}
                found = {r.id: r for gid, _ in refs for r in self.samples[gid] if r.id in wanted}
                ok[t] = [found[rid] for _, rid in refs]
            out = []
            for run, r in zip(self.runs(g), g.sample, strict=True):
                if run.succeeded is False:
                    same = [s for s in ok.get(r.task, ()) if task_key(s) == task_key(run)]
                    out.append(
                        diagnose(run, same, known_tools=known_tools, skill=skill, group=taught)
                    )
            return out

        parts = [g.fp, skill, contrast, digest(sorted(known_tools))]
        return self.memo("diagnoses", parts, compute, encode_diagnoses, decode_diagnoses)

    # --- checks ------------------------------------------------------------------------------

    def _profile(self, run: Trajectory) -> Profile:
        """A sample run's profile: all its group's, from the memo or read once."""
        found = self._profiles.get(run.id)
        if found is None:
            g = self.groups[self._group_of[run.id]]
            tasks = getattr(self.samples, "tasks", None)
            requests = tasks(g.id) if tasks else [r.task for r in self.runs(g)]
            profiles = self.memo(
                "profiles",
                [g.fp],
                lambda: [profile(r) for r in self.runs(g)],
                encode_profiles,
                lambda data: decode_profiles(data, requests),
            )
            self._profiles.update({r.id: p for r, p in zip(g.sample, profiles, strict=True)})
            found = self._profiles[run.id]
        return found

    def _pool(self, ids: Sequence[str]) -> list[Trajectory]:
        return [r for cid in ids for r in self.samples[cid]]

    def _kept_pool(self, ids: Sequence[str]) -> list[Trajectory]:
        """The runs of the groups `ids` that `checks.validated` keeps (those with a known
        outcome, the MAX_POOL smallest by hash when there are more), in the order it would
        put them; only those runs are read when `samples` can pick runs."""
        known = [
            (cid, r.id) for cid in ids for r in self.groups[cid].sample if r.success is not None
        ]
        if len(known) <= MAX_POOL:
            return [r for r in self._pool(ids) if r.succeeded is not None]
        known.sort(key=lambda cr: hashlib.sha256(cr[1].encode()).digest())
        kept = known[:MAX_POOL]
        wanted: dict[str, set[str]] = {}
        for cid, rid in kept:
            wanted.setdefault(cid, set()).add(rid)
        found: dict[str, Trajectory] = {}
        pick = getattr(self.samples, "pick", None)
        for cid, rids in wanted.items():
            runs = pick(cid, rids) if pick else [r for r in self.samples[cid] if r.id in rids]
            found.update((r.id, r) for r in runs)
        return [found[rid] for _, rid in kept]

    def _pool_key(self, ids: Sequence[str]) -> list[object]:
        return [[cid, self.groups[cid].fp] for cid in ids]

    def validated(self, ids: Sequence[str], scope: str, params: CrossfitParams) -> list[Measured]:
        """The checks that hold out on the samples of the groups `ids`; the scope of the first
        ask for a set of groups is kept, as one cycle has always done."""
        key = tuple(sorted(set(ids)))
        if key not in self._tested:

            def compute() -> list[Measured]:
                pool = self._kept_pool(key)
                return validated(pool, params, _Profiles(self, pool))

            found = self.memo(
                "validated",
                [self._pool_key(key), repr(params)],
                compute,
                encode_measured,
                decode_measured,
            )
            self._tested[key] = [replace(m, scope=scope) for m in found]
        return self._tested[key]

    def checks(
        self, eligible: Sequence[Group], params: CrossfitParams
    ) -> dict[str, list[Measured]]:
        """Each eligible group's checks (see `pipeline`): its intent family's, then those of
        every group that uses the same tools, when they hold there too."""
        words = {
            g.id: centroid(
                {f: n for f, n in g.counts.items() if not f.startswith(TOOL_PREFIX)}, self.weights
            )
            for g in self.groups.values()
        }
        family = families(words)
        tools = {gid: set(g.tools) for gid, g in self.groups.items()}
        out: dict[str, list[Measured]] = {}
        for g in eligible:
            own_ids = family[g.id]
            own = self.validated(own_ids, "", params)
            near = [o for o in self.groups if tools[o] & tools[g.id]]
            shared = self.validated(near, "all", params) if len(near) > len(own_ids) else []

            def compute(own=own, shared=shared, own_ids=own_ids) -> list[Measured]:
                mine = [r for r in self._pool(own_ids) if r.succeeded is not None]
                profiles = [self._profile(r) for r in mine]
                ops = {op for p in profiles for op in p.count}
                labels = [r.succeeded is True for r in mine]
                kept = combined(own, shared, ops, params.max_checks, (profiles, labels))
                folds = task_folds(mine, min(params.folds, len({task_key(r) for r in mine})))
                return joint_weights(kept, profiles, labels, folds)

            parts = [
                encode_measured(own),
                encode_measured(shared),
                self._pool_key(own_ids),
                params.max_checks,
            ]
            out[g.id] = self.memo("checked", parts, compute, encode_measured, decode_measured)
        return out

    # --- the skill's text --------------------------------------------------------------------

    def view(
        self,
        g: Group,
        *,
        max_listed_ids: int,
        diagnoses: Sequence[Diagnosis],
        functional: Sequence[FunctionalSkill],
        lessons: Lessons,
        checked: Sequence[Measured],
    ) -> View:
        parts = [
            g.fp,
            g.id,
            list(g.keywords),
            list(g.tools),
            max_listed_ids,
            encode_diagnoses(diagnoses),
            [[f.name, list(f.tools)] for f in functional],
            encode_lessons(lessons),
            encode_measured(checked),
        ]
        return self.memo(
            "view",
            parts,
            lambda: view(
                self.cluster(g),
                max_listed_ids=max_listed_ids,
                diagnoses=diagnoses,
                functional=functional,
                lessons=lessons,
                checked=checked,
            ),
            encode_view,
            decode_view,
        )

    def functional_change(
        self, f: FunctionalSkill, library: Mapping[str, SkillDoc]
    ) -> SkillChange | None:
        existing = library.get(f.name)
        parts = [
            [f.name, list(f.tools), list(f.clusters), f.runs, f.confidence],
            [[cid, self.groups[cid].fp] for cid in f.clusters if cid in self.groups],
            existing.text if existing else None,
        ]

        def compute() -> SkillChange | None:
            runs = {cid: self.samples[cid] for cid in f.clusters if cid in self.groups}
            found = functional_changes([f], runs, library)
            return found[0] if found else None

        return self.memo("functional", parts, compute, encode_change, decode_change)


class _Profiles(Mapping[str, Profile]):
    """The profiles of a pool's runs, each read when `validated` asks for it (it reads only
    the runs its pool keeps), once per cycle."""

    def __init__(self, stages: Stages, pool: Sequence[Trajectory]) -> None:
        self.stages = stages
        self.runs = {r.id: r for r in pool}

    def __getitem__(self, run_id: str) -> Profile:
        return self.stages._profile(self.runs[run_id])

    def __contains__(self, run_id: object) -> bool:
        return run_id in self.runs

    def __iter__(self) -> Iterator[str]:
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)


def contrast_index(groups: Sequence[Group]) -> dict[int, list[tuple[str, str]]]:
    """Successful sample runs by task hash: [(group id, run id)], for diagnoses."""
    out: dict[int, list[tuple[str, str]]] = {}
    for g in groups:
        for r in g.sample:
            if r.success is True:
                out.setdefault(r.task, []).append((g.id, r.id))
    return out


def known_tools(runs: Sequence[Trajectory]) -> frozenset[str]:
    """Tools a successful run called, or any run called without an error (for diagnoses)."""
    return frozenset(
        c.name for r in runs for c in r.tool_calls if r.succeeded is True or not c.error
    )
