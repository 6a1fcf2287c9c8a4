"""`skillforge evolve`: run one evolution cycle now."""

from __future__ import annotations

from ..config import Config
from ..cycle import run_cycle
from ..library import LibraryRepo
from ..output import write_line
from ..stores import open_store


def evolve(config: Config) -> int:
    repo = LibraryRepo.ensure(config.library_path, config.remote_url, seed=config.seed)
    with open_store(config.store_location) as store:
        result = run_cycle(store, repo, config)
    if result.proposal and result.changes:
        write_line(f"proposal {result.proposal}: {result.changes} skill changes")
        write_line(f"  description: {result.description}")
        write_line(f"  review:      skillforge review show {result.proposal}")
    else:
        write_line(f"cycle {result.id}: {result.message}")
    return 0
