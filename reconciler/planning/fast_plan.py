"""Content-addressed planning: the cost of a plan follows what changed, not what exists.

Each record written by an apply keeps the digest of the manifest document it came from
(manifests/digests.py), its secret references with their fingerprints, and its version right
after the write. A plan hashes the raw documents and reads names, owners, versions and
digests of every record in one query. A document whose digest is that of an owned record
untouched since (version = applied_version), whose secrets still have the fingerprints they
were applied with, is exactly what the full plan would find in sync: it becomes a no-op
without being parsed, and its record is never decoded. Everything else - changed or new
documents, records nobody vouches for, unreadable rows, deletions - goes through the full
planner (plan.plan) on just that subset. When in doubt, `None`: the caller plans in full.

tests/test_fast_plan_equivalence.py checks on generated histories that both plans agree.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.backends.base import ContentDigests, DigestRow, Registry
from reconciler.errors import InvalidManifests, SecretResolutionError
from reconciler.manifests import digests as docdigests
from reconciler.manifests.digests import FileDigests, Segment
from reconciler.manifests.documents import DesiredDocuments
from reconciler.manifests.variables import Scope
from reconciler.models import Change, Manifest, Plan, Record, built
from reconciler.planning.plan import (
    PruneGuard,
    SecretFingerprints,
    guard_message,
    in_scope,
    memoized,
    plan,
)
from reconciler.secret_refs import ResolvedSecrets, fingerprint, resolve, resolve_all


@dataclass(frozen=True)
class Request:
    """What the full plan is computed from, besides the manifests and the registry."""

    owner: str
    prune: bool
    strict: bool
    max_deletes: int
    force_deletes: bool
    force_conflicts: bool
    scope: Scope | None = None
    # Also read the files that may declare `columns` or `schema_policy` (an apply's schema
    # check needs those manifests).
    declared: bool = False


@dataclass(frozen=True)
class FastPlan:
    """The plan, and what an apply of it needs: the parsed (changed) manifests, their secrets,
    the records read whole, and the digest of every document by (file, line of its name)."""

    plan: Plan
    manifests: list[Manifest]
    secrets: ResolvedSecrets
    records: list[Record]
    sources: int
    files: list[FileDigests]


def fast_plan(
    registry: Registry, digests: ContentDigests, sources_dir: Path, request: Request
) -> FastPlan | None:
    """The plan plan.plan would give, or None where the full path must decide (any error)."""
    key = registry.fingerprint_key()
    if key is None:
        return None  # no registry yet: everything is a create, nothing to skip
    files = docdigests.scan(sources_dir, schema=request.declared)
    rows = digests.digest_rows()
    vouched = _vouched(rows, request.owner)
    unchanged = _unchanged_files(files, vouched, declared=request.declared)
    # Secrets of the documents that look unchanged: still the fingerprints applied?
    of = memoized(lambda value: fingerprint(key, value))
    # By secret_refs (many sources share one secret): what it names, and whether it still
    # resolves to the fingerprints applied.
    applied: dict[str, _Applied | None] = {}
    verdicts: dict[str, bool | None] = {}
    for index in sorted(unchanged):
        for segment in files[index].segments or ():
            row = vouched[segment.digest]
            if row.secret_refs is None:
                continue
            if row.secret_refs not in applied:
                applied[row.secret_refs] = _applied(row.secret_refs)
            refs = applied[row.secret_refs]
            if refs is None or not refs.references <= segment.references:
                unchanged.discard(index)  # not what an apply wrote, or names what the
                break  # document does not: read the document the full way
            if row.secret_refs not in verdicts:
                verdicts[row.secret_refs] = _secrets_unchanged(refs, row.name, of)
            verdict = verdicts[row.secret_refs]
            if verdict is None and request.strict:
                return None  # the full path names every missing secret at once
            if not verdict:
                unchanged.discard(index)
                break
    claimed = {vouched[s.digest].id for i in unchanged for s in files[i].segments or ()}
    changed_files = [(f.relative, f.opened) for i, f in enumerate(files) if i not in unchanged]
    manifests: list[Manifest] = []
    skipped: frozenset[str] = frozenset()
    if changed_files:
        from reconciler.manifests.loading import load_files  # yaml and the parsers: only now

        try:
            loaded = load_files(
                sources_dir, changed_files, allow_empty=True, scope=request.scope, track=False
            )
        except InvalidManifests:
            return None
        manifests, skipped = loaded.manifests, loaded.skipped
    kept = [vouched[s.digest].name for i in unchanged for s in files[i].segments or ()]
    names = kept + [m.name for m in manifests]
    if len({n.casefold() for n in names}) != len(names):
        return None  # duplicate names: the loader reports them with every place
    if not _apart(kept, manifests, skipped):
        return None
    documents = DesiredDocuments()
    try:
        secrets = resolve_all((documents(m) for m in manifests), strict=request.strict)
    except SecretResolutionError:
        return None
    others = [r.id for r in rows if r.id not in claimed]
    records = (
        list(digests.records_by_id(others))
        if len(others) * 4 < len(rows)
        else [r for r in registry.list_records() if r.id not in claimed]
    )
    records = in_scope(records, skipped, request.owner)
    partial = plan(
        manifests,
        records,
        owner=request.owner,
        prune=request.prune,
        secrets=SecretFingerprints(secrets.fingerprints(key), of),
        known=registry.known(request.owner) if manifests else {},
        force_conflicts=request.force_conflicts,
        in_place=registry.updates_in_place,
        documents=documents,
    )
    owned = sum(
        1 for r in rows if r.managed_by == request.owner and r.name.casefold() not in skipped
    )
    deletes = partial.count("delete")
    guard = PruneGuard(request.max_deletes, request.force_deletes, sources_present=bool(names))
    changes = _merge(files, unchanged, vouched, partial.changes)
    full = Plan(
        owner=request.owner,
        prune=request.prune,
        changes=tuple(changes),
        unmanaged=partial.unmanaged,
        orphans=partial.orphans,
        blocked=partial.blocked,
        guard=guard_message(guard, deletes, owned),
        force_conflicts=request.force_conflicts,
    )
    return FastPlan(full, manifests, secrets, records, len(names), files)


def _apart(kept: Sequence[str], loaded: Sequence[Manifest], skipped: frozenset[str]) -> bool:
    """Whether the manifests read and the documents skipped unread cannot affect each other
    beyond what the partial plan sees: no previous name of a manifest read is a current name
    of one unread (the loader's clash, which only the full path reports with its place), and
    no unread source's name belongs to another environment's manifest."""
    current = {n.casefold() for n in kept}
    if skipped & current:
        return False
    return not any(p.casefold() in current for m in loaded for p in (m.previous_names or ()))


def _vouched(rows: Sequence[DigestRow], owner: str) -> dict[str, DigestRow]:
    """Rows of this owner untouched since an apply stored their digest, by digest (a digest
    on two rows vouches for neither)."""
    out: dict[str, DigestRow] = {}
    twice: set[str] = set()
    for row in rows:
        if row.untouched and row.managed_by == owner and row.digest is not None:
            if row.digest in out:
                twice.add(row.digest)
            out[row.digest] = row
    for digest in twice:
        del out[digest]
    return out


def _unchanged_files(
    files: Sequence[FileDigests], vouched: Mapping[str, DigestRow], *, declared: bool
) -> set[int]:
    """Files whose every document is vouched for, each digest used by one document only
    (with `declared`, not those that may declare a schema contract: they are read)."""
    seen: dict[str, int] = {}
    for f in files:
        for s in f.segments or ():
            seen[s.digest] = seen.get(s.digest, 0) + 1
    return {
        i
        for i, f in enumerate(files)
        if f.segments is not None
        and not (declared and f.schema)
        and all(s.digest in vouched and seen[s.digest] == 1 for s in f.segments)
    }


@dataclass(frozen=True)
class _Applied:
    """A row's secret_refs, parsed: by field, the reference and the fingerprint applied."""

    fields: dict[str, tuple[Any, Any]]
    references: frozenset[bytes]


def _applied(secret_refs: str) -> _Applied | None:
    """The references a row says it was applied with, None when it is not what an apply
    wrote. Only those written in the document itself are resolved (a row comes from
    whoever can write the table)."""
    try:
        fields = {str(path): (ref, fp) for path, (ref, fp) in json.loads(secret_refs).items()}
    except (ValueError, TypeError, AttributeError):
        return None
    return _Applied(fields, frozenset(str(ref).encode() for ref, _ in fields.values()))


def _secrets_unchanged(refs: _Applied, source: str, of: Callable[[Any], str]) -> bool | None:
    """True when every reference resolves to the fingerprint it was applied with; False
    when one changed; None when one cannot be resolved now."""
    try:
        for path, (reference, applied) in sorted(refs.fields.items()):
            if of(resolve(reference, source=source, field=path)) != applied:
                return False
    except SecretResolutionError:
        return None
    return True


def _merge(
    files: Sequence[FileDigests],
    unchanged: set[int],
    vouched: Mapping[str, DigestRow],
    partial: Sequence[Change],
) -> list[Change]:
    """The changes in the full plan's order: documents in file order, then deletions."""
    by_file: dict[str, list[Change]] = {}
    for change in partial:
        if change.action != "delete" and change.file is not None:
            by_file.setdefault(change.file, []).append(change)
    out: list[Change] = []
    for index, f in enumerate(files):
        if index in unchanged:
            out.extend(_noop(vouched[s.digest], f.display, s) for s in f.segments or ())
        else:
            out.extend(by_file.get(f.display, ()))
    out.extend(c for c in partial if c.action == "delete")
    return out


def _noop(row: DigestRow, display: str, segment: Segment) -> Change:
    """What plan._compare gives for a source in sync with no ignored fields and every secret
    resolved, except `document` (no report shows a no-op's document; saved plans and
    --schema take the full path)."""
    values = {
        "action": "noop",
        "name": row.name,
        "source_type": row.source_type,
        "record_id": row.id,
        "version": row.version,
        "fields": (),
        "file": display,
        "line": segment.line,
        "document": None,
        "drift": (),
        "conflicts": (),
        "keep": (),
        "unknown": (),
        "recreate": False,
    }
    return built(Change, values, _ALL_FIELDS)


_ALL_FIELDS = set(Change.model_fields)  # shared: model_copy copies it before changing it
