"""`reconcile import`: adopt records registered outside git by writing their manifests.

Secrets never reach the written files: every sensitive value becomes a `${env:...}` reference
with a comment naming the variable to set, and the record keeps a fingerprint of the live
value so the next plan knows whether the variable holds the same secret.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from reconciler.actor import actor
from reconciler.backends import open_registry
from reconciler.backends.base import ConnectOptions, NewRecord, RecordUpdate, RunEntry, Writes
from reconciler.errors import ReconcilerError
from reconciler.files import move_into_place, write_aside
from reconciler.manifests.documents import canonical
from reconciler.manifests.json_schemas import is_sensitive
from reconciler.manifests.loading import find_manifest_files, load_manifests
from reconciler.models import Record
from reconciler.redaction import is_sensitive_name, redact_url
from reconciler.secret_refs import fingerprint, is_reference


@dataclass(frozen=True)
class Imported:
    name: str
    path: Path
    variables: tuple[str, ...]


def env_name(source: str, field: str) -> str:
    """RECONCILER_<SOURCE>_<FIELD>, upper-cased, anything else as `_`."""
    return re.sub(r"[^A-Z0-9]+", "_", f"RECONCILER_{source}_{field}".upper()).strip("_")


def manifest_for(record: Record) -> tuple[dict[str, Any], dict[str, str]]:
    """The manifest document for a record, and {field path: variable} for its secrets.

    A key sensitive by schema or by name becomes a reference. A secret-named key inside a
    nested value cannot be a reference (only top-level keys are resolved), so it is refused.
    """
    connection: dict[str, Any] = {}
    variables: dict[str, str] = {}
    for key, value in record.connection.items():
        if is_sensitive(record.source_type, key) and value is not None:
            if is_reference(value):
                connection[key] = value
                continue
            variable = env_name(record.name, key)
            variables[f"connection.{key}"] = variable
            connection[key] = f"${{env:{variable}}}"
        else:
            nested = _nested_secret(value, f"connection.{key}")
            if nested is not None:
                raise ReconcilerError(
                    f"source '{record.name}' {nested} holds a secret inside a nested value, "
                    "which a manifest cannot reference; nothing was imported"
                )
            connection[key] = value
    doc: dict[str, Any] = {"name": record.name, "source_type": record.source_type}
    if record.description:
        doc["description"] = record.description
    doc["connection"] = connection
    if record.tags:
        doc["tags"] = sorted(set(record.tags))
    return doc, variables


def _schema_line(directory: Path) -> list[str]:
    """The editor's `$schema` line: relative to the repository's `schemas/` if there is one
    above the manifest (up to the repository root); else none. Never the installed copy,
    which lives in a virtualenv that others do not have."""
    here = directory.resolve()
    for folder in (here, *here.parents):
        schema = folder / "schemas" / "source.schema.json"
        if schema.is_file():
            relative = Path(os.path.relpath(schema, here)).as_posix()
            return [f"# yaml-language-server: $schema={relative}"]
        if (folder / ".git").exists():
            break
    return []


def check_destination(out_dir: Path, sources_dir: Path, *, allow_outside: bool) -> set[str]:
    """Refuse the imports that set a trap; the casefolded names the sources directory declares.

    Manifests written outside the sources directory are not read by the next run, whose
    `--prune` would delete the records just adopted.
    """
    out, src = out_dir.resolve(), sources_dir.resolve()
    if not allow_outside and out != src and src not in out.parents:
        raise ReconcilerError(
            f"--out {out_dir} is outside the sources directory {sources_dir}: the next run "
            "would not read these manifests and --prune would delete what was adopted; "
            "write into the sources directory, or pass --allow-outside; nothing was imported"
        )
    if not sources_dir.is_dir() or not find_manifest_files(sources_dir):
        return set()
    return {m.name.casefold() for m in load_manifests(sources_dir, allow_empty=True)}


def _nested_secret(value: Any, path: str) -> str | None:
    """The path of the first secret-named key with a literal value inside `value`."""
    if isinstance(value, dict):
        for key, inner in value.items():
            where = f"{path}.{key}"
            literal = inner not in (None, "") and not isinstance(inner, dict | list)
            if literal and is_sensitive_name(str(key)) and not is_reference(inner):
                return where
            found = _nested_secret(inner, where)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found = _nested_secret(inner, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def file_stem(name: str) -> str:
    """A file name for a source: letters (any script), digits, `_`, `.` and `-` kept."""
    stem = re.sub(r"[^\w.-]+", "_", unicodedata.normalize("NFC", name)).strip("._")
    return stem or "source"


def _same_file(stem: str) -> str:
    """Names a case-insensitive, normalisation-insensitive file system (macOS, Windows) sees
    as one file."""
    return unicodedata.normalize("NFC", stem).casefold()


def _paths(records: list[Record], out_dir: Path) -> dict[str, Path]:
    """A distinct file per record, checked before anything is written or adopted.

    Names that map to one file name (`sales data`/`sales/data`, `Orders`/`orders`) each get
    a suffix from their own name; a file already there (in any case) is refused.
    """
    stems = [file_stem(r.name) for r in records]
    clashes = {k for k in map(_same_file, stems) if [*map(_same_file, stems)].count(k) > 1}
    existing = {}
    if out_dir.is_dir():
        existing = {_same_file(p.name): p for p in out_dir.iterdir()}
    paths: dict[str, Path] = {}
    for record, stem in zip(records, stems, strict=True):
        if _same_file(stem) in clashes:
            digest = hashlib.sha256(record.name.encode("utf-8")).hexdigest()[:8]
            stem = f"{stem}-{digest}"
        path = out_dir / f"{stem}.yaml"
        clash = existing.get(_same_file(path.name))
        if clash is not None:
            raise ReconcilerError(
                f"{clash} already exists (for source '{record.name}'); nothing was imported"
            )
        paths[record.name] = path
    return paths


def _file_text(doc: dict[str, Any], variables: dict[str, str], registry: str, path: Path) -> str:
    lines = [
        *_schema_line(path.parent),
        f"# Imported from {redact_url(registry)} on {datetime.now(UTC):%Y-%m-%d} "
        "by reconcile import.",
    ]
    for field, variable in variables.items():
        lines.append(f"# Set {variable} to this source's {field} before applying.")
    return "\n".join(lines) + "\n" + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def import_records(
    registry_url: str,
    *,
    owner: str,
    names: list[str] | None,
    out_dir: Path,
    sources_dir: Path,
    allow_outside: bool = False,
    options: ConnectOptions | None = None,
) -> list[Imported]:
    """Write manifests for unowned records and adopt them for `owner`, all or nothing."""
    declared = check_destination(out_dir, sources_dir, allow_outside=allow_outside)
    registry = open_registry(registry_url, writable=True, options=options)
    try:
        registry.init()
        with registry.locked():
            records = {r.name.casefold(): r for r in registry.list_records()}
            chosen = _choose(records, names, owner)
            clash = [r.name for r in chosen if r.name.casefold() in declared]
            if clash:
                raise ReconcilerError(
                    f"already declared in {sources_dir}: {', '.join(clash)}; importing would "
                    "write a second manifest for the same source; nothing was imported"
                )
            key = registry.fingerprint_key()
            paths = _paths(chosen, out_dir)
            planned = []
            for record in chosen:
                doc, variables = manifest_for(record)
                planned.append((record, doc, variables, paths[record.name]))
            _distinct_variables(planned)
            created_dir = not out_dir.exists()
            out_dir.mkdir(parents=True, exist_ok=True)
            updates = [
                RecordUpdate(_adopted(record, doc, variables, owner, key), record.version, None)
                for record, doc, variables, _ in planned
            ]
            run = RunEntry(
                id=str(uuid.uuid4()),
                owner=owner,
                actor=actor(),
                started_at=datetime.now(UTC),
                updated=len(updates),
                message=f"import: adopted {len(updates)} record(s)",
            )
            # Files are written aside first and moved into place only once the adoption is
            # committed, so a failure leaves neither stray manifests nor half-adopted records.
            staged: list[tuple[Path, Path]] = []
            try:
                for _, doc, variables, path in planned:
                    text = _file_text(doc, variables, registry.display_url, path)
                    staged.append((write_aside(path, text), path))
                registry.apply(Writes(updates=updates), run)
            except BaseException:
                for tmp, _ in staged:
                    tmp.unlink(missing_ok=True)
                if created_dir:
                    with contextlib.suppress(OSError):
                        out_dir.rmdir()  # only if empty
                raise
            for tmp, path in staged:
                move_into_place(tmp, path)
        return [
            Imported(record.name, path, tuple(variables.values()))
            for record, _, variables, path in planned
        ]
    finally:
        registry.close()


def _distinct_variables(planned: list[tuple[Record, dict[str, Any], dict[str, str], Path]]) -> None:
    """Two sources whose names differ only in punctuation would share one variable (and so
    one secret); refused before anything is written."""
    seen: dict[str, str] = {}
    for record, _, variables, _ in planned:
        for variable in variables.values():
            other = seen.setdefault(variable, record.name)
            if other != record.name:
                raise ReconcilerError(
                    f"sources '{other}' and '{record.name}' would both read their secret from "
                    f"{variable}; import them one at a time; nothing was imported"
                )


def _choose(records: dict[str, Record], names: list[str] | None, owner: str) -> list[Record]:
    if names is None:
        unowned = sorted(
            (r for r in records.values() if r.managed_by is None), key=lambda r: r.name
        )
        for each in unowned:
            _readable(each)
        return unowned
    chosen = []
    for name in names:
        record = records.get(name.casefold())
        if record is None:
            raise ReconcilerError(f"no source named '{name}' in the registry; nothing was imported")
        _readable(record)
        if record.managed_by == owner:
            raise ReconcilerError(f"source '{name}' is already managed by '{owner}'")
        if record.managed_by is not None:
            raise ReconcilerError(
                f"source '{name}' is managed by '{record.managed_by}'; "
                "only records nobody owns can be imported"
            )
        chosen.append(record)
    return chosen


def _readable(record: Record) -> None:
    if record.unreadable:
        raise ReconcilerError(
            f"source '{record.name}' (record {record.id}) cannot be read from the registry "
            f"({record.unreadable}); nothing was imported"
        )


def _adopted(
    record: Record, doc: dict[str, Any], variables: dict[str, str], owner: str, key: bytes | None
) -> NewRecord:
    fingerprints = {}
    for path in variables:
        value = record.connection.get(path.split(".", 1)[1])
        if key is not None and value is not None:
            fingerprints[path] = fingerprint(key, value)
    last = canonical(doc)
    return NewRecord(
        id=record.id,
        name=record.name,
        source_type=record.source_type,
        connection=dict(record.connection),
        description=record.description,
        tags=list(record.tags),
        managed_by=owner,
        last_applied=last,
        fingerprints=fingerprints,
    )
