"""Edit one source's document inside a manifest file and leave every other byte alone.

A file is split at its `---` / `...` lines (YAML forbids those at column 0 inside a
document, so the split is exact); only the document holding the source is parsed and
re-emitted, round-trip (ruamel.yaml: comments, key order, quoting and flow/block style
kept), with the indentation it already uses. A document that ruamel.yaml cannot re-emit
byte for byte unedited is refused rather than reformatted.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import ScalarString, SingleQuotedScalarString

_MARKER = re.compile(r"^(---|\.\.\.)(?=[ \t\r\n]|$)")


class CannotEdit(Exception):
    """The document cannot be edited without reformatting it, or is not found."""


def edit_source(text: str, name: str, values: Mapping[str, Any]) -> str:
    """`text` with source `name`'s fields set to `values` (dotted path -> value).

    A value of None removes the key; a list is written as the tag list (kept items keep
    their place and comments, new ones are appended). Other documents are untouched.
    """
    chunks = _chunks(text)
    for index, chunk in enumerate(chunks):
        if _MARKER.match(chunk) or not chunk.strip():
            continue
        yaml, doc = _load(chunk)
        if not isinstance(doc, CommentedMap) or not _is_source(doc, name):
            continue
        if _dump(yaml, doc) != chunk:
            raise CannotEdit("its formatting cannot be kept by a round-trip YAML writer")
        for path, value in values.items():
            _set(doc, tuple(path.split(".")), value)
        chunks[index] = _dump(yaml, doc)
        return "".join(chunks)
    raise CannotEdit("no document of this name in the file")


def _chunks(text: str) -> list[str]:
    """The file as alternating document bodies and marker lines; "".join() gives it back."""
    chunks: list[str] = [""]
    for line in text.splitlines(keepends=True):
        if _MARKER.match(line):
            chunks += [line, ""]
        else:
            chunks[-1] += line
    return chunks


# (mapping indent, sequence indent, dash offset) a document may use; the one that gives
# the document back byte for byte is kept.
_INDENTS = tuple(
    (mapping, sequence, offset)
    for mapping in (2, 4, 3)
    for sequence, offset in ((2, 0), (4, 2), (3, 1), (4, 0), (6, 4))
)


def _load(chunk: str) -> tuple[YAML, Any]:
    """The document, parsed with the indentation that re-emits it unchanged (if any)."""
    yaml = _yaml(*_INDENTS[0])
    try:
        doc = yaml.load(chunk)
    except YAMLError:
        return yaml, None
    for indents in _INDENTS:
        candidate = _yaml(*indents)
        if _dump(candidate, doc) == chunk:
            return candidate, candidate.load(chunk)
    return yaml, doc


def _yaml(mapping: int, sequence: int, offset: int) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 1 << 16  # never fold a long line the user did not fold
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def _dump(yaml: YAML, doc: Any) -> str:
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def _is_source(doc: CommentedMap, name: str) -> bool:
    value = doc.get("name")
    return isinstance(value, str) and value.casefold() == name.casefold()


def _set(doc: CommentedMap, path: tuple[str, ...], value: Any) -> None:
    parent: Any = doc
    for key in path[:-1]:
        parent = parent.get(key)
        if not isinstance(parent, CommentedMap):
            raise CannotEdit(f"{'.'.join(path)}: {key} is not a mapping")
    key = path[-1]
    if value is None:
        parent.pop(key, None)
    elif isinstance(value, list):
        current = parent.get(key)
        if isinstance(current, CommentedSeq):
            _set_items(current, value)
        else:
            seq = CommentedSeq(_plain(item) for item in value)
            seq.fa.set_flow_style()
            parent[key] = seq
    else:
        parent[key] = _styled(parent.get(key), value)


def _set_items(seq: CommentedSeq, items: Iterable[Any]) -> None:
    """The items of `seq` become `items`; kept items stay where they are, with their comments."""
    wanted = list(items)
    for index in reversed(range(len(seq))):
        if seq[index] not in wanted:
            del seq[index]
    seq.extend(_plain(item) for item in wanted if item not in seq)


def _styled(old: Any, new: Any) -> Any:
    """The new value in the old one's dress: same quoting or block style, same type."""
    if isinstance(new, int) and not isinstance(new, bool) and isinstance(old, str):
        new = str(new)  # a port written as "5432" stays a string
    if isinstance(new, str) and isinstance(old, ScalarString):
        return type(old)(new)
    return _plain(new)


_STR = "tag:yaml.org,2002:str"


def _plain(value: Any) -> Any:
    """A string the manifest loader (YAML 1.1: `yes`, `on`, `1_000`) would not read back as
    that string is quoted; ruamel.yaml alone, speaking YAML 1.2, would leave it plain."""
    if isinstance(value, str) and not isinstance(value, ScalarString):
        resolver = pyyaml.resolver.Resolver()
        tag = resolver.resolve(pyyaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
        if tag != _STR:
            return SingleQuotedScalarString(value)
    return value
