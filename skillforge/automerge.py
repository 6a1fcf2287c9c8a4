"""The opt-in auto-merge policy: which proposals may land on main without a person's review.

A proposal qualifies only when every change is an update of a skillforge-written skill that
only adds lines to the Pitfalls or Guardrails sections of its managed block, each added line
backed by at least `min_failures` failed runs (the count the line states, else the change's
failed runs). Nothing deleted or reworded, no new or retired skill, no person-written skill
touched, nothing outside the managed block. The Evidence section and the `skillforge.*`
metadata are bookkeeping every update rewrites, so they are not compared.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from evolver.changes import SkillChange
from evolver.skilldoc import BLOCK_BEGIN, BLOCK_END, find_managed_block, is_managed, parse

from .hosts.base import CodeHost
from .library import LibraryRepo
from .store import Store, utcnow

ADDABLE = ("Pitfalls", "Guardrails")
BOOKKEEPING = ("Evidence",)
_FAILED = re.compile(r"(\d+) failed runs?\b")


@dataclass(frozen=True)
class Verdict:
    """Whether the policy lets a proposal merge, and why (or why not, one line per problem)."""

    allowed: bool
    reasons: tuple[str, ...]


def check(changes: Sequence[SkillChange], library: Mapping[str, str], min_failures: int) -> Verdict:
    """Judge a proposal's changes against main's skill texts (`library`: name -> SKILL.md)."""
    if not changes:
        return Verdict(False, ("the proposal holds no change",))
    problems = [p for c in changes for p in _problems(c, library.get(c.skill), min_failures)]
    if problems:
        return Verdict(False, tuple(problems))
    names = ", ".join(c.skill for c in changes)
    return Verdict(
        True,
        (
            f"only added pitfalls/guardrails backed by >= {min_failures} failed runs, "
            f"to skillforge-written skills ({names})",
        ),
    )


def _problems(change: SkillChange, old: str | None, min_failures: int) -> list[str]:
    skill = change.skill
    if change.action != "update":
        return [f"{skill}: a {change.action} needs a person's review"]
    if old is None:
        return [f"{skill}: not on main"]
    try:
        old_meta, old_body = parse(old)
        new_meta, new_body = parse(change.content)
        old_span, new_span = find_managed_block(old_body), find_managed_block(new_body)
    except ValueError as exc:
        return [f"{skill}: cannot be read ({exc})"]
    if not is_managed(old_meta):
        return [f"{skill}: a person-written skill"]
    if _bookkeeping_free(old_meta) != _bookkeeping_free(new_meta):
        return [f"{skill}: its frontmatter changes"]
    if old_span is None or new_span is None:
        return [f"{skill}: has no managed block"]
    if _outside(old_body, old_span) != _outside(new_body, new_span):
        return [f"{skill}: text outside the managed block changes"]
    old_sections = _sections(old_body[old_span[0] : old_span[1]])
    new_sections = _sections(new_body[new_span[0] : new_span[1]])
    problems: list[str] = []
    added: list[str] = []
    for title in dict.fromkeys([*old_sections, *new_sections]):
        if title in BOOKKEEPING:
            continue
        before, after = old_sections.get(title, []), new_sections.get(title, [])
        if title not in ADDABLE:
            if before != after:
                problems.append(f"{skill}: its {title or 'opening'} section changes")
            continue
        lines = _insertions(before, after)
        if lines is None:
            problems.append(f"{skill}: lines of its {title} section are removed or reworded")
        else:
            added += lines
    if not problems and not added:
        problems.append(f"{skill}: adds no pitfall or guardrail")
    for line in added:
        found = _FAILED.search(line)
        backed = int(found.group(1)) if found else change.evidence.failures
        if backed < min_failures:
            problems.append(
                f"{skill}: an added line is backed by {backed} failed runs (< {min_failures})"
            )
    return problems


def _bookkeeping_free(frontmatter: dict[str, Any]) -> dict[str, Any]:
    meta = frontmatter.get("metadata")
    if isinstance(meta, dict):
        meta = {k: v for k, v in meta.items() if not str(k).startswith("skillforge.")}
    return {**frontmatter, "metadata": meta}


def _outside(body: str, span: tuple[int, int]) -> str:
    return body[: span[0]] + body[span[1] :]


def _sections(block: str) -> dict[str, list[str]]:
    """Non-blank lines of the managed block by `## ` section title ('' before the first)."""
    sections: dict[str, list[str]] = {"": []}
    title = ""
    for line in block.replace(BLOCK_BEGIN, "").replace(BLOCK_END, "").splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
            sections.setdefault(title, [])
        elif line.strip():
            sections[title].append(line.rstrip())
    return sections


def _insertions(before: list[str], after: list[str]) -> list[str] | None:
    """The lines `after` adds to `before`, or None when it also removes or rewrites some."""
    added: list[str] = []
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for op, _, _, j1, j2 in matcher.get_opcodes():
        if op == "insert":
            added += after[j1:j2]
        elif op != "equal":
            return None
    return added


def merge(
    store: Store,
    repo: LibraryRepo,
    host: CodeHost | None,
    proposal: Mapping[str, Any],
    verdict: Verdict,
    *,
    now: datetime | None = None,
) -> str:
    """Merge an allowed proposal (through the host's merge API when it has a pull request),
    record it accepted with the policy as the reason, and return main's new sha. Hold the lock."""
    title = f"Auto-merge skill proposal {proposal['id']}"
    if host is not None and proposal.get("pr_number"):
        host.merge(int(proposal["pr_number"]), title)
        sha = repo.fast_forward_main()
    else:
        sha = repo.merge(proposal["branch"], title)
    reason = f"auto-merged under policy (auto_merge): {verdict.reasons[0]}"
    store.decide(proposal["id"], "accepted", reason=reason, now=now or utcnow())
    repo.delete_branch(proposal["branch"])
    return sha
