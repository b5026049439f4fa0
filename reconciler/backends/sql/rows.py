"""Rows another tool wrote: say which column does not fit, never what it holds.

A registry table is shared with UIs and scripts. A row whose JSON does not decode, or
decodes to the wrong shape (connection not an object, tags not a list, a NULL where text
belongs), becomes a placeholder record marked unreadable: planning lists it and leaves it
alone (never written, adopted or pruned) and the other records are planned as usual.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from reconciler.models import Record

# The columns of a whole record, in the order _JSON and _TEXT index them.
SOURCE_COLUMNS = (
    "id, name, source_type, connection, description, tags, registered_by, registered_at, "
    "status, managed_by, version, last_applied, fingerprints"
)
_TEXT = {1: "name", 2: "source_type", 4: "description", 6: "registered_by", 8: "status"}
# column index: (name, expected JSON type, may be NULL)
_JSON: dict[int, tuple[str, type[dict[str, Any]] | type[list[Any]], bool]] = {
    3: ("connection", dict, False),
    5: ("tags", list, False),
    11: ("last_applied", dict, True),
    12: ("fingerprints", dict, True),
}
_KIND: dict[type, str] = {dict: "an object", list: "an array"}


def tags(value: Any) -> tuple[Any, ...]:
    """`tags` must be a JSON array: tuple() would turn a string into its characters."""
    if not isinstance(value, list):
        raise TypeError("tags is not an array")
    return tuple(value)


def unreadable_record(row: tuple[Any, ...], unjson: Callable[[Any], Any]) -> Record:
    """A placeholder for a row that does not fit the model, with the reason."""
    record_id = str(row[0])
    name = row[1] if isinstance(row[1], str) and row[1] else f"(record {record_id})"
    version = row[10] if isinstance(row[10], int) and not isinstance(row[10], bool) else 0
    return Record(
        id=record_id,
        name=name,
        source_type=row[2] if isinstance(row[2], str) else "",
        connection={},
        managed_by=row[9] if isinstance(row[9], str) else None,
        version=version,
        unreadable=diagnose(row, unjson),
    )


def diagnose(row: tuple[Any, ...], unjson: Callable[[Any], Any]) -> str:
    """Which columns do not fit, by name only (a row's content may be a secret)."""
    problems = [
        f"{column} is {'NULL' if row[i] is None else 'not text'}"
        for i, column in _TEXT.items()
        if not isinstance(row[i], str)
    ]
    for i, (column, kind, nullable) in _JSON.items():
        if row[i] is None:
            if not nullable:
                problems.append(f"{column} is NULL")
            continue
        try:
            value = unjson(row[i])
        except Exception:
            problems.append(f"{column} is not valid JSON")
            continue
        if not isinstance(value, kind):
            problems.append(f"{column} is not {_KIND[kind]}")
        elif isinstance(value, list) and not all(isinstance(t, str) for t in value):
            problems.append(f"{column} holds something other than strings")
        elif (
            isinstance(value, dict)
            and column == "fingerprints"
            and not all(isinstance(v, str) for v in value.values())
        ):
            problems.append("fingerprints holds something other than strings")
    if row[9] is not None and not isinstance(row[9], str):
        problems.append("managed_by is not text")
    if not isinstance(row[10], int) or isinstance(row[10], bool):
        problems.append("version is not an integer")
    if not isinstance(row[7], datetime):
        try:
            datetime.fromisoformat(str(row[7]))
        except ValueError:
            problems.append("registered_at is not a time")
    return "; ".join(problems) or "it does not fit the record model"


def decode(row: tuple[Any, ...], unjson: Callable[[Any], Any]) -> Record:
    """A row of SOURCE_COLUMNS as a record (any misfit raises: see unreadable_record)."""
    return Record(
        id=str(row[0]),
        name=row[1],
        source_type=row[2],
        connection=unjson(row[3]),
        description=row[4],
        tags=tags(unjson(row[5])),
        registered_by=row[6],
        registered_at=as_time(row[7]),
        status=row[8],
        managed_by=row[9],
        version=row[10],
        last_applied=unjson(row[11]) if row[11] is not None else None,
        fingerprints=unjson(row[12]) if row[12] is not None else {},
    )


def as_time(value: Any) -> datetime:
    """A timestamp column: a datetime from PostgreSQL, ISO text from SQLite."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def loads(text: str | bytes) -> Any:
    """A JSON column. (A hand-rolled scanner saved 2 % of a full plan; since content-addressed
    planning decodes only the rows it cannot vouch for, json.loads it is.)"""
    return json.loads(text)
