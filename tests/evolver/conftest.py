"""Builders for hand-made trajectory sets, a synthetic corpus, and the tau-bench airline corpus."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from evolver.model import LoadedSkill, Message, Outcome, ToolCall, Trajectory

AIRLINE = Path("/work/shared/corpora/tau-bench-airline/gpt-4o-airline.json")
CHECK_SKILLS = Path("/work/shared/tools/check_skills.py")

Call = tuple[str, dict[str, Any] | str, str | None]  # (tool, arguments, error text or None)


def run(
    rid: str,
    task: str,
    calls: Sequence[Call | str],
    success: bool | None = True,
    skills: Sequence[str] = (),
) -> Trajectory:
    """One trajectory: a user message, then the tool calls (a bare name means no args, no error)."""
    steps: list[Message | ToolCall] = [Message(role="user", text=task)]
    for i, call in enumerate(calls):
        name, args, error = (call, {}, None) if isinstance(call, str) else call
        steps.append(
            ToolCall(
                id=f"{rid}-{i}",
                name=name,
                arguments=args,
                result=None if error else "ok",
                error=bool(error),
                error_text=error,
            )
        )
    return Trajectory(
        id=rid,
        task=task,
        steps=steps,
        outcome=None if success is None else Outcome(success=success),
        skills=[LoadedSkill(name=s) for s in skills],
    )


def refund_runs(prefix: str = "r", n_ok: int = 4, n_failed: int = 3) -> list[Trajectory]:
    """A family of refund tasks with a known best path and a planted error in the failures."""
    out = []
    for i in range(n_ok):
        calls: list[Call | str] = [
            ("find_order", {"order_id": f"A{i}", "customer": "c"}, None),
            ("issue_refund", {"order_id": f"A{i}", "amount": 10}, None),
        ]
        if i == 0:  # one successful run takes a detour
            calls = [("find_order", {"order_id": "A0"}, None), "think", *calls[1:]]
        out.append(
            run(
                f"{prefix}-ok-{i}", f"Refund the damaged blender order A{i} for the customer", calls
            )
        )
    for i in range(n_failed):
        calls = [
            ("find_order", {"order_id": f"B{i}"}, None),
            ("issue_refund", {"order_id": f"B{i}"}, "Error: refund window closed for order B12345"),
        ]
        if i == 0:  # the error repeats in one failed run
            calls.append(
                ("issue_refund", {"order_id": f"B{i}"}, "Error: refund window closed for order B7")
            )
            calls.append("escalate_ticket")
        out.append(
            run(
                f"{prefix}-bad-{i}",
                f"Refund the broken kettle order B{i} for the customer",
                calls,
                False,
            )
        )
    return out


def shipping_runs(prefix: str = "s", n: int = 5) -> list[Trajectory]:
    """A second, unrelated family: shipping address changes."""
    return [
        run(
            f"{prefix}-{i}",
            f"Change the shipping address on parcel P{i} to the new apartment",
            [
                ("lookup_parcel", {"parcel_id": f"P{i}"}, None),
                ("update_address", {"parcel_id": f"P{i}", "address": "x"}, None),
            ],
            success=i != 0,
        )
        for i in range(n)
    ]


def synthetic(n: int, seed: int = 7) -> list[Trajectory]:
    """`n` runs from a dozen task families with names, ids, noise, errors and mixed outcomes."""
    rng = random.Random(seed)
    verbs = [
        "cancel",
        "refund",
        "upgrade",
        "rebook",
        "transfer",
        "verify",
        "export",
        "archive",
        "merge",
        "rename",
        "schedule",
        "audit",
    ]
    objects = [
        "reservation",
        "invoice",
        "account",
        "booking",
        "report",
        "ticket",
        "contract",
        "subscription",
        "shipment",
        "profile",
        "payment",
        "meeting",
    ]
    names = ["Alice", "Bob", "Chen", "Dana", "Eve", "Farid", "Gita", "Hugo", "Ines", "Jon"]
    fillers = [
        "please",
        "quickly",
        "today",
        "carefully",
        "politely",
        "again",
        "urgently",
        "before",
        "friday",
        "tomorrow",
        "customer",
        "premium",
        "basic",
        "gold",
        "silver",
    ]
    out = []
    for i in range(n):
        fam = rng.randrange(len(verbs))
        verb, obj = verbs[fam], objects[fam]
        words = rng.sample(fillers, 4)
        task = (
            f"You are {rng.choice(names)} (id user_{rng.randrange(10**5)}). You want to {verb} "
            f"the {obj} {rng.randrange(10**6)} {' '.join(words)}."
        )
        calls: list[Call | str] = [(f"get_{obj}", {f"{obj}_id": i}, None)]
        if rng.random() < 0.5:
            calls.append(("get_user", {"user_id": i}, None))
        if rng.random() < 0.3:
            calls.append("think")
        ok = rng.random() < 0.6
        err = None if ok or rng.random() < 0.5 else f"Error: {obj} {i} is locked"
        calls.append((f"{verb}_{obj}", {f"{obj}_id": i, "reason": "r"}, err))
        calls.extend(["calculate", "search_policy"][: rng.randrange(3)])
        out.append(run(f"syn-{i:05d}", task, calls, ok))
    return out


def load_airline(trials: Sequence[int]) -> list[Trajectory]:
    """The tau-bench airline runs of the given trials, through skillforge's importer if present."""
    records = [r for r in json.loads(AIRLINE.read_text()) if r["trial"] in set(trials)]
    try:
        from skillforge.importers import parse_record
    except ImportError:  # the importer is written elsewhere; a minimal local converter meanwhile
        parse_record = _tau_record
    return [parse_record(r) for r in records]


def _tau_record(rec: dict[str, Any]) -> Trajectory:
    steps: list[Message | ToolCall] = []
    pending: dict[str, dict[str, Any]] = {}
    for msg in rec["traj"]:
        if msg["role"] == "assistant":
            for tc in msg.get("tool_calls") or []:
                pending[tc["id"]] = tc["function"]
        elif msg["role"] == "tool":
            fn = pending.pop(
                msg["tool_call_id"], {"name": msg.get("name", "tool"), "arguments": "{}"}
            )
            try:
                args = json.loads(fn.get("arguments") or "{}")
            except json.JSONDecodeError:
                args = fn.get("arguments")
            content = msg.get("content") or ""
            err = content.startswith("Error")
            steps.append(
                ToolCall(
                    name=fn["name"],
                    arguments=args if isinstance(args, (dict, str)) else str(args),
                    result=content,
                    error=err,
                    error_text=content if err else None,
                )
            )
    return Trajectory(
        id=f"tau-{rec['task_id']}-{rec['trial']}",
        task=rec["info"]["task"]["instruction"],
        steps=steps,
        outcome=Outcome(reward=rec["reward"]),
    )


@pytest.fixture(scope="session")
def airline01() -> list[Trajectory]:
    if not AIRLINE.exists():
        pytest.skip("tau-bench airline corpus not available")
    return load_airline([0, 1])


def apply(changes: Any, library: Sequence[Any]) -> list[Any]:
    """The library after a ChangeSet is merged: changed skills replaced or added, by name."""
    from evolver.changes import SkillDoc

    docs = {d.name: d for d in library}
    for change in changes.changes:
        docs[change.skill] = SkillDoc(name=change.skill, text=change.content)
    return [docs[name] for name in sorted(docs)]


def write_library(root: Path, docs: Sequence[Any]) -> Path:
    """Write SkillDocs as <root>/<name>/SKILL.md (for check_skills.py)."""
    for doc in docs:
        folder = root / doc.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "SKILL.md").write_text(doc.text, encoding="utf-8")
    return root
