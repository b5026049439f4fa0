"""Observe live table schemas: PostgreSQL catalogs and CSV headers plus sampled types.

Every per-source failure becomes a value (`TableMissing`, `Unreachable`) rather than an
exception, so one dead database never hides the schema changes of all the others.
"""

from __future__ import annotations

import csv
import math
import os
import re
import stat
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import psycopg

from reconciler.models import ObservedColumn, ObservedTable, Outcome, TableMissing, Unreachable
from reconciler.redaction import redact_locators
from reconciler.tableschema.reach import Reach


@dataclass(frozen=True)
class PostgresTarget:
    """A source to introspect, with its connection already resolved (secrets included)."""

    source: str
    connection: Mapping[str, Any]


@dataclass
class IntrospectionStats:
    """Counters a caller (or a test) can pass in to see how much work a run really did."""

    databases: int = 0
    connections: int = 0
    queries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def _add(self, *, connections: int = 0, queries: int = 0) -> None:
        with self._lock:
            self.connections += connections
            self.queries += queries


# One query per database for all of its tables. information_schema gives the SQL-standard
# view (and honours column privileges); pg_attribute gives attnum and format_type(), the
# most faithful spelling of a type, modifiers included (varchar(50), numeric(12,2)).
_COLUMNS_SQL = """
SELECT c.table_schema::text, c.table_name::text, c.column_name::text,
       format_type(a.atttypid, a.atttypmod), c.is_nullable = 'YES', a.attnum
FROM information_schema.columns c
JOIN pg_catalog.pg_namespace n ON n.nspname = c.table_schema
JOIN pg_catalog.pg_class r ON r.relnamespace = n.oid AND r.relname = c.table_name
JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attname = c.column_name
WHERE (c.table_schema, c.table_name) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY 1, 2, a.attnum
"""

_DbKey = tuple[str, int, str, str]


def introspect_postgres(
    targets: Iterable[PostgresTarget],
    *,
    timeout: float = 10.0,
    max_workers: int = 8,
    stats: IntrospectionStats | None = None,
    reach: Reach | None = None,
) -> dict[str, Outcome]:
    """Each target's live columns: one connection and one query per database, databases in
    parallel, every wait bounded by `timeout` seconds. Never raises for a bad database.
    A host `reach` does not allow (default: from the environment) is never contacted."""
    stats = stats if stats is not None else IntrospectionStats()
    reach = reach if reach is not None else Reach.from_environment()
    results: dict[str, Outcome] = {}
    groups: dict[_DbKey, list[tuple[str, str, str]]] = {}
    passwords: dict[_DbKey, set[str]] = {}
    for target in targets:
        conn = target.connection
        missing = [k for k in ("host", "dbname", "user", "table") if not conn.get(k)]
        if missing:
            results[target.source] = Unreachable(
                source=target.source, reason=f"connection has no {', '.join(missing)}"
            )
            continue
        try:
            port = int(conn.get("port") or 5432)
        except (TypeError, ValueError):
            results[target.source] = Unreachable(source=target.source, reason="invalid port")
            continue
        refused = reach.host_refusal(str(conn["host"]), port)
        if refused is not None:
            results[target.source] = Unreachable(source=target.source, reason=refused)
            continue
        key = (str(conn["host"]), port, str(conn["dbname"]), str(conn["user"]))
        schema = str(conn.get("schema") or "public")
        groups.setdefault(key, []).append((target.source, schema, str(conn["table"])))
        if conn.get("password"):
            passwords.setdefault(key, set()).add(str(conn["password"]))
    stats.databases += len(groups)
    if not groups:
        return results
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(groups)))) as pool:
        futures = [
            pool.submit(
                _introspect_database, key, members, passwords.get(key, set()), timeout, stats
            )
            for key, members in groups.items()
        ]
        for future in futures:
            results.update(future.result())
    return results


def _introspect_database(
    key: _DbKey,
    members: Sequence[tuple[str, str, str]],
    passwords: set[str],
    timeout: float,
    stats: IntrospectionStats,
) -> dict[str, Outcome]:
    """One database's sources; any failure is turned into `Unreachable` for all of them."""
    host, port, dbname, user = key
    # Several sources of one database may (mistakenly) carry different passwords: try each.
    candidates = sorted(passwords) or [""]
    rows: list[tuple[Any, ...]] | None = None
    reason = ""
    for password in candidates:
        try:
            rows = _fetch(host, port, dbname, user, password, members, timeout, stats)
            break
        except Exception as exc:  # any driver or OS failure is per-database, never fatal
            reason = _scrub(exc, passwords, where=f"{user}@{host}:{port}/{dbname}")
    if rows is None:
        return {src: Unreachable(source=src, reason=reason) for src, _, _ in members}
    by_table: dict[tuple[str, str], list[ObservedColumn]] = {}
    for schema, table, name, type_, nullable, attnum in rows:
        column = ObservedColumn(name=name, type=type_, nullable=nullable, position=attnum)
        by_table.setdefault((schema, table), []).append(column)
    out: dict[str, Outcome] = {}
    for source, schema, table in members:
        columns = by_table.get((schema, table))
        out[source] = (
            ObservedTable(source=source, columns=tuple(columns))
            if columns
            else TableMissing(source=source)
        )
    return out


def _fetch(
    host: str,
    port: int,
    dbname: str,
    user: str,
    password: str,
    members: Sequence[tuple[str, str, str]],
    timeout: float,
    stats: IntrospectionStats,
) -> list[tuple[Any, ...]]:
    pairs = sorted({(schema, table) for _, schema, table in members})
    statement_ms = max(1, int(timeout * 1000))
    options = f"-c statement_timeout={statement_ms} -c default_transaction_read_only=on"
    kwargs: dict[str, Any] = {
        "host": host,
        "port": port,
        "dbname": dbname,
        "user": user,
        # libpq rounds anything below 2 s up to 2 s; 0 would mean "wait forever".
        "connect_timeout": max(2, math.ceil(timeout)),
        "options": options,
        "application_name": "reconciler-introspection",
        "autocommit": True,
    }
    if password:
        kwargs["password"] = password
    with psycopg.connect(**kwargs) as conn:
        stats._add(connections=1)
        cur = conn.execute(_COLUMNS_SQL, ([s for s, _ in pairs], [t for _, t in pairs]))
        stats._add(queries=1)
        return cur.fetchall()


def _scrub(exc: BaseException, passwords: Iterable[str], *, where: str) -> str:
    """The driver's first meaningful line, minus any password value or echoed DSN."""
    passwords = {*passwords, os.environ.get("PGPASSWORD", "")}  # libpq's fallback secret
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[0] if lines else type(exc).__name__
    text = redact_locators(text)
    for secret in sorted(passwords, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    where = redact_locators(where)
    for secret in passwords:
        if secret:
            where = where.replace(secret, "***")
    return f"{where}: {text}"


# ---------------------------------------------------------------------------------- CSV

_INT = re.compile(r"[+-]?\d+", re.ASCII)
_FLOAT = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?",
    re.ASCII,
)
_BOOLEANS = frozenset({"true", "false", "t", "f", "yes", "no"})
_INT32 = 2**31
_INT64 = 2**63

# How a column of mixed kinds generalises: along the numeric ladder to its widest member,
# a date next to a timestamp is a timestamp; any other mix is text.
_NUMERIC_LADDER = ("integer", "bigint", "numeric", "double precision")
_DATE_LADDER = ("date", "timestamp without time zone")


def _kind(value: str) -> str:
    """The narrowest PostgreSQL type one non-empty cell fits."""
    if value.lower() in _BOOLEANS:
        return "boolean"
    if _INT.fullmatch(value):
        number = int(value)
        if -_INT32 <= number < _INT32:
            return "integer"
        return "bigint" if -_INT64 <= number < _INT64 else "numeric"
    if _FLOAT.fullmatch(value):
        return "double precision"
    if _DATE.fullmatch(value):
        return "date" if _valid(date.fromisoformat, value) else "text"
    match = _TIMESTAMP.fullmatch(value)
    if match and _valid(datetime.fromisoformat, value):
        return "timestamp with time zone" if match["tz"] else "timestamp without time zone"
    return "text"


def _valid(parse: Any, value: str) -> bool:
    try:
        parse(value)
    except ValueError:
        return False
    return True


def _column_type(kinds: set[str]) -> str:
    if len(kinds) == 1:
        return next(iter(kinds))
    for ladder in (_NUMERIC_LADDER, _DATE_LADDER):
        if kinds and kinds <= set(ladder):
            return max(kinds, key=ladder.index)
    return "text"


def introspect_csv(
    source: str, file_path: str | Path, *, sample_rows: int = 1000, reach: Reach | None = None
) -> Outcome:
    """Header names plus types inferred from the first `sample_rows` rows; empty cells make a
    column nullable and do not vote on its type. Only a regular file that `reach` allows
    (default: from the environment) is opened: its header ends up in reports."""
    path = Path(file_path).expanduser()
    reach = reach if reach is not None else Reach.from_environment()
    refused = reach.file_refusal(str(file_path))
    if refused is not None:
        return Unreachable(source=source, reason=refused)
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return Unreachable(source=source, reason=f"cannot read {path}: not a regular file")
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                return ObservedTable(source=source, columns=())
            names = [name.strip() for name in header]
            kinds: list[set[str]] = [set() for _ in names]
            nullable = [False] * len(names)
            for count, row in enumerate(reader):
                if count >= sample_rows:
                    break
                if not row:  # a blank line is not a row of empty cells
                    continue
                for index in range(len(names)):
                    cell = row[index].strip() if index < len(row) else ""
                    if cell:
                        kinds[index].add(_kind(cell))
                    else:
                        nullable[index] = True
    except FileNotFoundError:
        return TableMissing(source=source, reason=f"file {file_path} not found")
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        detail = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        return Unreachable(source=source, reason=f"cannot read {path}: {detail}")
    columns = tuple(
        ObservedColumn(name=name, type=_column_type(kinds[i]), nullable=nullable[i], position=i + 1)
        for i, name in enumerate(names)
    )
    return ObservedTable(source=source, columns=columns)
