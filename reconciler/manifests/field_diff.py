"""Where two documents differ, field by field: what planning's DeepDiff call used to say.

Planning compared documents with DeepDiff's tree view, each path cut at its first list
index (a list is one field). DeepDiff takes a tenth of a second to import, paid by every
plan with a change; for JSON-like documents (all that planning compares) the same paths
are found here directly. Anything else still goes to DeepDiff. tests/test_equivalence.py
checks the two against each other on generated documents.
"""

from __future__ import annotations

from typing import Any

Path = tuple[Any, ...]

# Two mappings sharing less than this share of their keys differ as a whole (a connection
# whose source_type changed is one field, not one per key), as in DeepDiff 8 and later.
_DIFF_DEEPER = 0.33
_SCALARS = frozenset({str, int, float, bool, type(None)})


def changed_paths(old: Any, new: Any) -> set[Path]:
    """The paths (cut at the first list index) where `new` differs from `old`."""
    paths: set[Path] = set()
    if _plain(old) and _plain(new):
        _changed(old, new, (), paths)
        return paths
    from deepdiff import DeepDiff  # not JSON-like (a tuple, a date): DeepDiff itself

    for levels in DeepDiff(old, new, view="tree").values():
        for level in levels:
            path = level.path(output_format="list")
            cut = next((i for i, p in enumerate(path) if isinstance(p, int)), len(path))
            paths.add(tuple(path[:cut]))
    return paths


def _changed(old: Any, new: Any, path: Path, out: set[Path]) -> None:
    """A key on one side only is a change; types count (1, 1.0 and True differ)."""
    if old is new:
        return
    if type(old) is dict and type(new) is dict:
        keys = old.keys() | new.keys()
        if len(keys) > 1 and len(old.keys() & new.keys()) / len(keys) < _DIFF_DEEPER:
            out.add(path)
            return
        for key in keys:
            if key in old and key in new:
                _changed(old[key], new[key], (*path, key), out)
            else:
                out.add((*path, key))
    elif not _same(old, new):
        out.add(path)


def _same(old: Any, new: Any) -> bool:
    """No difference for DeepDiff: types count, except inside a list of scalars, which DeepDiff
    compares by value (there [0] and [False] are the same)."""
    if old is new:
        return True
    if type(old) is not type(new):
        return False
    if type(old) is dict:
        return old.keys() == new.keys() and all(_same(v, new[k]) for k, v in old.items())
    if type(old) is list:
        if all(type(x) in _SCALARS for x in old) and all(type(x) in _SCALARS for x in new):
            return bool(old == new)
        return len(old) == len(new) and all(_same(a, b) for a, b in zip(old, new, strict=True))
    return bool(old == new)


def _plain(doc: Any) -> bool:
    """Only dicts with string keys, lists and JSON scalars: what _changed is exact for."""
    if type(doc) is dict:
        return all(type(k) is str and _plain(v) for k, v in doc.items())
    if type(doc) is list:
        return all(_plain(v) for v in doc)
    return type(doc) in _SCALARS
