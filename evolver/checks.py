"""Every guidance line is a hypothesis: generate candidate checks, keep those that hold out.

A `Check` is a yes/no question about a run ("did it call `get_user_details` before
`cancel_reservation`?") that applies to some runs and not others. Candidates come from the
operations the cluster's runs performed. Each is cross-fitted on the cluster's runs: folds by
task (so one task never sits on both sides), the direction (do it, or avoid it) chosen on the
other folds, the effect measured on the held-out fold. A check is kept only when, pooled over
the held-out folds, runs that complied succeeded more often than runs that did not, by at least
`min_effect`, with `min_support` runs on each side and a one-sided Fisher exact p-value under
`alpha`. The skill states each kept check's held-out figures, and `checks.json` carries them so
that `eval` scores compliance from them, not from prose. Pure, no I/O.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from evolver.answers import answer_form, final_answer
from evolver.conditions import Fact, facts
from evolver.examples import Example, changes_made, nearest_example, worked_examples
from evolver.graph import is_helper, normalise_error
from evolver.hygiene import fisher_less
from evolver.model import ToolCall, Trajectory
from evolver.operations import is_generic
from evolver.redact import sanitize_inline

__all__ = [
    "CHECKS_FILE",
    "Check",
    "CheckSet",
    "CrossfitParams",
    "Measured",
    "Profile",
    "candidates",
    "crossfit",
    "load_checks",
    "profile",
    "score",
    "task_folds",
    "validated",
]

CHECKS_FILE = "checks.json"
CHECKS_VERSION = 1
MAX_ORDER_OPS = 10  # pairs (order, after) are formed among this many most frequent operations
LIMITS = (1, 2, 3, 5, 8, 13)  # call-count limits tried
STEPS = (1, 2, 3, 5, 8, 13, 21, 34)  # budgets of tool calls tried
MAX_FACTS = 40  # values tested per set of runs, the most often seen first
MAX_POOL = 1000  # runs a set of checks is tested on; more add time, not power
AGREEMENT = 0.8  # share of training folds that must choose the direction the whole data does


@dataclass(frozen=True)
class CrossfitParams:
    """How strict a hypothesis test is."""

    folds: int = 5  # task folds (fewer when the cluster has fewer tasks)
    min_tasks: int = 4  # a cluster with fewer distinct tasks cannot test anything out of sample
    min_support: int = 4  # held-out runs needed on each side (complied, did not)
    min_effect: float = 0.10  # held-out success rate difference, complied minus not
    alpha: float = 0.10  # one-sided Fisher exact test on the pooled held-out table
    max_checks: int = 12  # the strongest this many are written


# --- a run, read once ------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """What a run did, in the terms checks ask about: its operations, errors, arguments."""

    ops: tuple[str, ...]  # operations in order, reasoning helpers left out
    count: Mapping[str, int]
    first: Mapping[str, int]
    last: Mapping[str, int]
    errors: frozenset[tuple[str, str]]  # (operation, normalised error, lowercase)
    erred: frozenset[str]  # operations with at least one failed call
    missing: frozenset[tuple[str, str]]  # (operation, key) some call of it went without
    keys: frozenset[tuple[str, str]]  # (operation, key) some call of it passed
    repeated: frozenset[str]  # operations whose failed call was repeated word for word next
    answer: str  # the final answer's form (FREE_TEXT for prose or none)
    facts: frozenset[tuple[str, Fact]]  # (operation, what held at one of its calls)
    task: str = ""  # the request, for the worked-examples check
    changes: frozenset[str] = frozenset()  # state-changing operations that succeeded
    ended_failed: bool = False  # the run's last call failed: it stopped on an error
    failures: int = 0  # failed calls
    duplicates: int = 0  # calls that repeat an earlier call of the run, arguments and all


def profile(run: Trajectory) -> Profile:
    """Read a run once for every check."""
    calls = [c for c in run.tool_calls if not is_helper(c.name)]
    ops = tuple(c.name for c in calls)
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for i, op in enumerate(ops):
        first.setdefault(op, i)
        last[op] = i
    errors, erred, repeated = set(), set(), set()
    keys_of: dict[str, list[frozenset[str]]] = {}
    for i, c in enumerate(calls):
        if isinstance(c.arguments, dict):
            keys_of.setdefault(c.name, []).append(frozenset(map(str, c.arguments)))
        else:
            keys_of.setdefault(c.name, []).append(frozenset())
        if c.error:
            erred.add(c.name)
            errors.add((c.name, normalise_error(c.error_text or c.result or "").lower()))
            nxt = calls[i + 1] if i + 1 < len(calls) else None
            if nxt is not None and nxt.name == c.name and nxt.arguments == c.arguments:
                repeated.add(c.name)
    keys = {(op, k) for op, sets in keys_of.items() for s in sets for k in s}
    missing = {(op, k) for op, k in keys if any(k not in s for s in keys_of[op])}
    # what held when a call was made: its own arguments, or another tool's latest result (a
    # tool's own earlier result only says it was called again, which `limit` asks directly)
    held = {
        (op, f) for op, known in facts(run) for f in known if not is_helper(op) and f.source != op
    }
    return Profile(
        ops=ops,
        count=Counter(ops),
        first=first,
        last=last,
        errors=frozenset(errors),
        erred=frozenset(erred),
        missing=frozenset(missing),
        keys=frozenset(keys),
        repeated=frozenset(repeated),
        answer=answer_form(final_answer(run)),
        facts=frozenset(held),
        task=run.task,
        changes=changes_made(run),
        ended_failed=bool(calls) and bool(calls[-1].error),
        failures=sum(1 for c in calls if c.error),
        duplicates=_duplicates(calls),
    )


def _duplicates(calls: Sequence[ToolCall]) -> int:
    """How many calls repeat an earlier call of the run word for word (tool and arguments)."""
    seen: set[tuple[str, str]] = set()
    count = 0
    for c in calls:
        key = (c.name, json.dumps(c.arguments, sort_keys=True, default=str))
        count += key in seen
        seen.add(key)
    return count


# --- checks ----------------------------------------------------------------------------------


def _code(text: str) -> str:
    return f"`{sanitize_inline(text, 80) or '?'}`"


@dataclass(frozen=True, order=True)
class Check:
    """One hypothesis about a run, in the direction the guidance asks (`positive` True: do it).

    kind: call (op called), order (a before b; runs calling b), after (b after the last a;
    runs calling a), error (op never failed with `text`; runs calling op), limit (op called
    at most `n` times; runs calling op), args (every call of op passed key `text`), repeat (a
    failed call of op was not repeated unchanged; runs where op failed), answer (the final
    answer has form `text`), fact (op never called with key = value; runs calling op), steps
    (at most `n` tool calls), end (the last call succeeded), failures (at most `n` failed
    calls), same (no call made twice with the same arguments)."""

    kind: str
    op: str
    other: str = ""
    text: str = ""
    n: int = 0
    positive: bool = True
    examples: tuple[Example, ...] = field(default=(), compare=False)

    def applies(self, p: Profile) -> bool:
        """Whether the question makes sense for this run."""
        k = self.kind
        if k in ("call", "answer", "steps", "end", "failures", "same"):
            return True
        if k == "example":
            return nearest_example(p.task, self.examples) is not None
        if k == "order":
            return self.other in p.count
        if k == "repeat":
            return self.op in p.erred
        return self.op in p.count

    def feature(self, p: Profile) -> bool:
        """The answer to the question, before the direction is applied."""
        k, op = self.kind, self.op
        if k == "call":
            return op in p.count
        if k == "order":
            return op in p.first and p.first[op] < p.first[self.other]
        if k == "after":
            return self.other in p.last and p.last[self.other] > p.last[op]
        if k == "error":
            return (op, self.text) not in p.errors
        if k == "limit":
            return p.count[op] <= self.n
        if k == "steps":
            return len(p.ops) <= self.n
        if k == "end":
            return not p.ended_failed
        if k == "failures":
            return p.failures <= self.n
        if k == "same":
            return p.duplicates <= self.n
        if k == "args":
            return (op, self.text) in p.keys and (op, self.text) not in p.missing
        if k == "repeat":
            return op not in p.repeated
        if k == "answer":
            return p.answer == self.text
        if k == "fact":
            key, _, value = self.text.partition("=")
            return (op, Fact(self.other, key, value)) not in p.facts
        if k == "example":
            found = nearest_example(p.task, self.examples)
            return found is not None and found.changes == p.changes
        raise ValueError(f"unknown check kind {k!r}")

    def answers(self, profiles: Sequence[Profile]) -> list[bool | None]:
        """`feature` of each run where the check `applies`, else None: the same as asking
        run by run, in one pass per kind (a cycle asks hundreds of checks of 2,000 runs)."""
        k, op, other, n = self.kind, self.op, self.other, self.n
        if k == "call":
            return [op in p.count for p in profiles]
        if k == "steps":
            return [len(p.ops) <= n for p in profiles]
        if k == "answer":
            return [p.answer == self.text for p in profiles]
        if k == "end":
            return [not p.ended_failed for p in profiles]
        if k == "failures":
            return [p.failures <= n for p in profiles]
        if k == "same":
            return [p.duplicates <= n for p in profiles]
        if k == "order":
            return [
                (op in p.first and p.first[op] < p.first[other]) if other in p.count else None
                for p in profiles
            ]
        if k == "after":
            return [
                (other in p.last and p.last[other] > p.last[op]) if op in p.count else None
                for p in profiles
            ]
        if k == "limit":
            return [(p.count[op] <= n) if op in p.count else None for p in profiles]
        if k == "error":
            pair = (op, self.text)
            return [(pair not in p.errors) if op in p.count else None for p in profiles]
        if k == "args":
            pair = (op, self.text)
            return [
                (pair in p.keys and pair not in p.missing) if op in p.count else None
                for p in profiles
            ]
        if k == "repeat":
            return [(op not in p.repeated) if op in p.erred else None for p in profiles]
        if k == "fact":
            key, _, value = self.text.partition("=")
            held = (op, Fact(other, key, value))
            return [(held not in p.facts) if op in p.count else None for p in profiles]
        return [self.feature(p) if self.applies(p) else None for p in profiles]

    def complies(self, p: Profile) -> bool:
        """Whether the run did what the guidance asks."""
        return self.feature(p) == self.positive

    @property
    def key(self) -> str:
        """A stable id, the same across cycles for the same hypothesis."""
        raw = json.dumps([self.kind, self.op, self.other, self.text, self.n, self.positive])
        return hashlib.sha256(raw.encode()).hexdigest()[:12]

    @property
    def section(self) -> str:
        """Where the line goes in a skill."""
        if self.kind == "call":
            return "Procedure" if self.positive else "Pitfalls"
        if self.kind == "order":
            return "Preconditions"
        if self.kind in ("after", "answer", "end"):
            return "Verification"
        if self.kind in ("steps", "failures"):
            return "Guardrails"
        if self.kind == "example":
            return "Examples"
        if self.kind == "args":
            return "Tool notes"
        return "Pitfalls"

    def sentence(self) -> str:
        """The guidance in words, as the agent should act on it."""
        op, other = _code(self.op), _code(self.other)
        k, yes = self.kind, self.positive
        times = "once" if self.n == 1 else f"{self.n} times"
        if k == "call":
            if not yes and is_generic(self.op):  # the calls no command could be read from
                return f"Send {op} only what it can run: never prose, an apology or a lone comment."
            return f"Call {op}." if yes else f"Avoid {op}: do without it."
        if k == "order":
            return (
                f"Call {op} before the first {other}."
                if yes
                else f"Go to {other} without calling {op} first."
            )
        if k == "after":
            return (
                f"After the last {op}, call {other}."
                if yes
                else f"Do not call {other} after the last {op}."
            )
        if k == "error":
            msg = sanitize_inline(self.text, 120).replace("`", "'")
            return f'{op} failing with "{msg}": check its arguments before calling it.'
        if k == "limit":
            return (
                f"Call {op} at most {times}; past that, re-plan instead of repeating it."
                if yes
                else f"Keep at {op}: successful runs called it more than {times}."
            )
        if k == "args":
            return (
                f"Pass {_code(self.text)} to every {op} call."
                if yes
                else f"Call {op} without {_code(self.text)}."
            )
        if k == "repeat":
            return f"After {op} fails, change the arguments before calling it again."
        if k == "same":
            return (
                "Do not make the same call twice with the same arguments: its answer will not "
                "change; change the arguments or the approach."
                if yes
                else "Calling again with the same arguments is fine here."
            )
        if k == "failures":
            # the check asks for at most n failed calls in the run: the sentence says that
            if not yes:
                return f"Failed calls are no sign of trouble here: successes had over {self.n}."
            if self.n == 0:
                return (
                    "Make no failed call: check each call's arguments against the request and "
                    "what earlier calls returned before making it."
                )
            return (
                f"Keep to {self.n} failed calls at most; past that, stop and re-plan: re-read "
                "the request and check what the calls were given."
            )
        if k == "end":
            return (
                "Do not end on a failed call: fix it and call again before you finish."
                if yes
                else "Ending right after a failed call is fine here."
            )
        if k == "steps":
            return (
                f"Finish within {self.n} tool calls; past that, stop and re-plan rather than "
                "keep trying."
                if yes
                else f"Do not stop early: successful runs made more than {self.n} tool calls."
            )
        if k == "answer":
            return (
                f"Give the final answer in the form {_code(self.text)}."
                if yes
                else f"Do not give the final answer in the form {_code(self.text)}."
            )
        if k == "fact":
            key, _, value = self.text.partition("=")
            held = f"{_code(key)} = {_code(value)}"
            if self.other:
                return f"Do not call {op} after {other} returned {held}."
            return f"Do not call {op} with {held}."
        if k == "example":
            return (
                "For a request like one of the examples, make the changes its successful runs "
                "made, and no others."
            )
        return f"{k} {op}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "op": self.op, "positive": self.positive}
        if self.other:
            out["other"] = self.other
        if self.text:
            out["text"] = self.text
        if self.n:
            out["n"] = self.n
        if self.examples:
            out["examples"] = [
                {"words": list(e.words), "changes": sorted(e.changes), "runs": e.runs}
                for e in self.examples
            ]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Check:
        return cls(
            kind=str(data["kind"]),
            op=str(data["op"]),
            other=str(data.get("other", "")),
            text=str(data.get("text", "")),
            n=int(data.get("n", 0)),
            positive=bool(data.get("positive", True)),
            examples=tuple(
                Example(
                    tuple(map(str, e["words"])), frozenset(map(str, e["changes"])), int(e["runs"])
                )
                for e in data.get("examples") or ()
            ),
        )


def candidates(profiles: Sequence[Profile], min_runs: int = 3) -> list[Check]:
    """Hypotheses worth testing: those asked of at least `2 * min_runs` runs with both answers
    seen `min_runs` times or more. Outcome-blind, so choosing them leaks nothing."""
    return [check for check, _ in _candidates(profiles, min_runs)]


def _candidates(
    profiles: Sequence[Profile], min_runs: int
) -> list[tuple[Check, list[bool | None]]]:
    """`candidates`, each with its `answers` for the profiles."""
    n = len(profiles)
    used: Counter[str] = Counter()
    for p in profiles:
        used.update(p.count.keys())
    ops = sorted((op for op, c in used.items() if c >= min_runs), key=lambda o: (-used[o], o))
    out: list[Check] = [Check("call", op) for op in ops if used[op] <= n - min_runs]
    top = ops[:MAX_ORDER_OPS]
    out += [Check("order", a, b) for a in top for b in top if a != b]
    out += [Check("after", a, b) for a in top for b in top if a != b]
    errors: Counter[tuple[str, str]] = Counter()
    args: Counter[tuple[str, str]] = Counter()
    factc: Counter[tuple[str, Fact]] = Counter()
    answers: Counter[str] = Counter()
    repeat: Counter[str] = Counter()
    for p in profiles:
        errors.update(p.errors)
        args.update(p.keys)
        factc.update(p.facts)
        answers[p.answer] += 1
        repeat.update(p.repeated)
    out += [Check("error", op, text=m) for (op, m), c in sorted(errors.items()) if c >= min_runs]
    out += [Check("args", op, text=k) for (op, k), c in sorted(args.items()) if c >= min_runs]
    out += [Check("repeat", op) for op, c in sorted(repeat.items()) if c >= min_runs]
    out += [Check("answer", "answer", text=f) for f, c in sorted(answers.items()) if c >= min_runs]
    common = sorted(
        ((op, f) for (op, f), c in factc.items() if c >= min_runs),
        key=lambda of: (-factc[of], of),
    )[:MAX_FACTS]
    out += [Check("fact", op, f.source, text=f"{f.key}={f.value}") for op, f in sorted(common)]
    for op in ops:
        most = max(p.count.get(op, 0) for p in profiles)
        out += [Check("limit", op, n=k) for k in LIMITS if k < most]
    longest = max((len(p.ops) for p in profiles), default=0)
    out += [Check("steps", "tool calls", n=k) for k in STEPS if k < longest]
    out.append(Check("end", "last call"))
    out.append(Check("same", "repeated calls"))
    most_failed = max((p.failures for p in profiles), default=0)
    out += [Check("failures", "failed calls", n=k) for k in (0, 1, 2, 4, 8) if k < most_failed]
    found = ((c, c.answers(profiles)) for c in out)
    return [(c, a) for c, a in found if a.count(True) >= min_runs and a.count(False) >= min_runs]


# --- cross-fitting ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """A kept check with its held-out figures: successes and runs, complied and not."""

    check: Check
    complied_ok: int
    complied: int
    other_ok: int
    other: int
    p_value: float
    folds_agreeing: int
    folds: int
    scope: str = ""  # "" for the skill's own runs; "all" when tested on every run
    fitted: tuple[float, float] | None = None  # joint weights, when used (`evolver.weights`)

    @property
    def complied_rate(self) -> float:
        return self.complied_ok / self.complied if self.complied else 0.0

    @property
    def other_rate(self) -> float:
        return self.other_ok / self.other if self.other else 0.0

    @property
    def effect(self) -> float:
        return self.complied_rate - self.other_rate

    def weights(self) -> tuple[float, float]:
        """(log-odds added when a run complies, when it does not), from smoothed held-out rates
        against their pooled rate: the evidence complying gives about success; the joint
        fit's instead when one was used."""
        if self.fitted is not None:
            return self.fitted
        base = (self.complied_ok + self.other_ok + 1) / (self.complied + self.other + 2)
        yes = (self.complied_ok + 0.5) / (self.complied + 1)
        no = (self.other_ok + 0.5) / (self.other + 1)
        return _logit(yes) - _logit(base), _logit(no) - _logit(base)

    def figures(self) -> str:
        """The measured effect in words, for the skill."""
        where = "held out, skills with the same tools" if self.scope == "all" else "held out"
        return (
            f"{where}: {self.complied_rate:.0%} of {self.complied} runs that did succeeded, "
            f"{self.other_rate:.0%} of {self.other} that did not"
        )

    def to_json(self) -> dict[str, Any]:
        yes, no = self.weights()
        return {
            "id": self.check.key,
            **self.check.to_json(),
            "says": self.check.sentence(),
            "held_out": {
                "complied": [self.complied_ok, self.complied],
                "other": [self.other_ok, self.other],
                "effect": round(self.effect, 4),
                "p_value": float(f"{self.p_value:.3g}"),
                "folds_agreeing": [self.folds_agreeing, self.folds],
                "scope": self.scope or "skill",
            },
            "weight": [round(yes, 4), round(no, 4)],
            "weighting": "joint" if self.fitted is not None else "own",
        }


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def task_key(run: Trajectory) -> str:
    """What makes two runs the same task: the benchmark's task id if given, else its text."""
    meta = run.metadata or {}
    if meta.get("task_id") is not None:
        return f"{meta.get('domain') or ''}/{meta['task_id']}"
    return " ".join(run.task.lower().split())


def task_folds(runs: Sequence[Trajectory], folds: int) -> list[int]:
    """Each run's fold: tasks dealt to folds by a hash of the task, so a task is in one fold."""
    tasks = sorted({task_key(r) for r in runs}, key=lambda t: hashlib.sha256(t.encode()).digest())
    fold_of = {t: i % folds for i, t in enumerate(tasks)}
    return [fold_of[task_key(r)] for r in runs]


@lru_cache(maxsize=1 << 14)
def fisher_greater(a: int, b: int, c: int, d: int) -> float:
    """One-sided Fisher exact p-value that the first row succeeds more: table [[a, b], [c, d]]
    of (successes, failures) for complied and not; `fisher_less` with the columns swapped."""
    return fisher_less(b, a, d, c)


def crossfit(
    check: Check,
    profiles: Sequence[Profile],
    labels: Sequence[bool],
    fold_of: Sequence[int],
    params: CrossfitParams = CrossfitParams(),  # noqa: B008 - frozen
    answers: Sequence[bool | None] | None = None,
) -> Measured | None:
    """The check in the direction the training folds choose, measured on the held-out folds;
    None when it does not hold out (too little support, too small an effect, not significant,
    or the training folds disagree on its direction). `answers`: its `answers` for the
    profiles, when already known."""
    folds = max(fold_of) + 1 if fold_of else 0
    # per fold: [complied by feature True: ok, n], [feature False: ok, n]
    table = [[0, 0, 0, 0] for _ in range(folds)]
    got = check.answers(profiles) if answers is None else answers
    for a, y, f in zip(got, labels, fold_of, strict=True):
        if a is None:
            continue
        row = table[f]
        j = 0 if a else 2
        row[j] += int(y)
        row[j + 1] += 1
    total = [sum(r[i] for r in table) for i in range(4)]
    if total[1] < params.min_support or total[3] < params.min_support:
        return None
    cok = cn = ook = on = 0
    agree = voted = 0
    overall = _rate(total[0], total[1]) >= _rate(total[2], total[3])
    direction = overall if check.positive else not overall
    for f in range(folds):
        held = table[f]
        if not held[1] + held[3]:
            continue
        tr = [total[i] - held[i] for i in range(4)]
        if tr[1] == 0 or tr[3] == 0:
            continue  # the training folds never saw both answers: no direction to take
        train_dir = _rate(tr[0], tr[1]) >= _rate(tr[2], tr[3])
        voted += 1
        agree += train_dir == overall
        yes, no = (held[0:2], held[2:4]) if train_dir else (held[2:4], held[0:2])
        cok, cn, ook, on = cok + yes[0], cn + yes[1], ook + no[0], on + no[1]
    if voted < 2 or cn < params.min_support or on < params.min_support:
        return None
    if agree < math.ceil(AGREEMENT * voted):
        return None
    effect = _rate(cok, cn) - _rate(ook, on)
    p = fisher_greater(cok, cn - cok, ook, on - ook)
    if effect < params.min_effect or p > params.alpha:
        return None
    kept = Check(check.kind, check.op, check.other, check.text, check.n, direction)
    return Measured(kept, cok, cn, ook, on, p, agree, voted)


def example_check(
    runs: Sequence[Trajectory],
    profiles: Sequence[Profile],
    labels: Sequence[bool],
    params: CrossfitParams,
) -> Measured | None:
    """ "Make the changes a success of a like request made": one hypothesis for every request.
    Its examples are requests, so its folds are runs, not tasks: examples learned from the
    other folds, tested on the held-out runs whose request is like one of them."""
    folds = params.folds
    fold_of = [hashlib.sha256(r.id.encode()).digest()[0] % folds for r in runs]
    cok = cn = ook = on = agree = voted = 0
    for f in range(folds):
        train = [r for r, g in zip(runs, fold_of, strict=True) if g != f]
        check = Check("example", "changes", examples=tuple(worked_examples(train)))
        if not check.examples:
            continue
        table = [0, 0, 0, 0]
        for p, y, g in zip(profiles, labels, fold_of, strict=True):
            if g == f and check.applies(p):
                j = 0 if check.feature(p) else 2
                table[j] += int(y)
                table[j + 1] += 1
        cok, cn, ook, on = cok + table[0], cn + table[1], ook + table[2], on + table[3]
        if table[1] and table[3]:
            voted += 1
            agree += _rate(table[0], table[1]) > _rate(table[2], table[3])
    if cn < params.min_support or on < params.min_support:
        return None
    effect = _rate(cok, cn) - _rate(ook, on)
    p = fisher_greater(cok, cn - cok, ook, on - ook)
    if effect < params.min_effect or p > params.alpha:
        return None
    kept = Check("example", "changes", examples=tuple(worked_examples(runs)))
    return Measured(kept, cok, cn, ook, on, p, agree, voted)


def _rate(ok: int, n: int) -> float:
    return ok / n if n else 0.0


_ALLOWED = {  # directions that read as guidance; the others are not written
    "steps": True,  # a budget; "make more calls" is no advice, whatever a corpus shows
    "error": True,
    "repeat": True,
    "fact": True,
    "after": True,
    "end": True,
    "failures": True,
    "same": True,
}


def validated(
    runs: Sequence[Trajectory],
    params: CrossfitParams = CrossfitParams(),  # noqa: B008 - frozen
    profiles: Mapping[str, Profile] | None = None,
) -> list[Measured]:
    """The checks that hold out on these runs, strongest first, one per question and at most
    `params.max_checks`; none when the runs span fewer than `params.min_tasks` tasks."""
    known = [r for r in runs if r.succeeded is not None]
    if len(known) > MAX_POOL:  # a sample fixed by the runs' ids, the same in any order
        known = sorted(known, key=lambda r: hashlib.sha256(r.id.encode()).digest())[:MAX_POOL]
    tasks = {task_key(r) for r in known}
    if len(tasks) < params.min_tasks or len({r.succeeded for r in known}) < 2:
        return []
    got = [profiles[r.id] if profiles and r.id in profiles else profile(r) for r in known]
    labels = [r.succeeded is True for r in known]
    fold_of = task_folds(known, min(params.folds, len(tasks)))
    support = max(2, params.min_support // 2)
    kept: list[Measured] = []
    asked: dict[tuple[str, str, str, str, int], list[bool | None]] = {}
    for check, answers in _candidates(got, support):
        found = crossfit(check, got, labels, fold_of, params, answers)
        if found is None:
            continue
        need = _ALLOWED.get(found.check.kind)
        if need is not None and found.check.positive != need:
            continue
        kept.append(found)
        asked[_asks(found.check)] = answers
    example = example_check(known, got, labels, params)
    if example is not None:
        kept.append(example)
    kept.sort(key=lambda m: (m.p_value, -m.effect, m.check))
    return _distinct(kept, profiles=got, asked=asked)[: params.max_checks]


def _asks(c: Check) -> tuple[str, str, str, str, int]:
    return (c.kind, c.op, c.other, c.text, c.n)


def _distinct(
    kept: Sequence[Measured],
    profiles: Sequence[Profile],
    asked: Mapping[tuple[str, str, str, str, int], Sequence[bool | None]] | None = None,
) -> list[Measured]:
    """Drop a check that answers the same for every run as a stronger one already kept (a
    limit of 2 and of 3 on a tool nobody calls 3 times), and all but the strongest limit on
    one tool or on the run, and value on one tool: one line per piece of evidence. `asked`:
    the checks' `answers`, by question, when already known."""
    seen: set[tuple[Any, ...]] = set()
    limited: set[tuple[str, str, str]] = set()
    out: list[Measured] = []
    for m in kept:
        c = m.check
        if c.kind in ("limit", "steps", "fact", "failures"):
            # one limit per tool; one value per tool and source: the strongest
            if (c.kind, c.op, c.other) in limited:
                continue
            limited.add((c.kind, c.op, c.other))
        answers = (asked or {}).get(_asks(c))
        if answers is None:
            answers = c.answers(profiles)
        sig = tuple(None if a is None else a == c.positive for a in answers)
        if sig in seen:
            continue
        seen.add(sig)
        out.append(m)
    return out


SAME_WAY = 0.05  # a shared what-to-do check needs at least this effect on the skill's own runs
SHARED_KINDS = frozenset(
    {"error", "repeat", "limit", "args", "fact", "steps", "end", "same"}
)  # how, not what


def mentions(check: Check) -> frozenset[str]:
    """The operations a check is about."""
    if check.kind in ("answer", "steps", "example", "end", "failures", "same"):
        return frozenset()
    return frozenset(o for o in (check.op, check.other) if o)


def in_sample_effect(check: Check, profiles: Sequence[Profile], labels: Sequence[bool]) -> float:
    """Success rate of runs that complied minus that of runs that did not, on these runs; 0
    when either side has fewer than two runs."""
    t = [0, 0, 0, 0]
    for p, y in zip(profiles, labels, strict=True):
        if check.applies(p):
            j = 0 if check.complies(p) else 2
            t[j] += int(y)
            t[j + 1] += 1
    if t[1] < 2 or t[3] < 2:
        return 0.0
    return t[0] / t[1] - t[2] / t[3]


def _question(c: Check) -> tuple[str, str, str, str, int]:
    """What a check asks, regardless of its threshold for limits and budgets (one of each)."""
    if c.kind in ("limit", "steps", "failures"):
        return (c.kind, c.op, c.other, "", 0)
    return (c.kind, c.op, c.other, c.text, c.n)


def combined(
    own: Sequence[Measured],
    shared: Sequence[Measured],
    ops: Iterable[str],
    limit: int,
    local: tuple[Sequence[Profile], Sequence[bool]] | None = None,
) -> list[Measured]:
    """A skill's checks: those its own runs validated, then those every run validated that
    are about operations the skill's runs perform (never about an operation it does not
    know), one per question, at most `limit`. Which tools to call, and in which order, is a
    task family's matter: such a shared check joins only when the skill's own runs
    (`local`) point the same way."""
    known = set(ops)
    out = list(own)
    asked = {_question(m.check) for m in own}
    for m in shared:
        c = m.check
        if _question(c) in asked or not mentions(c) <= known:
            continue
        if c.kind not in SHARED_KINDS and (local is None or in_sample_effect(c, *local) < SAME_WAY):
            continue
        asked.add(_question(c))
        out.append(m)
    return out[:limit]


# --- the skill's checks file, and scoring a run against it -----------------------------------


@dataclass(frozen=True)
class CheckSet:
    """A skill's checks as stored in its folder, with their weights."""

    skill: str
    checks: tuple[tuple[Check, float, float], ...] = ()  # (check, weight if complied, if not)


def checks_document(skill: str, measured: Sequence[Measured], runs: int, tasks: int) -> str:
    """The text of a skill's checks.json."""
    doc = {
        "version": CHECKS_VERSION,
        "skill": skill,
        "method": (
            "cross-fitted on the cluster's runs: folds by task, direction chosen on the other "
            "folds, figures from the held-out folds only"
        ),
        "runs": runs,
        "tasks": tasks,
        "checks": [m.to_json() for m in measured],
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def load_checks(text: str, skill: str = "") -> CheckSet:
    """A checks.json read back; ValueError when it is not one."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"checks.json is not JSON: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("checks"), list):
        raise ValueError("checks.json must be an object with a list of checks")
    out: list[tuple[Check, float, float]] = []
    for item in data["checks"]:
        try:
            check = Check.from_json(item)
            yes, no = (float(w) for w in item.get("weight", (1.0, -1.0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"checks.json has a malformed check: {item!r:.120}") from exc
        out.append((check, yes, no))
    return CheckSet(skill=str(data.get("skill") or skill), checks=tuple(out))


def score(
    run: Trajectory | Profile, checks: CheckSet | Iterable[tuple[Check, float, float]]
) -> float:
    """Compliance in [0, 1]: the log-odds each applicable check's held-out figures give for a
    run that complied (or not), summed and squashed; 0.5 when no check applies."""
    p = run if isinstance(run, Profile) else profile(run)
    items = checks.checks if isinstance(checks, CheckSet) else tuple(checks)
    total = 0.0
    for check, yes, no in items:
        if check.applies(p):
            total += yes if check.complies(p) else no
    return 1.0 / (1.0 + math.exp(-max(min(total, 30.0), -30.0)))
