"""--select / --exclude: dbt's selectors on plan, apply, drift and schema, on SQLite and
PostgreSQL; prune and its guard stay inside the selection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import insert_raw, reconcile, sql_rows

from reconciler.models import Manifest, Record
from reconciler.planning.selection import SelectionError, parse, select, select_manifests


def _names(url: str) -> list[str]:
    return sorted(str(r[0]) for r in sql_rows(url, "SELECT name FROM sources"))


# -- parsing and matching (pure) ---------------------------------------------------------


def _m(name: str, file: str, tags: tuple[str, ...] = (), source_type: str = "csv") -> Manifest:
    return Manifest(name=name, source_type=source_type, connection={}, tags=tags, file=file, line=1)


MANIFESTS = [
    _m("orders", "sources.d/shop/orders.yaml", ("sales", "pii")),
    _m("Orders_EU", "sources.d/shop/eu/orders.yaml", ("sales",)),
    _m("ledger", "sources.d/finance/ledger.yaml", ("pii",), "postgres"),
    _m("events", "sources.d/events.yaml"),
]


@pytest.mark.parametrize(
    ("select_", "exclude", "expected"),
    [
        ((), (), ["orders", "Orders_EU", "ledger", "events"]),
        (("orders*",), (), ["orders", "Orders_EU"]),  # bare word = name:, case-insensitive
        (("name:ORDERS",), (), ["orders"]),
        (("tag:pii",), (), ["orders", "ledger"]),
        (("type:post*",), (), ["ledger"]),
        (("path:sources.d/shop",), (), ["orders", "Orders_EU"]),  # relative to the cwd
        (("path:shop/eu",), (), ["Orders_EU"]),  # relative to the sources dir
        (("path:sources.d/sho",), (), []),  # a prefix of whole path components
        (("path:./sources.d/finance/",), (), ["ledger"]),
        (("path:*/ledger.yaml",), (), ["ledger"]),
        (("tag:pii tag:sales",), (), ["orders", "Orders_EU", "ledger"]),  # space: union
        (("tag:pii,tag:sales",), (), ["orders"]),  # comma: intersection
        (("tag:pii", "events"), (), ["orders", "ledger", "events"]),  # repeated: union
        ((), ("tag:pii",), ["Orders_EU", "events"]),
        (("tag:sales",), ("path:shop/eu",), ["orders"]),
    ],
)
def test_selectors(select_: tuple[str, ...], exclude: tuple[str, ...], expected: list[str]) -> None:
    chosen = select_manifests(parse(select_, exclude), MANIFESTS, sources_dir="sources.d")
    assert [m.name for m in chosen] == expected


def test_an_absolute_path_selects_too() -> None:
    where = Path("sources.d/finance").resolve().as_posix()
    chosen = select_manifests(parse([f"path:{where}"]), MANIFESTS, sources_dir="sources.d")
    assert [m.name for m in chosen] == ["ledger"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("owner:x", "unknown selector method 'owner' in 'owner:x'"),
        ("tag:", "empty selector in 'tag:'"),
        ("tag:a,", "empty selector in 'tag:a,'"),
    ],
)
def test_bad_selectors_are_errors(value: str, message: str) -> None:
    with pytest.raises(SelectionError, match=message):
        parse([value])


def _r(name: str, tags: tuple[str, ...] = ()) -> Record:
    return Record(id=f"id-{name}", name=name, source_type="csv", connection={}, tags=tags)


def test_records_follow_their_manifest_and_the_others_match_on_their_own() -> None:
    renamed = Manifest(
        name="sales",
        source_type="csv",
        connection={},
        previous_names=("old_sales",),
        file="sources.d/shop/sales.yaml",
        line=1,
    )
    manifests = [*MANIFESTS, renamed]
    records = [_r("ORDERS"), _r("old_sales"), _r("orphan_shop", ("pii",)), _r("shopx")]
    by = {
        "path:sources.d/shop": ["ORDERS", "old_sales"],  # path: never a record without file
        "tag:pii": ["ORDERS", "orphan_shop"],  # ORDERS via its manifest's tags
        "name:old*": [],  # claimed by `sales`, which is not selected: never taken alone
        "name:sales": ["old_sales"],  # a rename is never split
        "shop*": ["shopx"],
    }
    for value, expected in by.items():
        _, kept = select(parse([value]), manifests, records, sources_dir="sources.d")
        assert [r.name for r in kept] == expected, value


# -- end to end, on SQLite and PostgreSQL ------------------------------------------------


def test_plan_and_apply_only_the_selection(registry_url: str, sources: Path) -> None:
    planned = reconcile("plan", "--select", "tag:crm", registry=registry_url, sources=sources)
    assert planned.exit_code == 0, planned.output
    assert "+ create customers (csv)" in planned.stdout
    assert "orders" not in planned.stdout and "events" not in planned.stdout
    assert "note: partial run (--select/--exclude): 1 of 3 sources" in planned.stderr

    applied = reconcile(
        "-s", "customers events", "--exclude", "events", registry=registry_url, sources=sources
    )
    assert applied.exit_code == 0, applied.output
    assert _names(registry_url) == ["customers"]
    rest = reconcile("plan", "--detailed-exitcode", registry=registry_url, sources=sources)
    assert rest.exit_code == 2 and "Plan: 2 to create" in rest.stdout  # the rest: not converged


def test_prune_deletes_only_inside_the_selection(registry_url: str, sources: Path) -> None:
    assert reconcile(registry=registry_url, sources=sources).exit_code == 0
    (sources / "customers.yml").unlink()
    (sources / "events.yaml").unlink()
    pruned = reconcile(
        "--prune",
        "--force-deletes",
        "-s",
        "tag:crm name:orders",
        registry=registry_url,
        sources=sources,
    )
    assert pruned.exit_code == 0, pruned.output
    assert "Apply complete: 0 created, 0 updated, 1 deleted" in pruned.stdout
    assert _names(registry_url) == ["events", "orders"]  # events: outside, left alone


def test_the_prune_guard_counts_inside_the_selection(registry_url: str, sources: Path) -> None:
    assert reconcile(registry=registry_url, sources=sources).exit_code == 0
    (sources / "events.yaml").unlink()
    inside = reconcile("plan", "--prune", "-s", "events", registry=registry_url, sources=sources)
    # 1 of the 1 owned record in the selection is over half: refused (1 of 3 would not be).
    expected = "it would delete 1 of the 1 records this owner manages in the selection"
    assert expected in inside.stdout + inside.stderr
    whole = reconcile("plan", "--prune", registry=registry_url, sources=sources)
    assert "prune refused" not in whole.stdout + whole.stderr


def test_drift_looks_only_inside_the_selection(registry_url: str, sources: Path) -> None:
    assert reconcile(registry=registry_url, sources=sources).exit_code == 0
    insert_raw(registry_url, "by_hand")  # tags: [manual], unmanaged: drift "added"
    assert reconcile("drift", registry=registry_url, sources=sources).exit_code == 2
    outside = reconcile("drift", "-s", "tag:crm", registry=registry_url, sources=sources)
    assert outside.exit_code == 0, outside.output
    assert "note: partial run (--select/--exclude): 1 of 3 sources" in outside.stderr
    inside = reconcile("drift", "-s", "tag:manual", registry=registry_url, sources=sources)
    assert inside.exit_code == 2 and "by_hand" in inside.stdout
    by_path = reconcile("drift", "-s", "path:.", registry=registry_url, sources=sources)
    assert by_path.exit_code == 0  # a record without a manifest has no path


def test_schema_checks_only_the_selection(
    registry_url: str, sources: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECONCILER_DATA_DIRS", str(tmp_path))
    data = tmp_path / "pay.csv"
    data.write_text("id,amount\n1,2\n")
    doc = {"name": "payments", "source_type": "csv", "connection": {"file_path": str(data)}}
    (sources / "payments.yaml").write_text(json.dumps(doc))
    checked = reconcile(
        "schema", "-o", "json", "--select", "payments", registry=registry_url, sources=sources
    )
    assert checked.exit_code == 0, checked.output
    assert [s["name"] for s in json.loads(checked.stdout)["schema"]["sources"]] == ["payments"]


def test_a_saved_plan_keeps_its_selection(registry_url: str, sources: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    saved = reconcile(
        "plan", "--out", str(out), "-s", "events", registry=registry_url, sources=sources
    )
    assert saved.exit_code == 0, saved.output
    again = reconcile("apply", str(out), "-s", "events", registry=registry_url, sources=sources)
    assert again.exit_code == 1 and "--select: fixed when the plan was saved" in again.stderr
    applied = reconcile("apply", str(out), registry=registry_url, sources=sources)
    assert applied.exit_code == 0, applied.output
    assert _names(registry_url) == ["events"]


def test_a_rename_under_a_selection_is_still_a_rename(registry_url: str, sources: Path) -> None:
    assert reconcile(registry=registry_url, sources=sources).exit_code == 0
    path = sources / "events.yaml"
    path.write_text(
        path.read_text().replace("name: events", "name: clicks\nprevious_names: [events]")
    )
    applied = reconcile("--prune", "-s", "clicks", registry=registry_url, sources=sources)
    assert applied.exit_code == 0, applied.output
    assert "Apply complete: 0 created, 1 updated, 0 deleted" in applied.stdout
    assert _names(registry_url) == ["clicks", "customers", "orders"]


def test_a_bad_selector_is_a_usage_error(registry_url: str, sources: Path) -> None:
    result = reconcile("plan", "--select", "owner:me", registry=registry_url, sources=sources)
    assert result.exit_code != 0
    assert "unknown selector method 'owner'" in result.stderr
