"""The embedded registry: one SQLite file, created on first write, never by a dry-run."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from ..errors import RegistryError
from .sql import SqlRegistry

sqlite3.register_adapter(datetime, lambda d: d.isoformat())
_BUSY_TIMEOUT_S = 60.0


class SqliteRegistry(SqlRegistry):
    types: ClassVar[dict[str, str]] = {"uuid": "TEXT", "json": "TEXT", "time": "TEXT"}

    def __init__(self, path: Path, display_url: str, *, writable: bool) -> None:
        self.path = path
        self.display_url = display_url
        self.writable = writable
        self._conn: sqlite3.Connection | None = None
        self._migrated = False

    def _connection(self) -> sqlite3.Connection | None:
        if self._conn is not None:
            return self._conn
        try:
            if self.writable:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
            elif self.path.exists():
                uri = self.path.resolve().as_uri() + "?mode=ro"
                conn = sqlite3.connect(uri, uri=True, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
            else:
                return None  # a dry-run against a registry that does not exist yet: it is empty
        except (OSError, sqlite3.Error) as exc:
            raise RegistryError(f"cannot open registry {self.display_url}: {exc}") from None
        self._conn = conn
        return conn

    def _writer(self) -> sqlite3.Connection:
        conn = self._connection()
        if conn is None or not self.writable:
            raise RegistryError(f"registry {self.display_url} was opened read-only")
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        conn = self._writer()
        try:
            conn.execute("BEGIN IMMEDIATE")  # takes the write lock now, not at the first write
        except sqlite3.Error as exc:
            raise RegistryError(f"cannot lock registry {self.display_url}: {exc}") from None
        cur = conn.cursor()
        try:
            yield cur
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        conn = self._connection()
        if conn is None:
            return []
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise RegistryError(f"cannot read registry {self.display_url}: {exc}") from None

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


def open_sqlite(url: str, *, writable: bool) -> SqliteRegistry:
    """`sqlite:///relative/path.db` or `sqlite:////absolute/path.db`."""
    if not url.startswith("sqlite:///") or len(url) <= len("sqlite:///"):
        raise RegistryError(
            f"invalid SQLite registry URL '{url}' (expected sqlite:///PATH, e.g. "
            "sqlite:///.reconciler/registry.db)"
        )
    return SqliteRegistry(Path(url[len("sqlite:///") :]), url, writable=writable)
