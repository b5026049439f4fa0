"""Where two documents differ, field by field: DeepDiff's tree view, a list being one field.

DeepDiff takes a tenth of a second to import and about a millisecond per call, so only the
mappings that differ reach it: between two documents with the same fields (canonical
documents always have), a field that is the same (type and value, all the way down) is
skipped, and one that is not a mapping on both sides is one changed field by itself
(DeepDiff's paths are cut at the first list index, so a list or a scalar that differs is
always just its key). A plan that changes descriptions or tags never imports it.
"""

from __future__ import annotations

from typing import Any

Path = tuple[Any, ...]


def changed_paths(old: Any, new: Any) -> set[Path]:
    """The paths where `new` differs from `old`, each cut at its first list index."""
    if not (isinstance(old, dict) and isinstance(new, dict)) or old.keys() != new.keys():
        return _deep(old, new)  # (DeepDiff may then call the whole mapping one change)
    paths: set[Path] = set()
    nested_old: dict[Any, Any] = {}
    nested_new: dict[Any, Any] = {}
    for key, before in old.items():
        after = new[key]
        if _same(before, after):
            continue
        if isinstance(before, dict) and isinstance(after, dict):
            nested_old[key], nested_new[key] = before, after
        else:
            paths.add((key,))
    if nested_old:
        paths |= _deep(nested_old, nested_new)
    return paths


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same types throughout (DeepDiff tells 1 from 1.0 and 0 from False)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _deep(old: Any, new: Any) -> set[Path]:
    from deepdiff import DeepDiff

    paths: set[Path] = set()
    for levels in DeepDiff(old, new, view="tree").values():
        for level in levels:
            path = level.path(output_format="list")
            cut = next((i for i, p in enumerate(path) if isinstance(p, int)), len(path))
            paths.add(tuple(path[:cut]))
    return paths
