"""Role `writer`: a new skill's sections, written from the evidence and the offline draft.

The model writes the guidance; the figures (the Evidence section), the metadata and the
fingerprint stay the offline ones, so dedupe and rejection memory keep working.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, field_validator

from evolver.prompts import Prompt
from evolver.prompts.fence import RULES, cache_key, fenced, fenced_json
from evolver.prompts.models import Output, bounded, one_line
from evolver.skilldoc import (
    BLOCK_BEGIN,
    BLOCK_END,
    find_managed_block,
    parse,
    render,
    replace_managed_block,
)

__all__ = ["SYSTEM", "VERSION", "WrittenSkill", "block_section", "build", "render_written"]

VERSION = "writer/1"

SYSTEM = f"""\
You write Agent Skills: SKILL.md files that AI agents load to do a kind of task well. You
get the structured evidence of one cluster of agent runs (the tool paths that succeeded,
the arguments that mattered, preconditions, errors and diagnosed failures with counts), a
draft that a deterministic program wrote from that evidence, and sometimes an analysis of
the failures.

Write the skill an expert would: say when to use it and why each step matters, generalise
from the runs to the rule behind them, order the procedure as the successful runs did, and
turn the failures into pitfalls and guardrails an agent can act on. Keep the counts where
they help the reader weigh a point ("seen in 4 failed runs"). Name tools in backticks.
Keep every line short and self-contained; no Markdown headings, no HTML.

The description (at most 1024 characters, no angle brackets) says in the third person what
the skill does and when to load it, with the words a request of this kind would contain.

{RULES}"""


class WrittenSkill(Output):
    """The writer's reply: the title, the description and each section as a list of lines."""

    title: str
    description: str
    when_to_use: list[str]
    preconditions: list[str]
    procedure: list[str]
    verification: list[str]
    pitfalls: list[str]
    guardrails: list[str]

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        return one_line(value, 80, "title").lstrip("#").strip()

    @field_validator("description")
    @classmethod
    def _description(cls, value: str) -> str:
        text = one_line(value, 1024, "description")
        if "<" in text or ">" in text:
            raise ValueError("description holds angle brackets")
        return text

    @field_validator("when_to_use", "preconditions", "verification", "pitfalls", "guardrails")
    @classmethod
    def _lines(cls, value: list[str]) -> list[str]:
        return bounded(value, 10, 400, "a section")

    @field_validator("procedure")
    @classmethod
    def _steps(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("procedure is empty")
        return bounded(value, 20, 400, "procedure")


def build(facts: Mapping[str, Any], draft: str, analysis: BaseModel | None = None) -> Prompt:
    """The writer prompt for a new skill: its facts, the offline draft, the failure analysis."""
    evidence = fenced_json("evidence", facts)
    analysed = fenced_json("failure analysis", analysis.model_dump()) if analysis else ""
    user = (
        f"Write the new skill `{facts.get('skill')}` from this evidence.\n\n"
        + evidence
        + "\n"
        + fenced("offline draft of SKILL.md", draft, "markdown")
        + (f"\n{analysed}" if analysed else "")
    )
    return Prompt(
        role="writer",
        version=VERSION,
        system=SYSTEM,
        user=user,
        output=WrittenSkill,
        max_output_tokens=2048,
        cache_key=cache_key(VERSION, SYSTEM, evidence, analysed),
        skill=str(facts.get("skill")),
    )


def block_section(block: str, title: str) -> str:
    """The `## title` section of a managed block's text (heading included), or ""."""
    head = f"## {title}\n"
    start = block.find(head)
    if start < 0:
        return ""
    end = block.find("\n## ", start + len(head))
    return block[start:] if end < 0 else block[start : end + 1]


def _managed(body: str) -> str:
    span = find_managed_block(body)
    if span is None:
        return ""
    return body[span[0] + len(BLOCK_BEGIN) : span[1] - len(BLOCK_END)].strip("\n") + "\n"


def render_written(written: WrittenSkill, draft: str) -> str:
    """The SKILL.md: the draft's frontmatter and intro, the written sections, and the draft's
    Uses, Examples and Evidence sections as they were (the figures and the requests' words are
    never the model's)."""
    fm, body = parse(draft)
    old_block = _managed(body)
    lines: list[str] = []
    for title, items, numbered in (
        ("When to use", written.when_to_use, False),
        ("Preconditions", written.preconditions, False),
        ("Procedure", written.procedure, True),
        ("Verification", written.verification, False),
        ("Pitfalls", written.pitfalls, False),
        ("Guardrails", written.guardrails, False),
    ):
        if items:
            lines += [f"## {title}", ""]
            lines += [f"{i}. {t}" if numbered else f"- {t}" for i, t in enumerate(items, 1)]
            lines.append("")
        if title == "Procedure":
            for kept in ("Uses", "Examples"):
                if block_section(old_block, kept):
                    lines += [block_section(old_block, kept).rstrip("\n"), ""]
    lines.append(block_section(old_block, "Evidence").rstrip("\n"))
    span = find_managed_block(body)
    intro = (body[: span[0]] if span else body).rstrip("\n") + "\n"
    if intro.startswith("# "):
        intro = f"# {written.title}\n" + intro.split("\n", 1)[1]
    fm = {**fm, "description": written.description}
    return render(fm, replace_managed_block(intro, "\n".join(lines)))
