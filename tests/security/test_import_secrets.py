"""Issue 12.6: `reconcile import` never writes a secret into a file.

A connection key sensitive by schema or by name becomes a `${env:...}` reference; a secret in
a nested value is refused; names that map to one file name get distinct files (or a refusal
before anything is written or adopted); a failed import leaves no file behind.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from conftest import init_registry, sql_exec, sql_rows

from reconciler.cli import cli

SECRET = "imp0rt-Secret-9a1f"


def register(url: str, name: str, connection: dict[str, Any], source_type: str = "csv") -> None:
    """A record another tool wrote (not owned by anyone)."""
    query = (
        "INSERT INTO sources (id, name, source_type, connection, description, tags, "
        "registered_by, registered_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    if not url.startswith("sqlite"):
        query = query.replace("?, ?, ?, ?, ?, ?", "?::uuid, ?, ?, ?::jsonb, ?, ?::jsonb", 1)
    stamp = "2026-01-01T00:00:00+00:00"
    sql_exec(
        url,
        query,
        (str(uuid.uuid4()), name, source_type, json.dumps(connection), "", "[]", "bob", stamp,
         stamp),
    )  # fmt: skip


def run_import(url: str, out: Path, *names: str) -> Result:
    chosen = [a for n in names for a in ("--name", n)] if names else ["--all"]
    args = ["import", *chosen, "--sources-dir", str(out), "--registry", url]
    result = CliRunner().invoke(cli, args)
    assert "Traceback" not in result.output + result.stderr
    return result


def owned(url: str) -> list[Any]:
    return sql_rows(url, "SELECT name FROM sources WHERE managed_by IS NOT NULL")


def test_every_key_named_like_a_secret_becomes_a_reference(
    registry_url: str, tmp_path: Path
) -> None:
    init_registry(registry_url)
    connection = {
        "file_path": "a.csv",
        "password": SECRET + "0",
        "API_Token": SECRET + "1",
        "client_secret": SECRET + "2",
        "privateKey": SECRET + "3",
        "private key": SECRET + "4",
        "db_pwd": SECRET + "5",
        "Credentials": SECRET + "6",
        "apikey": SECRET + "7",
        "passwd": SECRET + "8",
        "sslkey": "/etc/ssl/client.key",  # a path, not a secret
    }
    register(registry_url, "legacy", connection)
    out = tmp_path / "sources.d"
    result = run_import(registry_url, out)
    assert result.exit_code == 0, result.output + result.stderr
    written = (out / "legacy.yaml").read_text()
    assert SECRET not in written + result.output + result.stderr
    for key in connection:
        if key not in ("file_path", "sslkey"):
            assert "${env:RECONCILER_LEGACY_" in written.split(f"{key}:", 1)[1].split("\n")[0]
    assert "sslkey: /etc/ssl/client.key" in written


def test_a_secret_inside_a_nested_value_is_refused_before_anything(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    init_registry(url)
    register(url, "fine", {"file_path": "f.csv"})
    register(url, "nested", {"file_path": "n.csv", "options": {"auth": {"token": SECRET}}})
    out = tmp_path / "sources.d"
    result = run_import(url, out)
    assert result.exit_code == 1
    assert "source 'nested' connection.options.auth.token holds a secret" in result.stderr
    assert SECRET not in result.output + result.stderr
    assert not out.exists() and owned(url) == []


def test_names_that_map_to_one_file_get_distinct_files(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    init_registry(url)
    names = ["café", "cafe\u0301x", "cafè", "sales data", "sales/data", "Sales_Data"]
    for name in names:
        register(url, name, {"file_path": "x.csv"})
    out = tmp_path / "sources.d"
    result = run_import(url, out)
    assert result.exit_code == 0, result.output + result.stderr
    files = sorted(p.name for p in out.iterdir())
    assert len(files) == len(names)
    assert len({f.casefold() for f in files}) == len(names)  # also on case-insensitive disks
    assert {"café.yaml", "cafè.yaml"} <= set(files)
    found = {json.dumps(p.read_text().split("name: ", 1)[1].split("\n")[0]) for p in out.iterdir()}
    assert len(found) == len(names)


def test_a_file_already_there_in_another_case_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    init_registry(url)
    register(url, "orders", {"file_path": "x.csv"})
    out = tmp_path / "sources.d"
    out.mkdir()
    (out / "Orders.yaml").write_text("# someone else's\n")
    result = run_import(url, out)
    assert result.exit_code == 1
    assert "Orders.yaml already exists (for source 'orders'); nothing was imported" in (
        result.stderr
    )
    assert sorted(p.name for p in out.iterdir()) == ["Orders.yaml"] and owned(url) == []


def test_two_sources_that_would_share_a_variable_are_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    init_registry(url)
    register(url, "a-b", {"file_path": "x.csv", "password": SECRET + "1"})
    register(url, "a_b", {"file_path": "y.csv", "password": SECRET + "2"})
    out = tmp_path / "sources.d"
    result = run_import(url, out)
    assert result.exit_code == 1
    assert "would both read their secret from RECONCILER_A_B_PASSWORD" in result.stderr
    assert not out.exists() and owned(url) == []


def test_a_failed_adoption_leaves_no_file_behind(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    init_registry(url)
    register(url, "one", {"file_path": "x.csv", "password": SECRET})
    register(url, "two", {"file_path": "y.csv"})
    # The registry refuses the adoption after the files were staged.
    sql_exec(
        url,
        "CREATE TRIGGER refuse BEFORE UPDATE ON sources BEGIN SELECT RAISE(ABORT, 'no'); END",
    )
    out = tmp_path / "sources.d"
    result = run_import(url, out)
    assert result.exit_code == 1, result.output
    assert not out.exists(), list(out.iterdir())
    existing = tmp_path / "existing"
    existing.mkdir()
    assert run_import(url, existing).exit_code == 1
    assert list(existing.iterdir()) == [] and owned(url) == []
