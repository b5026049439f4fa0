"""The plan as a provider can carry it out: which updates are replaces, which changes it refuses.

Planning is registry-agnostic and knows only "update in place or not" per registry. A
provider knows per field: Airweave patches a description in place but must replace a
connection to move it to another collection; Airbyte Agents can update nothing, yet a
description it has no field for is only state. `review` turns each update that touches a
field the API cannot update into a replace, and each change the API cannot make at all (a
manifest of another registry's type, a value the API will reject, a deletion it has no
endpoint for) into a Blocked entry, so a dry-run shows exactly what apply will do or refuse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.models import Blocked, Change, Plan
from reconciler.secret_refs import is_reference

# Fields only the reconciler reads: they live in the last-applied document, never in an API.
RECONCILER_ONLY = ("columns", "schema_policy", "schema_perspective", "lifecycle")


@dataclass(frozen=True)
class Rules:
    """What a provider's API can do with each field of a manifest."""

    provider: str
    # How the docs name TYPE in PROVIDER/TYPE ("CONNECTOR", "SHORT_NAME").
    type_word: str
    # Paths (or their prefixes) the API updates in place; any other API field replaces.
    in_place: tuple[str, ...] = ()
    # Paths the API has no field for: kept in the state store, so always "in place".
    state_only: tuple[str, ...] = ("tags",)
    # Paths the API can neither update nor replace, with why (the plan blocks them).
    fixed: Mapping[str, str] = field(default_factory=dict)
    # Why deletions are refused; None when the API can delete.
    no_delete: str | None = None


def review(plan: Plan, rules: Rules, check: Callable[[Change], str | None]) -> Plan:
    """The plan with provider-impossible changes blocked and forced replaces marked.

    `check` is the provider's own refusal for a change with a document (a value its API
    would reject), or None.
    """
    changes: list[Change] = []
    blocked = list(plan.blocked)
    for change in plan.changes:
        reason = _refusal(change, rules) or (check(change) if change.document else None)
        if reason is not None:
            blocked.append(
                Blocked(name=change.name, reason=reason, file=change.file, line=change.line)
            )
            continue
        changes.append(replace_unless(change, (*rules.state_only, *rules.in_place)))
    return plan.model_copy(update={"changes": tuple(changes), "blocked": tuple(blocked)})


def replace_unless(change: Change, in_place: Iterable[str]) -> Change:
    """An update that touches a field outside `in_place` (and outside the reconciler-only
    fields, which never reach an API) as a replace; anything else as it is."""
    paths = (*RECONCILER_ONLY, *in_place)
    if change.action == "update" and any(not matches(f.path, paths) for f in change.fields):
        return change.model_copy(update={"action": "replace"})
    return change


def matches(path: str, prefixes: Iterable[str]) -> bool:
    return any(path == p or path.startswith(p + ".") for p in prefixes)


def _refusal(change: Change, rules: Rules) -> str | None:
    if change.action == "delete":
        return rules.no_delete
    doc = change.document
    if doc is None:
        return None
    prefix = f"{rules.provider}/"
    source_type = str(doc.get("source_type"))
    if not source_type.startswith(prefix):
        return (
            f"source type '{source_type}' cannot be registered in a {rules.provider} registry "
            f"(expected {prefix}{rules.type_word})"
        )
    nested = nested_reference(doc.get("connection") or {})
    if nested is not None:
        return (
            f"connection.{nested} holds a secret reference inside a nested value, where it "
            "would be sent as written: references work only as whole top-level connection "
            "values (e.g. credentials.FIELD)"
        )
    if change.action in ("update", "replace"):
        for f in change.fields:
            for path, why in rules.fixed.items():
                if matches(f.path, (path,)):
                    return f"{f.path} cannot change: {why}"
    return None


def nested_reference(connection: Mapping[str, Any]) -> str | None:
    """The dotted path of a `${...}` reference below the top level of `connection`, if any."""

    def walk(value: Any, path: str) -> str | None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                found = walk(item, f"{path}.{key}")
                if found:
                    return found
        elif isinstance(value, list):
            for index, item in enumerate(value):
                found = walk(item, f"{path}[{index}]")
                if found:
                    return found
        elif is_reference(value):
            return path
        return None

    for key, value in connection.items():
        if isinstance(value, Mapping | list):
            found = walk(value, key)
            if found:
                return found
    return None
