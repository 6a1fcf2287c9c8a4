"""Gitea's (and Forgejo's) REST API v1 for pull requests, at https://HOST/api/v1.

Calls: GET/POST /repos/{o}/{r}/pulls, PATCH and GET /pulls/{n}, GET /pulls/{n}/reviews and
/pulls/{n}/reviews/{id}/comments, /issues/{n}/comments, POST /pulls/{n}/merge.
"""

from __future__ import annotations

from .base import Comment, PullRequest, login, pull_from, quote, sort_comments
from .rest import RestClient


class Gitea:
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

    def open_or_update_pr(self, branch: str, base: str, title: str, body: str) -> PullRequest:
        found = [
            p
            for p in self.rest.pages(f"{self.base}/pulls?state=open&limit=50")
            if (p.get("head") or {}).get("ref") == branch
        ]
        if found:
            number = found[0]["number"]
            edit = {"title": title, "body": body}
            data = self.rest.call("PATCH", f"{self.base}/pulls/{number}", edit)
        else:
            payload = {"title": title, "head": branch, "base": base, "body": body}
            data = self.rest.call("POST", f"{self.base}/pulls", payload)
        return pull_from(data)

    def pull_request(self, number: int) -> PullRequest:
        return pull_from(self.rest.call("GET", f"{self.base}/pulls/{int(number)}"))

    def comments(self, number: int) -> list[Comment]:
        n = int(number)
        found: list[Comment] = []
        for review in self.rest.pages(f"{self.base}/pulls/{n}/reviews"):
            if (review.get("body") or "").strip():
                found.append(
                    Comment(
                        f"review-{review['id']}",
                        "review",
                        login(review.get("user")),
                        review["body"],
                        state=review.get("state"),
                        created_at=review.get("submitted_at"),
                    )
                )
            if review.get("comments_count"):
                found += [
                    Comment(
                        f"line-{c['id']}",
                        "line",
                        login(c.get("user")),
                        c.get("body") or "",
                        path=c.get("path"),
                        created_at=c.get("created_at"),
                    )
                    for c in self.rest.pages(
                        f"{self.base}/pulls/{n}/reviews/{review['id']}/comments"
                    )
                ]
        found += [
            Comment(
                f"issue-{c['id']}",
                "issue",
                login(c.get("user")),
                c.get("body") or "",
                created_at=c.get("created_at"),
            )
            for c in self.rest.pages(f"{self.base}/issues/{n}/comments")
        ]
        return sort_comments(found)

    def merge(self, number: int, title: str) -> None:
        self.rest.call(
            "POST",
            f"{self.base}/pulls/{int(number)}/merge",
            {"Do": "merge", "MergeTitleField": title},
        )
