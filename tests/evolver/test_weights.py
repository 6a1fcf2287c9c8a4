"""Joint weights: lessons that say the same thing are not counted twice, and the joint fit is
used only where it ranks runs better out of fold."""

from __future__ import annotations

import random

from evolver.checks import Check, Measured, profile, score, task_folds
from evolver.evaluate import auroc
from evolver.memo import decode_measured, encode_measured
from evolver.model import Message, Outcome, ToolCall, Trajectory
from evolver.weights import joint_weights


def _run(rid: str, task: str, tools: list[str], ok: bool) -> Trajectory:
    calls = [ToolCall(name=t, arguments={}, result="ok") for t in tools]
    steps = [Message(role="user", text=task), *calls]
    return Trajectory(id=rid, task=task, steps=steps, outcome=Outcome(success=ok))


def _runs(effects: dict[str, float], twins: bool, seed: int = 3) -> list[Trajectory]:
    """Runs over 20 tasks calling each tool of `effects` or not at random; success is more
    likely by each called tool's effect. With `twins`, `a2` is called exactly when `a` is."""
    rng = random.Random(seed)
    out = []
    for i in range(480):
        tools = [t for t in effects if rng.random() < 0.5]
        rate = 0.2 + sum(effects[t] for t in tools)
        if twins and "a" in tools:
            tools.append("a2")
        out.append(_run(f"r{i}", f"task {i % 20}", ["start", *tools], rng.random() < rate))
    return out


def _measured(check: Check, runs: list[Trajectory]) -> Measured:
    """A check with its figures on these runs (as if held out)."""
    table = [0, 0, 0, 0]
    for r in runs:
        j = 0 if check.complies(profile(r)) else 2
        table[j] += int(r.succeeded is True)
        table[j + 1] += 1
    return Measured(check, *table, p_value=0.01, folds_agreeing=5, folds=5)


def _aurocs(measured: list[Measured], runs: list[Trajectory]) -> float | None:
    items = [(m.check, *m.weights()) for m in measured]
    return auroc([score(r, items) for r in runs], [r.succeeded is True for r in runs])


def test_two_lessons_asking_the_same_thing_are_weighed_together() -> None:
    # summed, a run calling a (and so a2) outranks one calling c, though c helps more
    runs = _runs({"a": 0.25, "c": 0.32}, twins=True)
    checks = [_measured(Check("call", t), runs) for t in ("a", "a2", "c")]
    labels = [r.succeeded is True for r in runs]
    joint = joint_weights(checks, [profile(r) for r in runs], labels, task_folds(runs, 5))
    assert all(m.fitted is not None for m in joint)
    own = [m.weights() for m in checks]
    fitted = [m.weights() for m in joint]
    # the twins' own weights count `a` twice; jointly they share its weight
    assert fitted[0][0] + fitted[1][0] < own[0][0] + own[1][0]
    later = _runs({"a": 0.25, "c": 0.32}, twins=True, seed=4)  # new runs, same process
    assert _aurocs(joint, later) > _aurocs(checks, later)
    assert decode_measured(encode_measured(joint)) == joint
    assert [m.fitted for m in decode_measured(encode_measured(joint))] == [m.fitted for m in joint]


def test_independent_lessons_keep_their_own_weights() -> None:
    runs = _runs({"a": 0.2, "c": 0.3}, twins=False)
    checks = [_measured(Check("call", t), runs) for t in ("a", "c")]
    labels = [r.succeeded is True for r in runs]
    kept = joint_weights(checks, [profile(r) for r in runs], labels, task_folds(runs, 5))
    assert [m.fitted for m in kept] == [None, None]
    assert [m.to_json()["weighting"] for m in kept] == ["own", "own"]
