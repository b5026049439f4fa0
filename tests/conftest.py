"""Real parts for every test: SQLite files in tmp dirs and a real PostgreSQL server.

The server is started by the test session itself (the `pgserver` wheel ships PostgreSQL's
binaries), so `pytest` on a fresh machine needs nothing else. RECONCILER_TEST_PG points the
suite at an existing server instead. Each test gets its own database.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from click.testing import CliRunner, Result

from reconciler.cli import cli
from reconciler.redaction import REDACTOR

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    """The redactor is process-wide: what one test resolves (`name`, `null`...) must not mask
    words in the next tests' messages, nor make a leak test pass by accident."""
    saved = copy.deepcopy(REDACTOR.__dict__)
    yield
    REDACTOR.__dict__.update(saved)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    url = os.environ.get("RECONCILER_TEST_PG")
    if url:
        yield url
        return
    import pgserver

    # Not under pytest's tmp_path: a concurrent pytest session may prune those directories.
    data = tempfile.mkdtemp(prefix="reconciler-pg-")
    server = pgserver.get_server(data, cleanup_mode="stop")  # type: ignore[attr-defined]  # re-exported, untyped
    yield server.get_uri()
    server.cleanup()
    shutil.rmtree(data, ignore_errors=True)


def with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty database on the real server, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield with_database(pg_server_url, name)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry' / 'registry.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


def insert_raw(url: str, name: str, *, managed_by: str | None = None) -> str:
    """Register a source behind the reconciler's back, as a person or another tool would."""
    record_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    values: tuple[Any, ...] = (
        record_id,
        name,
        "csv",
        json.dumps({"file_path": "/data/by-hand.csv"}),
        "registered by hand",
        json.dumps(["manual"]),
        "alice",
        now.isoformat(),
        managed_by,
        now.isoformat(),
    )
    sql = (
        "INSERT INTO sources (id, name, source_type, connection, description, tags, "
        "registered_by, registered_at, managed_by, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url[len("sqlite:///") :]) as conn:
            conn.execute(sql, values)
    else:
        with psycopg.connect(url) as conn:
            conn.execute(sql.replace("?", "%s"), values)
    return record_id


def snapshot(url: str) -> Any:
    """Every row the registry holds, to prove that a refused run changed nothing."""
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        if not path.exists():
            return None
        with sqlite3.connect(path) as conn:
            tables = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            ]
            return {t: sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"'))) for t in tables}
    with psycopg.connect(url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        return {
            t: sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"').fetchall())) for t in tables
        }


def file_bytes(url: str) -> dict[str, bytes]:
    """The SQLite registry's files (database, WAL) byte for byte; empty for other backends."""
    if not url.startswith("sqlite:///"):
        return {}
    folder = Path(url[len("sqlite:///") :]).parent
    if not folder.exists():
        return {}
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def sql_rows(url: str, query: str) -> list[tuple[Any, ...]]:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url[len("sqlite:///") :]) as conn:
            return conn.execute(query).fetchall()
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


# -- the CLI as a user runs it -------------------------------------------------------

CANARY = "canary-Secret-6f1d2c"

ORDERS = """\
name: orders
source_type: postgres
description: Orders placed in the web shop.
connection:
  host: db.internal
  port: 5432
  dbname: shop
  user: reporting
  password: ${env:ORDERS_DB_PASSWORD}
  table: orders
tags: [sales, pii]
"""

CUSTOMERS = """\
name: customers
source_type: csv
description: Customer export from the CRM.
connection:
  file_path: data/customers.csv
tags: [crm]
"""

EVENTS = """\
name: events
source_type: csv
connection: {file_path: data/events.csv}
"""


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    root = tmp_path / "sources.d"
    (root / "shop").mkdir(parents=True)
    (root / "shop" / "orders.yaml").write_text(ORDERS)
    (root / "customers.yml").write_text(CUSTOMERS)
    (root / "events.yaml").write_text(EVENTS)
    return root


def reconcile(*args: str, registry: str, sources: Path, **env: str) -> Result:
    environment = {"ORDERS_DB_PASSWORD": CANARY, "NO_COLOR": "1", **env}
    result = CliRunner().invoke(
        cli,
        [*args, "--registry", registry, "--sources-dir", str(sources)],
        env=environment,
        catch_exceptions=False,
    )
    assert CANARY not in result.output + result.stderr
    assert "Traceback" not in result.output + result.stderr
    return result


def init_registry(registry: str) -> Result:
    return CliRunner().invoke(cli, ["registry", "init", "--registry", registry])


def sql_exec(url: str, query: str, params: tuple[Any, ...] = ()) -> None:
    """Change the registry behind the reconciler's back (`?` placeholders on both backends)."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url[len("sqlite:///") :]) as conn:
            conn.execute(query, params)
    else:
        with psycopg.connect(url) as conn:
            conn.execute(query.replace("?", "%s"), params)
