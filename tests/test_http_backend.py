"""The HTTP backend against a real Sources API server on 127.0.0.1: the contract, retries,
errors, masking, replace and the state store (SQLite and a real PostgreSQL server)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from sources_api import SourcesApi

from reconciler.backends import open_registry
from reconciler.backends.base import (
    ConnectOptions,
    LiveSchema,
    NewRecord,
    RecordDelete,
    RecordReplace,
    RecordUpdate,
    RunEntry,
    Writes,
)
from reconciler.backends.providers.sources_api import HttpRegistry
from reconciler.backends.providers.sources_api_client import RetryPolicy
from reconciler.errors import RegistryError, StaleRecordError
from reconciler.models import Unreachable

TOKEN = "tok-Secret-91f2a7"


class Sleeps(list[float]):
    """Records the waits instead of sleeping: retries are checked without slowing the suite."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def api() -> Iterator[SourcesApi]:
    with SourcesApi.running(token=TOKEN, read_token="read-only-token") as server:
        yield server


@pytest.fixture
def state_url(registry_url: str) -> str:
    """A fresh SQL database, SQLite or PostgreSQL (conftest's registry_url)."""
    return registry_url


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def connect(api: SourcesApi, tmp_path: Path, sleeps: Sleeps) -> Any:
    """Opens the HTTP registry on `api`; state in SQLite unless given."""

    def open_(
        *, writable: bool = True, token: str | None = TOKEN, state: str | None = None, **kw: Any
    ) -> HttpRegistry:
        options = ConnectOptions(
            state=state or f"sqlite:///{tmp_path / 'state.db'}",
            http_timeout=kw.pop("timeout", 5.0),
        )
        retry = RetryPolicy(sleep=sleeps, **kw.pop("retry", {}))
        return HttpRegistry(
            api.url, writable=writable, token=token, options=options, retry=retry, **kw
        )

    return open_


def new(name: str, **over: Any) -> NewRecord:
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "name": name,
        "source_type": "csv",
        "connection": {"file_path": f"/data/{name}.csv"},
        "description": "",
        "tags": ["a"],
        "managed_by": "reconciler",
        "last_applied": {"name": name, "connection": {"file_path": f"/data/{name}.csv"}},
    }
    fields.update(over)
    return NewRecord(**fields)


def run() -> RunEntry:
    return RunEntry(
        id=str(uuid.uuid4()), owner="reconciler", actor="test", started_at=datetime.now(UTC)
    )


# -- the backend contract ------------------------------------------------------------------


def test_create_replace_delete_round_trip_keeps_state(
    api: SourcesApi, connect: Any, state_url: str
) -> None:
    registry = connect(state=state_url)
    assert registry.init() >= 3
    a, b = new("alpha", description="first"), new("beta")
    registry.apply(Writes(creates=[a, b]), run())
    records = {r.name: r for r in registry.list_records()}
    alpha = records["alpha"]
    assert alpha.id == api.by_name("alpha")["id"]  # the server gives the id
    assert (alpha.managed_by, alpha.version, alpha.description) == ("reconciler", 1, "first")
    assert alpha.last_applied == a.last_applied and alpha.registered_by == "tdbk_tok-Se"
    assert alpha.registered_at is not None and alpha.status == "active"

    replacement = new("alpha", description="second")
    registry.apply(
        Writes(
            replaces=[RecordReplace(replacement, alpha.id, 1, "reconciler")],
            deletes=[RecordDelete(records["beta"].id, "beta", 1, "reconciler")],
        ),
        run(),
    )
    (only,) = registry.list_records()
    assert only.id != alpha.id and only.description == "second" and only.managed_by == "reconciler"
    assert registry.known("reconciler") == {"alpha": only.id}
    assert [r.outcome for r in registry.list_runs()] == ["success", "success"]
    registry.close()


def test_records_registered_by_hand_are_unowned(api: SourcesApi, connect: Any) -> None:
    api.add("manual", description="by hand")
    registry = connect()
    registry.init()
    (record,) = registry.list_records()
    assert (record.name, record.managed_by, record.last_applied) == ("manual", None, None)
    assert record.connection == {"file_path": "/data/manual.csv"}
    registry.close()


def test_read_only_open_creates_no_state(api: SourcesApi, connect: Any, tmp_path: Path) -> None:
    api.add("manual")
    registry = connect(writable=False)
    assert [r.name for r in registry.list_records()] == ["manual"]
    assert registry.fingerprint_key() is None and registry.known("reconciler") == {}
    with pytest.raises(RegistryError, match="read-only"):
        registry.apply(Writes(creates=[new("x")]), run())
    registry.close()
    assert not (tmp_path / "state.db").exists() and api.find("x") is None


def test_names_are_unique_case_insensitively(api: SourcesApi, connect: Any) -> None:
    api.add("Orders")
    registry = connect()
    with pytest.raises(RegistryError) as caught:
        registry.apply(Writes(creates=[new("orders")]), run())
    assert str(caught.value) == (
        f"registering source 'orders': HTTP 409 from {api.url}: "
        "A source named 'orders' already exists"
    )
    registry.close()


def test_invalid_bodies_are_one_line_with_the_server_detail(api: SourcesApi, connect: Any) -> None:
    registry = connect()
    with pytest.raises(RegistryError, match=r"HTTP 400 .*: Invalid source_type 'mysql'"):
        registry.apply(Writes(creates=[new("x", source_type="mysql")]), run())
    with pytest.raises(RegistryError) as caught:
        registry.apply(Writes(creates=[new("y", description="d" * 501)]), run())
    assert str(caught.value).endswith(
        "HTTP 422 from " + api.url + ": description: String should have at most 500 characters"
    )
    registry.close()


def test_listing_fetches_full_records_in_parallel_within_the_bound(
    api: SourcesApi, connect: Any
) -> None:
    for i in range(24):
        api.add(f"s{i:02d}")
    api.fail(method="GET", path="/v1/sources/", delay=0.05, times=24)  # make overlap certain
    registry = connect(concurrency=6)
    records = registry.list_records()
    assert len(records) == 24 and all(r.connection for r in records)
    assert 1 < api.max_in_flight <= 6
    assert api.requests.count(("GET", "/v1/sources")) == 1
    registry.close()


def test_a_record_deleted_between_list_and_get_is_left_out(api: SourcesApi, connect: Any) -> None:
    gone = api.add("gone")
    api.add("kept")
    api.fail(method="GET", path=f"/v1/sources/{gone['id']}", status=404, detail="Source not found")
    assert [r.name for r in connect().list_records()] == ["kept"]


# -- masked secrets --------------------------------------------------------------------------


def test_masked_values_are_unknown_or_what_was_last_applied(api: SourcesApi, connect: Any) -> None:
    api.mask_secrets = True
    registry = connect()
    registry.init()
    applied = {"password": "${env:PW}", "host": "db", "user": "u"}
    registry.apply(
        Writes(
            creates=[
                new(
                    "pg",
                    source_type="postgres",
                    connection={"password": "s3cret", "host": "db", "user": "u"},
                    last_applied={"name": "pg", "connection": applied},
                )
            ]
        ),
        run(),
    )
    assert api.by_name("pg")["connection"]["password"] == "s3cret"  # stored, shown masked
    (record,) = registry.list_records()
    assert record.connection == {"password": None, "host": "db", "user": "u"}
    api.add("theirs", "postgres", connection={"password": "x", "host": "h"})
    theirs = next(r for r in registry.list_records() if r.name == "theirs")
    assert theirs.connection == {"password": None, "host": "h"}
    registry.close()


# -- retries and errors ----------------------------------------------------------------------


def test_429_is_retried_after_the_servers_retry_after(
    api: SourcesApi, connect: Any, sleeps: Sleeps
) -> None:
    api.add("a")
    api.fail(path="/v1/sources", status=429, headers={"Retry-After": "2"}, times=2)
    assert [r.name for r in connect().list_records()] == ["a"]
    assert len(sleeps) == 2 and all(2.0 <= s <= 2.2 for s in sleeps)


def test_429_with_an_http_date_or_a_rate_limit_reset(
    api: SourcesApi, connect: Any, sleeps: Sleeps
) -> None:
    soon = datetime.fromtimestamp(datetime.now(UTC).timestamp() + 30, UTC)
    api.fail(method="GET", status=429, headers={"Retry-After": format_datetime(soon, usegmt=True)})
    api.fail(method="GET", status=429, headers={"X-RateLimit-Reset": "3"})
    connect().list_records()
    assert 25 <= sleeps[0] <= 33 and 3.0 <= sleeps[1] <= 3.3


def test_a_retry_after_beyond_the_bound_fails_at_once(
    api: SourcesApi, connect: Any, sleeps: Sleeps
) -> None:
    api.fail(status=429, headers={"Retry-After": "3600"}, detail="slow down")
    with pytest.raises(RegistryError) as caught:
        connect().list_records()
    assert str(caught.value) == (
        f"listing sources: HTTP 429 from {api.url}: slow down (the registry asks to wait "
        "3600 s, more than the 60 s this run waits)"
    )
    assert sleeps == []


def test_gateway_errors_back_off_exponentially_then_give_up(
    api: SourcesApi, connect: Any, sleeps: Sleeps
) -> None:
    api.fail(path="/v1/sources", status=503, times=2)
    api.fail(path="/v1/sources", status=502)
    assert connect(retry={"attempts": 4, "base_delay": 1.0}).list_records() == []
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0 and 2.0 <= sleeps[2] <= 4.0

    api.fail(path="/v1/sources", status=504, times=10)
    with pytest.raises(RegistryError) as caught:
        connect(retry={"attempts": 3}).list_records()
    assert str(caught.value) == (
        f"listing sources: HTTP 504 from {api.url} after 3 attempts: injected failure"
    )


def test_a_registration_is_retried_only_when_it_certainly_did_not_land(
    api: SourcesApi, connect: Any
) -> None:
    registry = connect()
    api.fail(method="POST", status=503)
    registry.apply(Writes(creates=[new("a")]), run())  # 503: refused, retried, registered
    api.fail(method="POST", status=502)  # a gateway: it may have reached the service
    with pytest.raises(RegistryError, match=r"registering source 'b': HTTP 502 from .*injected"):
        registry.apply(Writes(creates=[new("b")]), run())
    api.fail(method="POST", drop=True)
    with pytest.raises(RegistryError) as caught:
        registry.apply(Writes(creates=[new("c")]), run())
    assert str(caught.value).startswith(
        "registering source 'c': the connection was dropped; it may or may not have been registered"
    )
    assert [m for m, _ in api.requests].count("POST") == 4


def test_dropped_and_slow_reads_are_retried_then_reported(api: SourcesApi, connect: Any) -> None:
    api.add("a")
    api.fail(method="GET", drop=True)
    api.fail(method="GET", delay=1.0)  # past the 0.3 s timeout
    assert [r.name for r in connect(timeout=0.3).list_records()] == ["a"]
    api.fail(method="GET", path="/v1/sources", delay=1.0, times=10)
    with pytest.raises(RegistryError) as caught:
        connect(timeout=0.3, retry={"attempts": 2}).list_records()
    assert str(caught.value) == (
        f"listing sources: no answer within 0.3 s (--http-timeout) ({api.url} after 2 "
        "attempts: ReadTimeout)"
    )


def test_unreachable_registry_is_one_clear_line(tmp_path: Path, sleeps: Sleeps) -> None:
    with SourcesApi.running() as gone:
        url = gone.url
    registry = HttpRegistry(
        url,
        writable=False,
        token=TOKEN,
        options=ConnectOptions(state=f"sqlite:///{tmp_path / 's.db'}"),
        retry=RetryPolicy(sleep=sleeps, attempts=2),
    )
    with pytest.raises(RegistryError) as caught:
        registry.list_records()
    assert str(caught.value) == (
        f"listing sources: cannot connect ({url} after 2 attempts: ConnectError)"
    )


def test_auth_failures_say_what_to_do_and_never_show_the_token(
    api: SourcesApi, connect: Any
) -> None:
    with pytest.raises(RegistryError) as caught:
        connect(token="wrong-token-Secret").list_records()
    assert str(caught.value) == (
        f"listing sources: HTTP 401 from {api.url}: the registry rejected the token in "
        "RECONCILER_TOKEN"
    )
    with pytest.raises(RegistryError, match="RECONCILER_TOKEN is not set"):
        connect(token=None).list_records()
    with pytest.raises(RegistryError) as caught:
        connect(token="read-only-token").apply(Writes(creates=[new("a")]), run())
    assert str(caught.value) == (
        f"registering source 'a': HTTP 403 from {api.url}: the token in RECONCILER_TOKEN is "
        "not allowed to do this (This API key may not modify sources)"
    )
    api.fail(status=400, detail=f"bad header: Bearer {TOKEN}")
    with pytest.raises(RegistryError) as caught:
        connect().list_records()
    assert TOKEN not in str(caught.value) and "Bearer ***" in str(caught.value)


# -- apply: partial failures are reported and remembered -----------------------------------


def test_a_failure_mid_apply_keeps_the_state_of_what_was_done(
    api: SourcesApi, connect: Any
) -> None:
    registry = connect()
    registry.init()
    api.fail(method="POST", status=500, skip=1)
    with pytest.raises(RegistryError) as caught, registry.locked():
        registry.apply(Writes(creates=[new("a"), new("b"), new("c")]), run())
    assert str(caught.value) == (
        f"registering source 'b': HTTP 500 from {api.url}: injected failure (applied before "
        "the failure: 0 updated, 1 created, 0 replaced, 0 deleted)"
    )
    records = {r.name: r.managed_by for r in registry.list_records()}
    assert records == {"a": "reconciler"}  # committed although the apply failed
    registry.close()


def test_register_failing_after_the_delete_names_the_missing_record(
    api: SourcesApi, connect: Any
) -> None:
    registry = connect()
    registry.init()
    registry.apply(Writes(creates=[new("orders")]), run())
    (old,) = registry.list_records()
    api.fail(method="POST", status=500, detail="database is locked")
    with pytest.raises(RegistryError) as caught:
        registry.apply(
            Writes(replaces=[RecordReplace(new("orders"), old.id, 1, "reconciler")]), run()
        )
    assert str(caught.value) == (
        f"replacing source 'orders' failed half-way: its old record {old.id} was deleted, but "
        f"registering source 'orders': HTTP 500 from {api.url}: database is locked. 'orders' "
        "is now missing from the registry; run reconcile again to register it"
    )
    assert registry.list_records() == [] and registry.known("reconciler") == {}
    registry.close()


def test_deleting_a_record_someone_else_deleted_is_stale(api: SourcesApi, connect: Any) -> None:
    registry = connect()
    registry.init()
    registry.apply(Writes(creates=[new("a")]), run())
    (record,) = registry.list_records()
    api.records.clear()
    with pytest.raises(StaleRecordError, match=f"record {record.id} is no longer in the registry"):
        registry.apply(Writes(deletes=[RecordDelete(record.id, "a", 1, "reconciler")]), run())
    assert registry.known("reconciler") == {"a": record.id}  # next plan: deleted outside git
    registry.close()


def test_a_delete_whose_first_attempt_landed_is_done(api: SourcesApi, connect: Any) -> None:
    registry = connect()
    registry.apply(Writes(creates=[new("a")]), run())
    (record,) = registry.list_records()
    api.fail(method="DELETE", delay=1.0)  # deleted, but the answer comes too late
    slow = connect(timeout=0.3)
    slow.apply(Writes(deletes=[RecordDelete(record.id, "a", 1, "reconciler")]), run())
    assert api.records == {} and slow.known("reconciler") == {}


def test_adopting_changes_only_the_state_and_refuses_real_updates(
    api: SourcesApi, connect: Any
) -> None:
    live = api.add("manual", tags=["x"])
    registry = connect()
    registry.init()
    adopted = new("manual", id=live["id"], tags=["x"])
    registry.apply(Writes(updates=[RecordUpdate(adopted, 1, None)]), run())
    (record,) = registry.list_records()
    assert record.managed_by == "reconciler" and record.id == live["id"]
    changed = new("manual", id=live["id"], tags=["y"])
    with pytest.raises(RegistryError, match="cannot update source 'manual' in place"):
        registry.apply(Writes(updates=[RecordUpdate(changed, 1, "reconciler")]), run())
    assert api.by_name("manual")["tags"] == ["x"]
    registry.close()


# -- state store ------------------------------------------------------------------------------


def test_one_state_store_keeps_registries_apart(tmp_path: Path, sleeps: Sleeps) -> None:
    state = ConnectOptions(state=f"sqlite:///{tmp_path / 'shared.db'}")
    with SourcesApi.running(token=TOKEN) as first, SourcesApi.running(token=TOKEN) as second:
        one = HttpRegistry(first.url, writable=True, token=TOKEN, options=state)
        two = HttpRegistry(second.url + "/v1/sources/", writable=True, token=TOKEN, options=state)
        one.init()
        one.apply(Writes(creates=[new("a")]), run())
        two.apply(Writes(creates=[new("b")]), run())
        second.add("a")
        assert {r.name: r.managed_by for r in two.list_records()} == {"b": "reconciler", "a": None}
        assert list(one.known("reconciler")) == ["a"] and list(two.known("reconciler")) == ["b"]
        assert len(one.list_runs()) == len(two.list_runs()) == 1
        assert two.display_url == second.url
        one.close()
        two.close()


def test_state_url_must_be_sql(api: SourcesApi) -> None:
    with pytest.raises(RegistryError) as caught:
        open_registry(api.url, writable=False, options=ConnectOptions(state=api.url))
    assert str(caught.value) == (
        f"invalid state store URL '{api.url}' (expected sqlite:///PATH or postgresql://...)"
    )


@pytest.mark.parametrize("url", ["http://", "https://:x@", "http://host:99999"])
def test_bad_http_urls_are_one_line(url: str) -> None:
    with pytest.raises(RegistryError, match=r"^invalid registry URL .* \(expected http"):
        open_registry(url, writable=False)


# -- schema ------------------------------------------------------------------------------------


def test_schema_endpoint(api: SourcesApi, connect: Any) -> None:
    orders = api.add("orders", "postgres", connection={"host": "h"})
    api.schemas["orders"] = [
        {"name": "id", "type": "integer"},
        {"name": "total", "type": "numeric"},
    ]
    registry = connect()
    schema = registry.schema(orders["id"], "orders")
    assert isinstance(schema, LiveSchema)
    assert schema.columns == (
        {"name": "id", "type": "integer"},
        {"name": "total", "type": "numeric"},
    )
    assert (schema.source_id, schema.source) == (orders["id"], "orders")
    assert schema.inspected_at is not None

    api.unreachable.add("orders")
    down = registry.schema(orders["id"], "orders")
    assert down == Unreachable(
        source="orders", reason="HTTP 503: Source is registered but its backend is unreachable"
    )
    assert api.requests.count(("GET", f"/v1/sources/{orders['id']}/schema")) == 2  # no retry
    with pytest.raises(RegistryError, match="schema of source 'nope': HTTP 404"):
        registry.schema("nope", "nope")
    registry.close()
