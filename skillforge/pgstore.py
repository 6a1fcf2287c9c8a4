"""The PostgreSQL store: the same public interface as the SQLite `Store`, for several hosts.

Chosen by `db = "postgresql://..."` (see `stores.open_store`). Several intake nodes write one
database; one evolver leads by an advisory lock (`PgLeaderLock`). How SQLite's guarantees
carry over:

* Single writer (BEGIN IMMEDIATE) -> `transaction()` takes a transaction-level advisory lock
  first. Writers of trajectories are serialized, so sequence numbers are handed out in commit
  order: a cycle that read `high_water()` never later finds a smaller `seq` committed (with
  interleaved writers a run could commit below a high water already evolved, and be skipped).
* INSERT OR IGNORE -> ON CONFLICT DO NOTHING; AUTOINCREMENT -> identity columns (an ignored
  duplicate uses a number up, as in SQLite).
* PRAGMA synchronous=FULL -> SET LOCAL synchronous_commit = on.
* BINARY collation and NULLs first -> every TEXT column is COLLATE "C", NULLS FIRST in ORDER BY.
* NUL characters, which PostgreSQL text cannot hold, become U+FFFD in columns; a trajectory's
  JSON keeps them escaped, so `trajectories()` returns what was stored.

One `PostgresStore` per thread, like `Store`. Migrations have SQLite's names, are recorded in
`_skillforge_migrations` and applied in order under an advisory lock, so nodes starting
together do not race. psycopg errors become `StoreError` with the URL minus its password.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg import sql

from evolver.model import Outcome, Trajectory
from evolver.redact import redact

from .errors import StoreError
from .pgleader import PgLeaderLock
from .pgschema import Conn, connect, lock_key, migrate, scrubbed
from .store import (
    BatchResult,
    FileProgress,
    OutcomeResult,
    Quarantined,
    check_known,
    same_run,
    utcnow,
    with_outcome,
)
from .stores import safe_url

PAGE = 1000  # trajectories fetched per query while iterating


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def _value(value: Any) -> Any:
    """What sqlite-utils would store for a Python value: JSON for containers, 0/1 for bools."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _sqlite_where(where: str) -> str:
    """A `count()` condition written for SQLite (`?` marks, `1` for all) made PostgreSQL's."""
    where = where.strip()
    if where == "1":
        return "TRUE"
    return where.replace("%", "%%").replace("?", "%s")


_PROGRESS = 'path, "offset", line, inode, dev, fingerprint, bad_lines'
_TRAJECTORY_COLUMNS = (
    "id", "agent", "task", "success", "reward", "tool_calls", "errors", "skills",
    "started_at", "ended_at", "source", "ingested_at", "data",
)  # fmt: skip
_TRAJECTORY_TYPES = (
    "text", "text", "text", "int", "float8", "int", "int", "text",
    "text", "text", "text", "text", "text",
)  # fmt: skip


def _trajectory_row(
    t: Trajectory, source: str, at: str | None, data: str | None = None
) -> tuple[Any, ...]:
    success = None if t.succeeded is None else int(t.succeeded)
    return (
        t.id,
        t.agent,
        t.task,
        success,
        t.outcome.reward if t.outcome else None,
        len(t.tool_calls),
        sum(1 for c in t.tool_calls if c.error),
        json.dumps(sorted({s.name for s in t.skills})),
        _iso(t.started_at),
        _iso(t.ended_at),
        source,
        at,
        t.model_dump_json() if data is None else data,
    )


def _progress(row: dict[str, Any]) -> FileProgress:
    return FileProgress(
        offset=row["offset"],
        line=row["line"],
        inode=row["inode"],
        dev=row["dev"],
        fingerprint=row["fingerprint"],
        bad_lines=row["bad_lines"],
    )


def _llm_field(call: Mapping[str, Any], name: str) -> Any:
    value = call.get(name)
    if name in ("calls", "input_tokens", "output_tokens", "cached"):
        return int(value or 0)
    if name == "cost_usd":
        return float(value or 0.0)
    return value if value is not None or name in ("skill", "version") else ""


class PostgresStore:
    """The daemon's durable state in a PostgreSQL database that several hosts share."""

    def __init__(self, url: str, *, connect_timeout: int = 10) -> None:
        """Connect and migrate. Raises StoreError when the database cannot be reached."""
        self.url = url
        self._connect_timeout = connect_timeout
        self._conn = connect(url, connect_timeout=connect_timeout)
        with self._errors("prepare"):
            self.scope = self._conn.execute("SELECT current_schema() AS s").fetchone()["s"]
            migrate(self._conn, self.scope)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresStore({safe_url(self.url)!r})"

    # -- plumbing -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            raise StoreError(
                f"could not {what} in the store at {safe_url(self.url)}: {scrubbed(exc, self.url)}"
            ) from exc

    def _db(self) -> Conn:
        """The connection, opened again if the old one broke (a server restart, a network
        blip) and no transaction was running on it."""
        if self._conn.closed or self._conn.broken:
            self._conn = connect(self.url, connect_timeout=self._connect_timeout)
        return self._conn

    def _rows(self, query: str | sql.Composed, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._errors("read"):
            return self._db().execute(query, list(params)).fetchall()

    def _exec(self, query: str | sql.Composed, params: Sequence[Any] = ()) -> int:
        with self._errors("write"):
            return self._db().execute(query, list(params)).rowcount

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Conn]:
        """A write transaction that takes the store's write lock when it begins, as SQLite's
        BEGIN IMMEDIATE does: writers on every host run one after another, so trajectories
        get their sequence numbers in commit order. Nested use is a savepoint. Yields the
        psycopg connection (SQL with %s marks)."""
        conn = self._db()
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            with conn.transaction():
                yield conn
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(self.scope, "write")])
            yield conn

    def leader_lock(self, name: str = "cycle") -> PgLeaderLock:
        """Leadership (e.g. of evolution cycles) among every process using this database."""
        return PgLeaderLock(self.url, name, connect_timeout=self._connect_timeout)

    # -- intake -------------------------------------------------------------------------

    def file_progress(self, path: str) -> FileProgress:
        rows = self._rows(f"SELECT {_PROGRESS} FROM files WHERE path = %s", [path])
        return _progress(rows[0]) if rows else FileProgress()

    def progress_by_identity(self, dev: int, inode: int) -> list[tuple[str, FileProgress]]:
        """Files read before whose identity is this (device, inode): where a renamed file
        was read under its old name."""
        rows = self._rows(
            f"SELECT {_PROGRESS} FROM files WHERE inode = %s AND (dev IS NULL OR dev = %s)",
            [inode, dev],
        )
        return [(r["path"], _progress(r)) for r in rows]

    def move_progress(self, old: str, new: str) -> None:
        """A file was renamed from `old` to `new`: its progress goes with it."""
        with self._errors(f"follow {old} renamed to {new}"), self.transaction() as db:
            db.execute("DELETE FROM files WHERE path = %s", [new])
            db.execute("UPDATE files SET path = %s WHERE path = %s", [new, old])

    def quarantine_summary(self, file: str) -> Quarantined | None:
        """The newest row of `file` that counts bad lines not kept one by one, if any."""
        rows = self._rows(
            'SELECT file, line, "offset", reason, excerpt, lines, last_line FROM quarantine'
            " WHERE file = %s AND last_line IS NOT NULL ORDER BY id DESC LIMIT 1",
            [file],
        )
        return Quarantined(**rows[0]) if rows else None

    def quarantined_lines(self) -> int:
        """Bad lines in the quarantine, counting those a summary row stands for."""
        return self._rows("SELECT coalesce(sum(lines), 0)::bigint AS n FROM quarantine")[0]["n"]

    # -- OpenTelemetry spans waiting for the rest of their trace (otlp.py) ------------------

    def buffer_spans(self, rows: Sequence[tuple[str, str, int, str, str]]) -> None:
        """Keep spans (trace id, span id, is root, received at, span JSON) until their trace is
        complete; on disk when this returns (the sender drops its copy on our answer)."""
        with self._errors(f"keep {len(rows)} spans"), self.transaction() as db:
            db.execute("SET LOCAL synchronous_commit = on")
            with db.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO otlp_spans (trace_id, span_id, root, received_at, data)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [_nul_free(row) for row in rows],
                )

    def traces_ready(self, touched: Sequence[str], quiet_before: str) -> list[str]:
        """Buffered traces to assemble: those of `touched` whose root span is in, and any
        whose newest span came before `quiet_before` (ISO time)."""
        quiet = self._rows(
            "SELECT trace_id FROM otlp_spans GROUP BY trace_id HAVING max(received_at) <= %s",
            [quiet_before],
        )
        rooted = self._rows(
            "SELECT DISTINCT trace_id FROM otlp_spans WHERE root = 1 AND trace_id = ANY(%s)",
            [list(touched)],
        )
        return sorted({r["trace_id"] for r in quiet} | {r["trace_id"] for r in rooted})

    def trace_spans(self, trace_id: str) -> list[str]:
        """The buffered spans of a trace, as the JSON they were kept as."""
        rows = self._rows(
            'SELECT data FROM otlp_spans WHERE trace_id = %s ORDER BY span_id COLLATE "C"',
            [trace_id],
        )
        return [r["data"] for r in rows]

    def drop_traces(self, trace_ids: Sequence[str]) -> None:
        """Forget the spans of traces that were stored as runs."""
        with self._errors("drop assembled spans"), self.transaction() as db:
            db.execute("DELETE FROM otlp_spans WHERE trace_id = ANY(%s)", [list(trace_ids)])

    def record_batch(
        self,
        path: str,
        trajectories: Sequence[tuple[Trajectory, int]],
        quarantined: Sequence[Quarantined],
        progress: FileProgress,
        *,
        now: datetime | None = None,
        data: Sequence[str] | None = None,
    ) -> BatchResult:
        """Store parsed lines, quarantined lines and the new file offset in one transaction.
        `data`, one per trajectory, is the JSON to keep for each (`importers.Parsed.data`,
        made once when the line was read); without it each is dumped here."""
        at = _iso(now or utcnow())
        kept = [None] * len(trajectories) if data is None else data
        rows = [
            _trajectory_row(t, f"{path}:{line}", at, json_)
            for (t, line), json_ in zip(trajectories, kept, strict=True)
        ]
        with self._errors(f"record intake of {path}"), self.transaction() as db:
            stored = self._insert(db, rows, [t for t, _ in trajectories])
            outcomes = self._late_outcomes(db, rows, [t for t, _ in trajectories])
            duplicates = len(trajectories) - stored - outcomes
            quarantined_count = sum(self._quarantine(db, q, at) for q in quarantined)
            if duplicates:
                self._bump(db, "duplicates", duplicates)
            db.execute(
                'INSERT INTO files (path, "offset", line, inode, dev, fingerprint, bad_lines,'
                " updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (path) DO UPDATE SET"
                ' "offset"=excluded."offset", line=excluded.line, inode=excluded.inode,'
                " dev=excluded.dev, fingerprint=excluded.fingerprint,"
                " bad_lines=excluded.bad_lines, updated_at=excluded.updated_at",
                [path, progress.offset, progress.line, progress.inode, progress.dev,
                 progress.fingerprint, progress.bad_lines, at],
            )  # fmt: skip
        return BatchResult(stored, duplicates, quarantined_count, outcomes)

    def add_trajectories(self, trajectories: Sequence[Trajectory], *, source: str) -> int:
        """Store trajectories that arrived other than from a file (tests, HTTP); returns new."""
        at = _iso(utcnow())
        rows = [_trajectory_row(t, source, at) for t in trajectories]
        with self._errors(f"store trajectories from {source}"), self.transaction() as db:
            stored = self._insert(db, rows, trajectories)
            self._late_outcomes(db, rows, trajectories)
            return stored

    def record_received(
        self,
        trajectories: Sequence[Trajectory],
        quarantined: Sequence[Quarantined],
        *,
        source: str,
    ) -> BatchResult:
        """Store records sent over the network, and the bad ones, in one transaction that is
        on disk when this returns (the sender drops its copy on our answer)."""
        at = _iso(utcnow())
        rows = [_trajectory_row(t, source, at) for t in trajectories]
        with self._errors(f"store what {source} sent"), self.transaction() as db:
            db.execute("SET LOCAL synchronous_commit = on")  # whatever the server's default
            stored = self._insert(db, rows, trajectories)
            outcomes = self._late_outcomes(db, rows, trajectories)
            bad = sum(self._quarantine(db, q, at) for q in quarantined)
            duplicates = len(trajectories) - stored - outcomes
            if duplicates:
                self._bump(db, "duplicates", duplicates)
        return BatchResult(stored, duplicates, bad, outcomes)

    def _insert(self, db: Conn, rows: Sequence[tuple[Any, ...]], runs: Sequence[Trajectory]) -> int:
        """Insert trajectories in one statement, in order, skipping ids already stored (the
        first of a batch wins, as row by row); index their skills. Returns how many were new."""
        if not rows:
            return 0
        columns = ", ".join(_TRAJECTORY_COLUMNS)
        arrays = ", ".join(f"%b::{kind}[]" for kind in _TRAJECTORY_TYPES)
        new = db.execute(
            f"INSERT INTO trajectories ({columns}) SELECT {columns} FROM unnest({arrays})"
            f" WITH ORDINALITY AS u({columns}, ord) ORDER BY ord"
            " ON CONFLICT (id) DO NOTHING RETURNING seq, id",
            [list(column) for column in zip(*rows, strict=True)],
        ).fetchall()
        first: dict[str, Trajectory] = {}
        for t in runs:
            first.setdefault(t.id.replace("\x00", "\ufffd"), t)
        skill_rows: list[tuple[int, str, str | None, int | None]] = []
        for row in new:
            t = first[row["id"]]
            success = None if t.succeeded is None else int(t.succeeded)
            for skill in {s.name: s for s in t.skills}.values():
                skill_rows.append((row["seq"], skill.name, skill.version, success))
        if skill_rows:
            db.execute(
                "INSERT INTO skill_runs (seq, skill, version, success)"
                " SELECT * FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::int[])"
                " ON CONFLICT DO NOTHING",
                [list(column) for column in zip(*skill_rows, strict=True)],
            )
        return len(new)

    def _late_outcomes(
        self, db: Conn, rows: Sequence[tuple[Any, ...]], runs: Sequence[Trajectory]
    ) -> int:
        """After `_insert`: the runs not stored because their id was, with an unknown outcome,
        that are the same run with a known one, take that outcome (as `Store._take`). Returns
        how many did. Each id is settled once: a second copy finds the outcome known."""
        known = [(row, t) for row, t in zip(rows, runs, strict=True) if t.succeeded is not None]
        if not known:
            return 0
        unknown = {
            r["id"]: r["data"]
            for r in db.execute(
                "SELECT id, data FROM trajectories WHERE id = ANY(%s) AND success IS NULL",
                [[row[0] for row, _ in known]],
            ).fetchall()
        }
        done = 0
        for row, t in known:
            data = unknown.get(row[0].replace("\x00", "\ufffd"))
            if t.outcome is None or data is None or not same_run(data, t):
                continue
            source, at = row[10], row[11]
            done += self._set_outcome(db, row[0], t.outcome, source, at) == "applied"
        return done

    # -- outcomes that arrive after their run -------------------------------------------

    def set_outcomes(
        self, pairs: Sequence[tuple[str, Outcome]], *, source: str = "label"
    ) -> OutcomeResult:
        """Set the outcome of stored runs whose outcome is unknown (see `Store.set_outcomes`)."""
        check_known(pairs)
        at = _iso(utcnow())
        found: dict[str, list[str]] = {"applied": [], "known": [], "missing": []}
        with self._errors("set outcomes"), self.transaction() as db:
            for run_id, outcome in pairs:
                found[self._set_outcome(db, run_id, outcome, source, at)].append(run_id)
        return OutcomeResult(*(tuple(found[k]) for k in ("applied", "known", "missing")))

    def _set_outcome(
        self, db: Conn, run_id: str, outcome: Outcome, source: str, at: str | None
    ) -> str:
        """Within a transaction: 'applied', 'known' (left as stored) or 'missing'."""
        row = db.execute(
            "SELECT seq, success, data FROM trajectories WHERE id = %s", [run_id]
        ).fetchone()
        if row is None:
            return "missing"
        if row["success"] is not None:
            return "known"
        run, dumped = with_outcome(row["data"], outcome)
        value = int(bool(run.succeeded))
        db.execute(
            "UPDATE trajectories SET success = %s, reward = %s, data = %s WHERE seq = %s",
            [value, outcome.reward, dumped, row["seq"]],
        )
        db.execute("UPDATE skill_runs SET success = %s WHERE seq = %s", [value, row["seq"]])
        db.execute(
            "INSERT INTO outcome_updates (seq, trajectory, success, source, at)"
            " VALUES (%s,%s,%s,%s,%s)",
            [row["seq"], run_id, value, source, at],
        )
        return "applied"

    def outcome_updates_after(self, mark: int) -> list[tuple[int, int]]:
        """Outcome updates logged after id `mark`, oldest first: (update id, run seq)."""
        rows = self._rows("SELECT id, seq FROM outcome_updates WHERE id > %s ORDER BY id", [mark])
        return [(r["id"], r["seq"]) for r in rows]

    def outcomes_high_water(self) -> int:
        """The id of the newest outcome update (0 when none)."""
        return self._rows("SELECT coalesce(max(id), 0) AS n FROM outcome_updates")[0]["n"]

    def evolved_outcomes(self) -> int:
        """Outcome updates up to this id have been through a finished cycle."""
        row = self.last_cycle(status=("done", "nothing-new"))
        return (row.get("outcomes") or 0) if row else 0

    def _quarantine(self, db: Conn, q: Quarantined, at: str | None) -> int:
        """Keep a bad line (once per file and offset), its reason and excerpt redacted: both
        are untrusted text, and a parser's message may quote the input. A summary row is
        updated in place as it counts more lines. Returns the rows added."""
        values = [q.file, q.line, q.offset, redact(q.reason), redact(q.excerpt), q.lines]
        values += [q.last_line, at]
        insert = (
            'INSERT INTO quarantine (file, line, "offset", reason, excerpt, lines, last_line, at)'
            ' VALUES (%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (file, "offset") DO '
        )
        if q.last_line is None:
            return db.execute(insert + "NOTHING", values).rowcount
        db.execute(
            insert + "UPDATE SET reason=excluded.reason, excerpt=excluded.excerpt,"
            " lines=excluded.lines, last_line=excluded.last_line, at=excluded.at",
            values,
        )
        return 0

    @staticmethod
    def _bump(db: Conn, name: str, by: int) -> None:
        db.execute(
            "INSERT INTO counters (name, value) VALUES (%s, %s)"
            " ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value",
            [name, by],
        )

    def counter(self, name: str) -> int:
        rows = self._rows("SELECT value FROM counters WHERE name = %s", [name])
        return rows[0]["value"] if rows else 0

    def set_state(self, **values: str | None) -> None:
        """What the daemon wants other processes (status) to see: pid, next cycle, ..."""
        with self._errors("save daemon state"), self.transaction() as db:
            for key, value in values.items():
                db.execute(
                    "INSERT INTO daemon_state (key, value) VALUES (%s, %s)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [key, value],
                )

    def state(self) -> dict[str, str | None]:
        return {r["key"]: r["value"] for r in self._rows("SELECT key, value FROM daemon_state")}

    # -- reading ------------------------------------------------------------------------

    def trajectories(
        self, *, after_seq: int = 0, upto_seq: int | None = None
    ) -> Iterator[Trajectory]:
        """Stored trajectories in arrival order, optionally within a range of sequence numbers.
        Read a page at a time; without `upto_seq`, up to the high water when iteration began."""
        upto = self.high_water() if upto_seq is None else upto_seq
        last = after_seq
        while True:
            rows = self._rows(
                "SELECT seq, data FROM trajectories WHERE seq > %s AND seq <= %s"
                " ORDER BY seq LIMIT %s",
                [last, upto, PAGE],
            )
            for row in rows:
                yield Trajectory.model_validate_json(row["data"])
            if len(rows) < PAGE:
                return
            last = rows[-1]["seq"]

    def trajectory_ids(self) -> list[str]:
        return [r["id"] for r in self._rows("SELECT id FROM trajectories ORDER BY seq")]

    def high_water(self) -> int:
        """The sequence number of the newest stored trajectory (0 when empty)."""
        return self._rows("SELECT coalesce(max(seq), 0) AS s FROM trajectories")[0]["s"]

    def count(self, table: str, where: str = "1", params: Sequence[Any] = ()) -> int:
        """Rows of `table` matching `where`, a condition written for SQLite (`?` marks)."""
        query = sql.SQL("SELECT count(*) AS n FROM {} WHERE ").format(sql.Identifier(table))
        return self._rows(query + sql.SQL(_sqlite_where(where)), params)[0]["n"]

    def quarantine(self, limit: int = 50) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM quarantine ORDER BY id DESC LIMIT %s", [limit])

    def skill_usage(self) -> dict[str, int]:
        """How many stored runs had each skill loaded."""
        rows = self._rows("SELECT skill, count(*) AS n FROM skill_runs GROUP BY skill")
        return {r["skill"]: r["n"] for r in rows}

    def skill_usage_detail(self) -> dict[str, tuple[int, int, datetime | None]]:
        """Per skill: runs that loaded it, their successes, and when it was last loaded."""
        rows = self._rows(
            "SELECT s.skill, count(*) AS runs, sum((s.success = 1)::int) AS ok,"
            " max(coalesce(t.ended_at, t.started_at, t.ingested_at)) AS last"
            " FROM skill_runs s JOIN trajectories t ON t.seq = s.seq GROUP BY s.skill"
        )
        return {
            r["skill"]: (
                r["runs"],
                r["ok"] or 0,
                datetime.fromisoformat(r["last"]) if r["last"] else None,
            )
            for r in rows
        }

    def skill_versions(self, skill: str) -> list[dict[str, Any]]:
        """Per loaded version of a skill: runs, successes, failures, first and last run seen."""
        return self._rows(
            "SELECT s.version, count(*) AS runs, sum((s.success = 1)::int) AS successes,"
            " sum((s.success = 0)::int) AS failures, min(t.ingested_at) AS first_seen,"
            " max(t.ingested_at) AS last_seen FROM skill_runs s"
            " JOIN trajectories t ON t.seq = s.seq WHERE s.skill = %s"
            " GROUP BY s.version ORDER BY min(s.seq)",
            [skill],
        )

    def ledger(self, skill: str) -> list[dict[str, Any]]:
        """Every proposed change of a skill, oldest first, with its decision and figures."""
        return self._rows(
            "SELECT p.id AS proposal, p.created_at, p.status, p.decided_at,"
            " p.reason AS decision_reason, c.action, c.summary, c.reason, c.runs,"
            " c.successes, c.fingerprint, c.version FROM proposal_changes c"
            " JOIN proposals p ON p.id = c.proposal WHERE c.skill = %s"
            " ORDER BY p.created_at, p.id",
            [skill],
        )

    # -- cycles -------------------------------------------------------------------------

    def start_cycle(
        self, cycle_id: str, high_water: int, *, now: datetime, outcomes: int = 0
    ) -> None:
        """Record a cycle that takes runs up to `high_water` and outcome updates up to
        `outcomes`."""
        self._exec(
            "INSERT INTO cycles (id, started_at, status, high_water, outcomes)"
            " VALUES (%s,%s,%s,%s,%s)",
            [cycle_id, _iso(now), "running", high_water, outcomes],
        )

    def finish_cycle(self, cycle_id: str, status: str, *, now: datetime, **fields: Any) -> None:
        sets = sql.SQL("").join(sql.SQL(", {} = %s").format(sql.Identifier(key)) for key in fields)
        query = sql.SQL("UPDATE cycles SET status = %s, finished_at = %s{} WHERE id = %s")
        values = [_value(v) for v in fields.values()]
        self._exec(query.format(sets), [status, _iso(now), *values, cycle_id])

    def interrupt_running_cycles(self, *, now: datetime) -> list[str]:
        """Mark cycles left `running` by a crash as `interrupted`; their work is redone."""
        rows = self._rows(
            "UPDATE cycles SET status = 'interrupted', finished_at = %s"
            " WHERE status = 'running' RETURNING id, _pos",
            [_iso(now)],
        )
        return [r["id"] for r in sorted(rows, key=lambda r: r["_pos"])]

    def last_cycle(self, status: Sequence[str] | None = None) -> dict[str, Any] | None:
        query, params = "SELECT * FROM cycles", []
        if status:
            query, params = query + " WHERE status = ANY(%s)", [list(status)]
        rows = self._rows(query + " ORDER BY started_at DESC, _pos DESC LIMIT 1", params)
        if not rows:
            return None
        rows[0].pop("_pos")
        return rows[0]

    def stored_after(self, seq: int) -> int:
        """How many trajectories are stored after sequence number `seq`. Not a difference of
        sequence numbers: a duplicate that was ignored still used one up."""
        return self.count("trajectories", "seq > ?", [seq])

    def evolved_high_water(self) -> int:
        """Trajectories up to this sequence number have been through a finished cycle."""
        row = self.last_cycle(status=("done", "nothing-new"))
        return row["high_water"] if row else 0

    def memberships(self) -> dict[str, str]:
        """Run id -> cluster id as the last finished cycle left them."""
        return {r["trajectory"]: r["cluster"] for r in self._rows("SELECT * FROM cluster_members")}

    def save_memberships(self, memberships: Mapping[str, str]) -> None:
        pairs = sorted(memberships.items())
        with self._errors("save cluster memberships"), self.transaction() as db:
            db.execute("DELETE FROM cluster_members")
            if pairs:
                db.execute(
                    "INSERT INTO cluster_members (trajectory, cluster)"
                    " SELECT * FROM unnest(%b::text[], %b::text[])",
                    [[p[0] for p in pairs], [p[1] for p in pairs]],
                )

    # -- proposals ----------------------------------------------------------------------

    def add_proposal(self, proposal: dict[str, Any], changes: Sequence[dict[str, Any]]) -> None:
        """Record a proposal and its changes together."""
        with self._errors(f"record proposal {proposal.get('id')}"), self.transaction() as db:
            db.execute(*_insert_dict("proposals", proposal))
            for change in changes:
                db.execute(
                    *_insert_dict("proposal_changes", {"proposal": proposal["id"], **change})
                )

    def proposals(self, status: str | None = None) -> list[dict[str, Any]]:
        query, params = "SELECT * FROM proposals", []
        if status:
            query, params = query + " WHERE status = %s", [status]
        return self._rows(query + " ORDER BY created_at, id", params)

    def proposal(self, proposal_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM proposals WHERE id = %s", [proposal_id])
        return rows[0] if rows else None

    def proposal_changes(self, proposal_id: str) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT * FROM proposal_changes WHERE proposal = %s ORDER BY skill", [proposal_id]
        )

    def decide(
        self, proposal_id: str, status: str, *, reason: str | None = None, now: datetime
    ) -> None:
        self._exec(
            "UPDATE proposals SET status = %s, reason = %s, decided_at = %s WHERE id = %s",
            [status, reason, _iso(now), proposal_id],
        )

    def known_changes(self, statuses: Sequence[str]) -> set[tuple[str, str]]:
        """(skill, fingerprint) of changes in proposals with these statuses."""
        rows = self._rows(
            "SELECT c.skill, c.fingerprint FROM proposal_changes c JOIN proposals p"
            " ON p.id = c.proposal WHERE p.status = ANY(%s)",
            [list(statuses)],
        )
        return {(r["skill"], r["fingerprint"]) for r in rows}

    def open_proposals_touching(self, skills: Sequence[str]) -> list[str]:
        if not skills:
            return []
        rows = self._rows(
            "SELECT DISTINCT p.id FROM proposals p JOIN proposal_changes c ON p.id = c.proposal"
            " WHERE p.status = 'open' AND c.skill = ANY(%s) ORDER BY p.id",
            [list(skills)],
        )
        return [r["id"] for r in rows]

    # -- pull requests and review feedback -----------------------------------------------

    def set_pull_request(self, proposal_id: str, number: int, url: str) -> None:
        self._exec(
            "UPDATE proposals SET pr_number = %s, pr_url = %s WHERE id = %s",
            [number, url, proposal_id],
        )

    def add_review_comments(self, proposal_id: str, comments: Sequence[Mapping[str, Any]]) -> int:
        """Keep review comments read back from a host (each once, by its `key`); returns new."""
        with self._errors(f"keep review comments of {proposal_id}"), self.transaction() as db:
            return sum(
                db.execute(
                    "INSERT INTO review_comments (proposal, key, kind, author, body, path,"
                    " state, created_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)"
                    " ON CONFLICT DO NOTHING",
                    [proposal_id, c["key"], c["kind"], c["author"], c["body"], c.get("path"),
                     c.get("state"), c.get("created_at")],
                ).rowcount
                for c in comments
            )  # fmt: skip

    def review_comments(self, proposal_id: str) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT * FROM review_comments WHERE proposal = %s"
            " ORDER BY created_at NULLS FIRST, key",
            [proposal_id],
        )

    def feedback_for(self, skill: str) -> list[str]:
        """What reviewers said when they rejected changes to `skill`, oldest first: each
        rejection's reason, then its comments on the whole proposal or on this skill's files."""
        rows = self._rows(
            "SELECT p.id, p.decided_at, p.reason FROM proposals p JOIN proposal_changes c"
            " ON p.id = c.proposal WHERE c.skill = %s AND p.status = 'rejected'"
            " ORDER BY p.decided_at NULLS FIRST, p.id",
            [skill],
        )
        notes: list[str] = []
        for row in rows:
            reason = (row["reason"] or "no reason given").strip()
            notes.append(f"Earlier rejected on {(row['decided_at'] or '')[:10]}: {reason}")
            for c in self.review_comments(row["id"]):
                on_skill = c["path"] is None or c["path"].startswith(f"{skill}/")
                if on_skill and c["body"].strip() and c["body"].strip() not in reason:
                    where = f" on {c['path']}" if c["path"] else ""
                    notes.append(f"Review comment by {c['author']}{where}: {c['body'].strip()}")
        return notes

    # -- LLM cache and spend ------------------------------------------------------------

    def llm_cache_get(self, key: str) -> str | None:
        """The cached answer (JSON text) for a cache key, or None."""
        rows = self._rows("SELECT value FROM llm_cache WHERE key = %s", [key])
        return rows[0]["value"] if rows else None

    def llm_cache_put(
        self, key: str, value: str, *, provider: str, model: str, role: str, version: str
    ) -> None:
        self._exec(
            "INSERT INTO llm_cache (key, provider, model, role, version, value, created_at)"
            " VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (key) DO UPDATE SET"
            " value = excluded.value, created_at = excluded.created_at",
            [key, provider, model, role, version, value, _iso(utcnow())],
        )

    def record_llm_calls(self, cycle_id: str, calls: Sequence[Mapping[str, Any]]) -> None:
        """Save an `LLMClient.calls()` log under its cycle, for `status` and the ledger."""
        at = _iso(utcnow())
        fields = ("provider", "model", "role", "skill", "version", "calls", "input_tokens")
        fields += ("output_tokens", "cost_usd", "cached", "note")
        with self._errors(f"record LLM calls of cycle {cycle_id}"), self.transaction() as db:
            db.cursor().executemany(
                f"INSERT INTO llm_calls (cycle, at, {', '.join(fields)})"
                f" VALUES (%s, %s, {', '.join(['%s'] * len(fields))})",
                [[cycle_id, at, *(_llm_field(c, f) for f in fields)] for c in calls],
            )

    def llm_spend(self, cycle_ids: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """Per cycle: requests, tokens, estimated cost, asks answered from the cache, refusals."""
        query = (
            "SELECT cycle, sum(calls)::bigint AS calls, sum(input_tokens)::bigint AS input_tokens,"
            " sum(output_tokens)::bigint AS output_tokens, sum(cost_usd) AS cost_usd,"
            " sum(cached)::bigint AS cached, sum((note <> '')::int)::bigint AS noted,"
            " count(*) AS asks FROM llm_calls"
        )
        params: list[Any] = []
        if cycle_ids is not None:
            if not cycle_ids:
                return {}
            query, params = query + " WHERE cycle = ANY(%s)", [list(cycle_ids)]
        rows = self._rows(query + " GROUP BY cycle ORDER BY min(id)", params)
        return {r.pop("cycle"): r for r in rows}

    def llm_calls(self, cycle_id: str) -> list[dict[str, Any]]:
        """Every ask of a cycle, in order (see `record_llm_calls`)."""
        return self._rows("SELECT * FROM llm_calls WHERE cycle = %s ORDER BY id", [cycle_id])

    # -- cluster state (incremental cycles; clusterstate.py) -----------------------------
    # Every write here is a short transaction of its own, so intake never waits long.

    STATE_TABLES = (
        "cluster_runs", "cluster_stats", "cluster_features", "feature_df", "cluster_sets",
    )  # fmt: skip

    def run_batches(
        self, after_seq: int, upto_seq: int, size: int = 500
    ) -> Iterator[list[tuple[int, str, str | None]]]:
        """Stored runs with after_seq < seq <= upto_seq in arrival order, `size` at a time:
        (seq, JSON, cluster id of its membership or None). One batch in memory at a time."""
        query = (
            "SELECT t.seq, t.data, m.cluster FROM trajectories t LEFT JOIN cluster_members m"
            " ON m.trajectory = t.id WHERE t.seq > %s AND t.seq <= %s ORDER BY t.seq LIMIT %s"
        )
        while True:
            rows = self._rows(query, [after_seq, upto_seq, size])
            if not rows:
                return
            yield [(r["seq"], r["data"], r["cluster"]) for r in rows]
            after_seq = rows[-1]["seq"]

    def first_unassigned(self) -> int | None:
        """The sequence number of the oldest run without a cluster, or None."""
        return self._rows(
            "SELECT min(t.seq) AS s FROM trajectories t LEFT JOIN cluster_members m"
            " ON m.trajectory = t.id WHERE m.cluster IS NULL"
        )[0]["s"]

    def runs_by_seq(self, seqs: Sequence[int]) -> dict[int, str]:
        """The stored JSON of the runs with these sequence numbers."""
        return self._by_seq("data", seqs)

    def tasks_by_seq(self, seqs: Sequence[int]) -> dict[int, str]:
        """The task of the runs with these sequence numbers."""
        return self._by_seq("task", seqs)

    def counted_runs(self, seqs: Sequence[int]) -> dict[int, tuple[str, bool | None]]:
        """For the runs with these sequence numbers that the cluster state has counted: their
        cluster and the outcome it counted them with (a run not counted is left out)."""
        rows = self._rows(
            "SELECT seq, cluster, success FROM cluster_runs WHERE seq = ANY(%s)",
            [sorted(set(seqs))],
        )
        return {
            r["seq"]: (r["cluster"], None if r["success"] is None else bool(r["success"]))
            for r in rows
        }

    def _by_seq(self, column: str, seqs: Sequence[int]) -> dict[int, str]:
        query = sql.SQL("SELECT seq, {} AS v FROM trajectories WHERE seq = ANY(%s)")
        rows = self._rows(query.format(sql.Identifier(column)), [sorted(set(seqs))])
        return {r["seq"]: r["v"] for r in rows}

    def cluster_state_meta(self) -> dict[str, str]:
        return {r["key"]: r["value"] for r in self._rows("SELECT key, value FROM cluster_state")}

    def cluster_stats(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM cluster_stats ORDER BY cluster")

    def cluster_features(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for r in self._rows(
            "SELECT cluster, feature, n FROM cluster_features ORDER BY cluster, feature"
        ):
            out.setdefault(r["cluster"], {})[r["feature"]] = r["n"]
        return out

    def feature_df(self) -> dict[str, int]:
        rows = self._rows("SELECT feature, n FROM feature_df ORDER BY feature")
        return {r["feature"]: r["n"] for r in rows}

    def cluster_runs_after(
        self, clusters: Sequence[str], after_seq: int, limit: int
    ) -> list[dict[str, Any]]:
        """Runs of these clusters with seq > after_seq, oldest first, at most `limit`."""
        return self._rows(
            "SELECT * FROM cluster_runs WHERE cluster = ANY(%s) AND seq > %s ORDER BY seq LIMIT %s",
            [list(clusters), after_seq, limit],
        )

    def add_cluster_runs(self, rows: Sequence[Sequence[Any]]) -> None:
        """Record runs' clusters: rows of (seq, id, cluster, success, task hash); their
        memberships go to cluster_members too, which the rest of skillforge reads."""
        for i in range(0, len(rows), 2000):
            part = [tuple(r) for r in rows[i : i + 2000]]
            with self._errors("record cluster runs"), self.transaction() as db:
                db.cursor().executemany(
                    "INSERT INTO cluster_runs (seq, id, cluster, success, task)"
                    " VALUES (%s,%s,%s,%s,%s) ON CONFLICT (seq) DO UPDATE SET id = excluded.id,"
                    " cluster = excluded.cluster, success = excluded.success,"
                    " task = excluded.task",
                    part,
                )
                db.cursor().executemany(
                    "INSERT INTO cluster_members (trajectory, cluster) VALUES (%s, %s)"
                    " ON CONFLICT (trajectory) DO UPDATE SET cluster = excluded.cluster",
                    [(r[1], r[2]) for r in part],
                )

    def drop_cluster_runs_after(self, seq: int) -> None:
        """Forget cluster rows a cycle wrote past the state's high water before it died."""
        with self._errors("drop cluster runs"), self.transaction() as db:
            db.execute("DELETE FROM cluster_runs WHERE seq > %s", [seq])

    def move_clusters(self, sources: Sequence[str], target: str) -> None:
        """The runs of clusters `sources` now belong to `target` (clusters merged)."""
        with self._errors(f"merge clusters into {target}"), self.transaction() as db:
            for table in ("cluster_runs", "cluster_members"):
                db.execute(
                    sql.SQL("UPDATE {} SET cluster = %s WHERE cluster = ANY(%s)").format(
                        sql.Identifier(table)
                    ),
                    [target, list(sources)],
                )

    def save_cluster_state(
        self,
        stats: Sequence[Mapping[str, Any]],
        features: Mapping[str, Mapping[str, int]],
        df: Mapping[str, int],
        meta: Mapping[str, str],
        dropped: Sequence[str] = (),
        sets: Sequence[tuple[str, str, int]] = (),
        outcomes: Sequence[tuple[int, int]] = (),
    ) -> None:
        """In one transaction: the rows of changed clusters, their feature counts (replaced),
        changed document frequencies, clusters merged away, runs added per (feature set,
        cluster), counted runs' new outcomes ((seq, success) in `cluster_runs`), and the
        state's meta data."""
        with self._errors("save cluster state"), self.transaction() as db:
            cur = db.cursor()
            cur.executemany(
                "UPDATE cluster_runs SET success = %s WHERE seq = %s",
                [(success, seq) for seq, success in outcomes],
            )
            cur.executemany(
                "INSERT INTO cluster_sets (features, cluster, n) VALUES (%s,%s,%s)"
                " ON CONFLICT (features, cluster) DO UPDATE SET n = cluster_sets.n + excluded.n",
                sorted(sets),
            )
            for cid in dropped:
                db.execute("DELETE FROM cluster_stats WHERE cluster = %s", [cid])
                db.execute("DELETE FROM cluster_features WHERE cluster = %s", [cid])
            cur.executemany(
                "INSERT INTO cluster_stats (cluster, tally, prefix, prefix_seq, sample, anchors)"
                " VALUES (%(cluster)s, %(tally)s, %(prefix)s, %(prefix_seq)s, %(sample)s,"
                " %(anchors)s) ON CONFLICT (cluster) DO UPDATE SET tally = excluded.tally,"
                " prefix = excluded.prefix, prefix_seq = excluded.prefix_seq,"
                " sample = excluded.sample, anchors = excluded.anchors",
                [dict(s) for s in stats],
            )
            for cid, counts in features.items():
                db.execute("DELETE FROM cluster_features WHERE cluster = %s", [cid])
                cur.executemany(
                    "INSERT INTO cluster_features (cluster, feature, n) VALUES (%s,%s,%s)",
                    [(cid, f, n) for f, n in sorted(counts.items()) if n],
                )
            cur.executemany(
                "INSERT INTO feature_df (feature, n) VALUES (%s,%s)"
                " ON CONFLICT (feature) DO UPDATE SET n = excluded.n",
                sorted(df.items()),
            )
            cur.executemany(
                "INSERT INTO cluster_state (key, value) VALUES (%s,%s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                sorted(meta.items()),
            )

    def clear_cluster_state(self) -> None:
        """Forget all cluster state (not the memberships): `rebuild` starts from this."""
        with self._errors("clear cluster state"), self.transaction() as db:
            for table in (*self.STATE_TABLES, "cluster_state", "evolve_memo"):
                db.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))

    def memo_get(self, key: str) -> str | None:
        """A stage result an earlier cycle kept (evolver.memo), or None."""
        rows = self._rows("SELECT value FROM evolve_memo WHERE key = %s", [key])
        return rows[0]["value"] if rows else None

    def cluster_sets(self, keys: Sequence[str]) -> dict[str, dict[str, int]]:
        """For these feature sets (as `clusterstate.set_key` writes them): the clusters that
        hold runs with them, and how many."""
        out: dict[str, dict[str, int]] = {}
        rows = self._rows(
            "SELECT features, cluster, n FROM cluster_sets WHERE features = ANY(%s)", [list(keys)]
        )
        for row in rows:
            out.setdefault(row["features"], {})[row["cluster"]] = row["n"]
        return out

    def save_memo(self, added: Mapping[str, str], keep: Collection[str]) -> None:
        """Add stage results and drop those not in `keep` (no longer asked for)."""
        with self._errors("save the evolver memo"), self.transaction() as db:
            stale = [
                r["key"] for r in db.execute("SELECT key FROM evolve_memo") if r["key"] not in keep
            ]
            if stale:
                db.execute("DELETE FROM evolve_memo WHERE key = ANY(%s)", [stale])
            db.cursor().executemany(
                "INSERT INTO evolve_memo (key, value) VALUES (%s,%s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                sorted(added.items()),
            )


def _insert_dict(table: str, row: Mapping[str, Any]) -> tuple[sql.Composed, list[Any]]:
    """An INSERT of a dict's keys and values, as sqlite-utils' `insert` does."""
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, row)),
        sql.SQL(", ").join(sql.Placeholder() * len(row)),
    )
    return query, [_value(v) for v in row.values()]


def _nul_free(row: Sequence[Any]) -> tuple[Any, ...]:
    """PostgreSQL text cannot hold NUL: strings get U+FFFD instead (JSON keeps them escaped)."""
    return tuple(v.replace("\x00", "\ufffd") if isinstance(v, str) else v for v in row)
