"""`skillforge evolve`: run one evolution cycle now."""

from __future__ import annotations

from ..config import Config
from ..cycle import run_cycle
from ..library import LibraryRepo
from ..output import write_line
from ..stores import leading_cycles, open_store

# what a daemon leading a shared PostgreSQL store's cycles leaves to do
_REFUSED = (
    " and runs them; wait for its next cycle, or stop it (or set lead_cycles = false on it) first"
)


def evolve(config: Config) -> int:
    repo = LibraryRepo.ensure(config.library_path, config.remote_url, seed=config.seed)
    leading = leading_cycles(config.store_location, config.store_display, _REFUSED)
    with leading, open_store(config.store_location) as store:
        result = run_cycle(store, repo, config)
    if result.proposal and result.changes:
        write_line(f"proposal {result.proposal}: {result.changes} skill changes")
        write_line(f"  description: {result.description}")
        write_line(f"  review:      skillforge review show {result.proposal}")
    else:
        write_line(f"cycle {result.id}: {result.message}")
    return 0
