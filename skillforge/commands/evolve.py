"""`skillforge evolve`: run one evolution cycle now."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ..config import Config
from ..cycle import run_cycle
from ..errors import StoreError
from ..library import LibraryRepo
from ..output import write_line
from ..stores import leader_lock, open_store


def evolve(config: Config) -> int:
    repo = LibraryRepo.ensure(config.library_path, config.remote_url, seed=config.seed)
    with _leading(config), open_store(config.store_location) as store:
        result = run_cycle(store, repo, config)
    if result.proposal and result.changes:
        write_line(f"proposal {result.proposal}: {result.changes} skill changes")
        write_line(f"  description: {result.description}")
        write_line(f"  review:      skillforge review show {result.proposal}")
    else:
        write_line(f"cycle {result.id}: {result.message}")
    return 0


@contextlib.contextmanager
def _leading(config: Config) -> Iterator[None]:
    """On a shared PostgreSQL store, hold the cycle leader lock for the cycle: the library lock
    is one host's, so without it a cycle here could run beside the leading daemon's. (On
    SQLite, one host, the library lock keeps cycles apart and a serving daemon may lead.)"""
    if not config.db_is_postgres:
        yield
        return
    lock = leader_lock(config.store_location)
    if not lock.try_lead():
        raise StoreError(
            f"a skillforge daemon leads the cycles of {config.store_display} and runs them; "
            "wait for its next cycle, or stop it (or set lead_cycles = false on it) first"
        )
    try:
        yield
    finally:
        lock.release()
