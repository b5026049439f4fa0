"""Plain `reconcile` (the cron job) checks the tables of sources that declare `columns` or
`schema_policy`; a plan does not unless --schema; --no-schema skips it on apply."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import reconcile, sql_rows
from sources_api import SourcesApi
from test_schema_cli import execute, postgres_source, snapshot_rows


@pytest.fixture
def csv_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A checked CSV source (schema_policy: fail) and an unchecked one whose file is gone."""
    monkeypatch.setenv("RECONCILER_DATA_DIRS", str(tmp_path))
    root = tmp_path / "loop-sources"
    root.mkdir()
    data = tmp_path / "payments.csv"
    data.write_text("id,amount\n1,10.5\n")
    checked = {
        "name": "payments",
        "source_type": "csv",
        "connection": {"file_path": str(data)},
        "schema_policy": "fail",
    }
    unchecked = {
        "name": "events",
        "source_type": "csv",
        "connection": {"file_path": str(tmp_path / "missing.csv")},
    }
    (root / "payments.yaml").write_text(json.dumps(checked))
    (root / "events.yaml").write_text(json.dumps(unchecked))
    return root, data


def test_apply_checks_declared_sources_and_exits_3_under_fail(
    registry_url: str, csv_sources: tuple[Path, Path]
) -> None:
    sources, data = csv_sources
    first = reconcile(registry=registry_url, sources=sources)
    assert first.exit_code == 0, first.output
    assert "1 first seen" in first.stdout  # payments only: events declares nothing
    assert snapshot_rows(registry_url, "payments") == 1
    assert snapshot_rows(registry_url, "events") == 0

    data.write_text("id,amount\n1,ten\n")
    broken = reconcile(registry=registry_url, sources=sources)
    assert broken.exit_code == 3, broken.output
    assert 'column "amount" type double precision → text (breaking)' in broken.stdout
    assert reconcile("apply", registry=registry_url, sources=sources).exit_code == 3

    skipped = reconcile("--no-schema", registry=registry_url, sources=sources)
    assert skipped.exit_code == 0 and "Schema" not in skipped.stdout

    both = reconcile("--schema", "--no-schema", registry=registry_url, sources=sources)
    assert both.exit_code != 0 and "cannot be combined" in both.stderr


def test_a_plan_does_no_schema_work_unless_asked(
    registry_url: str, csv_sources: tuple[Path, Path]
) -> None:
    sources, data = csv_sources
    assert reconcile(registry=registry_url, sources=sources).exit_code == 0
    data.write_text("id,amount\n1,ten\n")
    before = sql_rows(registry_url, "SELECT count(*) FROM schema_snapshots")
    for args in (("plan",), ("--dry-run",)):
        planned = reconcile(*args, registry=registry_url, sources=sources)
        assert planned.exit_code == 0 and "Schema" not in planned.stdout, planned.output
    asked = reconcile("plan", "--schema", registry=registry_url, sources=sources)
    assert asked.exit_code == 3, asked.output
    assert sql_rows(registry_url, "SELECT count(*) FROM schema_snapshots") == before


def test_a_postgres_table_with_a_contract_is_checked_by_apply(
    registry_url: str, pg_url: str, tmp_path: Path
) -> None:
    execute(pg_url, "CREATE TABLE orders (id bigint NOT NULL, note text)")
    sources = tmp_path / "pg-sources"
    sources.mkdir()
    contract = [
        {"name": "id", "type": "bigint", "nullable": False},
        {"name": "note", "type": "text"},
    ]
    (sources / "orders.yaml").write_text(
        postgres_source(pg_url, "orders", "orders", columns=contract)
    )
    assert reconcile(registry=registry_url, sources=sources).exit_code == 0
    execute(pg_url, "ALTER TABLE orders DROP COLUMN note")
    warned = reconcile(registry=registry_url, sources=sources)
    assert warned.exit_code == 0, warned.output  # schema_policy warn: reported, not failed
    assert 'column "note"' in warned.stdout


@pytest.fixture
def api() -> Iterator[SourcesApi]:
    with SourcesApi.running(token="tok-loop-1") as server:
        yield server


def test_the_sources_api_checks_through_the_registry(
    api: SourcesApi, registry_url: str, csv_sources: tuple[Path, Path]
) -> None:
    """The Sources API reads live schemas itself (GET /v1/sources/{id}/schema): the apply
    checks through it, with snapshots in the state store, instead of skipping."""
    sources, _ = csv_sources
    result = reconcile(
        "--state", registry_url, registry=api.url, sources=sources, RECONCILER_TOKEN="tok-loop-1"
    )
    assert result.exit_code == 0, result.output
    assert "schema checks skipped" not in result.stderr
    assert "Schema:" in result.stdout, result.stdout


def test_an_unreachable_table_is_reported_without_failing_the_apply(
    registry_url: str, tmp_path: Path
) -> None:
    sources = tmp_path / "far-sources"
    sources.mkdir()
    doc = {
        "name": "far",
        "source_type": "postgres",
        "schema_policy": "fail",
        "connection": {"host": "db.example.invalid", "dbname": "d", "user": "u", "table": "t"},
    }
    (sources / "far.yaml").write_text(json.dumps(doc))
    applied = reconcile(registry=registry_url, sources=sources)
    assert applied.exit_code == 0, applied.output  # applied; the check could not be made
    assert "Schema: 1 unreachable" in applied.stdout
    asked = reconcile("--schema", registry=registry_url, sources=sources)
    assert asked.exit_code == 1  # asked for explicitly, a check not made is an error
