"""Functional skills: tool sequences that recur across task clusters, written once and referenced.

As in SkillX and MACRO: when several task-level skills share a fused stretch of tools
(P(next | tool) high in their successful runs), that stretch becomes its own small skill,
and each task-level skill says which of its steps it covers. Pure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from evolver.changes import Evidence, SkillChange, SkillDoc
from evolver.graph import is_helper, tool_path
from evolver.graph_patterns import Composite, composites
from evolver.model import Trajectory
from evolver.redact import sanitize_inline
from evolver.skillbody import argument_keys, code, guidance_of, plural
from evolver.skilldoc import parse, render, replace_managed_block, slugify

__all__ = [
    "FunctionalSkill",
    "functional_changes",
    "functional_from",
    "functional_skills",
    "uses_line",
]

MAX_FUNCTIONAL = 3
KIND_KEY = "skillforge.kind"
STEPS_KEY = "skillforge.steps"  # hash of the steps taught: see _steps_key


@dataclass(frozen=True)
class FunctionalSkill:
    """A shared tool sequence, its skill name, and the task clusters it recurs in."""

    name: str
    tools: tuple[str, ...]
    clusters: tuple[str, ...]
    runs: int
    confidence: float


def functional_skills(
    runs_by_cluster: Mapping[str, Sequence[Trajectory]],
    taken: set[str],
    library: Mapping[str, SkillDoc] | None = None,
) -> list[FunctionalSkill]:
    """The composites worth a skill of their own (no helper tools), named, at most a few.

    A library skill that already holds the same steps keeps its name (it is updated)."""
    return functional_from(composites(runs_by_cluster), taken, library)


def functional_from(
    found_composites: Sequence[Composite],
    taken: set[str],
    library: Mapping[str, SkillDoc] | None = None,
) -> list[FunctionalSkill]:
    """`functional_skills` from composites already found (`graph_patterns.composites_from`)."""
    ours = {name for name, doc in (library or {}).items() if _is_functional(doc)}
    found: list[FunctionalSkill] = []
    for comp in found_composites:
        if any(is_helper(t) for t in comp.tools):
            continue
        if any(_overlaps(comp.tools, f.tools) for f in found):
            continue  # steps 1-3 and 1-5 of one path are one skill, not two near-duplicates
        base, legacy = _base(comp), _legacy_base(comp)
        if legacy in ours and base not in ours:
            base = legacy  # named before names ran first-to-last: keep the library's name
        name = base if base in ours else _name(base, taken)
        taken.add(name)
        found.append(FunctionalSkill(name, comp.tools, comp.clusters, comp.runs, comp.confidence))
        if len(found) == MAX_FUNCTIONAL:
            break
    return found


def _is_functional(doc: SkillDoc) -> bool:
    try:
        meta = parse(doc.text)[0].get("metadata") or {}
    except ValueError:
        return False
    return isinstance(meta, dict) and meta.get(KIND_KEY) == "functional"


def _base(comp: Composite) -> str:
    """`a-then-b` for two steps, `a-to-z` (first to last) for more: a name that reads, never
    one cut off in the middle of the stretch."""
    first, last = slugify(comp.tools[0], 28), slugify(comp.tools[-1], 28)
    joint = "then" if len(comp.tools) == 2 else "to"
    return slugify(f"{first}-{joint}-{last}", 58) or "shared-steps"


def _legacy_base(comp: Composite) -> str:
    """The name earlier releases gave: every step joined by `-then-`, cut at 58 characters."""
    return slugify("-then-".join(comp.tools), 58) or "shared-steps"


def _overlaps(a: Sequence[str], b: Sequence[str]) -> bool:
    """Whether one stretch of steps lies inside the other."""
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    return _contains(long, short)


def _name(base: str, taken: set[str]) -> str:
    name, n = base, 2
    while name in taken and not name.startswith(base + "-"):
        name, n = f"{base}-{n}", n + 1
    return name


def uses_line(functional: Sequence[FunctionalSkill], path: Sequence[str]) -> list[str]:
    """Lines for a task-level skill whose procedure contains a functional skill's steps."""
    lines = []
    for f in functional:
        k = len(f.tools)
        for i in range(len(path) - k + 1):
            if tuple(path[i : i + k]) == f.tools:
                steps = f"steps {i + 1}-{i + k}" if k > 1 else f"step {i + 1}"
                lines.append(f"- {code(f.name)} covers {steps} of the procedure.")
                break
    return lines


def functional_changes(
    functional: Sequence[FunctionalSkill],
    runs_by_cluster: Mapping[str, Sequence[Trajectory]],
    library: Mapping[str, SkillDoc],
) -> list[SkillChange]:
    """A create (or, when its steps or argument keys changed, an update) per functional skill."""
    out = []
    for f in functional:
        runs = [r for cid in f.clusters for r in runs_by_cluster.get(cid, ())]
        ok = [r for r in runs if r.succeeded is True and _contains(tool_path(r), f.tools)]
        block = _block(f, ok)
        steps = _steps_key(block)
        existing = library.get(f.name)
        if existing is None:
            frontmatter = {
                "name": f.name,
                "description": _description(f),
                "metadata": {
                    "skillforge.managed": "true",
                    "skillforge.cluster": "composite:" + "+".join(f.clusters),
                    KIND_KEY: "functional",
                    STEPS_KEY: steps,
                },
            }
            title = " → ".join(code(t, 40) for t in f.tools)
            intro = (
                f"# Shared steps: {title}\n\nA functional skill: a stretch of steps that several "
                "task-level skills share. Edit anywhere outside the skillforge markers.\n"
            )
            content, action = render(frontmatter, replace_managed_block(intro, block)), "create"
        else:
            frontmatter, body = parse(existing.text)
            meta = frontmatter.get("metadata")
            meta = dict(meta) if isinstance(meta, dict) else {}
            if meta.get(STEPS_KEY) == steps:
                continue  # same steps and arguments, however the text was worded since
            frontmatter = {**frontmatter, "metadata": {**meta, STEPS_KEY: steps}}
            content, action = render(frontmatter, replace_managed_block(body, block)), "update"
            if STEPS_KEY not in meta and guidance_of(content.split("---", 2)[-1]) == guidance_of(
                body
            ):
                continue  # written before the steps key: same guidance, only figures moved
        ids = tuple(sorted(r.id for r in ok))
        basis = "|".join((f.name, *f.tools, *ids))
        out.append(
            SkillChange(
                skill=f.name,
                action=action,
                content=content,
                summary=_summary(action, f),
                reason=(
                    f"The steps {' → '.join(f.tools)} recur in {len(f.clusters)} task groups "
                    f"({', '.join(f.clusters)}), in {plural(len(ok), 'successful run')}, each "
                    f"step following the last in at least {f.confidence:.0%} of them; written "
                    "once here and referenced by the task-level skills."
                ),
                evidence=Evidence(
                    trajectory_ids=ids,
                    runs=len(ok),
                    successes=len(ok),
                    failures=0,
                    success_rate=1.0 if ok else 0.0,
                    fingerprint=hashlib.sha256(basis.encode()).hexdigest()[:16],
                ),
                cluster="composite:" + "+".join(f.clusters),
            )
        )
    return out


def _summary(action: str, f: FunctionalSkill) -> str:
    """The commit subject, within 72 characters, never cut in the middle of a word."""
    verb = "Add" if action == "create" else "Update"
    full = f"{verb} {f.name}: shared by {len(f.clusters)} task groups"
    return full if len(full) <= 72 else f"{verb} {f.name}"[:72]


def _description(f: FunctionalSkill) -> str:
    steps = ", then ".join(sanitize_inline(t, 40) for t in f.tools)
    return (
        (
            f"Shared steps: {steps}. Use when a task needs these calls in this order; several "
            "task-level skills refer to it."
        )
        .replace("<", "")
        .replace(">", "")[:1024]
    )


def _steps_key(block: str) -> str:
    """A hash of the steps and argument keys a block teaches (its part before the evidence):
    kept in the metadata, so an update is proposed only when they change, even after a
    person or an LLM reworded the text."""
    return hashlib.sha256(block.split("## Evidence", 1)[0].encode()).hexdigest()[:16]


def _block(f: FunctionalSkill, ok: Sequence[Trajectory]) -> str:
    lines = ["## Procedure", ""]
    for i, tool in enumerate(f.tools, 1):
        keys = [code(k) for k in argument_keys(ok, tool)[:6]]
        lines.append(f"{i}. Call {code(tool)}" + (f" with {', '.join(keys)}." if keys else "."))
    lines += [
        "",
        "## Evidence",
        "",
        f"- Recurs in {plural(len(f.clusters), 'task group')}: "
        + ", ".join(f"`{c}`" for c in f.clusters),
        f"- {plural(len(ok), 'successful run')} took these steps; each step followed the "
        f"previous in at least {f.confidence:.0%} of them",
    ]
    return "\n".join(lines)


def _contains(seq: Sequence[str], part: Sequence[str]) -> bool:
    k = len(part)
    return any(tuple(seq[i : i + k]) == tuple(part) for i in range(len(seq) - k + 1))
