"""`reconcile schema` end to end: real PostgreSQL tables, real CSV files, both registries.

Each test changes a live table with plain SQL (ALTER TABLE, DROP TABLE) between runs of
the real command line and checks what is reported, what is recorded and the exit code.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import Result
from conftest import CANARY, reconcile, snapshot, sql_rows
from psycopg.conninfo import conninfo_to_dict


def execute(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def postgres_source(url: str, name: str, table: str, **extra: Any) -> str:
    """A manifest for `table` in the database behind `url` (pgserver: a socket directory)."""
    parts = conninfo_to_dict(url)
    connection = {
        "host": parts.get("host") or "localhost",
        "port": int(parts.get("port") or 5432),
        "dbname": parts["dbname"],
        "user": parts.get("user") or "postgres",
        # The server trusts local connections; the reference still has to resolve, and its
        # value must never be printed.
        "password": "${env:ORDERS_DB_PASSWORD}",
        "table": table,
    }
    connection.update(extra.pop("connection", {}))
    doc = {"name": name, "source_type": "postgres", "connection": connection, **extra}
    return json.dumps(doc)  # JSON is YAML


@pytest.fixture(autouse=True)
def csv_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CSV files of these tests live in tmp_path: a data directory allowed from outside
    the manifests, as introspection requires (tableschema/reach.py)."""
    monkeypatch.setenv("RECONCILER_DATA_DIRS", str(tmp_path))


@pytest.fixture
def tables(pg_url: str) -> str:
    execute(
        pg_url,
        "CREATE TABLE orders (id bigint NOT NULL, qty smallint, note text)",
        "CREATE TABLE customers (id integer NOT NULL, email varchar(50) NOT NULL)",
    )
    return pg_url


@pytest.fixture
def sources_dir(tmp_path: Path) -> Path:
    root = tmp_path / "schema-sources"
    root.mkdir()
    return root


def write(sources_dir: Path, name: str, manifest: str) -> None:
    (sources_dir / f"{name}.yaml").write_text(manifest)


def schema(registry: str, sources: Path, *args: str, **env: str) -> Result:
    return reconcile("schema", *args, registry=registry, sources=sources, **env)


def as_json(result: Result) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def by_name(result: Result) -> dict[str, Any]:
    return {s["name"]: s for s in as_json(result)["schema"]["sources"]}


def snapshot_rows(registry: str, name: str) -> int:
    rows = sql_rows(registry, f"SELECT COUNT(*) FROM schema_snapshots WHERE name_key = '{name}'")
    return int(rows[0][0])


def test_first_run_records_then_a_drop_fails_until_accepted(
    registry_url: str, tables: str, sources_dir: Path
) -> None:
    write(sources_dir, "orders", postgres_source(tables, "orders", "orders", schema_policy="fail"))
    first = schema(registry_url, sources_dir)
    assert first.exit_code == 0, first.output
    assert "1 first seen" in first.stdout and "1 snapshot recorded" in first.stdout
    assert snapshot_rows(registry_url, "orders") == 1

    execute(tables, "ALTER TABLE orders DROP COLUMN note")
    dropped = schema(registry_url, sources_dir)
    assert dropped.exit_code == 3, dropped.output
    assert 'column "note" dropped (breaking)' in dropped.stdout
    assert "[schema_policy: fail]" in dropped.stdout
    assert "reconcile schema --accept orders" in dropped.stdout
    assert "Breaking under schema_policy: fail (exit 3): orders." in dropped.stdout

    again = schema(registry_url, sources_dir)  # still reported; the history is not duplicated
    assert again.exit_code == 3
    assert 'column "note" dropped (breaking)' in again.stdout
    assert "0 snapshots recorded" in again.stdout
    assert snapshot_rows(registry_url, "orders") == 2

    accepted = schema(registry_url, sources_dir, "--accept", "orders", RECONCILER_ACTOR="alice")
    assert accepted.exit_code == 0, accepted.output
    assert "orders (postgres): breaking change accepted by alice" in accepted.stdout
    assert "1 snapshot recorded" in accepted.stdout  # the acceptance counts
    assert snapshot_rows(registry_url, "orders") == 2  # the observation itself was marked
    rows = sql_rows(registry_url, "SELECT accepted_by FROM schema_snapshots ORDER BY seq")
    assert [r[0] for r in rows] == ["auto", "alice"]

    after = schema(registry_url, sources_dir)
    assert after.exit_code == 0
    assert after.stdout.startswith("Schema: 1 unchanged (1 source, 1 database query")


def test_breaking_under_warn_exits_0_and_2_with_detailed_exitcode(
    registry_url: str, tables: str, sources_dir: Path
) -> None:
    write(sources_dir, "orders", postgres_source(tables, "orders", "orders"))
    schema(registry_url, sources_dir)
    execute(tables, "ALTER TABLE orders DROP COLUMN note")
    warned = schema(registry_url, sources_dir)
    assert warned.exit_code == 0
    assert 'column "note" dropped (breaking)' in warned.stdout
    assert "exit 3" not in warned.stdout
    detailed = schema(registry_url, sources_dir, "--detailed-exitcode")
    assert detailed.exit_code == 2


def test_widening_is_reported_once_and_never_fails(
    registry_url: str, tables: str, sources_dir: Path
) -> None:
    write(sources_dir, "orders", postgres_source(tables, "orders", "orders", schema_policy="fail"))
    schema(registry_url, sources_dir)
    execute(tables, "ALTER TABLE orders ALTER COLUMN qty TYPE bigint")
    widened = schema(registry_url, sources_dir, "--output", "json")
    assert widened.exit_code == 0, widened.output
    orders = by_name(widened)["orders"]
    assert orders["status"] == "changed"
    assert [(f["kind"], f["column"], f["severity"], f["against"]) for f in orders["findings"]] == [
        ("type_widened", "qty", "info", "snapshot")
    ]
    assert orders["findings"][0]["message"] == (
        'column "qty" type smallint → bigint (widened, non-breaking)'
    )
    next_run = schema(registry_url, sources_dir, "--output", "json")
    assert by_name(next_run)["orders"]["status"] == "unchanged"
    # Writers see the same widening as breaking.
    execute(tables, "ALTER TABLE orders ALTER COLUMN id TYPE numeric(30,0)")
    producer = schema(registry_url, sources_dir, "--perspective", "producer")
    assert producer.exit_code == 3
    assert 'column "id" type bigint → numeric(30,0) (widened, breaking for producers)' in (
        producer.stdout
    )


def test_rename_is_reported_as_a_rename(registry_url: str, tables: str, sources_dir: Path) -> None:
    write(sources_dir, "orders", postgres_source(tables, "orders", "orders", schema_policy="fail"))
    schema(registry_url, sources_dir)
    execute(tables, "ALTER TABLE orders RENAME COLUMN note TO comment")
    renamed = schema(registry_url, sources_dir)
    assert renamed.exit_code == 3
    assert 'column "note" renamed to "comment" (breaking)' in renamed.stdout
    assert "dropped" not in renamed.stdout and "added" not in renamed.stdout


def test_nullability_from_the_readers_side(
    registry_url: str, tables: str, sources_dir: Path
) -> None:
    write(sources_dir, "orders", postgres_source(tables, "orders", "orders", schema_policy="fail"))
    schema(registry_url, sources_dir)
    execute(tables, "ALTER TABLE orders ALTER COLUMN id DROP NOT NULL")
    result = schema(registry_url, sources_dir)
    assert result.exit_code == 3
    assert 'column "id" NOT NULL → NULL (breaking for consumers)' in result.stdout


def test_contract_mismatch_then_contract_updated(
    registry_url: str, tables: str, sources_dir: Path
) -> None:
    contract: list[dict[str, Any]] = [
        {"name": "id", "type": "int8", "nullable": False},
        {"name": "qty", "type": "int"},
        {"name": "note", "type": "text"},
    ]
    manifest = postgres_source(tables, "orders", "orders", schema_policy="fail", columns=contract)
    write(sources_dir, "orders", manifest)
    mismatch = schema(registry_url, sources_dir)
    # smallint live where the contract promises integer: narrower than declared.
    assert mismatch.exit_code == 3, mismatch.output
    assert 'contract: column "qty" type int → smallint (breaking)' in mismatch.stdout
    assert "written into its columns contract" in mismatch.stdout

    contract[1]["type"] = "smallint"
    manifest = postgres_source(tables, "orders", "orders", schema_policy="fail", columns=contract)
    write(sources_dir, "orders", manifest)
    assert schema(registry_url, sources_dir).exit_code == 0

    # A drop written into the contract is accepted through it: no --accept needed.
    execute(tables, "ALTER TABLE orders DROP COLUMN note")
    assert schema(registry_url, sources_dir).exit_code == 3  # the contract still has `note`
    manifest = postgres_source(
        tables, "orders", "orders", schema_policy="fail", columns=contract[:2]
    )
    write(sources_dir, "orders", manifest)
    updated = schema(registry_url, sources_dir, "--output", "json")
    assert updated.exit_code == 0, updated.output
    orders = by_name(updated)["orders"]
    assert orders["status"] == "accepted" and orders["accepted_by"] == "contract"
    assert schema(registry_url, sources_dir).stdout.startswith("Schema: 1 unchanged")


def test_missing_table(registry_url: str, tables: str, sources_dir: Path) -> None:
    write(sources_dir, "orders", postgres_source(tables, "orders", "orders", schema_policy="fail"))
    schema(registry_url, sources_dir)
    execute(tables, "DROP TABLE orders")
    missing = schema(registry_url, sources_dir)
    assert missing.exit_code == 3
    assert "✗ orders (postgres)" in missing.stdout
    assert "table not found (breaking)" in missing.stdout


def test_unreachable_and_unresolvable_are_reported_with_the_others(
    registry_url: str, tables: str, sources_dir: Path
) -> None:
    write(sources_dir, "orders", postgres_source(tables, "orders", "orders", schema_policy="fail"))
    closed = postgres_source(
        tables, "legacy", "legacy", connection={"host": "127.0.0.1", "port": 9}
    )
    write(sources_dir, "legacy", closed)
    no_secret = postgres_source(
        tables, "customers", "customers", connection={"password": "${env:CRM_DB_PASSWORD}"}
    )
    write(sources_dir, "customers", no_secret)
    result = schema(registry_url, sources_dir, "--timeout", "3")
    assert result.exit_code == 1, result.output
    assert "? legacy (postgres)" in result.stdout
    assert "? cannot introspect: postgres@127.0.0.1:9/" in result.stdout
    assert "127.0.0.1:9" in result.stdout
    assert "environment variable CRM_DB_PASSWORD is not set" in result.stdout
    assert "2 unreachable, 1 first seen" in result.stdout  # orders was still checked
    assert CANARY not in result.output
    as_json_result = schema(registry_url, sources_dir, "--timeout", "3", "--output", "json")
    legacy = by_name(as_json_result)["legacy"]
    assert legacy["status"] == "unreachable"
    assert legacy["findings"][0]["kind"] == "unreachable"
    assert CANARY not in as_json_result.stdout


def test_one_query_per_database(
    registry_url: str, tables: str, sources_dir: Path, pg_server_url: str
) -> None:
    other = f"t_{uuid.uuid4().hex[:12]}"
    execute(pg_server_url, f'CREATE DATABASE "{other}"')
    try:
        other_url = psycopg.conninfo.make_conninfo(tables, dbname=other)
        execute(other_url, "CREATE TABLE events (at timestamp NOT NULL, kind text)")
        for name in ("orders", "customers"):
            write(sources_dir, name, postgres_source(tables, name, name))
        write(sources_dir, "ghost", postgres_source(tables, "ghost", "no_such_table"))
        write(sources_dir, "events", postgres_source(other_url, "events", "events"))
        result = schema(registry_url, sources_dir, "--output", "json")
        report = as_json(result)["schema"]
        assert (report["databases"], report["queries"]) == (2, 2)
        statuses = {s["name"]: s["status"] for s in report["sources"]}
        assert statuses == {
            "orders": "first",
            "customers": "first",
            "ghost": "missing",
            "events": "first",
        }
    finally:
        execute(pg_server_url, f'DROP DATABASE IF EXISTS "{other}" WITH (FORCE)')


def test_csv_header_and_type_changes(registry_url: str, sources_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "payments.csv"
    data.write_text("id,amount,paid_on\n1,10.5,2024-01-02\n2,3,2024-01-03\n")
    manifest = {
        "name": "payments",
        "source_type": "csv",
        "connection": {"file_path": str(data)},
        "schema_policy": "fail",
    }
    write(sources_dir, "payments", json.dumps(manifest))
    assert schema(registry_url, sources_dir).exit_code == 0

    data.write_text("id,amount,paid_on,country\n1,10.5,2024-01-02,FR\n")
    added = schema(registry_url, sources_dir)
    assert added.exit_code == 0
    assert '+ column "country" added (text, NOT NULL) (non-breaking)' in added.stdout

    data.write_text("id,amount,paid_on,country\n1,ten,2024-01-02,FR\n")
    retyped = schema(registry_url, sources_dir)
    assert retyped.exit_code == 3
    assert 'column "amount" type double precision → text (breaking)' in retyped.stdout

    data.unlink()
    gone = schema(registry_url, sources_dir)
    assert gone.exit_code == 3 and f"file {data} not found (breaking)" in gone.stdout


def test_markdown_and_name_filter(registry_url: str, tables: str, sources_dir: Path) -> None:
    write(sources_dir, "orders", postgres_source(tables, "orders", "orders", schema_policy="fail"))
    write(sources_dir, "customers", postgres_source(tables, "customers", "customers"))
    schema(registry_url, sources_dir)
    execute(tables, "ALTER TABLE orders DROP COLUMN note", "ALTER TABLE customers DROP COLUMN id")
    only = schema(registry_url, sources_dir, "--name", "customers", "--output", "markdown")
    assert only.exit_code == 0
    assert "#### Schema changes" in only.stdout
    row = '| <code>customers</code> | ❌ breaking | column "id" dropped \\(breaking\\) |'
    assert row in only.stdout
    assert "orders" not in only.stdout


def test_bad_names_and_flags_are_errors(registry_url: str, sources_dir: Path) -> None:
    write(
        sources_dir,
        "a",
        json.dumps({"name": "a", "source_type": "csv", "connection": {"file_path": "a.csv"}}),
    )
    before = snapshot(registry_url)
    unknown = schema(registry_url, sources_dir, "--accept", "nope")
    assert unknown.exit_code == 1 and "no source named 'nope'" in unknown.stderr
    assert snapshot(registry_url) == before  # refused before the registry was created
    both = schema(registry_url, sources_dir, "--accept", "a", "--no-record")
    assert both.exit_code == 1 and "--no-record" in both.stderr


def test_plan_and_apply_with_schema(registry_url: str, tables: str, sources_dir: Path) -> None:
    write(sources_dir, "orders", postgres_source(tables, "orders", "orders", schema_policy="fail"))
    applied = reconcile("apply", "--schema", registry=registry_url, sources=sources_dir)
    assert applied.exit_code == 0, applied.output
    assert "Apply complete" in applied.stdout and "1 first seen" in applied.stdout
    assert snapshot_rows(registry_url, "orders") == 1

    execute(tables, "ALTER TABLE orders DROP COLUMN note")
    planned = reconcile("--dry-run", "--schema", registry=registry_url, sources=sources_dir)
    assert planned.exit_code == 3, planned.output
    assert "No changes." in planned.stdout
    assert 'column "note" dropped (breaking)' in planned.stdout
    assert "Snapshots not recorded" in planned.stdout
    assert snapshot_rows(registry_url, "orders") == 1  # a plan writes nothing

    as_json_plan = reconcile(
        "plan", "--schema", "--output", "json", registry=registry_url, sources=sources_dir
    )
    assert as_json_plan.exit_code == 3
    assert as_json(as_json_plan)["schema"]["failing"] == ["orders"]
    without = reconcile("plan", registry=registry_url, sources=sources_dir)
    assert without.exit_code == 0 and "Schema" not in without.stdout

    again = reconcile("apply", "--schema", registry=registry_url, sources=sources_dir)
    assert again.exit_code == 3  # the records were reconciled; the schema still fails
    assert snapshot_rows(registry_url, "orders") == 2


def test_no_record_creates_nothing(tables: str, sources_dir: Path, tmp_path: Path) -> None:
    registry = f"sqlite:///{tmp_path / 'new' / 'registry.db'}"
    write(sources_dir, "orders", postgres_source(tables, "orders", "orders"))
    looked = schema(registry, sources_dir, "--no-record", "--output", "json", "--progress")
    assert looked.exit_code == 0, looked.output
    assert "introspecting sources: 1/1 (100%)" in looked.stderr  # forced: a log line
    assert as_json(looked)["schema"]["recorded"] is None
    planned = reconcile("plan", "--schema", registry=registry, sources=sources_dir)
    assert planned.exit_code == 0 and "1 first seen" in planned.stdout
    assert not (tmp_path / "new").exists()
