"""One evolution cycle: cluster the runs, map clusters to skills, synthesize the changes.

Pure and deterministic: the same runs (in any order) and library give the same ChangeSet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from evolver.changes import ChangeSet, ClusterReport, SkillChange, SkillDoc
from evolver.checks import CrossfitParams
from evolver.cluster import TOOL_PREFIX, Cluster, characteristic, cluster, features, unique_runs
from evolver.cluster import idf_weight as _idf
from evolver.composite import functional_from
from evolver.graph import Transitions, to_mermaid
from evolver.graph_patterns import composites_from
from evolver.groups import SAMPLE_SIZE, Group, groups_of
from evolver.hygiene import LoadCounts, SkillUsage, hygiene_changes
from evolver.memo import Memo
from evolver.model import Trajectory
from evolver.naming import intent_key
from evolver.operations import with_operations
from evolver.skilldoc import parse
from evolver.stages import Stages, contrast_index, known_tools
from evolver.synthesize import CLUSTER_KEY, Totals, synthesize

__all__ = [
    "EvolveParams",
    "LibraryEntry",
    "evolve",
    "evolve_groups",
    "index_library",
    "map_group",
    "plan_merges",
]


@dataclass(frozen=True)
class EvolveParams:
    """Thresholds of a cycle."""

    min_runs: int = 4  # a cluster needs at least this many runs
    min_successes: int = 2  # ...and this many successful runs to create a skill
    similarity: float = 0.3  # edge threshold in the similarity graph
    rewrite_after: int = 3  # new runs (or attributed failures) before a skill is rewritten
    unused_days: float = 90  # a skillforge skill no run loaded for this long is retired
    duplicate_threshold: float = 0.6  # skills this similar are proposed for merging
    min_cohesion: float = 0.2  # mean pairwise cosine below which a cluster is too mixed
    max_listed_ids: int = 20  # trajectory ids listed inside a skill (all are in the Evidence)
    checks: CrossfitParams = CrossfitParams()  # how a guidance line is tested before it is written
    sample_size: int = SAMPLE_SIZE  # runs of a cluster any stage reads (see evolver.groups)


@dataclass(frozen=True)
class LibraryEntry:
    """A library skill and its metadata, as the mapping step sees it."""

    doc: SkillDoc
    meta: Mapping[str, Any] | None  # None when the SKILL.md does not parse


def index_library(library: Sequence[SkillDoc]) -> dict[str, LibraryEntry]:
    """Library skills by folder name, in name order (first of duplicate names wins)."""
    out: dict[str, LibraryEntry] = {}
    for doc in sorted(library, key=lambda d: (d.name, d.text)):
        if doc.name in out:
            continue
        try:
            fm, _ = parse(doc.text)
            meta = fm.get("metadata")
            out[doc.name] = LibraryEntry(doc, meta if isinstance(meta, dict) else {})
        except ValueError:
            out[doc.name] = LibraryEntry(doc, None)
    return out


def _loaded_skill(g: Group) -> tuple[str, int] | None:
    """The skill most runs of the group had loaded, with how many runs; None if none."""
    counts = {name: n[0] for name, n in g.tally.loaded.items() if n[0]}
    if not counts:
        return None
    name = min(counts, key=lambda n: (-counts[n], n))
    return name, counts[name]


def map_group(
    g: Group,
    library: Mapping[str, LibraryEntry],
    claimed: set[str],
    candidates: Callable[[], Sequence[str]] | None = None,
    legacy: Callable[[], Sequence[str]] | None = None,
) -> tuple[str, str] | None:
    """(skill name, why) of the library skill a cluster updates, or None; skips claimed skills.

    By loaded skill, then by cluster id, then (given `candidates`) by the name its runs
    suggest, or (`legacy`) the name an earlier release derived."""
    loaded = _loaded_skill(g)
    if loaded and loaded[0] in library and loaded[0] not in claimed and 2 * loaded[1] >= g.size:
        return loaded[0], f"{loaded[1]} of its {g.size} runs had it loaded"
    for name, entry in library.items():
        if name not in claimed and entry.meta and str(entry.meta.get(CLUSTER_KEY)) == g.id:
            return name, f"it was learned from the same cluster ({g.id})"
    if candidates is None:
        return None
    for name in candidates():
        if name in library and name not in claimed:
            return name, "it has the name this cluster's runs suggest"
        if name not in library:
            break
    for name in legacy() if legacy else ():
        if name in library and name not in claimed:
            return name, "it has the name skillforge gave such runs before it named by intent"
    return None


MAX_BACKGROUND = 150  # other clusters' requests a name is contrasted with


def _background(g: Group, groups: Sequence[Group]) -> list[str]:
    """Requests of the other groups, a few of the oldest of each, for what sets this one's
    apart (the oldest stay, so a name's background moves only when groups come or go)."""
    others = [o for o in groups if o.id != g.id]
    per = max(1, MAX_BACKGROUND // max(len(others), 1))
    return sorted({task for o in others for task in o.anchors[:per]})


def _eligible(g: Group, stages: Stages, params: EvolveParams) -> bool:
    """Big enough, cohesive enough, and with enough successes to learn a skill from."""
    return (
        g.size >= params.min_runs
        and g.tally.successes >= params.min_successes
        and stages.cohesion(g) >= params.min_cohesion
    )


MERGE_ROUNDS = 5  # merged clusters can share an intent with another: merge again, this often


def plan_merges(groups: Sequence[Group], stages: Stages, params: EvolveParams) -> list[list[str]]:
    """One skill per intent: eligible groups whose requests ask for the same thing (same verb,
    same object words, in either order: liters to gallons and gallons to liters) are to become
    one, kept under the id of the biggest. Each merge as [head, others...]. Deterministic."""
    chosen = [g for g in groups if _eligible(g, stages, params)]
    if len(chosen) < 2:
        return []
    by_intent: dict[object, list[Group]] = {}
    for g in chosen:
        key = intent_key(stages.intent(g, _background(g, chosen)))
        by_intent.setdefault(key, []).append(g)
    merges = []
    for same in by_intent.values():
        if len(same) > 1:
            same.sort(key=lambda g: (-g.size, g.id))
            merges.append([g.id for g in same])
    return sorted(merges)


def _merged(
    clusters: Sequence[Cluster], merges: Sequence[Sequence[str]], weights: Mapping[str, float]
) -> list[Cluster]:
    """The clusters with each merge's members under its head (keywords and tools of them all)."""
    by_id = {c.id: c for c in clusters}
    gone: set[str] = set()
    for head, *others in merges:
        members = sorted(
            {r.id: r for cid in (head, *others) for r in by_id[cid].members}.values(),
            key=lambda r: r.id,
        )
        counts: Counter[str] = Counter()
        for run in members:
            counts.update(features(run))
        words, tools = characteristic(counts, len(members), weights)
        by_id[head] = Cluster(head, tuple(members), words, tools)
        gone.update(others)
    return sorted((c for c in by_id.values() if c.id not in gone), key=lambda c: (-c.size, c.id))


def _report(g: Group, status: str, skill: str | None) -> ClusterReport:
    return ClusterReport(
        id=g.id,
        size=g.size,
        successes=g.tally.successes,
        skill=skill,
        top_tools=g.tools,
        keywords=g.keywords,
        status=status,
    )


def evolve(
    trajectories: Sequence[Trajectory],
    library: Sequence[SkillDoc],
    params: EvolveParams = EvolveParams(),  # noqa: B008 - frozen, immutable default
    *,
    memberships: Mapping[str, str] | None = None,
    usage: Mapping[str, SkillUsage] | None = None,
    now: datetime | None = None,
) -> ChangeSet:
    """One offline, deterministic cycle: cluster, graph, synthesize; changes relative to `library`.

    `memberships` (run id -> cluster id from earlier cycles) keeps clusters, and so the
    skills they map to, stable. `usage` and `now` let it propose retiring skills no run
    has loaded for `params.unused_days` (give them only when agents report loaded skills).
    Runs with an unknown outcome count for clustering but not as successes or failures.
    Every stage that reads runs reads at most `params.sample_size` of a cluster's."""
    # Generic tools (a shell, an editor, SQL, MCP) become the operations they performed, so that
    # every stage below sees `pytest` and `edit test file`, not `bash` and `str_replace_editor`.
    runs = [with_operations(r) for r in unique_runs(trajectories)]
    clusters = cluster(runs, params.similarity, prior=memberships)
    df: Counter[str] = Counter()
    for run in runs:
        df.update(features(run))
    weights = {f: _idf(n) for f, n in df.items()}
    memo = Memo()
    groups, samples = groups_of(clusters, params.sample_size)
    for _ in range(MERGE_ROUNDS):
        merges = plan_merges(groups, Stages(groups, samples, memo, weights), params)
        if not merges:
            break
        clusters = _merged(clusters, merges, weights)
        groups, samples = groups_of(clusters, params.sample_size)
    found = evolve_groups(
        groups,
        samples,
        library,
        params,
        df=df,
        known=known_tools(runs),
        usage=usage,
        now=now,
        memo=memo,
    )
    return found.model_copy(
        update={"memberships": {run.id: c.id for c in clusters for run in c.members}}
    )


def evolve_groups(
    groups: Sequence[Group],
    samples: Mapping[str, Sequence[Trajectory]],
    library: Sequence[SkillDoc],
    params: EvolveParams = EvolveParams(),  # noqa: B008 - frozen, immutable default
    *,
    df: Mapping[str, int],
    known: Collection[str],
    usage: Mapping[str, SkillUsage] | None = None,
    now: datetime | None = None,
    memo: Memo | None = None,
) -> ChangeSet:
    """A cycle over groups already clustered (and merged): map them to skills, learn, write.

    `samples` gives each group's sample runs (operations applied), read only when a stage
    misses in `memo`; `df` is how many runs have each feature, `known` the tools any run
    called without an error or in a success (for diagnoses). The memberships returned are
    those of the sample runs."""
    memo = memo if memo is not None else Memo()
    weights = {f: _idf(n) for f, n in df.items()}
    tool_weights = {
        f[len(TOOL_PREFIX) :]: w for f, w in weights.items() if f.startswith(TOOL_PREFIX)
    }
    stages = Stages(groups, samples, memo, weights)
    index = index_library(library)
    docs = {d.name: d for d in library}
    mixed = {
        g.id
        for g in groups
        if g.size >= params.min_runs and stages.cohesion(g) < params.min_cohesion
    }
    eligible = [g for g in groups if g.id not in mixed and _eligible(g, stages, params)]
    background = {g.id: _background(g, eligible) for g in eligible}
    claimed: set[str] = set()
    target: dict[str, tuple[str, str] | None] = {}
    for g in eligible:  # strong links first (loaded skill, cluster id), then names
        found = map_group(g, index, claimed)
        if found:
            claimed.add(found[0])
        target[g.id] = found
    for g in eligible:
        if target[g.id] is None:
            found = map_group(
                g,
                index,
                claimed,
                lambda g=g: stages.candidate_names(g, background[g.id]),
                lambda g=g: stages.legacy_names(g, tool_weights),
            )
            if found:
                claimed.add(found[0])
            target[g.id] = found
    taken = set(index) | claimed
    names: dict[str, str] = {}
    for g in eligible:
        found = target[g.id]
        names[g.id] = found[0] if found else stages.derive_name(g, background[g.id], taken)
        taken.add(names[g.id])
    functional = functional_from(
        composites_from({g.id: stages.chains(g) for g in eligible}), taken, docs
    )
    taught = {g.id: stages.lessons(g) for g in eligible}  # once: diagnosis and skill
    by_task = contrast_index(groups)
    diagnosed = {g.id: stages.diagnoses(g, names[g.id], known, by_task) for g in eligible}
    checked = stages.checks(eligible, params.checks)

    def attributed(name: str) -> int:
        """Failed runs whose diagnosis is attributed to skill `name` (first loaded, else
        the skill of their cluster)."""
        first = sum(g.tally.loaded.get(name, (0, 0, 0, 0))[3] for g in groups)
        return first + sum(g.tally.failed_unloaded for g in eligible if names[g.id] == name)

    changes: list[SkillChange] = []
    reports: list[ClusterReport] = []
    for g in groups:
        if g.size < params.min_runs:
            reports.append(_report(g, "too-small", None))
            continue
        if g.id in mixed:
            reports.append(_report(g, "too-mixed", None))
            continue
        if g.id not in target:
            reports.append(_report(g, "no-success", None))
            continue
        found = target[g.id]
        name = names[g.id]
        existing = None
        if found is not None:
            existing = index[name]
            if existing.meta is None:
                reports.append(_report(g, "conflict", name))
                continue
        seen = stages.view(
            g,
            max_listed_ids=params.max_listed_ids,
            diagnoses=diagnosed[g.id],
            functional=functional,
            lessons=taught[g.id],
            checked=checked[g.id],
        )
        totals = Totals(g.size, g.tally.successes, g.tally.failures, g.tally.fingerprint)
        options: dict[str, Any] = {
            "max_listed_ids": params.max_listed_ids,
            "rewrite_after": params.rewrite_after,
            "functional": functional,
            "lessons": taught[g.id],
            "checked": checked[g.id],
            "seen": seen,
            "totals": totals if g.sampled else None,
            "attributed": attributed(name),
        }
        shell = Cluster(g.id, (), g.keywords, g.tools)  # the view stands for its runs
        if existing is None or found is None:
            change = synthesize(shell, name, **options)
        else:
            try:
                change = synthesize(shell, name, existing.doc, mapped_by=found[1], **options)
            except ValueError:  # malformed skillforge markers: leave it to a person
                reports.append(_report(g, "conflict", name))
                continue
        if change is not None:
            changes.append(change)
        reports.append(_report(g, "changed" if change else "unchanged", name))
    for f in functional:
        made = stages.functional_change(f, docs)
        if made is not None:
            changes.append(made)
    counts: dict[str, LoadCounts] = {}
    for g in eligible:
        if target[g.id]:
            _, known_with, ok_with, _ = g.tally.loaded.get(names[g.id], (0, 0, 0, 0))
            known_all = g.tally.successes + g.tally.failures
            counts[names[g.id]] = LoadCounts(
                known_with, ok_with, known_all - known_with, g.tally.successes - ok_with
            )
    changes += hygiene_changes(
        library,
        changed={ch.skill for ch in changes},
        counts_by_skill=counts,
        usage=usage,
        now=now,
        unused_days=params.unused_days,
        duplicate_threshold=params.duplicate_threshold,
    )
    graph = Transitions()
    for g in groups:
        graph.add(g.tally.graph)
    return ChangeSet(
        changes=tuple(sorted(changes, key=lambda ch: ch.skill)),
        clusters=tuple(reports),
        trajectories=sum(g.size for g in groups),
        tool_graph_mermaid=to_mermaid(graph.graph()),
        memberships={r.id: g.id for g in groups for r in g.sample},
    )
