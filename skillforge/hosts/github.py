"""GitHub's REST API (v3; also GitHub Enterprise at https://HOST/api/v3) for pull requests.

Calls: GET/POST /repos/{o}/{r}/pulls, PATCH and GET /pulls/{n}, GET /pulls/{n}/reviews,
/pulls/{n}/comments and /issues/{n}/comments, PUT /pulls/{n}/merge.
"""

from __future__ import annotations

import urllib.parse

from .base import Comment, RestHost, comment, quote, sort_comments
from .rest import RestClient

API_VERSION = "2022-11-28"
PUBLIC_API = "https://api.github.com"


class GitHub(RestHost):
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

    def _open_pull_of(self, branch: str) -> list[dict]:
        head = urllib.parse.quote(f"{self.owner}:{branch}", safe="")
        return self.rest.pages(f"{self.base}/pulls?state=open&head={head}&per_page=100")

    def comments(self, number: int) -> list[Comment]:
        n = int(number)
        reviews = self.rest.pages(f"{self.base}/pulls/{n}/reviews?per_page=100")
        found = [comment("review", r) for r in reviews if (r.get("body") or "").strip()]
        found += [
            comment("line", c)
            for c in self.rest.pages(f"{self.base}/pulls/{n}/comments?per_page=100")
        ]
        found += [
            comment("issue", c)
            for c in self.rest.pages(f"{self.base}/issues/{n}/comments?per_page=100")
        ]
        return sort_comments(found)

    def merge(self, number: int, title: str) -> None:
        payload = {"commit_title": title, "merge_method": "merge"}
        self.rest.call("PUT", f"{self.base}/pulls/{int(number)}/merge", payload)
