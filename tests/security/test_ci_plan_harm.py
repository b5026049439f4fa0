"""A plan in CI does no harm (issue 12.10): schema introspection reads only files inside the
repository or a configured data directory, and contacts only configured hosts.

The manifests come from the pull request; the configuration (RECONCILER_DATA_DIRS,
RECONCILER_ALLOWED_HOSTS) from the job. A CSV source pointing at a file elsewhere would put
its first line (the "header") into the PR comment; a postgres source pointing at a host of
the author's choosing would receive the resolved password. Both are refused, with a finding
that names the rule, and the file is never opened, the host never contacted.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from conftest import reconcile

CANARY_HEADER = "canary_col_7f3a,secret_col_91bd"
PASSWORD = "pr-exfiltration-canary-5c2e"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout, the working directory of the job, with its sources directory."""
    root = tmp_path / "repo"
    (root / "sources.d").mkdir(parents=True)
    monkeypatch.chdir(root)
    monkeypatch.delenv("RECONCILER_DATA_DIRS", raising=False)
    monkeypatch.delenv("RECONCILER_ALLOWED_HOSTS", raising=False)
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file outside the repository whose first line must never be shown."""
    path = tmp_path / "private" / "keys.csv"
    path.parent.mkdir()
    path.write_text(f"{CANARY_HEADER}\n1,2\n")
    return path


def _csv(repo: Path, file_path: str) -> None:
    manifest = {"name": "leak", "source_type": "csv", "connection": {"file_path": file_path}}
    (repo / "sources.d" / "leak.yaml").write_text(json.dumps(manifest))


def _runs(repo: Path, **env: str) -> list[Result]:
    """What a pull-request job runs: the plan with its PR comment, and `reconcile schema`."""
    registry = f"sqlite:///{repo.parent}/registry.db"
    sources = repo / "sources.d"
    return [
        reconcile(*args, registry=registry, sources=sources, **env)
        for args in (
            ["plan", "--schema", "-o", "markdown"],
            ["plan", "--schema", "-o", "json"],
            ["schema", "--no-record", "-o", "github"],
        )
    ]


def _baseline(repo: Path) -> None:
    """The source as merged: an innocent CSV in the repository, its header recorded; a pull
    request then changes file_path, so any header it read would show as added columns."""
    (repo / "innocent.csv").write_text("id\n1\n")
    _csv(repo, "innocent.csv")
    registry = f"sqlite:///{repo.parent}/registry.db"
    assert reconcile("schema", registry=registry, sources=repo / "sources.d").exit_code == 0


@pytest.mark.parametrize("how", ["absolute", "relative", "symlink-in-repo", "etc-passwd"])
def test_csv_outside_the_repository_is_never_read(repo: Path, outside: Path, how: str) -> None:
    _baseline(repo)
    if how == "absolute":
        _csv(repo, str(outside))
    elif how == "relative":
        _csv(repo, "../private/keys.csv")
    elif how == "symlink-in-repo":
        (repo / "data.csv").symlink_to(outside)
        _csv(repo, "data.csv")
    else:
        _csv(repo, "/etc/passwd")
    for result in _runs(repo):
        text = (result.output + result.stderr).replace("\\", "")  # Markdown escapes undone
        assert result.exit_code == 1, text
        # Markdown escapes punctuation (`\(`, `\_`); the rule reads the same once unescaped.
        plain = text.replace("\\", "")
        assert "is outside the repository (the working directory) and RECONCILER_DATA_DIRS" in plain
        for secret in ("canary_col_7f3a", "secret_col_91bd", "root:x:0"):
            assert secret not in text


def test_a_data_directory_configured_by_the_job_is_read(repo: Path, outside: Path) -> None:
    _baseline(repo)
    _csv(repo, str(outside))
    for result in _runs(repo, RECONCILER_DATA_DIRS=str(outside.parent)):
        shown = (result.output + result.stderr).replace("\\", "")  # Markdown escapes undone
        assert "canary_col_7f3a" in shown  # allowed: introspected


def test_csv_inside_the_repository_is_read(repo: Path) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "orders.csv").write_text("id,total\n1,2.5\n")
    _csv(repo, "data/orders.csv")
    for result in _runs(repo):
        assert result.exit_code == 0, result.output + result.stderr


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A real TCP server on loopback that never answers: any connection attempt lands here."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.setblocking(False)
        yield server


def _postgres(repo: Path, host: str, port: int) -> None:
    manifest = {
        "name": "exfil",
        "source_type": "postgres",
        "connection": {
            "host": host,
            "port": port,
            "dbname": "prod",
            "user": "app",
            "password": "${env:PROD_DB_PASSWORD}",
            "table": "orders",
        },
    }
    (repo / "sources.d" / "exfil.yaml").write_text(json.dumps(manifest))


def _accepted(server: socket.socket) -> bool:
    try:
        connection, _ = server.accept()
    except BlockingIOError:
        return False
    connection.close()
    return True


def test_a_host_not_allowed_is_never_contacted(repo: Path, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    _postgres(repo, "127.0.0.1", port)
    allowed = f"127.0.0.1:{port + 1},db.internal"  # the job allows another port only
    for result in _runs(repo, PROD_DB_PASSWORD=PASSWORD, RECONCILER_ALLOWED_HOSTS=allowed):
        text = (result.output + result.stderr).replace("\\", "")  # Markdown escapes undone
        assert result.exit_code == 1, text
        assert f"host 127.0.0.1:{port} is not allowed (RECONCILER_ALLOWED_HOSTS)" in text
        assert PASSWORD not in text
    assert not _accepted(listener)


@pytest.mark.parametrize("host", ["attacker.example", "127.0.0.1,attacker.example"])
def test_by_default_only_loopback_is_contacted(repo: Path, host: str) -> None:
    _postgres(repo, host, 5432)  # libpq tries each host of a list: every one must be allowed
    for result in _runs(repo, PROD_DB_PASSWORD=PASSWORD):
        text = (result.output + result.stderr).replace("\\", "")  # Markdown escapes undone
        assert result.exit_code == 1, text
        assert (
            "host attacker.example:5432 is not allowed "
            "(RECONCILER_ALLOWED_HOSTS unset: loopback only); not contacted"
        ) in text
        assert PASSWORD not in text


def test_an_allowed_host_is_contacted(repo: Path, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    _postgres(repo, "127.0.0.1", port)
    reconcile(
        "schema",
        "--no-record",
        "--timeout",
        "2",
        registry=f"sqlite:///{repo.parent}/registry.db",
        sources=repo / "sources.d",
        PROD_DB_PASSWORD=PASSWORD,
        RECONCILER_ALLOWED_HOSTS=f"127.0.0.*:{port}",
    )
    assert _accepted(listener)  # the rule lets it through: the refusal above is the rule's
