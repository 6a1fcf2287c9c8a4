"""Guidance as hypotheses: what holds out on other tasks is kept, what does not is not written."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator

from evolver.changes import SkillDoc
from evolver.checks import (
    CHECKS_FILE,
    Check,
    CrossfitParams,
    fisher_greater,
    load_checks,
    profile,
    score,
    task_folds,
    validated,
)
from evolver.evaluate import evaluate
from evolver.model import Message, Outcome, ToolCall, Trajectory
from evolver.pipeline import evolve


def _run(rid: str, task: str, calls: list[ToolCall], ok: bool) -> Trajectory:
    return Trajectory(
        id=rid,
        task=task,
        steps=[Message(role="user", text=task), *calls],
        outcome=Outcome(success=ok),
    )


def _call(name: str, error: bool = False, **args: object) -> ToolCall:
    return ToolCall(name=name, arguments=dict(args), result="ok", error=error)


def _lookup_first_family(n_tasks: int = 12, seed: int = 0) -> list[Trajectory]:
    """Refund requests on many tasks: looking the order up before refunding really helps (80%
    vs 20%; the others look it up after); on one task only, every run also calls `ping` and
    succeeds (a one-task coincidence)."""
    rng = random.Random(seed)
    runs: list[Trajectory] = []
    for t in range(n_tasks):
        task = f"Refund order {t} for the customer, the item arrived broken"
        for k in range(4):
            looks = k % 2 == 0
            ok = rng.random() < (0.8 if looks else 0.2)
            calls = [_call("find_order", order=t), _call("issue_refund", order=t, amount=10)]
            if not looks:
                calls.reverse()
            if t == 0:
                calls.append(_call("ping"))
                ok = True
            runs.append(_run(f"r{t}-{k}", task, calls, ok))
    return runs


def test_a_real_effect_holds_out_and_is_written_with_its_figures() -> None:
    kept = validated(_lookup_first_family())
    said = {m.check.sentence(): m for m in kept}
    # "find_order before issue_refund" and "issue_refund after the last find_order" are the
    # same evidence here: one of them is written
    found = [m for m in kept if m.check.kind in ("order", "after") and m.check.op == "find_order"]
    assert found, said
    m = found[0]
    assert m.check.positive and m.effect >= 0.1 and m.p_value <= 0.1
    assert m.complied + m.other <= 48 and m.complied_rate > m.other_rate
    assert "held out" in m.figures()


def test_a_one_task_coincidence_is_not_written() -> None:
    """`ping` goes with success in-sample (every run of task 0 succeeds and calls it), but with
    folds by task it is never on both sides of a split, so it cannot hold out."""
    runs = _lookup_first_family()
    in_sample_ok = [r.succeeded for r in runs if any(c.name == "ping" for c in r.tool_calls)]
    assert all(in_sample_ok) and len(in_sample_ok) == 4
    kept = validated(runs)
    assert all("ping" not in (m.check.op, m.check.other) for m in kept)


def _coin_flips(extra: Callable[[int], ToolCall], seeds: int = 20) -> Iterator[list[Trajectory]]:
    """For each seed, status checks on 10 tasks, 4 runs each: half of the runs also make the
    `extra` call (given the task), and success is a coin flip either way."""
    for seed in range(seeds):
        rng = random.Random(seed)
        runs = []
        for t in range(10):
            for k in range(4):
                calls = [_call("get_status", id=t)]
                if rng.random() < 0.5:
                    calls.append(extra(t))
                ok = rng.random() < 0.5
                runs.append(_run(f"s{seed}-{t}-{k}", f"Check status {t}", calls, ok))
        yield runs


def test_a_spurious_correlation_in_training_that_does_not_hold_out_is_not_written() -> None:
    """A tool called at random, with no effect on success: on some seeds it correlates with
    success in-sample; cross-fitting must not keep it."""
    written = 0
    for runs in _coin_flips(lambda t: _call("log_note")):
        kept = validated(runs)
        written += any("log_note" in (m.check.op, m.check.other) for m in kept)
    # alpha 0.1 per question, so now and then by chance (in-sample, about half the seeds
    # would show a 10-point effect); never as a rule
    assert written <= 4


def test_too_few_tasks_test_nothing() -> None:
    runs = [r for r in _lookup_first_family() if int(r.id[1:].split("-")[0]) < 3]
    assert validated(runs, CrossfitParams(min_tasks=4)) == []


def test_folds_keep_each_task_on_one_side() -> None:
    runs = _lookup_first_family()
    folds = task_folds(runs, 5)
    by_task: dict[str, set[int]] = {}
    for run, fold in zip(runs, folds, strict=True):
        by_task.setdefault(run.task, set()).add(fold)
    assert all(len(f) == 1 for f in by_task.values())
    assert len(set(folds)) == 5


def test_fisher_matches_a_hand_count_and_handles_big_tables() -> None:
    # [[3, 0], [0, 3]]: the only table as extreme has probability 1 / C(6, 3)
    assert abs(fisher_greater(3, 0, 0, 3) - 1 / 20) < 1e-12
    assert fisher_greater(0, 3, 3, 0) > 0.99
    assert 0.0 <= fisher_greater(909, 623, 848, 620) <= 1.0


def test_checks_json_round_trips_and_scores_compliance() -> None:
    runs = _lookup_first_family()
    change = next(c for c in evolve(runs, []).changes if CHECKS_FILE in c.files)
    doc = json.loads(change.files[CHECKS_FILE])
    assert doc["checks"] and all("held_out" in c and "says" in c for c in doc["checks"])
    loaded = load_checks(change.files[CHECKS_FILE])
    looked = _run("x1", "Refund order 99", [_call("find_order"), _call("issue_refund")], True)
    skipped = _run("x2", "Refund order 98", [_call("issue_refund"), _call("find_order")], True)
    assert score(looked, loaded) > score(skipped, loaded)
    # eval reads the same file: the run that looked first is scored as more compliant
    library = [SkillDoc(name=change.skill, text=change.content, files=change.files)]
    report = evaluate(library, [looked, skipped])
    scores = {s.run: s.compliance for s in report.scored}
    assert scores["x1"] is not None and scores["x2"] is not None and scores["x1"] > scores["x2"]


def test_a_check_asks_only_where_it_applies() -> None:
    before = Check("order", "find_order", "issue_refund")
    p = profile(_run("a", "t", [_call("issue_refund")], True))
    assert before.applies(p) and not before.complies(p)
    q = profile(_run("b", "t", [_call("find_order")], True))
    assert not before.applies(q)
    limit = Check("limit", "find_order", n=1)
    assert limit.complies(q)
    assert not limit.complies(profile(_run("c", "t", [_call("find_order")] * 2, True)))
    rerun = Check("repeat", "issue_refund")
    failed_twice = profile(_run("d", "t", [_call("issue_refund", error=True)] * 2, False))
    assert rerun.applies(failed_twice) and not rerun.complies(failed_twice)


def test_answers_in_one_pass_are_what_each_run_answers() -> None:
    """`Check.answers` (one pass per kind, what the lessons stage uses) agrees with asking
    `applies` and `feature` run by run, for every kind of candidate and its direction."""
    from evolver.checks import candidates
    from tests.evolver.conftest import AIRLINE, synthetic

    runs = synthetic(300) + _lookup_first_family()
    if AIRLINE.exists():
        from skillforge.importers import parse_record

        runs += [parse_record(r) for r in json.loads(AIRLINE.read_text())]
    profiles = [profile(r) for r in runs]
    found = candidates(profiles, 2)
    assert len({c.kind for c in found}) >= 8
    for check in found:
        for c in (check, Check(check.kind, check.op, check.other, check.text, check.n, False)):
            expected = [c.feature(p) if c.applies(p) else None for p in profiles]
            assert c.answers(profiles) == expected, c


def _error_recovery_family(n_tasks: int = 12, seed: int = 1) -> list[Trajectory]:
    """Lookups where a call sometimes fails: runs that call again after the failure usually
    succeed, runs that stop on it usually fail; runs with one failure or none do better than
    runs with several."""
    rng = random.Random(seed)
    runs: list[Trajectory] = []
    for t in range(n_tasks):
        task = f"Find the invoice {t} and send it to the customer"
        for k in range(6):
            failures = k % 3  # 0, 1 or 2 failed calls
            calls = [_call("find_invoice", id=t)]
            calls += [_call("send_invoice", error=True, id=t) for _ in range(failures)]
            stops = failures and k >= 3  # half of the runs with failures stop on the last one
            if not stops:
                calls.append(_call("send_invoice", id=t))
            rate = 0.1 if stops else (0.9 if failures < 2 else 0.5)
            runs.append(_run(f"e{t}-{k}", task, calls, rng.random() < rate))
    return runs


def test_stopping_on_a_failed_call_is_a_lesson_when_it_holds_out() -> None:
    kept = validated(_error_recovery_family())
    kinds = {m.check.kind: m for m in kept}
    assert "end" in kinds, [m.check.sentence() for m in kept]
    end = kinds["end"]
    assert end.check.positive and end.complied_rate > end.other_rate + 0.3
    assert end.check.sentence().startswith("Do not end on a failed call")
    assert end.check.section == "Verification"
    budget = [m for m in kept if m.check.kind == "failures"]
    assert all(m.check.section == "Guardrails" and m.check.positive for m in budget)


def test_error_checks_ask_what_a_run_did() -> None:
    stopped = profile(_run("a", "t", [_call("x"), _call("x", error=True)], False))
    recovered = profile(_run("b", "t", [_call("x", error=True), _call("x")], True))
    clean = profile(_run("c", "t", [_call("x")], True))
    end, one = Check("end", "last call"), Check("failures", "failed calls", n=0)
    assert [end.feature(p) for p in (stopped, recovered, clean)] == [False, True, True]
    assert [one.feature(p) for p in (stopped, recovered, clean)] == [False, False, True]
    assert end.answers([stopped, recovered, clean]) == [False, True, True]
    assert Check.from_json(one.to_json()) == one


def test_a_random_stop_on_an_error_is_not_written() -> None:
    """Whether a run stopped on its failed call is a coin flip with no bearing on success."""
    written = 0
    for runs in _coin_flips(lambda t: _call("get_status", error=True, id=t)):
        written += any(m.check.kind == "end" for m in validated(runs))
    assert written <= 4


def test_a_call_repeated_word_for_word_is_counted_once_per_repeat() -> None:
    calls = [_call("ls", path="/a"), _call("ls", path="/b"), _call("ls", path="/a")]
    looped = profile(_run("d", "t", calls, True))
    same = Check("same", "repeated calls")
    assert looped.duplicates == 1 and not same.feature(looped)
    assert same.feature(profile(_run("u", "t", [_call("ls", path="/a")], True)))


def test_prose_sent_as_a_command_is_a_lesson_said_as_such() -> None:
    # after operations are resolved, a shell call left under the bare tool name is one no
    # command could be read from (the agent sent an apology or a comment)
    rng = random.Random(4)
    runs: list[Trajectory] = []
    for t in range(12):
        task = f"Count the log files in folder {t}"
        for k in range(4):
            prose = k % 2 == 1
            calls = [_call("find", command=f"find /d{t} -name '*.log'")]
            if prose:
                calls.append(_call("bash", command="I apologize for the mistake. Let me retry."))
            calls.append(_call("wc", command="wc -l"))
            ok = rng.random() < (0.15 if prose else 0.85)
            runs.append(_run(f"p{t}-{k}", task, calls, ok))
    kept = validated(runs)
    said = [m.check.sentence() for m in kept if m.check.kind == "call" and m.check.op == "bash"]
    assert said == [
        "Send `bash` only what it can run: never prose, an apology or a lone comment."
    ], [m.check.sentence() for m in kept]
