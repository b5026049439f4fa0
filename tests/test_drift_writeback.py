"""`reconcile drift --write`: out-of-band changes written back into the manifests, end to end
on SQLite and PostgreSQL, byte for byte apart from the changed values, never a secret."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import CANARY, insert_raw, reconcile, sql_exec, sql_rows

COMMENTED = """\
# Sources of the web shop.
# Owned by the data team; see the runbook.

name: orders            # the name the catalog shows
source_type: postgres
description: "Orders placed in the web shop."
connection:
  host: 'db.internal'
  port: 5432  # the primary
  dbname: shop
  user: reporting
  password: ${env:ORDERS_DB_PASSWORD}

  table: orders
tags: [sales, pii]
---
# The CRM export.
name: customers
source_type: csv
description: >-
  Customer export from the CRM.
connection: {file_path: "data/customers.csv"}
tags:
  - crm   # from the CRM team
  - 'marketing'
"""

EVENTS = """\
name: events
source_type: csv
connection:
    file_path: data/events.csv
"""


def _sources(tmp_path: Path) -> Path:
    root = tmp_path / "sources.d"
    (root / "shop").mkdir(parents=True)
    (root / "shop" / "shop.yaml").write_text(COMMENTED)
    (root / "events.yaml").write_text(EVENTS)
    return root


def _connection(url: str, name: str) -> dict[str, object]:
    value = sql_rows(url, f"SELECT connection FROM sources WHERE name = '{name}'")[0][0]
    return value if isinstance(value, dict) else json.loads(value)


def _set(url: str, name: str, column: str, value: object) -> None:
    """Edit a live row as someone in the registry's UI would."""
    cast = "" if url.startswith("sqlite") or column == "description" else "::jsonb"
    text = value if column == "description" else json.dumps(value)
    sql_exec(url, f"UPDATE sources SET {column} = ?{cast} WHERE name = '{name}'", (text,))


def _no_changes(url: str, sources: Path) -> None:
    plan = reconcile("--dry-run", "--detailed-exitcode", registry=url, sources=sources)
    assert plan.exit_code == 0, plan.stdout


def test_write_back_keeps_every_other_byte(registry_url: str, tmp_path: Path) -> None:
    sources = _sources(tmp_path)
    assert reconcile(registry=registry_url, sources=sources).exit_code == 0
    _set(registry_url, "orders", "description", "Orders placed in the shop (v2).")
    _set(
        registry_url, "orders", "connection", {**_connection(registry_url, "orders"), "port": 6432}
    )
    _set(registry_url, "orders", "tags", ["sales", "pii", "finance"])
    _set(registry_url, "customers", "connection", {"file_path": "data/crm/customers.csv"})
    _set(registry_url, "customers", "tags", ["crm", "marketing", "gdpr"])

    written = reconcile("drift", "--write", registry=registry_url, sources=sources)

    assert written.exit_code == 0, written.output
    shop = (sources / "shop" / "shop.yaml").as_posix()
    assert (
        f"Wrote drift back into 1 manifest file(s):\n"
        f"  {shop}: orders: connection.port, description, tags\n"
        f"  {shop}: customers: connection.file_path, tags\n"
    ) in written.stdout
    expected = (
        COMMENTED.replace('"Orders placed in the web shop."', '"Orders placed in the shop (v2)."')
        .replace("port: 5432", "port: 6432")
        .replace("[sales, pii]", "[sales, pii, finance]")
        .replace('"data/customers.csv"', '"data/crm/customers.csv"')
        .replace("  - 'marketing'\n", "  - 'marketing'\n  - gdpr\n")
    )
    assert (sources / "shop" / "shop.yaml").read_text() == expected
    assert (sources / "events.yaml").read_text() == EVENTS
    _no_changes(registry_url, sources)
    again = reconcile("drift", "--write", registry=registry_url, sources=sources)
    assert again.exit_code == 0 and "No drift written back" in again.stdout
    assert (sources / "shop" / "shop.yaml").read_text() == expected


def test_fields_added_and_removed_out_of_band(registry_url: str, tmp_path: Path) -> None:
    sources = _sources(tmp_path)
    reconcile(registry=registry_url, sources=sources)
    _set(
        registry_url,
        "orders",
        "connection",
        {**_connection(registry_url, "orders"), "schema": "sales"},
    )
    _set(registry_url, "orders", "tags", [])
    _set(registry_url, "customers", "description", "")
    _set(registry_url, "events", "description", "Click events.")

    written = reconcile("drift", "--write", registry=registry_url, sources=sources)

    assert written.exit_code == 0, written.output
    expected = COMMENTED.replace(
        "  table: orders\ntags: [sales, pii]\n", "  table: orders\n  schema: sales\n"
    ).replace("description: >-\n  Customer export from the CRM.\n", "")
    assert (sources / "shop" / "shop.yaml").read_text() == expected
    assert (sources / "events.yaml").read_text() == EVENTS + "description: Click events.\n"
    _no_changes(registry_url, sources)


def test_a_drifted_secret_is_never_written(registry_url: str, tmp_path: Path) -> None:
    sources = _sources(tmp_path)
    reconcile(registry=registry_url, sources=sources)
    live = {**_connection(registry_url, "orders"), "password": "hunter2-by-hand"}
    _set(registry_url, "orders", "connection", live)
    _set(registry_url, "events", "description", f"the password is {CANARY}")

    written = reconcile("drift", "--write", registry=registry_url, sources=sources)

    assert written.exit_code == 2  # drift left for a human
    assert "  orders connection.password: sensitive\n" in written.stdout
    assert "  events description: sensitive\n" in written.stdout
    assert (sources / "shop" / "shop.yaml").read_text() == COMMENTED
    assert (sources / "events.yaml").read_text() == EVENTS
    assert "hunter2" not in written.output


def test_deleted_unmanaged_and_other_owners_records_are_not_written(
    registry_url: str, tmp_path: Path
) -> None:
    sources = _sources(tmp_path)
    reconcile(registry=registry_url, sources=sources)
    sql_exec(registry_url, "DELETE FROM sources WHERE name = 'events'")
    insert_raw(registry_url, "sneaky")
    other = tmp_path / "team-b"
    other.mkdir()
    (other / "b.yaml").write_text(
        "name: b_only\nsource_type: csv\nconnection: {file_path: b.csv}\n"
    )
    assert reconcile("--owner", "team-b", registry=registry_url, sources=other).exit_code == 0
    _set(registry_url, "b_only", "description", "edited by hand")

    written = reconcile("drift", "--write", registry=registry_url, sources=sources)

    assert written.exit_code == 2
    assert (sources / "events.yaml").read_text() == EVENTS  # the manifest is kept
    assert "  events: deleted outside git; the manifest is kept" in written.stdout
    assert "`reconcile import --name sneaky --out DIR`" in written.stdout
    assert "b_only" not in written.stdout  # another owner's record: not ours to write
    assert (sources / "shop" / "shop.yaml").read_text() == COMMENTED


def test_conflicts_and_invalid_live_values_are_left_alone(
    registry_url: str, tmp_path: Path
) -> None:
    sources = _sources(tmp_path)
    reconcile(registry=registry_url, sources=sources)
    _set(registry_url, "orders", "description", "edited in the UI")
    _set(registry_url, "events", "connection", {"file_path": ""})  # invalid in a manifest
    shop = sources / "shop" / "shop.yaml"
    in_git = COMMENTED.replace("Orders placed in the web shop.", "From git.")
    shop.write_text(in_git)

    written = reconcile("drift", "--write", registry=registry_url, sources=sources)

    assert written.exit_code == 2
    assert "  orders description: changed in git too (a conflict)" in written.stdout
    assert "  events: the live values do not make a valid manifest: " in written.stdout
    assert shop.read_text() == in_git
    assert (sources / "events.yaml").read_text() == EVENTS


def test_json_output_stays_json(registry_url: str, tmp_path: Path) -> None:
    sources = _sources(tmp_path)
    reconcile(registry=registry_url, sources=sources)
    _set(registry_url, "events", "description", "Click events.")

    written = reconcile("drift", "--write", "-o", "json", registry=registry_url, sources=sources)

    assert written.exit_code == 0
    assert [c["name"] for c in json.loads(written.stdout)["drift"]["changed"]] == ["events"]
    assert "events: description" in written.stderr
