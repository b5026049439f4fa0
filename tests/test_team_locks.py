"""Teams in parallel: on PostgreSQL an apply locks its owner, not the registry.

Owner A holds its lock (an open `locked()` transaction, as during a long apply) while
owner B applies in the same thread: B must not need A's lock (if it did, it could never get
it and would fail with LockTimeout, whatever the timing). A second apply of owner A must
wait and time out. On SQLite, one writer at a time stays the rule.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import sql_rows

from reconciler.backends import open_registry
from reconciler.backends.base import ConnectOptions, NewRecord, RunEntry, Writes
from reconciler.errors import LockTimeout, RegistryError
from reconciler.workflow import run


def _sources(root: Path, prefix: str, count: int) -> Path:
    root.mkdir(parents=True)
    for i in range(count):
        (root / f"{prefix}{i}.yaml").write_text(
            f"name: {prefix}{i}\nsource_type: csv\nconnection:\n  file_path: /d/{prefix}{i}.csv\n"
        )
    return root


def _options(root: Path, registry: str, owner: str, timeout: float) -> run.Options:
    return run.Options(sources_dir=root, registry=registry, owner=owner, lock_timeout=timeout)


def test_two_owners_apply_at_once_on_postgres(pg_url: str, tmp_path: Path) -> None:
    team_a = _sources(tmp_path / "a", "a", 3)
    team_b = _sources(tmp_path / "b", "b", 5)
    run.apply(_options(team_a, pg_url, "team-a", 5))
    holder = open_registry(pg_url, writable=True, options=ConnectOptions(lock_owner="team-a"))
    try:
        with holder.locked(5):  # team A is "applying" and holds its lock throughout
            outcome = run.apply(_options(team_b, pg_url, "team-b", 2))
            assert outcome.result is not None and outcome.result.created == 5
            with pytest.raises(LockTimeout, match="is locked by"):
                run.apply(_options(team_a, pg_url, "team-a", 0.3))
    finally:
        holder.close()
    owners = sql_rows(pg_url, "SELECT managed_by, count(*) FROM sources GROUP BY 1 ORDER BY 1")
    assert owners == [("team-a", 3), ("team-b", 5)]


def test_a_migration_waits_for_applies_on_postgres(pg_url: str, tmp_path: Path) -> None:
    """Registry-wide writes (migrations, the run log outside an apply) still exclude applies."""
    run.apply(_options(_sources(tmp_path / "a", "a", 1), pg_url, "team-a", 5))
    holder = open_registry(pg_url, writable=True, options=ConnectOptions(lock_owner="team-a"))
    other = open_registry(pg_url, writable=True)
    try:
        # no owner: the registry-wide lock
        with holder.locked(5), pytest.raises(LockTimeout), other.locked(0.3):
            pass
    finally:
        holder.close()
        other.close()


def test_same_name_from_two_owners_is_refused_by_the_database(pg_url: str, tmp_path: Path) -> None:
    """Correctness never depends on the lock: the unique index on lower(name) decides, so
    team B's create of a name team A just created (a plan made before it) writes nothing."""
    run.apply(_options(_sources(tmp_path / "a", "shared", 1), pg_url, "team-a", 5))
    index = sql_rows(pg_url, "SELECT indexdef FROM pg_indexes WHERE indexname = 'sources_name_key'")
    assert index == [
        ("CREATE UNIQUE INDEX sources_name_key ON public.sources USING btree (lower(name))",)
    ]
    registry = open_registry(pg_url, writable=True, options=ConnectOptions(lock_owner="team-b"))
    record = NewRecord(
        id=str(uuid.uuid4()),
        name="SHARED0",
        source_type="csv",
        connection={"file_path": "/d/x.csv"},
        description="",
        tags=[],
        managed_by="team-b",
        last_applied={},
    )
    run_entry = RunEntry(id=str(uuid.uuid4()), owner="team-b", actor="t", started_at=_now())
    try:
        with registry.locked(5), pytest.raises(RegistryError, match="registered concurrently"):
            registry.apply(Writes(creates=[record]), run_entry)
    finally:
        registry.close()
    assert sql_rows(pg_url, "SELECT name, managed_by FROM sources") == [("shared0", "team-a")]


def test_sqlite_keeps_one_writer(tmp_path: Path) -> None:
    registry = f"sqlite:///{tmp_path / 'r.db'}"
    run.apply(_options(_sources(tmp_path / "a", "a", 1), registry, "team-a", 5))
    holder = open_registry(registry, writable=True, options=ConnectOptions(lock_owner="team-a"))
    try:
        with holder.locked(5), pytest.raises(LockTimeout):
            run.apply(_options(_sources(tmp_path / "b", "b", 1), registry, "team-b", 0.3))
    finally:
        holder.close()


def _now() -> datetime:
    return datetime.now(UTC)
