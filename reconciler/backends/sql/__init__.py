"""SQL registries: shared tables and migrations, SQLite, PostgreSQL, snapshots.

`open_sql` is the typed way in for code that needs a SQL registry as such (the state store
of API registries): it never goes through the URL-scheme registry of every backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.backends.base import ConnectOptions

if TYPE_CHECKING:  # each dialect's driver is imported only when a URL names it
    from reconciler.backends.sql.shared import SqlRegistry

SQL_SCHEMES = ("sqlite", "postgresql", "postgres")


def open_sql(url: str, *, writable: bool, options: ConnectOptions) -> SqlRegistry:
    """The SQL registry at `url` (a scheme of SQL_SCHEMES; the caller checked it)."""
    if url.split(":", 1)[0].lower() == "sqlite":
        from reconciler.backends.sql.sqlite import open_sqlite

        return open_sqlite(url, writable=writable, options=options)
    from reconciler.backends.sql.postgres import open_postgres

    return open_postgres(url, writable=writable, options=options)
