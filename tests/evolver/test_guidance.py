"""Guidance: preconditions, verification, tool notes and guardrails from planted patterns."""

from __future__ import annotations

from evolver.diagnose import diagnose_all
from evolver.guidance import guidance, tool_notes
from evolver.model import ToolCall, Trajectory


def call(name: str, args: dict | str, error: str | None = None, result: str = "ok") -> ToolCall:
    return ToolCall(name=name, arguments=args, result=error or result, error_text=error)


def trip(rid: str, calls: list[ToolCall], success: bool) -> Trajectory:
    return Trajectory(
        id=rid, task="book a seat on flight HA1", steps=calls, outcome={"success": success}
    )


def planted() -> list[Trajectory]:
    """Successes look the flight up, then book with a list of passengers; failures pass one
    passenger as text (a wrong argument form) or book without looking the flight up."""
    ok = [
        trip(
            f"ok{i}",
            [
                call("get_flight", {"flight": "HA1"}),
                call(
                    "book_seat",
                    {"flight": "HA1", "passengers": ["Ann"]},
                    result='{"status": "booked", "seat": "12A"}',
                ),
            ],
            True,
        )
        for i in range(4)
    ]
    wrong_form = [
        trip(
            f"bad{i}",
            [
                call("get_flight", {"flight": "HA1"}),
                call(
                    "book_seat",
                    {"flight": "HA1", "passengers": "Ann"},
                    error="Error: passengers must be a list",
                ),
            ],
            False,
        )
        for i in range(3)
    ]
    skipped = [
        trip(
            f"skip{i}",
            [
                call(
                    "book_seat",
                    {"flight": "HA1", "passengers": ["Ann"]},
                    error="Error: unknown flight",
                )
            ],
            False,
        )
        for i in range(2)
    ]
    return ok + wrong_form + skipped


def test_tool_notes_show_the_argument_form_that_failed_beside_the_one_that_worked():
    [note] = tool_notes(planted())
    assert note.startswith("- `book_seat`:")
    assert "passengers (text)" in note and "failed 3 times" in note
    assert "passengers (list)" in note and "worked" in note


def test_preconditions_verification_and_guardrails_come_from_the_runs():
    runs = planted()
    g = guidance(runs, diagnose_all(runs))
    [precondition] = g.preconditions
    assert "Call `get_flight` before `book_seat`: 4 successful runs did (100%)" in precondition
    assert "2 failed runs called `book_seat` without it" in precondition
    assert "`book_seat` returning {seat, status} (4 of 4)" in g.verification[0]
    assert any("ended on one" in line for line in g.verification)
    assert sum(g.categories.values()) == 5  # every failed run is diagnosed once
    assert all("(1 failed run)" not in line for line in g.guardrails)  # one-offs are noise


def test_no_notes_when_failing_calls_used_the_same_form_as_working_ones():
    runs = [r for r in planted() if not r.id.startswith("bad")]
    assert tool_notes(runs) == []
