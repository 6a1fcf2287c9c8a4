"""`skillforge serve`: watch the inbox, take trajectories in, run cycles on a schedule.

The main thread does intake (one SQLite connection); an apscheduler job runs each cycle in
a child process (cycle_process.py), so intake never waits on it. `max_instances=1,
coalesce=True` keep cycles from overlapping, and the library lock keeps them apart from the
review CLI. With `http` set, `http_intake` takes runs (and OpenTelemetry spans) over HTTP on
its own threads and asks for cycles the same way. On SIGTERM or Ctrl-C intake stops between
batches and a running cycle is allowed to finish.

While it serves, the daemon holds an flock on `<db>.daemon` (one daemon per store) and
touches it every few seconds: `skillforge status` tells a live daemon from the pid a
SIGKILLed one left in the store, and when that one was last seen.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from . import gc_tuning
from .config import Config
from .cycle_process import run_in_child
from .errors import SkillforgeError, StoreError
from .http_intake import IntakeServer
from .intake import IngestResult, ingest_file, quarantine_file_sink
from .library import LibraryRepo
from .output import write_line
from .store import Store, utcnow
from .stores import LeaderLock, leader_lock, open_store
from .watcher import watch_inbox

JOB_ID = "evolve"
MAX_BACK_TO_BACK = 3  # cycles one job run may chain when trajectories keep arriving
HEARTBEAT_SECONDS = 5.0  # how often the live daemon touches its lock file


def lock_path(config: Config) -> Path:
    """The file a serving daemon holds locked: beside the store whose pid it records."""
    if config.db_is_postgres:  # one daemon per host on a shared store: a lock of this host's
        return config.home / "skillforge.daemon"
    return config.db_path.with_name(config.db_path.name + ".daemon")


@contextlib.contextmanager
def hold_daemon_lock(path: Path, *, wait: float = 5.0) -> Iterator[None]:
    """Hold `path` locked for the block (at most for this process's life: the kernel drops
    an flock with its process, SIGKILL included), touching it every HEARTBEAT_SECONDS.
    Raises SkillforgeError when another daemon holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        deadline = time.monotonic() + wait  # `status` may hold it shared for an instant
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    other = handle.read().strip() or "?"
                    raise SkillforgeError(
                        f"another skillforge daemon (pid {other}) serves this store; stop it "
                        "first, or give this one its own home"
                    ) from None
                time.sleep(0.05)
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        stop = threading.Event()
        beat = threading.Thread(target=_heartbeat, args=(path, stop), daemon=True)
        beat.start()
        try:
            yield
        finally:
            stop.set()
            beat.join()


def _heartbeat(path: Path, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_SECONDS):
        with contextlib.suppress(OSError):
            os.utime(path)


def daemon_alive(path: Path) -> bool:
    """True while a daemon holds the lock file `path` (see hold_daemon_lock)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases the shared lock, if it was taken
    return False


class Daemon:
    """Intake on the calling thread, cycles on the scheduler's."""

    def __init__(self, config: Config, *, say: Callable[[str], None] = write_line) -> None:
        self.config = config
        self.say = say
        self.stop = threading.Event()
        self._cycle_running = threading.Event()
        self._cycle_requested = threading.Event()
        # Runs up to here are covered by a requested or running cycle (it reads the high
        # water when it starts, which is at least this), so they do not ask for another.
        self._requested_high_water = 0
        self._requested_outcomes = 0  # likewise, of outcomes that arrived after their runs
        self._trigger_lock = threading.Lock()  # inbox and HTTP intake both ask for cycles
        self._http: IntakeServer | None = None
        # Several daemons may share a PostgreSQL store: only the leader runs cycles.
        self._leader: LeaderLock = leader_lock(config.store_location)
        self._was_leading: bool | None = None  # None: not asked yet (the first answer is said)
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
        )

    def run(self) -> int:
        """Serve until `stop` is set (by a signal or the caller). Returns an exit code."""
        config = self.config
        config.home.mkdir(parents=True, exist_ok=True)
        config.inbox.mkdir(parents=True, exist_ok=True)  # before 'serving': writers may start
        with hold_daemon_lock(lock_path(config)):
            return self._serve()

    def _serve(self) -> int:
        config = self.config
        LibraryRepo.ensure(config.library_path, config.remote_url, seed=config.seed)
        store = open_store(config.store_location)
        try:
            if not config.db_is_postgres:  # shared: a 'running' cycle may be another host's
                store.interrupt_running_cycles(now=utcnow())
            store.set_state(pid=str(os.getpid()), started_at=utcnow().isoformat(timespec="seconds"))
            self.say(
                f"skillforge serving: inbox {config.inbox}, store {config.store_display}, "
                f"library {config.library_path} (remote {config.remote_url})"
            )
            self.scheduler.add_job(
                self._cycle_job,
                IntervalTrigger(minutes=config.evolve_every_minutes, timezone=UTC),
                id=JOB_ID,
            )
            self.scheduler.start()
            self._start_http()
            self._intake_loop(store)
        finally:
            self.say("skillforge stopping: waiting for a running cycle to finish")
            if self._http:
                self._http.stop()
            if self.scheduler.running:
                self.scheduler.shutdown(wait=True)
            self._leader.release()
            store.set_state(pid=None, next_cycle=None)
            store.close()
        self.say("skillforge stopped")
        return 0

    def _intake_loop(self, store: Store) -> None:
        sink = quarantine_file_sink(self.config.quarantine_file)
        first_pass = True
        for batch in watch_inbox(
            self.config.inbox,
            stop=self.stop,
            sweep_seconds=self.config.sweep_seconds,
            polling=self.config.polling,
            on_skip=lambda path, why: self.say(f"intake: not reading {path}: {why}"),
        ):
            result = IngestResult()
            for path in batch:
                if self.stop.is_set():
                    return
                try:
                    result.add(
                        ingest_file(
                            store,
                            path,
                            max_line_bytes=self.config.max_line_bytes,
                            on_quarantine=sink,
                        )
                    )
                except SkillforgeError as exc:
                    self.say(f"intake: {path}: {exc}")
            if result.stored or result.quarantined or result.duplicates or result.outcomes:
                self.say(
                    f"ingested {result.stored} trajectories from {result.files} files "
                    f"({result.duplicates} duplicates, {result.quarantined} quarantined"
                    + (f", {result.outcomes} outcomes of stored runs" if result.outcomes else "")
                    + ")"
                )
            if self._http:  # traces whose root span never came, once they go quiet
                self._http.flush_traces()
            self._after_intake(store, first=first_pass)
            first_pass = False
            self._publish_next_cycle(store)

    def _start_http(self) -> None:
        config = self.config
        if not config.http:
            return
        sink = quarantine_file_sink(config.quarantine_file)
        self._http = IntakeServer(
            config, on_stored=self._after_intake, on_quarantine=sink, say=self.say
        ).start()
        self.say(
            f"http intake on {self._http.url}/v1/trajectories, OpenTelemetry (OTLP/HTTP) on "
            f"{self._http.url}/v1/traces"
            + (" (bearer token required)" if config.http_token else "")
        )

    def _leading(self) -> bool:
        """Whether this daemon leads the cycles of its store (takes the lead when it is free:
        at start, or when the leader died). Call with the trigger lock held."""
        if not self.config.lead_cycles:
            if self._was_leading is None:
                self.say("cycles: this daemon only takes runs in (lead_cycles = false)")
                self._was_leading = False
            return False
        try:
            leading = self._leader.still_leading() or self._leader.try_lead()
        except StoreError as exc:
            if self._was_leading:
                self.say(f"cycles: cannot reach the leader lock ({exc}); retrying")
            leading = False
        if leading != self._was_leading:
            self.say(
                "cycles: this daemon leads the store's cycles"
                if leading
                else "cycles: another daemon leads the store's cycles; this one only takes runs in"
            )
            self._was_leading = leading
            self._requested_high_water = 0  # a new leader looks at everything not yet evolved
            self._requested_outcomes = 0
        return leading

    def _after_intake(self, store: Store, *, first: bool = False) -> None:
        """Ask for a cycle when enough new runs, or outcomes of runs stored without one,
        arrived from the inbox or over HTTP (or any host, on a shared store), if this daemon
        leads the cycles."""
        with self._trigger_lock:
            became = not self._was_leading
            if not self._leading():
                return
            first = first or became
            high_water, outcomes = store.high_water(), store.outcomes_high_water()
            mark = max(store.evolved_high_water(), self._requested_high_water)
            pending = store.stored_after(mark)
            late = outcomes - max(store.evolved_outcomes(), self._requested_outcomes)
            if (pending or late > 0) and (first or pending + late >= self.config.evolve_after):
                self._requested_high_water = high_water
                self._requested_outcomes = outcomes
                self.request_cycle()

    def request_cycle(self) -> None:
        """Run a cycle as soon as possible (once; a running cycle picks the request up)."""
        if self._cycle_requested.is_set():
            return
        self._cycle_requested.set()
        if not self._cycle_running.is_set():
            self.scheduler.modify_job(JOB_ID, next_run_time=datetime.now(UTC))

    def _cycle_job(self) -> None:
        self._cycle_running.set()
        try:
            for _ in range(MAX_BACK_TO_BACK):
                self._cycle_requested.clear()
                self._one_cycle()
                if not self._cycle_requested.is_set() or self.stop.is_set():
                    break
        finally:
            self._cycle_running.clear()

    def _one_cycle(self) -> None:
        """One cycle in a child process (cycle_process.py): intake keeps its CPU and memory."""
        with self._trigger_lock:
            if not self._leading():
                return
        run_in_child(self.config, self.say)

    def _publish_next_cycle(self, store: Store) -> None:
        job = self.scheduler.get_job(JOB_ID)
        when = (
            job.next_run_time.isoformat(timespec="seconds") if job and job.next_run_time else None
        )
        store.set_state(next_cycle=when)


def serve(config: Config, *, say: Callable[[str], None] = write_line) -> int:
    """Run the daemon in the foreground, stopping cleanly on SIGTERM or Ctrl-C."""
    gc_tuning.tune()
    daemon = Daemon(config, say=say)

    def on_signal(signum: int, frame: object) -> None:
        daemon.stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return daemon.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
