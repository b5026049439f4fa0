"""The plan: a pure function from desired manifests and live records to changes. No I/O.

Both sides are reduced to a canonical document before comparison (planning/documents.py), so
that a registry in sync gives an exactly empty plan.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from reconciler.manifests.documents import (
    DRIFTED_SECRET,
    REDACTED,
    SECRET_CHANGED,
    DesiredDocuments,
    canonical,
    diff_fields,
    live_document,
)
from reconciler.manifests.documents import value_at as _get
from reconciler.models import (
    Blocked,
    Change,
    FieldChange,
    Manifest,
    Orphan,
    Plan,
    Record,
    Unmanaged,
    built,
)


@dataclass(frozen=True)
class SecretFingerprints:
    """What planning may know about resolved secrets: keyed fingerprints, never values.

    `desired` maps a casefolded source name to {field path: fingerprint}, None meaning the
    reference cannot be resolved yet (a dry-run without the variable). `of` fingerprints a
    live value with the registry's key.
    """

    desired: Mapping[str, Mapping[str, str | None]] = field(default_factory=dict)
    of: Callable[[Any], str] | None = None


@dataclass(frozen=True)
class PruneGuard:
    """Refuse surprise mass deletions (an empty or mistyped sources dir) unless forced."""

    max_deletes: int = 10
    force: bool = False
    sources_present: bool = True
    # Planned under --select/--exclude: "owned" counts only the records in the selection.
    selected: bool = False


def plan(
    manifests: Sequence[Manifest],
    records: Iterable[Record],
    *,
    owner: str,
    prune: bool = False,
    secrets: SecretFingerprints | None = None,
    known: Mapping[str, str] | None = None,
    guard: PruneGuard | None = None,
    force_conflicts: bool = False,
    in_place: bool = True,
    documents: DesiredDocuments | None = None,
) -> Plan:
    """Match by case-insensitive name; create, update, delete (opt-in) or leave alone.

    `known` maps casefolded names this owner applied before to their record ids, so a
    record deleted outside git is told apart from a new source. `in_place` False (a
    registry without updates) turns every update into a replace of the same fields.
    `documents` are the run's desired documents, if it computed them already.
    """
    documents = documents or DesiredDocuments()
    secrets = secrets or SecretFingerprints()
    secrets = SecretFingerprints(secrets.desired, memoized(secrets.of))
    known = known or {}
    records = list(records)
    live = {r.name.casefold(): r for r in records}
    changes: list[Change] = []
    blocked: list[Blocked] = []
    current = {m.name.casefold() for m in manifests}
    for manifest in manifests:
        key = manifest.name.casefold()
        record = live.pop(key, None)
        if record is None and manifest.previous_names:
            record = _renamed(manifest, live, current)
        fingerprints = secrets.desired.get(key, {})
        if record is None:
            desired = documents(manifest)
            changes.append(_create(manifest, desired, fingerprints, recreate=key in known))
        elif record.unreadable:
            blocked.append(_unreadable(record, manifest))
        elif record.managed_by != owner:
            blocked.append(_taken(manifest, record, owner))
        else:
            change = _compare(manifest, documents(manifest), record, fingerprints, secrets.of)
            if change.action == "update" and not in_place:
                change = change.model_copy(update={"action": "replace"})
            changes.append(change)
    unmanaged: list[Unmanaged] = []
    orphans: list[Orphan] = []
    for record in sorted(live.values(), key=lambda r: r.name.casefold()):
        if record.managed_by != owner:
            unmanaged.append(
                Unmanaged(name=record.name, record_id=record.id, managed_by=record.managed_by)
            )
        elif not prune:
            orphans.append(Orphan(name=record.name, record_id=record.id))
        elif record.unreadable:  # whether it may go cannot be told: it is never pruned
            blocked.append(_unreadable(record))
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
    owned = sum(1 for r in records if r.managed_by == owner)
    deletes = sum(1 for c in changes if c.action == "delete")
    return Plan(
        owner=owner,
        prune=prune,
        changes=tuple(changes),
        unmanaged=tuple(unmanaged),
        orphans=tuple(orphans),
        blocked=tuple(blocked),
        guard=guard_message(guard or PruneGuard(), deletes, owned),
        force_conflicts=force_conflicts,
    )


def _renamed(manifest: Manifest, live: dict[str, Record], current: set[str]) -> Record | None:
    """The live record a renamed manifest keeps (taken out of `live`: it is neither an
    orphan nor pruned), found under its first previous name that no manifest has now.

    It goes through the usual checks: unreadable or owned by someone else, it is blocked,
    never taken; otherwise the comparison shows `name: "old" -> "new"` on the same id.
    """
    for previous in manifest.previous_names:
        key = previous.casefold()
        if key not in current and key in live:
            return live.pop(key)
    return None


@overload
def memoized(of: Callable[[Any], str]) -> Callable[[Any], str]: ...
@overload
def memoized(of: None) -> None: ...
def memoized(of: Callable[[Any], str] | None) -> Callable[[Any], str] | None:
    """A fingerprint function that computes each distinct value's HMAC once per plan."""
    if of is None:
        return None
    seen: dict[tuple[type, str], str] = {}

    def once(value: Any) -> str:
        key = (type(value), repr(value))  # repr tells apart what == does not (0.0, -0.0)
        found = seen.get(key)
        if found is None:
            seen[key] = found = of(value)
        return found

    return once


def in_scope(records: list[Record], skipped: frozenset[str], owner: str) -> list[Record]:
    """The records a run may plan for: not this owner's records of manifests for other
    environments (they are neither in sync nor orphans here, so --prune leaves them)."""
    if not skipped:
        return records
    return [r for r in records if not (r.managed_by == owner and r.name.casefold() in skipped)]


def guard_message(guard: PruneGuard, deletes: int, owned: int) -> str | None:
    if deletes == 0 or guard.force:
        return None
    if not guard.sources_present:
        why = "the sources directory has no manifests"
    elif deletes > guard.max_deletes:
        noun = "record" if deletes == 1 else "records"
        why = f"it would delete {deletes} {noun}, more than --max-deletes {guard.max_deletes}"
    elif deletes * 2 > owned:
        where = " in the selection" if guard.selected else ""
        why = (
            f"it would delete {deletes} of the {owned} records this owner manages{where} "
            "(over half)"
        )
    else:
        return None
    return f"prune refused: {why}. Check --sources-dir, or pass --force-deletes to confirm."


def _create(
    manifest: Manifest,
    desired: dict[str, Any],
    fingerprints: Mapping[str, str | None],
    *,
    recreate: bool,
) -> Change:
    return Change(
        action="create",
        name=manifest.name,
        source_type=manifest.source_type,
        fields=tuple(_flatten(desired)),
        document=desired,
        file=manifest.file,
        line=manifest.line,
        unknown=tuple(sorted(p for p, fp in fingerprints.items() if fp is None)),
        recreate=recreate,
    )


def _unreadable(record: Record, manifest: Manifest | None = None) -> Blocked:
    return Blocked(
        name=record.name,
        reason=f"its registry record {record.id} cannot be read ({record.unreadable}); "
        "it is left alone: fix or delete it in the registry",
        file=manifest.file if manifest else None,
        line=manifest.line if manifest else None,
    )


def _taken(manifest: Manifest, record: Record, owner: str) -> Blocked:
    holder = (
        f"managed by '{record.managed_by}'" if record.managed_by else "not managed by reconciler"
    )
    which = (
        "a registry record with this name already exists"
        if record.name.casefold() == manifest.name.casefold()
        else f"the registry record '{record.name}' (in previous_names) exists"
    )
    return Blocked(
        name=manifest.name,
        reason=f"{which} and is {holder}; owner '{owner}' will not take it over",
        file=manifest.file,
        line=manifest.line,
    )


def _compare(
    manifest: Manifest,
    desired: dict[str, Any],
    record: Record,
    fingerprints: Mapping[str, str | None],
    fingerprint_of: Callable[[Any], str] | None,
) -> Change:
    """Three-way: desired vs live says what to write, each vs last applied says who changed it."""
    ignored = desired["lifecycle"]["ignore_changes"]
    want = _without(desired, ignored)
    have = _without(live_document(record), ignored)
    fields = list(diff_fields(have, want))
    drift: list[FieldChange] = []
    conflicts: list[str] = []
    last = canonical(record.last_applied) if record.last_applied else None
    if last is not None:
        last = _without(last, ignored)
        git_paths = {f.path for f in diff_fields(last, want)}
        drift = list(diff_fields(last, have))
        conflicts = [
            f.path
            for f in drift
            if f.path in git_paths and _get(want, _split(f.path)) != _get(have, _split(f.path))
        ]
    for path, wanted in sorted(fingerprints.items()):
        if path in ignored or _get(want, _split(path)) != _get(have, _split(path)):
            continue  # ignored, or the reference itself changed: already a field change
        stored = record.fingerprints.get(path)
        raw = _field(record, _split(path))
        current = fingerprint_of(raw) if fingerprint_of and raw is not None else None
        if stored is not None and current is not None and current != stored:
            drift.append(FieldChange(path=path, old=REDACTED, new=DRIFTED_SECRET, sensitive=True))
            if wanted is not None and wanted != stored and wanted != current:
                conflicts.append(path)
        if wanted is not None and wanted != (current if current is not None else stored):
            fields.append(FieldChange(path=path, old=REDACTED, new=SECRET_CHANGED, sensitive=True))
    return Change(
        action="update" if fields else "noop",
        name=manifest.name,
        source_type=manifest.source_type,
        record_id=record.id,
        version=record.version,
        fields=tuple(sorted(fields, key=lambda f: f.path)),
        document=desired,
        file=manifest.file,
        line=manifest.line,
        drift=tuple(drift),
        conflicts=tuple(sorted(set(conflicts))),
        keep=tuple(p for p in ignored if p != "name"),
        unknown=tuple(sorted(p for p, fp in fingerprints.items() if fp is None)),
    )


def _without(doc: dict[str, Any], paths: Sequence[str]) -> dict[str, Any]:
    """The document without lifecycle.ignore_changes paths (`description`, `connection.host`)."""
    if not paths:
        return doc
    out = {**doc, "connection": dict(doc["connection"])}
    for path in paths:
        head, _, tail = path.partition(".")
        if tail and head == "connection":
            out["connection"].pop(tail, None)
        elif not tail and head in out and head not in ("name", "lifecycle"):
            out.pop(head)
    return out


def _split(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def _prevents_destroy(record: Record) -> bool:
    lifecycle = (record.last_applied or {}).get("lifecycle") or {}
    return bool(lifecycle.get("prevent_destroy"))


# Defaults left out of a create's field list: they are noise to a reviewer.
_QUIET_DEFAULTS: dict[str, Any] = {
    "schema_policy": "warn",
    "schema_perspective": "consumer",
    "lifecycle.prevent_destroy": False,
}


def _flatten(doc: Mapping[str, Any], prefix: str = "") -> Iterable[FieldChange]:
    for key, value in doc.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{path}.")
        elif value not in (None, [], "") and _QUIET_DEFAULTS.get(path, ...) != value:
            # A create lists every field: for 100,000 sources a million of these, so they
            # share their path strings and their (never changed) set of fields given.
            values = {"path": sys.intern(path), "old": None, "new": value, "sensitive": False}
            yield built(FieldChange, values, _CREATED)


_CREATED = {"path", "old", "new"}  # shared: model_copy copies it before changing it


def _field(record: Record, path: tuple[str, ...]) -> Any:
    """_get(record.model_dump(), path), without dumping the whole record."""
    if path[0] not in _RECORD_FIELDS:
        return None
    return _get(getattr(record, path[0]), path[1:])


_RECORD_FIELDS = frozenset(Record.model_fields)
