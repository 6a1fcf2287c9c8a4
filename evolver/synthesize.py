"""Turn one cluster of runs into a SkillChange: name, description, procedure, pitfalls, evidence.

Every piece of trajectory text is redacted and neutralised before it is quoted, and text
that reads as instructions, a command or a link is withheld (`evolver.markup`): the change
counts what was, for the reviewer. Only the managed block (and, for skillforge's own skills,
the description) is ever regenerated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from evolver.changes import MANAGED_KEY, ErrorPattern, Evidence, SkillChange, SkillDoc
from evolver.checks import CHECKS_FILE, Measured, checks_document, task_key, validated
from evolver.cluster import Cluster, idf
from evolver.composite import FunctionalSkill, uses_line
from evolver.diagnose import Diagnosis, Lessons
from evolver.graph import changes_state, evidence, is_helper, path_counts, tool_path
from evolver.guidance import guidance
from evolver.markup import looks_injected, strip_injected, withheld
from evolver.model import Trajectory
from evolver.naming import intent_name
from evolver.redact import sanitize_inline
from evolver.skillbody import (
    argument_keys,
    code,
    guidance_of,
    key_terms,
    main_tools,
    ok_runs,
    percent,
    plural,
    quotes_injected,
    recorded,
    render_block,
    tool_runs,
)
from evolver.skilldoc import (
    MAX_NAME,
    find_managed_block,
    is_managed,
    parse,
    problems,
    render,
    replace_managed_block,
    slugify,
    split,
)

__all__ = [  # the evidence helpers (error_patterns, evidence, fingerprint) live in graph.py
    "Totals",
    "View",
    "action_tool",
    "argument_keys",
    "candidate_names",
    "candidate_names_from",
    "derive_name",
    "legacy_names",
    "legacy_names_from",
    "naming_requests",
    "describe",
    "render_block",
    "synthesize",
    "tool_idf",
    "view",
]

CLUSTER_KEY = "skillforge.cluster"
VERSION_KEY = "skillforge.version"
EVIDENCE_KEY = "skillforge.evidence"
FINGERPRINT_KEY = "skillforge.fingerprint"
MIN_ACTION_SHARE = 1 / 3  # an action tool names a skill only if this share of successes used it


def action_tool(
    cluster: Cluster, tool_idf: Mapping[str, float], *, actions_only: bool = True
) -> str | None:
    """The most distinctive action tool of the successful runs (share x idf); None if none.

    Query-like tools (get_, search_, ...) count only with `actions_only=False`; reasoning
    helpers (think, calculate) and tools few successes used never do."""
    ok = ok_runs(cluster.members)
    return _action(tool_runs(ok), len(ok), tool_idf, actions_only)


def _action(
    ok_tools: Mapping[str, int], n_ok: int, tool_idf: Mapping[str, float], actions_only: bool
) -> str | None:
    """`action_tool` from how many of the `n_ok` successful runs called each tool."""
    if not n_ok:
        return None
    default = max(tool_idf.values(), default=1.0)
    scores = {
        tool: n / n_ok * tool_idf.get(tool, default)
        for tool, n in ok_tools.items()
        if n / n_ok >= MIN_ACTION_SHARE
        and not is_helper(tool)
        and not (actions_only and not changes_state(tool))
    }
    return min(scores, key=lambda t: (-scores[t], t)) if scores else None


def candidate_names(
    cluster: Cluster, tool_idf: Mapping[str, float], background: Sequence[str] = ()
) -> list[str]:
    """Names to try in order: the intent its requests ask for (verb-object, never a tool's
    name), then that with a keyword appended. `tool_idf` is kept for callers' signatures."""
    return candidate_names_from(intent_name(_tasks(cluster), background), key_terms(cluster))


def candidate_names_from(base: str, terms: Sequence[str]) -> list[str]:
    """`candidate_names` from the intent name and the cluster's key terms."""
    keywords = [slugify(k, 20) for k in terms if slugify(k, 20) != "skill"]
    names = [base]
    used = set(base.split("-"))
    for word in keywords:
        if word not in used:
            names.append(slugify(f"{base}-{word}", MAX_NAME))
    return list(dict.fromkeys(names))


def legacy_names(cluster: Cluster, tool_idf: Mapping[str, float]) -> list[str]:
    """The names skillforge gave before skills were named by intent (the distinctive action
    tool, else key terms): a library written then keeps being updated, not duplicated."""
    ok = ok_runs(cluster.members)
    return legacy_names_from(tool_runs(ok), len(ok), tool_idf, cluster.keywords)


def legacy_names_from(
    ok_tools: Mapping[str, int], n_ok: int, tool_idf: Mapping[str, float], keywords: Sequence[str]
) -> list[str]:
    """`legacy_names` from how many successful runs called each tool, and the keywords."""
    tool = _action(ok_tools, n_ok, tool_idf, True) or _action(ok_tools, n_ok, tool_idf, False)
    keywords = [slugify(k, 20) for k in keywords if slugify(k, 20) != "skill"]
    if tool:
        return [slugify(tool, 48)]
    return [slugify("-".join(keywords[:3]), 48)] if keywords else []


def derive_name(
    cluster: Cluster,
    tool_idf: Mapping[str, float],
    taken: Collection[str],
    background: Sequence[str] = (),
) -> str:
    """The cluster's intent name (verb-object from its requests, against the `background` of
    other clusters' requests), made unique against `taken`."""
    return intent_name(_tasks(cluster), background, taken)


MAX_NAMING_TASKS = 120  # a family's requests read for its name: plenty to find its intent


def naming_tasks(runs: Sequence[Trajectory], limit: int = MAX_NAMING_TASKS) -> list[str]:
    """Distinct requests of some runs, at most `limit`, picked by a hash so the same runs give
    the same pick in any order (naming reads each request closely; a sample says the same),
    without the parts that read as instructions, a command or a link: no name comes of them."""
    return naming_requests([r.task for r in runs], limit)


def naming_requests(tasks: Sequence[str], limit: int = MAX_NAMING_TASKS) -> list[str]:
    """`naming_tasks` from the requests themselves."""
    distinct = sorted(set(tasks))
    if len(distinct) > limit:
        distinct = sorted(distinct, key=lambda t: hashlib.sha256(t.encode()).digest())[:limit]
    return [strip_injected(t) if looks_injected(t) else t for t in distinct]


def _tasks(cluster: Cluster) -> list[str]:
    return naming_tasks(cluster.members)


def _join(items: Sequence[str], last: str = "or") -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


def _title(name: str) -> str:
    """The intent in words: the name's verb and object ("Cancel reservation")."""
    words = [w for w in name.split("-") if not w.isdigit()]
    return " ".join(words).capitalize()


def describe(name: str, cluster: Cluster) -> str:
    """The frontmatter description: the action, when to use it (key terms), the main tools."""
    return _describe(name, key_terms(cluster), main_tools(cluster.members))


def _describe(name: str, terms: Sequence[str], main: Sequence[str]) -> str:
    parts = [f"{_title(name)}, following what worked in past agent runs."]
    words = [sanitize_inline(k, 40) for k in terms[:6]]
    if words:
        parts.append(f"Use when a request involves {_join(words)}.")
    tools = [sanitize_inline(t, 60) for t in main]
    if tools:
        parts.append(f"Main tools: {_join(tools, 'and')}.")
    return sanitize_inline(" ".join(parts), 1024).replace("<", "").replace(">", "")


def _summary(verb: str, name: str, ev: Evidence, path: Sequence[str]) -> str:
    known = ev.successes + ev.failures
    head = f"{verb} {name}: {ev.successes}/{known} runs succeed"
    tools = [sanitize_inline(t, 40) for t in path]
    options = []
    if tools:
        options.append(f"{head} via {' → '.join(tools)}")
        if len(tools) > 2:
            options.append(f"{head} via … → {tools[-2]} → {tools[-1]}")
            options.append(f"{head} via {tools[0]} → … → {tools[-1]}")
        options.append(f"{head} via {tools[-1]}")
    options.append(head)
    for option in options:
        if len(option) <= 72:
            return option
    return head[:71] + "…"


def _reason(
    cluster_id: str, terms: Sequence[str], ev: Evidence, path: Sequence[str], ok_on_path: int
) -> str:
    known = ev.successes + ev.failures
    words = ", ".join(sanitize_inline(k, 40) for k in terms[:5]) or "none"
    text = (
        f"Cluster {cluster_id} groups {ev.runs} similar runs (key terms: {words}). "
        f"{ev.successes} of {known} runs with a known outcome succeeded "
        f"({percent(ev.successes, known)})"
    )
    if path:
        shown = " → ".join(sanitize_inline(t, 40) for t in path)
        text += f"; {plural(ok_on_path, 'successful run')} followed {shown}"
    text += "."
    top = ev.errors[:3]
    if top:
        pits = "; ".join(
            f"{sanitize_inline(p.tool, 40)} {_said(p.message)} ({plural(p.count, 'time')} in "
            f"{plural(p.failed_runs, 'failed run')})"
            for p in top
        )
        text += f" Top pitfalls: {pits}."
    return text


def _said(message: str) -> str:
    """An error message quoted, or the stand-in saying it was withheld."""
    hidden = message == withheld() or looks_injected(message)
    return f"({withheld()})" if hidden else f'"{message}"'


def _safe_evidence(ev: Evidence) -> Evidence:
    """The evidence with each error message that reads as instructions replaced by the
    stand-in, so no later reader (proposal, LLM facts) can quote it."""
    if not any(looks_injected(e.message) for e in ev.errors):
        return ev
    errors = tuple(
        ErrorPattern(
            tool=e.tool,
            message=withheld() if looks_injected(e.message) else e.message,
            count=e.count,
            failed_runs=e.failed_runs,
        )
        for e in ev.errors
    )
    return ev.model_copy(update={"errors": errors})


def _withheld_counts(
    runs: Sequence[Trajectory], ev: Evidence, measured: Sequence[Measured]
) -> dict[str, int]:
    """How many distinct texts of each kind these runs would have had quoted, but that read
    as instructions, a command or a link: error texts, requests, argument names."""
    errors = {e.message.lower() for e in ev.errors if looks_injected(e.message)}
    others: set[tuple[str, str]] = set()
    for m in measured:
        c = m.check
        if not quotes_injected(c):
            continue
        if c.kind == "error":
            errors.add(c.text.lower())
        elif c.kind != "example":  # its requests are counted with the others
            others.add((_KIND_QUOTED.get(c.kind, "argument value"), c.text))
    requests = {r.task for r in runs if looks_injected(r.task)}
    counts = {"error text": len(errors), "request": len(requests)}
    for kind, _ in others:
        counts[kind] = counts.get(kind, 0) + 1
    return {k: v for k, v in sorted(counts.items()) if v}


_KIND_QUOTED = {"args": "argument name", "answer": "answer form"}


def _version(meta: Mapping[str, Any]) -> int:
    try:
        return max(int(str(meta.get(VERSION_KEY, "1")).strip()), 0)
    except ValueError:
        return 1


@dataclass(frozen=True)
class View:
    """What a skill takes from its cluster's runs (all of them, or a sample): the managed
    block, the path most successes took, the errors, key terms and main tools, what was
    withheld, and which runs these are. Plain data, so a caller can keep it between cycles
    and write the skill again from it without the runs when only the totals moved."""

    block: str
    path: tuple[str, ...]
    ok_on_path: int
    errors: tuple[ErrorPattern, ...]
    categories: dict[str, int]
    terms: tuple[str, ...]
    tools: tuple[str, ...]
    hidden: dict[str, int]
    tasks: int
    ids: tuple[str, ...]
    successes: int
    failures: int
    fingerprint: str


@dataclass(frozen=True)
class Totals:
    """Figures of all a cluster's runs when its members are a sample of them."""

    runs: int
    successes: int
    failures: int
    fingerprint: str


def view(
    cluster: Cluster,
    *,
    max_listed_ids: int = 20,
    diagnoses: Sequence[Diagnosis] = (),
    functional: Sequence[FunctionalSkill] = (),
    lessons: Lessons | None = None,
    checked: Sequence[Measured] = (),
) -> View:
    """The `View` of a cluster's members, with the lessons `checked` that held out."""
    runs = cluster.members
    counts = path_counts(runs)
    path = min(counts, key=lambda p: (-counts[p], len(p), p)) if counts else ()
    guide = replace(
        guidance(runs, diagnoses),
        uses=tuple(uses_line(functional, path)),
        conditions=None if lessons is None else tuple(lessons.conditions),
        examples=None if lessons is None else tuple(lessons.examples),
    )
    raw = evidence(runs).model_copy(update={"categories": guide.categories})
    return View(
        block=render_block(cluster, max_listed_ids, guide, checked),
        path=path,
        ok_on_path=counts[path] if path else 0,
        errors=raw.errors,
        categories=dict(guide.categories),
        terms=tuple(key_terms(cluster)),
        tools=tuple(main_tools(runs)),
        hidden=_withheld_counts(runs, raw, checked),
        tasks=len({task_key(r) for r in runs if r.succeeded is not None}),
        ids=raw.trajectory_ids,
        successes=raw.successes,
        failures=raw.failures,
        fingerprint=raw.fingerprint,
    )


def _with_totals(block: str, seen: View, totals: Totals, max_listed_ids: int) -> str:
    """The block's Evidence figures of all the runs (the rest was learned from the sample),
    and a line that says so."""
    head, _, tail = block.partition("## Evidence")
    unknown = totals.runs - totals.successes - totals.failures
    known = totals.successes + totals.failures
    listed = ", ".join(code(i, 80) for i in seen.ids[:max_listed_ids])
    more = totals.runs - min(len(seen.ids), max_listed_ids)
    out = []
    for line in tail.split("\n"):
        if line.startswith("- Runs: "):
            line = (
                f"- Runs: {totals.runs} ({totals.successes} succeeded, {totals.failures} failed, "
                f"{unknown} unknown); success rate {percent(totals.successes, known)}"
            )
            out.append(line)
            line = (
                f"- Sample: what this block says besides these figures was learned from "
                f"{len(seen.ids)} of the {totals.runs} runs, picked by a hash of their ids"
            )
        elif line.startswith("- Trajectories: "):
            line = f"- Trajectories: {listed}" + (f" and {more} more" if more > 0 else "")
        elif line.startswith("- Fingerprint: "):
            line = f"- Fingerprint: `{totals.fingerprint}`"
        out.append(line)
    return head + "## Evidence" + "\n".join(out)


def synthesize(
    cluster: Cluster,
    name: str,
    existing: SkillDoc | None = None,
    *,
    max_listed_ids: int = 20,
    mapped_by: str = "",
    diagnoses: Sequence[Diagnosis] = (),
    rewrite_after: int = 3,
    functional: Sequence[FunctionalSkill] = (),
    lessons: Lessons | None = None,
    checked: Sequence[Measured] | None = None,
    seen: View | None = None,
    totals: Totals | None = None,
    attributed: int | None = None,
) -> SkillChange | None:
    """A create/update SkillChange for `cluster` as skill `name`; None when nothing would change.

    An existing skill is rewritten only when its guidance (not just its figures) would
    change and at least `rewrite_after` runs with a known outcome arrived since it was last
    written; a person-written skill gets a managed block only once `rewrite_after` failures
    are attributed to it, and never loses a word outside that block.

    `seen` is the cluster's `View` when already worked out (then its members are not read);
    `totals`, the figures of all its runs when the members are a sample of them; `attributed`,
    how many failures are attributed to `existing` (else counted in `diagnoses`)."""
    measured = validated(cluster.members) if checked is None else list(checked)
    if seen is None:
        seen = view(
            cluster,
            max_listed_ids=max_listed_ids,
            diagnoses=diagnoses,
            functional=functional,
            lessons=lessons,
            checked=measured,
        )
    whole = totals or Totals(len(seen.ids), seen.successes, seen.failures, seen.fingerprint)
    known = whole.successes + whole.failures
    raw = Evidence(
        trajectory_ids=seen.ids,
        runs=whole.runs,
        successes=whole.successes,
        failures=whole.failures,
        success_rate=round(whole.successes / known, 4) if known else 0.0,
        errors=seen.errors[:20],
        categories=seen.categories,
        fingerprint=whole.fingerprint,
    )
    ev = _safe_evidence(raw)
    path = seen.path
    hidden = seen.hidden
    # checks.json holds what a check tests; one whose text reads as instructions keeps only
    # its stand-in line in the skill (its text cannot be stored, so it cannot be scored).
    stored = [m for m in measured if not quotes_injected(m.check)]
    tasks = seen.tasks
    runs = len(seen.ids)
    block = seen.block if totals is None else _with_totals(seen.block, seen, totals, max_listed_ids)
    reason = _reason(cluster.id, seen.terms, ev, path, seen.ok_on_path)
    known = ev.successes + ev.failures
    ours = {
        MANAGED_KEY: "true",
        CLUSTER_KEY: cluster.id,
        EVIDENCE_KEY: f"{ev.runs} runs, {percent(ev.successes, known)} success",
        FINGERPRINT_KEY: ev.fingerprint,
    }
    if existing is None:
        fm: dict[str, Any] = {"name": name, "description": _describe(name, seen.terms, seen.tools)}
        fm["metadata"] = {**ours, VERSION_KEY: "1"}
        intro = (
            f"# {_title(name)}\n\nHow agents get this kind of task done, learned "
            "by skillforge from past runs. The part between the skillforge markers is "
            "regenerated as new runs arrive; edit anywhere outside it.\n"
        )
        content = render(fm, replace_managed_block(intro, block))
        reason += " No skill in the library covered these runs, so this creates one."
        files = {CHECKS_FILE: checks_document(name, stored, runs, tasks)}
        return _change(name, "create", content, ev, path, reason, cluster, files, hidden)
    text = existing.text.replace("\r\n", "\n")
    fm, body = parse(text)
    new_body = replace_managed_block(body, block)
    old_ok, old_failed = recorded(body)
    new_known = ev.successes + ev.failures - old_ok - old_failed
    if attributed is None:
        attributed = sum(1 for d in diagnoses if d.skill == existing.name)
    if guidance_of(new_body) == guidance_of(body) or new_known < rewrite_after:
        return None  # only the figures moved, or too little new evidence to rewrite on
    if not find_managed_block(body) and attributed < rewrite_after:
        return None  # a person's skill is touched only once its failures pass the threshold
    reason += (
        f" {plural(new_known, 'run')} with a known outcome arrived since it was written "
        f"({max(ev.failures - old_failed, 0)} of them failed; "
        f"{plural(attributed, 'failure')} attributed to it in all)."
    )
    if not is_managed(fm):
        content = split(text)[0] + new_body
        if content == text:
            return None
        reason += (
            f" {existing.name} is a person-written skill: its frontmatter and all text outside "
            "the skillforge markers are kept; only the managed block is "
            + ("replaced." if find_managed_block(body) else "added.")
        )
        issues = problems(content, existing.name)
        if issues:
            reason += f" Its frontmatter needs a person's fix: {'; '.join(issues)}."
    else:
        meta = dict(fm.get("metadata") or {})
        old = _version(meta)
        description = _describe(existing.name, seen.terms, seen.tools)
        fm = {**fm, "name": existing.name, "description": description}
        fm["metadata"] = {**meta, **ours, VERSION_KEY: str(old + 1)}
        content = render(fm, new_body)
        before = meta.get(FINGERPRINT_KEY)
        reason += f" Updates skillforge's skill {existing.name} from version {old} to {old + 1}"
        reason += f" (evidence {before} → {ev.fingerprint})." if before else "."
    if mapped_by:
        reason += f" Matched to {existing.name} because {mapped_by}."
    files = {CHECKS_FILE: checks_document(existing.name, stored, runs, tasks)}
    return _change(existing.name, "update", content, ev, path, reason, cluster, files, hidden)


def _change(
    name: str,
    action: str,
    content: str,
    ev: Evidence,
    path: Sequence[str],
    reason: str,
    c: Cluster,
    files: Mapping[str, str] | None = None,
    hidden: Mapping[str, int] | None = None,
) -> SkillChange:
    verb = "Add" if action == "create" else "Update"
    summary = _summary(verb, name, ev, path)
    return SkillChange.model_validate(
        {
            "skill": name,
            "action": action,
            "content": content,
            "summary": summary,
            "reason": reason,
            "evidence": ev,
            "cluster": c.id,
            "files": dict(files or {}),
            "withheld": dict(hidden or {}),
        }
    )


def tool_idf(runs: Sequence[Trajectory]) -> dict[str, float]:
    """Inverse document frequency of each tool name over runs (rare tools weigh more)."""
    return idf(tool_path(r) for r in runs)
