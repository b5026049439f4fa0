"""The SQL registries (SQLite, PostgreSQL) as cases of the one contract suite
(test_providers.py): the same scenarios over a registry that is its own state store.

Scenarios that exist only over HTTP (rate limits, timeouts, tokens, the state store's
lock) are skipped for them (`Case.api` is False).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import CUSTOMERS, EVENTS, ORDERS, init_registry, insert_raw, sql_exec, sql_rows
from provider_cases import Case


@dataclass(frozen=True)
class SqlStore:
    """A registry database, as the suite's `server`."""

    url: str

    def names(self) -> list[str]:
        with suppress(Exception):  # not created yet: empty
            return sorted(str(r[0]) for r in sql_rows(self.url, "SELECT name FROM sources"))
        return []

    def secret(self, name: str) -> Any:
        (row,) = sql_rows(self.url, f"SELECT connection FROM sources WHERE name = '{name}'")
        connection = row[0] if isinstance(row[0], dict) else json.loads(row[0])
        return connection["password"]


@contextmanager
def _sqlite(tmp_path: Path) -> Iterator[SqlStore]:
    yield SqlStore(f"sqlite:///{tmp_path / 'registry' / 'registry.db'}")


@contextmanager
def _postgres(url: str) -> Iterator[SqlStore]:
    yield SqlStore(url)


def _add_foreign(store: SqlStore, name: str) -> None:
    assert init_registry(store.url).exit_code == 0
    insert_raw(store.url, name)


def _drift(store: SqlStore, name: str) -> str:
    sql_exec(store.url, "UPDATE sources SET description = ? WHERE name = ?", ("Edited.", name))
    return "description"


def _case(name: str, fixture: str, start_on: Any) -> Case:
    return Case(
        name=name,
        token_env="",
        manifests={"shop/orders.yaml": ORDERS, "customers.yml": CUSTOMERS, "events.yaml": EVENTS},
        start=lambda: _postgres(""),  # unused: `start_on` gets the fixture's value
        url=lambda s: s.url,
        names=lambda s: s.names(),
        secret=lambda s, name: s.secret(name),
        add_foreign=_add_foreign,
        drift=_drift,
        edit=("customers.yml", "Customer export from the CRM.", "Nightly."),
        edit_action="update",
        edited=lambda s: "Nightly." in repr(sql_rows(s.url, "SELECT description FROM sources")),
        rotate_action="update",
        marks_owner=True,
        type_prefix="postgres",
        foreign_types=False,
        api=False,
        fixture=fixture,
        start_on=start_on,
    )


SQL_CASES = [_case("sqlite", "tmp_path", _sqlite), _case("postgresql", "pg_url", _postgres)]
