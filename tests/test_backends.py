"""The backend contract, run the same way over SQLite and a real PostgreSQL server."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from conftest import insert_raw, snapshot

from reconciler.backends import open_registry
from reconciler.backends.base import (
    NewRecord,
    RecordDelete,
    RecordReplace,
    RecordUpdate,
    RunEntry,
    Writes,
)
from reconciler.backends.sql.migrations import migrations
from reconciler.errors import RegistryError, StaleRecordError


def new(name: str, **over: Any) -> NewRecord:
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "name": name,
        "source_type": "csv",
        "connection": {"file_path": f"/data/{name}.csv"},
        "description": "",
        "tags": ["a"],
        "managed_by": "reconciler",
        "last_applied": {"name": name},
    }
    fields.update(over)
    return NewRecord(**fields)


def run() -> RunEntry:
    return RunEntry(
        id=str(uuid.uuid4()), owner="reconciler", actor="test", started_at=datetime.now(UTC)
    )


def test_read_only_open_creates_nothing(registry_url: str) -> None:
    before = snapshot(registry_url)
    registry = open_registry(registry_url, writable=False)
    assert registry.list_records() == []
    assert registry.list_runs() == []
    registry.close()
    assert snapshot(registry_url) == before


def test_read_only_registry_refuses_writes(registry_url: str) -> None:
    registry = open_registry(registry_url, writable=False)
    with pytest.raises(RegistryError, match="read-only"):
        registry.init()
    registry.close()


def test_init_is_versioned_and_idempotent(registry_url: str) -> None:
    registry = open_registry(registry_url, writable=True)
    assert registry.init() == len(migrations({"uuid": "", "json": "", "time": ""}))
    assert registry.init() == 0
    registry.close()


def test_create_update_delete_round_trip(registry_url: str) -> None:
    registry = open_registry(registry_url, writable=True)
    registry.init()
    a, b = new("alpha", connection={"file_path": "/a.csv", "n": 1}), new("beta")
    registry.apply(Writes(creates=[a, b]), run())
    records = {r.name: r for r in registry.list_records()}
    assert set(records) == {"alpha", "beta"}
    alpha = records["alpha"]
    assert alpha.id == a.id and alpha.version == 1 and alpha.managed_by == "reconciler"
    assert alpha.connection == {"file_path": "/a.csv", "n": 1}
    assert alpha.tags == ("a",) and alpha.last_applied == {"name": "alpha"}
    assert alpha.registered_by == "test" and alpha.status == "active"
    assert alpha.registered_at is not None

    changed = new("alpha", id=a.id, description="now described")
    registry.apply(
        Writes(
            updates=[RecordUpdate(changed, 1, "reconciler")],
            deletes=[RecordDelete(b.id, "beta", 1, "reconciler")],
        ),
        run(),
    )
    (only,) = registry.list_records()
    assert only.description == "now described" and only.version == 2
    assert [r.outcome for r in registry.list_runs()] == ["success", "success"]
    registry.close()


def test_stale_version_writes_nothing_at_all(registry_url: str) -> None:
    registry = open_registry(registry_url, writable=True)
    registry.init()
    a = new("alpha")
    registry.apply(Writes(creates=[a]), run())
    before = snapshot(registry_url)
    with pytest.raises(StaleRecordError, match="alpha"):
        registry.apply(
            Writes(
                creates=[new("gamma")],
                updates=[RecordUpdate(new("alpha", id=a.id), 7, "reconciler")],
            ),
            run(),
        )
    assert [r.name for r in registry.list_records()] == ["alpha"]
    with pytest.raises(StaleRecordError):
        registry.apply(Writes(deletes=[RecordDelete(a.id, "alpha", 2, "reconciler")]), run())
    registry.close()
    assert snapshot(registry_url) == before


def test_names_are_unique_case_insensitively(registry_url: str) -> None:
    registry = open_registry(registry_url, writable=True)
    registry.init()
    registry.apply(Writes(creates=[new("Orders")]), run())
    with pytest.raises(RegistryError, match="registered concurrently"):
        registry.apply(Writes(creates=[new("other"), new("orders")]), run())
    assert [r.name for r in registry.list_records()] == ["Orders"]
    registry.close()


def test_records_inserted_by_hand_are_listed_without_owner(registry_url: str) -> None:
    registry = open_registry(registry_url, writable=True)
    registry.init()
    insert_raw(registry_url, "manual")
    (record,) = registry.list_records()
    assert record.managed_by is None and record.last_applied is None and record.version == 1
    registry.close()


def test_failed_runs_are_logged(registry_url: str) -> None:
    registry = open_registry(registry_url, writable=True)
    registry.init()
    entry = run()
    entry.outcome, entry.message = "failed", "boom"
    registry.record_run(entry)
    (logged,) = registry.list_runs()
    assert (logged.id, logged.outcome, logged.message) == (entry.id, "failed", "boom")
    registry.close()


def test_newer_schema_version_is_refused(registry_url: str) -> None:
    registry = open_registry(registry_url, writable=True)
    registry.init()
    registry.close()

    from conftest import sql_rows  # noqa: F401  (keeps helpers in one place)

    if registry_url.startswith("sqlite"):
        with sqlite3.connect(registry_url[len("sqlite:///") :]) as conn:
            conn.execute("INSERT INTO schema_migrations VALUES (99, '2030-01-01')")
    else:
        with psycopg.connect(registry_url) as conn:
            conn.execute("INSERT INTO schema_migrations VALUES (99, now())")
    registry = open_registry(registry_url, writable=True)
    with pytest.raises(RegistryError, match="schema version 99 is newer"):
        registry.init()
    registry.close()


def test_replace_deletes_then_registers_under_a_new_id(registry_url: str) -> None:
    registry = open_registry(registry_url, writable=True)
    registry.init()
    a = new("alpha")
    registry.apply(Writes(creates=[a]), run())
    fresh = new("alpha", description="replaced")
    registry.apply(Writes(replaces=[RecordReplace(fresh, a.id, 1, "reconciler")]), run())
    (only,) = registry.list_records()
    assert (only.id, only.description, only.version) == (fresh.id, "replaced", 1)
    assert registry.known("reconciler") == {"alpha": fresh.id}
    assert registry.list_runs()[0].replaced == 0  # counted by execution, not the backend
    before = snapshot(registry_url)
    with pytest.raises(StaleRecordError, match="alpha"):
        registry.apply(Writes(replaces=[RecordReplace(new("alpha"), a.id, 1, "reconciler")]), run())
    registry.close()
    assert snapshot(registry_url) == before
