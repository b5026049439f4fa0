"""Many manifest files through the fast path, in batches.

Each batch is read, parsed and checked one step at a time (each step's code and data stay
in the CPU caches: a quarter faster than file by file). A forked helper process on a second
core was removed by issue 15: measured on this 2-core machine, shared with other work, it
gave no gain (README, Performance).
"""

from __future__ import annotations

from collections.abc import Iterator

from reconciler.interning import shared
from reconciler.manifests import fast_path as fastload
from reconciler.manifests.yaml_lines import Document

BATCH = 1000
Found = list[Document] | None


def scan(paths: list[str]) -> list[Found]:
    """The fast path's documents for each file, or None where the exact path must decide."""
    texts = [fastload.read_text(path) for path in paths]
    parsed = [fastload.parse(text) if text is not None else None for text in texts]
    return [
        docs if docs is not None and all(fastload.is_valid(d.data) for d in docs) else None
        for docs in parsed
    ]


def scan_all(paths: list[str]) -> Iterator[Found]:
    """scan() of every path, in order, batch by batch."""
    share = len(paths) >= SHARE_FROM
    for start in range(0, len(paths), BATCH):
        found = scan(paths[start : start + BATCH])
        if share:
            for docs in found:
                for doc in docs or ():
                    doc.data = shared(doc.data)
        yield from found


# From this many files, keys and short strings are shared between manifests (sys.intern):
# a manifest keeps its connection's keys and its tags, one copy each instead of one per file.
SHARE_FROM = 20_000
