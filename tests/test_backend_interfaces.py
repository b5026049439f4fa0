"""The backend interfaces: every URL scheme opens a Registry, capabilities are asked for by type.

mypy checks each backend against the Protocols it declares (backends/base.py); these tests
check the same at run time, through the factories `open_registry` uses, and the accessors
that replaced probing attribute names.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import pytest

from reconciler import progress
from reconciler.backends import BACKENDS, Factory, open_registry
from reconciler.backends.base import (
    ConnectOptions,
    LiveSchemas,
    PlanReview,
    Registry,
    SnapshotStore,
    live_schemas,
    plan_review,
    shared_state,
    snapshot_store,
)
from reconciler.backends.providers.airbyte_agents import open_airbyte_agents
from reconciler.backends.providers.airweave import open_airweave
from reconciler.backends.providers.sources_api import open_http
from reconciler.backends.providers.splendor import open_splendor
from reconciler.backends.providers.streamkap import open_streamkap
from reconciler.backends.sql.migrations import SCHEMA_SNAPSHOTS_VERSION, migrations
from reconciler.backends.sql.postgres import open_postgres
from reconciler.backends.sql.sqlite import open_sqlite

PROVIDERS = {
    "streamkap+": "streamkap+http://127.0.0.1:9",
    "airweave+": "airweave+http://127.0.0.1:9",
    "airbyte-agents+": "airbyte-agents+http://127.0.0.1:9?workspace_name=w",
    "splendor+": "splendor+http://127.0.0.1:9?tenant=t",
    "http": "http://127.0.0.1:9",
    "https": "https://127.0.0.1:9",
}


def test_every_scheme_opens_a_registry_with_the_capabilities_it_declares(
    tmp_path: Path, pg_url: str
) -> None:
    options = ConnectOptions(state=f"sqlite:///{tmp_path}/state.db")
    urls = {
        **PROVIDERS,
        "sqlite": f"sqlite:///{tmp_path}/registry.db",
        "postgresql": pg_url,
        "postgres": pg_url.replace("postgresql://", "postgres://", 1),
    }
    assert set(urls) == set(BACKENDS)  # a new scheme gets a case here
    for scheme, url in urls.items():
        registry = open_registry(url, writable=False, options=options)
        try:
            assert isinstance(registry, Registry), scheme
            sql = scheme in ("sqlite", "postgresql", "postgres")
            sources_api = scheme in ("http", "https")
            # Snapshots: SQL registries, and the Sources API (in its state store); the
            # per-field review: every provider and the Sources API; live columns through the
            # registry's own API: the Sources API only.
            keeps_snapshots = sql or sources_api
            assert (snapshot_store(registry) is registry) == keeps_snapshots, scheme
            assert isinstance(registry, SnapshotStore) == keeps_snapshots, scheme
            reviews = not sql
            assert (plan_review(registry) is not None) == reviews, scheme
            assert isinstance(registry, PlanReview) == reviews, scheme
            assert (live_schemas(registry) is not None) == sources_api, scheme
            assert isinstance(registry, LiveSchemas) == sources_api, scheme
            # Ownership in a state store of our own: every registry reached over an API.
            assert (shared_state(registry) is not None) == (not sql), scheme
        finally:
            registry.close()


def test_every_opener_fits_factory() -> None:
    """BACKENDS imports each opener by name only when it is called; here mypy checks that
    every one fits `Factory` (a URL, writable and options in; a Registry out)."""
    openers: list[Factory] = [
        open_sqlite,
        open_postgres,
        open_http,
        open_streamkap,
        open_airweave,
        open_airbyte_agents,
        open_splendor,
    ]
    assert all(callable(opener) for opener in openers)


def test_the_snapshot_migration_version_names_the_table_s_current_shape() -> None:
    steps = migrations({"uuid": "", "json": "", "time": ""})
    creates = [
        i + 1
        for i, step in enumerate(steps)
        if any("CREATE TABLE schema_snapshots" in statement for statement in step)
    ]
    # The newest (re)creation gives the table its current shape: older ones lack columns.
    assert creates and max(creates) == SCHEMA_SNAPSHOTS_VERSION


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_the_bar_the_cli_gives_progress_and_log_lines_without_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = _Terminal()
    monkeypatch.setattr(progress, "_stream", lambda: stream)
    drawn: list[tuple[str, int, int]] = []

    class Bar:
        def __init__(self, label: str, total: int) -> None:
            self.label, self.total, self.done = label, total, 0

        def update(self, n: int) -> None:
            self.done += n

    @contextmanager
    def terminal(label: str, total: int, out: TextIO) -> Iterator[Any]:
        assert out is stream
        bar = Bar(label, total)
        yield bar
        drawn.append((bar.label, bar.total, bar.done))

    try:
        progress.configure(True, terminal=terminal)
        list(progress.track(range(3), "Working"))
        assert drawn == [("Working", 3, 3)]
        assert stream.getvalue() == ""
        progress.configure(True)  # no bar given (the library on its own): log lines
        list(progress.track(range(3), "Working"))
        assert "Working: 3/3 (100%)" in stream.getvalue()
        assert len(drawn) == 1
    finally:
        progress.configure(None)
