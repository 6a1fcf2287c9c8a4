"""A SKILL.md read into a checkable SkillSpec, so that runs can be scored against what it says."""

from __future__ import annotations

import re
from dataclasses import dataclass

from evolver.changes import SkillDoc
from evolver.checks import CHECKS_FILE, CheckSet, load_checks
from evolver.cluster import task_tokens
from evolver.composite import KIND_KEY
from evolver.conditions import Fact
from evolver.examples import Example
from evolver.skilldoc import find_managed_block, parse

__all__ = ["Pitfall", "SkillSpec", "skill_spec"]

_TICKED = re.compile(r"`([^`\n]+)`")
_STEP = re.compile(r"^\s*\d+\.\s+Call\s+`([^`\n]+)`(.*)$")
_ERROR_PITFALL = re.compile(r'^- `([^`\n]+)` failed with "([^"\n]*)"')
_ONLY_FAILED = re.compile(r"^- `([^`\n]+)` was used by .* and by no successful run")
_CONDITION = re.compile(
    r"^- `([^`\n]+)` was called (?:with|after `([^`\n]+)` returned) `([^`\n]+)` = `([^`\n]+)` in"
)
_ANSWER = "- Successful runs gave the final answer as "
_ANSWER_FORM = re.compile(r"`([^`\n]+)` \(\d+ runs?\)")
_EXAMPLE = re.compile(r'^- "([^"\n]*)": changed (.*) \((\d+) runs?\)$')
_LIMIT = re.compile(r"^- `([^`\n]+)` was called more than (once|\d+ times) in")
_KEY_TERMS = re.compile(r"^- Key terms:\s*(.*)$")
_MAIN_TOOLS = re.compile(r"^- Main tools:\s*(.*)$")
_USE_WHEN = re.compile(r"Use when a request involves ([^.]*)\.")


@dataclass(frozen=True)
class Pitfall:
    """What failed runs did: `tool` failing with `message`, used at all, called too often, or
    called while `fact` held."""

    tool: str
    kind: str  # "error" | "failed-only" | "limit" | "condition"
    message: str = ""  # the normalised error, lowercase (kind "error")
    limit: int = 0  # most calls any successful run made (kind "limit")
    fact: Fact | None = None  # what held at the call (kind "condition")


@dataclass(frozen=True)
class SkillSpec:
    """What a skill says, in a form a run can be checked against."""

    name: str
    terms: frozenset[str]
    tools: frozenset[str]  # the main tools the skill names
    procedure: tuple[tuple[str, tuple[str, ...]], ...]  # (tool, argument keys), in order
    paths: tuple[tuple[str, ...], ...]  # the procedure's tools, then other paths that worked
    pitfalls: tuple[Pitfall, ...]
    answer_forms: frozenset[str] = frozenset()  # the forms successful runs answered in
    examples: tuple[Example, ...] = ()  # requests that succeeded and the changes they made
    functional: bool = False  # shared steps other skills refer to, not a task of its own
    checks: CheckSet | None = None  # the skill's checks.json, when it has one

    @property
    def known_tools(self) -> frozenset[str]:
        """Every tool the skill tells an agent to call."""
        return frozenset(t for p in self.paths for t in p) | self.tools


def _sections(body: str) -> dict[str, list[str]]:
    """Lines under each `## Title` of the managed block (of the whole body if it has none)."""
    try:
        span = find_managed_block(body)
    except ValueError:
        span = None
    text = body[span[0] : span[1]] if span else body
    out: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("## "):
            current = line[3:].strip().lower()
            out.setdefault(current, [])
        elif current:
            out[current].append(line)
    return out


def skill_spec(doc: SkillDoc) -> SkillSpec | None:
    """Read a SKILL.md into a SkillSpec; None when it does not parse or has no procedure step."""
    try:
        fm, body = parse(doc.text)
    except ValueError:
        return None
    sections = _sections(body)
    words: list[str] = []
    tools: set[str] = set()
    if use_when := _USE_WHEN.search(str(fm.get("description") or "")):
        words.append(use_when.group(1))
    for line in sections.get("when to use", []):
        if m := _KEY_TERMS.match(line):
            words.append(m.group(1))
        elif m := _MAIN_TOOLS.match(line):
            tools.update(_TICKED.findall(m.group(1)))
    procedure: list[tuple[str, tuple[str, ...]]] = []
    paths: list[tuple[str, ...]] = []
    for line in sections.get("procedure", []):
        if m := _STEP.match(line):
            procedure.append((m.group(1), tuple(_TICKED.findall(m.group(2)))))
        elif line.startswith("- ") and "→" in line:
            paths.append(tuple(_TICKED.findall(line.rsplit("(", 1)[0])))
    if not procedure and doc.files.get(CHECKS_FILE) is None:
        return None
    meta = fm.get("metadata")
    pitfalls: list[Pitfall] = []
    for line in sections.get("pitfalls", []):
        if m := _ERROR_PITFALL.match(line):
            pitfalls.append(Pitfall(m.group(1), "error", m.group(2).lower()))
        elif m := _ONLY_FAILED.match(line):
            pitfalls.append(Pitfall(m.group(1), "failed-only"))
        elif m := _LIMIT.match(line):
            limit = 1 if m.group(2) == "once" else int(m.group(2).split()[0])
            pitfalls.append(Pitfall(m.group(1), "limit", limit=limit))
        elif m := _CONDITION.match(line):
            fact = Fact(m.group(2) or "", m.group(3), m.group(4))
            pitfalls.append(Pitfall(m.group(1), "condition", fact=fact))
    answers = [
        form
        for line in sections.get("verification", [])
        if line.startswith(_ANSWER)
        for form in _ANSWER_FORM.findall(line)
    ]
    examples = tuple(
        Example(tuple(m.group(1).split()), frozenset(_TICKED.findall(m.group(2))), int(m.group(3)))
        for line in sections.get("examples", [])
        if (m := _EXAMPLE.match(line))
    )
    return SkillSpec(
        name=doc.name,
        terms=task_tokens(re.sub(r",| or ", " ", " ".join(words))),
        tools=frozenset(tools),
        procedure=tuple(procedure),
        paths=tuple(dict.fromkeys([tuple(t for t, _ in procedure), *paths])),
        pitfalls=tuple(pitfalls),
        answer_forms=frozenset(answers),
        examples=examples,
        functional=isinstance(meta, dict) and meta.get(KIND_KEY) == "functional",
        checks=_checks(doc),
    )


def _checks(doc: SkillDoc) -> CheckSet | None:
    """The skill's checks.json; None without one or when it does not parse (then the prose is
    scored, as for a person's skill)."""
    text = doc.files.get(CHECKS_FILE)
    if text is None:
        return None
    try:
        return load_checks(text, doc.name)
    except ValueError:
        return None
