"""Serve bare git repositories over smart HTTP on loopback, through the real `git http-backend`.

A tiny CGI bridge (stdlib http.server): clone, fetch and push work as against any git host.
Pushes are enabled (REMOTE_USER is set); chunked request bodies are de-chunked first, since
git sends one once a push exceeds http.postBuffer.
"""

from __future__ import annotations

import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, from Content-Length or de-chunked."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                return body
            body += handler.rfile.read(size)
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


def serve_git(handler: BaseHTTPRequestHandler, root: Path, body: bytes) -> None:
    """Answer one smart-HTTP request for a repository under `root` via `git http-backend`."""
    path, _, query = handler.path.partition("?")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_PROJECT_ROOT": str(root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "REMOTE_USER": "tester",
        "REMOTE_ADDR": "127.0.0.1",
        "REQUEST_METHOD": handler.command,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_TYPE": handler.headers.get("Content-Type", ""),
        "CONTENT_LENGTH": str(len(body)),
    }
    for header in ("Content-Encoding", "Git-Protocol"):
        if handler.headers.get(header):
            env["HTTP_" + header.upper().replace("-", "_")] = handler.headers[header]
    out = subprocess.run(
        ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
    ).stdout
    head, _, payload = out.partition(b"\r\n\r\n")
    if not _:
        head, _, payload = out.partition(b"\n\n")
    status, headers = 200, []
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        elif name:
            headers.append((name, value.strip()))
    handler.send_response(status)
    for name, value in headers:
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


class GitServer:
    """`http://127.0.0.1:PORT/<path under root>` for every bare repository under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        root_dir = self.root

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                serve_git(self, root_dir, b"")

            def do_POST(self) -> None:
                serve_git(self, root_dir, read_body(self))

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> GitServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
