"""Introspection against a real PostgreSQL server and real CSV files; nothing is mocked."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from reconciler.models import ObservedColumn, ObservedTable, TableMissing, Unreachable
from reconciler.tableschema.classification import compare
from reconciler.tableschema.introspection import (
    IntrospectionStats,
    PostgresTarget,
    introspect_csv,
    introspect_postgres,
)

SECRET = "hunter2-Xq9-not-for-logs"


def connection(url: str, table: str, **over: Any) -> dict[str, Any]:
    """A resolved manifest connection for a table in the database behind `url`."""
    parts = conninfo_to_dict(url)
    conn: dict[str, Any] = {
        "host": parts.get("host") or "localhost",
        "port": int(parts.get("port") or 5432),
        "dbname": parts["dbname"],
        "user": parts.get("user") or "postgres",
        "password": parts.get("password") or "",
        "schema": "public",
        "table": table,
    }
    conn.update(over)
    return conn


def run(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def shape(table: Any) -> list[tuple[str, str, bool, int]]:
    assert isinstance(table, ObservedTable), table
    return [(c.name, c.type, c.nullable, c.position) for c in table.columns]


@pytest.fixture(autouse=True)
def csv_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CSV files of these tests live in tmp_path: a data directory allowed from outside
    the manifests, as introspection requires (tableschema/reach.py)."""
    monkeypatch.setenv("RECONCILER_DATA_DIRS", str(tmp_path))


@pytest.fixture
def second_db(pg_server_url: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    run(pg_server_url, f'CREATE DATABASE "{name}"')
    parts = conninfo_to_dict(pg_server_url)
    parts["dbname"] = name
    yield psycopg.conninfo.make_conninfo("", **parts)
    run(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_columns_types_nullability_and_positions(pg_url: str) -> None:
    run(
        pg_url,
        """
        CREATE TABLE orders (
            id bigint PRIMARY KEY, gone integer, qty smallint NOT NULL, n integer,
            total numeric(12,2), ratio real, score double precision, code char(3),
            email varchar(50) NOT NULL, note text, ok boolean, day date,
            at timestamp, at_tz timestamp(3) with time zone, tags text[]
        );
        ALTER TABLE orders DROP COLUMN gone;
        """,
    )
    result = introspect_postgres([PostgresTarget("orders", connection(pg_url, "orders"))])
    assert shape(result["orders"]) == [
        ("id", "bigint", False, 1),
        ("qty", "smallint", False, 3),  # attnum keeps the dropped column's gap
        ("n", "integer", True, 4),
        ("total", "numeric(12,2)", True, 5),
        ("ratio", "real", True, 6),
        ("score", "double precision", True, 7),
        ("code", "character(3)", True, 8),
        ("email", "character varying(50)", False, 9),
        ("note", "text", True, 10),
        ("ok", "boolean", True, 11),
        ("day", "date", True, 12),
        ("at", "timestamp without time zone", True, 13),
        ("at_tz", "timestamp(3) with time zone", True, 14),
        ("tags", "text[]", True, 15),
    ]


def test_one_query_per_database_for_all_its_tables(pg_url: str, second_db: str) -> None:
    run(pg_url, "CREATE TABLE a (x int); CREATE TABLE b (y text); CREATE SCHEMA s;")
    run(pg_url, "CREATE TABLE s.c (z date NOT NULL)")
    run(second_db, "CREATE TABLE d (w bigint)")
    targets = [
        PostgresTarget("a", connection(pg_url, "a")),
        PostgresTarget("b", connection(pg_url, "b")),
        PostgresTarget("c", connection(pg_url, "c", schema="s")),
        PostgresTarget("a_again", connection(pg_url, "a")),
        PostgresTarget("nope", connection(pg_url, "nope")),
        PostgresTarget("d", connection(second_db, "d")),
    ]
    stats = IntrospectionStats()
    result = introspect_postgres(targets, stats=stats, max_workers=2)
    assert (stats.databases, stats.connections, stats.queries) == (2, 2, 2)
    assert shape(result["a"]) == shape(result["a_again"]) == [("x", "integer", True, 1)]
    assert shape(result["b"]) == [("y", "text", True, 1)]
    assert shape(result["c"]) == [("z", "date", False, 1)]
    assert shape(result["d"]) == [("w", "bigint", True, 1)]
    assert result["nope"] == TableMissing(source="nope")


def test_missing_table_and_missing_schema(pg_url: str) -> None:
    run(pg_url, "CREATE TABLE other (x int)")
    result = introspect_postgres(
        [
            PostgresTarget("t", connection(pg_url, "absent")),
            PostgresTarget("s", connection(pg_url, "other", schema="no_such_schema")),
        ]
    )
    assert result == {"t": TableMissing(source="t"), "s": TableMissing(source="s")}


def test_unreachable_database_is_reported_without_the_password(pg_url: str) -> None:
    dead = {"host": "127.0.0.1", "port": 9, "dbname": "shop", "user": "app", "table": "t"}
    # A database named like the password makes the server echo the secret back to us.
    echo = connection(pg_url, "t", dbname=SECRET, password=SECRET)
    targets = [
        PostgresTarget("dead1", {**dead, "password": SECRET}),
        PostgresTarget("dead2", {**dead, "password": SECRET, "table": "u"}),
        PostgresTarget("echo", echo),
        PostgresTarget("bad", {"host": "127.0.0.1", "dbname": "x", "user": "u"}),
    ]
    stats = IntrospectionStats()
    result = introspect_postgres(targets, timeout=3, stats=stats)
    assert stats.queries == 0
    for name in ("dead1", "dead2", "echo", "bad"):
        outcome = result[name]
        assert isinstance(outcome, Unreachable), outcome
        assert SECRET not in outcome.reason
        assert "\n" not in outcome.reason and outcome.reason
    assert "127.0.0.1:9/shop" in result["dead1"].reason  # type: ignore[union-attr]
    assert "does not exist" in result["echo"].reason  # type: ignore[union-attr]
    assert "table" in result["bad"].reason  # type: ignore[union-attr]


def test_a_server_that_never_answers_is_bounded_by_the_timeout() -> None:
    with socket.socket() as listener:  # accepts TCP connections, never speaks PostgreSQL
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        conn = {"host": "127.0.0.1", "port": port, "dbname": "db", "user": "u", "table": "t"}
        result = introspect_postgres([PostgresTarget("hang", conn)], timeout=1)
    outcome = result["hang"]
    assert isinstance(outcome, Unreachable) and "timeout" in outcome.reason


def test_rename_detected_end_to_end(pg_url: str) -> None:
    run(pg_url, "CREATE TABLE people (id int NOT NULL, name text, email text)")
    target = PostgresTarget("people", connection(pg_url, "people"))
    before = introspect_postgres([target])["people"]
    run(pg_url, "ALTER TABLE people RENAME COLUMN name TO full_name")
    after = introspect_postgres([target])["people"]
    assert isinstance(before, ObservedTable)
    changes = compare(before.columns, after)
    assert [(c.kind, c.old, c.new, c.severity) for c in changes] == [
        ("column_renamed", "name", "full_name", "breaking")
    ]


def test_drop_and_add_is_not_a_rename_end_to_end(pg_url: str) -> None:
    run(pg_url, "CREATE TABLE people (id int, name text)")
    target = PostgresTarget("people", connection(pg_url, "people"))
    before = introspect_postgres([target])["people"]
    run(pg_url, "ALTER TABLE people DROP COLUMN name, ADD COLUMN full_name text")
    assert isinstance(before, ObservedTable)
    changes = compare(before.columns, introspect_postgres([target])["people"])
    assert [(c.kind, c.column) for c in changes] == [
        ("column_dropped", "name"),
        ("column_added", "full_name"),
    ]


# ---------------------------------------------------------------------------------- CSV


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def csv_shape(outcome: Any) -> list[tuple[str, str, bool, int]]:
    assert isinstance(outcome, ObservedTable), outcome
    return [(c.name, c.type, c.nullable, c.position) for c in outcome.columns]


def test_csv_infers_each_type(tmp_path: Path) -> None:
    path = write(
        tmp_path / "orders.csv",
        "id,big,price,flag,day,at,at_tz,name,blank,mixed_num,mixed_day\n"
        "1,3000000000,1.5,true,2024-01-31,2024-01-31T10:00:00,2024-01-31 10:00:00+02:00,"
        "ann,,1,2024-01-01\n"
        "-2,4,2e3,NO,2024-02-29,2024-02-29 23:59,2024-02-29T23:59:00Z,bob,,2.5,"
        "2024-01-01T08:00\n",
    )
    assert csv_shape(introspect_csv("orders", path)) == [
        ("id", "integer", False, 1),
        ("big", "bigint", False, 2),
        ("price", "double precision", False, 3),
        ("flag", "boolean", False, 4),
        ("day", "date", False, 5),
        ("at", "timestamp without time zone", False, 6),
        ("at_tz", "timestamp with time zone", False, 7),
        ("name", "text", False, 8),
        ("blank", "text", True, 9),
        ("mixed_num", "double precision", False, 10),
        ("mixed_day", "timestamp without time zone", False, 11),
    ]


def test_csv_empty_cells_make_nullable_and_do_not_vote(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "a,b,c\n1,,x\n,t,\n3,f\n")
    assert csv_shape(introspect_csv("t", path)) == [
        ("a", "integer", True, 1),
        ("b", "boolean", True, 2),
        ("c", "text", True, 3),
    ]


def test_csv_values_that_look_alike_but_are_not(tmp_path: Path) -> None:
    path = write(
        tmp_path / "t.csv",
        "bad_date,zip,one_zero,word\n2024-02-30,01234,1,nan\n2024-13-01,99,0,inf\n",
    )
    assert csv_shape(introspect_csv("t", path)) == [
        ("bad_date", "text", False, 1),
        ("zip", "integer", False, 2),
        ("one_zero", "integer", False, 3),  # 1/0 are numbers, not booleans
        ("word", "text", False, 4),
    ]


def test_csv_samples_only_the_first_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "n\n" + "1\n" * 5 + "not a number\n")
    assert csv_shape(introspect_csv("t", path, sample_rows=5)) == [("n", "integer", False, 1)]
    assert csv_shape(introspect_csv("t", path)) == [("n", "text", False, 1)]


def test_csv_missing_file_and_unreadable_file(tmp_path: Path) -> None:
    missing = introspect_csv("t", tmp_path / "absent.csv")
    assert missing == TableMissing(source="t", reason=f"file {tmp_path / 'absent.csv'} not found")
    (tmp_path / "latin1.csv").write_bytes(b"name\n\xe9t\xe9\n")
    outcome = introspect_csv("t", tmp_path / "latin1.csv")
    assert isinstance(outcome, Unreachable) and "latin1.csv" in outcome.reason


def test_csv_rename_detected_by_column_index(tmp_path: Path) -> None:
    before = introspect_csv("t", write(tmp_path / "a.csv", "id,name\n1,ann\n"))
    after = introspect_csv("t", write(tmp_path / "b.csv", "id,full_name\n1,ann\n"))
    assert isinstance(before, ObservedTable)
    assert [c.kind for c in compare(before.columns, after)] == ["column_renamed"]


def test_observed_columns_are_frozen() -> None:
    col = ObservedColumn(name="a", type="integer", nullable=True, position=1)
    with pytest.raises(ValueError):
        col.name = "b"
