"""The SQLite store: trajectories, intake progress, quarantine, cycles and proposals.

One `Store` per thread (SQLite connections are not shared across threads). Writes that
belong together (a batch of lines and the file offset after them) commit in one
transaction, so a crash at any point loses nothing and duplicates nothing.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from evolver.model import Outcome, Trajectory
from evolver.redact import redact

from .errors import StoreError

migrations = Migrations("skillforge")


@migrations()
def m001_initial(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE trajectories (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            agent TEXT, task TEXT NOT NULL, success INTEGER, reward REAL,
            tool_calls INTEGER NOT NULL, errors INTEGER NOT NULL,
            skills TEXT NOT NULL, started_at TEXT, ended_at TEXT,
            source TEXT, ingested_at TEXT NOT NULL, data TEXT NOT NULL
        );
        CREATE TABLE files (
            path TEXT PRIMARY KEY, offset INTEGER NOT NULL, line INTEGER NOT NULL,
            inode INTEGER, updated_at TEXT NOT NULL
        );
        CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            file TEXT NOT NULL, line INTEGER NOT NULL, offset INTEGER NOT NULL,
            reason TEXT NOT NULL, excerpt TEXT NOT NULL, at TEXT NOT NULL,
            UNIQUE (file, offset)
        );
        CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
        CREATE TABLE cycles (
            id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT,
            status TEXT NOT NULL, high_water INTEGER NOT NULL,
            trajectories INTEGER, changes INTEGER, proposal TEXT, error TEXT
        );
        CREATE TABLE proposals (
            id TEXT PRIMARY KEY, branch TEXT NOT NULL, status TEXT NOT NULL,
            created_at TEXT NOT NULL, decided_at TEXT, reason TEXT,
            base TEXT, head TEXT, description TEXT NOT NULL
        );
        CREATE TABLE proposal_changes (
            proposal TEXT NOT NULL REFERENCES proposals(id), skill TEXT NOT NULL,
            action TEXT NOT NULL, fingerprint TEXT NOT NULL, content_sha TEXT NOT NULL,
            summary TEXT NOT NULL, PRIMARY KEY (proposal, skill)
        );
        """
    )


@migrations()
def m002_daemon_state(db: Database) -> None:
    db.execute("CREATE TABLE daemon_state (key TEXT PRIMARY KEY, value TEXT)")


@migrations()
def m003_ledger(db: Database) -> None:
    """Per-skill memory: loaded skill versions per run, and each change's figures."""
    db.executescript(
        """
        CREATE TABLE skill_runs (
            seq INTEGER NOT NULL REFERENCES trajectories(seq), skill TEXT NOT NULL,
            version TEXT, success INTEGER, PRIMARY KEY (seq, skill)
        );
        CREATE INDEX skill_runs_by_skill ON skill_runs (skill, version);
        ALTER TABLE proposal_changes ADD COLUMN reason TEXT;
        ALTER TABLE proposal_changes ADD COLUMN runs INTEGER;
        ALTER TABLE proposal_changes ADD COLUMN successes INTEGER;
        ALTER TABLE proposal_changes ADD COLUMN version TEXT;
        """
    )
    for row in list(db.query("SELECT seq, data FROM trajectories WHERE skills != '[]'")):
        _index_skills(db, row["seq"], Trajectory.model_validate_json(row["data"]))


def _index_skills(db: Database, seq: int, t: Trajectory) -> None:
    success = None if t.succeeded is None else int(t.succeeded)
    for skill in {s.name: s for s in t.skills}.values():
        db.execute(
            "INSERT OR IGNORE INTO skill_runs (seq, skill, version, success) VALUES (?,?,?,?)",
            [seq, skill.name, skill.version, success],
        )


@migrations()
def m004_cluster_members(db: Database) -> None:
    """Which cluster each run belongs to, so clusters keep their identity across cycles."""
    db.execute("CREATE TABLE cluster_members (trajectory TEXT PRIMARY KEY, cluster TEXT NOT NULL)")


@migrations()
def m005_llm(db: Database) -> None:
    """LLM answers cached by prompt and model, and every ask's cost, per cycle."""
    db.executescript(
        """
        CREATE TABLE llm_cache (
            key TEXT PRIMARY KEY, provider TEXT NOT NULL, model TEXT NOT NULL,
            role TEXT NOT NULL, version TEXT NOT NULL, value TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE llm_calls (
            id INTEGER PRIMARY KEY AUTOINCREMENT, cycle TEXT NOT NULL, at TEXT NOT NULL,
            provider TEXT NOT NULL, model TEXT NOT NULL, role TEXT NOT NULL, skill TEXT,
            version TEXT, calls INTEGER NOT NULL, input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL, cost_usd REAL NOT NULL, cached INTEGER NOT NULL,
            note TEXT NOT NULL
        );
        CREATE INDEX llm_calls_by_cycle ON llm_calls (cycle);
        """
    )


@migrations()
def m006_host(db: Database) -> None:
    """Pull requests on a code host: each proposal's PR, and the review comments read back."""
    db.executescript(
        """
        ALTER TABLE proposals ADD COLUMN pr_number INTEGER;
        ALTER TABLE proposals ADD COLUMN pr_url TEXT;
        CREATE TABLE review_comments (
            proposal TEXT NOT NULL REFERENCES proposals(id), key TEXT NOT NULL,
            kind TEXT NOT NULL, author TEXT NOT NULL, body TEXT NOT NULL, path TEXT,
            state TEXT, created_at TEXT, PRIMARY KEY (proposal, key)
        );
        """
    )


@migrations()
def m007_file_identity(db: Database) -> None:
    """Follow a file by identity and content, not by path: its device, a fingerprint of the
    bytes before the offset (a rewrite is noticed), and its bad lines so far (the
    quarantine keeps a few per file one by one, then one row that counts the rest)."""
    db.executescript(
        """
        ALTER TABLE files ADD COLUMN dev INTEGER;
        ALTER TABLE files ADD COLUMN fingerprint TEXT;
        ALTER TABLE files ADD COLUMN bad_lines INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX files_by_inode ON files (inode);
        ALTER TABLE quarantine ADD COLUMN lines INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE quarantine ADD COLUMN last_line INTEGER;
        """
    )


@migrations()
def m008_otlp_spans(db: Database) -> None:
    """OpenTelemetry spans that wait for the rest of their trace (see otlp.py)."""
    db.executescript(
        """
        CREATE TABLE otlp_spans (
            trace_id TEXT NOT NULL, span_id TEXT NOT NULL, root INTEGER NOT NULL,
            received_at TEXT NOT NULL, data TEXT NOT NULL,
            PRIMARY KEY (trace_id, span_id)
        );
        CREATE INDEX otlp_spans_received ON otlp_spans (trace_id, received_at);
        """
    )


@migrations()
def m009_cluster_state(db: Database) -> None:
    """Per-cluster state for incremental cycles (see clusterstate.py): each evolved run's
    cluster and sampling facts, each cluster's figures and sample, feature counts, document
    frequencies, and the stage results a cycle can reuse. All of it can be rebuilt from the
    trajectories and their memberships (`skillforge rebuild`)."""
    db.executescript(
        """
        CREATE TABLE cluster_runs (
            seq INTEGER PRIMARY KEY, id TEXT NOT NULL, cluster TEXT NOT NULL,
            success INTEGER, task INTEGER NOT NULL
        );
        CREATE INDEX cluster_runs_by_cluster ON cluster_runs (cluster, seq);
        CREATE TABLE cluster_stats (
            cluster TEXT PRIMARY KEY, tally TEXT NOT NULL, prefix INTEGER NOT NULL,
            prefix_seq INTEGER NOT NULL, sample TEXT NOT NULL, anchors TEXT NOT NULL
        );
        CREATE TABLE cluster_features (
            cluster TEXT NOT NULL, feature TEXT NOT NULL, n INTEGER NOT NULL,
            PRIMARY KEY (cluster, feature)
        ) WITHOUT ROWID;
        CREATE TABLE feature_df (feature TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE cluster_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE evolve_memo (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """
    )


@migrations()
def m010_cluster_sets(db: Database) -> None:
    """Which clusters hold runs with each distinct feature set, and how many: a new run whose
    features earlier runs had joins their cluster (clusterstate.py)."""
    db.execute(
        "CREATE TABLE cluster_sets (features TEXT NOT NULL, cluster TEXT NOT NULL,"
        " n INTEGER NOT NULL, PRIMARY KEY (features, cluster)) WITHOUT ROWID"
    )


@migrations()
def m011_outcome_updates(db: Database) -> None:
    """Outcomes that arrived after their run (a harness report, a user's verdict), each with
    its own increasing id, so incremental cycles read the ones after their high water; and
    each cycle's high water of them."""
    db.executescript(
        """
        CREATE TABLE outcome_updates (
            id INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER NOT NULL,
            trajectory TEXT NOT NULL, success INTEGER NOT NULL, source TEXT NOT NULL,
            at TEXT NOT NULL
        );
        ALTER TABLE cycles ADD COLUMN outcomes INTEGER;
        """
    )


@dataclass(frozen=True)
class FileProgress:
    """How far intake has read a file: byte offset and number of lines consumed, which file
    it was (device and inode), a fingerprint of the bytes just before the offset, and how
    many of its lines were bad."""

    offset: int = 0
    line: int = 0
    inode: int | None = None
    dev: int | None = None
    fingerprint: str | None = None
    bad_lines: int = 0


@dataclass(frozen=True)
class Quarantined:
    """A line that did not become a trajectory, and why. A summary row (`last_line` set)
    stands for `lines` bad lines, `line` to `last_line`, that were counted, not kept."""

    file: str
    line: int
    offset: int
    reason: str
    excerpt: str
    lines: int = 1
    last_line: int | None = None


@dataclass(frozen=True)
class BatchResult:
    """What one write of runs did: new runs, duplicates (ignored), bad lines kept, and runs
    stored with an unknown outcome whose outcome this record brought (`outcomes`)."""

    stored: int
    duplicates: int
    quarantined: int
    outcomes: int = 0


@dataclass(frozen=True)
class OutcomeResult:
    """What `set_outcomes` did, by run id: outcomes set, runs whose outcome was known already
    (left as stored: the source's own signal wins), and ids not stored."""

    applied: tuple[str, ...] = ()
    known: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


# What happened to one record offered to the store (`Store._take`).
STORED, OUTCOME, DUPLICATE = "stored", "outcome", "duplicate"


def utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


class Store:
    """The daemon's durable state, in one SQLite file (or in memory for tests)."""

    def __init__(self, path: Path | str | None = None) -> None:
        try:
            if path is None:
                self.db = Database(memory=True)
            else:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(str(path), timeout=30, isolation_level=None)
                self.db = Database(conn)
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes
                # Checkpoint every ~64 MB of WAL, not every 4 MB: intake commits each batch,
                # and each checkpoint costs two fsyncs (a fifth of intake's time at 10k runs).
                self.db.execute("PRAGMA wal_autocheckpoint=16000")
            self.db.execute("PRAGMA busy_timeout=30000")
            migrations.apply(self.db)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store at {path}: {exc}") from exc

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Database]:
        """A write transaction that takes the write lock when it begins (BEGIN IMMEDIATE).

        A deferred transaction that reads first cannot wait for the lock when it comes to
        write after another connection committed (WAL: SQLITE_BUSY_SNAPSHOT), so it fails
        at once with "database is locked"; an immediate one waits up to the busy timeout.
        Nested use is a savepoint of the outer transaction.
        """
        if self.db.conn.in_transaction:
            with self.db.atomic():
                yield self.db
            return
        self.db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.rollback()
            raise
        try:
            self.db.conn.execute("COMMIT")
        except BaseException:
            self.db.rollback()
            raise

    # -- intake -------------------------------------------------------------------------

    def file_progress(self, path: str) -> FileProgress:
        rows = list(self.db.query(f"SELECT {_PROGRESS} FROM files WHERE path = ?", [path]))
        return FileProgress(**rows[0]) if rows else FileProgress()

    def progress_by_identity(self, dev: int, inode: int) -> list[tuple[str, FileProgress]]:
        """Files read before whose identity is this (device, inode): where a renamed file
        was read under its old name."""
        rows = self.db.query(
            f"SELECT path, {_PROGRESS} FROM files WHERE inode = ? AND (dev IS NULL OR dev = ?)",
            [inode, dev],
        )
        return [(r.pop("path"), FileProgress(**r)) for r in rows]

    def move_progress(self, old: str, new: str) -> None:
        """A file was renamed from `old` to `new`: its progress goes with it."""
        try:
            with self.transaction():
                self.db.execute("DELETE FROM files WHERE path = ?", [new])
                self.db.execute("UPDATE files SET path = ? WHERE path = ?", [new, old])
        except sqlite3.Error as exc:
            raise StoreError(f"could not follow {old} renamed to {new}: {exc}") from exc

    def quarantine_summary(self, file: str) -> Quarantined | None:
        """The newest row of `file` that counts bad lines not kept one by one, if any."""
        rows = list(
            self.db.query(
                "SELECT file, line, offset, reason, excerpt, lines, last_line FROM quarantine"
                " WHERE file = ? AND last_line IS NOT NULL ORDER BY id DESC LIMIT 1",
                [file],
            )
        )
        return Quarantined(**rows[0]) if rows else None

    def quarantined_lines(self) -> int:
        """Bad lines in the quarantine, counting those a summary row stands for."""
        return next(self.db.query("SELECT coalesce(sum(lines), 0) AS n FROM quarantine"))["n"]

    # -- OpenTelemetry spans waiting for the rest of their trace (otlp.py) ------------------

    def buffer_spans(self, rows: Sequence[tuple[str, str, int, str, str]]) -> None:
        """Keep spans (trace id, span id, is root, received at, span JSON) until their trace is
        complete; on disk when this returns (the sender drops its copy on our answer)."""
        try:
            self.db.execute("PRAGMA synchronous=FULL")  # this connection only
            with self.transaction() as db:
                db.conn.executemany(
                    "INSERT OR IGNORE INTO otlp_spans (trace_id, span_id, root, received_at,"
                    " data) VALUES (?,?,?,?,?)",
                    rows,
                )
        except sqlite3.Error as exc:
            raise StoreError(f"could not keep {len(rows)} spans: {exc}") from exc

    def traces_ready(self, touched: Sequence[str], quiet_before: str) -> list[str]:
        """Buffered traces to assemble: those of `touched` whose root span is in, and any
        whose newest span came before `quiet_before` (ISO time)."""
        ready = {
            row["trace_id"]
            for row in self.db.query(
                "SELECT trace_id FROM otlp_spans GROUP BY trace_id"
                " HAVING max(received_at) <= ?",
                [quiet_before],
            )
        }
        for start in range(0, len(touched), 500):
            chunk = list(touched[start : start + 500])
            marks = ",".join("?" * len(chunk))
            ready |= {
                row["trace_id"]
                for row in self.db.query(
                    "SELECT DISTINCT trace_id FROM otlp_spans"
                    f" WHERE root = 1 AND trace_id IN ({marks})",
                    chunk,
                )
            }
        return sorted(ready)

    def trace_spans(self, trace_id: str) -> list[str]:
        """The buffered spans of a trace, as the JSON they were kept as."""
        query = "SELECT data FROM otlp_spans WHERE trace_id = ? ORDER BY span_id"
        return [row["data"] for row in self.db.query(query, [trace_id])]

    def drop_traces(self, trace_ids: Sequence[str]) -> None:
        """Forget the spans of traces that were stored as runs."""
        with self.transaction() as db:
            db.conn.executemany(
                "DELETE FROM otlp_spans WHERE trace_id = ?", [(t,) for t in trace_ids]
            )

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
        try:
            with self.transaction():
                took = Counter(
                    self._take(t, f"{path}:{line}", at, json_)
                    for (t, line), json_ in zip(trajectories, kept, strict=True)
                )
                duplicates = took[DUPLICATE]
                quarantined_count = sum(self._quarantine(q, at) for q in quarantined)
                if duplicates:
                    self._bump("duplicates", duplicates)
                self.db.execute(
                    "INSERT INTO files (path, offset, line, inode, dev, fingerprint, bad_lines,"
                    " updated_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(path) DO UPDATE SET"
                    " offset=excluded.offset, line=excluded.line, inode=excluded.inode,"
                    " dev=excluded.dev, fingerprint=excluded.fingerprint,"
                    " bad_lines=excluded.bad_lines, updated_at=excluded.updated_at",
                    [path, progress.offset, progress.line, progress.inode, progress.dev,
                     progress.fingerprint, progress.bad_lines, at],
                )  # fmt: skip
        except sqlite3.Error as exc:
            raise StoreError(f"could not record intake of {path}: {exc}") from exc
        return BatchResult(took[STORED], duplicates, quarantined_count, took[OUTCOME])

    def add_trajectories(self, trajectories: Sequence[Trajectory], *, source: str) -> int:
        """Store trajectories that arrived other than from a file (tests, HTTP); returns new.
        A run stored with an unknown outcome takes the outcome a copy of it brings."""
        at = _iso(utcnow())
        with self.transaction():
            return sum(self._take(t, source, at) == STORED for t in trajectories)

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
        try:
            self.db.execute("PRAGMA synchronous=FULL")  # this connection only: fsync each commit
            with self.transaction():
                took = Counter(self._take(t, source, at) for t in trajectories)
                bad = sum(self._quarantine(q, at) for q in quarantined)
                if took[DUPLICATE]:
                    self._bump("duplicates", took[DUPLICATE])
        except sqlite3.Error as exc:
            raise StoreError(f"could not store what {source} sent: {exc}") from exc
        return BatchResult(took[STORED], took[DUPLICATE], bad, took[OUTCOME])

    def _take(self, t: Trajectory, source: str, at: str | None, data: str | None = None) -> str:
        """Store a run (STORED); or, when its id is stored with an unknown outcome and this copy
        is the same run with a known one, set that outcome (OUTCOME); else DUPLICATE."""
        if self._insert(t, source, at, data):
            return STORED
        if t.succeeded is None or t.outcome is None:
            return DUPLICATE
        row = self.db.execute(
            "SELECT data FROM trajectories WHERE id = ? AND success IS NULL", [t.id]
        ).fetchone()
        if row is None or not same_run(row[0], t):
            return DUPLICATE
        return OUTCOME if self._set_outcome(t.id, t.outcome, source, at) == "applied" else DUPLICATE

    # -- outcomes that arrive after their run -------------------------------------------

    def set_outcomes(
        self, pairs: Sequence[tuple[str, Outcome]], *, source: str = "label"
    ) -> OutcomeResult:
        """Set the outcome of stored runs whose outcome is unknown, in one transaction; a run
        whose outcome is known keeps it. The stored JSON, the `success` and `reward` columns
        and the skill index change together, and each update is logged in `outcome_updates`
        for incremental cycles. Raises StoreError for an outcome that is itself unknown."""
        check_known(pairs)
        at = _iso(utcnow())
        found: dict[str, list[str]] = {"applied": [], "known": [], "missing": []}
        try:
            with self.transaction():
                for run_id, outcome in pairs:
                    found[self._set_outcome(run_id, outcome, source, at)].append(run_id)
        except sqlite3.Error as exc:
            raise StoreError(f"could not set outcomes: {exc}") from exc
        return OutcomeResult(*(tuple(found[k]) for k in ("applied", "known", "missing")))

    def _set_outcome(self, run_id: str, outcome: Outcome, source: str, at: str | None) -> str:
        """Within a transaction: 'applied', 'known' (left as stored) or 'missing'."""
        row = self.db.execute(
            "SELECT seq, success, data FROM trajectories WHERE id = ?", [run_id]
        ).fetchone()
        if row is None:
            return "missing"
        seq, success, data = row
        if success is not None:
            return "known"
        run, dumped = with_outcome(data, outcome)
        value = int(bool(run.succeeded))
        self.db.execute(
            "UPDATE trajectories SET success = ?, reward = ?, data = ? WHERE seq = ?",
            [value, outcome.reward, dumped, seq],
        )
        self.db.execute("UPDATE skill_runs SET success = ? WHERE seq = ?", [value, seq])
        self.db.execute(
            "INSERT INTO outcome_updates (seq, trajectory, success, source, at) VALUES (?,?,?,?,?)",
            [seq, run_id, value, source, at],
        )
        return "applied"

    def outcome_updates_after(self, mark: int) -> list[tuple[int, int]]:
        """Outcome updates logged after id `mark`, oldest first: (update id, run seq)."""
        sql = "SELECT id, seq FROM outcome_updates WHERE id > ? ORDER BY id"
        return [(r[0], r[1]) for r in self.db.execute(sql, [mark]).fetchall()]

    def outcomes_high_water(self) -> int:
        """The id of the newest outcome update (0 when none)."""
        return self.db.execute("SELECT coalesce(max(id), 0) FROM outcome_updates").fetchone()[0]

    def evolved_outcomes(self) -> int:
        """Outcome updates up to this id have been through a finished cycle."""
        row = self.last_cycle(status=("done", "nothing-new"))
        return (row.get("outcomes") or 0) if row else 0

    def _insert(self, t: Trajectory, source: str, at: str | None, data: str | None = None) -> bool:
        """Insert one trajectory unless its id is stored; True when it was new. `data` is its
        JSON when already made (it must read back as `t`)."""
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO trajectories (id, agent, task, success, reward,"
            " tool_calls, errors, skills, started_at, ended_at, source, ingested_at,"
            " data) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            _trajectory_row(t, source, at, data),
        )
        if cursor.rowcount and t.skills:
            _index_skills(self.db, cursor.lastrowid or 0, t)
        return bool(cursor.rowcount)

    def _quarantine(self, q: Quarantined, at: str | None) -> int:
        """Keep a bad line (once per file and offset), its reason and excerpt redacted: both
        are untrusted text, and a parser's message may quote the input. A summary row is
        updated in place as it counts more lines. Returns the rows added."""
        values = [q.file, q.line, q.offset, redact(q.reason), redact(q.excerpt), q.lines]
        values += [q.last_line, at]
        sql = (
            "INSERT INTO quarantine (file, line, offset, reason, excerpt, lines, last_line, at)"
            " VALUES (?,?,?,?,?,?,?,?)"
        )
        if q.last_line is None:
            return self.db.execute(sql.replace("INSERT", "INSERT OR IGNORE", 1), values).rowcount
        self.db.execute(
            sql + " ON CONFLICT(file, offset) DO UPDATE SET reason=excluded.reason,"
            " excerpt=excluded.excerpt, lines=excluded.lines, last_line=excluded.last_line,"
            " at=excluded.at",
            values,
        )
        return 0

    def _bump(self, name: str, by: int) -> None:
        self.db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            [name, by],
        )

    def counter(self, name: str) -> int:
        rows = list(self.db.query("SELECT value FROM counters WHERE name = ?", [name]))
        return rows[0]["value"] if rows else 0

    def set_state(self, **values: str | None) -> None:
        """What the daemon wants other processes (status) to see: pid, next cycle, ..."""
        with self.transaction():
            for key, value in values.items():
                self.db.execute(
                    "INSERT INTO daemon_state (key, value) VALUES (?, ?)"
                    " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    [key, value],
                )

    def state(self) -> dict[str, str | None]:
        return {r["key"]: r["value"] for r in self.db.query("SELECT key, value FROM daemon_state")}

    # -- reading ------------------------------------------------------------------------

    def trajectories(
        self, *, after_seq: int = 0, upto_seq: int | None = None
    ) -> Iterator[Trajectory]:
        """Stored trajectories in arrival order, optionally within a range of sequence numbers."""
        sql = "SELECT data FROM trajectories WHERE seq > ?"
        params: list[Any] = [after_seq]
        if upto_seq is not None:
            sql += " AND seq <= ?"
            params.append(upto_seq)
        for row in self.db.query(sql + " ORDER BY seq", params):
            yield Trajectory.model_validate_json(row["data"])

    def trajectory_ids(self) -> list[str]:
        return [r["id"] for r in self.db.query("SELECT id FROM trajectories ORDER BY seq")]

    def high_water(self) -> int:
        """The sequence number of the newest stored trajectory (0 when empty)."""
        return next(self.db.query("SELECT coalesce(max(seq), 0) AS s FROM trajectories"))["s"]

    def count(self, table: str, where: str = "1", params: Sequence[Any] = ()) -> int:
        sql = f"SELECT count(*) AS n FROM [{table}] WHERE {where}"
        return next(self.db.query(sql, list(params)))["n"]

    def quarantine(self, limit: int = 50) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM quarantine ORDER BY id DESC LIMIT ?", [limit]))

    def skill_usage(self) -> dict[str, int]:
        """How many stored runs had each skill loaded."""
        rows = self.db.query("SELECT skill, count(*) AS n FROM skill_runs GROUP BY skill")
        return {r["skill"]: r["n"] for r in rows}

    def skill_usage_detail(self) -> dict[str, tuple[int, int, datetime | None]]:
        """Per skill: runs that loaded it, their successes, and when it was last loaded."""
        rows = self.db.query(
            "SELECT s.skill, count(*) AS runs, sum(s.success = 1) AS ok,"
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
        return list(
            self.db.query(
                "SELECT s.version, count(*) AS runs, sum(s.success = 1) AS successes,"
                " sum(s.success = 0) AS failures, min(t.ingested_at) AS first_seen,"
                " max(t.ingested_at) AS last_seen FROM skill_runs s"
                " JOIN trajectories t ON t.seq = s.seq WHERE s.skill = ?"
                " GROUP BY s.version ORDER BY min(s.seq)",
                [skill],
            )
        )

    def ledger(self, skill: str) -> list[dict[str, Any]]:
        """Every proposed change of a skill, oldest first, with its decision and figures."""
        return list(
            self.db.query(
                "SELECT p.id AS proposal, p.created_at, p.status, p.decided_at,"
                " p.reason AS decision_reason, c.action, c.summary, c.reason, c.runs,"
                " c.successes, c.fingerprint, c.version FROM proposal_changes c"
                " JOIN proposals p ON p.id = c.proposal WHERE c.skill = ?"
                " ORDER BY p.created_at, p.id",
                [skill],
            )
        )

    # -- cycles -------------------------------------------------------------------------

    def start_cycle(
        self, cycle_id: str, high_water: int, *, now: datetime, outcomes: int = 0
    ) -> None:
        """Record a cycle that takes runs up to `high_water` and outcome updates up to
        `outcomes`."""
        self.db.execute(
            "INSERT INTO cycles (id, started_at, status, high_water, outcomes)"
            " VALUES (?,?,?,?,?)",
            [cycle_id, _iso(now), "running", high_water, outcomes],
        )

    def finish_cycle(self, cycle_id: str, status: str, *, now: datetime, **fields: Any) -> None:
        sets = "".join(f", {key} = ?" for key in fields)
        sql = f"UPDATE cycles SET status = ?, finished_at = ?{sets} WHERE id = ?"
        self.db.execute(sql, [status, _iso(now), *fields.values(), cycle_id])

    def interrupt_running_cycles(self, *, now: datetime) -> list[str]:
        """Mark cycles left `running` by a crash as `interrupted`; their work is redone."""
        ids = [r["id"] for r in self.db.query("SELECT id FROM cycles WHERE status = 'running'")]
        for cycle_id in ids:
            self.finish_cycle(cycle_id, "interrupted", now=now)
        return ids

    def last_cycle(self, status: Sequence[str] | None = None) -> dict[str, Any] | None:
        sql, params = "SELECT * FROM cycles", []
        if status:
            sql += f" WHERE status IN ({','.join('?' * len(status))})"
            params = list(status)
        rows = list(self.db.query(sql + " ORDER BY started_at DESC, rowid DESC LIMIT 1", params))
        return rows[0] if rows else None

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
        return {
            r["trajectory"]: r["cluster"] for r in self.db.query("SELECT * FROM cluster_members")
        }

    def save_memberships(self, memberships: Mapping[str, str]) -> None:
        with self.transaction():
            self.db.execute("DELETE FROM cluster_members")
            self.db.conn.executemany(
                "INSERT INTO cluster_members (trajectory, cluster) VALUES (?, ?)",
                sorted(memberships.items()),
            )

    # -- proposals ----------------------------------------------------------------------

    def add_proposal(self, proposal: dict[str, Any], changes: Sequence[dict[str, Any]]) -> None:
        """Record a proposal and its changes together (the write lock is taken up front, so
        intake committing meanwhile makes this wait, not fail)."""
        try:
            with self.transaction():
                self.db["proposals"].insert(proposal)
                self.db["proposal_changes"].insert_all(
                    [{"proposal": proposal["id"], **c} for c in changes]
                )
        except sqlite3.Error as exc:
            raise StoreError(f"could not record proposal {proposal.get('id')}: {exc}") from exc

    def proposals(self, status: str | None = None) -> list[dict[str, Any]]:
        sql, params = "SELECT * FROM proposals", []
        if status:
            sql, params = sql + " WHERE status = ?", [status]
        return list(self.db.query(sql + " ORDER BY created_at, id", params))

    def proposal(self, proposal_id: str) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM proposals WHERE id = ?", [proposal_id]))
        return rows[0] if rows else None

    def proposal_changes(self, proposal_id: str) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT * FROM proposal_changes WHERE proposal = ? ORDER BY skill", [proposal_id]
            )
        )

    def decide(
        self, proposal_id: str, status: str, *, reason: str | None = None, now: datetime
    ) -> None:
        self.db.execute(
            "UPDATE proposals SET status = ?, reason = ?, decided_at = ? WHERE id = ?",
            [status, reason, _iso(now), proposal_id],
        )

    def known_changes(self, statuses: Sequence[str]) -> set[tuple[str, str]]:
        """(skill, fingerprint) of changes in proposals with these statuses."""
        marks = ",".join("?" * len(statuses))
        rows = self.db.query(
            "SELECT c.skill, c.fingerprint FROM proposal_changes c JOIN proposals p"
            f" ON p.id = c.proposal WHERE p.status IN ({marks})",
            list(statuses),
        )
        return {(r["skill"], r["fingerprint"]) for r in rows}

    def open_proposals_touching(self, skills: Sequence[str]) -> list[str]:
        if not skills:
            return []
        marks = ",".join("?" * len(skills))
        rows = self.db.query(
            "SELECT DISTINCT p.id FROM proposals p JOIN proposal_changes c ON p.id = c.proposal"
            f" WHERE p.status = 'open' AND c.skill IN ({marks}) ORDER BY p.id",
            list(skills),
        )
        return [r["id"] for r in rows]

    # -- pull requests and review feedback -----------------------------------------------

    def set_pull_request(self, proposal_id: str, number: int, url: str) -> None:
        self.db.execute(
            "UPDATE proposals SET pr_number = ?, pr_url = ? WHERE id = ?",
            [number, url, proposal_id],
        )

    def add_review_comments(self, proposal_id: str, comments: Sequence[Mapping[str, Any]]) -> int:
        """Keep review comments read back from a host (each once, by its `key`); returns new."""
        with self.transaction():
            return sum(
                self.db.execute(
                    "INSERT OR IGNORE INTO review_comments (proposal, key, kind, author, body,"
                    " path, state, created_at) VALUES (?,?,?,?,?,?,?,?)",
                    [proposal_id, c["key"], c["kind"], c["author"], c["body"], c.get("path"),
                     c.get("state"), c.get("created_at")],
                ).rowcount
                for c in comments
            )

    def review_comments(self, proposal_id: str) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT * FROM review_comments WHERE proposal = ? ORDER BY created_at, key",
                [proposal_id],
            )
        )

    def feedback_for(self, skill: str) -> list[str]:
        """What reviewers said when they rejected changes to `skill`, oldest first: each
        rejection's reason, then its comments on the whole proposal or on this skill's files."""
        rows = self.db.query(
            "SELECT p.id, p.decided_at, p.reason FROM proposals p JOIN proposal_changes c"
            " ON p.id = c.proposal WHERE c.skill = ? AND p.status = 'rejected'"
            " ORDER BY p.decided_at, p.id",
            [skill],
        )
        notes: list[str] = []
        for row in list(rows):
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
        rows = list(self.db.query("SELECT value FROM llm_cache WHERE key = ?", [key]))
        return rows[0]["value"] if rows else None

    def llm_cache_put(
        self, key: str, value: str, *, provider: str, model: str, role: str, version: str
    ) -> None:
        self.db.execute(
            "INSERT INTO llm_cache (key, provider, model, role, version, value, created_at)"
            " VALUES (?,?,?,?,?,?,?) ON CONFLICT(key) DO UPDATE SET value = excluded.value,"
            " created_at = excluded.created_at",
            [key, provider, model, role, version, value, _iso(utcnow())],
        )

    def record_llm_calls(self, cycle_id: str, calls: Sequence[Mapping[str, Any]]) -> None:
        """Save an `LLMClient.calls()` log under its cycle, for `status` and the ledger."""
        at = _iso(utcnow())
        fields = ("provider", "model", "role", "skill", "version", "calls", "input_tokens")
        fields += ("output_tokens", "cost_usd", "cached", "note")
        with self.transaction():
            self.db.conn.executemany(
                f"INSERT INTO llm_calls (cycle, at, {', '.join(fields)})"
                f" VALUES (?, ?, {', '.join('?' * len(fields))})",
                [[cycle_id, at, *(_llm_field(c, f) for f in fields)] for c in calls],
            )

    def llm_spend(self, cycle_ids: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """Per cycle: requests, tokens, estimated cost, asks answered from the cache, refusals."""
        sql = (
            "SELECT cycle, sum(calls) AS calls, sum(input_tokens) AS input_tokens,"
            " sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd,"
            " sum(cached) AS cached, sum(note != '') AS noted, count(*) AS asks FROM llm_calls"
        )
        params: list[Any] = []
        if cycle_ids is not None:
            if not cycle_ids:
                return {}
            sql += f" WHERE cycle IN ({','.join('?' * len(cycle_ids))})"
            params = list(cycle_ids)
        rows = self.db.query(sql + " GROUP BY cycle ORDER BY min(id)", params)
        return {r.pop("cycle"): r for r in rows}

    def llm_calls(self, cycle_id: str) -> list[dict[str, Any]]:
        """Every ask of a cycle, in order (see `record_llm_calls`)."""
        sql = "SELECT * FROM llm_calls WHERE cycle = ? ORDER BY id"
        return list(self.db.query(sql, [cycle_id]))

    # -- cluster state (incremental cycles; clusterstate.py) -----------------------------
    # Every write here is a short transaction of its own, so intake never waits long.

    STATE_TABLES = (
        "cluster_runs",
        "cluster_stats",
        "cluster_features",
        "feature_df",
        "cluster_sets",
    )

    def run_batches(
        self, after_seq: int, upto_seq: int, size: int = 500
    ) -> Iterator[list[tuple[int, str, str | None]]]:
        """Stored runs with after_seq < seq <= upto_seq in arrival order, `size` at a time:
        (seq, JSON, cluster id of its membership or None). One batch in memory at a time."""
        sql = (
            "SELECT t.seq, t.data, m.cluster FROM trajectories t LEFT JOIN cluster_members m"
            " ON m.trajectory = t.id WHERE t.seq > ? AND t.seq <= ? ORDER BY t.seq LIMIT ?"
        )
        while True:
            rows = self.db.execute(sql, [after_seq, upto_seq, size]).fetchall()
            if not rows:
                return
            yield [(r[0], r[1], r[2]) for r in rows]
            after_seq = rows[-1][0]

    def first_unassigned(self) -> int | None:
        """The sequence number of the oldest run without a cluster, or None."""
        row = self.db.execute(
            "SELECT min(t.seq) FROM trajectories t LEFT JOIN cluster_members m"
            " ON m.trajectory = t.id WHERE m.cluster IS NULL"
        ).fetchone()
        return row[0]

    def runs_by_seq(self, seqs: Sequence[int]) -> dict[int, str]:
        """The stored JSON of the runs with these sequence numbers."""
        return self._by_seq("data", seqs)

    def counted_runs(self, seqs: Sequence[int]) -> dict[int, tuple[str, bool | None]]:
        """For the runs with these sequence numbers that the cluster state has counted: their
        cluster and the outcome it counted them with (a run not counted is left out)."""
        out: dict[int, tuple[str, bool | None]] = {}
        wanted = sorted(set(seqs))
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            marks = ",".join("?" * len(part))
            sql = f"SELECT seq, cluster, success FROM cluster_runs WHERE seq IN ({marks})"
            for seq, cid, ok in self.db.execute(sql, part):
                out[seq] = (cid, None if ok is None else bool(ok))
        return out

    def tasks_by_seq(self, seqs: Sequence[int]) -> dict[int, str]:
        """The task of the runs with these sequence numbers."""
        return self._by_seq("task", seqs)

    def _by_seq(self, column: str, seqs: Sequence[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        wanted = sorted(set(seqs))
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            marks = ",".join("?" * len(part))
            sql = f"SELECT seq, {column} FROM trajectories WHERE seq IN ({marks})"
            out.update(self.db.execute(sql, part).fetchall())
        return out

    def cluster_state_meta(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, value FROM cluster_state").fetchall())

    def cluster_stats(self) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM cluster_stats ORDER BY cluster"))

    def cluster_features(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for cid, feature, n in self.db.execute(
            "SELECT cluster, feature, n FROM cluster_features ORDER BY cluster, feature"
        ):
            out.setdefault(cid, {})[feature] = n
        return out

    def feature_df(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT feature, n FROM feature_df ORDER BY feature"))

    def cluster_sets(self, keys: Sequence[str]) -> dict[str, dict[str, int]]:
        """For these feature sets (as `clusterstate.set_key` writes them): the clusters that
        hold runs with them, and how many."""
        out: dict[str, dict[str, int]] = {}
        for i in range(0, len(keys), 500):
            part = list(keys[i : i + 500])
            marks = ",".join("?" * len(part))
            for key, cid, n in self.db.execute(
                f"SELECT features, cluster, n FROM cluster_sets WHERE features IN ({marks})", part
            ):
                out.setdefault(key, {})[cid] = n
        return out

    def cluster_runs_after(
        self, clusters: Sequence[str], after_seq: int, limit: int
    ) -> list[dict[str, Any]]:
        """Runs of these clusters with seq > after_seq, oldest first, at most `limit`."""
        marks = ",".join("?" * len(clusters))
        return list(
            self.db.query(
                f"SELECT * FROM cluster_runs WHERE cluster IN ({marks}) AND seq > ?"
                " ORDER BY seq LIMIT ?",
                [*clusters, after_seq, limit],
            )
        )

    def add_cluster_runs(self, rows: Sequence[Sequence[Any]]) -> None:
        """Record runs' clusters: rows of (seq, id, cluster, success, task hash); their
        memberships go to cluster_members too, which the rest of skillforge reads."""
        for i in range(0, len(rows), 2000):
            part = rows[i : i + 2000]
            with self.transaction():
                self.db.conn.executemany(
                    "INSERT OR REPLACE INTO cluster_runs (seq, id, cluster, success, task)"
                    " VALUES (?,?,?,?,?)",
                    part,
                )
                self.db.conn.executemany(
                    "INSERT OR REPLACE INTO cluster_members (trajectory, cluster) VALUES (?, ?)",
                    [(r[1], r[2]) for r in part],
                )

    def drop_cluster_runs_after(self, seq: int) -> None:
        """Forget cluster rows a cycle wrote past the state's high water before it died."""
        with self.transaction():
            self.db.execute("DELETE FROM cluster_runs WHERE seq > ?", [seq])

    def move_clusters(self, sources: Sequence[str], target: str) -> None:
        """The runs of clusters `sources` now belong to `target` (clusters merged)."""
        marks = ",".join("?" * len(sources))
        with self.transaction():
            for table in ("cluster_runs", "cluster_members"):
                self.db.execute(
                    f"UPDATE {table} SET cluster = ? WHERE cluster IN ({marks})",
                    [target, *sources],
                )
            self.db.execute(
                "INSERT INTO cluster_sets (features, cluster, n) SELECT features, ?, n"
                f" FROM cluster_sets WHERE cluster IN ({marks}) AND true"
                " ON CONFLICT (features, cluster) DO UPDATE SET n = n + excluded.n",
                [target, *sources],
            )
            self.db.execute(f"DELETE FROM cluster_sets WHERE cluster IN ({marks})", sources)

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
        with self.transaction():
            self.db.conn.executemany(
                "UPDATE cluster_runs SET success = ? WHERE seq = ?",
                [(success, seq) for seq, success in outcomes],
            )
            self.db.conn.executemany(
                "INSERT INTO cluster_sets (features, cluster, n) VALUES (?,?,?)"
                " ON CONFLICT (features, cluster) DO UPDATE SET n = n + excluded.n",
                sorted(sets),
            )
            for cid in dropped:
                self.db.execute("DELETE FROM cluster_stats WHERE cluster = ?", [cid])
                self.db.execute("DELETE FROM cluster_features WHERE cluster = ?", [cid])
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO cluster_stats (cluster, tally, prefix, prefix_seq, sample,"
                " anchors) VALUES (:cluster, :tally, :prefix, :prefix_seq, :sample, :anchors)",
                list(stats),
            )
            for cid, counts in features.items():
                self.db.execute("DELETE FROM cluster_features WHERE cluster = ?", [cid])
                self.db.conn.executemany(
                    "INSERT INTO cluster_features (cluster, feature, n) VALUES (?,?,?)",
                    [(cid, f, n) for f, n in sorted(counts.items()) if n],
                )
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO feature_df (feature, n) VALUES (?,?)", sorted(df.items())
            )
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO cluster_state (key, value) VALUES (?,?)",
                sorted(meta.items()),
            )

    def clear_cluster_state(self) -> None:
        """Forget all cluster state (not the memberships): `rebuild` starts from this."""
        with self.transaction():
            for table in (*self.STATE_TABLES, "cluster_state", "evolve_memo"):
                self.db.execute(f"DELETE FROM {table}")

    def memo_get(self, key: str) -> str | None:
        """A stage result an earlier cycle kept (evolver.memo), or None."""
        row = self.db.execute("SELECT value FROM evolve_memo WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def save_memo(self, added: Mapping[str, str], keep: Collection[str]) -> None:
        """Add stage results and drop those not in `keep` (no longer asked for)."""
        with self.transaction():
            stale = [k for (k,) in self.db.execute("SELECT key FROM evolve_memo") if k not in keep]
            self.db.conn.executemany("DELETE FROM evolve_memo WHERE key = ?", [(k,) for k in stale])
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO evolve_memo (key, value) VALUES (?,?)",
                sorted(added.items()),
            )


_PROGRESS = "offset, line, inode, dev, fingerprint, bad_lines"


def same_run(stored: str, t: Trajectory) -> bool:
    """Whether the stored JSON and `t` are the same run but for their outcome."""
    kept = Trajectory.model_validate_json(stored)
    return kept.model_dump(exclude={"outcome"}) == t.model_dump(exclude={"outcome"})


def with_outcome(stored: str, outcome: Outcome) -> tuple[Trajectory, str]:
    """The stored run with `outcome` set, and its JSON; a reason the stored outcome gave is
    kept when the new one gives none."""
    run = Trajectory.model_validate_json(stored)
    if outcome.reason is None and run.outcome is not None and run.outcome.reason is not None:
        outcome = outcome.model_copy(update={"reason": run.outcome.reason})
    run = run.model_copy(update={"outcome": outcome})
    return run, run.model_dump_json()


def check_known(pairs: Sequence[tuple[str, Outcome]]) -> None:
    """Raise StoreError for a pair whose outcome is not known: it cannot settle a run (both
    stores call this before writing)."""
    for run_id, outcome in pairs:
        if outcome.success is None:
            raise StoreError(f"the outcome given for {run_id} is not known: give success or reward")


def _trajectory_row(t: Trajectory, source: str, at: str | None, data: str | None) -> list[Any]:
    success = None if t.succeeded is None else int(t.succeeded)
    calls = t.tool_calls
    return [
        t.id,
        t.agent,
        t.task,
        success,
        t.outcome.reward if t.outcome else None,
        len(calls),
        sum(1 for c in calls if c.error),
        json.dumps(sorted({s.name for s in t.skills})) if t.skills else "[]",
        _iso(t.started_at),
        _iso(t.ended_at),
        source,
        at,
        t.model_dump_json() if data is None else data,
    ]


def _llm_field(call: Mapping[str, Any], name: str) -> Any:
    value = call.get(name)
    if name in ("calls", "input_tokens", "output_tokens", "cached"):
        return int(value or 0)
    if name == "cost_usd":
        return float(value or 0.0)
    return value if value is not None or name in ("skill", "version") else ""
