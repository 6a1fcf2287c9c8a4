"""`skillforge schema`: print the trajectory JSON Schema."""

from __future__ import annotations

import json

from evolver.model import Trajectory

from ..output import write_line


def schema() -> int:
    write_line(json.dumps(Trajectory.model_json_schema(), indent=2))
    return 0
