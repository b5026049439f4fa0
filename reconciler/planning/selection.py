"""--select / --exclude: which sources a run looks at, with dbt's selector syntax. Pure.

A selector is `METHOD:VALUE` (`name:orders*`, `tag:pii`, `path:sources.d/finance`,
`type:csv`) or a bare word (a name). Within one option value, space-separated selectors
are a union and comma-joined ones an intersection (`tag:pii,type:csv`); repeated options
are a union. With no --select everything is selected; --exclude then takes away.

Records are selected through their manifest: a record claimed by a manifest (by its
current or a previous name) is in the selection exactly when that manifest is, so a
selection never splits a rename and never prunes what another manifest claims. A record
without a manifest (an orphan, an unmanaged or out-of-band record) is matched by its own
name, tags and type; `path:` never matches it.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from reconciler.errors import ReconcilerError
from reconciler.models import Manifest, Record

METHODS = ("name", "tag", "path", "type")


class SelectionError(ReconcilerError):
    """A selector that cannot mean anything (unknown method, empty value)."""


@dataclass(frozen=True)
class Selector:
    method: str
    value: str


# A union of intersections: ((a, b), (c,)) is (a and b) or c.
Terms = tuple[tuple[Selector, ...], ...]


@dataclass(frozen=True)
class Selection:
    select: Terms = ()
    exclude: Terms = ()

    @property
    def everything(self) -> bool:
        return not self.select and not self.exclude


@dataclass(frozen=True)
class _Candidate:
    """What selectors look at: a manifest (with its file) or a record (without one)."""

    name: str
    tags: tuple[str, ...]
    source_type: str
    paths: tuple[str, ...] = ()


def parse(select: Iterable[str] = (), exclude: Iterable[str] = ()) -> Selection:
    """The selection the option values say, or SelectionError naming the bad selector."""
    return Selection(_terms(select), _terms(exclude))


def _terms(values: Iterable[str]) -> Terms:
    terms: list[tuple[Selector, ...]] = []
    for value in values:
        for word in value.split():
            terms.append(tuple(_selector(part, word) for part in word.split(",")))
    return tuple(terms)


def _selector(text: str, word: str) -> Selector:
    method, colon, value = text.partition(":")
    if not colon:
        method, value = "name", text
    if method not in METHODS:
        raise SelectionError(
            f"unknown selector method '{method}' in '{word}' "
            f"(expected {', '.join(m + ':' for m in METHODS)} or a bare name)"
        )
    if not value:
        raise SelectionError(f"empty selector in '{word}'")
    if method == "path":
        value = posixpath.normpath(value.replace(os.sep, "/"))
    return Selector(method, value)


def select(
    selection: Selection,
    manifests: Sequence[Manifest],
    records: Iterable[Record],
    *,
    sources_dir: str,
) -> tuple[list[Manifest], list[Record]]:
    """The manifests and records inside the selection (see the module docstring)."""
    chosen = select_manifests(selection, manifests, sources_dir=sources_dir)
    if selection.everything:
        return chosen, list(records)
    inside = {id(m) for m in chosen}
    claimed: dict[str, bool] = {}
    for manifest in manifests:
        for name in (manifest.name, *manifest.previous_names):
            claimed.setdefault(name.casefold(), id(manifest) in inside)
    kept = [
        r
        for r in records
        if claimed.get(r.name.casefold())
        or (r.name.casefold() not in claimed and _selected(selection, _of_record(r)))
    ]
    return chosen, kept


def select_manifests(
    selection: Selection, manifests: Sequence[Manifest], *, sources_dir: str
) -> list[Manifest]:
    if selection.everything:
        return list(manifests)
    return [m for m in manifests if _selected(selection, _of_manifest(m, sources_dir))]


def _selected(selection: Selection, candidate: _Candidate) -> bool:
    chosen = not selection.select or _any(selection.select, candidate)
    return chosen and not _any(selection.exclude, candidate)


def _any(terms: Terms, candidate: _Candidate) -> bool:
    return any(all(_matches(s, candidate) for s in term) for term in terms)


def _matches(selector: Selector, candidate: _Candidate) -> bool:
    pattern = selector.value.casefold()
    if selector.method == "name":
        return fnmatchcase(candidate.name.casefold(), pattern)
    if selector.method == "tag":
        return any(fnmatchcase(tag.casefold(), pattern) for tag in candidate.tags)
    if selector.method == "type":
        return fnmatchcase(candidate.source_type.casefold(), pattern)
    prefix = selector.value  # paths are case-sensitive, like the file system
    return any(
        path == prefix or path.startswith(prefix.rstrip("/") + "/") or fnmatchcase(path, prefix)
        for path in candidate.paths
    )


def _of_manifest(manifest: Manifest, sources_dir: str) -> _Candidate:
    """A manifest's file as written (relative to the working directory, or absolute),
    relative to the sources directory, and absolute."""
    file = posixpath.normpath(manifest.file)
    root = posixpath.normpath(sources_dir.replace(os.sep, "/"))
    paths = [file]
    if file.startswith(root.rstrip("/") + "/"):
        paths.append(file[len(root.rstrip("/")) + 1 :])
    paths.append(os.path.abspath(file).replace(os.sep, "/"))
    return _Candidate(manifest.name, manifest.tags, manifest.source_type, tuple(paths))


def _of_record(record: Record) -> _Candidate:
    return _Candidate(record.name, record.tags, record.source_type)
