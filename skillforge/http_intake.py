"""HTTP intake: `POST /v1/trajectories` stores runs in the same store and quarantine as files;
`POST /v1/traces` takes OpenTelemetry spans from any OTLP/HTTP exporter (see otlp.py).

A hardened stdlib server (httpserver.py) on a background thread; each request opens its own
`Store` (SQLite connections are per thread). A trajectories request is all or nothing: if
any record is invalid the answer is 400 with every problem, nothing is stored, and the bad
records go to the quarantine (as bad lines of a file do); otherwise 202 once the
transaction is on disk. A traces request is answered 200 once its spans are on disk.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from evolver.model import Trajectory

from . import otlp
from .config import Config
from .errors import ConfigError, InvalidTrajectory, SkillforgeError
from .httpserver import (
    HEADER_SECONDS,
    MAX_CONNECTIONS,
    SOCKET_TIMEOUT,
    BodyRefused,
    HardenedHandler,
    HardenedServer,
    HardenedServerV6,
)
from .importers import parse_line, parse_record
from .intake import QuarantineSink, excerpt
from .openapi import openapi_document
from .store import Quarantined, utcnow
from .stores import AnyStore, open_store

JSON_TYPES = {"application/json", ""}
JSONL_TYPES = {"application/x-ndjson", "application/jsonl", "application/x-jsonlines"}
STOP_GRACE = 10.0  # requests in flight at stop() get this long to finish
ROUTES: dict[str, tuple[str, ...]] = {
    "/v1/trajectories": ("POST",),
    "/v1/traces": ("POST",),
    "/v1/status": ("GET",),
    "/v1/openapi.json": ("GET",),
}
PUBLIC = {"/v1/openapi.json"}  # served without the token

StoredHook = Callable[[AnyStore], None]


@dataclass(frozen=True)
class Answer:
    """A response: a JSON body, or `raw` bytes of `content_type` (OTLP answers protobuf)."""

    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()
    raw: bytes | None = None
    content_type: str = "application/json"


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
        # Migrate once now, not racing in concurrent requests.
        self._stores = _StorePool(config)
        self._stores.put(open_store(config.store_location))
        self.on_stored, self.on_quarantine = on_stored, on_quarantine
        self.say = say or (lambda text: None)
        self._write_lock = threading.Lock()
        self.stop_grace = stop_grace
        self.stopping = threading.Event()
        server_class = HardenedServerV6 if ":" in host else HardenedServer
        try:
            self.server = server_class(
                (host, port),
                _Handler,
                body_budget=body_budget or config.http_max_bytes,
                header_seconds=header_seconds,
                max_connections=max_connections,
                say=self.say,
            )
        except OSError as exc:
            raise ConfigError(f"cannot listen on {config.http}: {exc.strerror or exc}") from exc
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
        self._stores.close()

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
        items: Iterable[Item]
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
        with self._stores.get() as store:
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
        answer = {"accepted": result.stored, "duplicates": result.duplicates, "ids": ids}
        if result.outcomes:  # stored runs whose unknown outcome these copies brought
            answer["outcomes"] = result.outcomes
        return Answer(202, answer)

    def receive_traces(self, body: bytes, content_type: str, client: str) -> Answer:
        """Buffer an OTLP export's spans; store the runs of the traces it completes."""
        try:
            document = otlp.decode(body, content_type)
        except otlp.InvalidExport as exc:
            status = 415 if "Content-Type" in exc.args[0] else 400
            return _error(status, exc.args[0])
        source = f"otlp:{client}"
        with self._stores.get() as store:
            with self._write_lock:
                result = otlp.receive(store, document, source=source, now=utcnow())
            if result.stored and self.on_stored:
                self.on_stored(store)
        if result.stored or result.quarantined:
            self.say(
                f"otlp: stored {result.stored} trajectories from {client} "
                f"({result.duplicates} duplicates, {result.quarantined} quarantined)"
            )
        message = f"{result.rejected} spans had no trace or span id" if result.rejected else ""
        raw, kind = otlp.response(content_type, result.rejected, message)
        return Answer(200, {}, raw=raw, content_type=kind)

    def flush_traces(self) -> int:
        """Store the runs of traces whose root span never came (the daemon calls this)."""
        with self._stores.get() as store, self._write_lock:
            result = otlp.flush_settled(store, source="otlp", now=utcnow())
            if result.stored and self.on_stored:
                self.on_stored(store)
        return result.stored

    def status(self) -> Answer:
        with self._stores.get() as store:
            last = store.last_cycle()
            body = {
                "trajectories": store.count("trajectories"),
                "succeeded": store.count("trajectories", "success = 1"),
                "failed": store.count("trajectories", "success = 0"),
                "duplicates": store.counter("duplicates"),
                "quarantined": store.quarantined_lines(),
                "not_evolved": store.stored_after(store.evolved_high_water()),
                "last_cycle": (
                    {k: last[k] for k in ("id", "status", "started_at", "finished_at")}
                    if last
                    else None
                ),
                "next_cycle": store.state().get("next_cycle"),
            }
        return Answer(200, body)


class _StorePool:
    """Open stores for request threads. A SQLite connection belongs to the thread that opened
    it and opening one is cheap, so each request opens its own; a PostgreSQL connection is
    costly to open (a network round trip, the migrations check), so they are reused."""

    def __init__(self, config: Config, size: int = 8) -> None:
        self.config, self.size = config, size
        self.reuse = config.db_is_postgres
        self._idle: list[AnyStore] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def get(self) -> Iterator[AnyStore]:
        store = None
        if self.reuse:
            with self._lock:
                store = self._idle.pop() if self._idle else None
        store = store or open_store(self.config.store_location)
        try:
            yield store
        finally:
            self.put(store)

    def put(self, store: AnyStore) -> None:
        with self._lock:
            if self.reuse and len(self._idle) < self.size:
                self._idle.append(store)
                return
        store.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for store in idle:
            store.close()


Item = tuple[bytes, Callable[[], Trajectory]]


def _parse(
    items: Iterable[Item], where: str
) -> tuple[list[Trajectory], list[Quarantined], list[dict[str, Any]]]:
    """The trajectories, the bad records for the quarantine, and the errors to answer with.
    Items are taken one at a time: a record's raw bytes are kept only when it is bad."""
    good: list[Trajectory] = []
    bad: list[Quarantined] = []
    errors: list[dict[str, Any]] = []
    index = -1
    for index, (raw, parse) in enumerate(items):
        try:
            good.append(parse())
        except InvalidTrajectory as exc:
            errors.append({"index": index, "reason": exc.reason})
            bad.append(Quarantined(where, index + 1, index, exc.reason, excerpt(raw)))
    if index < 0:
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


def _jsonl_items(body: bytes) -> Iterator[Item]:
    """A JSONL body: one record per non-blank line, cut from the body as it is read (a list
    of every line would hold a second copy of a 30 MB body while it is parsed)."""
    start, size = 0, len(body)
    while start < size:
        end = body.find(b"\n", start)
        end = size if end < 0 else end
        line = body[start:end].rstrip(b"\r")
        start = end + 1
        if line.strip():
            yield line, lambda line=line: parse_line(line)


def _raiser(reason: str) -> Callable[[], Trajectory]:
    def parse() -> Trajectory:
        raise InvalidTrajectory(reason)

    return parse


class _Handler(HardenedHandler):
    server_version = "skillforge"

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
        if path == "/v1/traces":
            return self._post(self.intake.receive_traces)
        return self._post(self.intake.receive)

    def _post(self, receive: Callable[[bytes, str, str], Answer]) -> Answer:
        try:
            with self.body(self.intake.config.http_max_bytes) as body:
                return receive(body, self.headers.get("Content-Type", ""), self.client_address[0])
        except BodyRefused as refused:
            return _error(refused.status, refused.reason, refused.headers)

    def _send(self, answer: Answer) -> None:
        payload = answer.raw
        if payload is None:
            payload = json.dumps(answer.body, ensure_ascii=False).encode("utf-8")
        if self.intake.stopping.is_set():
            self.close_connection = True
        try:
            self.connection.settimeout(SOCKET_TIMEOUT)
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
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
