"""What skillforge needs from a code host, whichever it is: open or update a pull request,
read its state and its review comments, and merge it (for the auto-merge policy)."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Literal, Protocol

from .rest import RestClient

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


class RestHost:
    """What GitHub and Gitea share: the same pull request objects and calls; a host names its
    paths and how it finds the open pull request of a branch."""

    name = ""
    base = ""  # /repos/{owner}/{repo}
    rest: RestClient

    def _open_pull_of(self, branch: str) -> list[dict]:
        raise NotImplementedError

    def open_or_update_pr(self, branch: str, base: str, title: str, body: str) -> PullRequest:
        found = self._open_pull_of(branch)
        if found:
            path, payload, method = f"{self.base}/pulls/{found[0]['number']}", {}, "PATCH"
        else:
            path, payload, method = f"{self.base}/pulls", {"head": branch, "base": base}, "POST"
        return pull_from(self.rest.call(method, path, {"title": title, "body": body, **payload}))

    def pull_request(self, number: int) -> PullRequest:
        return pull_from(self.rest.call("GET", f"{self.base}/pulls/{int(number)}"))


def comment(kind: Literal["review", "line", "issue"], data: dict) -> Comment:
    """A Comment from a GitHub or Gitea review, review comment or issue comment object."""
    return Comment(
        f"{kind}-{data['id']}",
        kind,
        login(data.get("user")),
        data.get("body") or "",
        path=data.get("path") if kind == "line" else None,
        state=data.get("state") if kind == "review" else None,
        created_at=data.get("submitted_at" if kind == "review" else "created_at"),
    )


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
