"""Names from untrusted records are made safe where a record becomes a trajectory: run ids,
loaded skill names and versions, tool names and call ids (issue 14, item 3). Well-formed ones
are kept exactly; the others become stable digests, or are dropped, never stored raw."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from evolver.model import Trajectory
from skillforge.errors import InvalidTrajectory
from skillforge.importers import parse_line, parse_record
from skillforge.intake import ingest_file
from skillforge.store import Store

GHP = "ghp_1234567890abcdefghijABCDEFGHIJ123456"
DIGEST_ID = re.compile(r"run-[0-9a-f]{32}")


def record(**fields: object) -> dict:
    """A small run in the project's schema, with `fields` replaced."""
    base = {
        "id": "run-0001",
        "task": "Cancel order W1",
        "steps": [
            {"type": "tool_call", "id": "call_1", "name": "get_order", "arguments": {}},
            {"type": "tool_call", "name": "cancel_order", "arguments": {"order_id": "W1"}},
        ],
        "outcome": {"success": True},
        "skills": [{"name": "confirm-before-irreversible-actions", "version": "3"}],
    }
    return {**base, **fields}


@pytest.mark.parametrize(
    "run_id",
    [
        "run-0001",
        "otel:4bf92f3577b34da6a3ce929d0e0e4736:a1b2c3d4e5f60718",
        "moatless:20240609_moatless_gpt4o:django__django-11099",
        "intercode:bash:gpt-3.5:ic_bash_plan_solve_fs_2:4",
        "claude-code:5c1e7f2a-8b3d-4e6f-9a1b-2c3d4e5f6a7b/agent-a1b2",
        "sha256:0123456789abcdef0123456789abcdef",
        "tau2:airline_task.7+trial.1",
    ],
)
def test_a_well_formed_run_id_is_kept_exactly(run_id):
    assert parse_record(record(id=run_id)).id == run_id


@pytest.mark.parametrize(
    "run_id",
    [
        GHP,
        f"run-{GHP}",
        "jane.doe@example.com",
        "run 7",  # a space
        "run-7\nSigned-off-by: evil",  # a line break would forge a commit trailer
        "run-`rm -rf`",
        "<b>run</b>",
        "@octocat",  # a mention in a pull request
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc/3",
        "536-22-1847",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY/0",
        "run-é",
    ],
)
def test_a_run_id_holding_a_secret_or_markup_becomes_a_stable_digest(run_id):
    first = parse_record(record(id=run_id)).id
    assert DIGEST_ID.fullmatch(first)
    assert parse_line(json.dumps(record(id=run_id)).encode()).id == first  # same on re-ingest
    assert parse_record(record(id=run_id + "x")).id != first  # distinct ids stay distinct


def test_a_digested_id_still_finds_the_duplicate(tmp_path: Path):
    lines = [record(id=f"{GHP}/1"), record(id=f"{GHP}/2"), record(id=f"{GHP}/1")]
    inbox = tmp_path / "in.jsonl"
    inbox.write_text("".join(json.dumps(r) + "\n" for r in lines))
    with Store(tmp_path / "db.sqlite") as store:
        result = ingest_file(store, inbox)
        ids = store.trajectory_ids()
    assert (result.stored, result.duplicates) == (2, 1)
    assert len(ids) == 2 and all(DIGEST_ID.fullmatch(i) for i in ids)


def test_loaded_skills_that_are_not_skill_names_are_dropped_and_stored_nowhere(tmp_path):
    skills = [
        {"name": "confirm-before-irreversible-actions", "version": "3"},
        {"name": GHP, "version": "1"},
        {"name": "jane.doe@example.com"},
        {"name": "../../etc/passwd"},
        {"name": "Cancel Order"},
        {"name": "x" * 65},
        {"name": "sk-proj-abcdefghijklmnopqrstuvwxyz012345"},  # a slug, and a key
        {"name": "visa-536-22-1847"},  # a slug holding an SSN
        {"name": "pay-4111-1111-1111-1111"},
        {"name": "refund-policy", "version": GHP},  # a fine name, a secret for a version
        {"name": "ledger-check", "version": "1.2.0+build.7"},
    ]
    run = parse_record(record(skills=skills))
    assert [(s.name, s.version) for s in run.skills] == [
        ("confirm-before-irreversible-actions", "3"),
        ("refund-policy", None),
        ("ledger-check", "1.2.0+build.7"),
    ]
    with Store(tmp_path / "db.sqlite") as store:
        store.add_trajectories([run], source="test")
        rows = list(store.db.query("SELECT skill, version FROM skill_runs ORDER BY skill"))
    assert [r["skill"] for r in rows] == [
        "confirm-before-irreversible-actions",
        "ledger-check",
        "refund-policy",
    ]
    assert GHP not in json.dumps(rows)


def test_a_secret_bearing_tool_name_gets_a_stable_stand_in():
    steps = [
        {"type": "tool_call", "id": f"call-{GHP}", "name": f"lookup_{GHP}", "arguments": {}},
        {"type": "tool_call", "id": "call_2", "name": "cancel_order", "arguments": {}},
        {"type": "tool_call", "name": "notify jane.doe@example.com", "arguments": {}},
    ]
    first, second = (parse_record(record(id=f"r{n}", steps=steps)) for n in (1, 2))
    names = [c.name for c in first.tool_calls]
    assert re.fullmatch(r"tool-[0-9a-f]{12}", names[0]) and names[1] == "cancel_order"
    assert re.fullmatch(r"tool-[0-9a-f]{12}", names[2]) and names[2] != names[0]
    assert names == [c.name for c in second.tool_calls]  # the same tool in every run
    assert first.tool_calls[0].id.startswith("call-") and GHP not in first.tool_calls[0].id
    assert first.tool_calls[1].id == "call_2"
    dumped = first.model_dump_json()
    assert "lookup_" not in dumped and "jane.doe" not in dumped


def test_every_format_is_made_safe_not_only_the_native_one():
    chat = {
        "id": f"chat-{GHP}",
        "messages": [
            {"role": "user", "content": "Cancel order W1"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": GHP, "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        ],
        "skills": [{"name": GHP}, {"name": "refund-policy"}],
        "success": True,
    }
    run = parse_record(chat)
    assert GHP not in run.model_dump_json()
    assert DIGEST_ID.fullmatch(run.id) and [s.name for s in run.skills] == ["refund-policy"]


def test_a_clean_run_is_returned_as_it_was_parsed():
    raw = record()
    assert parse_record(raw) == Trajectory.model_validate(raw)


@pytest.mark.parametrize(
    "bad",
    [
        {GHP: 1},  # an unknown shape: the reason lists its keys
        {"task": "t", "steps": [{"type": "tool_call", "name": "x", GHP: 1}]},  # an extra field
        {"task": "t", "steps": [{"type": "tool_call", "name": "x", "4111 1111 1111 1111": 1}]},
        {"messages": [{"role": f"user {GHP}", "content": "hi"}], "success": True},
    ],
)
def test_a_quarantine_reason_never_quotes_a_secret_from_the_record(bad):
    with pytest.raises(InvalidTrajectory) as caught:
        parse_record(bad)
    assert GHP not in caught.value.reason and "4111 1111" not in caught.value.reason
    assert caught.value.reason.strip()
