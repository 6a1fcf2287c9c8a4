"""Failure diagnosis: the root-cause step of a failed run, and what kind of failure it was.

The categories follow AgentDebug's taxonomy, cut down to what trajectories show without an LLM.
The best evidence is contrast: successful runs of the same task, aligned on their tool paths,
show where the failed run went another way. Without contrast, or where the paths agree, the
errors the run hit decide. The rules and their order are documented in docs/diagnosis.md.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from enum import StrEnum
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from evolver.answers import answer_form, answer_forms, final_answer
from evolver.conditions import Condition, facts, failure_conditions
from evolver.examples import Example, changes_made, nearest_example, worked_examples
from evolver.graph import normalise_error
from evolver.model import ToolCall, Trajectory
from evolver.redact import sanitize_inline

__all__ = [
    "Category",
    "Diagnosis",
    "Lessons",
    "classify_error",
    "diagnose",
    "diagnose_all",
    "lessons",
    "task_key",
]

LOOP_MIN = 3  # the same call, or the same failing tool in a row, this many times is a loop


class Category(StrEnum):
    """What kind of failure the root-cause step shows."""

    TOOL_ERROR = "tool-error"
    INVALID_ARGUMENTS = "invalid-arguments"
    WRONG_TOOL = "wrong-tool"
    MISSING_PREREQUISITE = "missing-prerequisite"
    REPETITION_LOOP = "repetition-loop"
    PREMATURE_STOP = "premature-stop"
    HALLUCINATED_TOOL = "hallucinated-tool"
    POLICY_VIOLATION = "policy-violation"
    ANSWER_FORMAT = "answer-format"
    ENVIRONMENT_FAILURE = "environment-failure"
    UNKNOWN = "unknown"


class Diagnosis(BaseModel):
    """The root cause of one failed run: its category, step, tool and the evidence for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trajectory_id: str
    category: Category
    step: int | None = Field(default=None, description="Index into run.steps of the root cause.")
    tool: str | None = Field(default=None, description="Tool of that step, or the missing tool.")
    evidence: str = Field(default="", description="Short, redacted: why this diagnosis.")
    expected: str | None = Field(default=None, description="What successful runs called there.")
    skill: str | None = Field(default=None, description="The skill the failure is attributed to.")
    contrast_runs: int = Field(default=0, description="Successful runs of the task compared.")


# Error text, matched in this order (first line of the error, case-insensitive).
_HALLUCINATED = re.compile(
    r"unknown (?:action|tool|function)|no such (?:tool|function)|not a valid (?:tool|function)"
    r"|unrecogni[sz]ed (?:tool|function|action)|(?:tool|function) \S+ (?:not found|does not exist)",
    re.I,
)
_ENVIRONMENT = re.compile(
    r"time[d ]?out|timeout|connection (?:refused|reset|error|aborted|closed)|network (?:error|is "
    r"unreachable)|temporarily unavailable|service unavailable|rate.?limit|too many requests"
    r"|\b(?:429|50[0-4])\b|internal server error|bad gateway|econn\w*|broken pipe|overloaded",
    re.I,
)
_POLICY = re.compile(
    r"polic(?:y|ies)|not allowed|not permitted|forbidden|prohibited|cannot be|can ?not be"
    r"|can't be|does not add up|not eligible|\bnon-[a-z]+ (?:order|reservation|item|flight)"
    r"|not enough|insufficient|exceed|exactly one|original payment",
    re.I,
)
_INVALID_ACTION = re.compile(
    r"invalid action|unknown action|invalid (?:output )?format|format error|could not parse", re.I
)
_NOT_FOUND = re.compile(r"not found|does not exist|no such|unknown (?:id|user|order)", re.I)
_ARGUMENTS = re.compile(
    r"argument|parameter|missing|invalid|must be|should be|should match|required|not available"
    r"|unexpected keyword|malformed|validation|\b4\d\d client error|bad request|type ?error"
    r"|value ?error|key ?error",
    re.I,
)


def classify_error(text: str, call: ToolCall | None = None) -> Category:
    """The category an error message speaks for (`call` tells whether the agent typed an id)."""
    line = (text or "").strip().split("\n", 1)[0]
    if _HALLUCINATED.search(line):
        return Category.HALLUCINATED_TOOL
    if _ENVIRONMENT.search(line):
        return Category.ENVIRONMENT_FAILURE
    if _POLICY.search(line):
        return Category.POLICY_VIOLATION
    if _NOT_FOUND.search(line):
        typed = call is None or bool(call.arguments)
        return Category.INVALID_ARGUMENTS if typed else Category.TOOL_ERROR
    if _ARGUMENTS.search(line):
        return Category.INVALID_ARGUMENTS
    return Category.TOOL_ERROR


def task_key(run: Trajectory) -> str:
    """Runs of the same task share this key: metadata task_id (with its domain), else the text."""
    meta = run.metadata
    if meta.get("task_id") is not None:
        scope = meta.get("domain") or meta.get("format") or ""
        return f"id:{scope}:{meta['task_id']}"
    return "text:" + " ".join(run.task.split()).lower()


class _Finding(NamedTuple):
    category: Category
    step: int | None
    tool: str | None
    evidence: str
    expected: str | None = None


Calls = Sequence[tuple[int, ToolCall]]  # (index into run.steps, the call)


class Lessons(NamedTuple):
    """What the runs of a run's group (its cluster) teach beyond its own task: the failure
    conditions of their tool calls, the forms their successes answered in, and the changes
    each kind of request needed."""

    conditions: Sequence[Condition] = ()
    answer_forms: Collection[str] = ()
    examples: Sequence[Example] = ()


NO_LESSONS = Lessons()


def lessons(runs: Sequence[Trajectory]) -> Lessons:
    """The lessons of a group of runs (`evolver.conditions`, `evolver.answers`,
    `evolver.examples`)."""
    found = answer_forms(runs)
    forms = {f for f, _ in found.forms} if found else set()
    return Lessons(failure_conditions(runs), forms, worked_examples(runs))


def diagnose(
    run: Trajectory,
    successes_same_task: Sequence[Trajectory] = (),
    *,
    known_tools: Collection[str] = (),
    skill: str | None = None,
    group: Lessons = NO_LESSONS,
) -> Diagnosis:
    """Diagnose a failed run, contrasting it with successful runs of the same task if given,
    then with what its group's runs teach."""
    calls = [(i, s) for i, s in enumerate(run.steps) if isinstance(s, ToolCall)]
    oks = [s for s in successes_same_task if s.succeeded is True and s.id != run.id]
    known = set(known_tools) | {c.name for s in oks for c in s.tool_calls}
    found = _diagnose(run, calls, oks, known) or _from_lessons(run, calls, group, bool(oks))
    return Diagnosis(
        trajectory_id=run.id,
        category=found.category,
        step=found.step,
        tool=found.tool,
        evidence=sanitize_inline(found.evidence, 200),
        expected=found.expected,
        skill=run.skills[0].name if run.skills else skill,
        contrast_runs=len(oks),
    )


def _diagnose(
    run: Trajectory, calls: Calls, oks: Sequence[Trajectory], known: set[str]
) -> _Finding | None:
    """The rules, in order of precedence (docs/diagnosis.md explains each)."""
    for i, c in calls:
        if c.error and (
            _category(c) is Category.HALLUCINATED_TOOL or (known and c.name not in known)
        ):
            evidence = f"called {c.name}, a tool no successful run uses: {_quote(c)}"
            return _Finding(Category.HALLUCINATED_TOOL, i, c.name, evidence)
    reason = run.outcome.reason if run.outcome else None
    if reason and _INVALID_ACTION.search(reason):
        said = [i for i, s in enumerate(run.steps) if getattr(s, "role", "") == "assistant"]
        evidence = f"the environment rejected the agent's action (outcome: {reason})"
        return _Finding(Category.HALLUCINATED_TOOL, said[-1] if said else None, None, evidence)
    benign = {_key(c) for s in oks for c in s.tool_calls if c.error}  # successes hit them too
    unrecovered = [(i, c) for i, c in _unrecovered(calls) if _key(c) not in benign]
    for i, c in unrecovered:
        if _category(c) is Category.ENVIRONMENT_FAILURE:
            return _Finding(Category.ENVIRONMENT_FAILURE, i, c.name, _quote(c))
    loop = _loop(calls)
    if loop is not None:
        return loop
    divergence = _contrast(calls, oks) if oks else None
    if divergence is not None:
        return divergence
    if unrecovered:
        i, c = unrecovered[0]
        return _Finding(_category(c), i, c.name, _quote(c))
    arguments = _argument_divergence(calls, oks) if oks else None
    if arguments is not None:
        return arguments
    errors = [(i, c) for i, c in calls if c.error and _key(c) not in benign]
    if errors:  # all retried, and the run still failed: the only sign of trouble left
        i, c = errors[-1]
        return _Finding(_category(c), i, c.name, f"{_quote(c)} (retried, the run still failed)")
    return None


def _from_lessons(
    run: Trajectory, calls: Calls, group: Lessons, contrasted: bool = False
) -> _Finding:
    """The last rules: an answer in a form no success of the group used, then other changes
    than successful runs made for a like request, then a call made under one of the group's
    failure conditions; else unknown."""
    said = [i for i, s in enumerate(run.steps) if getattr(s, "role", "") == "assistant"]
    form = answer_form(final_answer(run)) if group.answer_forms else ""
    if group.answer_forms and form not in group.answer_forms:
        taught = " or ".join(sorted(group.answer_forms))
        evidence = f"answered in the form {form}; successful runs of its kind answered {taught}"
        return _Finding(Category.ANSWER_FORMAT, said[-1] if said else None, None, evidence)
    changed = _changes_unlike_example(run, calls, group.examples, said[-1] if said else None)
    if changed is not None:
        return changed
    held = facts(run, {c.tool for c in group.conditions})
    hits = [
        (i, call, c)
        for (i, call), (_, known) in zip(calls, held, strict=True)
        for c in group.conditions
        if call.name == c.tool and c.fact in known
    ]
    if hits:  # the last such call: the consequential one, where reading calls led
        i, _, c = hits[-1]
        evidence = (
            f"called {c.tool} {c.fact.held()}, as {c.failed_runs} failed runs of its kind did "
            f"and none of the {c.ok_runs} successful ones that called it"
        )
        category = Category.POLICY_VIOLATION if c.fact.source else Category.INVALID_ARGUMENTS
        return _Finding(category, i, c.tool, evidence)
    why = (
        "paths and arguments match a successful run"
        if contrasted
        else "no successful run of the same task to compare"
    )
    why += ", and no lesson of its kind applies"
    return _Finding(Category.UNKNOWN, None, None, f"no error; {why}")


def _changes_unlike_example(
    run: Trajectory, calls: Calls, examples: Sequence[Example], last_said: int | None
) -> _Finding | None:
    """Other changes than the successful runs of a like request made: a change in place of
    theirs is the wrong tool, one they did not make a policy violation (the first such call
    either way), and one they made that this run never did a premature stop."""
    example = nearest_example(run.task, examples) if examples else None
    made = changes_made(run)
    if example is None or made == example.changes:
        return None
    like = " ".join(example.words)
    theirs = ", ".join(sorted(example.changes)) or "nothing"
    extra = [(i, c) for i, c in calls if c.name in made - example.changes and not c.error]
    if extra:
        i, c = extra[0]
        category = Category.WRONG_TOOL if example.changes - made else Category.POLICY_VIOLATION
        evidence = f"called {c.name}; successful runs of a like request ({like}) changed {theirs}"
        return _Finding(category, i, c.name, evidence, expected=min(example.changes, default=None))
    missing = min(example.changes - made)
    evidence = (
        f"never called {missing}; successful runs of a like request ({like}) changed {theirs}"
    )
    return _Finding(Category.PREMATURE_STOP, last_said, missing, evidence, expected=missing)


def diagnose_all(
    runs: Sequence[Trajectory],
    *,
    skill_of: Mapping[str, str] | None = None,
    taught: Mapping[str, Lessons] | None = None,
) -> list[Diagnosis]:
    """Diagnose every failed run, contrasting it with successful runs of the same task, then
    with the lessons of its group (the runs mapped to the same skill; all runs without one).
    `taught` gives the lessons of groups a caller has already worked out, by skill name."""
    skill_of = skill_of or {}
    by_task: dict[str, list[Trajectory]] = defaultdict(list)
    groups: dict[str, list[Trajectory]] = defaultdict(list)
    for run in runs:
        groups[skill_of.get(run.id, "")].append(run)
        if run.succeeded is True:
            by_task[task_key(run)].append(run)
    known = {c.name for r in runs for c in r.tool_calls if r.succeeded is True or not c.error}
    taught = {
        name: (taught or {}).get(name) or lessons(members)
        for name, members in groups.items()
        if any(r.succeeded is False for r in members)
    }
    return [
        diagnose(
            run,
            by_task.get(task_key(run), ()),
            known_tools=known,
            skill=skill_of.get(run.id),
            group=taught[skill_of.get(run.id, "")],
        )
        for run in runs
        if run.succeeded is False
    ]


def _collapse(calls: Calls) -> list[tuple[str, int]]:
    """The tool path, consecutive repeats collapsed: (tool, index of the step where it starts)."""
    path: list[tuple[str, int]] = []
    for i, c in calls:
        if not path or path[-1][0] != c.name:
            path.append((c.name, i))
    return path


def _names(run: Trajectory) -> tuple[str, ...]:
    return tuple(name for name, _ in _collapse(list(enumerate(run.tool_calls))))


def _prefix(a: Sequence[str], b: Sequence[str]) -> int:
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    return n


def _contrast(calls: Calls, oks: Sequence[Trajectory]) -> _Finding | None:
    """Where the failed run's tool path first leaves the closest successful paths, and why."""
    points = _collapse(calls)
    mine = [name for name, _ in points]
    paths = [_names(s) for s in oks]
    at = max(_prefix(mine, p) for p in paths)
    closest = [p for p in paths if _prefix(mine, p) == at]
    if any(len(p) == at == len(mine) for p in closest):
        return None  # the same path as a successful run: look elsewhere
    nexts = Counter(p[at] if at < len(p) else None for p in closest)
    expected = min(nexts, key=lambda n: (-nexts[n], n is None, n or ""))
    agree = [p for p in closest if (p[at] if at < len(p) else None) == expected]
    support = f"{len(agree)} of {len(paths)} successful runs of the same task"
    finals = Counter(p[-1] for p in agree if p)
    final = min(finals, key=lambda n: (-finals[n], n)) if finals else None
    goals = Counter(_goal(p[at:], mine) for p in agree)
    goal = min(goals, key=lambda n: (n is None, -goals[n], n or "")) or final
    then = f" and then {goal}" if goal != expected else ""
    called = mine[at] if at < len(mine) else None
    step = points[at][1] if called is not None else None
    if called is None:
        return _Finding(
            Category.PREMATURE_STOP,
            None,
            goal,
            f"stopped after {len(calls)} calls; {support} went on to {expected}{then}",
            expected,
        )
    if expected is None:
        return _Finding(
            Category.WRONG_TOOL, step, called, f"called {called} where {support} had finished", None
        )
    rest = mine[at:]
    if final and final not in rest and len(rest) < min(len(p) - at for p in agree):
        return _Finding(
            Category.PREMATURE_STOP,
            step,
            goal,
            f"called {called} and stopped short; {support} called {expected} there{then}",
            expected,
        )
    with_called = [p for p in paths if called in p]
    if (
        with_called
        and expected not in mine[:at]
        and all(expected in p[: p.index(called)] for p in with_called)
    ):
        return _Finding(
            Category.MISSING_PREREQUISITE,
            step,
            called,
            f"called {called} before {expected}, which {len(with_called)} successful runs "
            f"always call first",
            expected,
        )
    return _Finding(
        Category.WRONG_TOOL,
        step,
        called,
        f"diverged from {support}: expected {expected}, called {called}",
        expected,
    )


def _goal(theirs: Sequence[str], mine: Sequence[str]) -> str | None:
    """The last tool a successful path went on to call that the failed run never called."""
    return next((name for name in reversed(theirs) if name not in mine), None)


def _argument_divergence(calls: Calls, oks: Sequence[Trajectory]) -> _Finding | None:
    """The first tool the successes all call whose arguments this run never matched."""
    shared = set.intersection(*({c.name for c in s.tool_calls} for s in oks))
    used: dict[str, set[str]] = defaultdict(set)
    for s in oks:
        for c in s.tool_calls:
            used[c.name].add(_canon(c.arguments))
    mine: dict[str, set[str]] = defaultdict(set)
    for _, c in calls:
        mine[c.name].add(_canon(c.arguments))
    for i, c in calls:
        if c.name in shared and not mine[c.name] & used[c.name]:
            keys = _differing_keys(c.arguments, oks, c.name)
            return _Finding(
                Category.INVALID_ARGUMENTS,
                i,
                c.name,
                f"same path as {len(oks)} successful runs of the same task, but {c.name} "
                f"was called with other values{keys}",
                c.name,
            )
    return None


def _differing_keys(arguments: dict[str, Any] | str, oks: Sequence[Trajectory], name: str) -> str:
    theirs = next((c.arguments for s in oks for c in s.tool_calls if c.name == name), None)
    if not isinstance(arguments, dict) or not isinstance(theirs, dict):
        return ""
    keys = [
        k
        for k in sorted(arguments.keys() | theirs.keys())
        if _canon(arguments.get(k)) != _canon(theirs.get(k))
    ]
    return f" (in {', '.join(keys[:4])})" if keys else ""


def _loop(calls: Calls) -> _Finding | None:
    """The same call with the same outcome LOOP_MIN+ times, or one tool failing in a row."""
    found: list[tuple[int, int, str]] = []  # (position in calls, times, how)
    seen: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for pos, (_, c) in enumerate(calls):
        outcome = "error" if c.error else (c.result or "")
        seen[(c.name, _canon(c.arguments), outcome)].append(pos)
    found += [
        (v[0], len(v), "with the same arguments and result")
        for v in seen.values()
        if len(v) >= LOOP_MIN
    ]
    pos = 0
    while pos < len(calls):
        end = pos
        while end < len(calls) and calls[end][1].error and calls[end][1].name == calls[pos][1].name:
            end += 1
        if end - pos >= LOOP_MIN:
            found.append((pos, end - pos, "failing each time, in a row"))
        pos = max(end, pos + 1)
    if not found:
        return None
    pos, times, how = min(found)
    index, call = calls[pos]
    return _Finding(
        Category.REPETITION_LOOP, index, call.name, f"called {call.name} {times} times {how}"
    )


def _unrecovered(calls: Calls) -> list[tuple[int, ToolCall]]:
    """Failed calls not followed by a successful call of the same tool."""
    out = []
    for pos, (i, c) in enumerate(calls):
        if c.error and not any(d.name == c.name and not d.error for _, d in calls[pos + 1 :]):
            out.append((i, c))
    return out


def _category(call: ToolCall) -> Category:
    return classify_error(call.error_text or call.result or "", call)


def _key(call: ToolCall) -> tuple[str, str]:
    return call.name, normalise_error(call.error_text or call.result or "").lower()


def _quote(call: ToolCall) -> str:
    return f"{call.name}: {normalise_error(call.error_text or call.result or '')}"


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
