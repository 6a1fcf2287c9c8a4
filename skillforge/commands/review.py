"""`skillforge review list|show|accept|reject`."""

from __future__ import annotations

from .. import review
from ..config import Config
from ..hosts import host_from_config
from ..library import LibraryRepo
from ..output import write_line
from ..stores import open_store


def _repo(config: Config) -> LibraryRepo:
    return LibraryRepo.ensure(config.library_path, config.remote_url, seed=config.seed)


def review_list(config: Config, status: str | None) -> int:
    host = host_from_config(config)
    with open_store(config.store_location) as store:
        decided = review.read_back(store, _repo(config), host) if host else []
        rows = review.list_proposals(store, status)
    for proposal_id, decision in decided:
        write_line(f"{proposal_id}: its pull request was decided on {host.name}: {decision}")
    if not rows:
        write_line("no proposals" + (f" with status {status}" if status else ""))
        return 0
    write_line(f"{'ID':<22} {'STATUS':<11} {'CHANGES':>7}  CREATED                    BRANCH")
    for row in rows:
        write_line(
            f"{row['id']:<22} {row['status']:<11} {row['changes']:>7}  "
            f"{row['created_at']:<25} {row['branch']}"
        )
    return 0


def review_show(config: Config, proposal_id: str) -> int:
    with open_store(config.store_location) as store:
        view = review.show(store, _repo(config), proposal_id)
    record = view.record
    write_line(f"proposal {record['id']} ({record['status']}), branch {record['branch']}")
    if record.get("reason"):
        write_line(f"reason: {record['reason']}")
    if record.get("pr_url"):
        write_line(f"pull request #{record['pr_number']}: {record['pr_url']}")
    for comment in view.comments:
        where = f" on {comment['path']}" if comment["path"] else ""
        write_line(f"  {comment['author']}{where}: {' '.join(comment['body'].split())}")
    write_line("")
    write_line(record["description"])
    if view.commits:
        write_line("commits:")
        for sha, subject in view.commits:
            write_line(f"  {sha[:10]} {subject}")
        write_line("")
    if view.diff:
        write_line(view.diff)
    return 0


def review_accept(config: Config, proposal_id: str) -> int:
    with open_store(config.store_location) as store:
        sha = review.accept(store, _repo(config), proposal_id)
    write_line(
        f"accepted {proposal_id}: merged into main as {sha[:10]} and pushed to {config.remote_url}"
    )
    write_line("agents get it with `git pull` in their clone of the library")
    return 0


def review_reject(config: Config, proposal_id: str, reason: str) -> int:
    with open_store(config.store_location) as store:
        review.reject(store, _repo(config), proposal_id, reason=reason)
    write_line(
        f"rejected {proposal_id}: the same changes will not be proposed again on the same evidence"
    )
    return 0
