"""One evolution cycle: cluster the runs, map clusters to skills, synthesize the changes.

Pure and deterministic: the same runs (in any order) and library give the same ChangeSet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from evolver.changes import ChangeSet, ClusterReport, SkillChange, SkillDoc
from evolver.checks import CrossfitParams, Measured, combined, profile, validated
from evolver.cluster import Cluster, cluster, cohesion, intent_families, unique_runs
from evolver.composite import functional_changes, functional_skills
from evolver.diagnose import diagnose_all, lessons
from evolver.graph import to_mermaid, tool_graph
from evolver.hygiene import SkillUsage, hygiene_changes
from evolver.model import Trajectory
from evolver.naming import intent, intent_key
from evolver.operations import with_operations
from evolver.skilldoc import parse
from evolver.synthesize import (
    CLUSTER_KEY,
    candidate_names,
    derive_name,
    legacy_names,
    naming_tasks,
    synthesize,
    tool_idf,
)

__all__ = ["EvolveParams", "LibraryEntry", "evolve", "index_library", "map_cluster"]


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


def _loaded_skill(c: Cluster) -> tuple[str, int] | None:
    """The skill most runs of the cluster had loaded, with how many runs; None if none."""
    counts: Counter[str] = Counter()
    for run in c.members:
        counts.update({s.name for s in run.skills})
    if not counts:
        return None
    name = min(counts, key=lambda n: (-counts[n], n))
    return name, counts[name]


def map_cluster(
    c: Cluster,
    library: Mapping[str, LibraryEntry],
    claimed: set[str],
    tool_weights: Mapping[str, float] | None = None,
    background: Sequence[str] = (),
) -> tuple[str, str] | None:
    """(skill name, why) of the library skill a cluster updates, or None; skips claimed skills.

    By loaded skill, then by cluster id, then (given `tool_weights`) by the derived name, or
    the name an earlier release derived."""
    loaded = _loaded_skill(c)
    if loaded and loaded[0] in library and loaded[0] not in claimed and 2 * loaded[1] >= c.size:
        return loaded[0], f"{loaded[1]} of its {c.size} runs had it loaded"
    for name, entry in library.items():
        if name not in claimed and entry.meta and str(entry.meta.get(CLUSTER_KEY)) == c.id:
            return name, f"it was learned from the same cluster ({c.id})"
    if tool_weights is None:
        return None
    for name in candidate_names(c, tool_weights, background):
        if name in library and name not in claimed:
            return name, "it has the name this cluster's runs suggest"
        if name not in library:
            break
    for name in legacy_names(c, tool_weights):
        if name in library and name not in claimed:
            return name, "it has the name skillforge gave such runs before it named by intent"
    return None


MAX_BACKGROUND = 150  # other clusters' requests a name is contrasted with


def _background(c: Cluster, clusters: Sequence[Cluster]) -> list[str]:
    """Requests of the other clusters, a few from each, for what sets this one's apart."""
    others = [o for o in clusters if o.id != c.id]
    per = max(1, MAX_BACKGROUND // max(len(others), 1))
    return sorted({r.task for o in others for r in o.members[:per]})


def merge_intents(
    clusters: Sequence[Cluster], eligible: Callable[[Cluster], bool]
) -> list[Cluster]:
    """One skill per intent: eligible clusters whose requests ask for the same thing (same verb,
    same object words, in either order: liters to gallons and gallons to liters) become one,
    kept under the id of the biggest. Deterministic."""
    chosen = [c for c in clusters if eligible(c)]
    if len(chosen) < 2:
        return list(clusters)
    groups: dict[object, list[Cluster]] = {}
    for c in chosen:
        key = intent_key(intent(naming_tasks(c.members), _background(c, chosen)))
        groups.setdefault(key, []).append(c)
    merged: dict[str, Cluster | None] = {}
    for group in groups.values():
        if len(group) < 2:
            continue
        group.sort(key=lambda c: (-c.size, c.id))
        head = group[0]
        by_id = {r.id: r for c in group for r in c.members}
        members = tuple(by_id[i] for i in sorted(by_id))
        merged[head.id] = replace(head, members=members)
        merged.update({other.id: None for other in group[1:]})
    out = [merged.get(c.id, c) for c in clusters]
    return [c for c in out if c is not None]


def _checks(
    eligible: Sequence[Cluster],
    clusters: Sequence[Cluster],
    runs: Sequence[Trajectory],
    params: CrossfitParams,
) -> dict[str, list[Measured]]:
    """Each cluster's validated checks. First those tested on the runs of like requests (its
    intent family: clusters whose task words read alike, whatever tools they used); then those
    tested on every cluster that works with the same tools, where more runs give more power,
    when they are about how to use the cluster's tools, or, about what to do, when its own
    family's runs point the same way. Runs that share neither words nor tools with a cluster
    never change its checks."""
    profiles = {r.id: profile(r) for r in runs if r.succeeded is not None}
    family = intent_families(clusters)
    members = {c.id: c.members for c in clusters}
    tools = {c.id: set(c.tools) for c in clusters}
    tested: dict[tuple[str, ...], list[Measured]] = {}

    def checks_of(ids: Sequence[str], scope: str = "") -> list[Measured]:
        key = tuple(sorted(set(ids)))
        if key not in tested:
            pool = [r for cid in key for r in members[cid]]
            tested[key] = [replace(m, scope=scope) for m in validated(pool, params, profiles)]
        return tested[key]

    out: dict[str, list[Measured]] = {}
    for c in eligible:
        own = checks_of(family[c.id])
        near = [o.id for o in clusters if tools[o.id] & tools[c.id]]
        shared = checks_of(near, "all") if len(near) > len(family[c.id]) else []
        mine = [r for cid in family[c.id] for r in members[cid] if r.id in profiles]
        ops = {op for r in mine for op in profiles[r.id].count}
        local = ([profiles[r.id] for r in mine], [r.succeeded is True for r in mine])
        out[c.id] = combined(own, shared, ops, params.max_checks, local)
    return out


def _status_report(c: Cluster, status: str, skill: str | None) -> ClusterReport:
    return ClusterReport(
        id=c.id,
        size=c.size,
        successes=sum(1 for r in c.members if r.succeeded is True),
        skill=skill,
        top_tools=c.tools,
        keywords=c.keywords,
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
    Runs with an unknown outcome count for clustering but not as successes or failures."""
    # Generic tools (a shell, an editor, SQL, MCP) become the operations they performed, so that
    # every stage below sees `pytest` and `edit test file`, not `bash` and `str_replace_editor`.
    runs = [with_operations(r) for r in unique_runs(trajectories)]
    clusters = cluster(runs, params.similarity, prior=memberships)
    mixed = {
        c.id for c in clusters if c.size >= params.min_runs and cohesion(c) < params.min_cohesion
    }
    weights = tool_idf(runs)
    index = index_library(library)

    def is_eligible(c: Cluster) -> bool:
        return (
            c.size >= params.min_runs
            and c.id not in mixed
            and sum(1 for r in c.members if r.succeeded is True) >= params.min_successes
        )

    clusters = merge_intents(clusters, is_eligible)
    eligible = [c for c in clusters if is_eligible(c)]
    background = {c.id: _background(c, eligible) for c in eligible}
    claimed: set[str] = set()
    target: dict[str, tuple[str, str] | None] = {}
    for c in eligible:  # strong links first (loaded skill, cluster id), then names
        found = map_cluster(c, index, claimed)
        if found:
            claimed.add(found[0])
        target[c.id] = found
    for c in eligible:
        if target[c.id] is None:
            found = map_cluster(c, index, claimed, weights, background[c.id])
            if found:
                claimed.add(found[0])
            target[c.id] = found
    taken = set(index) | claimed
    names: dict[str, str] = {}
    for c in eligible:
        found = target[c.id]
        names[c.id] = found[0] if found else derive_name(c, weights, taken, background[c.id])
        taken.add(names[c.id])
    skill_of = {run.id: names[c.id] for c in eligible for run in c.members}
    runs_by_cluster = {c.id: c.members for c in eligible}
    functional = functional_skills(runs_by_cluster, taken, {d.name: d for d in library})
    taught = {names[c.id]: lessons(c.members) for c in eligible}  # once: diagnosis and skill
    diagnoses = diagnose_all(runs, skill_of=skill_of, taught=taught)
    checked = _checks(eligible, clusters, runs, params.checks)
    changes: list[SkillChange] = []
    reports: list[ClusterReport] = []
    options = {
        "max_listed_ids": params.max_listed_ids,
        "diagnoses": diagnoses,
        "rewrite_after": params.rewrite_after,
        "functional": functional,
    }
    for c in clusters:
        if c.size < params.min_runs:
            reports.append(_status_report(c, "too-small", None))
            continue
        if c.id in mixed:
            reports.append(_status_report(c, "too-mixed", None))
            continue
        if c.id not in target:
            reports.append(_status_report(c, "no-success", None))
            continue
        found = target[c.id]
        name = names[c.id]
        options["checked"] = checked[c.id]
        if found is None:
            change = synthesize(c, name, lessons=taught[name], **options)
        else:
            why = found[1]
            entry = index[name]
            if entry.meta is None:
                reports.append(_status_report(c, "conflict", name))
                continue
            try:
                change = synthesize(
                    c, name, entry.doc, mapped_by=why, lessons=taught[name], **options
                )
            except ValueError:  # malformed skillforge markers: leave it to a person
                reports.append(_status_report(c, "conflict", name))
                continue
        if change is not None:
            changes.append(change)
        reports.append(_status_report(c, "changed" if change else "unchanged", name))
    changes += functional_changes(functional, runs_by_cluster, {d.name: d for d in library})
    changes += hygiene_changes(
        library,
        changed={ch.skill for ch in changes},
        runs_by_skill={names[c.id]: c.members for c in eligible if target[c.id]},
        usage=usage,
        now=now,
        unused_days=params.unused_days,
        duplicate_threshold=params.duplicate_threshold,
    )
    return ChangeSet(
        changes=tuple(sorted(changes, key=lambda ch: ch.skill)),
        clusters=tuple(reports),
        trajectories=len(runs),
        tool_graph_mermaid=to_mermaid(tool_graph(runs)),
        memberships={run.id: c.id for c in clusters for run in c.members},
    )
