"""`skillforge evolve`: run one evolution cycle now."""

from __future__ import annotations

from ..config import Config
from ..cycle import run_cycle
from ..library import LibraryRepo
from ..output import write_line
from ..store import Store


def evolve(config: Config) -> int:
    repo = LibraryRepo.ensure(config.library_path, config.remote_url, seed=config.seed)
    with Store(config.db_path) as store:
        result = run_cycle(store, repo, config)
    if result.proposal and result.changes:
        write_line(f"proposal {result.proposal}: {result.changes} skill changes")
        write_line(f"  description: {result.description}")
        write_line(f"  review:      skillforge review show {result.proposal}")
    else:
        write_line(f"cycle {result.id}: {result.message}")
    return 0
