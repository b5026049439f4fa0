"""Invariants for any manifest set: apply then plan is empty; applying twice equals once."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.backends import open_registry
from reconciler.manifests.documents import desired_document
from reconciler.models import Manifest
from reconciler.planning.plan import PruneGuard, plan
from reconciler.secret_refs import resolve_all
from reconciler.workflow.writes import apply_plan

OWNER = "reconciler"
text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20)
names = st.text("abcdefghijklmnopqrstuvwxyzABC_-0123456789", min_size=1, max_size=12)
tags = st.lists(st.sampled_from(["a", "b", "pii", "sales", "x y"]), max_size=4)
postgres = st.fixed_dictionaries(
    {"host": text.filter(bool), "dbname": names, "user": names, "table": names},
    optional={
        "port": st.one_of(st.integers(1, 65535), st.integers(1, 65535).map(str)),
        "schema": names,
        "password": st.sampled_from(["${env:PW}", "${env:OTHER_PW}"]),
    },
)
csv = st.fixed_dictionaries({"file_path": text.filter(bool)})


@st.composite
def manifest_sets(draw: st.DrawFn) -> list[Manifest]:
    chosen = draw(st.lists(names, max_size=8, unique_by=str.casefold))
    out = []
    for name in chosen:
        kind = draw(st.sampled_from(["postgres", "csv"]))
        body: dict[str, Any] = {
            "name": name,
            "source_type": kind,
            "connection": draw(postgres if kind == "postgres" else csv),
            "description": draw(text),
            "tags": draw(tags),
            "lifecycle": {"prevent_destroy": False},
        }
        if draw(st.booleans()):
            body["columns"] = [{"name": "id", "type": draw(st.sampled_from(["int", "text"]))}]
        out.append(Manifest(**body, file="sources.d/generated.yaml", line=1))
    return out


ENV = {"PW": "secret-one", "OTHER_PW": "secret-two"}


def converge(url: str, manifests: list[Manifest]) -> None:
    registry = open_registry(url, writable=True)
    try:
        registry.init()
        secrets = resolve_all((desired_document(m) for m in manifests), strict=True, env=ENV)
        records = registry.list_records()
        planned = plan(manifests, records, owner=OWNER, prune=True, guard=PruneGuard(force=True))
        apply_plan(planned, registry, secrets, records=records)
    finally:
        registry.close()


def state(url: str) -> list[tuple[Any, ...]]:
    registry = open_registry(url, writable=False)
    records = registry.list_records()
    registry.close()
    return [(r.id, r.name, r.version, r.connection, r.description, r.tags) for r in records]


def check_invariants(url: str, first: list[Manifest], second: list[Manifest]) -> None:
    for manifests in (first, second):
        converge(url, manifests)
        registry = open_registry(url, writable=False)
        again = plan(manifests, registry.list_records(), owner=OWNER, prune=True)
        registry.close()
        assert not again.has_changes, [c for c in again.pending]
        assert again.count("noop") == len(manifests)
        once = state(url)
        converge(url, manifests)
        assert state(url) == once  # applying twice changes nothing, not even versions


@settings(max_examples=60, deadline=None)
@given(first=manifest_sets(), second=manifest_sets())
def test_apply_then_plan_is_empty_sqlite(first: list[Manifest], second: list[Manifest]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        check_invariants(f"sqlite:///{Path(tmp) / 'r.db'}", first, second)


@pytest.mark.usefixtures("pg_url")
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(first=manifest_sets(), second=manifest_sets())
def test_apply_then_plan_is_empty_postgres(
    pg_url: str, first: list[Manifest], second: list[Manifest]
) -> None:
    registry = open_registry(pg_url, writable=True)
    registry.init()
    registry.close()
    import psycopg

    with psycopg.connect(pg_url) as conn:
        conn.execute("DELETE FROM sources")
    check_invariants(pg_url, first, second)
