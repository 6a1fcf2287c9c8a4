"""The proposal description a reviewer reads: summary table, per-skill reasons and evidence.

It is also the body of a pull request, so every string from runs (run ids, tool names, skill
and cluster names, error texts, reasons and notes) goes through `evolver.markup`'s one escape:
no HTML, link, heading or table break gets in, and an error text that reads as instructions is
withheld and counted, not quoted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from evolver.changes import ChangeSet, SkillChange, withheld_note
from evolver.checks import CHECKS_FILE
from evolver.markup import code, inline, looks_injected, withheld
from evolver.markup import lines as paragraph
from evolver.redact import sanitize_inline

from .pictures import Picture

if TYPE_CHECKING:
    from .llm.budget import Usage
    from .refine import Refined

MAX_IDS = 50
MAX_LESSONS = 12
_KIND = {"create": "new skill", "update": "update", "retire": "retire"}


def describe(
    proposal_id: str,
    branch: str,
    changes: Sequence[SkillChange],
    changeset: ChangeSet,
    pictures: Mapping[str, Picture] | None = None,
    llm: Refined | None = None,
) -> str:
    """Markdown for a proposal (also the body of a pull request on a code host); `llm` adds
    what the LLM pass did and cost, per skill."""
    pictures = pictures or {}
    runs = changeset.trajectories
    lines = [
        f"# Skill proposal {proposal_id}",
        "",
        f"{len(changes)} skill change{'s' if len(changes) != 1 else ''} learned from {runs} "
        f"trajectories, on branch {code(branch, 120)}.",
        *_withheld_total(changes),
        "",
        "| Skill | Change | Runs | Success rate | Most frequent pitfall |",
        "|---|---|---|---|---|",
    ]
    for change in changes:
        ev = change.evidence
        top = ev.errors[0] if ev.errors else None
        pitfall = f"{code(top.tool)} ({top.count}×)" if top else "none seen"
        action = {"create": "new", "update": "update", "retire": "retire"}[change.action]
        lines.append(
            f"| {code(change.skill)} | {action} | {ev.runs} | {ev.success_rate:.0%} "
            f"({ev.successes}/{ev.runs}) | {pitfall} |"
        )
    lines += _llm_total(llm)
    for change in changes:
        lines += ["", *_section(change), *_llm_line(llm, change)]
        lines += _picture(pictures.get(change.skill))
    if changeset.tool_graph_mermaid:
        lines += [
            "",
            "## Tool transitions",
            "",
            "Tools as nodes; an edge per observed transition (count, success rate of its runs).",
            "",
            "```mermaid",
            changeset.tool_graph_mermaid.strip(),
            "```",
        ]
    lines += [
        "",
        "## How to review",
        "",
        "```",
        f"skillforge review show {proposal_id}      # the diff and this description",
        f"skillforge review accept {proposal_id}    # merge into main and push",
        f'skillforge review reject {proposal_id} --reason "..."',
        "```",
        "",
    ]
    return "\n".join(lines)


def _llm_total(llm: Refined | None) -> list[str]:
    if llm is None:
        return []
    total = llm.total
    return [
        "",
        f"LLM pass ({llm.provider}, `{llm.model}`): {len(llm.written)} of these changes were "
        f"written or edited by the model; {_usage(total)} in all.",
    ]


def _usage(usage: Usage) -> str:
    return (
        f"{usage.calls} call{'s' if usage.calls != 1 else ''}, {usage.input_tokens:,} in / "
        f"{usage.output_tokens:,} out tokens, ~${usage.cost_usd:.4f}"
    )


def _llm_line(llm: Refined | None, change: SkillChange) -> list[str]:
    """What the LLM did for this skill and what it cost, or why its text stayed offline."""
    if llm is None or change.skill not in llm.usage_by_skill:
        return []
    cached = llm.cached_by_skill.get(change.skill, 0)
    line = f"- LLM: {_usage(llm.usage_by_skill[change.skill])}"
    if cached:
        line += f", {cached} answer{'s' if cached != 1 else ''} from the cache"
    notes = [inline(note, 400) for note in llm.notes.get(change.skill, ())]
    return [line + (f". {'; '.join(notes)}." if notes else ".")]


def _picture(picture: Picture | None) -> list[str]:
    if picture is None:
        return []
    files = ", ".join(f"`{p}`" for p in picture.files)  # our own paths
    return [
        "",
        "<details><summary>Tool graph of these runs</summary>",
        "",
        "```mermaid",
        picture.mermaid.strip(),
        "```",
        "",
        f"As files: {files}",
        "",
        "</details>",
    ]


def _section(change: SkillChange) -> list[str]:
    ev = change.evidence
    ids = ", ".join(code(i, 200) for i in ev.trajectory_ids[:MAX_IDS])
    if len(ev.trajectory_ids) > MAX_IDS:
        ids += f" and {len(ev.trajectory_ids) - MAX_IDS} more"
    lines = [
        f"## {code(change.skill)} ({_KIND[change.action]})",
        "",
        f"**{inline(change.summary, 300)}**",
        "",
        paragraph(change.reason),
        "",
        f"- Runs: {ev.runs} ({ev.successes} succeeded, {ev.failures} failed, "
        f"{ev.success_rate:.0%} success), cluster {code(change.cluster, 300)}",
        f"- Evidence fingerprint: {code(ev.fingerprint)}",
        f"- Trajectories: {ids}",
    ]
    note = withheld_note(change.withheld)
    if note:
        lines.append(f"- {note}")
    lines += _lessons(change)
    if ev.errors:
        lines += ["", "| Tool | Error | Seen | Failed runs |", "|---|---|---|---|"]
        for err in ev.errors[:10]:
            hidden = err.message == withheld() or looks_injected(err.message)
            message = f"({withheld()})" if hidden else inline(err.message, 120)
            lines.append(f"| {code(err.tool)} | {message} | {err.count} | {err.failed_runs} |")
    return lines


def _lessons(change: SkillChange) -> list[str]:
    """The skill's lessons as its checks.json holds them, each with what it did on held-out
    tasks: what a reviewer weighs before merging the text that states them."""
    try:
        checks = json.loads(change.files.get(CHECKS_FILE) or "{}").get("checks") or []
    except (json.JSONDecodeError, AttributeError):
        return []
    if not isinstance(checks, list) or not checks:
        return []
    lines = [
        "",
        "| Lesson | Runs that did it: succeeded | Runs that did not | p |",
        "|---|---|---|---|",
    ]
    for check in checks[:MAX_LESSONS]:
        held = check.get("held_out") or {}
        did, other = held.get("complied") or (0, 0), held.get("other") or (0, 0)
        lines.append(
            f"| {inline(str(check.get('says', '')), 200)} | {_share(*did)} | {_share(*other)} "
            f"| {inline(str(held.get('p_value', '')), 12)} |"
        )
    return lines


def _share(ok: int, n: int) -> str:
    return f"{ok / n:.0%} of {n}" if n else "none"


def _withheld_total(changes: Sequence[SkillChange]) -> list[str]:
    """One line for the top of the proposal when any text of the runs was withheld."""
    total: dict[str, int] = {}
    for change in changes:
        for kind, n in change.withheld.items():
            total[kind] = total.get(kind, 0) + n
    note = withheld_note(total)
    return ["", note.replace("of these runs", "of the runs behind these changes")] if note else []


MAX_FEEDBACK = 5


def with_feedback(change: SkillChange, notes: Sequence[str]) -> SkillChange:
    """The change with reviewers' earlier feedback on its skill (the newest `MAX_FEEDBACK`
    notes, redacted, one line each; escaped where the reason is rendered) after its reason,
    so the reviewer sees it was heard."""
    if not notes:
        return change
    lines = [f"- {sanitize_inline(note, 400)}" for note in notes[-MAX_FEEDBACK:]]
    reason = f"{change.reason}\n\nReviewer feedback on earlier proposals of this skill:\n"
    return change.model_copy(update={"reason": reason + "\n".join(lines)})
