"""The state store's apply lock, held across commits.

An apply against an API cannot be rolled back, so the state store records each remote
write the moment it is made (and the intent before a create): a run killed half-way leaves
state that says what it did. One long transaction would lose all of it, so the lock an
apply holds must outlive each commit:

- PostgreSQL: the session-level form of the advisory lock every writer takes. It conflicts
  with other sessions' transaction-level lock on the same key, while this session's own
  short transactions take it again at once; a killed run releases it with its connection.
- SQLite: an exclusive `flock` on a file beside the database (`STATE.db.apply-lock`),
  released by the kernel when the process dies. SQLite's own write lock still serialises
  each short transaction.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from reconciler.backends.sql.postgres import LOCK_KEY, PostgresRegistry
from reconciler.backends.sql.shared import SqlRegistry
from reconciler.backends.sql.sqlite import SqliteRegistry
from reconciler.errors import LockTimeout, RegistryError

_POLL_S = 0.1


@contextmanager
def apply_lock(store: SqlRegistry, timeout: float) -> Iterator[None]:
    """Hold `store`'s apply lock, waiting at most `timeout` seconds for it."""
    if not getattr(store, "writable", False):
        raise RegistryError(f"registry {store.display_url} was opened read-only")
    if isinstance(store, PostgresRegistry):
        with _postgres(store, timeout):
            yield
    elif isinstance(store, SqliteRegistry):
        with _sqlite(store, timeout):
            yield
    else:  # pragma: no cover - every state store is one of the two
        with store.locked(timeout):
            yield


@contextmanager
def _postgres(store: PostgresRegistry, timeout: float) -> Iterator[None]:
    conn = store._connection()
    started = time.monotonic()
    with conn.transaction(), conn.cursor() as cur:
        while True:
            cur.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
            row = cur.fetchone()
            if row is not None and row[0]:
                break
            waited = time.monotonic() - started
            if waited >= timeout:
                raise LockTimeout(store._busy_message(cur, timeout))
            time.sleep(min(_POLL_S, max(timeout - waited, 0.0)))
    try:
        yield
    finally:
        if not conn.closed:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


@contextmanager
def _sqlite(store: SqliteRegistry, timeout: float) -> Iterator[None]:
    path = store.path.with_name(store.path.name + ".apply-lock")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise RegistryError(f"cannot lock registry {store.display_url}: {exc}") from None
    try:
        started = time.monotonic()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                if waited >= timeout:
                    raise LockTimeout(
                        f"registry {store.display_url} is locked by another apply; gave up "
                        f"after {timeout:g} s (--lock-timeout). Nothing was written."
                    ) from None
                time.sleep(min(_POLL_S, max(timeout - waited, 0.0)))
        yield
    finally:
        os.close(fd)  # releases the lock
