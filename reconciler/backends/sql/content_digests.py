"""The SQL side of content-addressed planning: a light row per source, whole rows by id,
and digests stored for records found in sync.

A no-op plan must not decode every record's JSON columns: it reads names, owners, versions
and digests (planning/fast_plan.py), and whole records only for the rows it cannot vouch for.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar

from reconciler.backends.base import DigestRow, Restamp
from reconciler.backends.sql.migrations import migrations
from reconciler.backends.sql.rows import SOURCE_COLUMNS
from reconciler.models import Record

# Columns of the light read, in order.
# The id as text: PostgreSQL would send a UUID that the driver parses, for it to be printed
# again (a tenth of a second per 100,000 rows).
DIGEST_COLUMNS = (
    "CAST(id AS TEXT), name, source_type, managed_by, version, applied_version, "
    "source_digest, secret_refs"
)
_CHUNK = 500  # ids per `IN (...)`: well under SQLite's and PostgreSQL's parameter limits


class ContentDigestsMixin:
    """Mixed into SqlRegistry; uses its helpers."""

    types: ClassVar[dict[str, str]]

    def exists(self) -> bool:
        raise NotImplementedError

    def _schema_version(self) -> int:
        raise NotImplementedError

    def _initialised(self) -> bool:
        raise NotImplementedError

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _read_rows(self, sql: str) -> Iterator[tuple[Any, ...]]:
        raise NotImplementedError

    def _record(self, row: tuple[Any, ...]) -> Record:
        raise NotImplementedError

    def _transaction(self, timeout: float = ...) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        raise NotImplementedError

    def ready(self) -> bool:
        """The registry exists and its schema is current: using it creates or migrates nothing
        (and every row has the digest columns)."""
        return (
            self._present()
            and self.exists()
            and self._schema_version() == len(migrations(self.types))
        )

    def _present(self) -> bool:
        """Whether the store is there, found without creating it (a writable SQLite
        connection would create the file before any input was checked)."""
        return True

    def digest_rows(self) -> list[DigestRow]:
        """Every source, lightly: one query, no JSON decoded. A row whose columns do not
        have the expected types is given no digest (the plan then reads it whole)."""
        if not self._initialised():
            return []
        # Rows streamed, and the values many rows repeat (owner, type, a shared secret's
        # references) kept once: a million rows in a fraction of the memory.
        same: dict[str, str] = {}
        return [
            _light(row, same) for row in self._read_rows(f"SELECT {DIGEST_COLUMNS} FROM sources")
        ]

    def records_by_id(self, ids: Sequence[str]) -> Iterator[Record]:
        """The whole records with these ids."""
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            for row in self._read(
                f"SELECT {SOURCE_COLUMNS} FROM sources WHERE id IN ({marks})", chunk
            ):
                yield self._record(row)

    def restamp(self, stamps: Sequence[Restamp]) -> None:
        """Store digests for records in sync (after an upgrade, a new canonicalisation
        version...), so the next plan skips them. It moves their version, as any write: a
        row that moved since it was read is left as it is (it is planned in full next time)."""
        if not stamps:
            return
        with self._transaction() as cur:
            cur.executemany(
                self._sql(
                    "UPDATE sources SET source_digest = ?, secret_refs = ?, "
                    "version = version + 1, applied_version = version + 1 "
                    "WHERE id = ? AND version = ? AND managed_by = ?"
                ),
                [(s.digest, s.secret_refs, s.id, s.version, s.owner) for s in stamps],
            )


def _light(row: tuple[Any, ...], same: dict[str, str]) -> DigestRow:
    record_id, name, source_type, managed_by, version, applied, digest, refs = row
    if (
        type(name) is str
        and type(source_type) is str
        and (managed_by is None or type(managed_by) is str)
        and type(version) is int
        and (applied is None or type(applied) is int)
        and (digest is None or type(digest) is str)
        and (refs is None or type(refs) is str)
    ):
        return DigestRow(
            str(record_id),
            name,
            same.setdefault(source_type, source_type),
            managed_by and same.setdefault(managed_by, managed_by),
            version,
            applied,
            digest,
            refs and same.setdefault(refs, refs),
        )
    # Read whole, it is unreadable there; its owner still counts (the prune guard).
    owner = managed_by if isinstance(managed_by, str) else None
    return DigestRow(str(record_id), str(name), str(source_type), owner, -1, None, None, None)
