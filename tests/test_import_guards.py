"""`reconcile import` cannot set a trap: no second manifest for a declared name, no manifests
outside the sources directory (the next --prune would delete what was adopted) unless asked,
and no `$schema` line pointing into somebody's virtualenv."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result
from conftest import snapshot
from test_import import register_by_hand

from reconciler.cli import cli

DECLARED = """\
name: legacy accounts
source_type: csv
connection: {file_path: accounts.csv}
"""


def run(*args: str, registry: str) -> Result:
    return CliRunner().invoke(
        cli, [*args, "--registry", registry], env={"NO_COLOR": "1"}, catch_exceptions=False
    )


def test_a_name_already_declared_is_not_imported(registry_url: str, tmp_path: Path) -> None:
    register_by_hand(registry_url)
    sources = tmp_path / "sources.d"
    sources.mkdir()
    (sources / "accounts.yaml").write_text(DECLARED)  # the same name, other case
    before = snapshot(registry_url)
    result = run("import", "--all", "--sources-dir", str(sources), registry=registry_url)
    assert result.exit_code == 1
    assert "already declared in" in result.stderr and "Legacy Accounts" in result.stderr
    assert sorted(p.name for p in sources.iterdir()) == ["accounts.yaml"]
    assert snapshot(registry_url) == before  # not adopted either


def test_out_outside_the_sources_directory_needs_allow_outside(
    registry_url: str, tmp_path: Path
) -> None:
    register_by_hand(registry_url)
    sources, elsewhere = tmp_path / "sources.d", tmp_path / "elsewhere"
    sources.mkdir()
    args = ("import", "--all", "--sources-dir", str(sources), "--out", str(elsewhere))
    before = snapshot(registry_url)
    refused = run(*args, registry=registry_url)
    assert refused.exit_code == 1
    assert "is outside the sources directory" in refused.stderr
    assert "--allow-outside" in refused.stderr
    assert not elsewhere.exists() and snapshot(registry_url) == before
    inside = run(*args[:-1], str(sources / "imported"), registry=registry_url)
    assert inside.exit_code == 0, inside.output
    assert (sources / "imported" / "Legacy_Accounts.yaml").exists()


def test_allow_outside_writes_where_asked(registry_url: str, tmp_path: Path) -> None:
    register_by_hand(registry_url)
    out = tmp_path / "elsewhere"
    result = run(
        "import",
        "--all",
        "--sources-dir",
        str(tmp_path / "sources.d"),
        "--out",
        str(out),
        "--allow-outside",
        registry=registry_url,
    )
    assert result.exit_code == 0, result.output
    assert (out / "Legacy_Accounts.yaml").exists()


def test_schema_line_points_to_the_repository_schemas_or_is_left_out(
    registry_url: str, tmp_path: Path
) -> None:
    register_by_hand(registry_url)
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "schemas").mkdir()
    (repo / "schemas" / "source.schema.json").write_text("{}")
    sources = repo / "sources.d"
    assert (
        run("import", "--all", "--sources-dir", str(sources), registry=registry_url).exit_code == 0
    )
    text = (sources / "Legacy_Accounts.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=../schemas/source.schema.json\n")


def test_no_schema_line_without_repository_schemas(registry_url: str, tmp_path: Path) -> None:
    register_by_hand(registry_url)
    sources = tmp_path / "plain" / "sources.d"
    (tmp_path / "plain" / ".git").mkdir(parents=True)
    assert (
        run("import", "--all", "--sources-dir", str(sources), registry=registry_url).exit_code == 0
    )
    text = (sources / "Legacy_Accounts.yaml").read_text()
    assert "$schema" not in text and "site-packages" not in text and ".venv" not in text
    assert text.startswith("# Imported from ")
