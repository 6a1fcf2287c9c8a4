"""What a skill learns beyond its procedure: preconditions, verification, tool notes, guardrails.

Each section is distilled from the cluster's runs and the diagnoses of its failures, with
how often it was seen, so a reviewer can weigh it and an agent can act on it. A result or
error text that reads as instructions is withheld, never quoted (`evolver.markup.quote`). Pure.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from evolver.answers import answer_forms
from evolver.conditions import Condition
from evolver.diagnose import Category, Diagnosis
from evolver.examples import Example
from evolver.graph import is_helper
from evolver.graph_patterns import preconditions
from evolver.markup import quote
from evolver.model import ToolCall, Trajectory
from evolver.redact import sanitize_inline
from evolver.stategraph import result_summary

__all__ = ["Guidance", "guidance", "tool_notes"]

MIN_NOTE_FAILURES = 2  # failing calls of a tool before its argument forms earn a note
MAX_LINES = 5
MIN_GUARDRAIL_RUNS = 2  # a root cause seen once is an anecdote, not a guardrail
_PLACEHOLDERS = (  # the values an answer form stands for
    (re.compile(r"\bn\b"), "n stands for a number"),
    (re.compile(r'"text"'), '"text" for a string'),
)

# What each diagnosed root cause asks of the agent next time.
_ADVICE = {
    Category.PREMATURE_STOP: "runs stopped before {expected}; finish the procedure, or say why not",
    Category.WRONG_TOOL: "runs called {tool} where successful runs called {expected}",
    Category.MISSING_PREREQUISITE: "runs called {tool} before {expected}; call {expected} first",
    Category.REPETITION_LOOP: "runs repeated {tool} without progress; after two failures re-plan",
    Category.INVALID_ARGUMENTS: "runs passed {tool} arguments that failed or misled it",
    Category.POLICY_VIOLATION: "runs broke a rule {tool} enforces; check the rules before calling",
    Category.HALLUCINATED_TOOL: "runs called {tool}, which does not exist here",
    Category.ENVIRONMENT_FAILURE: "runs failed on the environment at {tool}; retry once, then stop",
    Category.TOOL_ERROR: "runs failed at {tool}",
}


@dataclass(frozen=True)
class Guidance:
    """Sections for the managed block, and the diagnosis counts behind them."""

    preconditions: tuple[str, ...] = ()
    verification: tuple[str, ...] = ()
    tool_notes: tuple[str, ...] = ()
    guardrails: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()  # functional skills that cover steps of the procedure
    conditions: tuple[Condition, ...] | None = None  # worked out already (None: from the runs)
    examples: tuple[Example, ...] | None = None  # likewise
    categories: dict[str, int] = field(default_factory=dict)

    def sections(self) -> list[str]:
        """Markdown lines: each non-empty section under its heading."""
        lines: list[str] = []
        for title, body in (
            ("Preconditions", self.preconditions),
            ("Verification", self.verification),
            ("Guardrails", self.guardrails),
            ("Tool notes", self.tool_notes),
        ):
            if body:
                lines += ["", f"## {title}", "", *body]
        return lines


def guidance(runs: Sequence[Trajectory], diagnoses: Sequence[Diagnosis]) -> Guidance:
    """Everything the cluster's runs and its failures' diagnoses teach besides the procedure."""
    ids = {r.id for r in runs}
    mine = [d for d in diagnoses if d.trajectory_id in ids]
    return Guidance(
        preconditions=_preconditions(runs),
        verification=_verification(runs),
        tool_notes=tuple(tool_notes(runs)),
        guardrails=_guardrails(mine),
        categories=dict(sorted(Counter(str(d.category) for d in mine).items())),
    )


def _code(text: str) -> str:
    return f"`{sanitize_inline(text, 60) or '?'}`"


def _n(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _preconditions(runs: Sequence[Trajectory]) -> tuple[str, ...]:
    lines = []
    for p in preconditions(runs, min_support=3, min_confidence=0.9):
        skipped = len(p.violating_failures)
        evidence = f"{p.support} successful runs did ({p.confidence:.0%})"
        if skipped:
            evidence += f"; {_n(skipped, 'failed run')} called {_code(p.tool)} without it"
        lines.append(f"- Call {_code(p.before)} before {_code(p.tool)}: {evidence}.")
    return tuple(lines[:MAX_LINES])


def _answer(runs: Sequence[Trajectory]) -> list[str]:
    """The form successful runs gave their final answer in, when they agree on a structure."""
    found = answer_forms(runs)
    if found is None:
        return []
    forms = " or ".join(f"{_code(f)} ({_n(n, 'run')})" for f, n in found.forms)
    line = f"- Successful runs gave the final answer as {forms}"
    legend = [
        said
        for pattern, said in _PLACEHOLDERS
        if any(pattern.search(f) for f, _ in found.forms)
    ]
    if legend:
        line += ", where " + " and ".join(legend)
    if found.failed_other:
        line += f"; {_n(found.failed_other, 'failed run')} answered in another form"
    return [line + "."]


def _verification(runs: Sequence[Trajectory]) -> tuple[str, ...]:
    """The form of the final answer, and how the successful runs' last real call looked."""
    endings: Counter[tuple[str, str]] = Counter()
    ok = [r for r in runs if r.succeeded is True]
    for run in ok:
        calls = [c for c in run.tool_calls if not is_helper(c.name)]
        if calls and not calls[-1].error:
            endings[(calls[-1].name, result_summary(calls[-1]))] += 1
    lines = _answer(runs)
    if not endings:
        return tuple(lines)
    (tool, shape), count = min(endings.items(), key=lambda kv: (-kv[1], kv[0]))
    lines.append(
        f"- Successful runs end with {_code(tool)} returning {quote(shape, 'result', 120)} "
        f"({count} of {len(ok)})."
    )
    failed_last = sum(
        1
        for r in runs
        if r.succeeded is False
        and r.tool_calls
        and r.tool_calls[-1].name == tool
        and r.tool_calls[-1].error
    )
    if failed_last:
        lines.append(
            f"- If {_code(tool)} returns an error, the task is not done: "
            f"{_n(failed_last, 'failed run')} ended on one."
        )
    lines.append("- Check the result before telling the user it is done.")
    return tuple(lines)


def _guardrails(diagnoses: Sequence[Diagnosis]) -> tuple[str, ...]:
    """Root causes seen at least twice, as advice; one-offs and helper tools are noise."""
    groups: dict[tuple[Category, str, str], list[Diagnosis]] = defaultdict(list)
    for d in diagnoses:
        needs_expected = "{expected}" in _ADVICE.get(d.category, "{expected}")
        if d.category not in _ADVICE or not d.tool or (needs_expected and not d.expected):
            continue
        if is_helper(d.tool) or (d.expected and is_helper(d.expected)):
            continue
        groups[(d.category, d.tool, d.expected or "")].append(d)
    lines = []
    for (category, tool, expected), found in sorted(
        groups.items(), key=lambda kv: (-len(kv[1]), str(kv[0][0]), kv[0][1], kv[0][2])
    ):
        if len(found) < MIN_GUARDRAIL_RUNS:
            continue
        advice = _ADVICE[category].format(tool=_code(tool), expected=_code(expected))
        line = f"- {category} ({_n(len(found), 'failed run')}): {advice}"
        if category in (Category.POLICY_VIOLATION, Category.INVALID_ARGUMENTS):
            said = Counter(quote(d.evidence, "error text", 100) for d in found if d.evidence)
            if said:
                line += f' (e.g. "{min(said, key=lambda t: (-said[t], t))}")'
        lines.append(line + ".")
    return tuple(lines[:MAX_LINES])


def tool_notes(runs: Sequence[Trajectory]) -> list[str]:
    """Argument forms that failed and forms that worked, per tool (as in DRAFT)."""
    worked: dict[str, Counter[str]] = defaultdict(Counter)
    failed: dict[str, Counter[str]] = defaultdict(Counter)
    for run in runs:
        for call in run.tool_calls:
            if is_helper(call.name):
                continue
            form = _form(call)
            if call.error:
                failed[call.name][form] += 1
            elif run.succeeded is True:
                worked[call.name][form] += 1
    notes = []
    for tool in sorted(failed, key=lambda t: (-sum(failed[t].values()), t)):
        bad = {f: n for f, n in failed[tool].items() if f not in worked[tool]}
        if sum(bad.values()) < MIN_NOTE_FAILURES or not worked[tool]:
            continue
        good_form, good_n = min(worked[tool].items(), key=lambda kv: (-kv[1], kv[0]))
        bad_form, bad_n = min(bad.items(), key=lambda kv: (-kv[1], kv[0]))
        notes.append(
            f"- {_code(tool)}: calls with {bad_form} failed {_n(bad_n, 'time')}; "
            f"calls with {good_form} worked ({_n(good_n, 'time')})."
        )
    return notes[:MAX_LINES]


def _form(call: ToolCall) -> str:
    """The shape of a call's arguments: which keys, and the JSON type of each."""
    if isinstance(call.arguments, str):
        return "arguments that are not a JSON object"
    if not call.arguments:
        return "no arguments"
    parts = []
    for key in sorted(call.arguments):
        value = call.arguments[key]
        kind = json.dumps(value)[:1] if not isinstance(value, bool) else "b"
        kind = {'"': "text", "[": "list", "{": "object", "b": "true/false", "n": "null"}.get(
            kind, "number"
        )
        parts.append(f"{sanitize_inline(str(key), 30)} ({kind})")
    return "keys " + ", ".join(parts)
