"""YAML documents with the line of every key, duplicate keys reported instead of overwritten.

pyyaml's own loader silently keeps the last of two equal keys; a manifest whose `password`
or `table` is written twice must be an error, reported at the line of the second key.
Everything else a loader could do to us is reported as a problem too, never raised: foreign
tags, aliases that contain themselves, and alias bombs (a node budget per document).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import yaml

from reconciler.errors import Problem

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Path_ = tuple[str | int, ...]
# One entry of a mapping: key node, value node, and whether it came through a `<<` merge.
_Entry = tuple[yaml.Node, yaml.Node, bool]

# Values built per document, aliases expanded: far above any real manifest, and low enough
# that a "billion laughs" file is refused in milliseconds instead of eating all memory.
MAX_NODES = 100_000
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_VALUE = "tag:yaml.org,2002:value"
_INT = "tag:yaml.org,2002:int"
# The only integer spelling YAML 1.1 and 1.2 read alike (the fast path allows no other).
_DECIMAL = re.compile(r"[-+]?(?:0|[1-9][0-9]*)", re.ASCII)
_AMBIGUOUS_INT = (
    "integer in a YAML 1.1-only form (leading-zero octal, 0x, 0b, sexagesimal like 1:30, "
    "or digits with _), read differently by YAML 1.2: write it in plain decimal, or quote it"
)
_REJECTED = object()  # a scalar whose tag or text could not be constructed


@dataclass
class Document:
    """One YAML document: its value and the 1-based line of each path inside it."""

    data: Any
    line: int
    lines: dict[Path_, int] = field(default_factory=dict)
    # Paths whose value was refused (already reported); built as None, never a manifest.
    rejected: set[Path_] = field(default_factory=set)

    def line_of(self, path: Path_) -> int:
        """The line of the deepest known key on the path (a missing key reports its parent)."""
        for end in range(len(path), 0, -1):
            found = self.lines.get(tuple(path[:end]))
            if found is not None:
                return found
        return self.line

    def is_rejected(self, path: Path_) -> bool:
        """Whether the path is at or under a refused value: its schema errors would mislead."""
        return any(path[: len(rejected)] == rejected for rejected in self.rejected)


def dotted(path: Iterable[str | int]) -> str:
    """A path as users write it everywhere in messages: `columns[0].name`."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).removeprefix(".")


class _TooLarge(Exception):
    """The document expanded past MAX_NODES."""


@dataclass
class _Build:
    """The state of building one document: its problems and the guards against alias abuse."""

    doc: Document
    display: str
    constructor: yaml.SafeLoader
    problems: list[Problem] = field(default_factory=list)
    nodes: int = 0
    active: set[int] = field(default_factory=set)  # collections being built: an alias loop

    def count(self, nodes: int = 1) -> None:
        """Charge built nodes to the budget; aliases make a small file expand without bound."""
        self.nodes += nodes
        if self.nodes > MAX_NODES:
            raise _TooLarge

    def report(self, node: yaml.Node, message: str) -> None:
        self.problems.append(Problem(self.display, node.start_mark.line + 1, message))

    def reject(self, line: int, path: Path_, message: str) -> None:
        """Report a refused value and remember its path, so no schema error follows it."""
        self.problems.append(Problem(self.display, line, message))
        self.doc.rejected.add(path)

    def accepts(self, node: yaml.Node, path: Path_, line: int) -> bool:
        """False (reported once) for a collection with a foreign tag or inside itself.

        `line` is where the node is used: an alias has no mark of its own, its node's mark
        is the anchor's, so a loop is reported at the key or item that refers back.
        """
        if id(node) in self.active:
            self.reject(line, path, "recursive YAML alias (a node that contains itself)")
            return False
        if node.tag != (_MAP if isinstance(node, yaml.MappingNode) else _SEQ):
            self.reject(node.start_mark.line + 1, path, f"unsupported YAML tag {node.tag!r}")
            return False
        return True

    @contextmanager
    def inside(self, node: yaml.Node, path: Path_, line: int) -> Iterator[bool]:
        """Build a collection's content while an alias back to it would be a loop."""
        if not self.accepts(node, path, line):
            yield False
            return
        self.active.add(id(node))
        try:
            yield True
        finally:
            self.active.discard(id(node))


def parse_documents(text: str, display: str) -> tuple[list[Document], list[Problem]]:
    """Parse every `---` document of one file; never raises for bad input."""
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.YAMLError as exc:
        return [], [_syntax_problem(exc, text, display)]
    constructor = yaml.SafeLoader("")
    docs: list[Document] = []
    problems: list[Problem] = []
    for node in nodes:
        if node is None:
            continue
        doc, doc_problems = _document(node, display, constructor)
        problems.extend(doc_problems)
        if doc is not None:
            docs.append(doc)
    return docs, problems


def _syntax_problem(exc: yaml.YAMLError, text: str, display: str) -> Problem:
    """One line at the line to fix: where an unclosed construct began, where a bad byte is."""
    if isinstance(exc, yaml.reader.ReaderError):
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        at = text.find(chr(code))
        line = text.count("\n", 0, at) + 1 if at >= 0 else 1
        return Problem(
            display,
            line,
            f"YAML syntax error: unacceptable character #x{code:04x}: {exc.reason}",
        )
    if not isinstance(exc, yaml.MarkedYAMLError):
        return Problem(display, 1, f"YAML error: {exc}")
    mark = exc.problem_mark or exc.context_mark
    what = exc.problem or exc.context or "invalid YAML"
    if exc.problem_mark and exc.context_mark and not text[exc.problem_mark.index :].strip():
        # Found at the end of the file: the line to fix is where the open construct started.
        mark = exc.context_mark
        what = f"{what} {exc.context}" if exc.context else what
    return Problem(display, mark.line + 1 if mark else 1, f"YAML syntax error: {what}")


def _document(
    node: yaml.Node, display: str, constructor: yaml.SafeLoader
) -> tuple[Document | None, list[Problem]]:
    """Build one document; None for an empty one or one refused as a whole."""
    doc = Document(data=None, line=node.start_mark.line + 1)
    state = _Build(doc, display, constructor)
    try:
        doc.data = _build(node, (), state)
    except _TooLarge:
        message = f"document too large: more than {MAX_NODES} YAML nodes once aliases are expanded"
        return None, [Problem(display, doc.line, message)]
    except RecursionError:
        return None, [Problem(display, doc.line, "document nested too deeply")]
    if doc.data is None:
        return None, state.problems  # an empty document (e.g. a trailing `---`) is no source
    return doc, state.problems


def _build(node: yaml.Node, path: Path_, state: _Build) -> Any:
    """The plain value of a node: dicts with string keys, lists and scalars."""
    state.count()
    if isinstance(node, yaml.ScalarNode):
        value = _scalar(node, state)
        if value is _REJECTED:
            state.doc.rejected.add(path)
            return None
        if node.tag == _INT and not _DECIMAL.fullmatch(node.value):
            # `0755`, `0x1F`, `0b101`, `1:30`, `1_000`: integers to YAML 1.1 (pyyaml), other
            # values (or strings) to YAML 1.2 and to most other tools. Never guess which.
            where = f"{dotted(path)}: " if path else ""
            state.reject(node.start_mark.line + 1, path, where + _AMBIGUOUS_INT)
            return None
        return value
    with state.inside(node, path, state.doc.line_of(path)) as entered:
        if not entered:
            return None
        if isinstance(node, yaml.MappingNode):
            return _mapping(node, path, state)
        items = []
        for index, item in enumerate(node.value):
            state.doc.lines[(*path, index)] = item.start_mark.line + 1
            items.append(_build(item, (*path, index), state))
        return items


def _mapping(node: yaml.MappingNode, path: Path_, state: _Build) -> dict[str, Any]:
    """Keys as written; an explicit key overrides a merged one, two explicit ones clash."""
    chosen: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    explicit: set[str] = set()
    for key_node, value_node, merged in _entries(node, path, state):
        key = _key(key_node, state)
        if key is None:
            continue
        if key in explicit:
            first = chosen[key][0].start_mark.line + 1
            where = dotted((*path, key))
            state.report(key_node, f"duplicate key '{where}' (first defined on line {first})")
            continue
        if not merged:
            explicit.add(key)
        chosen[key] = (key_node, value_node)
    result: dict[str, Any] = {}
    for key, (key_node, value_node) in chosen.items():
        state.doc.lines[(*path, key)] = key_node.start_mark.line + 1
        result[key] = _build(value_node, (*path, key), state)
    return result


def _entries(node: yaml.MappingNode, path: Path_, state: _Build) -> list[_Entry]:
    """The entries in pyyaml's order: merged ones first (earlier merges lose), then the rest."""
    merged: list[_Entry] = []
    explicit: list[_Entry] = []
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag == _MERGE:
            merged.extend(_merged(key_node, value_node, path, state))
        else:
            explicit.append((key_node, value_node, False))
    state.count(len(merged))  # merges of merges multiply like aliases do
    return merged + explicit


def _merged(key_node: yaml.Node, value: yaml.Node, path: Path_, state: _Build) -> list[_Entry]:
    """The entries a `<<` brings in; in a list of mappings the first mapping wins."""
    line = key_node.start_mark.line + 1
    sources = [value]
    if isinstance(value, yaml.SequenceNode):
        if not state.accepts(value, path, line):
            return []
        sources = list(value.value)
    mappings = [source for source in sources if isinstance(source, yaml.MappingNode)]
    if len(mappings) != len(sources):
        state.reject(line, path, "merge key '<<' needs a mapping or a list of mappings")
        return []
    entries: list[_Entry] = []
    for source in reversed(mappings):
        with state.inside(source, path, line) as entered:
            if entered:
                entries.extend((k, v, True) for k, v, _ in _entries(source, path, state))
    return entries


def _key(node: yaml.Node, state: _Build) -> str | None:
    """A key as written (`on`, `5`), so YAML 1.1 booleans and numbers keep their spelling."""
    if not isinstance(node, yaml.ScalarNode):
        state.report(node, "mapping keys must be plain scalars")
        return None
    if _scalar(node, state) is _REJECTED:
        return None
    return str(node.value)


def _scalar(node: yaml.ScalarNode, state: _Build) -> Any:
    """The scalar's value, or _REJECTED (reported) for a foreign tag or an unparsable text."""
    if node.tag in (_MERGE, _VALUE):
        return node.value  # `<<` or `=` outside a key: plain text, not a loader error
    if node.tag not in state.constructor.yaml_constructors:
        state.report(node, f"unsupported YAML tag {node.tag!r}")
        return _REJECTED
    try:
        return state.constructor.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, TypeError, KeyError, AttributeError):
        # e.g. `!!int abc`: the safe constructors fail with whatever int() or a regex raises
        state.report(node, f"invalid value for YAML tag {node.tag!r}")
        return _REJECTED
