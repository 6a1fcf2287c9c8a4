"""HTTP intake under abuse: the real daemon (`skillforge serve --http`) in a subprocess.

    .venv/bin/python bench/http_abuse.py [--posts 100] [--bodies 8] [--body-mb 30] [--idle 20]

Prints three figures (issue 14):
- latency of `--posts` concurrent POSTs of one run each (p50, p90, max), and of GET
  /v1/status sent while they are in flight; every run must be stored exactly once;
- the daemon's peak RSS (VmHWM) while `--bodies` concurrent JSONL bodies of `--body-mb` MB
  each arrive, beside its RSS before them;
- the time from SIGTERM to exit while `--idle` connections are open and silent.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


class Daemon:
    """`skillforge serve --http 127.0.0.1:0` on a temporary home, no cycles."""

    def __init__(self, folder: Path) -> None:
        self.home = folder / "var"
        self.config = folder / "skillforge.toml"
        self.config.write_text(
            "[skillforge]\n"
            f'home = "{self.home}"\ninbox = "{folder / "inbox"}"\nseed = "{REPO / "skills"}"\n'
            'http = "127.0.0.1:0"\nevolve_after = 1000000000\nevolve_every_minutes = 600\n'
        )
        self.log = folder / "daemon.log"
        command = [sys.executable, "-m", "skillforge.cli", "--config", str(self.config), "serve"]
        with self.log.open("ab") as handle:
            self.proc = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO)
        self.port = self._port()

    def _port(self, timeout: float = 120) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"http intake on http://127\.0\.0\.1:(\d+)/", self.log.read_text())
            if found:
                return int(found.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"the daemon did not start:\n{self.log.read_text()}")

    def memory(self, field: str) -> int:
        """VmRSS or VmHWM of the daemon, in bytes."""
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1)) * 1024  # type: ignore[union-attr]

    def stored(self) -> int:
        with sqlite3.connect(f"file:{self.home / 'skillforge.db'}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT count(*) FROM trajectories").fetchone()[0]

    def terminate(self, timeout: float) -> float | None:
        """Seconds from SIGTERM to exit, or None if it was still running after `timeout`."""
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
        return time.monotonic() - start


def run(n: int, prefix: str, pad: int = 0) -> dict[str, Any]:
    steps = [
        {"type": "tool_call", "name": "lookup", "arguments": {"n": n}, "result": "x" * pad},
        {"type": "tool_call", "name": "cancel", "arguments": {"n": n}, "result": "ok"},
    ]
    return {
        "id": f"{prefix}-{n}",
        "task": f"task {n}",
        "steps": steps,
        "outcome": {"success": True},
    }


def post(port: int, body: bytes, kind: str, timeout: float = 600) -> tuple[int, float]:
    """(status, seconds) of one POST on a fresh connection; status 0 for a network error."""
    start = time.monotonic()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("POST", "/v1/trajectories", body, {"Content-Type": kind})
        status = conn.getresponse().status
        conn.close()
    except OSError:
        status = 0
    return status, time.monotonic() - start


def get_status(port: int, timeout: float = 600) -> tuple[int, float]:
    start = time.monotonic()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("GET", "/v1/status")
        status = conn.getresponse().status
        conn.close()
    except OSError:
        status = 0
    return status, time.monotonic() - start


def together(calls: list[Any]) -> list[Any]:
    """Run the callables on their own threads, released at once; their results in order."""
    results: list[Any] = [None] * len(calls)
    gate = threading.Barrier(len(calls))

    def one(i: int) -> None:
        gate.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def concurrent_posts(folder: Path, posts: int) -> dict[str, Any]:
    daemon = Daemon(folder)
    try:
        bodies = [json.dumps(run(i, "post")).encode() for i in range(posts)]
        calls: list[Any] = [lambda b=b: post(daemon.port, b, "application/json") for b in bodies]
        calls += [lambda: (time.sleep(0.05), get_status(daemon.port))[1] for _ in range(5)]
        results = together(calls)
        posted, gets = results[:posts], results[posts:]
        latencies = [seconds for _, seconds in posted]
        return {
            "posts": posts,
            "accepted": sum(status == 202 for status, _ in posted),
            "stored": daemon.stored(),
            "p50_s": round(statistics.median(latencies), 3),
            "p90_s": round(percentile(latencies, 0.9), 3),
            "max_s": round(max(latencies), 3),
            "status_get_max_s": round(max(seconds for _, seconds in gets), 3),
            "status_get_ok": sum(status == 200 for status, _ in gets),
        }
    finally:
        daemon.terminate(120)


def big_bodies(folder: Path, bodies: int, body_mb: float) -> dict[str, Any]:
    daemon = Daemon(folder)
    try:
        pad = 14_000
        per_body = max(1, int(body_mb * 1e6 / (pad + 300)))
        payloads = [
            b"".join(json.dumps(run(i, f"big{b}", pad)).encode() + b"\n" for i in range(per_body))
            for b in range(bodies)
        ]
        time.sleep(1.0)
        before = daemon.memory("VmRSS")
        start = time.monotonic()
        results = together(
            [lambda p=p: post(daemon.port, p, "application/x-ndjson") for p in payloads]
        )
        return {
            "bodies": bodies,
            "body_mb": round(len(payloads[0]) / 1e6, 1),
            "statuses": sorted({status for status, _ in results}),
            "stored": daemon.stored(),
            "expected": per_body * bodies,
            "rss_before_mb": round(before / 1e6),
            "peak_rss_mb": round(daemon.memory("VmHWM") / 1e6),
            "seconds": round(time.monotonic() - start, 1),
        }
    finally:
        daemon.terminate(120)


def idle_sigterm(folder: Path, idle: int, timeout: float = 120) -> dict[str, Any]:
    daemon = Daemon(folder)
    sockets = [socket.create_connection(("127.0.0.1", daemon.port)) for _ in range(idle)]
    try:
        time.sleep(1.0)  # every one accepted and waiting for a request line
        seconds = daemon.terminate(timeout)
    finally:
        for sock in sockets:
            sock.close()
    return {
        "idle_connections": idle,
        "sigterm_to_exit_s": round(seconds, 2) if seconds is not None else f">{timeout:g}",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=100)
    parser.add_argument("--bodies", type=int, default=8)
    parser.add_argument("--body-mb", type=float, default=30)
    parser.add_argument("--idle", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="http-abuse-") as tmp:
        root = Path(tmp)
        figures = {}
        for name, measure in (
            ("concurrent_posts", lambda f: concurrent_posts(f, args.posts)),
            ("big_bodies", lambda f: big_bodies(f, args.bodies, args.body_mb)),
            ("idle_sigterm", lambda f: idle_sigterm(f, args.idle)),
        ):
            folder = root / name
            folder.mkdir()
            figures[name] = measure(folder)
            print(f"{name}: {json.dumps(figures[name])}", flush=True)
    return 0


if __name__ == "__main__":
    os.environ.pop("SKILLFORGE_HTTP_TOKEN", None)
    sys.exit(main())
