"""Score a skill library against held-out runs: coverage, compliance, and whether it predicts.

Each skill is read into a checkable `SkillSpec` (`evolver.skillspec`: trigger terms, the
procedure's tools in order, the other paths that worked, the pitfalls). Each held-out run falls
under at most one skill, and its compliance with that skill is scored from the skill file and
the run's own steps only: the scorer gets the run with its outcome and metadata removed
(`blind`), and the outcome is used afterwards, to measure whether compliance separates success
from failure (AUROC) better than naive predictors do. Pure, no I/O.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from evolver.answers import answer_form, final_answer
from evolver.changes import ChangeSet, SkillDoc
from evolver.checks import score as check_score
from evolver.cluster import task_tokens
from evolver.conditions import facts
from evolver.examples import changes_made, nearest_example
from evolver.graph import is_helper, normalise_error
from evolver.model import ToolCall, Trajectory
from evolver.operations import with_operations
from evolver.skillspec import Pitfall, SkillSpec, skill_spec

__all__ = [  # grouped: matching and compliance, measuring
    "match",
    "blind",
    "cut",
    "compliance",
    "pitfall_hits",
    "answers_as_taught",
    "changes_as_taught",
    "COMPLIANT",
    "MIN_SIMILARITY",
    "NAIVE",
    "Report",
    "Score",
    "Scored",
    "auroc",
    "choose_threshold",
    "convergence",
    "evaluate",
    "naive_ends_clean",
    "naive_fewer_calls",
    "naive_no_errors",
]

COMPLIANT = 0.5  # default: a run scoring at least this is compliant
# A run less similar than this to every skill is unmatched. Chosen on tau-bench airline
# trials 0-1: every training run is at least 0.24 similar to the library learned from it,
# while a run sharing no word or tool with a skill scores 0.
MIN_SIMILARITY = 0.2
PITFALL_FACTOR = 0.5  # each pitfall hit halves the compliance
TOOL_PREFIX = "tool:"


# --- matching: the same features as the clustering (task words, tools used) ----------------


def _spec_features(spec: SkillSpec) -> frozenset[str]:
    return spec.terms | {TOOL_PREFIX + t for t in spec.known_tools}


def _run_features(run: Trajectory) -> frozenset[str]:
    return task_tokens(run.task) | {TOOL_PREFIX + c.name for c in run.tool_calls}


def _weights(specs: Sequence[SkillSpec]) -> dict[str, float]:
    """Inverse document frequency over the library: a term every skill names tells little."""
    df: Counter[str] = Counter()
    for spec in specs:
        df.update(_spec_features(spec))
    return {f: math.log(1.0 + len(specs) / n) for f, n in df.items()}


def _vector(feats: Iterable[str], weights: Mapping[str, float]) -> dict[str, float]:
    """Unit vector with task words and tools each normalised, then mixed half and half (as the
    clustering does); a run without tool calls is all words. Unknown features are dropped."""
    parts: list[dict[str, float]] = [{}, {}]
    for f in sorted(feats):
        if f in weights:
            parts[f.startswith(TOOL_PREFIX)][f] = weights[f]
    present = [p for p in parts if p]
    vec: dict[str, float] = {}
    for part in present:
        norm = math.sqrt(sum(w * w for w in part.values()) * len(present))
        vec.update({f: w / norm for f, w in part.items()})
    return vec


def _cosine(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    return sum(w * b[f] for f, w in a.items() if f in b)


def match(
    run: Trajectory, specs: Sequence[SkillSpec], floor: float = MIN_SIMILARITY
) -> tuple[SkillSpec | None, float]:
    """The one skill a run falls under (task words and tools) and its similarity; the skill is
    None below `floor`. Ties go to the name that sorts first."""
    weights = _weights(specs)
    vec = _vector(_run_features(run), weights)
    best: tuple[SkillSpec | None, float] = (None, 0.0)
    for spec in sorted(specs, key=lambda s: s.name):
        sim = _cosine(vec, _vector(_spec_features(spec), weights))
        if sim > best[1] + 1e-12:
            best = (spec, sim)
    return best if best[1] >= floor else (None, best[1])


# --- compliance -----------------------------------------------------------------------------


def _helpful(tools: Iterable[str]) -> tuple[str, ...]:
    """Tool names without reasoning helpers (think, calculate), which no procedure asks for."""
    return tuple(t for t in tools if not is_helper(t))


def _collapsed(tools: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for t in tools:
        if not out or out[-1] != t:
            out.append(t)
    return tuple(out)


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def pitfall_hits(run: Trajectory, spec: SkillSpec) -> list[Pitfall]:
    """The skill's pitfalls this run ran into."""
    called = Counter(c.name for c in run.tool_calls)
    errors = {
        (c.name, normalise_error(c.error_text or c.result or "").lower())
        for c in run.tool_calls
        if c.error
    }
    at = {p.tool for p in spec.pitfalls if p.kind == "condition"}
    held = {(tool, f) for tool, known in facts(run, at) for f in known} if at else set()
    return [
        p
        for p in spec.pitfalls
        if (p.kind == "failed-only" and called[p.tool])
        or (p.kind == "error" and (p.tool, p.message) in errors)
        or (p.kind == "limit" and called[p.tool] > p.limit)
        or (p.kind == "condition" and (p.tool, p.fact) in held)
    ]


def answers_as_taught(run: Trajectory, spec: SkillSpec) -> bool:
    """Whether the run's final answer has a form the skill names (True when it names none)."""
    return not spec.answer_forms or answer_form(final_answer(run)) in spec.answer_forms


def changes_as_taught(run: Trajectory, spec: SkillSpec) -> bool:
    """Whether the run made the changes of the skill's example its request is like (True when
    no example is like it)."""
    example = nearest_example(run.task, spec.examples)
    return example is None or changes_made(run) == example.changes


def follows(run: Trajectory, spec: SkillSpec) -> float:
    """Share of a skill path's tools the run called in that order (its best path)."""
    path = _collapsed(_helpful(c.name for c in run.tool_calls))
    shares = [_lcs(path, p) / len(p) for p in map(_helpful, spec.paths) if p]
    return max(shares, default=0.0)


def on_known_ground(run: Trajectory, spec: SkillSpec) -> float:
    """Share of the run's calls that go to tools the skill names (0 for a run with none)."""
    calls = _helpful(c.name for c in run.tool_calls)
    known = spec.known_tools
    return sum(1 for t in calls if t in known) / len(calls) if calls else 0.0


def compliance(run: Trajectory, spec: SkillSpec) -> float:
    """How closely a run kept to a skill, in [0, 1], from the skill and the run's steps only.

    Half is following the procedure (or another path the skill names), half is calling only
    tools the skill knows; each pitfall the run hits halves the whole, and so do a final
    answer in a form the skill's verification does not name and other changes than the
    skill's example of a like request made. A skill with a checks.json is scored from its
    cross-fitted checks instead (`evolver.checks.score`)."""
    if spec.checks is not None:
        return check_score(run, spec.checks)
    score = 0.5 * follows(run, spec) + 0.5 * on_known_ground(run, spec)
    misses = len(pitfall_hits(run, spec))
    misses += (not answers_as_taught(run, spec)) + (not changes_as_taught(run, spec))
    return score * PITFALL_FACTOR**misses


def cut(run: Trajectory, calls: int) -> Trajectory | None:
    """The run as it stood after its first `calls` tool calls (the steps after them dropped,
    the outcome kept for measuring); None when it made fewer. Scoring every run at the same
    point asks whether compliance so far tells how a run will end, where a run's length
    cannot: every cut run has made the same number of calls."""
    seen = 0
    for i, step in enumerate(run.steps):
        if isinstance(step, ToolCall):
            seen += 1
            if seen == calls:
                return run.model_copy(update={"steps": run.steps[: i + 1]})
    return None


def blind(run: Trajectory) -> Trajectory:
    """The run as the scorer sees it: task and steps (generic tools resolved to the operations
    they performed, as the evolver saw them), without outcome or metadata (which may carry a
    benchmark's gold actions)."""
    return with_operations(run).model_copy(update={"outcome": None, "metadata": {}})


# --- measuring ------------------------------------------------------------------------------


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve: Mann-Whitney U / (positives x negatives), ties counted half;
    None when either class is missing."""
    if len(scores) != len(labels):
        raise ValueError("scores and labels differ in length")
    ranked = sorted(zip(scores, labels, strict=True), key=lambda p: p[0])
    n_pos = sum(1 for _, y in ranked if y)
    n_neg = len(ranked) - n_pos
    if not n_pos or not n_neg:
        return None
    rank_sum, i = 0.0, 0
    while i < len(ranked):  # tied scores share the average of their ranks
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        rank_sum += (i + 1 + j) / 2 * sum(1 for k in range(i, j) if ranked[k][1])
        i = j
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def choose_threshold(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """The compliance threshold with the best Youden's J (true minus false positive rate), the
    lowest of equals; for choosing on training runs, never on the runs being measured."""
    n_pos = sum(1 for y in labels if y)
    n_neg = len(labels) - n_pos
    if not n_pos or not n_neg:
        return COMPLIANT
    best, best_j = COMPLIANT, -math.inf
    for t in sorted(set(scores)):
        tp = sum(1 for s, y in zip(scores, labels, strict=True) if y and s >= t)
        fp = sum(1 for s, y in zip(scores, labels, strict=True) if not y and s >= t)
        j = tp / n_pos - fp / n_neg
        if j > best_j + 1e-12:
            best, best_j = t, j
    return best


def naive_no_errors(run: Trajectory) -> float:
    """The "no tool errors" predictor: minus the number of failed tool calls."""
    return -float(sum(1 for c in run.tool_calls if c.error))


def naive_fewer_calls(run: Trajectory) -> float:
    """The "fewer tool calls" predictor: minus the number of tool calls."""
    return -float(len(run.tool_calls))


def naive_ends_clean(run: Trajectory) -> float:
    """Whether the run's last call succeeded: not one of the issue's naive predictors, but
    what the learned "do not end on a failed call" check asks, reported beside them so a
    reader sees how much of compliance it carries alone."""
    calls = [c for c in run.tool_calls if not is_helper(c.name)]
    return 0.0 if calls and calls[-1].error else 1.0


NAIVE: dict[str, Callable[[Trajectory], float]] = {
    "no tool errors": naive_no_errors,
    "fewer tool calls": naive_fewer_calls,
}


@dataclass(frozen=True)
class Score:
    """How compliance relates to success over some matched runs (one skill's, or all)."""

    name: str
    runs: int
    successes: int
    compliant: int
    compliant_successes: int
    noncompliant: int
    noncompliant_successes: int
    auroc: float | None
    naive: dict[str, float | None] = field(default_factory=dict)

    @property
    def compliant_rate(self) -> float | None:
        return self.compliant_successes / self.compliant if self.compliant else None

    @property
    def noncompliant_rate(self) -> float | None:
        return self.noncompliant_successes / self.noncompliant if self.noncompliant else None


@dataclass(frozen=True)
class Scored:
    """One held-out run: the skill it fell under, its similarity and compliance, its outcome."""

    run: str
    skill: str | None
    similarity: float
    compliance: float | None
    success: bool


@dataclass(frozen=True)
class Report:
    """The library measured on held-out runs (those with a known outcome)."""

    runs: int
    matched: int
    threshold: float
    overall: Score
    skills: tuple[Score, ...]
    scored: tuple[Scored, ...] = ()
    convergence: float | None = None

    @property
    def coverage(self) -> float:
        return self.matched / self.runs if self.runs else 0.0


def _score(name: str, rows: Sequence[tuple[Trajectory, float]], threshold: float) -> Score:
    labels = [r.succeeded is True for r, _ in rows]
    yes = [y for (_, s), y in zip(rows, labels, strict=True) if s >= threshold]
    no = [y for (_, s), y in zip(rows, labels, strict=True) if s < threshold]
    return Score(
        name=name,
        runs=len(rows),
        successes=sum(labels),
        compliant=len(yes),
        compliant_successes=sum(yes),
        noncompliant=len(no),
        noncompliant_successes=sum(no),
        auroc=auroc([s for _, s in rows], labels),
        naive={k: auroc([f(r) for r, _ in rows], labels) for k, f in NAIVE.items()},
    )


def evaluate(
    library: Sequence[SkillDoc],
    runs: Sequence[Trajectory],
    threshold: float = COMPLIANT,
    floor: float = MIN_SIMILARITY,
    prefix: int | None = None,
) -> Report:
    """Match each held-out run with a known outcome to a skill, score its compliance blind, and
    measure compliance and the naive predictors against the outcomes. Runs fall under
    task-level skills only: a functional skill (a few steps several task-level skills share and
    list under Uses) is part of their procedures, not a whole task a run could follow. Every
    skill that parses gets a row, with no runs where none fell under it. With `prefix`, each
    run that made that many tool calls is scored, and the naive predictors measured, on its
    first `prefix` calls only (`cut`); the others are left out."""
    parsed = [s for s in (skill_spec(d) for d in library) if s is not None]
    specs = [s for s in parsed if not s.functional]
    if prefix is not None:
        runs = [c for c in (cut(r, prefix) for r in runs) if c is not None]
    known = sorted((r for r in runs if r.succeeded is not None), key=lambda r: r.id)
    by_skill: dict[str, list[tuple[Trajectory, float]]] = {}
    scored: list[Scored] = []
    for run in known:
        seen = blind(run)
        spec, sim = match(seen, specs, floor)
        if spec is None:
            scored.append(Scored(run.id, None, round(sim, 6), None, run.succeeded is True))
            continue
        value = compliance(seen, spec)
        by_skill.setdefault(spec.name, []).append((run, value))
        scored.append(
            Scored(run.id, spec.name, round(sim, 6), round(value, 6), run.succeeded is True)
        )
    every = [row for name in sorted(by_skill) for row in by_skill[name]]
    return Report(
        runs=len(known),
        matched=len(every),
        threshold=threshold,
        overall=_score("all matched runs", every, threshold),
        skills=tuple(
            _score(name, by_skill.get(name, []), threshold)
            for name in sorted({s.name for s in parsed} | set(by_skill))
        ),
        scored=tuple(scored),
    )


def _guidance(text: str, name: str) -> tuple[Any, ...] | None:
    spec = skill_spec(SkillDoc(name=name, text=text))
    return None if spec is None else (spec.procedure, spec.paths, spec.pitfalls)


def convergence(changeset: ChangeSet, library: Sequence[SkillDoc] = ()) -> float:
    """Share of a cycle's trajectories in clusters whose skill was created or changed.

    Given the library the cycle ran against, a change that only refreshes the evidence (same
    procedure, paths and pitfalls) does not count: those runs needed no new guidance."""
    if not changeset.trajectories:
        return 0.0
    before = {d.name: d.text for d in library}
    content = {c.skill: c.content for c in changeset.changes}
    needed = 0
    for report in changeset.clusters:
        if report.status != "changed":
            continue
        name = report.skill or ""
        if name in before and name in content:
            old = _guidance(before[name], name)
            if old is not None and old == _guidance(content[name], name):
                continue
        needed += report.size
    return needed / changeset.trajectories
