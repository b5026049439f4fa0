"""End to end through the CLI, on both backends: the sequence a new user walks through."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import (
    CANARY,
    EVENTS,
    file_bytes,
    init_registry,
    insert_raw,
    reconcile,
    snapshot,
    sql_rows,
)

from reconciler.backends.sql.migrations import migrations
from reconciler.cli import cli


def test_dry_run_shows_creates_and_writes_nothing(registry_url: str, sources: Path) -> None:
    before = snapshot(registry_url)
    result = reconcile("--dry-run", registry=registry_url, sources=sources)
    assert result.exit_code == 0
    assert "+ create customers (csv)" in result.stdout
    assert "+ create orders (postgres)" in result.stdout
    assert '+ connection.password: "${env:ORDERS_DB_PASSWORD}"' in result.stdout
    assert "Plan: 3 to create, 0 to update, 0 to delete." in result.stdout
    assert snapshot(registry_url) == before


def test_apply_then_plan_is_empty(registry_url: str, sources: Path) -> None:
    applied = reconcile(registry=registry_url, sources=sources)
    assert applied.exit_code == 0, applied.output
    assert "Apply complete: 3 created, 0 updated, 0 deleted" in applied.stdout
    again = reconcile("--dry-run", "--detailed-exitcode", registry=registry_url, sources=sources)
    assert again.exit_code == 0
    assert (
        again.stdout
        == "No changes. The registry matches " + str(sources) + " (3 sources in sync).\n"
    )
    # The registry holds the resolved secret (the service needs it); no output ever shows it.
    rows = sql_rows(registry_url, "SELECT connection FROM sources WHERE name = 'orders'")
    stored = rows[0][0] if isinstance(rows[0][0], dict) else json.loads(rows[0][0])
    assert stored["password"] == CANARY
    assert stored["port"] == 5432 and stored["schema"] == "public"


def test_edit_one_description_is_one_update_of_one_field(registry_url: str, sources: Path) -> None:
    reconcile(registry=registry_url, sources=sources)
    path = sources / "customers.yml"
    path.write_text(
        path.read_text().replace("Customer export from the CRM.", "CRM export, nightly.")
    )
    result = reconcile("plan", "--detailed-exitcode", registry=registry_url, sources=sources)
    assert result.exit_code == 2
    assert result.stdout.count("~ update") == 1
    assert "~ update customers (csv)" in result.stdout
    assert (
        '~ description: "Customer export from the CRM." → "CRM export, nightly."' in result.stdout
    )
    assert result.stdout.count(" → ") == 1
    assert "Plan: 0 to create, 1 to update, 0 to delete." in result.stdout
    applied = reconcile("apply", registry=registry_url, sources=sources)
    assert "1 updated" in applied.stdout
    versions = dict(sql_rows(registry_url, "SELECT name, version FROM sources"))
    assert versions == {"customers": 2, "orders": 1, "events": 1}


def test_prune_deletes_exactly_the_removed_manifest_and_spares_unowned(
    registry_url: str, sources: Path
) -> None:
    reconcile(registry=registry_url, sources=sources)
    insert_raw(registry_url, "hand_made")
    (sources / "events.yaml").unlink()

    plan = reconcile("--dry-run", registry=registry_url, sources=sources)
    assert "Unmanaged records (not owned by 'reconciler', never touched):" in plan.stdout
    assert "? hand_made  (no owner)" in plan.stdout
    assert "Owned records without a manifest (deleted only with --prune):" in plan.stdout
    assert "· events" in plan.stdout
    assert "No changes." in plan.stdout  # without --prune nothing is deleted

    pruned = reconcile("--prune", registry=registry_url, sources=sources)
    assert pruned.exit_code == 0
    assert "- delete events (csv)" in pruned.stdout
    assert "Apply complete: 0 created, 0 updated, 1 deleted" in pruned.stdout
    names = sorted(r[0] for r in sql_rows(registry_url, "SELECT name FROM sources"))
    assert names == ["customers", "hand_made", "orders"]


def test_other_owner_is_unmanaged_and_its_records_survive(registry_url: str, sources: Path) -> None:
    reconcile(registry=registry_url, sources=sources)
    team_b = reconcile("--owner", "team-b", "--prune", registry=registry_url, sources=sources / "x")
    assert team_b.exit_code == 1  # missing dir is an error, not "delete nothing"
    empty = sources.parent / "empty.d"
    empty.mkdir()
    result = reconcile("--owner", "team-b", "--prune", registry=registry_url, sources=empty)
    assert result.exit_code == 0
    assert "Apply complete: 0 created, 0 updated, 0 deleted" in result.stdout
    assert "? orders  (reconciler)" in result.stdout
    assert len(sql_rows(registry_url, "SELECT name FROM sources")) == 3


def test_name_taken_by_unowned_record_blocks_the_apply(registry_url: str, sources: Path) -> None:
    init_registry(registry_url)
    insert_raw(registry_url, "Orders")  # names are case-insensitive
    plan = reconcile("--dry-run", registry=registry_url, sources=sources)
    assert "✗ orders: a registry record with this name already exists" in plan.stdout
    applied = reconcile(registry=registry_url, sources=sources)
    assert applied.exit_code == 1
    expected = "error: cannot apply: orders: a registry record with this name already exists"
    assert applied.stderr.startswith(expected)
    assert "is not managed by reconciler" in applied.stderr
    assert sql_rows(registry_url, "SELECT name FROM sources") == [("Orders",)]
    assert sql_rows(registry_url, "SELECT outcome, created FROM runs") == [("failed", 0)]


def test_invalid_manifests_write_nothing_on_either_backend(
    registry_url: str, sources: Path
) -> None:
    reconcile(registry=registry_url, sources=sources)
    before, before_bytes = snapshot(registry_url), file_bytes(registry_url)
    (sources / "bad.yaml").write_text("name: bad\nsource_type: mysql\nconnection: {}\n")
    (sources / "worse.yaml").write_text(
        "name: worse\nsource_type: postgres\nconnection:\n  host: h\n  port: abc\n"
        "  dbname: d\n  user: u\n  table: t\n  password: hunter2\n"
    )
    (sources / "events.yaml").write_text(EVENTS.replace("events", "events2") + "colour: blue\n")
    result = reconcile(registry=registry_url, sources=sources)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert (
        f'{sources}/bad.yaml:2: source_type: unknown type "mysql" (expected one of: csv, '
        "postgres, or PROVIDER/TYPE for a provider registry, PROVIDER one of: "
        "airbyte-agents, airweave, splendor, streamkap)" in lines
    )
    assert f"{sources}/events.yaml:4: unknown key 'colour'" in lines
    assert f"{sources}/worse.yaml:5: connection.port: must be a port number (1-65535)" in lines
    assert (
        f"{sources}/worse.yaml:9: connection.password: must be a ${{env:NAME}} or ${{file:PATH}} "
        "reference, not a literal secret" in lines
    )
    assert "hunter2" not in result.stderr + result.stdout
    assert lines[-1] == "error: 4 problems in manifests; nothing was written"
    assert snapshot(registry_url) == before
    assert file_bytes(registry_url) == before_bytes


def test_missing_secret_fails_before_any_write(registry_url: str, sources: Path) -> None:
    init_registry(registry_url)
    before = sql_rows(registry_url, "SELECT count(*) FROM sources")
    result = CliRunner().invoke(
        cli,
        ["--registry", registry_url, "--sources-dir", str(sources)],
        env={"ORDERS_DB_PASSWORD": None, "NO_COLOR": "1"},
    )
    assert result.exit_code == 1
    assert (
        "error: source 'orders' connection.password: environment variable ORDERS_DB_PASSWORD "
        "is not set" in result.stderr
    )
    assert sql_rows(registry_url, "SELECT count(*) FROM sources") == before
    # Secrets are resolved before the registry is opened for writing: not even a run is logged.
    assert sql_rows(registry_url, "SELECT outcome FROM runs") == []


def test_json_output_is_versioned_and_redacts(registry_url: str, sources: Path) -> None:
    result = reconcile("--dry-run", "--output", "json", registry=registry_url, sources=sources)
    report = json.loads(result.stdout)
    assert report["format_version"] == "1.0"
    assert report["kind"] == "plan"
    assert report["summary"] == {
        "create": 3,
        "update": 0,
        "replace": 0,
        "delete": 0,
        "noop": 0,
        "unmanaged": 0,
        "orphaned": 0,
        "blocked": 0,
        "drifted": 0,
        "conflicts": 0,
    }
    orders = next(c for c in report["changes"] if c["name"] == "orders")
    assert {
        "path": "connection.password",
        "old": None,
        "new": "${env:ORDERS_DB_PASSWORD}",
    } in orders["fields"]
    applied = json.loads(reconcile("-o", "json", registry=registry_url, sources=sources).stdout)
    assert applied["kind"] == "apply" and applied["applied"]["created"] == 3


def test_markdown_output_is_a_pr_comment(registry_url: str, sources: Path) -> None:
    result = reconcile("plan", "--output", "markdown", registry=registry_url, sources=sources)
    assert result.stdout.startswith("### reconciler plan\n")
    assert "| ➕ create | <code>orders</code> | postgres |" in result.stdout
    assert "<details><summary><code>orders</code> — create</summary>" in result.stdout


def test_runs_are_logged(registry_url: str, sources: Path) -> None:
    reconcile(registry=registry_url, sources=sources, RECONCILER_ACTOR="ci-bot")
    rows = sql_rows(
        registry_url, "SELECT owner, actor, created, updated, deleted, outcome FROM runs"
    )
    assert rows == [("reconciler", "ci-bot", 3, 0, 0, "success")]
    registered_by = {r[0] for r in sql_rows(registry_url, "SELECT registered_by FROM sources")}
    assert registered_by == {"ci-bot"}


def test_registry_init_is_idempotent(registry_url: str, sources: Path) -> None:
    first = init_registry(registry_url)
    steps = len(migrations({"uuid": "", "json": "", "time": ""}))
    assert first.exit_code == 0 and f"{steps} migration(s) applied." in first.stdout
    second = init_registry(registry_url)
    assert second.exit_code == 0 and "already up to date." in second.stdout


def test_text_output_has_no_colour_when_not_a_terminal(tmp_path: Path, sources: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    result = CliRunner().invoke(
        cli, ["--dry-run", "--registry", url, "--sources-dir", str(sources)]
    )
    assert "\x1b[" not in result.stdout


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:pw-Secret@h/db", "error: unsupported registry URL 'mysql://u:***@h/db'"),
        ("sqlite://", "error: invalid SQLite registry URL"),
        (
            "postgresql://bob:pw-Secret@127.0.0.1:9/x?connect_timeout=2",
            "error: cannot connect to registry postgresql://bob:***@127.0.0.1:9/x",
        ),
    ],
)
def test_bad_registry_is_one_clear_line(url: str, message: str, sources: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--dry-run", "--registry", url, "--sources-dir", str(sources)]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1
    assert "pw-Secret" not in result.output + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_unreadable_sources_dir_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", "--sources-dir", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert result.stderr == f"error: sources directory '{tmp_path / 'nope'}' does not exist\n"


def test_python_dash_m_entry_point(sources: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", "--sources-dir", str(sources)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "3 sources in 3 files: all valid.\n"


def test_dry_run_with_apply_is_refused(tmp_path: Path, sources: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    result = CliRunner().invoke(
        cli, ["--dry-run", "apply", "--registry", url, "--sources-dir", str(sources)]
    )
    assert result.exit_code == 1
    assert "--dry-run cannot be combined with apply" in result.stderr
    assert not (tmp_path / "r.db").exists()


def test_usage_errors_exit_1_not_2(sources: Path) -> None:
    result = CliRunner().invoke(cli, ["--output", "xml", "--dry-run"])
    assert result.exit_code == 1
    assert "Invalid value for '--output'" in result.stderr
