"""HTTP intake: `POST /v1/trajectories` stores runs in the same store and quarantine as files.

A stdlib `ThreadingHTTPServer` on a background thread; each request opens its own `Store`
(SQLite connections are per thread). A request is all or nothing: if any record is invalid
the answer is 400 with every problem, nothing is stored, and the bad records go to the
quarantine (as bad lines of a file do); otherwise 202 once the transaction is on disk.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from evolver.model import Trajectory

from .config import Config
from .errors import ConfigError, InvalidTrajectory, SkillforgeError
from .importers import parse_line, parse_record
from .intake import QuarantineSink, excerpt
from .openapi import openapi_document
from .store import Quarantined, Store

JSON_TYPES = {"application/json", ""}
JSONL_TYPES = {"application/x-ndjson", "application/jsonl", "application/x-jsonlines"}
DRAIN_LIMIT = 1 << 20  # read at most this much of a refused body, so the client sees the answer
SOCKET_TIMEOUT = 30.0
ROUTES: dict[str, tuple[str, ...]] = {
    "/v1/trajectories": ("POST",),
    "/v1/status": ("GET",),
    "/v1/openapi.json": ("GET",),
}
PUBLIC = {"/v1/openapi.json"}  # served without the token

StoredHook = Callable[[Store], None]


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()


def parse_address(text: str) -> tuple[str, int]:
    """`127.0.0.1:8765`, `localhost:0` or `[::1]:8765` as (host, port)."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"http address {text!r} is not HOST:PORT, e.g. 127.0.0.1:8765")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class IntakeServer:
    """The HTTP intake of one store; `start()` listens on a background thread."""

    def __init__(
        self,
        config: Config,
        *,
        on_stored: StoredHook | None = None,
        on_quarantine: QuarantineSink | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        if not config.http:
            raise ConfigError("HTTP intake needs an address: set http (serve --http HOST:PORT)")
        host, port = parse_address(config.http)
        if not config.http_token and not is_loopback(host):
            raise ConfigError(
                f"refusing to listen on {config.http} without a token: set http_token "
                "(or SKILLFORGE_HTTP_TOKEN), or listen on 127.0.0.1"
            )
        self.config = config
        Store(config.db_path).close()  # migrate once now, not racing in concurrent requests
        self.on_stored, self.on_quarantine = on_stored, on_quarantine
        self.say = say or (lambda text: None)
        self._write_lock = threading.Lock()
        server_class = _IPv6Server if ":" in host else ThreadingHTTPServer
        try:
            self.server = server_class((host, port), _Handler)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {config.http}: {exc.strerror or exc}") from exc
        self.server.daemon_threads = False  # stop() waits for requests in flight
        self.server.intake = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://[{host}]:{port}" if ":" in str(host) else f"http://{host}:{port}"

    def start(self) -> IntakeServer:
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening; requests in flight finish first."""
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join()
        self.server.server_close()

    def __enter__(self) -> IntakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what the routes do ---------------------------------------------------------------

    def authorized(self, header: str | None) -> bool:
        token = self.config.http_token
        if not token:
            return True
        scheme, _, given = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        )

    def receive(self, body: bytes, content_type: str, client: str) -> Answer:
        """Parse, validate and store one request's records (all or nothing)."""
        kind = content_type.split(";")[0].strip().lower()
        if kind in JSONL_TYPES:
            items = _jsonl_items(body)
        elif kind in JSON_TYPES:
            items = _json_items(body)
        else:
            reason = f"unsupported Content-Type {kind!r}; send application/json or JSONL"
            return _error(415, f"{reason} (application/x-ndjson)")
        request_id = uuid.uuid4().hex[:12]
        source = f"http:{client}"
        good, bad, errors = _parse(items, f"{source} request {request_id}")
        with Store(self.config.db_path) as store:
            # One writer at a time: SQLite would serialise them too, but by sleeping and retrying.
            with self._write_lock:
                result = store.record_received([] if errors else good, bad, source=source)
            if result.stored and self.on_stored:
                self.on_stored(store)
        for entry in bad:
            if self.on_quarantine:
                self.on_quarantine(entry)
        if errors:
            self.say(
                f"http: refused a request from {client} ({len(errors)} problems, "
                f"{len(bad)} records quarantined)"
            )
            return Answer(400, {"errors": errors, "request": request_id})
        if result.stored:
            self.say(
                f"http: stored {result.stored} trajectories from {client} "
                f"({result.duplicates} duplicates)"
            )
        ids = [t.id for t in good]
        return Answer(202, {"accepted": result.stored, "duplicates": result.duplicates, "ids": ids})

    def status(self) -> Answer:
        with Store(self.config.db_path) as store:
            last = store.last_cycle()
            body = {
                "trajectories": store.count("trajectories"),
                "succeeded": store.count("trajectories", "success = 1"),
                "failed": store.count("trajectories", "success = 0"),
                "duplicates": store.counter("duplicates"),
                "quarantined": store.count("quarantine"),
                "not_evolved": store.stored_after(store.evolved_high_water()),
                "last_cycle": (
                    {k: last[k] for k in ("id", "status", "started_at", "finished_at")}
                    if last
                    else None
                ),
                "next_cycle": store.state().get("next_cycle"),
            }
        return Answer(200, body)


Item = tuple[bytes, Callable[[], Trajectory]]


def _parse(
    items: list[Item], where: str
) -> tuple[list[Trajectory], list[Quarantined], list[dict[str, Any]]]:
    """The trajectories, the bad records for the quarantine, and the errors to answer with."""
    good: list[Trajectory] = []
    bad: list[Quarantined] = []
    errors: list[dict[str, Any]] = []
    for index, (raw, parse) in enumerate(items):
        try:
            good.append(parse())
        except InvalidTrajectory as exc:
            errors.append({"index": index, "reason": exc.reason})
            bad.append(Quarantined(where, index + 1, index, exc.reason, excerpt(raw)))
    if not items:
        errors.append({"index": None, "reason": "the body holds no trajectories"})
    return good, bad, errors


def _json_items(body: bytes) -> list[Item]:
    """A JSON body: one record or an array of them."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        reason = str(exc) if not isinstance(exc, RecursionError) else "nested too deeply"
        return [(body, _raiser(f"the body is not valid JSON: {reason}"))]
    records = document if isinstance(document, list) else [document]
    return [(json.dumps(r).encode(), lambda r=r: parse_record(r)) for r in records]


def _jsonl_items(body: bytes) -> list[Item]:
    """A JSONL body: one record per non-blank line."""
    lines = [line.rstrip(b"\r") for line in body.split(b"\n")]
    return [(line, lambda line=line: parse_line(line)) for line in lines if line.strip()]


def _raiser(reason: str) -> Callable[[], Trajectory]:
    def parse() -> Trajectory:
        raise InvalidTrajectory(reason)

    return parse


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server_version = "skillforge"
    timeout = SOCKET_TIMEOUT
    disable_nagle_algorithm = True  # headers and body go in two writes; don't hold the second

    @property
    def intake(self) -> IntakeServer:
        return self.server.intake  # type: ignore[attr-defined,no-any-return]

    def do_GET(self) -> None:  # noqa: N802 (the name http.server dispatches to)
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        try:
            answer = self._route(method)
        except SkillforgeError as exc:  # the store failed: nothing was stored, retry later
            answer = _error(503, str(exc), (("Retry-After", "1"),))
        except Exception as exc:  # a bug must not leave the client without an answer
            self.intake.say(f"http: {method} {self.path} failed: {exc!r}")
            answer = _error(500, "internal error; the daemon's output has the details")
        self._send(answer)

    def _route(self, method: str) -> Answer:
        path = self.path.split("?")[0]
        if path not in ROUTES:
            return _error(404, f"no such resource {path}; see /v1/openapi.json")
        if method not in ROUTES[path]:
            allowed = ", ".join(ROUTES[path])
            return _error(405, f"{path} takes {allowed}", (("Allow", allowed),))
        if path not in PUBLIC and not self.intake.authorized(self.headers.get("Authorization")):
            challenge = (("WWW-Authenticate", "Bearer"),)
            return _error(401, "a valid bearer token is required", challenge)
        if path == "/v1/openapi.json":
            return Answer(200, openapi_document())
        if path == "/v1/status":
            return self.intake.status()
        return self._post_trajectories()

    def _post_trajectories(self) -> Answer:
        length_header = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or length_header is None:
            self.close_connection = True
            return _error(411, "send the body with a Content-Length")
        if not length_header.strip().isdigit():
            self.close_connection = True
            return _error(400, f"Content-Length {length_header!r} is not a number")
        length = int(length_header)
        limit = self.intake.config.http_max_bytes
        if length > limit:
            self.close_connection = True
            self._drain(length)
            return _error(413, f"the body is {length} bytes, over the limit of {limit}")
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            return _error(400, f"the body ended after {len(body)} of {length} bytes")
        return self.intake.receive(
            body, self.headers.get("Content-Type", ""), self.client_address[0]
        )

    def _drain(self, length: int) -> None:
        """Read (and drop) some of a refused body: closing on unread data resets the
        connection, and the client would never see the 413."""
        remaining = min(length, DRAIN_LIMIT)
        try:
            while remaining > 0:
                chunk = self.rfile.read1(min(remaining, 65536))
                if not chunk:
                    return
                remaining -= len(chunk)
        except OSError:
            return

    def _send(self, answer: Answer) -> None:
        payload = json.dumps(answer.body, ensure_ascii=False).encode("utf-8")
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in answer.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client went away; it will retry, and duplicates are harmless
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the daemon reports what was stored, not every request."""


def _error(status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()) -> Answer:
    return Answer(status, {"errors": [{"index": None, "reason": reason}]}, headers)
