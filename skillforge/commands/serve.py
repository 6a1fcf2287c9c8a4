"""`skillforge serve`: the daemon in the foreground."""

from __future__ import annotations

from ..config import Config
from ..daemon import serve as run_daemon


def serve(config: Config) -> int:
    return run_daemon(config)
