"""Per-skill tool/state graph pictures and exports for a proposal, next to its description."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from evolver.changes import SkillChange
from evolver.drawing import to_mermaid, to_svg
from evolver.model import Trajectory
from evolver.stategraph import state_graph, to_graphml, to_json

from .files import write_atomically


@dataclass(frozen=True)
class Picture:
    """A skill's graph as Mermaid (for the description) and the files written for it."""

    mermaid: str
    files: tuple[Path, ...]


def write_pictures(
    folder: Path,
    changes: Sequence[SkillChange],
    trajectories: Sequence[Trajectory],
    memberships: Mapping[str, str],
) -> dict[str, Picture]:
    """For each change learned from a cluster: SVG, JSON and GraphML of its runs' graph."""
    by_cluster: dict[str, list[Trajectory]] = {}
    for run in trajectories:
        cluster = memberships.get(run.id)
        if cluster:
            by_cluster.setdefault(cluster, []).append(run)
    pictures: dict[str, Picture] = {}
    for change in changes:
        # A functional skill ("composite:c-1+c-2") is drawn from the clusters it recurs in.
        clusters = change.cluster.removeprefix("composite:").split("+")
        runs = [run for cluster in clusters for run in by_cluster.get(cluster, [])]
        if change.action == "retire" or not runs:
            continue
        graph = state_graph(runs)
        title = f"{change.skill}: tool transitions of {len(runs)} runs"
        stem = folder / change.skill  # a skill name is a slug: safe as a file name
        files = (
            write_atomically(stem.with_suffix(".svg"), to_svg(graph, title=title)),
            write_atomically(stem.with_suffix(".json"), json.dumps(to_json(graph), indent=1)),
            write_atomically(stem.with_suffix(".graphml"), to_graphml(graph)),
        )
        pictures[change.skill] = Picture(to_mermaid(graph, title=title), files)
    return pictures
