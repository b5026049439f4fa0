"""The packaged JSON Schemas: one validator for whole manifests, and per-type connection facts.

The same files are what editors use (`# yaml-language-server: $schema=...`), so the CLI and an
editor can never disagree about what is valid.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from reconciler.redaction import is_sensitive_name

SOURCE_SCHEMA = "source.schema.json"
# A base for resolving the relative $refs between the packaged files in memory.
_BASE_URI = "https://schemas.reconciler.invalid/"


@dataclass(frozen=True)
class ConnectionSpec:
    """What canonicalisation and redaction need to know about one source_type's connection."""

    source_type: str
    defaults: dict[str, Any]
    integer_fields: frozenset[str]
    sensitive_fields: frozenset[str]


def schema_dir() -> Path:
    """Where the schema files are: `reconciler.schemas` as installed (wheel or editable), or
    the repository's top-level `schemas/` when the package runs from a checkout that is not
    installed as such (`python -m reconciler` from the repository root shadows the installed
    package, whose `reconciler.schemas` is mapped from `schemas/` by pyproject)."""
    try:
        return Path(str(resources.files("reconciler.schemas")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "schemas"


@cache
def load_schemas() -> dict[str, dict[str, Any]]:
    root = schema_dir()
    out: dict[str, dict[str, Any]] = {}
    for entry in root.iterdir():
        if entry.name.endswith(".schema.json"):
            out[entry.name] = json.loads(entry.read_text(encoding="utf-8"))
    return out


def source_types() -> tuple[str, ...]:
    """The source types with a connection schema of their own (csv, postgres).

    Provider types (`PROVIDER/TYPE`, a pattern beside this enum) are open-ended and have one
    connection schema per provider, which the document schema picks by prefix.
    """
    prop = load_schemas()[SOURCE_SCHEMA]["properties"]["source_type"]
    choices = [prop, *prop.get("anyOf", ())]
    return tuple(next(c["enum"] for c in choices if "enum" in c))


@cache
def connection_specs() -> dict[str, ConnectionSpec]:
    schemas = load_schemas()
    specs: dict[str, ConnectionSpec] = {}
    for source_type in source_types():
        props: dict[str, Any] = schemas[f"{source_type}.connection.schema.json"]["properties"]
        specs[source_type] = ConnectionSpec(
            source_type=source_type,
            defaults={k: v["default"] for k, v in props.items() if "default" in v},
            integer_fields=frozenset(
                k for k, v in props.items() if "integer" in _types(v.get("type"))
            ),
            sensitive_fields=frozenset(k for k, v in props.items() if v.get("x-sensitive")),
        )
    return specs


def is_sensitive(
    source_type: str, key: str, specs: Mapping[str, ConnectionSpec] | None = None
) -> bool:
    """Whether connection `key` holds a secret: marked `x-sensitive` by its type's schema, or
    named like one (password, token, private key, ...), whatever the type. The one rule that
    validation messages, planning and `reconcile import` share."""
    return sensitive_by_schema(source_type, key, specs) or is_sensitive_name(key)


def sensitive_by_schema(
    source_type: str, key: str, specs: Mapping[str, ConnectionSpec] | None = None
) -> bool:
    """Whether `key` is marked `x-sensitive` by its type's connection schema (a key only
    named like a secret may hold a literal that is in git already)."""
    spec = (connection_specs() if specs is None else specs).get(source_type)
    return spec is not None and key in spec.sensitive_fields


def _types(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


@cache
def manifest_validator() -> Any:
    """A compiled validator for a whole manifest, built once and reused for every document."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    schemas = load_schemas()
    registry: Registry[Any] = Registry().with_resources(
        (_BASE_URI + name, Resource.from_contents(body, default_specification=DRAFT202012))
        for name, body in schemas.items()
    )
    root = dict(schemas[SOURCE_SCHEMA], **{"$id": _BASE_URI + SOURCE_SCHEMA})
    return Draft202012Validator(root, registry=registry)
