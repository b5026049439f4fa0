"""Streamkap beyond the shared contract: the connector's asynchronous start, what the API
returns differently from what was sent, paging, stale writes, and its one-line errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_streamkap import Streamkap
from provider_harness import Clock, new, open_provider, run

from reconciler.backends import open_registry
from reconciler.backends.base import RecordUpdate, Writes
from reconciler.backends.providers.streamkap import StreamkapRegistry
from reconciler.errors import RegistryError, StaleRecordError

TOKEN = "sk-Secret-0b7d"
PG = {"database.hostname.user.defined": "db", "database.port.user.defined": 5432}


@pytest.fixture
def api() -> Iterator[Streamkap]:
    with Streamkap.running(token=TOKEN) as server:
        yield server


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def connect(api: Streamkap, tmp_path: Path, clock: Clock) -> Any:
    def open_(**kw: Any) -> StreamkapRegistry:
        registry = open_provider(
            StreamkapRegistry, "streamkap+" + api.url, tmp_path, clock, token=TOKEN, **kw
        )
        assert isinstance(registry, StreamkapRegistry)
        return registry

    return open_


def test_create_waits_for_the_connector_and_logs_it(
    api: Streamkap, connect: Any, clock: Clock
) -> None:
    api.start_after = 3
    registry = connect()
    registry.init()
    registry.apply(Writes(creates=[new("orders", "streamkap/postgresql", PG)]), run())
    source = api.by_name("orders")
    body = {k: source[k] for k in ("connector", "desired_state", "created_from", "config")}
    assert body == {
        "connector": "postgresql",
        "desired_state": "Active",
        "created_from": "api",
        "config": {**api.defaults, **PG},  # the server fills in its defaults
    }
    assert source["connector_status"] == "Active"
    assert clock.sleeps == [0.25, 0.5]  # polls 1 and 2 saw Pending; no sleep before the first
    (entry,) = registry.list_runs()
    assert entry.message == "orders: connector Active (3 check(s))"


def test_a_broken_connector_fails_the_apply_but_stays_owned(api: Streamkap, connect: Any) -> None:
    api.broken.add("orders")
    registry = connect()
    registry.init()
    with pytest.raises(RegistryError) as caught:
        registry.apply(Writes(creates=[new("orders", "streamkap/postgresql", PG)]), run())
    assert str(caught.value) == (
        "creating source 'orders': Streamkap reports its connector Broken (task statuses: "
        "{'0': {'state': 'FAILED', 'trace': 'auth failed'}}); it is registered and owned, fix "
        "its config and run again"
    )
    (record,) = registry.list_records()
    assert record.managed_by == "reconciler" and record.status == "Broken"


def test_a_connector_that_never_starts_times_out_with_what_was_seen(
    api: Streamkap, connect: Any, clock: Clock
) -> None:
    api.start_after = 10_000
    registry = connect(timeout=5.0)
    registry.init()
    with pytest.raises(RegistryError) as caught:
        registry.apply(Writes(creates=[new("orders", "streamkap/postgresql", PG)]), run())
    assert str(caught.value) == (
        "creating source 'orders': still connector Pending after 5 s "
        "(RECONCILER_OPERATION_TIMEOUT); it may finish on its own, the next run shows where it "
        "stands"
    )
    assert sum(clock.sleeps) == 5.0
    assert [r.managed_by for r in registry.list_records()] == ["reconciler"]


def test_what_the_api_adds_masks_or_stringifies_is_never_a_diff(
    api: Streamkap, connect: Any
) -> None:
    api.defaults = {"snapshot.parallelism": 1}  # a property the server fills in
    api.mask = True  # secrets come back as "********"
    registry = connect()
    registry.init()
    sent = {**PG, "database.password": "s3cret"}
    applied = {**PG, "database.password": "${env:PW}"}
    registry.apply(
        Writes(creates=[new("orders", "streamkap/postgresql", sent, last_connection=applied)]),
        run(),
    )
    api.by_name("orders")["config"]["database.port.user.defined"] = "5432"  # as a string
    (record,) = registry.list_records()
    assert record.connection == {**PG, "database.password": None}  # unknown: by fingerprint
    assert record.last_applied is not None


def test_an_unowned_source_shows_what_the_api_shows(api: Streamkap, connect: Any) -> None:
    api.mask = True
    api.add("legacy", **{"database.hostname": "h", "database.password": "pw"})
    (record,) = connect().list_records()
    assert (record.name, record.source_type, record.managed_by) == (
        "legacy",
        "streamkap/postgresql",
        None,
    )
    # What the API shows, server defaults included; a masked secret is left out.
    assert record.connection == {**api.defaults, "database.hostname": "h"}


def test_every_page_is_read(api: Streamkap, connect: Any) -> None:
    for i in range(205):
        api.add(f"s{i:03d}")
    records = connect().list_records()
    assert len(records) == 205
    # The server caps page_size at 7: 30 pages, the last with has_next false, no extra call.
    assert api.count("GET", "/sources") == 30


def test_a_source_changed_since_it_was_read_is_not_overwritten(
    api: Streamkap, connect: Any
) -> None:
    registry = connect()
    registry.init()
    registry.apply(Writes(creates=[new("orders", "streamkap/postgresql", PG)]), run())
    (record,) = registry.list_records()
    api.by_name("orders")["config"]["database.hostname.user.defined"] = "moved"
    update = RecordUpdate(
        new("orders", "streamkap/postgresql", PG, id=record.id), record.version, "reconciler"
    )
    with pytest.raises(StaleRecordError, match=r"changed in the registry since it was read"):
        registry.apply(Writes(updates=[update]), run())
    assert api.by_name("orders")["config"]["database.hostname.user.defined"] == "moved"


def test_validation_errors_are_one_line(api: Streamkap, connect: Any) -> None:
    registry = connect()
    with pytest.raises(RegistryError) as caught:
        registry.apply(Writes(creates=[new("x", "streamkap/oracle", PG)]), run())
    assert str(caught.value) == (
        f"creating source 'x': HTTP 400 from streamkap+{api.url}: Unknown connector 'oracle'"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("streamkap+ftp://h", "URL 'streamkap+ftp://h' (expected streamkap+https://HOST"),
        ("streamkap+https://h?x=1", "unknown parameter x (allowed: none)"),
        ("streamkap://h", "unsupported registry URL 'streamkap://h' (expected one of: "),
    ],
)
def test_bad_urls_are_one_line(url: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(RegistryError) as caught:
        open_registry(url, writable=False)
    assert message in str(caught.value)


def test_a_source_gone_answers_an_empty_envelope_and_is_not_overwritten(
    api: Streamkap, connect: Any
) -> None:
    """GET /sources/{id} of a deleted source answers 200 with an empty `result` (as the
    Streamkap Terraform provider reads it), which means gone, not an unreadable answer."""
    registry = connect()
    registry.init()
    registry.apply(Writes(creates=[new("orders", "streamkap/postgresql", PG)]), run())
    (record,) = registry.list_records()
    del api.sources[record.id]
    update = RecordUpdate(
        new("orders", "streamkap/postgresql", PG, id=record.id), record.version, "reconciler"
    )
    with pytest.raises(StaleRecordError, match=r"is no longer in the registry"):
        registry.apply(Writes(updates=[update]), run())
    assert api.count("PUT", f"/sources/{record.id}") == 0
