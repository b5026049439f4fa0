"""What a run accepts on its own (`schemacheck.evaluate`) and how snapshots are stored
(`record_snapshots` / `last_snapshots`) on both registry backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import sql_rows

from reconciler.backends import open_registry
from reconciler.backends.base import ConnectOptions, SchemaSnapshot
from reconciler.backends.sql import open_sql
from reconciler.backends.sql.migrations import SCHEMA_SNAPSHOTS_VERSION
from reconciler.models import Manifest, ObservedColumn, ObservedTable, TableMissing, Unreachable
from reconciler.tableschema.check import SchemaOptions, evaluate, select, snapshot_hash, worst

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def table(*specs: str) -> ObservedTable:
    """ "name type [!]" per column; `!` marks NOT NULL; positions follow the order."""
    columns = []
    for i, spec in enumerate(specs):
        name, type_ = spec.rstrip("!").split(" ", 1)
        columns.append(
            ObservedColumn(name=name, type=type_, nullable=not spec.endswith("!"), position=i + 1)
        )
    return ObservedTable(source="orders", columns=tuple(columns))


def manifest(**over: Any) -> Manifest:
    doc: dict[str, Any] = {
        "name": "orders",
        "source_type": "csv",
        "connection": {"file_path": "orders.csv"},
        **over,
    }
    return Manifest(**doc)


def baseline_of(observed: ObservedTable) -> SchemaSnapshot:
    columns = tuple(c.model_dump() for c in observed.columns)
    return SchemaSnapshot(
        name="orders",
        columns=columns,
        hash=snapshot_hash(columns),
        observed_at=NOW - timedelta(days=1),
        accepted_at=NOW - timedelta(days=1),
        accepted_by="auto",
    )


BEFORE = table("id bigint!", "qty smallint", "note text")


def judge(
    live: Any, *, base: SchemaSnapshot | None = None, accept_as: str | None = None, **over: Any
) -> tuple[str, list[tuple[str, str | None, str]], str]:
    verdict, snapshot = evaluate(
        manifest(**over),
        live,
        base,
        perspective=over.get("schema_perspective", "consumer"),
        accept_as=accept_as,
        now=NOW,
    )
    accepted = "" if snapshot is None else snapshot.accepted_by
    return verdict.status, [(f.kind, f.column, f.against) for f in verdict.findings], accepted


def test_first_observation_is_the_baseline() -> None:
    assert judge(BEFORE) == ("first", [], "auto")


def test_unchanged_and_non_breaking_are_accepted_automatically() -> None:
    base = baseline_of(BEFORE)
    assert judge(BEFORE, base=base) == ("unchanged", [], "auto")
    wider = table("id bigint!", "qty integer", "note text", "extra text")
    assert judge(wider, base=base) == (
        "changed",
        [("type_widened", "qty", "snapshot"), ("column_added", "extra", "snapshot")],
        "auto",
    )


def test_breaking_is_kept_as_history_until_a_person_accepts_it() -> None:
    base = baseline_of(BEFORE)
    dropped = table("id bigint!", "qty smallint")
    assert judge(dropped, base=base) == ("breaking", [("column_dropped", "note", "snapshot")], "")
    assert judge(dropped, base=base, accept_as="alice") == (
        "accepted",
        [("column_dropped", "note", "snapshot")],
        "alice",
    )


def test_a_contract_that_holds_accepts_the_change() -> None:
    base = baseline_of(BEFORE)
    dropped = table("id bigint!", "qty smallint")
    contract = [{"name": "id", "type": "int8", "nullable": False}, {"name": "qty", "type": "int2"}]
    assert judge(dropped, base=base, columns=contract) == (
        "accepted",
        [("column_dropped", "note", "snapshot")],
        "contract",
    )
    # Columns beyond the contract are not reported on every run (only once, as drift).
    assert judge(BEFORE, base=base, columns=contract) == ("unchanged", [], "auto")


def test_a_broken_contract_is_reported_on_every_run_and_not_twice() -> None:
    base = baseline_of(BEFORE)
    dropped = table("id bigint!", "qty smallint")
    contract = [{"name": "id", "type": "bigint"}, {"name": "note", "type": "text"}]
    status, findings, accepted = judge(dropped, base=base, columns=contract)
    assert status == "breaking" and accepted == ""
    # The drop is the contract's finding; the snapshot does not repeat it.
    assert findings == [("column_dropped", "note", "contract")]
    # Accepting the drift does not silence the contract.
    assert judge(dropped, base=base, columns=contract, accept_as="bob")[0] == "breaking"


def test_missing_and_unreachable_record_nothing() -> None:
    verdict, snapshot = evaluate(
        manifest(), TableMissing(source="orders"), None, perspective="consumer", now=NOW
    )
    assert (verdict.status, snapshot) == ("missing", None)
    unreachable = Unreachable(source="orders", reason="db:9: connection refused")
    verdict, snapshot = evaluate(manifest(), unreachable, None, perspective="consumer", now=NOW)
    assert (verdict.status, snapshot) == ("unreachable", None)
    assert verdict.findings[0].message == "cannot introspect: db:9: connection refused"


def test_policy_decides_failing_and_exit_codes_rank() -> None:
    base = baseline_of(BEFORE)
    dropped = table("id bigint!", "qty smallint")
    for policy, failing in (("warn", False), ("fail", True)):
        verdict, _ = evaluate(
            manifest(schema_policy=policy), dropped, base, perspective="consumer", now=NOW
        )
        assert verdict.failing is failing and verdict.pending
    assert worst(0, 2) == 2 and worst(2, 1) == 1 and worst(1, 3) == 3 and worst(0, 0) == 0


def test_accept_selects_the_named_sources() -> None:
    manifests = [manifest(), manifest(name="Events")]
    assert [m.name for m in select(manifests, SchemaOptions(accept=("events",)))] == ["Events"]
    assert len(select(manifests, SchemaOptions())) == 2


# -- storage, on both backends ------------------------------------------------------------


def snap(columns: tuple[dict[str, Any], ...], *, at: datetime, by: str = "") -> SchemaSnapshot:
    return SchemaSnapshot(
        name="Orders",
        columns=columns,
        hash=snapshot_hash(columns),
        observed_at=at,
        accepted_at=at if by else None,
        accepted_by=by,
    )


A = ({"name": "id", "type": "bigint", "nullable": False, "position": 1},)
B = ({"name": "id", "type": "integer", "nullable": False, "position": 1},)


def test_snapshots_history_baseline_and_no_duplicates(registry_url: str) -> None:
    registry = open_sql(registry_url, writable=True, options=ConnectOptions())
    try:
        assert registry.last_snapshots(["orders"]) == {}  # not even initialised
        registry.init()
        assert registry.record_snapshots([snap(A, at=NOW, by="auto")]) == 1
        assert registry.record_snapshots([snap(A, at=NOW + timedelta(hours=1), by="auto")]) == 0
        assert registry.record_snapshots([snap(B, at=NOW + timedelta(hours=2))]) == 1
        assert registry.record_snapshots([snap(B, at=NOW + timedelta(hours=3))]) == 0
        latest = registry.last_snapshots(["ORDERS"])["orders"]
        baseline = registry.last_snapshots(["orders"], accepted=True)["orders"]
        assert (latest.hash, latest.accepted) == (snapshot_hash(B), False)
        assert (baseline.hash, baseline.accepted_by) == (snapshot_hash(A), "auto")
        assert baseline.columns == A and baseline.observed_at == NOW
        # Accepting the same observation marks the row (counted as recorded); it adds none.
        assert registry.record_snapshots([snap(B, at=NOW + timedelta(hours=4), by="alice")]) == 1
        baseline = registry.last_snapshots(["orders"], accepted=True)["orders"]
        assert (baseline.hash, baseline.accepted_by) == (snapshot_hash(B), "alice")
        # Back to A: a new row (consecutive duplicates only are skipped).
        assert registry.record_snapshots([snap(A, at=NOW + timedelta(hours=5), by="auto")]) == 1
        assert registry.last_snapshots(["other"]) == {}
    finally:
        registry.close()
    rows = sql_rows(registry_url, "SELECT seq, accepted_by FROM schema_snapshots ORDER BY seq")
    assert [tuple(r) for r in rows] == [(1, "auto"), (2, "alice"), (3, "auto")]


def test_read_only_registry_of_an_older_version_has_no_snapshots(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    registry = open_registry(url, writable=True)
    registry.init()
    registry.close()
    # As a registry last migrated by a reconciler from before schema snapshots.
    sql_rows(url, "DROP TABLE schema_snapshots")
    sql_rows(url, f"DELETE FROM schema_migrations WHERE version >= {SCHEMA_SNAPSHOTS_VERSION}")
    reader = open_sql(url, writable=False, options=ConnectOptions())
    try:
        assert reader.last_snapshots(["orders"]) == {}
    finally:
        reader.close()


@pytest.mark.parametrize("perspective", ["consumer", "producer"])
def test_perspective_comes_from_the_manifest(perspective: str) -> None:
    base = baseline_of(BEFORE)
    wider = table("id bigint!", "qty integer", "note text")
    status, _, _ = judge(wider, base=base, schema_perspective=perspective)
    assert status == ("changed" if perspective == "consumer" else "breaking")
