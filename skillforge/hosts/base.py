"""What skillforge needs from a code host, whichever it is: open or update a pull request,
read its state and its review comments, and merge it (for the auto-merge policy)."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Literal, Protocol

PRState = Literal["open", "merged", "closed"]


@dataclass(frozen=True)
class PullRequest:
    """A pull request as the host reports it; `state` is merged or closed once decided."""

    number: int
    url: str
    state: PRState
    merged_by: str | None = None


@dataclass(frozen=True)
class Comment:
    """A review (its summary), a comment on a file line, or a conversation comment.

    `key` is unique per pull request across kinds, so a comment read twice is kept once.
    """

    key: str
    kind: Literal["review", "line", "issue"]
    author: str
    body: str
    path: str | None = None
    state: str | None = None  # a review's verdict: APPROVED, CHANGES_REQUESTED, ...
    created_at: str | None = None


class CodeHost(Protocol):
    """A repository on a code host, reached through its REST API."""

    name: str

    def open_or_update_pr(self, branch: str, base: str, title: str, body: str) -> PullRequest:
        """Update the open pull request from `branch`, or open one."""
        ...

    def pull_request(self, number: int) -> PullRequest: ...

    def comments(self, number: int) -> list[Comment]:
        """Reviews, line comments and conversation comments, oldest first."""
        ...

    def merge(self, number: int, title: str) -> None:
        """Merge with a merge commit, as a person pressing the button would."""
        ...


def state_of(data: dict) -> PRState:
    """open | merged | closed from a GitHub or Gitea pull request object."""
    if data.get("merged"):
        return "merged"
    return "open" if data.get("state") == "open" else "closed"


def login(user: object) -> str:
    return str(user.get("login") or "unknown") if isinstance(user, dict) else "unknown"


def sort_comments(comments: list[Comment]) -> list[Comment]:
    return sorted(comments, key=lambda c: (c.created_at or "", c.key))


def pull_from(data: dict) -> PullRequest:
    """A PullRequest from GitHub's or Gitea's pull request object (same field names)."""
    return PullRequest(
        number=int(data["number"]),
        url=str(data.get("html_url") or ""),
        state=state_of(data),
        merged_by=login(data["merged_by"]) if data.get("merged_by") else None,
    )


def quote(part: str) -> str:
    """One URL path segment (an owner or repository name)."""
    return urllib.parse.quote(part, safe="")
