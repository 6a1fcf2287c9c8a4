"""`skillforge label RUN_ID... (--success | --failure)`: set the outcome of stored runs whose
outcome is unknown (a user's verdict, a report that came later). A run whose outcome is known
keeps it: the source's own signal wins. The next cycle learns from what was set."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from evolver.model import Outcome

from ..config import Config
from ..output import write_line
from ..stores import open_store

NOT_FOUND = 2  # exit code when some ids are not stored (what was found is still set)


def label(
    config: Config, run_ids: Sequence[str], *, success: bool, reason: str | None = None
) -> int:
    """Set `success` (and `reason`) on each run id; print what was set, what was known
    already and what is not stored. Returns 2 when some ids are not stored, else 0."""
    ids = list(dict.fromkeys(run_ids))  # each id once, in the order given
    outcome = Outcome(success=success, reason=reason)
    with open_store(config.store_location) as store:
        result = store.set_outcomes([(run_id, outcome) for run_id in ids], source="label")
    word = "success" if success else "failure"
    for run_id in result.applied:
        write_line(f"set {run_id}: {word}")
    for run_id in result.known:
        write_line(f"kept {run_id}: its outcome was known already (left as stored)")
    if result.missing:
        write_line(
            f"error: no run is stored under {', '.join(result.missing)}; nothing was set for"
            " them: check the ids (a run's `id` as it was ingested)",
            stream=sys.stderr,
        )
        return NOT_FOUND
    return 0
