"""`reconcile schema` through the Sources API: `GET /v1/sources/{id}/schema`, no database
credentials on the runner, snapshots in the state store under the registry's key.

Against real Sources API servers on 127.0.0.1, the state store on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from conftest import reconcile, sql_rows
from sources_api import SourcesApi

TOKEN = "tok-Schema-6b2d"
COLUMNS = [
    {"name": "id", "type": "integer"},
    {"name": "email", "type": "character varying"},
    {"name": "note", "type": "text"},
]


@pytest.fixture
def api() -> Iterator[SourcesApi]:
    with SourcesApi.running(token=TOKEN) as server:
        yield server


def run(api: SourcesApi, state: str, sources: Path, *args: str, **env: str) -> Result:
    env = {"RECONCILER_TOKEN": TOKEN, **env}
    return reconcile(*args, "--state", state, registry=api.url, sources=sources, **env)


def by_name(result: Result) -> dict[str, Any]:
    return {s["name"]: s for s in json.loads(result.stdout)["schema"]["sources"]}


def test_schema_is_read_through_the_api_and_kept_in_the_state_store(
    api: SourcesApi, registry_url: str, sources: Path
) -> None:
    state = registry_url
    path = sources / "customers.yml"
    path.write_text(path.read_text() + "schema_policy: fail\n")
    assert run(api, state, sources).exit_code == 0
    api.schemas["customers"] = list(COLUMNS)
    api.schemas["orders"] = [{"name": "id", "type": "bigint"}]
    api.unreachable.add("events")

    # No database credentials: the orders password is not even set.
    first = run(api, state, sources, "schema", "-o", "json", ORDERS_DB_PASSWORD="")
    assert first.exit_code == 1, first.output  # an unreachable source is an error
    seen = by_name(first)
    assert seen["customers"]["status"] == "first" and seen["orders"]["status"] == "first"
    assert seen["events"]["status"] == "unreachable"
    (finding,) = seen["events"]["findings"]
    assert "backend is unreachable" in finding["message"]
    rows = sql_rows(state, "SELECT DISTINCT registry FROM schema_snapshots")
    assert rows == [(api.url,)]  # keyed by registry
    api.unreachable.clear()

    api.schemas["customers"] = [c for c in COLUMNS if c["name"] != "note"]
    dropped = run(api, state, sources, "schema")
    assert dropped.exit_code == 3, dropped.output
    assert 'column "note" dropped (breaking)' in dropped.stdout
    assert run(api, state, sources, "schema", "--accept", "customers").exit_code == 0
    assert run(api, state, sources, "schema").exit_code == 0


def test_nullability_is_not_judged_and_no_drop_reads_as_a_rename(
    api: SourcesApi, registry_url: str, sources: Path
) -> None:
    """The API reports neither nullability nor positions: a contract's NOT NULL is never
    contradicted, and a column dropped while another of its type is added is a drop."""
    state = registry_url
    path = sources / "customers.yml"
    contract = "columns:\n  - {name: id, type: integer, nullable: false}\n"
    path.write_text(path.read_text() + contract)
    assert run(api, state, sources).exit_code == 0
    api.schemas["customers"] = [{"name": "id", "type": "integer"}, {"name": "a", "type": "text"}]
    first = run(api, state, sources, "schema", "--name", "customers", "-o", "json")
    assert by_name(first)["customers"]["findings"] == [], first.stdout
    api.schemas["customers"] = [{"name": "id", "type": "integer"}, {"name": "b", "type": "text"}]
    second = run(api, state, sources, "schema", "--name", "customers")
    assert 'column "a" dropped (breaking)' in second.stdout, second.stdout
    assert "renamed" not in second.stdout and "NULL" not in second.stdout.replace(
        "(text, NULL)", ""
    )


def test_one_state_store_keeps_each_registrys_snapshots_apart(
    registry_url: str, sources: Path
) -> None:
    state = registry_url
    with SourcesApi.running(token=TOKEN) as one, SourcesApi.running(token=TOKEN) as two:
        for api, columns in ((one, COLUMNS), (two, COLUMNS[:1])):
            assert run(api, state, sources).exit_code == 0
            api.schemas["customers"] = list(columns)
            first = run(api, state, sources, "schema", "--name", "customers", "-o", "json")
            assert by_name(first)["customers"]["status"] == "first", first.stdout
        rows = sql_rows(state, "SELECT registry, COUNT(*) FROM schema_snapshots GROUP BY registry")
        assert sorted(rows) == sorted([(one.url, 1), (two.url, 1)])
