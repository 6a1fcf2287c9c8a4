"""`skillforge publish-plugin`: propose publishing the library as a Claude Code marketplace."""

from __future__ import annotations

from ..config import Config
from ..library import LibraryRepo
from ..output import write_line
from ..plugin import MARKETPLACE, MARKETPLACE_NAME, PLUGIN_NAME, propose_publish
from ..stores import open_store


def publish_plugin(config: Config) -> int:
    repo = LibraryRepo.ensure(config.library_path, config.remote_url, seed=config.seed)
    with open_store(config.store_location) as store:
        made = propose_publish(store, repo, config)
    if made is None:
        write_line(f"main already publishes {MARKETPLACE} with its current skills")
        return 0
    write_line(
        f"proposal {made.proposal}: {MARKETPLACE} listing {len(made.skills)} skills, "
        f"on branch {made.branch}"
    )
    write_line(f"  accept: skillforge review accept {made.proposal}")
    write_line(
        f"  then in Claude Code: /plugin marketplace add <library repository>, "
        f"/plugin install {PLUGIN_NAME}@{MARKETPLACE_NAME}"
    )
    return 0
