"""A daemon's cycle in a process of its own, so intake never waits on it.

An evolution cycle is CPU-bound Python: on the daemon's own threads it would hold the GIL
for seconds at a time while the inbox and HTTP intake wait, and a cycle that runs out of
memory would take intake down with it. The daemon instead starts
`python -m skillforge.cycle_process`, hands it the configuration on stdin (not argv or the
environment: it may hold a token), and relays each line it prints. The child runs in a
session of its own, so a Ctrl-C meant for the daemon lets a running cycle finish, and it
dies with the daemon (Linux: PR_SET_PDEATHSIG; elsewhere a watch on its parent), so a
killed daemon leaves no cycle behind holding the library lock.

Several daemons may share one PostgreSQL store (one per host, each with its own inbox and
HTTP intake): only the daemon holding the store's leader lock (a session advisory lock,
dropped when its holder dies) starts cycles, so there is one evolver at a time, and when the
leader dies another daemon takes the lock at its next sweep and goes on.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable

from .config import Config
from .cycle import run_cycle
from .errors import SkillforgeError
from .library import LibraryRepo
from .store import utcnow
from .stores import open_store

__all__ = ["run_in_child", "main"]

FAILED, CRASHED = 1, 2  # the child's exit codes besides 0


def run_in_child(config: Config, say: Callable[[str], None]) -> int:
    """Run one cycle in a child process, relaying its lines to `say`; its exit code."""
    child = subprocess.Popen(
        [sys.executable, "-m", "skillforge.cycle_process", str(os.getpid())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,
    )
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(config.model_dump_json())
    child.stdin.close()
    for line in child.stdout:
        say(line.rstrip("\n"))
    code = child.wait()
    if code < 0:
        say(
            f"the cycle process was killed by {signal.Signals(-code).name} "
            "(nothing half-written; it is redone at the next cycle)"
        )
    return code


def main(argv: list[str] | None = None) -> int:
    """The child: read the configuration from stdin, run one cycle, say how it went."""
    argv = sys.argv[1:] if argv is None else argv
    _die_with_parent(int(argv[0]) if argv else os.getppid())
    config = Config.model_validate_json(sys.stdin.read())

    def say(text: str) -> None:
        print(text, flush=True)

    try:
        with open_store(config.store_location) as store:
            repo = LibraryRepo(config.library_path, config.remote_url)
            result = run_cycle(store, repo, config, say=say)
    except SkillforgeError as exc:
        say(f"cycle failed: {exc} (it is retried at the next cycle)")
        return FAILED
    except Exception:  # a bug: logged for a report; the daemon goes on
        path = config.log_dir / f"cycle-crash-{utcnow():%Y%m%d-%H%M%S}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(traceback.format_exc(), encoding="utf-8")
        say(f"cycle crashed unexpectedly; traceback in {path}")
        return CRASHED
    if result.proposal and result.changes:
        say(
            f"proposal {result.proposal}: {result.changes} skill changes on branch "
            f"evolve/{result.proposal}, pushed to {config.remote_url}\n"
            f"  description: {result.description}\n"
            f"  review:      skillforge review show {result.proposal}\n"
            f"  accept:      skillforge review accept {result.proposal}"
        )
    else:
        say(f"cycle {result.id}: {result.message}")
    return 0


def _die_with_parent(parent: int) -> None:
    """End this process when `parent` dies, however it dies (SIGKILL included)."""
    if sys.platform.startswith("linux"):
        with_prctl = ctypes.CDLL(None, use_errno=True)
        with_prctl.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the line above took effect
        os._exit(CRASHED)

    def watch() -> None:  # where prctl is missing; harmless where it is not
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(CRASHED)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


if __name__ == "__main__":
    sys.exit(main())
