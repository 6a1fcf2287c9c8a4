"""The project's own schema (`skillforge schema` prints it): validated as it is."""

from __future__ import annotations

from typing import Any

from evolver.model import Trajectory


def is_native_record(record: dict[str, Any]) -> bool:
    return "steps" in record or ("task" in record and "messages" not in record)


def from_native_record(record: dict[str, Any]) -> Trajectory:
    from . import validate

    return validate(record)
