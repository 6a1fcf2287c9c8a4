"""A small JSON-over-HTTPS client for code host REST APIs (stdlib urllib, no dependency).

Retries server errors and dropped connections a few times with backoff; any other failure
becomes a CodeHostError carrying the host's own message (never the token).
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ..errors import CodeHostError, HostAuthError

_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')
MAX_PAGES = 50


class RestClient:
    """Calls `api_url` + path with fixed headers; JSON in, JSON out."""

    def __init__(
        self,
        api_url: str,
        headers: dict[str, str],
        *,
        host: str,
        attempts: int = 3,
        backoff: float = 0.5,
        timeout: float = 30.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.headers = {"Content-Type": "application/json", "User-Agent": "skillforge", **headers}
        self.host = host
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One request; the decoded JSON answer (None when empty)."""
        return self._send(method, self.api_url + path, body)[0]

    def pages(self, path: str) -> list[Any]:
        """GET a list, following `Link: <...>; rel="next"` (both hosts send it)."""
        url: str | None = self.api_url + path
        items: list[Any] = []
        for _ in range(MAX_PAGES):
            if url is None:
                break
            data, link = self._send("GET", url, None)
            items += data or []
            found = _NEXT.search(link or "")
            url = found.group(1) if found else None
        return items

    def _send(self, method: str, url: str, body: Any) -> tuple[Any, str | None]:
        data = None if body is None else json.dumps(body).encode()
        where = f"{method} {urllib.parse.urlsplit(url).path}"
        for attempt in range(self.attempts):
            request = urllib.request.Request(url, data=data, method=method, headers=self.headers)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    raw = response.read()
                    return (json.loads(raw) if raw.strip() else None), response.headers.get("Link")
            except urllib.error.HTTPError as exc:
                if exc.code < 500 or attempt == self.attempts - 1:
                    raise self._error(exc, where) from exc
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt == self.attempts - 1:
                    reason = getattr(exc, "reason", exc)
                    raise CodeHostError(
                        f"{self.host} could not be reached at {self.api_url} ({where}): {reason}; "
                        "check host_api_url and the network, then retry."
                    ) from exc
            except json.JSONDecodeError as exc:
                raise CodeHostError(f"{self.host} answered {where} with invalid JSON") from exc
            time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _error(self, exc: urllib.error.HTTPError, where: str) -> CodeHostError:
        message = _message(exc)
        if exc.code in (401, 403):
            return HostAuthError(
                f"{self.host} refused {where} ({exc.code}): {message}; check that host_token "
                "is valid and may read and write pull requests of this repository.",
                exc.code,
            )
        return CodeHostError(f"{self.host} answered {where} with {exc.code}: {message}", exc.code)


def _message(exc: urllib.error.HTTPError) -> str:
    """The host's own explanation: `message` plus GitHub's `errors` details."""
    try:
        data = json.loads(exc.read() or b"null")
    except (ValueError, OSError):
        return exc.reason or "no message"
    if not isinstance(data, dict):
        return str(exc.reason)
    text = str(data.get("message") or exc.reason)
    details = [
        str(e.get("message") or e.get("code")) if isinstance(e, dict) else str(e)
        for e in data.get("errors") or []
    ]
    return text + (f" ({'; '.join(details)})" if details else "")
