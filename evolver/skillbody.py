"""The managed block of a skill: its sections rendered from a cluster's runs and the lessons
that held out on them (`evolver.checks`).

When to use, procedure, preconditions, uses, examples, verification, pitfalls, guardrails,
tool notes and evidence, in that order; every guidance line is a held-out lesson with its
figures, the rest is evidence. Also what a rewrite compares (the guidance without figures).
Every piece of trajectory text is redacted and neutralised before it is quoted; text that
reads as instructions, a command or a link (`evolver.markup.looks_injected`) is never quoted:
a neutral stand-in says it was withheld.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from evolver.checks import Check, Measured
from evolver.cluster import Cluster, task_tokens
from evolver.examples import nearest_example
from evolver.graph import (
    error_patterns,
    evidence,
    path_counts,
)
from evolver.guidance import Guidance
from evolver.markup import injected_spans, looks_injected, quote, strip_injected, withheld
from evolver.model import Trajectory
from evolver.naming import excerpt, is_filler
from evolver.redact import sanitize_inline
from evolver.skilldoc import find_managed_block

__all__ = [
    "argument_keys",
    "code",
    "failed_runs",
    "guidance_line",
    "guidance_of",
    "key_terms",
    "main_tools",
    "ok_runs",
    "percent",
    "plural",
    "quotes_injected",
    "recorded",
    "render_block",
    "tainted_words",
    "tool_runs",
]

MAX_EXCERPTED = 200  # successful requests read for the "Requests like" line
NO_STEP = (
    "No step has held out yet on tasks it was not learned from; the evidence below shows what "
    "successful runs did."
)
NO_PITFALL = "- None has held out yet on tasks it was not learned from."
HELD_OUT_NOTE = (
    "Every line below was tested on tasks it was not learned from: the figures say how often "
    "runs that followed it succeeded, and runs that did not."
)


def ok_runs(runs: Sequence[Trajectory]) -> list[Trajectory]:
    return [r for r in runs if r.succeeded is True]


def failed_runs(runs: Sequence[Trajectory]) -> list[Trajectory]:
    return [r for r in runs if r.succeeded is False]


def code(text: str, limit: int = 80) -> str:
    return f"`{sanitize_inline(text, limit) or '?'}`"


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def percent(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "n/a"


def tool_runs(runs: Sequence[Trajectory]) -> Counter[str]:
    out: Counter[str] = Counter()
    for run in runs:
        out.update({c.name for c in run.tool_calls})
    return out


def argument_keys(runs: Sequence[Trajectory], tool: str) -> list[str]:
    """Argument keys successful runs passed to `tool`, most common first."""
    keys: Counter[str] = Counter()
    for run in ok_runs(runs):
        for call in run.tool_calls:
            if call.name == tool and isinstance(call.arguments, dict):
                keys.update(str(k) for k in call.arguments)
    return sorted(keys, key=lambda k: (-keys[k], k))


def main_tools(runs: Sequence[Trajectory], limit: int = 4) -> list[str]:
    ok, every = tool_runs(ok_runs(runs)), tool_runs(runs)
    return sorted(ok, key=lambda t: (-ok[t], -every[t], t))[:limit]


def tainted_words(runs: Sequence[Trajectory]) -> frozenset[str]:
    """Task words (as `task_tokens` gives them) that stand only in parts of the requests that
    read as instructions, a command or a link ("ignore", "wget", "evil"), never outside one
    ("scipy" of a link to scipy's tracker is still a key term when requests name it)."""
    inside: set[str] = set()
    outside: set[str] = set()
    for task in {r.task for r in runs}:
        spans = injected_spans(task)
        if spans:
            inside.update(w for span in spans for w in task_tokens(span))
            outside |= task_tokens(strip_injected(task))
        else:
            outside |= task_tokens(task)
    return frozenset(inside - outside)


def key_terms(cluster: Cluster) -> list[str]:
    """The cluster's keywords that are fit to quote: none from a part of a request that reads
    as instructions, and no filler ("always", "able")."""
    tainted = tainted_words(cluster.members)
    return [
        k
        for k in cluster.keywords
        if k not in tainted and not looks_injected(k) and not is_filler(k)
    ]


def quotes_injected(check: Check) -> bool:
    """Whether a check would quote untrusted text (an error, an argument name or value, an
    answer form, a request's words) that reads as instructions."""
    if check.text and looks_injected(check.text):
        return True
    return any(looks_injected(" ".join(e.words)) for e in check.examples)


def guidance_line(m: Measured) -> str | None:
    """The sentence of a kept check as a skill says it: an error that reads as instructions is
    not quoted but withheld; any other check that would quote such text is not written."""
    c = m.check
    if not quotes_injected(c):
        return c.sentence()
    if c.kind == "error":
        return f"{code(c.op)} failing ({withheld()}): check its arguments before calling it."
    return None


def _ordered_steps(runs: Sequence[Trajectory], steps: Sequence[Measured]) -> list[Measured]:
    """Procedure steps in the order successful runs first took them (median position)."""
    where: dict[str, list[int]] = {}
    for run in ok_runs(runs):
        seen: set[str] = set()
        for i, call in enumerate(run.tool_calls):
            if call.name not in seen:
                seen.add(call.name)
                where.setdefault(call.name, []).append(i)

    def position(m: Measured) -> tuple[float, str]:
        found = sorted(where.get(m.check.op, [10**6]))
        return (found[len(found) // 2], m.check.op)

    return sorted(steps, key=position)


def _examples_of(runs: Sequence[Trajectory], m: Measured) -> list[str]:
    """The worked examples of a kept example check, each as a short excerpt of a request it
    stands for (or, when none is safe to quote, its telling words as a list, filler left out)
    and the changes it made."""
    lines = [f"{m.check.sentence()} ({m.figures()})", ""]
    ok = sorted(ok_runs(runs), key=lambda r: r.id)
    seen = request_words([r.task for r in runs])
    for example in m.check.examples[:8]:
        request = next((r.task for r in ok if nearest_example(r.task, [example])), None)
        shown = safe_excerpt(request, seen) if request else None
        if not shown:  # no excerpt is safe to quote: its telling words, as a list
            telling = [w for w in example.words if not is_filler(w)]
            if not telling:
                continue
            shown = quote(", ".join(telling), "request", 160).replace('"', "")
        made = ", ".join(code(t) for t in sorted(example.changes)) or "nothing"
        lines.append(f'- "{shown}": changed {made} ({plural(example.runs, "run")})')
    return lines


def request_words(tasks: Sequence[str]) -> Counter[str]:
    """In how many distinct requests each word occurs (lowercase), for `safe_excerpt`."""
    seen: Counter[str] = Counter()
    for text in set(tasks):
        seen.update({w.lower() for w in _WORD.findall(text)})
    return seen


def safe_excerpt(task: str, seen: Counter[str], max_words: int = 16) -> str | None:
    """A short excerpt of a request for a skill: redacted, values generalised to their kinds,
    words that only this request used (a name, an address; `seen` counts the requests each
    word occurs in) left out, and nothing that reads as an instruction to the agent; None
    when too little is left or it reads as one."""
    if looks_injected(task):  # anywhere in the request, not just in the part shown
        return None
    shown = excerpt(task, max_words)
    if not shown or looks_injected(shown):
        return None
    words = shown.split()
    kept = [
        w if seen[_WORD_STRIP.sub("", w).lower()] >= 2 or not _WORD.search(w) else "…"
        for w in words
    ]
    if kept.count("…") * 3 > len(kept):
        return None
    out: list[str] = []
    for w in kept:
        if not (w == "…" and out and out[-1] == "…"):
            out.append(w)
    return " ".join(out)


_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_WORD_STRIP = re.compile(r"[^A-Za-z'’-]")


def render_block(
    cluster: Cluster,
    max_listed_ids: int = 20,
    guide: Guidance | None = None,
    measured: Sequence[Measured] = (),
) -> str:
    """The managed block. Every guidance line is a lesson that held out (`measured`), with its
    held-out figures; what was seen but not tested is stated as evidence only."""
    guide = guide or Guidance()
    runs = cluster.members
    every = tool_runs(runs)
    by: dict[str, list[Measured]] = {}
    for m in measured:
        by.setdefault(m.check.section, []).append(m)

    def lines_of(section: str) -> list[str]:
        said = ((guidance_line(m), m) for m in by.get(section, []))
        return [f"- {line} ({m.figures()})" for line, m in said if line]

    lines = ["## When to use", ""]
    requests = _requests(runs)
    if requests:
        lines.append(requests_line(requests))
    terms = key_terms(cluster)
    if terms:
        lines.append(f"- Key terms: {', '.join(sanitize_inline(k, 40) for k in terms)}")
    tools = main_tools(runs)
    if tools:
        shown = ", ".join(f"{code(t)} ({every[t]} of {len(runs)} runs)" for t in tools)
        lines.append(f"- Main tools: {shown}")
    steps = _ordered_steps(runs, by.get("Procedure", []))
    lines += ["", "## Procedure", ""]
    if measured:
        lines += [HELD_OUT_NOTE, ""]
    said = [(line, m) for line, m in ((guidance_line(m), m) for m in steps) if line]
    if said:
        lines += [f"{i}. {line} ({m.figures()})" for i, (line, m) in enumerate(said, 1)]
    else:
        lines.append(NO_STEP)
    lines += _section("Preconditions", lines_of("Preconditions"))
    uses = [
        u.replace("of the procedure", "of the most common path (see Evidence)") for u in guide.uses
    ]
    lines += _section("Uses", uses)
    for m in [m for m in by.get("Examples", []) if guidance_line(m)][:1]:
        lines += _section("Examples", _examples_of(runs, m))
    lines += _section("Verification", lines_of("Verification"))
    lines += ["", "## Pitfalls", "", *(lines_of("Pitfalls") or [NO_PITFALL])]
    lines += _section("Guardrails", lines_of("Guardrails"))
    lines += _section("Tool notes", lines_of("Tool notes"))
    lines += ["", *_evidence(cluster, max_listed_ids, guide)]
    return "\n".join(lines)


def requests_line(excerpts: Sequence[str]) -> str:
    """The "Requests like" line: each excerpt in one pair of double quotes (a request's own
    double quotes would close it early, so they read as single ones)."""
    quoted = (e.replace('"', "'") for e in excerpts)
    return "- Requests like: " + "; ".join(f'"{e}"' for e in quoted)


def _requests(runs: Sequence[Trajectory], limit: int = 3) -> list[str]:
    """Short excerpts of the requests successful runs resolved, most common first."""
    seen: Counter[str] = Counter()
    seen_words = request_words([r.task for r in runs])
    for run in sorted(ok_runs(runs), key=lambda r: r.id)[:MAX_EXCERPTED]:
        shown = safe_excerpt(run.task, seen_words, 14)
        if shown:
            seen[shown] += 1
    return sorted(seen, key=lambda t: (-seen[t], t))[:limit]


def _evidence(cluster: Cluster, max_listed_ids: int, guide: Guidance) -> list[str]:
    """What the runs showed, figures only: the common path of successes and the errors seen
    are observations here, not guidance (guidance is what held out)."""
    runs = cluster.members
    ev = evidence(runs)
    counts = path_counts(runs)
    listed = ", ".join(code(i, 80) for i in ev.trajectory_ids[:max_listed_ids])
    more = len(ev.trajectory_ids) - max_listed_ids
    unknown = ev.runs - ev.successes - ev.failures
    lines = [
        "## Evidence",
        "",
        f"- Runs: {ev.runs} ({ev.successes} succeeded, {ev.failures} failed, {unknown} unknown); "
        f"success rate {percent(ev.successes, ev.successes + ev.failures)}",
    ]
    if counts:
        best = min(counts, key=lambda p: (-counts[p], len(p), p))
        shown = " → ".join(code(t, 60) for t in best[:8]) + (" → …" if len(best) > 8 else "")
        lines.append(
            f"- Most common path of successful runs ({counts[best]} of "
            f"{len(ok_runs(runs))}): {shown}"
        )
    for pattern in error_patterns(runs)[:3]:
        message = pattern.message
        shown = f"({withheld()})" if looks_injected(message) else f'"{message}"'
        lines.append(
            f"- Error seen: {code(pattern.tool)} {shown} "
            f"({plural(pattern.failed_runs, 'failed run')})"
        )
    if guide.categories:
        found = ", ".join(f"{k} {v}" for k, v in guide.categories.items())
        lines.append(f"- Diagnosed failures: {found}")
    lines += [
        f"- Cluster: `{cluster.id}`",
        f"- Trajectories: {listed}" + (f" and {more} more" if more > 0 else ""),
        f"- Fingerprint: `{ev.fingerprint}`",
    ]
    return lines


def _section(title: str, body: Sequence[str]) -> list[str]:
    return ["", f"## {title}", "", *body] if body else []


_RECORDED = re.compile(r"^- Runs: \d+ \((\d+) succeeded, (\d+) failed", re.M)
_DIGITS = re.compile(r"\d+")
_PLURAL = re.compile(r"\b(run|time|failure)s\b")


def recorded(body: str) -> tuple[int, int]:
    """(successes, failures) the existing managed block was written from; (0, 0) if none."""
    span = find_managed_block(body)
    found = _RECORDED.search(body[span[0] : span[1]]) if span else None
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


def guidance_of(body: str) -> str:
    """A block's guidance without its figures: what must differ for a rewrite to be worth it."""
    span = find_managed_block(body)
    block = body[span[0] : span[1]] if span else ""
    text = _DIGITS.sub("N", block.split("## Evidence", 1)[0])
    return _PLURAL.sub(r"\1", text)
