"""`skillforge rebuild`: recompute the cluster state from the stored runs and their clusters."""

from __future__ import annotations

from evolver.pipeline import EvolveParams

from .. import clusterstate
from ..config import Config
from ..library import LibraryRepo
from ..output import write_line
from ..stores import leading_cycles, open_store

# what a daemon leading a shared PostgreSQL store's cycles leaves to do
_REFUSED = (
    "; stop it (or set lead_cycles = false on it) before rebuilding its cluster state"
)


def rebuild(config: Config) -> int:
    """Drop the per-cluster state and the kept stage results, and compute the state again
    from every stored run, each in the cluster it belongs to: what incremental cycles keep
    is exactly this, so the next cycle proposes what it would have. Holds the library lock
    (and on a shared PostgreSQL store the cycle leader lock), so no cycle runs meanwhile."""
    repo = LibraryRepo.ensure(config.library_path, config.remote_url, seed=config.seed)
    params = EvolveParams(
        min_runs=config.min_runs, min_successes=config.min_successes, unused_days=config.unused_days
    )
    leading = leading_cycles(config.store_location, config.store_display, _REFUSED)
    with leading, repo.lock(), open_store(config.store_location) as store:
        state = clusterstate.rebuild(store, params)
        unassigned = store.stored_after(state.upto)
    write_line(
        f"rebuilt the cluster state: {state.runs:,} runs in {len(state.rows):,} clusters"
        f" (samples of at most {params.sample_size} runs each)"
    )
    if unassigned:
        write_line(f"{unassigned:,} newer runs have no cluster yet; the next cycle takes them in")
    return 0
