"""`reconcile drift --write`: out-of-band changes of live records, written back into git.

Reverse GitOps: instead of silently reverting someone's change in the registry, a scheduled
job writes it into the manifests and opens a pull request. Planning the edits is pure (the
drift a plan already computed, nothing read again); each file is then edited round-trip
(manifests/roundtrip.py), re-read with the manifest loader, checked to say exactly the
live values, and replaced atomically. A secret is never written: sensitive fields and
fields holding a ${env:...}/${file:...} reference are left as they are and reported.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.errors import ReconcilerError
from reconciler.files import write_atomic
from reconciler.manifests.documents import DRIFTED_SECRET, REDACTED, canonical
from reconciler.manifests.json_schemas import ConnectionSpec, connection_specs, is_sensitive
from reconciler.manifests.loading import validate_document
from reconciler.manifests.roundtrip import CannotEdit, edit_source
from reconciler.manifests.yaml_lines import parse_documents
from reconciler.models import Change, FieldChange, Plan
from reconciler.redaction import REDACTOR
from reconciler.secret_refs import is_reference

SENSITIVE = "sensitive"
# Fields the registry holds; the others (columns, lifecycle, ...) live in git only.
_WRITABLE = ("name", "description", "tags", "connection")


@dataclass(frozen=True)
class SourceEdit:
    """The drifted fields of one source to write into its manifest (values display-safe)."""

    name: str
    file: str
    fields: tuple[FieldChange, ...]


@dataclass(frozen=True)
class NotWritten:
    """Drift left for a human, and why (never with a secret value)."""

    name: str
    reason: str
    path: str = ""
    file: str = ""


@dataclass(frozen=True)
class Writeback:
    edits: tuple[SourceEdit, ...] = ()
    not_written: tuple[NotWritten, ...] = ()

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e.file for e in self.edits))


def plan_writeback(plan: Plan, specs: Mapping[str, ConnectionSpec] | None = None) -> Writeback:
    """The manifest edits that make git say what the live records of this owner say."""
    specs = connection_specs() if specs is None else specs
    edits: list[SourceEdit] = []
    skipped: list[NotWritten] = []
    for change in plan.drifted:
        file = change.file or ""
        if change.recreate:
            skipped.append(
                NotWritten(
                    change.name,
                    "deleted outside git; the manifest is kept (`reconcile` recreates the "
                    "record; delete the manifest to accept the deletion)",
                    file=file,
                )
            )
            continue
        fields: list[FieldChange] = []
        for drifted in change.drift:
            reason = _why_not(change, drifted, specs)
            if reason:
                skipped.append(NotWritten(change.name, reason, drifted.path, file))
            elif _get(change.document, drifted.path) != drifted.new:
                fields.append(drifted)
        if fields:
            edits.append(SourceEdit(change.name, file, tuple(fields)))
    for record in plan.added_out_of_band:
        skipped.append(
            NotWritten(
                record.name,
                f"not managed by any reconciler; adopt it with "
                f"`reconcile import --name {record.name} --out DIR`",
            )
        )
    return Writeback(tuple(edits), tuple(skipped))


def _why_not(change: Change, drifted: FieldChange, specs: Mapping[str, ConnectionSpec]) -> str:
    """Why this drifted field must not be written into git; "" when it may."""
    head, _, key = drifted.path.partition(".")
    if head not in _WRITABLE or (head == "connection") != bool(key) or "." in key:
        return f"{drifted.path} is not kept in the registry"
    if head == "connection":
        if is_sensitive(change.source_type, key, specs):  # by its schema or by its name
            return SENSITIVE
        desired = _get(change.document, drifted.path)
        for value in (desired, drifted.old, drifted.new):  # a reference, or a secret's stand-in
            if is_reference(value) or value in (REDACTED, DRIFTED_SECRET):
                return SENSITIVE
    shown = json.dumps(drifted.new, default=str)
    if REDACTOR.scrub(shown) != shown:  # a resolved secret pasted into a live field
        return SENSITIVE
    if drifted.path in change.conflicts:
        return "changed in git too (a conflict); resolve it by hand"
    return ""


def write_back(writeback: Writeback) -> Writeback:
    """Edit the manifest files; what was written, and everything left unwritten.

    Every file is edited and checked in memory first; only then are files replaced, each
    atomically. A source whose edit cannot be made exactly is reported, not half-written.
    """
    written: list[SourceEdit] = []
    skipped = list(writeback.not_written)
    new_texts: dict[str, str] = {}
    for edit in writeback.edits:
        path = Path(edit.file)
        try:
            if path.is_symlink():
                raise CannotEdit("it is a symbolic link")
            before = new_texts.get(edit.file)
            if before is None:
                before = path.read_text(encoding="utf-8")
            after = edit_source(before, edit.name, _values(edit))
            _check(after, edit)
        except (CannotEdit, OSError, UnicodeDecodeError) as exc:
            skipped.append(NotWritten(edit.name, _reason(exc), file=edit.file))
            continue
        new_texts[edit.file] = after
        written.append(edit)
    for file, text in new_texts.items():
        try:
            # In one step, keeping the file's permissions: never a half-written manifest.
            write_atomic(Path(file), text, mode=Path(file).stat().st_mode & 0o7777)
        except OSError as exc:
            raise ReconcilerError(f"cannot write {file}: {_reason(exc)}") from None
    return Writeback(tuple(written), tuple(skipped))


def _values(edit: SourceEdit) -> dict[str, Any]:
    """What to set in the file: a removed field is removed, a tag list keeps its order."""
    values: dict[str, Any] = {}
    for field in edit.fields:
        new = field.new
        if field.path in ("description", "tags") and new in ("", []):
            new = None  # the default: the key goes, as it went from the record
        values[field.path] = list(new) if isinstance(new, list | tuple) else new
    return values


def _check(text: str, edit: SourceEdit) -> None:
    """Re-read the edited file as `reconcile` will: valid, and saying the live values."""
    docs, problems = parse_documents(text, edit.file)
    for doc in docs:
        if not isinstance(doc.data, dict) or not _same_name(doc.data.get("name"), edit.name):
            continue
        manifest, doc_problems = validate_document(doc, edit.file)
        problems += doc_problems
        if manifest is None or problems:
            break
        after = canonical(manifest.model_dump(mode="json"))
        for field in edit.fields:
            if _get(after, field.path) != field.new:
                raise CannotEdit(f"{field.path} would not read back as the live value")
        return
    detail = f": {problems[0].message}" if problems else ""
    raise CannotEdit(f"the live values do not make a valid manifest{detail}")


def _same_name(value: Any, name: str) -> bool:
    return isinstance(value, str) and value.casefold() == name.casefold()


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def _get(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


def render(writeback: Writeback) -> str:
    """The summary printed after the drift report: files and fields written, and the rest."""
    lines: list[str] = []
    if writeback.edits:
        count = len(writeback.files)
        lines.append(f"Wrote drift back into {count} manifest file{'s' if count > 1 else ''}:")
        for edit in writeback.edits:
            fields = ", ".join(f.path for f in edit.fields)
            lines.append(f"  {edit.file}: {edit.name}: {fields}")
    else:
        lines.append("No drift written back into the manifests.")
    if writeback.not_written:
        lines.append("Not written:")
        for item in writeback.not_written:
            where = f" {item.path}" if item.path else ""
            lines.append(f"  {item.name}{where}: {item.reason}")
    return REDACTOR.scrub("\n".join(lines) + "\n")
