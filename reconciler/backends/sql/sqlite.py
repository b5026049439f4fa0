"""The embedded registry: one SQLite file, created on first write, never by a dry-run."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from reconciler.actor import holder
from reconciler.backends.base import ConnectOptions
from reconciler.backends.sql.shared import SqlRegistry
from reconciler.errors import LockTimeout, ReconcilerError, RegistryError
from reconciler.files import create_private, write_atomic
from reconciler.redaction import redact_url

sqlite3.register_adapter(datetime, lambda d: d.isoformat())


class SqliteRegistry(SqlRegistry):
    types: ClassVar[dict[str, str]] = {"uuid": "TEXT", "json": "TEXT", "time": "TEXT"}

    def __init__(self, path: Path, display_url: str, *, writable: bool) -> None:
        self.path = path
        self.display_url = display_url
        self.writable = writable
        self._conn: sqlite3.Connection | None = None
        # Who holds the write lock: SQLite cannot say, so the holder leaves a note beside it.
        self._holder_file = path.with_name(path.name + ".lock-holder")

    def _connection(self) -> sqlite3.Connection | None:
        if self._conn is not None:
            return self._conn
        try:
            if self.writable:
                _make_directory(self.path.parent)
                # It holds connections (secrets): 0600 from the start; SQLite gives its
                # -wal, -shm and -journal files the database file's mode.
                create_private(self.path)
                conn = sqlite3.connect(self.path, isolation_level=None)
                _enable_wal(conn)
            elif self.path.exists():
                conn = _open_for_reading(self.path)
            else:
                return None  # a dry-run against a registry that does not exist yet: it is empty
        except (OSError, sqlite3.Error) as exc:
            raise RegistryError(f"cannot open registry {self.display_url}: {exc}") from None
        self._conn = conn
        return conn

    @contextmanager
    def _begin(self, timeout: float) -> Iterator[Any]:
        conn = self._connection()
        if conn is None or not self.writable:
            raise RegistryError(f"registry {self.display_url} was opened read-only")
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        try:
            conn.execute("BEGIN IMMEDIATE")  # takes the write lock now, not at the first write
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise LockTimeout(self._busy_message(timeout)) from None
            raise RegistryError(f"cannot lock registry {self.display_url}: {exc}") from None
        self._write_holder()
        cur = conn.cursor()
        try:
            yield cur
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise RegistryError(
                    f"cannot commit to registry {self.display_url}: {exc}"
                ) from None
        finally:
            with suppress(OSError):
                self._holder_file.unlink()

    def _write_holder(self) -> None:
        note = {"holder": holder(), "since": datetime.now(UTC).isoformat(timespec="seconds")}
        with suppress(OSError, ReconcilerError):  # only a courtesy for the busy message
            write_atomic(self._holder_file, json.dumps(note))

    def _busy_message(self, timeout: float) -> str:
        try:
            note = json.loads(self._holder_file.read_text(encoding="utf-8"))
            who = f"{note['holder']} since {note['since']}"
        except (OSError, ValueError, KeyError):
            who = "another process"
        return self._locked_message(who, timeout)

    def _read_outside(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        conn = self._connection()
        if conn is None:
            return []
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise RegistryError(f"cannot read registry {self.display_url}: {exc}") from None

    def _present(self) -> bool:
        return self._conn is not None or self.path.exists()

    def _initialised(self) -> bool:
        return bool(
            self._read("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sources'")
        )

    def _sql(self, sql: str) -> str:
        return sql

    def _json(self, value: Any) -> Any:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))

    def _is_unique_violation(self, exc: Exception) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _make_directory(folder: Path) -> None:
    """Create the registry's directory; a `.reconciler/` we create ignores itself in git
    (the database and its -wal/-shm side files are not for committing)."""
    if folder.exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    if folder.name == ".reconciler":
        with suppress(OSError):
            (folder / ".gitignore").write_text("# Created by reconciler: local state.\n*\n")


def _open_for_reading(path: Path) -> sqlite3.Connection:
    """A connection that cannot write yet cleans up after itself.

    A `mode=ro` connection that is the last to close a WAL database cannot remove its
    -wal/-shm side files; a read-write one with `query_only` refuses writes all the same and
    removes them. `mode=ro` stays for a file we may not write.
    """
    base = path.resolve().as_uri()
    if os.access(path, os.W_OK) and os.access(path.parent, os.W_OK):
        conn = sqlite3.connect(base + "?mode=rw", uri=True, isolation_level=None)
        conn.execute("PRAGMA query_only = ON")
        return conn
    return sqlite3.connect(base + "?mode=ro", uri=True, isolation_level=None)


# Two runs opening a new registry at once race to switch it to WAL; the loser gets "database
# is locked" at once (SQLite does not wait there), so it tries again for a while.
_WAL_RETRY_S = 10.0


def _enable_wal(conn: sqlite3.Connection) -> None:
    deadline = time.monotonic() + _WAL_RETRY_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def open_sqlite(url: str, *, writable: bool, options: ConnectOptions) -> SqliteRegistry:
    """`sqlite:///relative/path.db` or `sqlite:////absolute/path.db` (of the options, only the
    run-log retention applies)."""
    if not url.startswith("sqlite:///") or len(url) <= len("sqlite:///"):
        raise RegistryError(
            f"invalid SQLite registry URL '{redact_url(url)}' (expected sqlite:///PATH, e.g. "
            "sqlite:///.reconciler/registry.db)"
        )
    registry = SqliteRegistry(Path(url[len("sqlite:///") :]), redact_url(url), writable=writable)
    registry.keep_runs = options.keep_runs
    return registry
