"""Source documents in their comparable form, and where two of them differ.

A manifest and a live record are both reduced to a canonical document (defaults filled, tags
as a sorted set, numeric strings as numbers) so that a registry in sync compares equal.
Planning compares them; a provider asks whether a write changes anything its API holds. Both
use this one definition, which lives below planning and backends alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.manifests.field_diff import changed_paths
from reconciler.manifests.json_schemas import ConnectionSpec, connection_specs, is_sensitive
from reconciler.models import FieldChange, Record
from reconciler.secret_refs import is_reference

REDACTED = "(sensitive)"
DRIFTED_SECRET = "(sensitive, changed outside git)"
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
        "schema_perspective": doc.get("schema_perspective") or "consumer",
        "lifecycle": lifecycle,
    }


def live_document(
    record: Record, specs: Mapping[str, ConnectionSpec] | None = None
) -> dict[str, Any]:
    """The record as the reconciler sees it: registry fields plus reconciler-only keys last applied.

    Fields applied from a secret reference hold resolved values in the registry; they are
    compared through the reference last applied (and their fingerprints), never read or shown.
    """
    specs = connection_specs() if specs is None else specs
    last = record.last_applied or {}
    connection = dict(record.connection)
    last_connection = last.get("connection") or {}
    for key in connection:
        if is_reference(last_connection.get(key)):
            connection[key] = last_connection[key]
        elif is_sensitive(record.source_type, key, specs) and not _literal_in_git(
            record.source_type, key, last_connection, specs
        ):
            connection[key] = REDACTED
    return canonical(
        {
            "name": record.name,
            "source_type": record.source_type,
            "connection": connection,
            "description": record.description,
            "tags": record.tags,
            "columns": last.get("columns"),
            "schema_policy": last.get("schema_policy"),
            "schema_perspective": last.get("schema_perspective"),
            "lifecycle": last.get("lifecycle"),
        },
        specs,
    )


def _literal_in_git(
    source_type: str, key: str, last: Mapping[str, Any], specs: Mapping[str, ConnectionSpec]
) -> bool:
    """A key sensitive by name only whose last-applied value was a literal from a manifest:
    the value is in git already, and hiding it would make every plan show a change."""
    spec = specs.get(source_type)
    by_schema = spec is not None and key in spec.sensitive_fields
    return not by_schema and key in last and last[key] is not None


def diff_fields(old: dict[str, Any], new: dict[str, Any]) -> tuple[FieldChange, ...]:
    """Field-level changes, a list counting as one field (its order is canonical already)."""
    if old == new:
        return ()
    paths = changed_paths(old, new)
    return tuple(
        FieldChange(path=".".join(map(str, p)), old=value_at(old, p), new=value_at(new, p))
        for p in sorted(paths)
    )


def value_at(doc: Any, path: tuple[Any, ...]) -> Any:
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
