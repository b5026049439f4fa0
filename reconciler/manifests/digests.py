"""Digests of manifest documents, from their raw bytes: what a plan needs to skip a source.

A file is cut into documents at its `---` lines, as fast_path._segments does; each
document's digest covers its exact text, the reconciler's canonicalisation version and the
packaged schema files, so a document with the same digest as the one a record was applied
from means the same thing, wherever it now lives. Nothing here parses YAML: which digests
can be trusted is decided when they are stored (planning/fast_plan.py, `eligible`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from reconciler import progress
from reconciler.files import read_regular
from reconciler.manifests.discovery import check_directory, manifest_files
from reconciler.manifests.json_schemas import load_schemas

# Bump whenever canonical(), the Manifest model or how a document becomes a record changes
# meaning: every stored digest then differs and each source is planned the full way again.
CANON_VERSION = "1"
# The fast path's file limit (fast_path.MAX_CHARS): bigger files are always read whole.
MAX_CHARS = 65_536

_MARKER = re.compile(rb"^---", re.MULTILINE)
_CONTENT = re.compile(rb"^[ ]*[^ \n#]", re.MULTILINE)
_NAME = re.compile(rb"^name:", re.MULTILINE)
_DIRECTIVE = re.compile(rb"^%", re.MULTILINE)
# What a file's bytes cannot vouch for, so it is always read the full way and no digest is
# ever stored for it: `${var:...}` and `environments:` mean something else in another run
# (--var-file, --environment), and `previous_names` reach across files (the loader checks
# every claim against every name). A mention in a description costs only the shortcut.
_OUT_OF_REACH = re.compile(rb"\$\{var:|environments|previous_names")
# A file that may declare a schema contract: an apply's schema check must read it.
_SCHEMA = re.compile(rb"columns|schema_policy")
# Secret references as written (secret_refs.REFERENCE, anywhere in a document).
_REFERENCES = re.compile(rb"\$\{(?:env|file):[^}]+\}")


class Segment(NamedTuple):
    """One document of a file: its digest, the line of its top-level `name:`, where it is."""

    digest: str
    line: int
    start: int
    end: int
    # No directive (`%TAG ...`) in the file: the document reads the same wherever it is.
    alone: bool
    # The secret references written in the document: the only ones a plan may resolve for
    # it (a registry row names its own, and must not make us open files or read variables
    # the manifest does not name).
    references: frozenset[bytes] = frozenset()


class FileDigests(NamedTuple):
    """A manifest file; `segments` None when it must be read the full way."""

    display: str
    relative: str
    opened: str
    segments: tuple[Segment, ...] | None
    # (mtime_ns, size, inode) when read: an apply stores no digest for a file that was
    # touched after (planning/stamping.stamps).
    stat: tuple[int, int, int] | None = None
    # It may declare `columns` or `schema_policy` (an apply's schema check reads it).
    schema: bool = True


def scan(sources_dir: Path, *, track: bool = True, schema: bool = True) -> list[FileDigests]:
    """Every manifest file of the directory (the loader's discovery), each cut and hashed
    (shown as loading them; `track` False when the loader reads them all next); `schema`
    False: no file is searched for a schema contract (all are marked as may-declare)."""
    check_directory(sources_dir)  # the loader's discovery: same files, same order
    prefix = (sources_dir / "_").as_posix()[:-1]
    salt = _salt()
    found = manifest_files(sources_dir)
    out: list[FileDigests] = []
    for relative, opened in progress.track(found, "Loading manifests") if track else found:
        data, seen = _read(opened)
        segments = None if data is None or _OUT_OF_REACH.search(data) else _cut(data, salt)
        declares = not schema or data is None or _SCHEMA.search(data) is not None
        out.append(FileDigests(prefix + relative, relative, opened, segments, seen, declares))
    return out


def file_stat(path: str) -> tuple[int, int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return (found.st_mtime_ns, found.st_size, found.st_ino)


def _read(path: str) -> tuple[bytes | None, tuple[int, int, int] | None]:
    """The file's bytes (None: unreadable or too big) and its (mtime_ns, size, inode).

    Bytes, not text: a digest is only ever matched against one stored when the same bytes
    were loaded without error (valid UTF-8 among the rest), so decoding would prove nothing.
    """
    try:
        data, found = read_regular(path, MAX_CHARS)
    except (OSError, ValueError):
        return None, None
    if len(data) != found.st_size:  # changed while read
        return None, None
    return data, (found.st_mtime_ns, found.st_size, found.st_ino)


def _cut(data: bytes, salt: bytes) -> tuple[Segment, ...] | None:
    if b"\r" in data:
        return None
    alone = b"%" not in data or _DIRECTIVE.search(data) is None
    if b"---" not in data:  # one document (or none): most files
        if data.startswith(b"name:"):  # most of those: no search needed
            return (_segment(data, 0, len(data), 0, alone, salt),)
        found = _NAME.search(data)
        if found is None:
            return None if _CONTENT.search(data) else ()
        return (_segment(data, 0, len(data), found.start(), alone, salt),)
    starts = [m.start() for m in _MARKER.finditer(data)]
    bounds = [0, len(data)] if not starts else [*starts, len(data)]
    pieces = [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]
    if starts and starts[0] > 0:
        pieces.insert(0, (0, starts[0]))
    out: list[Segment] = []
    for start, end in pieces:
        if _CONTENT.search(data, start, end) is None:
            continue  # no content: no document (as on both loading paths)
        found = _NAME.search(data, start, end)
        if found is None:
            return None
        out.append(_segment(data, start, end, found.start(), alone, salt))
    return tuple(out)


def _segment(data: bytes, start: int, end: int, name: int, alone: bool, salt: bytes) -> Segment:
    """The document data[start:end], whose top-level `name:` is at offset `name`."""
    hasher = _hasher(salt).copy()
    hasher.update(memoryview(data)[start:end])
    line = data.count(b"\n", 0, name) + 1
    written = frozenset(_REFERENCES.findall(data, start, end)) if b"${" in data else frozenset()
    return Segment(hasher.hexdigest(), line, start, end, alone, written)


@cache
def _hasher(salt: bytes) -> Any:
    return hashlib.sha256(salt)


@cache
def _salt() -> bytes:
    """The canonicalisation version and the schema files a document is judged by."""
    schemas = json.dumps(load_schemas(), sort_keys=True, separators=(",", ":"))
    schemas_digest = hashlib.sha256(schemas.encode()).hexdigest()  # short: hashed per document
    return f"reconciler-doc\0{CANON_VERSION}\0{schemas_digest}\0".encode()
