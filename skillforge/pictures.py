"""Per-skill tool/state graph pictures and exports for a proposal, next to its description."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evolver.changes import SkillChange
from evolver.drawing import to_mermaid, to_svg
from evolver.memo import Memo
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
    runs_of: Callable[[str], Sequence[Trajectory]],
    *,
    memo: Memo | None = None,
    fps: Mapping[str, str] | None = None,
) -> dict[str, Picture]:
    """For each change learned from a cluster: SVG, JSON and GraphML of its runs' graph.

    `runs_of` gives a cluster's runs (its sample, for a stored cluster); with `memo` and the
    clusters' sample fingerprints `fps`, a drawing is made once per sample, not per cycle."""
    pictures: dict[str, Picture] = {}
    for change in changes:
        if change.action == "retire":
            continue
        # A functional skill ("composite:c-1+c-2") is drawn from the clusters it recurs in.
        clusters = change.cluster.removeprefix("composite:").split("+")

        def draw(change: SkillChange = change, clusters: list[str] = clusters) -> Any:
            runs = [run for cluster in clusters for run in runs_of(cluster)]
            if not runs:
                return None
            graph = state_graph(runs)
            title = f"{change.skill}: tool transitions of {len(runs)} runs"
            return {
                "mermaid": to_mermaid(graph, title=title),
                "svg": to_svg(graph, title=title),
                "json": json.dumps(to_json(graph), indent=1),
                "graphml": to_graphml(graph),
            }

        if memo is not None and fps is not None and all(c in fps for c in clusters):
            drawn = memo("picture", [change.skill, [[c, fps[c]] for c in clusters]], draw)
        else:
            drawn = draw()
        if drawn is None:
            continue
        stem = folder / change.skill  # a skill name is a slug: safe as a file name
        files = (
            write_atomically(stem.with_suffix(".svg"), drawn["svg"]),
            write_atomically(stem.with_suffix(".json"), drawn["json"]),
            write_atomically(stem.with_suffix(".graphml"), drawn["graphml"]),
        )
        pictures[change.skill] = Picture(drawn["mermaid"], files)
    return pictures
