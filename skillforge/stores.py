"""Open the store a configuration names: a SQLite file, or a PostgreSQL database by URL.

`open_store(config.store_location)` is what commands and the daemon call; both classes have
the same public methods (`Store` in store.py, `PostgresStore` in pgstore.py). PostgreSQL
needs the optional extra: `pip install 'skillforge[postgres]'`.

`leader_lock(location)` gives the lock one evolver among several processes or hosts leads
by: a PostgreSQL session advisory lock, or for a SQLite file (one host) an flock beside it.
Either is released when its holder dies, SIGKILL included, so another one takes over.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Protocol, TypeAlias
from urllib.parse import urlsplit, urlunsplit

from .errors import StoreError
from .store import Store

if TYPE_CHECKING:
    from .pgstore import PostgresStore

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
AnyStore: TypeAlias = "Store | PostgresStore"  # for annotations of code that takes either


def is_postgres(db: str | Path) -> bool:
    """Whether `db` is a PostgreSQL URL (otherwise it is a SQLite file's path)."""
    return isinstance(db, str) and db.startswith(POSTGRES_SCHEMES)


def safe_url(url: str) -> str:
    """The URL with its password replaced by `***`, fit for messages and logs."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rpartition("@")[2]
        netloc = f"{parts.username or ''}:***@{host}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    except ValueError:
        return f"{url.partition('://')[0]}://(an unparsable URL)"


def _pgstore() -> ModuleType:
    try:
        from . import pgstore
    except ImportError as exc:
        raise StoreError(
            "db is a PostgreSQL URL but psycopg is not installed; install it with"
            " `pip install 'skillforge[postgres]'` (or `pip install 'psycopg[binary]'`)"
        ) from exc
    return pgstore


def open_store(db: str | Path) -> Store | PostgresStore:
    """The store at `db`: `PostgresStore` for a postgresql:// URL, else the SQLite `Store`
    at that path. Raises StoreError when it cannot be opened or migrated."""
    if is_postgres(db):
        return _pgstore().PostgresStore(str(db))
    if isinstance(db, str) and "://" in db:
        raise StoreError(
            f"db {db.split('://')[0]}://... is not a store this version knows; give a"
            " postgresql:// URL or a SQLite file's path"
        )
    return Store(Path(db))


class LeaderLock(Protocol):
    """One leader among processes: `try_lead()` never waits; `still_leading()` before work
    only the leader may do; `release()` to step down."""

    def try_lead(self) -> bool: ...

    def still_leading(self) -> bool: ...

    def release(self) -> None: ...


class FileLeaderLock:
    """Leadership as an exclusive flock on a file: for processes of one host sharing a
    SQLite store. The kernel drops it when the holder exits or is killed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_lead(self) -> bool:
        """Take leadership if no other process (or other lock object) holds it."""
        if self._fd is not None:
            return True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot open the leader lock file {self.path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # who leads, for a person looking
        self._fd = fd
        return True

    def still_leading(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> FileLeaderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def leader_lock(db: str | Path, name: str = "cycle") -> LeaderLock:
    """The leader lock `name` for the store at `db` (see the module docstring)."""
    if is_postgres(db):
        _pgstore()  # psycopg is installed, or a StoreError says how to get it
        from .pgleader import PgLeaderLock

        return PgLeaderLock(str(db), name)
    path = Path(db)
    return FileLeaderLock(path.with_name(f"{path.name}.{name}.leader"))


@contextlib.contextmanager
def leading_cycles(db: str | Path, display: str, refused: str) -> Iterator[None]:
    """On a shared PostgreSQL store, hold the cycle leader lock for the block, or raise
    StoreError (a daemon leads; `refused` says what to do). On SQLite (one host) nothing: the
    library lock keeps cycles apart, and a serving daemon may lead."""
    if not is_postgres(db):
        yield
        return
    lock = leader_lock(db)
    if not lock.try_lead():
        raise StoreError(f"a skillforge daemon leads the cycles of {display}{refused}")
    try:
        yield
    finally:
        lock.release()
