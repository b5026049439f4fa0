"""What an apply stores with each record it writes, so the next plan can skip it
(planning/fast_plan.py): the digest of the document, its secret references with their
fingerprints. Stored only where a later plan would find the record in sync right after.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from reconciler.backends.base import NewRecord, Restamp
from reconciler.manifests import digests as docdigests
from reconciler.manifests.digests import FileDigests
from reconciler.manifests.json_schemas import connection_specs
from reconciler.models import Change, Plan
from reconciler.secret_refs import is_reference

_WRITES = ("create", "update", "replace")


def stamps(
    files: Sequence[FileDigests],
    changes: Sequence[Change],
    counts: Mapping[str, int],
    *,
    actions: tuple[str, ...] = _WRITES,
) -> dict[str, str]:
    """The digest to store with each record written, by casefolded name: only for documents
    that the full plan would find in sync right after the write (see `eligible`) and that
    mean the same wherever they are moved.

    `files` were hashed before the manifests were loaded: a file touched since (its mtime,
    size or inode moved, even if its content was changed back) gets no digest. `counts`:
    how many manifests the loader read per file. A YAML document reads the same wherever it
    is, unless a directive (`%TAG`) of its file applies to it; and the cut must find the
    loader's documents (as many, `name:` on the line the loader gave).
    """
    where = {f.display: f for f in files}
    unmoved: dict[str, bool] = {}
    out: dict[str, str] = {}
    for change in changes:
        if change.action not in actions or change.document is None:
            continue
        f = where.get(change.file or "")
        if f is None or not f.segments or counts.get(f.display) != len(f.segments):
            continue
        segment = next((s for s in f.segments if s.line == change.line), None)
        if segment is None or not segment.alone or not eligible(change.document):
            continue
        if f.opened not in unmoved:  # touched since it was hashed (even if changed back)?
            unmoved[f.opened] = f.stat is not None and docdigests.file_stat(f.opened) == f.stat
        if unmoved[f.opened]:
            out[change.name.casefold()] = segment.digest
    return out


def stamper(digests: Mapping[str, str]) -> Callable[[NewRecord], NewRecord]:
    """What writes.apply_plan does to each record it writes: add its digest and references."""

    def stamp(record: NewRecord) -> NewRecord:
        digest = digests.get(record.name.casefold())
        if digest is None:
            return record
        refs = secret_refs(record.last_applied, record.fingerprints)
        return replace(record, digest=digest, secret_refs=refs)

    return stamp


def eligible(document: Mapping[str, Any]) -> bool:
    """Whether a record written from this canonical document reads back as in sync: no
    ignored fields (their live values are kept), no sensitive field written literally
    (the live side shows it redacted)."""
    if document["lifecycle"]["ignore_changes"]:
        return False
    spec = connection_specs().get(str(document["source_type"]))
    sensitive = spec.sensitive_fields if spec else frozenset({"password"})
    return not any(
        key in sensitive and not is_reference(value)
        for key, value in document["connection"].items()
    )


def secret_refs(document: Mapping[str, Any], fingerprints: Mapping[str, str]) -> str | None:
    """The references of a document with the fingerprints they were applied with (JSON)."""
    refs = {
        f"connection.{key}": [value, fingerprints.get(f"connection.{key}")]
        for key, value in document["connection"].items()
        if is_reference(value)
    }
    return json.dumps(refs, sort_keys=True) if refs else None


def restamps(
    files: Sequence[FileDigests],
    plan: Plan,
    counts: Mapping[str, int],
    fingerprints: Mapping[str, Mapping[str, str | None]],
) -> list[Restamp]:
    """Records the full plan found in sync, to be given the digest of their document (the
    first apply after an upgrade or a new canonicalisation version). Only a plain no-op: no
    drift (the next full plan would report it again), nothing unknown, nothing ignored."""
    plain = [
        c
        for c in plan.changes
        if c.action == "noop"
        and c.document is not None
        and c.record_id is not None
        and c.version is not None
        and not (c.drift or c.conflicts or c.unknown or c.keep)
    ]
    digests = stamps(files, plain, counts, actions=("noop",))
    out: list[Restamp] = []
    for change in plain:
        digest = digests.get(change.name.casefold())
        prints = fingerprints.get(change.name.casefold(), {})
        if digest is None or any(v is None for v in prints.values()):
            continue
        assert change.document is not None and change.record_id and change.version is not None
        refs = secret_refs(change.document, {k: v for k, v in prints.items() if v is not None})
        out.append(Restamp(change.record_id, change.version, plan.owner, digest, refs))
    return out
