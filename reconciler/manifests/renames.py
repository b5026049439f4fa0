"""`previous_names` checked across the sources directory: a rename must say one thing.

A previous name that is another source's current name, or that two sources claim, would let
two manifests reach for the same record; both are validation errors, located in the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from reconciler.errors import Problem
from reconciler.manifests.yaml_lines import Document


@dataclass(frozen=True)
class Claim:
    """A previous name, the source that claims it, and where it is written."""

    name: str
    source: str
    file: str
    line: int


def claims_in(doc: Document, display: str) -> list[Claim]:
    """The string previous names of a document, even when it has other problems."""
    data = doc.data if isinstance(doc.data, dict) else {}
    source, previous = data.get("name"), data.get("previous_names")
    if not isinstance(source, str) or not isinstance(previous, list):
        return []
    return [
        Claim(name, source, display, doc.line_of(("previous_names", index)))
        for index, name in enumerate(previous)
        if isinstance(name, str)
    ]


def clashes(current: Iterable[tuple[str, str, int]], claims: Iterable[Claim]) -> list[Problem]:
    """Problems for previous names that are current names elsewhere or claimed twice.

    `current` holds (name, file, line) of every source's current name.
    """
    names = {name.casefold(): (name, file, line) for name, file, line in current}
    first: dict[str, Claim] = {}
    problems: list[Problem] = []
    for claim in claims:
        key = claim.name.casefold()
        if key == claim.source.casefold():
            continue  # its own current name: nothing to rename
        if key in names:
            _, file, line = names[key]
            problems.append(
                Problem(
                    claim.file,
                    claim.line,
                    f"previous name '{claim.name}' is the current name of another source "
                    f"(defined at {file}:{line}); remove it from previous_names",
                )
            )
            continue
        earlier = first.setdefault(key, claim)
        if earlier is not claim and earlier.source.casefold() != claim.source.casefold():
            problems.append(
                Problem(
                    claim.file,
                    claim.line,
                    f"previous name '{claim.name}' is also claimed by source "
                    f"'{earlier.source}' (at {earlier.file}:{earlier.line}); a record can "
                    "be renamed to one source only",
                )
            )
    return problems
