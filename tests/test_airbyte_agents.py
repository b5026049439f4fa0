"""Airbyte Agents beyond the shared contract: the create request, the workspace in the URL,
replace-only semantics, the asynchronous deletion job, `next` links and the error envelope."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_airbyte_agents import DEFINITIONS, AirbyteAgents
from provider_harness import Clock, new, open_provider, run

from reconciler.backends import open_registry
from reconciler.backends.base import RecordDelete, Writes
from reconciler.backends.providers.airbyte_agents import AirbyteAgentsRegistry
from reconciler.errors import RegistryError

TOKEN = "ab-Secret-4410"
GITHUB_ID = DEFINITIONS["github"][0]
LINEAR = {"credentials.api_key": "lin-key"}


@pytest.fixture
def api() -> Iterator[AirbyteAgents]:
    with AirbyteAgents.running(token=TOKEN) as server:
        yield server


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def connect(api: AirbyteAgents, tmp_path: Path, clock: Clock) -> Any:
    def open_(query: str = "?workspace_name=default", **kw: Any) -> AirbyteAgentsRegistry:
        url = f"airbyte-agents+{api.url}{query}"
        registry = open_provider(AirbyteAgentsRegistry, url, tmp_path, clock, token=TOKEN, **kw)
        assert isinstance(registry, AirbyteAgentsRegistry)
        registry.init()
        return registry

    return open_


def bodies(api: AirbyteAgents) -> list[dict[str, Any]]:
    return [
        {k: c[k] for k in ("name", "slug", "workspace", "credentials", "replication_config")}
        for c in api.connectors.values()
    ]


def test_the_type_is_a_slug_a_definition_id_or_a_pinned_template(
    api: AirbyteAgents, connect: Any
) -> None:
    registry = connect()
    pat = {
        "credentials.option_title": "PAT Credentials",
        "credentials.personal_access_token": "ghp",
        "replication_config": {"repositories": ["airbytehq/airbyte"]},
    }
    template = api.templates["linear"]["id"]
    creates = [
        new("by-slug", "airbyte-agents/linear", LINEAR),
        new("by-definition", f"airbyte-agents/{GITHUB_ID}", pat),
        new("by-template", "airbyte-agents/linear", {**LINEAR, "source_template_id": template}),
    ]
    registry.apply(Writes(creates=creates), run())
    assert sorted(bodies(api), key=lambda b: b["name"]) == [
        {
            "name": "by-definition",
            "slug": "github",
            "workspace": "default",
            "credentials": {"option_title": "PAT Credentials", "personal_access_token": "ghp"},
            "replication_config": {"repositories": ["airbytehq/airbyte"]},
        },
        {
            "name": "by-slug",
            "slug": "linear",
            "workspace": "default",
            "credentials": {"api_key": "lin-key"},
            "replication_config": {},
        },
        {
            "name": "by-template",
            "slug": "linear",
            "workspace": "default",
            "credentials": {"api_key": "lin-key"},
            "replication_config": {},
        },
    ]
    records = {r.name: r for r in registry.list_records()}
    assert records["by-slug"].source_type == "airbyte-agents/linear"  # as applied
    assert records["by-template"].connection == {
        "credentials.api_key": "lin-key",  # write-only: the literal last applied
        "source_template_id": template,
    }


def test_an_unowned_connector_is_typed_by_its_definition(api: AirbyteAgents, connect: Any) -> None:
    api.add("legacy", "linear")
    (record,) = connect().list_records()
    assert record.source_type == f"airbyte-agents/{DEFINITIONS['linear'][0]}"
    assert record.managed_by is None
    assert record.connection == {"source_template_id": api.templates["linear"]["id"]}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "exactly one workspace"),
        ("?workspace_name=a&workspace_id=b", "exactly one workspace"),
        (
            "?workspace=default",
            r"unknown parameter workspace \(allowed: workspace_id, workspace_name\)",
        ),
    ],
)
def test_the_url_names_exactly_one_workspace(query: str, message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        open_registry(f"airbyte-agents+https://api.airbyte.ai{query}", writable=False)


def test_a_workspace_by_id_and_an_unknown_one(api: AirbyteAgents, connect: Any) -> None:
    api.add("legacy")
    by_id = connect("?workspace_id=0b3a5f9e-0000-4000-8000-000000000001")
    assert [r.name for r in by_id.list_records()] == ["legacy"]
    with pytest.raises(RegistryError) as caught:
        connect("?workspace_name=nope").list_records()
    assert str(caught.value) == (
        f"listing connectors: HTTP 404 from airbyte-agents+{api.url}?workspace_name=nope: "
        "Workspace 'nope' not found (workspace_name)"
    )


def test_deletion_is_a_job_polled_until_the_connector_leaves_the_list(
    api: AirbyteAgents, connect: Any, clock: Clock
) -> None:
    registry = connect()
    registry.apply(Writes(creates=[new("old", "airbyte-agents/linear", LINEAR)]), run())
    (record,) = registry.list_records()
    api.delete_after = 2
    registry.apply(
        Writes(deletes=[RecordDelete(record.id, "old", record.version, "reconciler")]), run()
    )
    assert api.connectors == {} and registry.known("reconciler") == {}
    assert clock.sleeps == [0.25, 0.5]
    latest = registry.list_runs()[0]
    assert latest.message.startswith("old: deleted (deletion job ")
    assert latest.message.endswith(", 3 check(s))")


def test_a_deletion_that_never_ends_times_out_and_stays_owned(
    api: AirbyteAgents, connect: Any
) -> None:
    registry = connect(timeout=3.0)
    registry.apply(Writes(creates=[new("old", "airbyte-agents/linear", LINEAR)]), run())
    (record,) = registry.list_records()
    api.delete_after = 10_000
    with pytest.raises(RegistryError) as caught:
        registry.apply(
            Writes(deletes=[RecordDelete(record.id, "old", record.version, "reconciler")]), run()
        )
    message = str(caught.value)
    assert message.startswith("deleting connector 'old': still listed (deletion job ")
    assert message.endswith(
        " running) after 3 s (RECONCILER_OPERATION_TIMEOUT); it may finish on its own, the next "
        "run shows where it stands"
    )
    assert registry.known("reconciler") == {"old": record.id}  # the next run tries again


def test_the_error_envelope_is_one_line(api: AirbyteAgents, connect: Any) -> None:
    registry = connect()
    with pytest.raises(RegistryError) as caught:
        registry.apply(
            Writes(creates=[new("x", "airbyte-agents/linear", {"credentials.token": "t"})]), run()
        )
    assert str(caught.value) == (
        f"creating connector 'x': HTTP 400 from airbyte-agents+{api.url}?workspace_name=default:"
        " Credentials do not match any auth scheme. Provided keys: ['token']. Available schemes:"
        " api_key (credentials)"
    )
    pat = {"credentials.personal_access_token": "ghp"}
    with pytest.raises(
        RegistryError,
        match=r"HTTP 422 .*: required property 'repositories' not found \(replication_config\)$",
    ):
        registry.apply(Writes(creates=[new("y", "airbyte-agents/github", pat)]), run())
    assert api.connectors == {}


def test_next_links_are_followed(api: AirbyteAgents, connect: Any) -> None:
    for i in range(5):
        api.add(f"c{i}")
    api.page_size = 2
    assert sorted(r.name for r in connect().list_records()) == [f"c{i}" for i in range(5)]
    assert api.count("GET", "/api/v1/integrations/connectors") == 3
