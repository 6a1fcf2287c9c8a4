"""`skillforge rollback SKILL [--to VERSION]`: propose putting a skill back as it was."""

from __future__ import annotations

from ..config import Config
from ..library import LibraryRepo
from ..output import write_line
from ..regression import propose_rollback
from ..stores import open_store


def rollback(config: Config, skill: str, to: str | None = None) -> int:
    repo = LibraryRepo.ensure(config.library_path, config.remote_url, seed=config.seed)
    with open_store(config.store_location) as store:
        made = propose_rollback(store, repo, config, skill, to)
    write_line(
        f"proposal {made.proposal}: roll {made.skill} back from version {made.replaced} to "
        f"version {made.restored}, on branch {made.branch}"
    )
    write_line(f"  {made.change.summary}")
    write_line(f"  review: skillforge review show {made.proposal}")
    write_line(f"  accept: skillforge review accept {made.proposal}")
    return 0
