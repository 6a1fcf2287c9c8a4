"""A stdlib HTTP server hardened for clients that are not polite (issue 14).

A burst waits in a deep listen backlog rather than being reset; each request has a deadline
for its headers and a minimum rate for its body (slowloris); bodies held in memory at once
are bounded by a byte budget, first come first served; Content-Length must be ASCII digits;
gzip bodies are inflated up to the size limit (a zip bomb is a 413), other encodings are
415; connections beyond a cap get 503; and the owner can close idle connections at once.
Routes live elsewhere (`http_intake.py`): a handler subclasses `HardenedHandler` and reads
its body with `with self.body(limit) as body:`.

(The stdlib server, hardened, rather than uvicorn: the store is synchronous, the GIL makes
parsing serial anyway, and an ASGI server would still need the budget, deadlines and gzip.)
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import socket
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DRAIN_LIMIT = 1 << 20  # read at most this much of a refused body, so the client sees the answer
SOCKET_TIMEOUT = 30.0  # for writing an answer
LISTEN_BACKLOG = 1024  # a burst of clients waits in the kernel (the stdlib default, 5, resets)
HEADER_SECONDS = 30.0  # the request line and headers must all arrive within this
BODY_SECONDS, BODY_MIN_RATE = 30.0, 64 * 1024  # a body gets 30 s plus 1 s per 64 KiB
BUDGET_WAIT = 60.0  # a body waits this long for room in the memory budget, then 503
MAX_CONNECTIONS = 512  # open at once; more are answered 503 and closed
GZIP = {"gzip", "x-gzip"}
IDENTITY = {"", "identity"}
DIGITS = re.compile(r"[0-9]+")  # not str.isdigit: that takes '²' and other non-ASCII digits


class BodyRefused(Exception):
    """The request's body cannot be taken: the status, reason and headers to answer with."""

    def __init__(self, status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()):
        super().__init__(reason)
        self.status, self.reason, self.headers = status, reason, headers


class Budget:
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


class TooLarge(Exception):
    """A body over the size limit (after inflating)."""


def gunzip(data: bytes, limit: int) -> bytes:
    """Inflate a gzip body (members one after another, as gzip writes them), never holding
    more than `limit` + 1 bytes of output. Raises TooLarge, or zlib.error when it is not gzip."""
    out = bytearray()
    rest = data
    while rest.strip(b"\0"):
        inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
        pending = rest
        while pending and not inflater.eof:
            out += inflater.decompress(pending, limit + 1 - len(out))
            if len(out) > limit:
                raise TooLarge
            pending = inflater.unconsumed_tail
        if not inflater.eof:
            raise zlib.error("the gzip stream ends early")
        rest = inflater.unused_data
    return bytes(out)


class DeadlineReader(io.RawIOBase):
    """Reads from the socket until the handler's deadline, however slowly bytes trickle in."""

    def __init__(self, sock: socket.socket, handler: HardenedHandler) -> None:
        self.sock, self.handler = sock, handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self.handler.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the client is too slow")
        self.sock.settimeout(remaining)
        return self.sock.recv_into(buffer)


class HardenedServer(ThreadingHTTPServer):
    """Handler threads are daemons and tracked, so `close_connections` can end them; a
    connection cap, a listen backlog for bursts, and a byte budget for bodies in memory."""

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[HardenedHandler],
        *,
        body_budget: int,
        header_seconds: float = HEADER_SECONDS,
        max_connections: int = MAX_CONNECTIONS,
        say: Callable[[str], None] = lambda text: None,
    ) -> None:
        self.budget = Budget(body_budget)
        self.header_seconds, self.max_connections, self.say = header_seconds, max_connections, say
        self.handlers: set[HardenedHandler] = set()
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
                request.sendall(BUSY_ANSWER)
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
            self.say(f"http: a connection from {client_address[0]} failed: {sys.exc_info()[1]!r}")


class HardenedServerV6(HardenedServer):
    address_family = socket.AF_INET6


class HardenedHandler(BaseHTTPRequestHandler):
    """Deadlines on every read, tracked by the server; `body()` reads a body within limits."""

    timeout = SOCKET_TIMEOUT
    disable_nagle_algorithm = True  # headers and body go in two writes; don't hold the second
    server: HardenedServer
    busy = False  # between a complete request head and the end of its answer
    deadline = 0.0  # reads after this time out

    def setup(self) -> None:
        super().setup()
        self.rfile.close()
        self.rfile = io.BufferedReader(DeadlineReader(self.connection, self), 65536)
        with self.server.handlers_lock:
            self.server.handlers.add(self)

    def finish(self) -> None:
        with self.server.handlers_lock:
            self.server.handlers.discard(self)
        super().finish()

    def handle_one_request(self) -> None:
        self.busy, self.deadline = False, time.monotonic() + self.server.header_seconds
        super().handle_one_request()

    @contextlib.contextmanager
    def body(self, limit: int) -> Iterator[bytes]:
        """The request body (inflated if gzip), held within the server's memory budget for
        the block. Raises BodyRefused with the status to answer (400, 408, 411, 413, 415, 503)."""
        lengths = {value.strip() for value in self.headers.get_all("Content-Length", [])}
        if self.headers.get("Transfer-Encoding") or not lengths:
            self.close_connection = True
            raise BodyRefused(411, "send the body with a Content-Length")
        length_header = lengths.pop()
        if lengths or not DIGITS.fullmatch(length_header):
            self.close_connection = True
            raise BodyRefused(400, f"Content-Length {length_header!r} is not one number")
        # int() of thousands of digits raises; more than 18 are over any limit anyway.
        length = int(length_header) if len(length_header) <= 18 else limit + 1
        if length > limit:
            self._refuse_body(length)
            raise BodyRefused(413, f"the body is {length_header} bytes, over the limit of {limit}")
        encoding = ",".join(self.headers.get_all("Content-Encoding", [])).strip().lower()
        if encoding not in IDENTITY | GZIP:
            self._refuse_body(length)
            reason = f"unsupported Content-Encoding {encoding!r}; send the body as is or gzip"
            raise BodyRefused(415, reason, (("Accept-Encoding", "gzip"),))
        # A gzip body may inflate to the limit: it holds room for that much.
        size = limit if encoding in GZIP else length
        with self.server.budget.hold(size, BUDGET_WAIT) as room:
            if not room:
                self._refuse_body(length)
                raise BodyRefused(
                    503, "too many large bodies at once; retry", (("Retry-After", "5"),)
                )
            self.deadline = time.monotonic() + BODY_SECONDS + length / BODY_MIN_RATE
            try:
                body = self.rfile.read(length)
            except TimeoutError:
                self.close_connection = True
                raise BodyRefused(
                    408, f"the body did not arrive in time ({length} bytes)"
                ) from None
            if len(body) < length:
                self.close_connection = True
                raise BodyRefused(400, f"the body ended after {len(body)} of {length} bytes")
            if encoding in GZIP:
                try:
                    body = gunzip(body, limit)
                except TooLarge:
                    raise BodyRefused(
                        413, f"the body inflates to over the limit of {limit} bytes"
                    ) from None
                except zlib.error as exc:
                    raise BodyRefused(400, f"the body is not valid gzip: {exc}") from None
            yield body

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


def _busy_answer() -> bytes:
    """The whole 503 sent to a connection over the cap, before anything is read from it."""
    body = json.dumps(
        {"errors": [{"index": None, "reason": "too many connections; retry"}]}
    ).encode()
    head = (
        "HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"Retry-After: 1\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


BUSY_ANSWER = _busy_answer()
