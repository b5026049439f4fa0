"""Environments from one repository: `${var:NAME}` from --var-file and RECONCILER_VAR_NAME,
resolved at load time (plans show the values); `environments: [...]` limits a manifest to
some environments, and a manifest for another environment is skipped, never pruned."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import CANARY, reconcile

ORDERS = """\
name: orders
source_type: postgres
description: Orders of ${var:ENV}
connection:
  host: db-${var:ENV}.internal
  port: ${var:PORT}
  dbname: shop
  user: reporting
  password: ${env:ORDERS_DB_PASSWORD}
  table: orders
"""

PROD_ONLY = """\
name: ledger
environments: [prod]
source_type: csv
connection:
  file_path: data/${var:LEDGER_FILE}
"""


def repo(tmp_path: Path) -> tuple[Path, Path, Path]:
    sources = tmp_path / "sources.d"
    sources.mkdir()
    (sources / "orders.yaml").write_text(ORDERS)
    (sources / "ledger.yaml").write_text(PROD_ONLY)
    envs = tmp_path / "envs"
    envs.mkdir()
    (envs / "prod.yaml").write_text("ENV: prod\nPORT: 5432\nLEDGER_FILE: ledger.csv\n")
    (envs / "staging.yaml").write_text("ENV: staging\nPORT: 6543\n")
    return sources, envs / "prod.yaml", envs / "staging.yaml"


def changes(result_stdout: str) -> dict[str, dict[str, object]]:
    data = json.loads(result_stdout)
    return {c["name"]: c for c in data["changes"]}


def test_variables_are_resolved_and_shown(registry_url: str, tmp_path: Path) -> None:
    sources, prod, staging = repo(tmp_path)
    plan = reconcile(
        "plan", "--var-file", str(staging), "--environment", "staging",
        registry=registry_url, sources=sources,
    )  # fmt: skip
    assert plan.exit_code == 0, plan.stderr
    assert 'connection.host: "db-staging.internal"' in plan.stdout
    assert "connection.port: 6543" in plan.stdout  # a whole reference keeps the YAML type
    assert "ledger" not in plan.stdout  # for prod only
    applied = reconcile(
        "apply", "-o", "json", "--var-file", str(prod), "--environment", "prod",
        registry=registry_url, sources=sources,
    )  # fmt: skip
    assert applied.exit_code == 0, applied.stderr
    assert set(changes(applied.stdout)) == {"orders", "ledger"}
    again = reconcile(
        "plan", "--detailed-exitcode", "--var-file", str(prod), "--environment", "prod",
        registry=registry_url, sources=sources,
    )  # fmt: skip
    assert again.exit_code == 0, again.stdout  # resolved values are what was applied


def test_environment_variables_and_precedence(registry_url: str, tmp_path: Path) -> None:
    sources, _, staging = repo(tmp_path)
    # No file: RECONCILER_VAR_* alone; with the file, the file wins.
    env = {"RECONCILER_VAR_ENV": "dev", "RECONCILER_VAR_PORT": "7000"}
    alone = reconcile("plan", registry=registry_url, sources=sources, **env)
    assert alone.exit_code == 0, alone.stderr
    assert 'connection.host: "db-dev.internal"' in alone.stdout
    both = reconcile(
        "plan", "--var-file", str(staging), registry=registry_url, sources=sources, **env
    )
    assert 'connection.host: "db-staging.internal"' in both.stdout
    selected = reconcile(
        "plan", "--var-file", str(staging), registry=registry_url, sources=sources,
        RECONCILER_ENVIRONMENT="prod", RECONCILER_VAR_LEDGER_FILE="l.csv",
    )  # fmt: skip
    assert "create ledger" in selected.stdout


def test_a_missing_variable_is_a_validation_error_with_its_line(
    registry_url: str, tmp_path: Path
) -> None:
    sources, _, _ = repo(tmp_path)
    (tmp_path / "partial.yaml").write_text("ENV: prod\n")
    result = reconcile(
        "apply", "--var-file", str(tmp_path / "partial.yaml"), "--environment", "prod",
        registry=registry_url, sources=sources,
    )  # fmt: skip
    assert result.exit_code == 1
    assert (
        f"{sources.as_posix()}/orders.yaml:6: connection.port: variable 'PORT' is not set"
        in result.stderr
    )
    assert f"{sources.as_posix()}/ledger.yaml:5: connection.file_path" in result.stderr
    assert "nothing was written" in result.stderr
    if registry_url.startswith("sqlite:///"):
        assert not Path(registry_url[len("sqlite:///") :]).exists()


def test_a_secret_field_cannot_take_a_variable(registry_url: str, tmp_path: Path) -> None:
    sources, _, _ = repo(tmp_path)
    text = ORDERS.replace("${env:ORDERS_DB_PASSWORD}", "${var:DB_PASSWORD}")
    (sources / "orders.yaml").write_text(text)
    (tmp_path / "leaky.yaml").write_text(f"ENV: prod\nPORT: 1\nDB_PASSWORD: {CANARY}\n")
    result = reconcile(
        "plan", "--var-file", str(tmp_path / "leaky.yaml"), registry=registry_url, sources=sources
    )
    assert result.exit_code == 1
    assert "orders.yaml:9: connection.password: a secret field cannot use ${var:...}" in (
        result.stderr
    )


def test_a_manifest_for_another_environment_is_never_pruned(
    registry_url: str, tmp_path: Path
) -> None:
    sources, prod, staging = repo(tmp_path)
    applied = reconcile(
        "apply", "--var-file", str(prod), "--environment", "prod",
        registry=registry_url, sources=sources,
    )  # fmt: skip
    assert applied.exit_code == 0, applied.stderr
    # The same registry planned as staging, with --prune: ledger is out of reach, not an orphan.
    pruned = reconcile(
        "apply", "-o", "json", "--prune", "--var-file", str(staging), "--environment", "staging",
        registry=registry_url, sources=sources,
        RECONCILER_VAR_LEDGER_FILE="x",
    )  # fmt: skip
    assert pruned.exit_code == 0, pruned.stderr
    data = json.loads(pruned.stdout)
    assert "ledger" not in {o["name"] for o in data.get("orphans", [])}
    assert "ledger" not in changes(pruned.stdout)
    # Its file removed from git: now it is an orphan and --prune deletes it.
    (sources / "ledger.yaml").unlink()
    gone = reconcile(
        "apply", "-o", "json", "--prune", "--var-file", str(staging), "--environment", "staging",
        registry=registry_url, sources=sources,
    )  # fmt: skip
    assert changes(gone.stdout)["ledger"]["action"] == "delete"


def test_a_bad_var_file_is_one_line(registry_url: str, tmp_path: Path) -> None:
    sources, _, _ = repo(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    result = reconcile("plan", "--var-file", str(bad), registry=registry_url, sources=sources)
    assert result.exit_code == 1
    assert "a var file must be a mapping" in result.stderr
    nested = tmp_path / "nested.yaml"
    nested.write_text("ENV: {a: 1}\n")
    result = reconcile("plan", "--var-file", str(nested), registry=registry_url, sources=sources)
    assert result.exit_code == 1 and "flat mapping" in result.stderr
