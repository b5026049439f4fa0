"""Rows written by other tools that do not decode or fit: listed as unreadable, left alone.

Never a traceback, never the row's content in any output; the other records are planned and
applied as usual unless the unreadable one blocks (a manifest for it, or a prune).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import insert_raw, reconcile, snapshot, sql_exec, sql_rows

from reconciler.cli import cli

LEAK = "row-content-LEAK-7c1e"

# (column, value as JSON text): JSON that does not decode, or decodes to the wrong shape.
SQLITE_CASES = [
    ("connection", '{"password": "' + LEAK + '"'),  # truncated JSON
    ("connection", '["' + LEAK + '"]'),  # not an object
    ("tags", '"' + LEAK + '"'),  # a string, not a list
    ("tags", "[1, 2]"),  # not strings
    ("last_applied", '"' + LEAK + '"'),
    ("fingerprints", '{"connection.password": 5}'),
    ("version", "'" + LEAK + "'"),  # SQLite keeps text in an INTEGER column
    ("registered_at", "'" + LEAK + "'"),
]
POSTGRES_CASES = [
    ("connection", '"' + LEAK + '"'),
    ("connection", "[1]"),
    ("tags", '{"a": "' + LEAK + '"}'),
    ("tags", "[null]"),
    ("last_applied", "[1]"),
    ("fingerprints", '{"connection.password": null}'),
]


def _corrupt(registry: str, name: str, column: str, value: str) -> None:
    if registry.startswith("sqlite"):
        literal = value if column in ("version", "registered_at") else "?"
        params: tuple[str, ...] = () if literal != "?" else (value,)
        sql_exec(registry, f"UPDATE sources SET {column} = {literal} WHERE name = '{name}'", params)
        return
    sql_exec(registry, f"UPDATE sources SET {column} = ?::jsonb WHERE name = '{name}'", (value,))


def _cases(registry: str) -> list[tuple[str, str]]:
    return SQLITE_CASES if registry.startswith("sqlite") else POSTGRES_CASES


def _no_leak(*outputs: str) -> None:
    for text in outputs:
        assert LEAK not in text and "Traceback" not in text


def test_an_unreadable_record_with_a_manifest_blocks_and_is_never_written(
    registry_url: str, sources: Path
) -> None:
    assert reconcile(registry=registry_url, sources=sources).exit_code == 0
    for column, value in _cases(registry_url):
        _corrupt(registry_url, "customers", column, value)
        before = snapshot(registry_url)["sources"]
        plan = reconcile("plan", registry=registry_url, sources=sources)
        _no_leak(plan.output, plan.stderr)
        assert plan.exit_code == 1, (column, value, plan.output)
        assert "cannot be read" in plan.output and "customers" in plan.output
        assert f"{column} " in plan.output  # the column is named, not its content
        applied = reconcile("apply", registry=registry_url, sources=sources)
        _no_leak(applied.output, applied.stderr)
        assert applied.exit_code == 1 and "Nothing was written" in applied.stderr
        assert snapshot(registry_url)["sources"] == before
        assert reconcile("drift", registry=registry_url, sources=sources).exit_code in (0, 2)
        # Put a readable row back for the next case.
        sql_exec(registry_url, "DELETE FROM sources WHERE name = 'customers'")
        assert reconcile(registry=registry_url, sources=sources).exit_code == 0


@pytest.mark.parametrize("prune", [False, True])
def test_an_unreadable_record_without_a_manifest_is_left_alone(
    registry_url: str, sources: Path, prune: bool
) -> None:
    assert reconcile(registry=registry_url, sources=sources).exit_code == 0
    column, value = _cases(registry_url)[0]
    _corrupt(registry_url, "events", column, value)
    (sources / "events.yaml").unlink()
    customers = sources / "customers.yml"
    customers.write_text(customers.read_text().replace("from the CRM", "from the new CRM"))
    events_before = sql_rows(registry_url, "SELECT * FROM sources WHERE name = 'events'")
    args = ("--prune",) if prune else ()
    result = reconcile("apply", *args, registry=registry_url, sources=sources)
    _no_leak(result.output, result.stderr)
    if prune:  # whether it may be deleted cannot be told: the prune blocks, nothing written
        assert result.exit_code == 1 and "events" in result.stderr
        assert "cannot be read" in result.stderr
    else:  # the others are applied as usual
        assert result.exit_code == 0, result.output
        assert "1 updated" in result.stdout
    assert sql_rows(registry_url, "SELECT * FROM sources WHERE name = 'events'") == events_before


def test_an_unreadable_unowned_record_is_not_imported(registry_url: str, tmp_path: Path) -> None:
    CliRunner().invoke(cli, ["registry", "init", "--registry", registry_url])
    insert_raw(registry_url, "legacy")
    column, value = _cases(registry_url)[0]
    _corrupt(registry_url, "legacy", column, value)
    before = snapshot(registry_url)["sources"]
    out = tmp_path / "sources.d"
    for args in (["--name", "legacy"], ["--all"]):
        result = CliRunner().invoke(
            cli, ["import", *args, "--sources-dir", str(out), "--registry", registry_url]
        )
        _no_leak(result.output, result.stderr)
        assert result.exit_code == 1
        assert "'legacy'" in result.stderr and "cannot be read" in result.stderr
    assert snapshot(registry_url)["sources"] == before
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("connection", [LEAK]),
        ("connection", LEAK),
        ("tags", LEAK),  # a string: not to be read as its characters
        ("tags", [1, {"x": LEAK}]),
        ("name", None),
        ("registered_at", LEAK),
    ],
)
def test_a_malformed_record_from_the_sources_api_is_one_clear_error(
    tmp_path: Path, sources: Path, field: str, value: object
) -> None:
    from sources_api import SourcesApi

    with SourcesApi.running() as api:
        state = f"sqlite:///{tmp_path / 'state.db'}"
        first = reconcile("--state", state, registry=api.url, sources=sources)
        assert first.exit_code == 0, first.output
        record = api.by_name("customers")
        record[field] = value
        result = reconcile("plan", "--state", state, registry=api.url, sources=sources)
    _no_leak(result.output, result.stderr)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: reading sources: {api.url} returned a record that does not fit the "
        f"Sources API (id '{record['id']}')\n"
    )
