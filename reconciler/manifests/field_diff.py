"""Where two documents differ, field by field: DeepDiff's tree view, a list being one field.

DeepDiff takes a tenth of a second to import, so it is imported here, on the first pair of
documents that differ: a plan with nothing to change never pays for it.
"""

from __future__ import annotations

from typing import Any

Path = tuple[Any, ...]


def changed_paths(old: Any, new: Any) -> set[Path]:
    """The paths where `new` differs from `old`, each cut at its first list index."""
    from deepdiff import DeepDiff

    paths: set[Path] = set()
    for levels in DeepDiff(old, new, view="tree").values():
        for level in levels:
            path = level.path(output_format="list")
            cut = next((i for i, p in enumerate(path) if isinstance(p, int)), len(path))
            paths.add(tuple(path[:cut]))
    return paths
