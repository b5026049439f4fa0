"""Quiet, conventional output: no leading blank line, NO_COLOR only when non-empty, no SQLite
side files left in the repository, a bounded run log."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import init_registry, insert_raw, reconcile, sql_rows

from reconciler.cli import cli


def test_no_leading_blank_line_when_only_unmanaged_records_are_listed(
    registry_url: str, sources: Path
) -> None:
    reconcile(registry=registry_url, sources=sources)
    insert_raw(registry_url, "hand-made")
    plan = reconcile("plan", registry=registry_url, sources=sources)
    assert plan.exit_code == 0, plan.output
    assert "Unmanaged records" in plan.stdout
    assert plan.stdout.startswith("Unmanaged records")


def _on_a_terminal(sources: Path, tmp_path: Path, no_color: str | None) -> str:
    """The text of `reconcile plan` as a terminal shows it (stdout is a pseudo-terminal)."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "CI")}
    if no_color is not None:
        env["NO_COLOR"] = no_color
    env["ORDERS_DB_PASSWORD"] = "x"
    master, slave = pty.openpty()
    args = ["plan", "--no-progress", "--sources-dir", str(sources)]
    args += ["--registry", f"sqlite:///{tmp_path / 'r.db'}"]
    try:
        subprocess.run(
            [sys.executable, "-m", "reconciler", *args],
            stdout=slave,
            stderr=subprocess.DEVNULL,
            env=env,
            check=True,
        )
    finally:
        os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return b"".join(chunks).decode()


@pytest.mark.parametrize(("no_color", "colored"), [(None, True), ("", True), ("1", False)])
def test_no_color_counts_only_when_non_empty(
    sources: Path, tmp_path: Path, no_color: str | None, colored: bool
) -> None:
    text = _on_a_terminal(sources, tmp_path, no_color)
    assert "create orders" in text
    assert ("\x1b[" in text) is colored


def test_no_sqlite_side_files_left_in_the_repository(
    sources: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default registry lives in the repository (.reconciler/): after every command it
    holds the database and a .gitignore, no -wal/-shm."""
    monkeypatch.chdir(tmp_path)
    env = {"ORDERS_DB_PASSWORD": "x", "NO_COLOR": "1"}
    where = ["--sources-dir", str(sources)]
    for args in (["apply", *where], ["plan", *where], ["drift", *where], ["history"]):
        result = CliRunner().invoke(cli, args, env=env)
        assert result.exit_code == 0, result.output
        assert sorted(p.name for p in (tmp_path / ".reconciler").iterdir()) == [
            ".gitignore",
            "registry.db",
        ], args
    assert (tmp_path / ".reconciler" / ".gitignore").read_text().splitlines()[-1] == "*"


def test_the_run_log_keeps_the_newest_runs(registry_url: str, sources: Path) -> None:
    init_registry(registry_url)
    for _ in range(4):
        assert reconcile("--keep-runs", "2", registry=registry_url, sources=sources).exit_code == 0
    assert sql_rows(registry_url, "SELECT count(*) FROM runs") == [(2,)]
    history = CliRunner().invoke(cli, ["history", "-o", "json", "--registry", registry_url])
    runs = json.loads(history.stdout)["runs"]
    assert [r["created"] for r in runs] == [0, 0]  # the first apply (3 created) is gone
    for _ in range(3):
        assert reconcile("--keep-runs", "0", registry=registry_url, sources=sources).exit_code == 0
    assert sql_rows(registry_url, "SELECT count(*) FROM runs") == [(5,)]


def test_the_default_retention_is_a_thousand_runs() -> None:
    help_text = CliRunner().invoke(cli, ["apply", "--help"]).stdout
    assert "--keep-runs" in help_text and "default: 1000" in help_text
