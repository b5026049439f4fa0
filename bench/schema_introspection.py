"""Benchmark: schema introspection through `reconcile schema`'s own path (schemacheck.observe).

    python bench/schema_introspection.py [--tables 1000] [--databases 10] [--per-db 10]

Scenario 1: N tables in one database, one source each (one connection, one query).
Scenario 2: D databases with T tables each (D queries, in parallel).
Prints wall seconds and the queries made. PostgreSQL comes from RECONCILER_BENCH_PG (a
role that may create databases), else a throwaway pgserver instance.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from reconciler.models import Manifest
from reconciler.tableschema.check import SchemaOptions, observe
from reconciler.tableschema.introspection import IntrospectionStats


@contextmanager
def server() -> Iterator[str]:
    url = os.environ.get("RECONCILER_BENCH_PG")
    if url:
        yield url
        return
    import pgserver

    data = tempfile.mkdtemp(prefix="reconciler-bench-pg-")
    pg = pgserver.get_server(data, cleanup_mode="stop")
    try:
        yield pg.get_uri()
    finally:
        pg.cleanup()
        shutil.rmtree(data, ignore_errors=True)


@contextmanager
def database(admin_url: str, tables: int) -> Iterator[str]:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(admin_url, dbname=name)
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(tables):
            conn.execute(
                f"CREATE TABLE t{i} (id bigint NOT NULL, customer_id integer, "
                "total numeric(12,2), currency char(3), note text, "
                "created_at timestamptz NOT NULL, paid boolean, qty smallint)"
            )
    try:
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manifests(url: str, tables: int, prefix: str) -> list[Manifest]:
    parts: dict[str, Any] = conninfo_to_dict(url)
    connection = {
        "host": parts.get("host") or "localhost",
        "port": int(parts.get("port") or 5432),
        "dbname": parts["dbname"],
        "user": parts.get("user") or "postgres",
    }
    return [
        Manifest(
            name=f"{prefix}_{i}",
            source_type="postgres",
            connection={**connection, "table": f"t{i}"},
        )
        for i in range(tables)
    ]


def measure(label: str, sources: list[Manifest]) -> None:
    stats = IntrospectionStats()
    started = time.perf_counter()
    outcomes = observe(sources, SchemaOptions(record=False), stats)
    seconds = time.perf_counter() - started
    observed = sum(1 for o in outcomes.values() if type(o).__name__ == "ObservedTable")
    print(
        f"{label}: {seconds:.3f} s, {observed}/{len(sources)} tables read, "
        f"{stats.databases} database(s), {stats.queries} quer{'y' if stats.queries == 1 else 'ies'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--databases", type=int, default=10)
    parser.add_argument("--per-db", type=int, default=10)
    args = parser.parse_args()
    with server() as admin:
        with database(admin, args.tables) as url:
            measure(f"{args.tables} tables in one database", manifests(url, args.tables, "one"))
        with ExitStack() as stack:
            urls = [
                stack.enter_context(database(admin, args.per_db)) for _ in range(args.databases)
            ]
            sources = [
                m for d, url in enumerate(urls) for m in manifests(url, args.per_db, f"db{d}")
            ]
            measure(f"{len(sources)} sources across {len(urls)} databases", sources)


if __name__ == "__main__":
    main()
