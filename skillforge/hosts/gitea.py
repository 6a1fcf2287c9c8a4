"""Gitea's (and Forgejo's) REST API v1 for pull requests, at https://HOST/api/v1.

Calls: GET/POST /repos/{o}/{r}/pulls, PATCH and GET /pulls/{n}, GET /pulls/{n}/reviews and
/pulls/{n}/reviews/{id}/comments, /issues/{n}/comments, POST /pulls/{n}/merge.
"""

from __future__ import annotations

from .base import Comment, RestHost, comment, quote, sort_comments
from .rest import RestClient


class Gitea(RestHost):
    """One repository on a Gitea or Forgejo server."""

    name = "gitea"

    def __init__(self, api_url: str, repo: str, token: str, *, backoff: float = 0.5) -> None:
        self.owner, self.repo = repo.split("/", 1)
        self.rest = RestClient(
            api_url,
            {"Authorization": f"token {token}", "Accept": "application/json"},
            host="Gitea",
            backoff=backoff,
        )
        self.base = f"/repos/{quote(self.owner)}/{quote(self.repo)}"

    def _open_pull_of(self, branch: str) -> list[dict]:
        pulls = self.rest.pages(f"{self.base}/pulls?state=open&limit=50")
        return [p for p in pulls if (p.get("head") or {}).get("ref") == branch]

    def comments(self, number: int) -> list[Comment]:
        n = int(number)
        found: list[Comment] = []
        for review in self.rest.pages(f"{self.base}/pulls/{n}/reviews"):
            if (review.get("body") or "").strip():
                found.append(comment("review", review))
            if review.get("comments_count"):  # Gitea lists line comments per review
                path = f"{self.base}/pulls/{n}/reviews/{review['id']}/comments"
                found += [comment("line", c) for c in self.rest.pages(path)]
        found += [comment("issue", c) for c in self.rest.pages(f"{self.base}/issues/{n}/comments")]
        return sort_comments(found)

    def merge(self, number: int, title: str) -> None:
        self.rest.call(
            "POST",
            f"{self.base}/pulls/{int(number)}/merge",
            {"Do": "merge", "MergeTitleField": title},
        )
