"""`reconcile import`: records registered by hand become managed manifests, secrets excluded."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from conftest import init_registry, reconcile, sql_exec, sql_rows

from reconciler.cli import cli

HAND_SECRET = "hand-Made-Secret-41"


def register_by_hand(url: str) -> None:
    init_registry(url)
    connection = {
        "host": "legacy-db",
        "port": 5432,
        "dbname": "crm",
        "user": "etl",
        "password": HAND_SECRET,
        "table": "accounts",
    }
    query = (
        "INSERT INTO sources (id, name, source_type, connection, description, tags, "
        "registered_by, registered_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    if not url.startswith("sqlite"):
        query = query.replace("?, ?, ?, ?, ?, ?", "?::uuid, ?, ?, ?::jsonb, ?, ?::jsonb", 1)
    sql_exec(
        url,
        query,
        (
            "7d8d6a3e-8f7e-4d3b-9a55-0c3b1a0f9e11",
            "Legacy Accounts",
            "postgres",
            json.dumps(connection),
            "CRM accounts, registered by hand",
            json.dumps(["crm", "legacy"]),
            "alice",
            "2026-01-01T00:00:00+00:00",
            "2026-01-01T00:00:00+00:00",
        ),
    )


def test_import_writes_manifest_and_adopts(registry_url: str, tmp_path: Path) -> None:
    register_by_hand(registry_url)
    sources = tmp_path / "sources.d"
    result = CliRunner().invoke(
        cli, ["import", "--all", "--sources-dir", str(sources), "--registry", registry_url]
    )
    assert result.exit_code == 0, result.output
    assert HAND_SECRET not in result.output
    assert "set RECONCILER_LEGACY_ACCOUNTS_PASSWORD" in result.stdout
    written = (sources / "Legacy_Accounts.yaml").read_text()
    assert HAND_SECRET not in written
    assert "password: ${env:RECONCILER_LEGACY_ACCOUNTS_PASSWORD}" in written
    assert (
        "# Set RECONCILER_LEGACY_ACCOUNTS_PASSWORD to this source's connection.password" in written
    )
    assert sql_rows(registry_url, "SELECT managed_by FROM sources") == [("reconciler",)]

    # The adopted record is in sync as soon as the variable holds the live secret...
    env = {"RECONCILER_LEGACY_ACCOUNTS_PASSWORD": HAND_SECRET}
    plan = reconcile(
        "--dry-run", "--detailed-exitcode", registry=registry_url, sources=sources, **env
    )
    assert plan.exit_code == 0, plan.stdout
    # ...and a different value is a rotation, shown without printing either secret.
    other = reconcile(
        "--dry-run",
        registry=registry_url,
        sources=sources,
        RECONCILER_LEGACY_ACCOUNTS_PASSWORD="another-secret",
    )
    assert "~ connection.password: (sensitive, changed)" in other.stdout
    assert HAND_SECRET not in other.stdout and "another-secret" not in other.stdout


def test_import_refuses_owned_records_and_unknown_names(
    registry_url: str, tmp_path: Path, sources: Path
) -> None:
    reconcile(registry=registry_url, sources=sources)
    owned = CliRunner().invoke(
        cli,
        [
            "import",
            "--name",
            "orders",
            "--sources-dir",
            str(tmp_path / "x"),
            "--registry",
            registry_url,
        ],
    )
    assert owned.exit_code == 1
    assert owned.stderr == "error: source 'orders' is already managed by 'reconciler'\n"
    missing = CliRunner().invoke(
        cli,
        [
            "import",
            "--name",
            "nope",
            "--sources-dir",
            str(tmp_path / "x"),
            "--registry",
            registry_url,
        ],
    )
    assert missing.stderr == "error: no source named 'nope' in the registry; nothing was imported\n"
    neither = CliRunner().invoke(
        cli, ["import", "--sources-dir", str(tmp_path / "x"), "--registry", registry_url]
    )
    assert (
        neither.exit_code == 1 and "give either --name NAME (repeatable) or --all" in neither.stderr
    )


def test_a_failed_adoption_leaves_no_manifest_file(tmp_path: Path) -> None:
    """Files are staged beside their place and moved in only once the adoption committed:
    a registry that refuses the write leaves neither a manifest nor a temporary file."""
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    register_by_hand(url)
    sql_exec(
        url,
        "CREATE TRIGGER refuse BEFORE UPDATE ON sources BEGIN SELECT RAISE(ABORT, 'no'); END",
        (),
    )
    sources = tmp_path / "sources.d"
    sources.mkdir()
    result = CliRunner().invoke(
        cli, ["import", "--all", "--sources-dir", str(sources), "--registry", url]
    )
    assert result.exit_code == 1, result.output
    assert list(sources.iterdir()) == []
    assert sql_rows(url, "SELECT managed_by FROM sources") == [(None,)]
