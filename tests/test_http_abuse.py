"""HTTP intake against hostile clients (issue 14): real sockets, the real daemon process.

Bursts, idle and trickling connections, huge bodies, malformed Content-Length and
Content-Encoding. The assertions are about behaviour (status codes, exactly-once storage,
exit after SIGTERM, a bound on memory) with generous limits, not about speed.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import re
import select
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_harness import DaemonProcess, wait_for
from tests.test_http_intake import AUTH, Intake, run_record

pytestmark = pytest.mark.e2e


# -- helpers -------------------------------------------------------------------------------


def raw_request(port: int, head: str, body: bytes = b"", timeout: float = 60) -> tuple[int, dict]:
    """Send `head` (request line and headers, without the blank line) and `body` byte for
    byte as given, and read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        text = head.replace("\n", "\r\n") + "\r\n\r\n"
        # Headers are read as latin-1 ('²' arrives as '²'); what it lacks is sent as UTF-8.
        wire = text.encode("latin-1") if text.isascii() or max(text) <= "\xff" else text.encode()
        sock.sendall(wire + body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, json.loads(response.read())


def post_head(length: str | None, **headers: str) -> str:
    lines = [
        "POST /v1/trajectories HTTP/1.1",
        "Host: test",
        f"Authorization: {AUTH['Authorization']}",
    ]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return "\n".join(lines)


def port_of(intake: Intake) -> int:
    return int(intake.url.rsplit(":", 1)[1])


def together(calls: list[Any]) -> list[Any]:
    """Run the callables on their own threads, released at once; their results in order."""
    results: list[Any] = [None] * len(calls)
    gate = threading.Barrier(len(calls))

    def one(i: int) -> None:
        gate.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:  # the assertion shows what each client got
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def post(port: int, body: bytes, kind: str = "application/json", timeout: float = 300) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/v1/trajectories", body, {"Content-Type": kind})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


class HttpDaemon(DaemonProcess):
    """The real daemon with HTTP intake on a free loopback port and no cycles."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(
            tmp_path / "var",
            tmp_path / "inbox",
            http="127.0.0.1:0",
            evolve_after=10**9,
            evolve_every_minutes=600,
        )
        self.port = 0

    def start(self) -> HttpDaemon:
        super().start()
        found = wait_for(
            lambda: re.search(r"http intake on http://127\.0\.0\.1:(\d+)/", self.output()),
            timeout=120,
            what="the daemon's HTTP intake",
            log=self.output,
        )
        self.port = int(found.group(1))  # type: ignore[union-attr]
        return self

    def memory(self, field: str) -> int:
        """VmRSS or VmHWM (peak) of the daemon process, in bytes."""
        assert self.proc is not None
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1)) * 1024  # type: ignore[union-attr]


@pytest.fixture
def http_daemon(tmp_path):
    daemon = HttpDaemon(tmp_path).start()
    yield daemon
    if daemon.proc and daemon.proc.poll() is None:
        daemon.stop()


# -- the real daemon -----------------------------------------------------------------------


def test_a_burst_of_100_posts_is_answered_and_stored_exactly_once(http_daemon):
    # The stdlib backlog of 5 reset most of such a burst (24 of 100 got through).
    bodies = [json.dumps(run_record(n)).encode() for n in range(100)]
    calls: list[Any] = [lambda b=b: post(http_daemon.port, b) for b in bodies]

    def status() -> int:
        conn = http.client.HTTPConnection("127.0.0.1", http_daemon.port, timeout=300)
        conn.request("GET", "/v1/status")
        return conn.getresponse().status

    results = together(calls + [status] * 5)
    assert results[:100] == [202] * 100, [r for r in results[:100] if r != 202][:5]
    assert results[100:] == [200] * 5  # reads are answered during the burst
    ids = http_daemon.stored_ids()
    assert sorted(ids) == sorted(f"run-{n}" for n in range(100))


def test_sigterm_ends_the_daemon_with_idle_and_trickling_connections_open(http_daemon):
    # Silent connections held the old server for its 30 s read timeout, and a client sending
    # a byte a second held it forever; a stop must close them.
    silent = [socket.create_connection(("127.0.0.1", http_daemon.port)) for _ in range(10)]
    trickling = [socket.create_connection(("127.0.0.1", http_daemon.port)) for _ in range(10)]
    stop_trickle = threading.Event()

    def trickle() -> None:
        for byte in b"POST /v1/trajectories HTTP/1.1\r\nHost: x\r\n" * 100:
            if stop_trickle.wait(1.0):
                return
            for sock in trickling:
                with contextlib.suppress(OSError):
                    sock.send(bytes([byte]))

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        time.sleep(2.0)  # every connection accepted and being read
        assert http_daemon.proc is not None
        http_daemon.proc.send_signal(signal.SIGTERM)
        code = http_daemon.proc.wait(timeout=60)
    finally:
        stop_trickle.set()
        for sock in silent + trickling:
            sock.close()
    assert code == 0 and "skillforge stopped" in http_daemon.output()


def test_eight_concurrent_30_mb_bodies_do_not_all_sit_in_memory(http_daemon):
    # Before: every body, its lines and its parsed runs at once (849 MB peak for 240 MB sent).
    def line(body: int, n: int) -> bytes:
        record = run_record(n)
        record["id"] = f"big{body}-{n}"
        record["steps"][0]["result"] = "x" * 14_000
        return json.dumps(record).encode() + b"\n"

    per_body = 30_000_000 // len(line(0, 0))
    bodies = [b"".join(line(b, n) for n in range(per_body)) for b in range(8)]
    assert all(28_000_000 < len(body) < 32_000_000 for body in bodies)
    time.sleep(1.0)
    before = http_daemon.memory("VmRSS")
    results = together(
        [lambda b=b: post(http_daemon.port, b, "application/x-ndjson") for b in bodies]
    )
    assert results == [202] * 8
    assert len(http_daemon.stored_ids()) == 8 * per_body
    grown = http_daemon.memory("VmHWM") - before
    assert grown < 400_000_000, f"the daemon grew by {grown / 1e6:.0f} MB for 8 bodies of 30 MB"


# -- the server in this process: malformed requests ----------------------------------------


@pytest.fixture
def intake(tmp_path):
    running = Intake(tmp_path, http_max_bytes=1_000_000)
    yield running
    running.server.stop()


@pytest.mark.parametrize(
    ("length", "status"),
    [
        ("{n}", 202),
        (" {n} ", 202),  # whitespace around the value is allowed
        ("²", 400),  # str.isdigit() says yes, int() says no: this was a 500
        ("١٢", 400),  # Arabic-Indic digits
        ("+{n}", 400),
        ("0x10", 400),
        ("{n}, {n}", 400),
        ("9" * 5000, 413),  # int() refuses over 4300 digits: this was a 500 too
        ("99999999999", 413),
        (None, 411),
    ],
)
def test_content_length_must_be_ascii_digits(intake, length, status):
    body = json.dumps(run_record(1)).encode()
    length = length.format(n=len(body)) if length else length
    got, answer = raw_request(port_of(intake), post_head(length), body)
    assert got == status, answer


def test_two_different_content_lengths_are_refused(intake):
    body = json.dumps(run_record(1)).encode()
    head = post_head(str(len(body))) + f"\nContent-Length: {len(body) + 5}"
    assert raw_request(port_of(intake), head, body)[0] == 400


def test_a_gzip_body_is_taken(intake):
    lines = "".join(json.dumps(run_record(n)) + "\n" for n in range(3)).encode()
    body = gzip.compress(lines)
    head = post_head(str(len(body)), Content_Type="application/x-ndjson", Content_Encoding="gzip")
    status, answer = raw_request(port_of(intake), head, body)
    assert (status, answer["accepted"]) == (202, 3)
    # two gzip members one after another are one body, as `gzip` itself reads them
    body = gzip.compress(lines[:10]) + gzip.compress(lines[10:])
    head = post_head(str(len(body)), Content_Type="application/x-ndjson", Content_Encoding="GZIP")
    assert raw_request(port_of(intake), head, body)[1]["duplicates"] == 3


def test_a_zip_bomb_is_413_and_broken_gzip_400(intake):
    bomb = gzip.compress(b" " * 200_000_000, compresslevel=9)  # 200 MB of blanks, ~200 KB
    assert len(bomb) < 1_000_000
    head = post_head(str(len(bomb)), Content_Type="application/json", Content_Encoding="gzip")
    status, answer = raw_request(port_of(intake), head, bomb)
    assert status == 413 and "inflates to over the limit" in answer["errors"][0]["reason"]
    broken = gzip.compress(json.dumps(run_record(1)).encode())[:-12]
    head = post_head(str(len(broken)), Content_Encoding="gzip")
    assert raw_request(port_of(intake), head, broken)[0] == 400
    head = post_head("11", Content_Encoding="gzip")
    assert raw_request(port_of(intake), head, b"not gzip!!!")[0] == 400


@pytest.mark.parametrize("encoding", ["br", "deflate", "zstd", "gzip, gzip"])
def test_other_encodings_are_415(tmp_path, encoding):
    intake = Intake(tmp_path)
    try:
        body = json.dumps(run_record(1)).encode()
        conn = http.client.HTTPConnection("127.0.0.1", port_of(intake), timeout=60)
        headers = {**AUTH, "Content-Encoding": encoding, "Content-Type": "application/json"}
        conn.request("POST", "/v1/trajectories", body, headers)
        response = conn.getresponse()
        assert response.status == 415 and response.headers["Accept-Encoding"] == "gzip"
        assert "Content-Encoding" in json.loads(response.read())["errors"][0]["reason"]
        with intake.store() as store:
            assert store.count("trajectories") == 0
    finally:
        intake.server.stop()


# -- the server in this process: slow and many clients -------------------------------------


def closed_by_server(sock: socket.socket) -> bool:
    readable = select.select([sock], [], [], 0)[0]
    try:
        return bool(readable) and sock.recv(1024) == b""
    except ConnectionResetError:
        return True


def test_a_slowloris_client_is_cut_off_at_the_header_deadline(tmp_path):
    # A byte every 0.2 s never let the old 30 s per-read timeout fire.
    intake = Intake(tmp_path, server={"header_seconds": 1.0})
    try:
        with socket.create_connection(("127.0.0.1", port_of(intake)), timeout=60) as sock:
            closed = False
            for byte in b"POST /v1/trajectories HTTP/1.1\r\nHost: x\r\n" * 10:
                try:
                    sock.send(bytes([byte]))
                except OSError:
                    closed = True
                time.sleep(0.2)
                if closed or closed_by_server(sock):
                    closed = True
                    break
            assert closed, "the server kept reading a request that never ends"
    finally:
        intake.server.stop()


def test_connections_over_the_cap_get_503(tmp_path):
    intake = Intake(tmp_path, server={"max_connections": 3})
    idle = [socket.create_connection(("127.0.0.1", port_of(intake))) for _ in range(3)]
    try:
        wait_for(lambda: len(intake.server.server.handlers) == 3, timeout=30, what="3 connections")
        body = json.dumps(run_record(1)).encode()
        status, answer = raw_request(port_of(intake), post_head(str(len(body))), body)
        assert status == 503 and "too many connections" in answer["errors"][0]["reason"]
    finally:
        for sock in idle:
            sock.close()
    wait_for(lambda: not intake.server.server.handlers, timeout=30, what="the idle ones to go")
    assert intake.post(run_record(1))[0] == 202
    start = time.monotonic()
    intake.server.stop()
    assert time.monotonic() - start < 30
