"""HTTP intake of one node on SQLite beside two nodes sharing one PostgreSQL store (issue 15).

    .venv/bin/python bench/fleet_intake.py [--runs 6000] [--batch 50] [--clients 4]

Each node is the real daemon (`skillforge serve --http`) in its own process, with cycles off;
PostgreSQL is a real server started by pgserver. The same synthetic runs (bench/synth.py,
shaped like the shared corpora) are posted as JSONL batches by `--clients` threads per node;
a run counts once its 202 came back, which is once it is on disk. Prints runs per second for
each setup and their ratio (both measured in this run, on this machine).
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import synth

REPO = Path(__file__).resolve().parents[1]


class Node:
    """One `skillforge serve --http 127.0.0.1:0` with its own home, on the store `db`."""

    def __init__(self, folder: Path, db: str, remote: Path) -> None:
        folder.mkdir(parents=True)
        config = folder / "skillforge.toml"
        config.write_text(
            "[skillforge]\n"
            f'home = "{folder / "var"}"\ninbox = "{folder / "inbox"}"\n'
            f'seed = "{REPO / "skills"}"\nremote = "{remote}"\ndb = "{db}"\n'
            'http = "127.0.0.1:0"\nlead_cycles = false\nevolve_every_minutes = 600\n'
        )
        self.log = folder / "daemon.log"
        command = [sys.executable, "-m", "skillforge.cli", "--config", str(config), "serve"]
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

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


def post_all(nodes: list[Node], bodies: list[bytes], clients: int) -> float:
    """Seconds to post every body, spread over `clients` threads per node; each must be 202."""
    work = list(enumerate(bodies))
    lock = threading.Lock()
    failures: list[str] = []

    def client(node: Node) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=600)
        while True:
            with lock:
                if not work:
                    break
                _, body = work.pop()
            conn.request("POST", "/v1/trajectories", body, {"Content-Type": "application/x-ndjson"})
            answer = conn.getresponse()
            answer.read()
            if answer.status != 202:
                failures.append(f"{answer.status} from node {node.port}")
        conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in nodes for _ in range(clients)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"{len(failures)} batches refused, e.g. {failures[0]}")
    return time.monotonic() - start


def start_postgres(folder: Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        return pgserver.get_server(str(folder), cleanup_mode="stop")


def run(runs: int = 6000, batch: int = 50, clients: int = 4, say: Any = print) -> dict[str, Any]:
    """Both setups on the same runs; the figures as a dict."""
    lines = [line for line, _ in synth.lines(runs)]
    bodies = ["\n".join(lines[i : i + batch]).encode() for i in range(0, len(lines), batch)]
    megabytes = sum(len(b) for b in bodies) / 1e6
    out: dict[str, Any] = {"runs": runs, "batch": batch, "clients_per_node": clients}
    with tempfile.TemporaryDirectory(prefix="skillforge-fleet-bench-") as tmp:
        root = Path(tmp)
        node = Node(root / "sqlite", str(root / "sqlite" / "skillforge.db"), root / "a.git")
        try:
            seconds = post_all([node], bodies, clients)
        finally:
            node.stop()
        out["sqlite_1_node"] = {"seconds": round(seconds, 2), "runs_per_s": round(runs / seconds)}
        say(f"fleet intake: 1 node, SQLite:      {runs / seconds:7.0f} runs/s "
            f"({runs} runs, {megabytes:.0f} MB, {seconds:.1f} s)")  # fmt: skip
        server = start_postgres(root / "pg")
        try:
            url = server.get_uri()
            nodes = [Node(root / f"pg-{n}", url, root / "b.git") for n in range(2)]
            try:
                seconds = post_all(nodes, bodies, clients)
            finally:
                for each in nodes:
                    each.stop()
            import psycopg

            with psycopg.connect(url) as conn:
                stored = conn.execute("SELECT count(*) FROM trajectories").fetchone()[0]
        finally:
            server.cleanup()
        if stored != runs:
            raise RuntimeError(f"PostgreSQL holds {stored} runs, not {runs}")
        out["postgres_2_nodes"] = {
            "seconds": round(seconds, 2),
            "runs_per_s": round(runs / seconds),
        }
        say(f"fleet intake: 2 nodes, PostgreSQL: {runs / seconds:7.0f} runs/s "
            f"({runs} runs, {seconds:.1f} s)")  # fmt: skip
    pg, lite = out["postgres_2_nodes"]["runs_per_s"], out["sqlite_1_node"]["runs_per_s"]
    out["ratio"] = round(pg / lite, 2)
    say(f"fleet intake: 2 PostgreSQL nodes / 1 SQLite node = {out['ratio']:.2f}")
    return out


def bench(quick: bool = False, say: Any = print) -> dict[str, Any]:
    """For `make bench` (bench/run.py)."""
    return run(runs=2000 if quick else 6000, say=say)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    print(json.dumps(run(args.runs, args.batch, args.clients), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
