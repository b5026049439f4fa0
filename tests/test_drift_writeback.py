"""`reconcile drift --write`: out-of-band changes written back into the manifests, end to end
on SQLite and PostgreSQL, byte for byte apart from the changed values, never a secret."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import CANARY, insert_raw, reconcile, sql_exec, sql_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sources_api import SourcesApi

from reconciler.cli import cli
from reconciler.manifests.documents import desired_document
from reconciler.manifests.loading import load_manifests
from reconciler.models import Record
from reconciler.planning.plan import plan
from reconciler.workflow.drift_writeback import plan_writeback, write_back

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
    (sources / "shop" / "shop.yaml").chmod(0o640)  # replaced atomically, its mode kept

    written = reconcile("drift", "--write", registry=registry_url, sources=sources)

    assert written.exit_code == 0, written.output
    assert (sources / "shop" / "shop.yaml").stat().st_mode & 0o777 == 0o640
    assert [p.name for p in (sources / "shop").iterdir()] == ["shop.yaml"]  # no temporary left
    shop = (sources / "shop" / "shop.yaml").as_posix()
    assert (
        f"Wrote drift back into 1 manifest file:\n"
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

    # Not through conftest's `reconcile`, which forbids the canary anywhere: the drift report
    # shows a non-sensitive live value as it is (redaction is structural: a `***` there would
    # confirm a guess), but --write must never put it into git.
    written = CliRunner().invoke(
        cli,
        ["drift", "--write", "--registry", registry_url, "--sources-dir", str(sources)],
        env={"ORDERS_DB_PASSWORD": CANARY, "NO_COLOR": "1"},
    )
    summary = written.stdout[written.stdout.index("Not written:") :]

    assert written.exit_code == 2  # drift left for a human
    assert CANARY not in summary
    assert all(CANARY not in p.read_text() for p in sources.rglob("*.yaml"))
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


# -- property: for any drift of the registry's fields, write-back then plan is empty --------

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=30)
tag_lists = st.lists(st.sampled_from(["crm", "pii", "sales", "x y", "yes", "123", "a: b"]))
drifts = st.fixed_dictionaries(
    {},
    optional={
        "orders.description": text,
        "orders.connection.port": st.integers(1, 65535),
        "orders.connection.host": text.filter(bool),
        "orders.connection.schema": st.text("abc_'\"#: ", min_size=1, max_size=8),
        "orders.tags": tag_lists,
        "customers.description": text,
        "customers.connection.file_path": text.filter(bool),
        "customers.tags": tag_lists,
        "events.description": text,
        "events.tags": tag_lists,
    },
)


def _drifted(record: Record, drift: dict[str, Any]) -> Record:
    """The record as someone changed it outside git."""
    update: dict[str, Any] = {"connection": dict(record.connection)}
    for key, value in drift.items():
        name, _, path = key.partition(".")
        if name != record.name:
            continue
        if path.startswith("connection."):
            update["connection"][path.removeprefix("connection.")] = value
        else:
            update[path] = tuple(value) if isinstance(value, list) else value
    return record.model_copy(update=update)


def _live(sources: Path, drift: dict[str, Any]) -> list[Record]:
    """The records an apply of `sources` leaves, then changed outside git by `drift`."""
    records = []
    for manifest in load_manifests(sources):
        doc = desired_document(manifest)
        live = Record(
            id=manifest.name,
            name=manifest.name,
            source_type=manifest.source_type,
            connection=doc["connection"],
            description=doc["description"],
            tags=tuple(doc["tags"]),
            managed_by="reconciler",
            last_applied=doc,
        )
        records.append(_drifted(live, drift))
    return records


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drift=drifts)
def test_any_drift_written_back_leaves_an_empty_plan(drift: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        sources = _sources(Path(folder))
        records = _live(sources, drift)
        before = plan(load_manifests(sources), records, owner="reconciler")
        done = write_back(plan_writeback(before))
        assert not done.not_written
        after = plan(load_manifests(sources), records, owner="reconciler")
        assert not after.has_changes, after.pending
        if not drift:
            assert (sources / "shop" / "shop.yaml").read_text() == COMMENTED


def test_a_document_that_would_be_reformatted_is_not_written(tmp_path: Path) -> None:
    sources = _sources(tmp_path)
    mixed = EVENTS + "lifecycle:\n  prevent_destroy: false\n"  # indents of 4 and 2
    (sources / "events.yaml").write_text(mixed)
    records = _live(sources, {"events.description": "Click events."})

    done = write_back(plan_writeback(plan(load_manifests(sources), records, owner="reconciler")))

    assert [(n.name, n.reason) for n in done.not_written] == [
        ("events", "its formatting cannot be kept by a round-trip YAML writer")
    ]
    assert (sources / "events.yaml").read_text() == mixed


@pytest.mark.parametrize("masked", [True, False], ids=["masked", "unmasked"])
def test_write_back_from_the_sources_api(masked: bool, tmp_path: Path) -> None:
    sources = _sources(tmp_path)
    state = f"sqlite:///{tmp_path / 'state.db'}"
    with SourcesApi.running(token="tok-wb") as api:
        api.mask_secrets = masked

        def run(*args: str) -> Any:
            return reconcile(
                *args,
                "--state",
                state,
                registry=api.url,
                sources=sources,
                RECONCILER_TOKEN="tok-wb",
            )

        assert run().exit_code == 0
        api.by_name("orders")["connection"]["port"] = 6432
        api.by_name("orders")["connection"]["password"] = "typed-in-the-ui"
        api.by_name("customers")["description"] = "Customer export, deduplicated."

        written = run("drift", "--write")

        # A masked password is not seen at all; a visible one is left for a human.
        assert written.exit_code == (0 if masked else 2), written.output
        assert ("  orders connection.password: sensitive\n" in written.stdout) is not masked
        expected = COMMENTED.replace("port: 5432", "port: 6432").replace(
            "  Customer export from the CRM.", "  Customer export, deduplicated."
        )
        assert (sources / "shop" / "shop.yaml").read_text() == expected
        assert "typed-in-the-ui" not in (sources / "shop" / "shop.yaml").read_text()
        plan = run("--dry-run", "--detailed-exitcode")
        fields = [line.split(":")[0].strip() for line in plan.stdout.splitlines()]
        assert [f for f in fields if f.startswith("~ ") and " update " not in f] == (
            [] if masked else ["~ connection.password"]  # only the secret: git restores it
        ), plan.stdout


def test_a_symlinked_manifest_is_not_written_through(tmp_path: Path) -> None:
    sources = _sources(tmp_path)
    # Discovery follows a link only to a file inside the sources directory; a hidden
    # directory there is not read on its own, so the target is read once, through the link.
    (sources / ".shared").mkdir()
    outside = sources / ".shared" / "events.yaml"
    (sources / "events.yaml").rename(outside)
    (sources / "events.yaml").symlink_to(outside)
    records = _live(sources, {"events.description": "Click events."})

    done = write_back(plan_writeback(plan(load_manifests(sources), records, owner="reconciler")))

    assert [(n.name, n.reason) for n in done.not_written] == [("events", "it is a symbolic link")]
    assert outside.read_text() == EVENTS and (sources / "events.yaml").is_symlink()
