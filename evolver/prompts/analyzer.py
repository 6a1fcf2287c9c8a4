"""Role `analyzer`: a batch of one cluster's diagnosed failures in, failure patterns out.

One call per cluster; its patterns feed the writer or editor prompt of that cluster's skill.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import field_validator

from evolver.prompts import Prompt
from evolver.prompts.fence import RULES, cache_key, fenced_json
from evolver.prompts.models import Output, one_line

__all__ = ["FailureAnalysis", "Pattern", "SYSTEM", "VERSION", "build"]

VERSION = "analyzer/1"

SYSTEM = f"""\
You analyse why AI agents failed at one kind of task. You get the failed runs of one
cluster as structured evidence: diagnosed root causes (category, tool, what successful
runs called instead, an example), error patterns with counts, and the paths that worked.

Group the failures into a few patterns an expert would name (at most 6). For each give the
tools involved, how many failed runs show it (never more than the evidence counts), the
likely cause, and one piece of advice that would have prevented it, phrased as something an
agent can do (check, call first, ask the user, stop and report). Generalise across runs,
but claim nothing the evidence does not show.

{RULES}"""


class Pattern(Output):
    """One failure pattern: what went wrong, in how many failed runs, why, and what to do."""

    pattern: str
    failed_runs: int
    tools: list[str]
    cause: str
    advice: str

    @field_validator("pattern", "cause", "advice")
    @classmethod
    def _line(cls, value: str) -> str:
        return one_line(value, 300, "a pattern's text")

    @field_validator("failed_runs")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("failed_runs must be at least 1")
        return value


class FailureAnalysis(Output):
    """The analyzer's reply."""

    patterns: list[Pattern]

    @field_validator("patterns")
    @classmethod
    def _few(cls, value: list[Pattern]) -> list[Pattern]:
        if len(value) > 6:
            raise ValueError(f"{len(value)} patterns; at most 6")
        return value


_KEYS = ("skill", "runs", "failures", "successful_paths", "preconditions", "errors")


def build(facts: Mapping[str, Any]) -> Prompt:
    """The analyzer prompt for one cluster, from its facts (see `facts.change_facts`)."""
    evidence = {k: facts[k] for k in _KEYS if k in facts}
    user = (
        f"Analyse the {facts.get('failures', 0)} failed runs behind the skill "
        f"`{facts.get('skill')}`.\n\n"
        + fenced_json("failures, diagnosed", facts.get("diagnosed_failures", []))
        + "\n"
        + fenced_json("cluster evidence", evidence)
    )
    return Prompt(
        role="analyzer",
        version=VERSION,
        system=SYSTEM,
        user=user,
        output=FailureAnalysis,
        max_output_tokens=1200,
        cache_key=cache_key(VERSION, SYSTEM, user),
        skill=str(facts.get("skill")),
    )
