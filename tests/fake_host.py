"""A loopback code host for tests: GitHub's REST v3 or Gitea's API v1 for the pull request
calls skillforge makes, beside the real git remote served by `git http-backend`.

Pull requests live in memory; a test acts as a reviewer through `review`, `comment`,
`close` and `merge`, and `merge` really merges the head branch into main in the bare
repository (a clone, `git merge --no-ff`, a push), as the host's button would.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import tempfile
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.git_server import read_body, serve_git

TOKEN = "test-token-123"


class FakeHost:
    """One repository `owner/name` on a fake GitHub or Gitea, with its git remote."""

    def __init__(self, flavour: str, root: Path, owner: str = "acme", name: str = "skills"):
        assert flavour in ("github", "gitea")
        self.flavour, self.owner, self.name = flavour, owner, name
        self.root = Path(root)
        self.bare = self.root / owner / f"{name}.git"
        self.bare.parent.mkdir(parents=True, exist_ok=True)
        _git("init", "--quiet", "--bare", "-b", "main", str(self.bare))
        self.pulls: dict[int, dict[str, Any]] = {}
        self.reviews: dict[int, list[dict[str, Any]]] = {}
        self.line_comments: dict[int, list[dict[str, Any]]] = {}
        self.issue_comments: dict[int, list[dict[str, Any]]] = {}
        self.requests: list[tuple[str, str, Any]] = []  # method, path, headers (any case)
        self.failures: list[int] = []  # statuses to answer the next API calls with
        self.page_size = 30
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host._dispatch(self, b"")

            def do_POST(self) -> None:
                host._dispatch(self, read_body(self))

            def do_PATCH(self) -> None:
                host._dispatch(self, read_body(self))

            def do_PUT(self) -> None:
                host._dispatch(self, read_body(self))

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.remote = f"{self.url}/{owner}/{name}.git"
        self.api = f"{self.url}/api/v3" if flavour == "github" else f"{self.url}/api/v1"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeHost:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- a reviewer's actions ---------------------------------------------------------

    def review(
        self, number: int, author: str, body: str, lines: tuple[tuple[str, str], ...] = ()
    ) -> None:
        """Submit a review asking for changes, with comments on files (path, text)."""
        state = "CHANGES_REQUESTED" if self.flavour == "github" else "REQUEST_CHANGES"
        review = {
            "id": next(self._ids),
            "user": {"login": author},
            "body": body,
            "state": state,
            "submitted_at": self._now(),
            "comments_count": len(lines),
        }
        self.reviews.setdefault(number, []).append(review)
        for path, text in lines:
            self.line_comments.setdefault(number, []).append(
                {
                    "id": next(self._ids),
                    "user": {"login": author},
                    "body": text,
                    "path": path,
                    "created_at": self._now(),
                    "pull_request_review_id": review["id"],
                }
            )

    def comment(self, number: int, author: str, body: str) -> None:
        self.issue_comments.setdefault(number, []).append(
            {
                "id": next(self._ids),
                "user": {"login": author},
                "body": body,
                "created_at": self._now(),
            }
        )

    def close(self, number: int) -> None:
        self.pulls[number]["state"] = "closed"

    def merge(self, number: int, by: str = "alice") -> None:
        pull = self.pulls[number]
        with tempfile.TemporaryDirectory() as tmp:
            _git("clone", "--quiet", str(self.bare), tmp)
            _git(
                "-C",
                tmp,
                "merge",
                "--quiet",
                "--no-ff",
                "-m",
                f"Merge pull request #{number}",
                f"origin/{pull['head']['ref']}",
            )
            _git("-C", tmp, "push", "--quiet", "origin", "main")
        pull.update(state="closed", merged=True, merged_by={"login": by})

    def open_pulls(self) -> list[dict[str, Any]]:
        return [p for p in self.pulls.values() if p["state"] == "open"]

    # -- the API ----------------------------------------------------------------------

    def _now(self) -> str:
        return f"2026-11-21T10:{len(self.requests) % 60:02d}:{next(self._ids) % 60:02d}Z"

    def _dispatch(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        prefix = urllib.parse.urlsplit(self.api).path
        if not handler.path.startswith(prefix + "/"):
            serve_git(handler, self.root, body)
            return
        self.requests.append((handler.command, handler.path, handler.headers))
        with self._lock:
            status, data, link = self._api(handler, body, prefix)
        raw = b"" if data is None else json.dumps(data).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(raw)))
        if link:
            handler.send_header("Link", f'<{link}>; rel="next"')
        handler.end_headers()
        handler.wfile.write(raw)

    def _api(self, handler: BaseHTTPRequestHandler, body: bytes, prefix: str):
        if self.failures:
            return self.failures.pop(0), {"message": "upstream hiccup"}, None
        expected = f"Bearer {TOKEN}" if self.flavour == "github" else f"token {TOKEN}"
        if handler.headers.get("Authorization") != expected:
            return 401, {"message": "Bad credentials"}, None
        parts = urllib.parse.urlsplit(handler.path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        route = parts.path.removeprefix(f"{prefix}/repos/{self.owner}/{self.name}").split("/")
        payload = json.loads(body or b"null")
        method = handler.command
        match route:
            case ["", "pulls"] if method == "GET":
                found = [
                    p
                    for p in self.pulls.values()
                    if query.get("state", "open") in ("all", p["state"])
                ]
                if "head" in query:
                    found = [p for p in found if p["head"]["label"] == query["head"]]
                return self._page(handler, found, query)
            case ["", "pulls"] if method == "POST":
                return self._create(payload)
            case ["", "pulls", n] if n in map(str, self.pulls):
                pull = self.pulls[int(n)]
                if method == "PATCH":
                    pull.update({k: payload[k] for k in ("title", "body") if k in payload})
                    return (200 if self.flavour == "github" else 201), pull, None
                return 200, pull, None
            case ["", "pulls", n, "reviews"] if int(n) in self.pulls:
                return self._page(handler, self.reviews.get(int(n), []), query)
            case ["", "pulls", n, "comments"] if self.flavour == "github":
                return self._page(handler, self.line_comments.get(int(n), []), query)
            case ["", "pulls", n, "reviews", rid, "comments"] if self.flavour == "gitea":
                found = [
                    c
                    for c in self.line_comments.get(int(n), [])
                    if c["pull_request_review_id"] == int(rid)
                ]
                return self._page(handler, found, query)
            case ["", "issues", n, "comments"]:
                return self._page(handler, self.issue_comments.get(int(n), []), query)
            case ["", "pulls", n, "merge"] if method in ("PUT", "POST") and int(n) in self.pulls:
                self.merge(int(n), by="skillforge-bot")
                if self.flavour == "gitea":
                    return 200, None, None
                return 200, {"merged": True, "message": "Pull Request successfully merged"}, None
        return 404, {"message": "Not Found"}, None

    def _create(self, payload: dict[str, Any]):
        head = payload.get("head", "")
        exists = subprocess.run(
            [
                "git",
                "--git-dir",
                str(self.bare),
                "rev-parse",
                "--verify",
                "--quiet",
                f"refs/heads/{head}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if exists.returncode != 0:
            return (
                422,
                {
                    "message": "Validation Failed",
                    "errors": [{"message": f"head branch {head} not found"}],
                },
                None,
            )
        label = f"{self.owner}:{head}"
        if any(p["head"]["label"] == label for p in self.open_pulls()):
            return (
                (422 if self.flavour == "github" else 409),
                {"message": f"A pull request already exists for {label}."},
                None,
            )
        number = len(self.pulls) + 1
        kind = "pull" if self.flavour == "github" else "pulls"
        self.pulls[number] = {
            "id": next(self._ids),
            "number": number,
            "state": "open",
            "merged": False,
            "merged_by": None,
            "title": payload.get("title"),
            "body": payload.get("body"),
            "html_url": f"{self.url}/{self.owner}/{self.name}/{kind}/{number}",
            "head": {"ref": head, "label": label, "sha": exists.stdout.strip()},
            "base": {"ref": payload.get("base")},
        }
        return 201, self.pulls[number], None

    def _page(self, handler: BaseHTTPRequestHandler, items: list, query: dict[str, str]):
        page = int(query.get("page", "1"))
        chunk = items[(page - 1) * self.page_size : page * self.page_size]
        link = None
        if page * self.page_size < len(items):
            parts = urllib.parse.urlsplit(handler.path)
            following = urllib.parse.urlencode({**query, "page": page + 1})
            link = f"{self.url}{parts.path}?{following}"
        return 200, chunk, link


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout
