"""The plan: a pure function from desired manifests and live records to changes. No I/O.

Both sides are reduced to a canonical document before comparison (defaults filled, tags as a
sorted set, numeric strings as numbers) so that a registry in sync gives an exactly empty plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .models import Blocked, Change, FieldChange, Manifest, Orphan, Plan, Record, Unmanaged
from .schema_files import ConnectionSpec, connection_specs

REDACTED = "(sensitive)"
REGISTRY_FIELDS = ("name", "source_type", "connection", "description", "tags")
_DEFAULT_LIFECYCLE: dict[str, Any] = {"prevent_destroy": False, "ignore_changes": []}


def canonical(
    doc: Mapping[str, Any], specs: Mapping[str, ConnectionSpec] | None = None
) -> dict[str, Any]:
    """The comparable form of a source document (manifest or record)."""
    specs = connection_specs() if specs is None else specs
    spec = specs.get(str(doc.get("source_type")))
    connection = dict(spec.defaults) if spec else {}
    connection.update(doc.get("connection") or {})
    if spec:
        for key in spec.integer_fields:
            connection[key] = _as_int(connection.get(key))
    columns = doc.get("columns")
    lifecycle = dict(_DEFAULT_LIFECYCLE, **(doc.get("lifecycle") or {}))
    lifecycle["ignore_changes"] = sorted(set(lifecycle["ignore_changes"]))
    return {
        "name": doc["name"],
        "source_type": doc["source_type"],
        "connection": {k: connection[k] for k in sorted(connection) if connection[k] is not None},
        "description": doc.get("description") or "",
        "tags": sorted(set(doc.get("tags") or ())),
        "columns": None
        if columns is None
        else [
            {"name": c["name"], "type": c["type"], "nullable": c.get("nullable", True)}
            for c in columns
        ],
        "schema_policy": doc.get("schema_policy") or "warn",
        "lifecycle": lifecycle,
    }


def desired_document(manifest: Manifest) -> dict[str, Any]:
    return canonical(manifest.model_dump(mode="json"))


def live_document(
    record: Record, specs: Mapping[str, ConnectionSpec] | None = None
) -> dict[str, Any]:
    """The record as the reconciler sees it: registry fields plus reconciler-only keys last applied.

    Sensitive fields hold resolved secrets in the registry; they are compared through the
    reference that was last applied, never read or shown.
    """
    specs = connection_specs() if specs is None else specs
    last = record.last_applied or {}
    connection = dict(record.connection)
    spec = specs.get(record.source_type)
    last_connection = last.get("connection") or {}
    for key in spec.sensitive_fields if spec else ("password",):
        if key in connection:
            connection[key] = last_connection.get(key, REDACTED)
    return canonical(
        {
            "name": record.name,
            "source_type": record.source_type,
            "connection": connection,
            "description": record.description,
            "tags": record.tags,
            "columns": last.get("columns"),
            "schema_policy": last.get("schema_policy"),
            "lifecycle": last.get("lifecycle"),
        },
        specs,
    )


def plan(
    manifests: Sequence[Manifest],
    records: Iterable[Record],
    *,
    owner: str,
    prune: bool = False,
) -> Plan:
    """Match by case-insensitive name; create, update, delete (opt-in) or leave alone."""
    live = {r.name.casefold(): r for r in records}
    changes: list[Change] = []
    blocked: list[Blocked] = []
    for manifest in manifests:
        desired = desired_document(manifest)
        record = live.pop(manifest.name.casefold(), None)
        if record is None:
            changes.append(
                Change(
                    action="create",
                    name=manifest.name,
                    source_type=manifest.source_type,
                    fields=tuple(_flatten(desired)),
                    document=desired,
                    file=manifest.file,
                    line=manifest.line,
                )
            )
        elif record.managed_by != owner:
            holder = (
                f"managed by '{record.managed_by}'"
                if record.managed_by
                else "not managed by reconciler"
            )
            blocked.append(
                Blocked(
                    name=manifest.name,
                    reason=f"a registry record with this name already exists and is {holder}; "
                    f"owner '{owner}' will not take it over",
                    file=manifest.file,
                    line=manifest.line,
                )
            )
        else:
            current = live_document(record)
            fields = diff_fields(_ignoring(current, desired), _ignoring(desired, desired))
            changes.append(
                Change(
                    action="update" if fields else "noop",
                    name=manifest.name,
                    source_type=manifest.source_type,
                    record_id=record.id,
                    version=record.version,
                    fields=fields,
                    document=desired,
                    file=manifest.file,
                    line=manifest.line,
                )
            )
    unmanaged: list[Unmanaged] = []
    orphans: list[Orphan] = []
    for record in sorted(live.values(), key=lambda r: r.name.casefold()):
        if record.managed_by != owner:
            unmanaged.append(
                Unmanaged(name=record.name, record_id=record.id, managed_by=record.managed_by)
            )
        elif not prune:
            orphans.append(Orphan(name=record.name, record_id=record.id))
        elif _prevents_destroy(record):
            blocked.append(
                Blocked(
                    name=record.name,
                    reason="lifecycle.prevent_destroy is set on this record; apply it with "
                    "prevent_destroy: false before removing its manifest",
                )
            )
        else:
            changes.append(
                Change(
                    action="delete",
                    name=record.name,
                    source_type=record.source_type,
                    record_id=record.id,
                    version=record.version,
                )
            )
    return Plan(
        owner=owner,
        prune=prune,
        changes=tuple(changes),
        unmanaged=tuple(unmanaged),
        orphans=tuple(orphans),
        blocked=tuple(blocked),
    )


def diff_fields(old: dict[str, Any], new: dict[str, Any]) -> tuple[FieldChange, ...]:
    """Field-level changes, a list counting as one field (its order is canonical already)."""
    if old == new:
        return ()
    from deepdiff import DeepDiff  # imported only when something differs: it is slow to import

    paths: set[tuple[Any, ...]] = set()
    for levels in DeepDiff(old, new, view="tree").values():
        for level in levels:
            path = level.path(output_format="list")
            cut = next((i for i, p in enumerate(path) if isinstance(p, int)), len(path))
            paths.add(tuple(path[:cut]))
    return tuple(
        FieldChange(path=".".join(map(str, p)), old=_get(old, p), new=_get(new, p))
        for p in sorted(paths)
    )


def _ignoring(doc: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """Drop the desired document's lifecycle.ignore_changes paths from a document."""
    ignored = desired["lifecycle"]["ignore_changes"]
    if not ignored:
        return doc
    out = {**doc, "connection": dict(doc["connection"])}
    for path in ignored:
        head, _, tail = path.partition(".")
        if tail and head == "connection":
            out["connection"].pop(tail, None)
        elif not tail and head in out and head not in ("name", "lifecycle"):
            out.pop(head)
    return out


def _prevents_destroy(record: Record) -> bool:
    lifecycle = (record.last_applied or {}).get("lifecycle") or {}
    return bool(lifecycle.get("prevent_destroy"))


# Defaults left out of a create's field list: they are noise to a reviewer.
_QUIET_DEFAULTS: dict[str, Any] = {"schema_policy": "warn", "lifecycle.prevent_destroy": False}


def _flatten(doc: Mapping[str, Any], prefix: str = "") -> Iterable[FieldChange]:
    for key, value in doc.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{path}.")
        elif value not in (None, [], "") and _QUIET_DEFAULTS.get(path, ...) != value:
            yield FieldChange(path=path, old=None, new=value)


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


def _as_int(value: Any) -> Any:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
