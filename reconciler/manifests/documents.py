"""Canonical documents: both sides of a comparison reduced to what matters.

A manifest (desired) and a registry record (live) become the same shape, with defaults
filled, tags as a sorted set and numeric strings as numbers, so a registry in sync gives an
exactly empty plan. Secrets are never values here: references, or the REDACTED marker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.manifests.field_diff import changed_paths
from reconciler.manifests.json_schemas import (
    ConnectionSpec,
    connection_specs,
    is_sensitive,
    sensitive_by_schema,
)
from reconciler.models import FieldChange, Manifest, Record
from reconciler.secret_refs import is_reference

REDACTED = "(sensitive)"
DRIFTED_SECRET = "(sensitive, changed outside git)"
SECRET_CHANGED = "(sensitive, changed)"
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


def desired_document(manifest: Manifest) -> dict[str, Any]:
    """The manifest's canonical document."""
    return canonical(manifest.model_dump(mode="json"))


class DesiredDocuments:
    """The canonical documents of one run's manifests, each computed once (a manifest is
    immutable). Secret resolution and planning both need them: the run makes one of these
    and passes it along, so the planner keeps nothing between calls. Documents are shared:
    treat them as read-only."""

    def __init__(self) -> None:
        self._by_name: dict[str, tuple[Manifest, dict[str, Any]]] = {}

    def __call__(self, manifest: Manifest) -> dict[str, Any]:
        key = manifest.name.casefold()
        cached = self._by_name.get(key)
        if cached is not None and cached[0] is manifest:
            return cached[1]
        doc = desired_document(manifest)
        self._by_name[key] = (manifest, doc)
        return doc


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
    by_schema = sensitive_by_schema(source_type, key, specs)
    return not by_schema and key in last and last[key] is not None


def _as_int(value: Any) -> Any:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def diff_fields(old: dict[str, Any], new: dict[str, Any]) -> tuple[FieldChange, ...]:
    """Field-level changes, a list counting as one field (its order is canonical already).

    A live secret the planner redacted (REDACTED) is a sensitive change: never shown as old → new.
    """
    if old == new:
        return ()
    paths = changed_paths(old, new)
    return tuple(_field_change(p, value_at(old, p), value_at(new, p)) for p in sorted(paths))


def _field_change(path: tuple[Any, ...], old: Any, new: Any) -> FieldChange:
    sensitive = isinstance(new, str) and new == REDACTED
    return FieldChange(path=".".join(map(str, path)), old=old, new=new, sensitive=sensitive)


def value_at(doc: Any, path: tuple[Any, ...]) -> Any:
    """The value at `path` in a document, None where it does not exist."""
    for part in path:
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc
