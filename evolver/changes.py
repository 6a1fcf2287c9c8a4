"""What the evolver takes besides trajectories (the current library) and what it gives back.

`SkillDoc` is one skill as read from the library; `ChangeSet` is the list of skill
changes a cycle proposes, each with the evidence behind it. Plain data, no I/O.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from evolver.markup import inline, lines

MANAGED_KEY = "skillforge.managed"  # metadata key marking a skill that skillforge wrote


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SkillDoc(_Model):
    """One skill of the library: its folder name, the full text of its SKILL.md, and the other
    files skillforge keeps beside it (`checks.json`), by file name."""

    name: str
    text: str
    files: dict[str, str] = Field(default_factory=dict)


class ErrorPattern(_Model):
    """An error that runs hit: which tool, a redacted sample of the message, how often."""

    tool: str
    message: str
    count: int
    failed_runs: int = Field(description="How many failed runs hit it.")


class Evidence(_Model):
    """The trajectories behind a change and what they show."""

    trajectory_ids: tuple[str, ...]
    runs: int
    successes: int
    failures: int
    success_rate: float
    errors: tuple[ErrorPattern, ...] = ()
    categories: dict[str, int] = Field(
        default_factory=dict, description="Diagnosed root causes of the failed runs, counted."
    )
    fingerprint: str = Field(description="Hash of the evidence; equal evidence, equal hash.")


class SkillChange(_Model):
    """A new skill or a rewrite of one, with why and on what evidence."""

    skill: str = Field(description="Folder name, equal to the frontmatter name.")
    action: Literal["create", "update", "retire"]
    content: str = Field(description="The whole new SKILL.md (empty when retiring).")
    files: dict[str, str] = Field(
        default_factory=dict,
        description="Other files of the skill folder to write, by file name (checks.json).",
    )
    summary: str = Field(description="One line: what changed and why (the commit subject).")
    reason: str = Field(description="A paragraph for the reviewer: the evidence in words.")
    evidence: Evidence
    cluster: str = Field(description="Id of the trajectory cluster it was learned from.")
    withheld: dict[str, int] = Field(
        default_factory=dict,
        description="Texts of its runs that read as instructions, a command or a link, and so "
        "were not quoted, counted by kind (error text, request, ...).",
    )

    @property
    def commit_message(self) -> str:
        """The commit's message: every untrusted string in it escaped (`evolver.markup`)."""
        ids = ", ".join(inline(i, 200) for i in self.evidence.trajectory_ids[:20])
        more = len(self.evidence.trajectory_ids) - 20
        if more > 0:
            ids += f" and {more} more"
        return (
            f"{inline(self.summary, 300)}\n\n{lines(self.reason)}\n\n"
            f"Evidence: {self.evidence.runs} runs, {self.evidence.successes} succeeded "
            f"({self.evidence.success_rate:.0%}), cluster {inline(self.cluster, 300)}, "
            f"fingerprint {inline(self.evidence.fingerprint, 40)}.\n{self._diagnoses()}"
            f"{self._withheld()}Trajectories: {ids}\n"
        )

    def _withheld(self) -> str:
        said = withheld_note(self.withheld)
        return f"{said}\n" if said else ""

    def _diagnoses(self) -> str:
        found = self.evidence.categories
        if not found:
            return ""
        return (
            "Diagnosed failures: "
            + ", ".join(f"{inline(k, 40)} {v}" for k, v in found.items())
            + ".\n"
        )


def withheld_note(counts: dict[str, int]) -> str:
    """One sentence for the reviewer: how many texts of which kind were withheld, for
    example "Withheld: 2 error texts and 1 request of these runs read as instructions, a
    command or a link; quoted nowhere." ("" when none was)."""
    parts = [f"{n} {kind}{'' if n == 1 else 's'}" for kind, n in sorted(counts.items()) if n > 0]
    if not parts:
        return ""
    listed = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
    verb = "reads" if sum(counts.values()) == 1 else "read"
    return (
        f"Withheld: {listed} of these runs {verb} as instructions, a command or a link; "
        "quoted nowhere."
    )


class ClusterReport(_Model):
    """A group of similar runs, whether or not it produced a change."""

    id: str
    size: int
    successes: int
    skill: str | None = Field(description="The skill it maps to, if any.")
    top_tools: tuple[str, ...]
    keywords: tuple[str, ...]
    status: str = Field(
        description="changed | unchanged | too-small | too-mixed | no-success | conflict"
    )


class ChangeSet(_Model):
    """Everything one evolution cycle proposes."""

    changes: tuple[SkillChange, ...] = ()
    clusters: tuple[ClusterReport, ...] = ()
    trajectories: int = 0
    tool_graph_mermaid: str = ""
    memberships: dict[str, str] = Field(
        default_factory=dict, description="Run id -> cluster id, to keep clusters next cycle."
    )

    @property
    def empty(self) -> bool:
        return not self.changes
