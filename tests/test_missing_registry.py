"""A registry that isn't there is reported, not read as empty: a typo'd path must not say
"No drift"; a dry-run says in one line that every source will be created."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result
from conftest import reconcile

from reconciler.cli import cli


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"NO_COLOR": "1"}, catch_exceptions=False)


def test_drift_and_history_refuse_a_registry_that_does_not_exist(
    registry_url: str, sources: Path
) -> None:
    # registry_url is a sqlite path not created yet, or a PostgreSQL database without tables.
    drift = reconcile("drift", registry=registry_url, sources=sources)
    assert drift.exit_code == 1
    assert "does not exist" in drift.stderr and "No drift" not in drift.stdout
    history = run("history", "--registry", registry_url)
    assert history.exit_code == 1
    assert "does not exist" in history.stderr
    if registry_url.startswith("sqlite:///"):
        assert not Path(registry_url[len("sqlite:///") :]).exists()  # still nothing created


def test_the_error_names_the_registry_without_its_password(pg_url: str, sources: Path) -> None:
    url = pg_url.replace("postgresql://", "postgresql://reader:hunter2-pw@", 1)
    if "@" in pg_url.split("//", 1)[1]:  # the server URL already has a user: give it a password
        scheme, rest = pg_url.split("//", 1)
        user, host = rest.split("@", 1)
        url = f"{scheme}//{user.split(':')[0]}:hunter2-pw@{host}"
    result = run("history", "--registry", url)
    assert result.exit_code == 1
    assert "hunter2-pw" not in result.output + result.stderr
    assert "does not exist" in result.stderr and "***" in result.stderr


def test_a_dry_run_against_a_new_registry_says_so_once(registry_url: str, sources: Path) -> None:
    result = reconcile("plan", registry=registry_url, sources=sources)
    assert result.exit_code == 0
    assert result.stderr.count("does not exist yet; every source will be created.") == 1
    reconcile(registry=registry_url, sources=sources)  # applied: it exists now
    again = reconcile("plan", registry=registry_url, sources=sources)
    assert "does not exist" not in again.stderr
    assert reconcile("drift", registry=registry_url, sources=sources).exit_code == 0
