"""Discovery of manifests: what cannot be read is an error naming the path, never a skip.

A skipped manifest looks exactly like a deleted one, and `--prune` deletes the records of
deleted manifests; so every entry of the sources directory that cannot be read, or is not
what it seems (a dangling symlink, a loop, a link out of the directory, a FIFO), fails the
run before anything is planned. Hidden entries are skipped on purpose, extensions match
in any case, and a directory that declares no source is an error (issue 12.7, 13.5).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import reconcile, sql_rows

from reconciler.cli import cli

ROOT = os.geteuid() == 0
Breaker = Callable[[Path, Path], str]  # (sources dir, a scratch dir) -> the path to name


def _dangling(sources: Path, scratch: Path) -> str:
    (sources / "events.yaml").unlink()
    (sources / "events.yaml").symlink_to(scratch / "gone.yaml")
    return "events.yaml: dangling symbolic link"


def _dangling_directory(sources: Path, scratch: Path) -> str:
    (sources / "events.yaml").rename(scratch / "events.yaml")
    (sources / "team").symlink_to(scratch / "no-such-dir")
    return "team: dangling symbolic link"


def _loop(sources: Path, scratch: Path) -> str:
    (sources / "events.yaml").unlink()
    (sources / "events.yaml").symlink_to(sources / "events.yaml")
    return "events.yaml: symbolic link loop"


def _outside(sources: Path, scratch: Path) -> str:
    moved = scratch / "events.yaml"
    (sources / "events.yaml").rename(moved)
    (sources / "events.yaml").symlink_to(moved)  # a valid manifest, but out of the directory
    return "events.yaml: symbolic link to a path outside the sources directory"


def _fifo(sources: Path, scratch: Path) -> str:
    (sources / "events.yaml").unlink()
    os.mkfifo(sources / "events.yaml")  # reading it would block forever
    return "events.yaml: not a regular file"


def _unreadable_directory(sources: Path, scratch: Path) -> str:
    (sources / "shop").chmod(0)
    return "shop: cannot read directory: Permission denied"


def _unreadable_file(sources: Path, scratch: Path) -> str:
    (sources / "events.yaml").chmod(0)
    return "events.yaml:1: cannot read file: Permission denied"


AS_ROOT = pytest.mark.skipif(
    ROOT,
    reason="root reads files whatever their mode; the symlink cases cover unreadable entries there",
)
BREAKERS = [
    pytest.param(_dangling, id="dangling-symlink"),
    pytest.param(_dangling_directory, id="dangling-directory-symlink"),
    pytest.param(_loop, id="symlink-loop"),
    pytest.param(_outside, id="symlink-outside"),
    pytest.param(_fifo, id="fifo"),
    pytest.param(_unreadable_directory, id="chmod-000-directory", marks=AS_ROOT),
    pytest.param(_unreadable_file, id="chmod-000-file", marks=AS_ROOT),
]


def run(*args: str, sources: Path, registry: str | None = None) -> Result:
    """The CLI as `reconcile` runs it; validate takes no --registry."""
    if registry is not None and args[:1] != ("validate",):
        return reconcile(*args, registry=registry, sources=sources)
    return CliRunner().invoke(cli, [*args, "--sources-dir", str(sources)])


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    path = tmp_path / "elsewhere"
    path.mkdir()
    return path


@pytest.fixture(autouse=True)
def _restore_modes(sources: Path) -> object:
    """tmp_path must stay removable after a chmod 000."""
    yield None
    for path in (sources / "shop", sources / "events.yaml"):
        if path.exists() and not path.is_symlink():
            path.chmod(0o755)


@pytest.mark.parametrize("breaker", BREAKERS)
def test_unreadable_entry_is_an_error_naming_it(
    breaker: Breaker, sources: Path, scratch: Path
) -> None:
    expected = breaker(sources, scratch)
    for command in (["validate"], ["plan"], ["apply"]):
        result = run(*command, registry=f"sqlite:///{scratch}/r.db", sources=sources)
        assert result.exit_code == 1, (command, result.output)
        assert f"{sources}/{expected}" in result.stderr, result.stderr
    assert not (scratch / "r.db").exists()  # nothing written, not even the registry


@pytest.mark.parametrize("breaker", BREAKERS)
def test_prune_never_deletes_a_record_whose_manifest_could_not_be_read(
    breaker: Breaker, registry_url: str, sources: Path, scratch: Path
) -> None:
    assert reconcile(registry=registry_url, sources=sources).exit_code == 0
    before = sql_rows(registry_url, "SELECT name FROM sources ORDER BY name")
    assert len(before) == 3
    breaker(sources, scratch)
    for args in (["--prune"], ["--prune", "--force-deletes"]):
        result = reconcile(*args, registry=registry_url, sources=sources)
        assert result.exit_code == 1, result.output
        assert "deleted" not in result.stdout
    assert sql_rows(registry_url, "SELECT name FROM sources ORDER BY name") == before


def test_every_refused_entry_is_named_at_once(sources: Path, scratch: Path) -> None:
    _dangling(sources, scratch)
    (sources / "shop" / "x.yml").symlink_to(scratch / "nothing")
    result = run("validate", sources=sources)
    assert result.exit_code == 1
    assert f"{sources}/events.yaml: dangling symbolic link" in result.stderr
    assert f"{sources}/shop/x.yml: dangling symbolic link" in result.stderr


def test_symlinks_inside_the_directory_are_fine(sources: Path, scratch: Path) -> None:
    (sources / "alias.yaml").symlink_to(sources / "events.yaml")  # read twice: a duplicate
    (sources / "mirror").symlink_to(sources / "shop")  # not entered: read where it really is
    result = run("validate", sources=sources)
    assert result.exit_code == 1
    assert "duplicate source name 'events'" in result.stderr
    (sources / "alias.yaml").unlink()
    assert run("validate", sources=sources).exit_code == 0


def test_hidden_entries_are_skipped_and_extensions_match_in_any_case(sources: Path) -> None:
    (sources / ".archive").mkdir()
    (sources / ".archive" / "old.yaml").write_text("not: [valid")
    (sources / ".draft.yaml").write_text("not: [valid")
    (sources / "LOUD.YAML").write_text(
        "name: loud\nsource_type: csv\nconnection: {file_path: /data/loud.csv}\n"
    )
    (sources / "Quiet.Yml").write_text(
        "name: quiet\nsource_type: csv\nconnection: {file_path: /data/quiet.csv}\n"
    )
    result = run("validate", "-o", "json", sources=sources)
    assert result.exit_code == 0, result.output
    assert '"sources": 5' in result.stdout and '"files": 5' in result.stdout


@pytest.mark.parametrize("command", [["validate"], ["plan"], ["apply"], ["--dry-run"], []])
def test_a_directory_without_sources_is_an_error(
    command: list[str], tmp_path: Path, scratch: Path
) -> None:
    empty = tmp_path / "empty.d"
    empty.mkdir()
    (empty / ".hidden.yaml").write_text("name: hidden\n")
    (empty / "notes.yaml").write_text("# nothing declared yet\n")
    result = run(*command, registry=f"sqlite:///{scratch}/r.db", sources=empty)
    assert result.exit_code == 1
    assert f"error: no sources in sources directory '{empty}'" in result.stderr
    assert not (scratch / "r.db").exists()


def test_a_fifo_swapped_in_after_discovery_does_not_hang_either_path(tmp_path: Path) -> None:
    from reconciler.manifests import fast_path
    from reconciler.manifests.digests import _read as read_for_digest
    from reconciler.manifests.loading import _read

    os.mkfifo(tmp_path / "late.yaml")  # no writer: a blocking open or read waits forever
    assert fast_path.read_text(str(tmp_path / "late.yaml")) is None
    assert read_for_digest(str(tmp_path / "late.yaml")) == (None, None)
    docs, problems = _read(tmp_path / "late.yaml", "sources.d/late.yaml")
    assert docs == []
    assert [str(p) for p in problems] == [
        "sources.d/late.yaml:1: cannot read file: not a regular file"
    ]
