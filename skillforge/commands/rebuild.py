"""`skillforge rebuild`: recompute the cluster state from the stored runs and their clusters."""

from __future__ import annotations

from evolver.pipeline import EvolveParams

from .. import clusterstate
from ..config import Config
from ..library import LibraryRepo
from ..output import write_line
from ..store import Store


def rebuild(config: Config) -> int:
    """Drop the per-cluster state and the kept stage results, and compute the state again
    from every stored run, each in the cluster it belongs to: what incremental cycles keep
    is exactly this, so the next cycle proposes what it would have. Holds the library lock,
    so no cycle runs meanwhile."""
    repo = LibraryRepo.ensure(config.library_path, config.remote_url, seed=config.seed)
    params = EvolveParams(
        min_runs=config.min_runs, min_successes=config.min_successes, unused_days=config.unused_days
    )
    with repo.lock(), Store(config.db_path) as store:
        state = clusterstate.rebuild(store, params)
        unassigned = store.stored_after(state.upto)
    write_line(
        f"rebuilt the cluster state: {state.runs:,} runs in {len(state.rows):,} clusters"
        f" (samples of at most {params.sample_size} runs each)"
    )
    if unassigned:
        write_line(f"{unassigned:,} newer runs have no cluster yet; the next cycle takes them in")
    return 0
