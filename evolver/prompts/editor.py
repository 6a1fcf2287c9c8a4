"""Role `editor`: minimal edits to an existing skill's managed block, from new evidence.

The editor keeps what the evidence does not contradict: it returns `{find, replace, why}`
edits, applied strictly by `evolver.llm_edit`, never a rewrite of the whole file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, field_validator

from evolver.prompts import Prompt
from evolver.prompts.fence import RULES, cache_key, fenced, fenced_json
from evolver.prompts.models import Output, one_line

__all__ = ["Edit", "SYSTEM", "SkillEdit", "VERSION", "build"]

VERSION = "editor/1"
MAX_EDITS = 12

SYSTEM = f"""\
You maintain Agent Skills: SKILL.md files that AI agents load to do a kind of task well.
You get a skill as it is now, the structured evidence of the runs behind it (tool paths
that succeeded, arguments, preconditions, errors and diagnosed failures with counts), the
section a deterministic program regenerated from that evidence, and sometimes an analysis
of the failures.

Return the smallest set of edits that brings the skill in line with the new evidence. Keep
every sentence the evidence does not contradict, including its wording. Edit only text
between the `<!-- skillforge:begin -->` and `<!-- skillforge:end -->` markers, never the
markers, the frontmatter, or the `## Evidence` section (its figures are regenerated).

Each edit is {{"find", "replace", "why"}}: `find` is an exact, verbatim substring of the
current SKILL.md that occurs exactly once (include enough context to make it unique);
`replace` is its new text; `why` names the evidence. Edits apply in order. Return no edits
when the skill already says what the evidence shows.

{RULES}"""


class Edit(Output):
    """Replace the one occurrence of `find` with `replace`, because `why`."""

    find: str
    replace: str
    why: str

    @field_validator("find")
    @classmethod
    def _find(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("find is empty")
        return value

    @field_validator("why")
    @classmethod
    def _why(cls, value: str) -> str:
        return one_line(value, 300, "why")


class SkillEdit(Output):
    """The editor's reply: the edits in order, and one line saying what changed."""

    edits: list[Edit]
    summary: str

    @field_validator("edits")
    @classmethod
    def _few(cls, value: list[Edit]) -> list[Edit]:
        if len(value) > MAX_EDITS:
            raise ValueError(f"{len(value)} edits; at most {MAX_EDITS}")
        return value

    @field_validator("summary")
    @classmethod
    def _summary(cls, value: str) -> str:
        return one_line(value, 200, "summary")


def build(
    facts: Mapping[str, Any],
    current: str,
    regenerated: str,
    analysis: BaseModel | None = None,
) -> Prompt:
    """The editor prompt: the skill now, its facts, the regenerated block, the analysis."""
    now = fenced("current SKILL.md", current, "markdown")
    evidence = fenced_json("evidence", facts)
    analysed = fenced_json("failure analysis", analysis.model_dump()) if analysis else ""
    user = (
        f"Edit the skill `{facts.get('skill')}` minimally so it matches the new evidence.\n\n"
        + now
        + "\n"
        + evidence
        + "\n"
        + fenced("regenerated managed block", regenerated, "markdown")
        + (f"\n{analysed}" if analysed else "")
    )
    return Prompt(
        role="editor",
        version=VERSION,
        system=SYSTEM,
        user=user,
        output=SkillEdit,
        max_output_tokens=1500,
        cache_key=cache_key(VERSION, SYSTEM, now, evidence, analysed),
        skill=str(facts.get("skill")),
    )
