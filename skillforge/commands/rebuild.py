"""`skillforge rebuild`: recompute the cluster state from the stored runs and their clusters."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from evolver.pipeline import EvolveParams

from .. import clusterstate
from ..config import Config
from ..errors import StoreError
from ..library import LibraryRepo
from ..output import write_line
from ..stores import leader_lock, open_store


def rebuild(config: Config) -> int:
    """Drop the per-cluster state and the kept stage results, and compute the state again
    from every stored run, each in the cluster it belongs to: what incremental cycles keep
    is exactly this, so the next cycle proposes what it would have. Holds the library lock
    (and on a shared PostgreSQL store the cycle leader lock), so no cycle runs meanwhile."""
    repo = LibraryRepo.ensure(config.library_path, config.remote_url, seed=config.seed)
    params = EvolveParams(
        min_runs=config.min_runs, min_successes=config.min_successes, unused_days=config.unused_days
    )
    with _leading(config), repo.lock(), open_store(config.store_location) as store:
        state = clusterstate.rebuild(store, params)
        unassigned = store.stored_after(state.upto)
    write_line(
        f"rebuilt the cluster state: {state.runs:,} runs in {len(state.rows):,} clusters"
        f" (samples of at most {params.sample_size} runs each)"
    )
    if unassigned:
        write_line(f"{unassigned:,} newer runs have no cluster yet; the next cycle takes them in")
    return 0


@contextlib.contextmanager
def _leading(config: Config) -> Iterator[None]:
    """On a shared PostgreSQL store, hold the cycle leader lock: a daemon on another host
    could otherwise run a cycle on the state while it is rebuilt."""
    if not config.db_is_postgres:
        yield
        return
    lock = leader_lock(config.store_location)
    if not lock.try_lead():
        raise StoreError(
            f"a skillforge daemon leads the cycles of {config.store_display}; stop it (or set"
            " lead_cycles = false on it) before rebuilding its cluster state"
        )
    try:
        yield
    finally:
        lock.release()
