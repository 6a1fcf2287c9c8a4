"""One leader among hosts sharing a PostgreSQL store: a session advisory lock.

`stores.leader_lock(location)` returns this for a postgresql:// store (an flock beside the
file for SQLite); the daemon that holds it is the one that runs cycles.
"""

from __future__ import annotations

import contextlib

import psycopg
from psycopg import sql

from .errors import StoreError
from .pgschema import Conn, connect, lock_key, scrubbed
from .stores import safe_url


class PgLeaderLock:
    """Leadership held as a session advisory lock on a connection of its own.

    PostgreSQL drops the lock when that session ends: the process exits or is killed (the
    socket closes), or its host vanishes (the server's TCP keepalives notice within about
    `keepalive_seconds` * 2.5). So another process's `try_lead()` succeeds once the leader is
    gone, and a leader that lost its connection learns it from `still_leading()`.
    """

    def __init__(
        self, url: str, name: str = "cycle", *, keepalive_seconds: int = 10,
        connect_timeout: int = 10,
    ) -> None:  # fmt: skip
        self.url, self.name = url, name
        self._keepalive = max(1, keepalive_seconds)
        self._connect_timeout = connect_timeout
        self._conn: Conn | None = None
        self._key: int | None = None
        self._held = False

    def _connect(self) -> Conn:
        conn = connect(self.url, what="the leader lock", connect_timeout=self._connect_timeout)
        idle, interval = self._keepalive, max(1, self._keepalive // 2)
        for setting, value in [
            ("tcp_keepalives_idle", idle), ("tcp_keepalives_interval", interval),
            ("tcp_keepalives_count", 3), ("idle_session_timeout", 0),
            ("idle_in_transaction_session_timeout", 0),
        ]:  # fmt: skip
            conn.execute(sql.SQL("SET {} = {}").format(sql.Identifier(setting), value))
        scope = conn.execute("SELECT current_schema() AS s").fetchone()
        self._key = lock_key(scope["s"] if scope else "public", f"leader:{self.name}")
        return conn

    def try_lead(self) -> bool:
        """Take leadership if nobody holds it; True while this lock holds it. Never waits.
        Raises StoreError only when the database cannot be reached at all."""
        if self._held and self.still_leading():
            return True
        self._drop()
        self._conn = self._connect()
        try:
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", [self._key])
            self._held = bool(row.fetchone()["ok"])
        except psycopg.Error as exc:
            self._drop()
            raise StoreError(
                f"could not ask for leadership at {safe_url(self.url)}: {scrubbed(exc, self.url)}"
            ) from exc
        if not self._held:
            self._drop()  # a follower keeps no connection open between tries
        return self._held

    def still_leading(self) -> bool:
        """Whether the lock is still held: its session is alive and owns it. Check before
        work that only the leader may do; False means stop and let the new leader do it."""
        if not self._held or self._conn is None:
            return False
        try:
            classid, objid = (self._key or 0) >> 32 & 0xFFFFFFFF, (self._key or 0) & 0xFFFFFFFF
            row = self._conn.execute(
                "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND pid = pg_backend_pid() AND classid::bigint = %s AND objid::bigint = %s"
                " AND objsubid = 1",
                [classid, objid],
            ).fetchone()
        except psycopg.Error:
            row = None
        if not row or not row["n"]:
            self._held = False  # nothing of ours to unlock
            self._drop()
            return False
        return True

    def release(self) -> None:
        """Give leadership up at once: a successor's next `try_lead()` succeeds."""
        self._drop()

    close = release

    def _drop(self) -> None:
        """Unlock before closing: the server ends a closed session a moment later, and a
        successor asking right after `release()` must not find the lock still held."""
        if self._conn is not None:
            if self._held and not self._conn.broken:
                with contextlib.suppress(psycopg.Error):
                    self._conn.execute("SELECT pg_advisory_unlock(%s)", [self._key])
            self._conn.close()
            self._conn = None
        self._held = False

    def __enter__(self) -> PgLeaderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
