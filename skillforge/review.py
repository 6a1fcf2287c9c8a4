"""Review proposals locally: list, show (diff and description), accept (merge), reject."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import host_sync
from .errors import ReviewError
from .hosts import CodeHost
from .library import LibraryRepo
from .store import Store, utcnow


@dataclass(frozen=True)
class ProposalView:
    """A proposal with what a reviewer needs to decide."""

    record: dict[str, Any]
    changes: list[dict[str, Any]]
    diff: str
    commits: list[tuple[str, str]]
    comments: list[dict[str, Any]] = field(default_factory=list)  # read back from a code host


def list_proposals(store: Store, status: str | None = None) -> list[dict[str, Any]]:
    """Proposals, oldest first, each with its number of skill changes."""
    rows = store.proposals(status)
    for row in rows:
        row["changes"] = len(store.proposal_changes(row["id"]))
    return rows


def read_back(store: Store, repo: LibraryRepo, host: CodeHost | None) -> list[tuple[str, str]]:
    """Record decisions made on the code host (PRs merged or closed) since the last look."""
    if host is None:
        return []
    with repo.lock():
        return host_sync.read_back(store, repo, host, say=lambda _: None)


def show(store: Store, repo: LibraryRepo, proposal_id: str) -> ProposalView:
    """The description, the commits and the diff against main of one proposal."""
    record = _get(store, proposal_id)
    diff, commits = "", []
    if record["status"] == "open":
        diff = repo.diff("main", record["branch"])
        commits = repo.log("main", record["branch"])
    changes = store.proposal_changes(proposal_id)
    return ProposalView(record, changes, diff, commits, store.review_comments(proposal_id))


def accept(
    store: Store, repo: LibraryRepo, proposal_id: str, *, now: datetime | None = None
) -> str:
    """Merge the proposal's branch into main, push main, and record the decision."""
    record = _open(store, proposal_id)
    skills = ", ".join(c["skill"] for c in store.proposal_changes(proposal_id))
    with repo.lock():
        sha = repo.merge(record["branch"], f"Accept skill proposal {proposal_id}: {skills}")
        store.decide(proposal_id, "accepted", now=now or utcnow())
        repo.delete_branch(record["branch"])
    return sha


def reject(
    store: Store, repo: LibraryRepo, proposal_id: str, *, reason: str, now: datetime | None = None
) -> None:
    """Record the rejection and its reason; the same changes are not proposed again."""
    if not reason.strip():
        raise ReviewError('a rejection needs a reason (--reason "..."): the evolver learns from it')
    record = _open(store, proposal_id)
    with repo.lock():
        store.decide(proposal_id, "rejected", reason=reason.strip(), now=now or utcnow())
        repo.delete_branch(record["branch"])


def _get(store: Store, proposal_id: str) -> dict[str, Any]:
    record = store.proposal(proposal_id)
    if record is None:
        known = ", ".join(p["id"] for p in store.proposals()[-5:]) or "none yet"
        raise ReviewError(
            f"no proposal {proposal_id!r} (recent: {known}); see `skillforge review list`"
        )
    return record


def _open(store: Store, proposal_id: str) -> dict[str, Any]:
    record = _get(store, proposal_id)
    if record["status"] != "open":
        raise ReviewError(f"proposal {proposal_id} is already {record['status']}")
    return record
