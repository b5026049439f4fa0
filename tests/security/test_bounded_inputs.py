"""Bounded inputs: `${file:}` reads a regular file of bounded size, and YAML integers in a
form YAML 1.1 and 1.2 read differently are refused, on both loading paths (issue 12.11)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import init_registry, reconcile, sql_rows

from reconciler.errors import InvalidManifests
from reconciler.manifests import fast_path as fastload
from reconciler.manifests.loading import load_manifests
from reconciler.secret_refs import MAX_SECRET_FILE

Target = Callable[[Path], str]


def _dev_zero(tmp_path: Path) -> str:
    return "/dev/zero"  # endless: without a check, the run would fill the memory


def _fifo(tmp_path: Path) -> str:
    os.mkfifo(tmp_path / "pipe")  # no writer: a blocking read would wait forever
    return str(tmp_path / "pipe")


def _directory(tmp_path: Path) -> str:
    return str(tmp_path)


def _huge(tmp_path: Path) -> str:
    (tmp_path / "huge").write_bytes(b"x" * (MAX_SECRET_FILE + 1))
    return str(tmp_path / "huge")


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        pytest.param(_dev_zero, "not a regular file", id="dev-zero"),
        pytest.param(_fifo, "not a regular file", id="fifo"),
        pytest.param(_directory, "not a regular file", id="directory"),
        pytest.param(_huge, f"larger than {MAX_SECRET_FILE} bytes", id="too-big"),
    ],
)
def test_secret_file_must_be_a_small_regular_file(
    target: Target, reason: str, registry_url: str, sources: Path, tmp_path: Path
) -> None:
    path = target(tmp_path)
    assert init_registry(registry_url).exit_code == 0
    orders = sources / "shop" / "orders.yaml"
    orders.write_text(orders.read_text().replace("${env:ORDERS_DB_PASSWORD}", f"${{file:{path}}}"))
    for args in (["plan", "--strict"], ["apply"]):
        result = reconcile(*args, registry=registry_url, sources=sources)
        assert result.exit_code == 1, result.output
        expected = f"connection.password: cannot read secret file {path}: {reason}"
        assert expected in result.stderr, result.stderr
    assert sql_rows(registry_url, "SELECT name FROM sources") == []


def test_secret_file_at_the_cap_is_read(registry_url: str, sources: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"s" * (MAX_SECRET_FILE - 1) + b"\n")
    orders = sources / "shop" / "orders.yaml"
    text = orders.read_text().replace("${env:ORDERS_DB_PASSWORD}", f"${{file:{secret}}}")
    orders.write_text(text)
    assert reconcile(registry=registry_url, sources=sources).exit_code == 0


YAML_11_ONLY = ["0755", "010", "00", "1:30", "0x1F", "0b101", "5_432", "-0o17"]


@pytest.mark.parametrize("port", YAML_11_ONLY)
@pytest.mark.parametrize("fast", [True, False], ids=["fast-path-on", "exact-only"])
def test_yaml_11_only_integer_is_refused_with_its_line(
    port: str, fast: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fastload, "ENABLED", fast)
    text = (
        "name: orders\nsource_type: postgres\nconnection:\n  host: db\n"
        f"  port: {port}\n  dbname: shop\n  user: r\n  table: t\n"
    )
    assert fastload.parse(text) is None  # the fast path declines: the exact path decides
    (tmp_path / "orders.yaml").write_text(text)
    with pytest.raises(InvalidManifests) as caught:
        load_manifests(tmp_path)
    (problem,) = caught.value.problems
    assert (problem.line, problem.message.split(":")[0]) == (5, "connection.port")


@pytest.mark.parametrize("port", ["5432", "+5432", '"0755"', "'5432'"])
def test_integers_both_versions_read_alike_still_load(port: str, tmp_path: Path) -> None:
    (tmp_path / "orders.yaml").write_text(
        "name: orders\nsource_type: postgres\nconnection:\n  host: db\n"
        f"  port: {port}\n  dbname: shop\n  user: r\n  table: t\n"
    )
    (manifest,) = load_manifests(tmp_path)
    assert manifest.connection["port"] in (5432, "5432", "0755")
