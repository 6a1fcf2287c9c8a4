"""The form of a run's final answer, and the forms successful runs of a cluster answered in.

Some agents must answer in a fixed structure (`FINISH([6.1, "2023-10-13"])`, a JSON object);
a run that gets the work right and answers in another form still fails. The form keeps the
structure and drops the values: strings become `"text"`, numbers `n`. Free prose has no form,
nor has an answer whose form reads as instructions, a command or a link. Pure.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from evolver.markup import looks_injected
from evolver.model import Message, Trajectory

__all__ = ["FREE_TEXT", "AnswerForms", "answer_form", "answer_forms", "final_answer"]

FREE_TEXT = "free text"
MAX_FORM = 60  # a longer form is prose with punctuation, not a structure
MAX_WORDS = 2  # bare words a structure may keep (FINISH, true, null)
MIN_RUNS = 2  # successful runs that must share a form before it is taught
MIN_SHARE = 0.5  # of the successful runs with an answer, the taught forms cover at least this
MAX_FORMS = 3

_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_NUMBER = re.compile(r"(?<![A-Za-z_])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_WORD = re.compile(r"[A-Za-z_]{2,}")
_STRUCTURE = re.compile(r"[\[\]{}()]")


def final_answer(run: Trajectory) -> str | None:
    """The text of the run's last assistant message that says something; None without one."""
    for step in reversed(run.steps):
        if isinstance(step, Message) and step.role == "assistant" and step.text.strip():
            return step.text.strip()
    return None


def answer_form(text: str | None) -> str:
    """The structure of an answer with its values dropped, or FREE_TEXT for prose (or none)."""
    if not text:
        return FREE_TEXT
    form = _NUMBER.sub("n", _STRING.sub('"text"', text[: MAX_FORM * 8]))
    form = re.sub(r"\s+", "", form)
    words = [w for w in _WORD.findall(form) if w != "text"]
    if len(form) > MAX_FORM or len(words) > MAX_WORDS or not _STRUCTURE.search(form):
        return FREE_TEXT
    form = form.replace(",", ", ").replace(":", ": ").replace("`", "")
    return FREE_TEXT if looks_injected(form) else form


@dataclass(frozen=True)
class AnswerForms:
    """The forms successful runs answered in (most runs first), and how the rest answered."""

    forms: tuple[tuple[str, int], ...]  # (form, successful runs)
    answered: int  # successful runs with an answer
    failed_other: int  # failed runs that answered in none of `forms`


def answer_forms(runs: Sequence[Trajectory]) -> AnswerForms | None:
    """The structured forms a cluster's successful runs agree on; None when they answer in
    prose, disagree, or too few share a form for it to be a lesson."""
    ok = Counter(answer_form(final_answer(r)) for r in runs if r.succeeded is True)
    answered = sum(ok.values())
    shared = sorted(
        ((f, n) for f, n in ok.items() if f != FREE_TEXT and n >= MIN_RUNS),
        key=lambda fn: (-fn[1], fn[0]),
    )[:MAX_FORMS]
    if not shared or sum(n for _, n in shared) < MIN_SHARE * answered:
        return None
    taught = {f for f, _ in shared}
    failed_other = sum(
        1 for r in runs if r.succeeded is False and answer_form(final_answer(r)) not in taught
    )
    return AnswerForms(tuple(shared), answered, failed_other)
