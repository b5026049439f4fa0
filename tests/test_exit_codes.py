"""README's exit-code table, command by command, and usage errors: always 1.

A usage error must never exit 2 ("changes pending" to --detailed-exitcode) or 0: a typo in a
CI workflow has to fail the job.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import insert_raw, reconcile, sql_exec

from reconciler.cli import cli


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"NO_COLOR": "1"}, catch_exceptions=False)


USAGE_ERRORS = [
    ("paln", "--detailed-exitcode"),  # unknown command, with the flag that makes 2 "pending"
    ("--detailed-exitcode", "paln"),
    ("--bogus",),
    ("plan", "--bogus", "--detailed-exitcode"),
    ("plan", "--max-deletes", "many", "--detailed-exitcode"),
    ("plan", "--output", "yaml"),
    ("plan", "--out"),  # missing value
    ("apply", "--lock-timeout", "-1"),
    ("apply", "a.json", "b.json"),  # an extra argument
    ("drift", "--perspective", "consumer"),
    ("validate", "--registry", "sqlite:///x.db"),
    ("registry", "init", "--owner", "x"),
    ("registry", "nope"),
    ("import", "--name"),  # a missing value
    ("import", "--out", "d"),  # neither --name nor --all
    ("history", "--limit", "0"),
    ("history", "--output", "junit"),
    ("-o", "json=runs.json", "history"),
    ("schema", "--perspective", "sideways", "--detailed-exitcode"),
    ("schema-export", "--bogus"),
]


@pytest.mark.parametrize("args", USAGE_ERRORS, ids=" ".join)
def test_usage_errors_exit_1(
    args: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # were one of them to run, it would write here
    result = run(*args)
    assert result.exit_code == 1, result.output
    assert "Error:" in result.stderr
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_group_without_its_command_prints_its_help_once_and_exits_1() -> None:
    result = run("registry")
    assert result.exit_code == 1
    assert result.stderr.count("Usage:") == 1 and "registry [OPTIONS] COMMAND" in result.stderr
    assert "Error:" not in result.stderr
    assert "init" in result.stderr


def test_the_exit_code_table(registry_url: str, sources: Path, tmp_path: Path) -> None:
    """README ## Exit codes, row by row, on each command that has the row."""

    def code(*args: str) -> int:
        return reconcile(*args, registry=registry_url, sources=sources).exit_code

    # 0: a plan apply would accept, with or without pending changes (no --detailed-exitcode).
    assert code("plan") == 0
    assert code("--dry-run") == 0
    # 2: changes pending, with --detailed-exitcode.
    assert code("plan", "--detailed-exitcode") == 2
    assert code("--dry-run", "--detailed-exitcode") == 2
    # 0: applied; then nothing to do; no drift.
    assert code("apply") == 0
    assert code() == 0
    assert code("plan", "--detailed-exitcode") == 0
    assert code("drift") == 0
    # 2: drift (drift; any run with --fail-on-drift).
    sql_exec(registry_url, "UPDATE sources SET description = 'edited' WHERE name = 'customers'")
    assert code("drift") == 2
    assert code("plan", "--fail-on-drift") == 2
    # 1: a plan apply would refuse (a name taken by an unowned record), and that apply.
    (sources / "taken.yaml").write_text(
        "name: taken\nsource_type: csv\nconnection: {file_path: t.csv}\n"
    )
    insert_raw(registry_url, "taken")
    assert code("plan", "--detailed-exitcode") == 1
    assert code("apply") == 1
    # 1: invalid manifests, for every command that reads them.
    (sources / "taken.yaml").write_text("name: taken\nsource_type: nope\n")
    for command in ("plan", "apply", "drift"):
        assert code(command) == 1, command
    assert run("validate", "--sources-dir", str(sources)).exit_code == 1
    # validate and schema-export succeed on their own.
    (sources / "taken.yaml").unlink()
    assert run("validate", "--sources-dir", str(sources)).exit_code == 0
    assert run("schema-export").exit_code == 0
    assert run("registry", "init", "--registry", registry_url).exit_code == 0
    assert run("history", "--registry", registry_url).exit_code == 0
