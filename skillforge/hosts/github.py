"""GitHub's REST API (v3; also GitHub Enterprise at https://HOST/api/v3) for pull requests.

Calls: GET/POST /repos/{o}/{r}/pulls, PATCH and GET /pulls/{n}, GET /pulls/{n}/reviews,
/pulls/{n}/comments and /issues/{n}/comments, PUT /pulls/{n}/merge.
"""

from __future__ import annotations

import urllib.parse

from .base import Comment, PullRequest, login, pull_from, quote, sort_comments
from .rest import RestClient

API_VERSION = "2022-11-28"
PUBLIC_API = "https://api.github.com"


class GitHub:
    """One repository on GitHub."""

    name = "github"

    def __init__(self, api_url: str, repo: str, token: str, *, backoff: float = 0.5) -> None:
        self.owner, self.repo = repo.split("/", 1)
        self.rest = RestClient(
            api_url,
            {
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
            },
            host="GitHub",
            backoff=backoff,
        )
        self.base = f"/repos/{quote(self.owner)}/{quote(self.repo)}"

    def open_or_update_pr(self, branch: str, base: str, title: str, body: str) -> PullRequest:
        head = urllib.parse.quote(f"{self.owner}:{branch}", safe="")
        found = self.rest.pages(f"{self.base}/pulls?state=open&head={head}&per_page=100")
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
        found = [
            Comment(
                f"review-{r['id']}",
                "review",
                login(r.get("user")),
                r.get("body") or "",
                state=r.get("state"),
                created_at=r.get("submitted_at"),
            )
            for r in self.rest.pages(f"{self.base}/pulls/{n}/reviews?per_page=100")
            if (r.get("body") or "").strip()
        ]
        found += [
            Comment(
                f"line-{c['id']}",
                "line",
                login(c.get("user")),
                c.get("body") or "",
                path=c.get("path"),
                created_at=c.get("created_at"),
            )
            for c in self.rest.pages(f"{self.base}/pulls/{n}/comments?per_page=100")
        ]
        found += [
            Comment(
                f"issue-{c['id']}",
                "issue",
                login(c.get("user")),
                c.get("body") or "",
                created_at=c.get("created_at"),
            )
            for c in self.rest.pages(f"{self.base}/issues/{n}/comments?per_page=100")
        ]
        return sort_comments(found)

    def merge(self, number: int, title: str) -> None:
        payload = {"commit_title": title, "merge_method": "merge"}
        self.rest.call("PUT", f"{self.base}/pulls/{int(number)}/merge", payload)
