"""Library hygiene: near-duplicate skills to merge, skills to retire. Always as proposals.

Peers' libraries rot in two ways (peers.md: Hermes #67582, #19040): near-copies pile up,
and skills nobody uses, or that make runs worse, stay forever. Both are found here from
the skill texts and usage figures; the cycle turns them into reviewed changes.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from evolver.changes import Evidence, SkillChange, SkillDoc
from evolver.cluster import task_tokens
from evolver.model import Trajectory
from evolver.skilldoc import find_managed_block, is_managed, parse

__all__ = [
    "Duplicate",
    "LoadCounts",
    "Retirement",
    "SkillUsage",
    "fisher_less",
    "hygiene_changes",
    "merge_changes",
    "near_duplicates",
    "retire_change",
    "skill_features",
    "unused",
    "worse_than_without",
    "worse_than_without_counts",
]

_TOOL = re.compile(r"`([A-Za-z_][\w.:-]{1,80})`")
_STEP_TOOL = re.compile(r"^\d+\.[^`\n]*`([^`\n]{1,80})`", re.M)
_TEMPLATE = frozenset(
    [
        "following",
        "worked",
        "past",
        "agent",
        "run",
        "request",
        "involve",
        "main",
        "tool",
        "key",
        "term",
        "runs",
        "agents",
        "requests",
        "involves",
        "tools",
        "terms",
    ]
)


@dataclass(frozen=True)
class SkillUsage:
    """How a skill was used: runs that had it loaded, their successes, when."""

    runs: int = 0
    successes: int = 0
    last_used: datetime | None = None
    added: datetime | None = None


@dataclass(frozen=True)
class Duplicate:
    """Two skills that say nearly the same; `drop` should be folded into `keep`."""

    keep: str
    drop: str
    similarity: float
    why: str


@dataclass(frozen=True)
class Retirement:
    """A skill to propose for removal, and the figures behind it."""

    skill: str
    reason: str


def skill_features(doc: SkillDoc) -> frozenset[str]:
    """What a skill is about: its trigger terms and the tools its procedure calls.

    Words skillforge's own template puts in every skill are left out, or every generated
    skill would look like every other."""
    try:
        frontmatter, body = parse(doc.text)
    except ValueError:
        return frozenset()
    description = str(frontmatter.get("description", ""))
    # example requests say what one run was asked, not what the skill is about
    when = re.sub(r"(?m)^- Requests like:.*$", "", _section(body, "When to use"))
    words = task_tokens(description + "\n" + when) - _TEMPLATE
    procedure = _section(body, "Procedure") or body
    # a skill whose procedure has no step that held out is about the tools it names
    steps = _STEP_TOOL.findall(procedure) or _TOOL.findall(procedure) or _TOOL.findall(when)
    return frozenset(words | {f"tool:{t}" for t in steps})


def _section(body: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", body, re.S | re.M)
    return match.group(1) if match else ""


def _similarity(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / math.sqrt(len(a) * len(b))


def near_duplicates(
    library: Sequence[SkillDoc],
    *,
    threshold: float = 0.6,
    usage: Mapping[str, SkillUsage] | None = None,
) -> list[Duplicate]:
    """Pairs of skills above `threshold` similarity, best first; a skill is in one pair at most."""
    usage = usage or {}
    docs = sorted(library, key=lambda d: d.name)
    feats = {d.name: skill_features(d) for d in docs}
    managed = {d.name: _managed(d) for d in docs}
    scored = []
    for i, a in enumerate(docs):
        for b in docs[i + 1 :]:
            s = _similarity(feats[a.name], feats[b.name])
            if s >= threshold:
                scored.append((round(s, 6), a.name, b.name))
    scored.sort(key=lambda x: (-x[0], x[1], x[2]))
    paired: set[str] = set()
    out = []
    for s, a, b in scored:
        if a in paired or b in paired:
            continue
        keep, drop = sorted((a, b), key=lambda n: _keep_rank(n, managed[n], usage.get(n)))
        if not managed[drop] and managed[keep]:
            keep, drop = drop, keep
        if not managed[drop]:
            continue  # two person-written skills: a person decides, not skillforge
        paired.update((a, b))
        why = (
            f"{drop} and {keep} share {s:.0%} of their trigger terms and tools; "
            f"{keep} is kept ({_keep_reason(keep, managed[keep], usage.get(keep))})"
        )
        out.append(Duplicate(keep, drop, s, why))
    return out


def _managed(doc: SkillDoc) -> bool:
    try:
        return is_managed(parse(doc.text)[0])
    except ValueError:
        return False


def _keep_rank(name: str, managed: bool, use: SkillUsage | None) -> tuple[int, int, str]:
    return (int(managed), -(use.runs if use else 0), name)


def _keep_reason(name: str, managed: bool, use: SkillUsage | None) -> str:
    if not managed:
        return "a person wrote it"
    if use and use.runs:
        return f"loaded in {use.runs} runs"
    return "first by name"


def unused(
    library: Sequence[SkillDoc],
    usage: Mapping[str, SkillUsage],
    *,
    now: datetime,
    unused_days: float,
) -> list[Retirement]:
    """skillforge-written skills no run has loaded for `unused_days` (person-written: never).

    Only meaningful when agents report the skills they load; the caller checks that."""
    out = []
    horizon = now - timedelta(days=unused_days)
    for doc in sorted(library, key=lambda d: d.name):
        if not _managed(doc):
            continue
        use = usage.get(doc.name, SkillUsage())
        added = use.added
        if added is None or added > horizon:
            continue  # too young to judge
        if use.last_used is None or use.last_used < horizon:
            last = use.last_used.date().isoformat() if use.last_used else "never"
            out.append(
                Retirement(
                    doc.name,
                    f"no run loaded it in the last {unused_days:g} days (last used: {last}; "
                    f"{use.runs} runs in all)",
                )
            )
    return out


def worse_than_without(
    runs_by_skill: Mapping[str, Sequence[Trajectory]],
    *,
    min_runs: int = 10,
    alpha: float = 0.05,
) -> list[Retirement]:
    """Skills whose runs succeed significantly less often than comparable runs without them.

    `runs_by_skill` holds, per skill, the runs of the task group it covers, with and
    without it loaded; a one-sided Fisher exact test guards against noise."""
    counts = {}
    for name, runs in runs_by_skill.items():
        known = [r for r in runs if r.succeeded is not None]
        with_ = [r for r in known if any(s.name == name for s in r.skills)]
        without = [r for r in known if all(s.name != name for s in r.skills)]
        counts[name] = LoadCounts(
            len(with_),
            sum(1 for r in with_ if r.succeeded),
            len(without),
            sum(1 for r in without if r.succeeded),
        )
    return worse_than_without_counts(counts, min_runs=min_runs, alpha=alpha)


@dataclass(frozen=True)
class LoadCounts:
    """Runs of a skill's task group with a known outcome: with it loaded (and how many of them
    succeeded), and without it."""

    loaded: int
    loaded_ok: int
    unloaded: int
    unloaded_ok: int


def worse_than_without_counts(
    counts: Mapping[str, LoadCounts], *, min_runs: int = 10, alpha: float = 0.05
) -> list[Retirement]:
    """`worse_than_without` from the counts alone (a store keeps them for every run)."""
    out = []
    for name in sorted(counts):
        found = counts[name]
        n_with, a, n_without, c = found.loaded, found.loaded_ok, found.unloaded, found.unloaded_ok
        if n_with < min_runs or n_without < min_runs:
            continue
        rate_with, rate_without = a / n_with, c / n_without
        if rate_with >= rate_without:
            continue
        p = fisher_less(a, n_with - a, c, n_without - c)
        if p < alpha:
            out.append(
                Retirement(
                    name,
                    f"runs with it loaded succeed {rate_with:.0%} ({a}/{n_with}), runs "
                    f"without it {rate_without:.0%} ({c}/{n_without}); "
                    f"one-sided Fisher exact p = {p:.3g}",
                )
            )
    return out


def fisher_less(a: int, b: int, c: int, d: int) -> float:
    """P(X <= a) for the 2x2 table [[a, b], [c, d]] under the hypergeometric null."""
    row1, col1, n = a + b, a + c, a + b + c + d
    denominator = math.comb(n, col1)
    low = max(0, col1 - (c + d))
    return sum(math.comb(row1, k) * math.comb(n - row1, col1 - k) for k in range(low, a + 1)) / (
        denominator
    )


def retire_change(doc: SkillDoc, reason: str, *, cluster: str = "hygiene") -> SkillChange:
    """A proposal to remove a skill: no content, the reason for the reviewer."""
    summary = f"Retire {doc.name}"[:72]
    return SkillChange(
        skill=doc.name,
        action="retire",
        content="",
        summary=summary,
        reason=f"{reason}. Nothing is deleted unless this proposal is accepted.",
        evidence=_no_runs(f"retire:{doc.name}:{reason}"),
        cluster=cluster,
    )


def merge_changes(keep: SkillDoc, drop: SkillDoc, dup: Duplicate) -> tuple[SkillChange, ...]:
    """Fold `drop` into `keep`: keep's body gains drop's guidance (outside the managed block,
    so later cycles keep it), and drop is retired."""
    _, drop_body = parse(drop.text)
    block = find_managed_block(drop_body)
    carried = drop_body[block[0] : block[1]] if block else drop_body
    lines = [
        line
        for line in carried.splitlines()
        if line.startswith(("- ", "1.", "2.", "3.", "4.", "5.", "6.", "7.", "8.", "9."))
        and "Trajectories:" not in line
    ][:20]
    note = [
        "",
        f"## Merged from {drop.name}",
        "",
        f"{drop.name} covered the same tasks ({dup.similarity:.0%} similar) and was merged here.",
        "",
        *lines,
        "",
    ]
    merged = keep.text.rstrip("\n") + "\n" + "\n".join(note)
    update = SkillChange(
        skill=keep.name,
        action="update",
        content=merged,
        summary=f"Merge {drop.name} into {keep.name}"[:72],
        reason=dup.why + ".",
        evidence=_no_runs(f"merge:{keep.name}:{drop.name}:{dup.similarity}"),
        cluster="hygiene",
    )
    return update, retire_change(drop, f"merged into {keep.name}: {dup.why}")


def _no_runs(basis: str) -> Evidence:
    return Evidence(
        trajectory_ids=(),
        runs=0,
        successes=0,
        failures=0,
        success_rate=0.0,
        fingerprint=hashlib.sha256(basis.encode()).hexdigest()[:16],
    )


def hygiene_changes(
    library: Sequence[SkillDoc],
    *,
    changed: Collection[str],
    runs_by_skill: Mapping[str, Sequence[Trajectory]] | None = None,
    counts_by_skill: Mapping[str, LoadCounts] | None = None,
    usage: Mapping[str, SkillUsage] | None = None,
    now: datetime | None = None,
    unused_days: float = 90,
    duplicate_threshold: float = 0.6,
) -> list[SkillChange]:
    """Merge and retirement proposals for skills this cycle does not already change.

    `usage` is only given when agents report the skills they load: without it a skill
    cannot be judged unused. A skill's task group is given by its runs (`runs_by_skill`) or
    by their counts (`counts_by_skill`)."""
    docs = {d.name: d for d in library}
    out: list[SkillChange] = []
    busy = set(changed)
    for dup in near_duplicates(library, threshold=duplicate_threshold, usage=usage):
        if busy & {dup.keep, dup.drop}:
            continue
        out.extend(merge_changes(docs[dup.keep], docs[dup.drop], dup))
        busy.update((dup.keep, dup.drop))
    if counts_by_skill is not None:
        retirements = worse_than_without_counts(
            {name: n for name, n in counts_by_skill.items() if name in docs}
        )
    else:
        retirements = worse_than_without(
            {name: runs for name, runs in (runs_by_skill or {}).items() if name in docs}
        )
    if usage is not None and now is not None:
        retirements += unused(library, usage, now=now, unused_days=unused_days)
    for retirement in retirements:
        if retirement.skill not in busy:
            out.append(retire_change(docs[retirement.skill], retirement.reason))
            busy.add(retirement.skill)
    return out
