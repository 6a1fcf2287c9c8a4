"""HTTP intake: `POST /v1/trajectories` stores runs in the same store and quarantine as files.

A stdlib `ThreadingHTTPServer` on a background thread; each request opens its own `Store`
(SQLite connections are per thread). A request is all or nothing: if any record is invalid
the answer is 400 with every problem, nothing is stored, and the bad records go to the
quarantine (as bad lines of a file do); otherwise 202 once the transaction is on disk.

The clients are not trusted to be polite (issue 14). A burst waits in a deep listen backlog
rather than being reset; each request has a deadline for its headers and a minimum rate for
its body (slowloris); bodies held in memory at once are bounded by a byte budget, first come
first served; Content-Length must be ASCII digits; gzip bodies are inflated up to the size
limit (a zip bomb is a 413), other encodings are 415; connections beyond a cap get 503; and
`stop()` closes idle connections at once and gives requests in flight a short grace.
(The stdlib server, hardened, rather than uvicorn: the store is synchronous, the GIL makes
parsing serial anyway, and an ASGI server would still need the budget, deadlines and gzip.)
"""

from __future__ import annotations

import contextlib
import hmac
import io
import ipaddress
import json
import re
import socket
import sys
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Iterator
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
SOCKET_TIMEOUT = 30.0  # for writing an answer
LISTEN_BACKLOG = 1024  # a burst of clients waits in the kernel (the stdlib default, 5, resets)
HEADER_SECONDS = 30.0  # the request line and headers must all arrive within this
BODY_SECONDS, BODY_MIN_RATE = 30.0, 64 * 1024  # a body gets 30 s plus 1 s per 64 KiB
BUDGET_WAIT = 60.0  # a body waits this long for room in the memory budget, then 503
MAX_CONNECTIONS = 512  # open at once; more are answered 503 and closed
STOP_GRACE = 10.0  # requests in flight at stop() get this long to finish
GZIP = {"gzip", "x-gzip"}
IDENTITY = {"", "identity"}
DIGITS = re.compile(r"[0-9]+")  # not str.isdigit: that takes '²' and other non-ASCII digits
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
        header_seconds: float = HEADER_SECONDS,
        body_budget: int | None = None,
        max_connections: int = MAX_CONNECTIONS,
        stop_grace: float = STOP_GRACE,
    ) -> None:
        """Bind now (ConfigError if the address is taken or off loopback without a token).

        The limits default to the module's constants: `header_seconds` for a request's line
        and headers, `body_budget` bytes of bodies in memory at once (`http_max_bytes`: one
        body at the limit, or many small ones), `max_connections` open at once, and
        `stop_grace` seconds for requests in flight at `stop()`."""
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
        self.header_seconds, self.stop_grace = header_seconds, stop_grace
        self.budget = _Budget(body_budget or config.http_max_bytes)
        self.stopping = threading.Event()
        server_class = _IPv6Server if ":" in host else _Server
        try:
            self.server = server_class((host, port), _Handler)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {config.http}: {exc.strerror or exc}") from exc
        self.server.intake = self
        self.server.max_connections = max_connections
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
        """Stop listening and close idle connections now; requests in flight get
        `stop_grace` seconds to finish, then their connections are closed too."""
        self.stopping.set()
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join()
        deadline = time.monotonic() + self.stop_grace
        while self.server.close_connections(idle_only=True) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.server.close_connections(idle_only=False)
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


class _Budget:
    """The bytes of request bodies in memory at once, handed out first come first served
    (a large body is not starved by a stream of small ones)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0
        self._queue: deque[object] = deque()
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def hold(self, size: int, timeout: float) -> Iterator[bool]:
        """Reserve `size` bytes (at most the whole budget) for the block; False if there was
        no room within `timeout` seconds."""
        size, ticket = min(size, self.limit), object()
        with self._changed:
            self._queue.append(ticket)
            got = self._changed.wait_for(
                lambda: self._queue[0] is ticket and self.used + size <= self.limit, timeout
            )
            self._queue.remove(ticket)
            self.used += size if got else 0
            self._changed.notify_all()
        try:
            yield got
        finally:
            if got:
                with self._changed:
                    self.used -= size
                    self._changed.notify_all()


class _TooLarge(Exception):
    pass


def _gunzip(data: bytes, limit: int) -> bytes:
    """Inflate a gzip body (members one after another, as gzip writes them), never holding
    more than `limit` + 1 bytes of output. Raises _TooLarge, or zlib.error when it is not gzip."""
    out = bytearray()
    rest = data
    while rest.strip(b"\0"):
        inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
        pending = rest
        while pending and not inflater.eof:
            out += inflater.decompress(pending, limit + 1 - len(out))
            if len(out) > limit:
                raise _TooLarge
            pending = inflater.unconsumed_tail
        if not inflater.eof:
            raise zlib.error("the gzip stream ends early")
        rest = inflater.unused_data
    return bytes(out)


class _DeadlineReader(io.RawIOBase):
    """Reads from the socket until the handler's deadline, however slowly bytes trickle in."""

    def __init__(self, sock: socket.socket, handler: _Handler) -> None:
        self.sock, self.handler = sock, handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self.handler.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the client is too slow")
        self.sock.settimeout(remaining)
        return self.sock.recv_into(buffer)


class _Server(ThreadingHTTPServer):
    """Handler threads are daemons and tracked, so `stop()` can close their connections."""

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True
    block_on_close = False
    intake: IntakeServer
    max_connections: int

    def __init__(self, address: tuple[str, int], handler: type[_Handler]) -> None:
        self.handlers: set[_Handler] = set()
        self.handlers_lock = threading.Lock()
        self.accepted: set[socket.socket] = set()  # from accept to close, counted for the cap
        super().__init__(address, handler)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """Over the connection cap: a short 503 and close, on the accepting thread."""
        with self.handlers_lock:
            room = len(self.accepted) < self.max_connections
            if room:
                self.accepted.add(request)
        if not room:
            with contextlib.suppress(OSError):
                request.settimeout(1.0)
                request.sendall(_BUSY)
        return room

    def shutdown_request(self, request: Any) -> None:
        with self.handlers_lock:
            self.accepted.discard(request)
        super().shutdown_request(request)

    def close_connections(self, *, idle_only: bool) -> int:
        """Shut down the sockets of idle handlers (or of all); how many handlers are left."""
        with self.handlers_lock:  # a handler closes its socket only after leaving the set
            for handler in self.handlers:
                if not (idle_only and handler.busy):
                    with contextlib.suppress(OSError):
                        handler.connection.shutdown(socket.SHUT_RDWR)
            return len(self.handlers)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that broke is the client's business; anything else is reported."""
        if not isinstance(sys.exc_info()[1], OSError):
            self.intake.say(
                f"http: a connection from {client_address[0]} failed: {sys.exc_info()[1]!r}"
            )


class _IPv6Server(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server_version = "skillforge"
    timeout = SOCKET_TIMEOUT
    disable_nagle_algorithm = True  # headers and body go in two writes; don't hold the second
    server: _Server
    busy = False  # between a complete request head and the end of its answer
    deadline = 0.0  # reads after this time out

    @property
    def intake(self) -> IntakeServer:
        return self.server.intake

    def setup(self) -> None:
        super().setup()
        self.rfile.close()
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self), 65536)
        with self.server.handlers_lock:
            self.server.handlers.add(self)

    def finish(self) -> None:
        with self.server.handlers_lock:
            self.server.handlers.discard(self)
        super().finish()

    def handle_one_request(self) -> None:
        self.busy, self.deadline = False, time.monotonic() + self.intake.header_seconds
        super().handle_one_request()

    def do_GET(self) -> None:  # noqa: N802 (the name http.server dispatches to)
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        self.busy = True
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
        lengths = {value.strip() for value in self.headers.get_all("Content-Length", [])}
        if self.headers.get("Transfer-Encoding") or not lengths:
            self.close_connection = True
            return _error(411, "send the body with a Content-Length")
        length_header = lengths.pop()
        if lengths or not DIGITS.fullmatch(length_header):
            self.close_connection = True
            return _error(400, f"Content-Length {length_header!r} is not one number")
        limit = self.intake.config.http_max_bytes
        # int() of thousands of digits raises; more than 18 are over any limit anyway.
        length = int(length_header) if len(length_header) <= 18 else limit + 1
        if length > limit:
            self._refuse_body(length)
            return _error(413, f"the body is {length_header} bytes, over the limit of {limit}")
        encoding = ",".join(self.headers.get_all("Content-Encoding", [])).strip().lower()
        if encoding not in IDENTITY | GZIP:
            self._refuse_body(length)
            reason = f"unsupported Content-Encoding {encoding!r}; send the body as is or gzip"
            return _error(415, reason, (("Accept-Encoding", "gzip"),))
        # A gzip body may inflate to the limit: it holds room for that much.
        size = limit if encoding in GZIP else length
        with self.intake.budget.hold(size, BUDGET_WAIT) as room:
            if not room:
                self._refuse_body(length)
                return _error(503, "too many large bodies at once; retry", (("Retry-After", "5"),))
            self.deadline = time.monotonic() + BODY_SECONDS + length / BODY_MIN_RATE
            try:
                body = self.rfile.read(length)
            except TimeoutError:
                self.close_connection = True
                return _error(408, f"the body did not arrive in time ({length} bytes)")
            if len(body) < length:
                self.close_connection = True
                return _error(400, f"the body ended after {len(body)} of {length} bytes")
            if encoding in GZIP:
                try:
                    body = _gunzip(body, limit)
                except _TooLarge:
                    return _error(413, f"the body inflates to over the limit of {limit} bytes")
                except zlib.error as exc:
                    return _error(400, f"the body is not valid gzip: {exc}")
            return self.intake.receive(
                body, self.headers.get("Content-Type", ""), self.client_address[0]
            )

    def _refuse_body(self, length: int) -> None:
        """Read (and drop) some of a refused body, then close: closing on unread data resets
        the connection, and the client would never see the answer."""
        self.close_connection = True
        self.deadline = time.monotonic() + 5.0
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
        if self.intake.stopping.is_set():
            self.close_connection = True
        try:
            self.connection.settimeout(SOCKET_TIMEOUT)
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


def _busy_answer() -> bytes:
    """The whole 503 sent to a connection over the cap, before anything is read from it."""
    body = json.dumps(_error(503, "too many connections; retry").body).encode()
    head = (
        "HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"Retry-After: 1\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


_BUSY = _busy_answer()
