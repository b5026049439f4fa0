"""The pure plan: canonicalisation, matching, ownership, prune. No I/O at all."""

from __future__ import annotations

from typing import Any

from reconciler.manifests.documents import canonical, desired_document
from reconciler.models import FieldChange, Manifest, Record
from reconciler.planning.plan import SecretFingerprints, plan

OWNER = "reconciler"


def manifest(name: str = "orders", **over: Any) -> Manifest:
    body: dict[str, Any] = {
        "name": name,
        "source_type": "postgres",
        "connection": {"host": "db", "dbname": "shop", "user": "u", "table": "orders"},
        "description": "d",
        "tags": ["b", "a"],
    }
    body.update(over)
    return Manifest(**body, file="sources.d/x.yaml", line=1)


def record_for(m: Manifest, *, owner: str | None = OWNER, **over: Any) -> Record:
    doc = desired_document(m)
    fields: dict[str, Any] = {
        "id": f"id-{m.name}",
        "name": m.name,
        "source_type": m.source_type,
        "connection": doc["connection"],
        "description": doc["description"],
        "tags": doc["tags"],
        "managed_by": owner,
        "version": 3,
        "last_applied": doc if owner else None,
    }
    fields.update(over)
    return Record(**fields)


def test_in_sync_plan_is_exactly_empty() -> None:
    m = manifest()
    p = plan([m], [record_for(m)], owner=OWNER)
    assert [c.action for c in p.changes] == ["noop"]
    assert not p.has_changes and p.changes[0].fields == ()


def test_canonical_fills_defaults_and_normalises() -> None:
    a = canonical(
        {
            "name": "x",
            "source_type": "postgres",
            "connection": {"host": "h", "port": "5432"},
            "tags": ["b", "a", "b"],
        }
    )
    b = canonical(
        {
            "name": "x",
            "source_type": "postgres",
            "connection": {"host": "h", "port": 5432, "schema": "public"},
            "tags": ["a", "b"],
            "description": "",
        }
    )
    assert a == b
    assert a["connection"] == {"host": "h", "port": 5432, "schema": "public"}


def test_numeric_string_port_in_live_record_is_no_change() -> None:
    m = manifest(connection={"host": "db", "dbname": "shop", "user": "u", "table": "orders"})
    live = record_for(m)
    live = live.model_copy(update={"connection": {**live.connection, "port": "5432"}})
    assert not plan([m], [live], owner=OWNER).has_changes


def test_tag_order_and_duplicates_are_not_changes() -> None:
    m = manifest(tags=["x", "y", "x"])
    live = record_for(m).model_copy(update={"tags": ("y", "x")})
    assert not plan([m], [live], owner=OWNER).has_changes


def test_update_lists_exactly_the_changed_fields() -> None:
    old = manifest()
    new = manifest(
        description="new",
        connection={"host": "db2", "dbname": "shop", "user": "u", "table": "orders", "port": 6432},
    )
    p = plan([new], [record_for(old)], owner=OWNER)
    (change,) = p.changes
    assert change.action == "update"
    assert change.record_id == "id-orders" and change.version == 3
    assert change.fields == (
        FieldChange(path="connection.host", old="db", new="db2"),
        FieldChange(path="connection.port", old=5432, new=6432),
        FieldChange(path="description", old="d", new="new"),
    )


def test_tags_change_is_one_field_with_whole_lists() -> None:
    p = plan([manifest(tags=["a", "c"])], [record_for(manifest())], owner=OWNER)
    assert p.changes[0].fields == (FieldChange(path="tags", old=["a", "b"], new=["a", "c"]),)


def test_names_match_case_insensitively() -> None:
    live = record_for(manifest("Orders"))
    p = plan([manifest("orders")], [live], owner=OWNER)
    assert [(c.action, [f.path for f in c.fields]) for c in p.changes] == [("update", ["name"])]


def test_create_for_new_manifest_shows_its_fields() -> None:
    p = plan([manifest()], [], owner=OWNER)
    (change,) = p.changes
    assert change.action == "create" and change.record_id is None
    paths = [f.path for f in change.fields]
    assert "connection.port" in paths and "tags" in paths
    assert "schema_policy" not in paths  # quiet defaults are not listed


def test_unowned_and_foreign_records_are_unmanaged_even_with_prune() -> None:
    hand = record_for(manifest("hand"), owner=None)
    foreign = record_for(manifest("foreign"), owner="team-b")
    p = plan([], [hand, foreign], owner=OWNER, prune=True)
    assert p.changes == ()
    assert [(u.name, u.managed_by) for u in p.unmanaged] == [("foreign", "team-b"), ("hand", None)]


def test_prune_deletes_only_owned_orphans() -> None:
    kept, gone = manifest("kept"), manifest("gone")
    records = [record_for(kept), record_for(gone)]
    without = plan([kept], records, owner=OWNER)
    assert without.count("delete") == 0 and [o.name for o in without.orphans] == ["gone"]
    with_prune = plan([kept], records, owner=OWNER, prune=True)
    assert [(c.action, c.name, c.version) for c in with_prune.pending] == [("delete", "gone", 3)]


def test_prevent_destroy_stays_with_the_record_after_the_manifest_is_gone() -> None:
    guarded = manifest("guarded", lifecycle={"prevent_destroy": True})
    p = plan([], [record_for(guarded)], owner=OWNER, prune=True)
    assert p.changes == ()
    assert [b.name for b in p.blocked] == ["guarded"]
    assert "prevent_destroy" in p.blocked[0].reason


def test_name_taken_by_unowned_record_is_blocked() -> None:
    p = plan([manifest()], [record_for(manifest(), owner=None)], owner=OWNER)
    assert p.changes == () and [b.name for b in p.blocked] == ["orders"]


def test_ignore_changes_excludes_fields() -> None:
    m = manifest(lifecycle={"ignore_changes": ["description", "connection.host"]})
    live = record_for(m).model_copy(
        update={
            "description": "edited in the UI",
            "connection": {**record_for(m).connection, "host": "x"},
        }
    )
    assert not plan([m], [live], owner=OWNER).has_changes


def test_sensitive_live_value_compared_through_last_applied_reference() -> None:
    m = manifest(
        connection={"host": "db", "dbname": "s", "user": "u", "table": "t", "password": "${env:PW}"}
    )
    live = record_for(m)
    # The registry holds the resolved secret; the plan must neither diff nor show it.
    live = live.model_copy(
        update={"connection": {**live.connection, "password": "resolved-secret"}}
    )
    p = plan([m], [live], owner=OWNER)
    assert not p.has_changes
    assert "resolved-secret" not in p.model_dump_json()


def test_reconciler_only_keys_are_changes_too() -> None:
    m = manifest(schema_policy="fail")
    p = plan([m], [record_for(manifest())], owner=OWNER)
    assert [f.path for f in p.changes[0].fields] == ["schema_policy"]


def test_without_in_place_updates_a_change_is_a_replace_of_the_same_fields() -> None:
    m = manifest()
    live = record_for(m, description="old")
    updated = plan([m], [live], owner=OWNER).changes[0]
    replaced = plan([m], [live], owner=OWNER, in_place=False).changes[0]
    assert (updated.action, replaced.action) == ("update", "replace")
    assert (
        replaced.fields == updated.fields == (FieldChange(path="description", old="old", new="d"),)
    )
    assert replaced.record_id == "id-orders" and replaced.version == 3


def test_without_in_place_updates_in_sync_is_still_noop() -> None:
    m = manifest()
    p = plan([m], [record_for(m)], owner=OWNER, in_place=False)
    assert [c.action for c in p.changes] == ["noop"] and not p.has_changes


def test_a_masked_secret_is_no_change_and_rotation_still_shows() -> None:
    """A registry that masks secrets in responses presents them as None (unknown)."""
    m = manifest(connection={**manifest().connection, "password": "${env:PW}"})
    live = record_for(
        m,
        connection={**desired_document(m)["connection"], "password": None},
        fingerprints={"connection.password": "fp-applied"},
    )

    def fingerprints(value: str) -> SecretFingerprints:
        return SecretFingerprints(desired={"orders": {"connection.password": value}}, of=str)

    same = plan([m], [live], owner=OWNER, secrets=fingerprints("fp-applied"), in_place=False)
    assert [c.action for c in same.changes] == ["noop"] and not same.changes[0].drift
    rotated = plan([m], [live], owner=OWNER, secrets=fingerprints("fp-new"), in_place=False)
    (change,) = rotated.changes
    assert change.action == "replace"
    assert change.fields == (
        FieldChange(
            path="connection.password",
            old="(sensitive)",
            new="(sensitive, changed)",
            sensitive=True,
        ),
    )
