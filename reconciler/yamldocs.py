"""YAML documents with the line of every key, duplicate keys reported instead of overwritten.

pyyaml's own loader silently keeps the last of two equal keys; a manifest whose `password`
or `table` is written twice must be an error, reported at the line of the second key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import Problem

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Path_ = tuple[str | int, ...]


@dataclass
class Document:
    """One YAML document: its value and the 1-based line of each path inside it."""

    data: Any
    line: int
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int:
        """The line of the deepest known key on the path (a missing key reports its parent)."""
        for end in range(len(path), 0, -1):
            found = self.lines.get(tuple(path[:end]))
            if found is not None:
                return found
        return self.line


def parse_documents(text: str, display: str) -> tuple[list[Document], list[Problem]]:
    """Parse every `---` document of one file; never raises for bad input."""
    problems: list[Problem] = []
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        what = exc.problem or exc.context or "invalid YAML"
        return [], [Problem(display, line, f"YAML syntax error: {what}")]
    except yaml.YAMLError as exc:
        return [], [Problem(display, 1, f"YAML error: {exc}")]
    constructor = yaml.SafeLoader("")
    docs: list[Document] = []
    for node in nodes:
        if node is None:
            continue
        doc = Document(data=None, line=node.start_mark.line + 1)
        doc.data = _build(node, (), doc, constructor, problems, display)
        if doc.data is None:
            continue  # an empty document (e.g. a trailing `---`) is no source
        docs.append(doc)
    return docs, problems


def _build(
    node: yaml.Node,
    path: Path_,
    doc: Document,
    constructor: yaml.SafeLoader,
    problems: list[Problem],
    display: str,
) -> Any:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        constructor.flatten_mapping(node)  # `<<` merge keys behave as in plain pyyaml
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, constructor, problems, display)
            key_line = key_node.start_mark.line + 1
            if not isinstance(key, str | int | float | bool) and key is not None:
                problems.append(Problem(display, key_line, "mapping keys must be plain scalars"))
                continue
            if key in result:
                where = ".".join(str(p) for p in (*path, key))
                first = doc.lines.get((*path, str(key)), line)
                problems.append(
                    Problem(
                        display,
                        key_line,
                        f"duplicate key '{where}' (first defined on line {first})",
                    )
                )
                continue
            key = str(key) if not isinstance(key, str) else key
            doc.lines[(*path, key)] = key_line
            result[key] = _build(value_node, (*path, key), doc, constructor, problems, display)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            doc.lines[(*path, index)] = item.start_mark.line + 1
            items.append(_build(item, (*path, index), doc, constructor, problems, display))
        return items
    return _scalar(node, constructor, problems, display)


def _scalar(
    node: yaml.Node, constructor: yaml.SafeLoader, problems: list[Problem], display: str
) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        return node  # a non-scalar key: the caller reports it
    try:
        return constructor.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError:
        problems.append(
            Problem(display, node.start_mark.line + 1, f"unsupported YAML tag {node.tag!r}")
        )
        return None
