"""`previous_names`: a renamed source keeps its record (same id) on SQLite and PostgreSQL,
is a replace on the Sources API, and is never an orphan plus a create."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from conftest import insert_raw, reconcile, snapshot, sql_rows
from sources_api import SourcesApi

from reconciler.manifests.documents import desired_document
from reconciler.models import Manifest, Record
from reconciler.planning.plan import plan

TOKEN = "tok-Secret-rename-77"


def _rename_customers(sources: Path, new: str = "crm_customers") -> None:
    path = sources / "customers.yml"
    text = path.read_text().replace(
        "name: customers\n", f"name: {new}\nprevious_names: [customers]\n"
    )
    path.write_text(text)


def _ids(url: str) -> dict[str, str]:
    return {str(name): str(id_) for id_, name in sql_rows(url, "SELECT id, name FROM sources")}


def test_rename_keeps_the_record_id_and_then_plans_nothing(
    registry_url: str, sources: Path
) -> None:
    assert reconcile(registry=registry_url, sources=sources).exit_code == 0
    before = _ids(registry_url)
    _rename_customers(sources)

    planned = reconcile("plan", "--prune", registry=registry_url, sources=sources)
    assert planned.exit_code == 0, planned.output
    assert "~ update crm_customers (csv)" in planned.stdout
    assert '~ name: "customers" → "crm_customers"' in planned.stdout
    assert "Plan: 0 to create, 1 to update, 0 to delete." in planned.stdout

    applied = reconcile("--prune", registry=registry_url, sources=sources)
    assert applied.exit_code == 0, applied.output
    after = _ids(registry_url)
    assert after["crm_customers"] == before["customers"] and "customers" not in after
    assert len(after) == 3
    # The old name is not remembered as applied: a new `customers` would be a plain create.
    keys = {row[0] for row in sql_rows(registry_url, "SELECT name_key FROM applied_sources")}
    assert "customers" not in keys and "crm_customers" in keys

    again = reconcile(
        "plan", "--prune", "--detailed-exitcode", registry=registry_url, sources=sources
    )
    assert again.exit_code == 0, again.output  # previous_names still in the manifest
    assert again.stdout.startswith("No changes.")


def test_a_new_source_under_an_old_name_is_a_create_not_a_restore(
    registry_url: str, sources: Path
) -> None:
    assert reconcile(registry=registry_url, sources=sources).exit_code == 0
    _rename_customers(sources)
    assert reconcile(registry=registry_url, sources=sources).exit_code == 0
    renamed = sources / "customers.yml"
    renamed.write_text(renamed.read_text().replace("previous_names: [customers]\n", ""))
    (sources / "again.yaml").write_text(
        "name: customers\nsource_type: csv\nconnection: {file_path: data/c2.csv}\n"
    )
    drift = reconcile("drift", registry=registry_url, sources=sources)
    assert drift.exit_code == 0, drift.output  # not "deleted outside git"


def test_a_record_owned_by_someone_else_is_not_taken_by_a_rename(
    registry_url: str, sources: Path
) -> None:
    assert reconcile(registry=registry_url, sources=sources).exit_code == 0
    insert_raw(registry_url, "legacy_events", managed_by="another-team")
    (sources / "events.yaml").write_text(
        "name: events_v2\nprevious_names: [legacy_events]\nsource_type: csv\n"
        "connection: {file_path: data/events.csv}\n"
    )
    before = snapshot(registry_url)["sources"]
    applied = reconcile("--prune", "--force-deletes", registry=registry_url, sources=sources)
    assert applied.exit_code == 1, applied.output
    assert "'legacy_events' (in previous_names) exists and is managed by 'another-team'" in (
        applied.output + applied.stderr
    )
    assert snapshot(registry_url)["sources"] == before  # the failed run is logged, no more


def test_moving_a_file_between_folders_changes_nothing(registry_url: str, sources: Path) -> None:
    assert reconcile(registry=registry_url, sources=sources).exit_code == 0
    (sources / "crm").mkdir()
    (sources / "customers.yml").rename(sources / "crm" / "customers.yml")
    (sources / "shop" / "orders.yaml").rename(sources / "orders.yaml")
    planned = reconcile(
        "plan", "--prune", "--detailed-exitcode", registry=registry_url, sources=sources
    )
    assert planned.exit_code == 0, planned.output
    assert planned.stdout.startswith("No changes.")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {
                "a.yaml": "name: a\nprevious_names: [events]\nsource_type: csv\n"
                "connection: {file_path: a.csv}\n"
            },
            "a.yaml:2: previous name 'events' is the current name of another source "
            "(defined at {dir}/events.yaml:1)",
        ),
        (
            {
                "a.yaml": "name: a\nprevious_names: [old]\nsource_type: csv\n"
                "connection: {file_path: a.csv}\n",
                "b.yaml": "name: b\nsource_type: csv\nprevious_names:\n  - x\n  - OLD\n"
                "connection: {file_path: b.csv}\n",
            },
            "b.yaml:5: previous name 'OLD' is also claimed by source 'a' (at {dir}/a.yaml:2)",
        ),
    ],
    ids=["current-elsewhere", "claimed-twice"],
)
def test_contradictory_previous_names_are_errors_with_file_and_line(
    registry_url: str, sources: Path, files: dict[str, str], message: str
) -> None:
    for name, text in files.items():
        (sources / name).write_text(text)
    result = reconcile("plan", registry=registry_url, sources=sources)
    assert result.exit_code == 1
    assert message.format(dir=sources) in result.stderr, result.stderr


# -- the Sources API: no update in place, so a rename is a replace -----------------------


@pytest.fixture
def api() -> Iterator[SourcesApi]:
    with SourcesApi.running(token=TOKEN) as server:
        yield server


def test_on_the_sources_api_a_rename_is_a_replace(
    api: SourcesApi, registry_url: str, sources: Path
) -> None:
    def http(*args: str) -> Result:
        result = reconcile(
            *args,
            "--state",
            registry_url,
            registry=api.url,
            sources=sources,
            RECONCILER_TOKEN=TOKEN,
        )
        assert TOKEN not in result.output + result.stderr
        return result

    assert http().exit_code == 0
    old_id = api.by_name("customers")["id"]
    _rename_customers(sources)
    planned = http("plan", "--prune")
    assert planned.exit_code == 0, planned.output
    out = planned.stdout
    assert "replace crm_customers (csv)" in out
    assert '~ name: "customers" → "crm_customers"' in out
    assert "0 to create" in out and "0 to delete" in out

    assert http("--prune").exit_code == 0
    names = sorted(r["name"] for r in api.records.values())
    assert names == ["crm_customers", "events", "orders"]
    assert api.by_name("crm_customers")["id"] != old_id
    again = http("plan", "--prune", "--detailed-exitcode")
    assert again.exit_code == 0, again.output


# -- the planner -------------------------------------------------------------------------


def _manifest(name: str, *previous: str) -> Manifest:
    return Manifest(
        name=name,
        source_type="csv",
        connection={"file_path": "x.csv"},
        previous_names=previous,
        file="s/x.yaml",
        line=1,
    )


def _record(manifest: Manifest, name: str, owner: str = "reconciler") -> Record:
    doc = desired_document(manifest)
    return Record(
        id=f"id-{name}",
        name=name,
        source_type="csv",
        connection=doc["connection"],
        managed_by=owner,
        last_applied={**doc, "name": name},
    )


def test_the_current_name_wins_over_a_previous_one() -> None:
    m = _manifest("new", "old")
    p = plan([m], [_record(m, "old"), _record(m, "new")], owner="reconciler", prune=True)
    assert [(c.action, c.name, c.record_id) for c in p.changes] == [
        ("noop", "new", "id-new"),
        ("delete", "old", "id-old"),
    ]


def test_a_rename_is_an_update_of_the_name_or_a_replace_without_in_place_updates() -> None:
    m = _manifest("new", "gone", "old")
    for in_place, action in ((True, "update"), (False, "replace")):
        p = plan([m], [_record(m, "old")], owner="reconciler", prune=True, in_place=in_place)
        assert [(c.action, c.record_id) for c in p.changes] == [(action, "id-old")]
        assert [(f.path, f.old, f.new) for f in p.changes[0].fields] == [("name", "old", "new")]
        assert not p.orphans and p.guard is None


def test_a_previous_name_that_is_some_manifests_current_name_is_not_taken() -> None:
    a, b = _manifest("a"), _manifest("b", "a")
    p = plan([b, a], [_record(a, "a")], owner="reconciler")
    assert [(c.action, c.name) for c in p.changes] == [("create", "b"), ("noop", "a")]


def test_a_saved_plan_with_a_rename_applies(
    registry_url: str, sources: Path, tmp_path: Path
) -> None:
    assert reconcile(registry=registry_url, sources=sources).exit_code == 0
    before = _ids(registry_url)
    _rename_customers(sources)
    out = tmp_path / "rename.plan"
    assert (
        reconcile("plan", "--out", str(out), registry=registry_url, sources=sources).exit_code == 0
    )
    applied = reconcile("apply", str(out), registry=registry_url, sources=sources)
    assert applied.exit_code == 0, applied.output  # the record is found by id, not by name
    assert _ids(registry_url)["crm_customers"] == before["customers"]
