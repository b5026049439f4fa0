"""Files: private files are 0600 whatever the umask; output files are replaced atomically and
only when the path is a regular file or absent (never through a symlink, FIFO or device)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import reconcile

from reconciler.backends.remote.state_store import StateStore


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("permissive_umask")
def test_the_sqlite_registry_and_its_side_files_are_private(tmp_path: Path, sources: Path) -> None:
    db = tmp_path / "reg" / "registry.db"
    assert reconcile(registry=f"sqlite:///{db}", sources=sources).exit_code == 0
    files = [p for p in db.parent.iterdir() if p.name.startswith("registry.db")]
    assert db in files
    # A journal of the last transaction may or may not remain; whatever is there is 0600.
    for path in files:
        assert _mode(path) == 0o600, path
    # While a connection is open, the WAL and shared-memory files exist: also 0600.
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}", "http://api", writable=True)
    try:
        store.init()
        side = sorted(p for p in tmp_path.iterdir() if p.name.startswith("state.db"))
        assert {p.name for p in side} >= {"state.db", "state.db-wal", "state.db-shm"}
        for path in side:
            assert _mode(path) == 0o600, path
    finally:
        store.close()


def _targets(tmp_path: Path) -> dict[str, tuple[str, ...]]:
    """Each output option, with the bad path substituted for {}."""
    return {
        "report": ("plan", "--report", "{}"),
        "output": ("plan", "--output", "json={}"),
        "metrics": ("plan", "--metrics-file", "{}"),
        "plan-out": ("plan", "--out", "{}"),
    }


def _bad_path(kind: str, tmp_path: Path) -> tuple[Path, Path | None]:
    """A path that is not a regular file, and the file it must not reach (if any)."""
    if kind == "symlink":
        victim = tmp_path / "victim.txt"
        victim.write_text("precious\n")
        link = tmp_path / "out.json"
        link.symlink_to(victim)
        return link, victim
    if kind == "dangling symlink":
        link = tmp_path / "out.json"
        link.symlink_to(tmp_path / "created-through-the-link")
        return link, tmp_path / "created-through-the-link"
    if kind == "fifo":
        fifo = tmp_path / "out.fifo"
        os.mkfifo(fifo)
        return fifo, None
    return Path(os.devnull), None  # a character device


@pytest.mark.parametrize("option", ["report", "output", "metrics", "plan-out"])
@pytest.mark.parametrize("kind", ["symlink", "dangling symlink", "fifo", "device"])
def test_an_output_path_that_is_not_a_regular_file_is_refused(
    tmp_path: Path, sources: Path, option: str, kind: str
) -> None:
    path, victim = _bad_path(kind, tmp_path)
    args = [a.replace("{}", str(path)) for a in _targets(tmp_path)[option]]
    registry = f"sqlite:///{tmp_path / 'reg' / 'registry.db'}"
    result = reconcile(*args, registry=registry, sources=sources)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: refusing to write {path}: "
        + ("it is a symlink" if "symlink" in kind else "it is not a regular file")
    ]
    assert "Traceback" not in result.stderr
    if victim is not None:
        assert not victim.exists() or victim.read_text() == "precious\n"
        assert path.is_symlink()


def test_a_refused_output_path_is_found_before_anything_is_written(
    tmp_path: Path, sources: Path
) -> None:
    link = tmp_path / "report.json"
    link.symlink_to(tmp_path / "elsewhere.json")
    db = tmp_path / "reg" / "registry.db"
    result = reconcile("apply", "--report", str(link), registry=f"sqlite:///{db}", sources=sources)
    assert result.exit_code == 1 and "it is a symlink" in result.stderr
    assert not db.exists()  # the apply did not run


@pytest.mark.parametrize("option", ["report", "output", "metrics", "plan-out"])
def test_a_regular_output_file_is_replaced_whole(
    tmp_path: Path, sources: Path, option: str
) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old content that is longer than nothing\n" * 100)
    args = [a.replace("{}", str(target)) for a in _targets(tmp_path)[option]]
    result = reconcile(*args, registry=f"sqlite:///{tmp_path / 'r.db'}", sources=sources)
    assert result.exit_code == 0, result.output
    text = target.read_text()
    assert "old content" not in text
    if option != "metrics":
        json.loads(text)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
