"""Role `trigger`: a better description for a skill that is loaded when it should not be, or
missed when it should be. The description is what agents match requests against.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import field_validator

from evolver.prompts import Prompt
from evolver.prompts.fence import RULES, cache_key, fenced, fenced_json
from evolver.prompts.models import Output, one_line

__all__ = ["SYSTEM", "Trigger", "VERSION", "build"]

VERSION = "trigger/1"

SYSTEM = f"""\
You tune when AI agents load an Agent Skill. An agent sees only a skill's description when
it decides whether to load it, so the description must say, in the third person, what the
skill does and which requests it is for, with the words such requests contain, and which
similar requests it is not for.

You get the current description, the runs the skill is meant for (their key terms and
tools), and the evidence that it misfires: runs of other kinds that loaded it, and runs of
its kind that did not. Write a description (at most 1024 characters, no angle brackets)
that would load it for the second and not for the first. Do not describe the procedure.

{RULES}"""


class Trigger(Output):
    """The trigger optimiser's reply: the new description and why."""

    description: str
    why: str

    @field_validator("description")
    @classmethod
    def _description(cls, value: str) -> str:
        text = one_line(value, 1024, "description")
        if "<" in text or ">" in text:
            raise ValueError("description holds angle brackets")
        return text

    @field_validator("why")
    @classmethod
    def _why(cls, value: str) -> str:
        return one_line(value, 300, "why")


def build(skill: str, description: str, misfires: Mapping[str, Any]) -> Prompt:
    """The trigger prompt: the skill's description and its misfire evidence
    (see `skillforge.refine.misfires` for the shape)."""
    user = (
        f"Rewrite the description of the skill `{skill}` so agents load it when they should.\n\n"
        + fenced("current description", description)
        + "\n"
        + fenced_json("loading evidence", misfires)
    )
    return Prompt(
        role="trigger",
        version=VERSION,
        system=SYSTEM,
        user=user,
        output=Trigger,
        max_output_tokens=500,
        cache_key=cache_key(VERSION, SYSTEM, user),
        skill=skill,
    )
