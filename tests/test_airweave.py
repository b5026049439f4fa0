"""Airweave beyond the shared contract: the request it is sent, what PATCH carries, which
changes replace or are refused, how a connection that cannot authenticate is reported."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CANARY
from fake_airweave import Airweave
from provider_harness import Cli, Clock, new, open_provider, run

from reconciler.backends.base import Writes
from reconciler.backends.providers.airweave import AirweaveRegistry
from reconciler.errors import RegistryError

TOKEN = "aw-Secret-5e21"
GITHUB = """\
name: support-docs
source_type: airweave/github
description: The support team's docs.
connection:
  readable_collection_id: docs
  config: {repo_name: company/docs, branch: main}
  schedule: {cron: "0 */6 * * *"}
  sync_immediately: false
  credentials.personal_access_token: ${env:ORDERS_DB_PASSWORD}
tags: [support]
"""


@pytest.fixture
def api() -> Iterator[Airweave]:
    with Airweave.running(token=TOKEN) as server:
        yield server


@pytest.fixture
def cli(api: Airweave, tmp_path: Path) -> Cli:
    run_ = Cli("airweave+" + api.url, tmp_path, "AIRWEAVE_API_KEY", TOKEN)
    (run_.sources / "docs.yaml").write_text(GITHUB)
    return run_


def edit(cli: Cli, old: str, new: str) -> None:
    cli.edit("docs.yaml", old, new)


def test_the_create_request_maps_every_field(api: Airweave, cli: Any) -> None:
    assert cli().exit_code == 0
    ((method, body),) = api.bodies
    assert method == "POST"
    assert body == {
        "short_name": "github",
        "readable_collection_id": "docs",
        "name": "support-docs",
        "description": "The support team's docs.",
        "config": {"repo_name": "company/docs", "branch": "main"},
        "schedule": {"cron": "0 */6 * * *"},
        "sync_immediately": False,
        "authentication": {"credentials": {"personal_access_token": CANARY}},
    }
    assert cli("--dry-run").stdout.startswith("No changes.")


def test_a_patch_carries_credentials_only_when_they_changed(api: Airweave, cli: Any) -> None:
    assert cli().exit_code == 0
    edit(cli, "branch: main", "branch: develop")
    assert "~ update support-docs" in cli().stdout
    method, body = api.bodies[-1]
    assert method == "PATCH" and "authentication" not in body
    assert body["config"] == {"repo_name": "company/docs", "branch": "develop"}

    rotated = cli(ORDERS_DB_PASSWORD="rotated-" + CANARY)
    assert "~ connection.credentials.personal_access_token: (sensitive, changed)" in rotated.stdout
    method, body = api.bodies[-1]
    assert body["authentication"] == {"credentials": {"personal_access_token": "rotated-" + CANARY}}


def test_tags_are_state_only_and_write_nothing(api: Airweave, cli: Any) -> None:
    assert cli().exit_code == 0
    edit(cli, "tags: [support]", "tags: [support, docs]")
    applied = cli()
    assert "~ update support-docs" in applied.stdout and "~ tags:" in applied.stdout
    assert [m for m, _ in api.bodies] == ["POST"]
    assert cli("--dry-run").stdout.startswith("No changes.")


def test_moving_to_another_collection_replaces_the_connection(api: Airweave, cli: Any) -> None:
    assert cli().exit_code == 0
    old = api.by_name("support-docs")["id"]
    edit(cli, "readable_collection_id: docs", "readable_collection_id: support-tickets")
    edit(cli, "branch: main", "branch: develop")
    plan = cli("--dry-run")
    assert "-/+ replace support-docs (airweave/github)" in plan.stdout
    assert (
        '~ connection.readable_collection_id: "docs" → "support-tickets" (forces replacement)'
    ) in plan.stdout
    assert cli().exit_code == 0
    moved = api.by_name("support-docs")
    assert moved["id"] != old and moved["readable_collection_id"] == "support-tickets"
    assert cli("--dry-run").stdout.startswith("No changes.")


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ("name: support-docs", "name: sd", "Airweave names are 4 to 42 characters long"),
        (
            "description: The support team's docs.",
            "description: " + "d" * 256,
            "Airweave descriptions are at most 255 characters long",
        ),
        (
            "config: {repo_name: company/docs, branch: main}",
            "config: {repo_name: company/docs, branch: '${env:X}'}",
            "connection.config.branch holds a secret reference inside a nested value",
        ),
    ],
)
def test_what_airweave_would_reject_is_blocked_in_the_plan(
    api: Airweave, cli: Any, old: str, new: str, reason: str
) -> None:
    edit(cli, old, new)
    plan = cli("--dry-run")
    assert reason in plan.output, plan.output
    applied = cli()
    assert applied.exit_code == 1 and "Nothing was written." in applied.stderr
    assert api.connections == {}


def test_a_connection_that_needs_reauthentication_fails_the_run(api: Airweave, cli: Any) -> None:
    api.reauth.add("support-docs")
    failed = cli()
    assert failed.exit_code == 1
    assert failed.stderr == (
        "error: creating source connection 'support-docs': Airweave says it needs "
        "re-authentication: The token was revoked; it is registered and owned, fix its "
        "credentials and run again\n"
    )
    assert cli("--dry-run").stdout.startswith("No changes.")  # owned, nothing to redo


def test_an_unknown_collection_is_one_line(api: Airweave, cli: Any) -> None:
    edit(cli, "readable_collection_id: docs", "readable_collection_id: nope")
    failed = cli()
    assert failed.stderr == (
        "error: creating source connection 'support-docs': HTTP 404 from "
        f"airweave+{api.url}: Collection 'nope' not found\n"
    )


def test_every_page_and_every_connection_is_read(api: Airweave, tmp_path: Path) -> None:
    for i in range(205):
        api.add(f"conn{i:03d}")
    gone = api.add("gone-soon")
    api.fail(method="GET", path=f"/source-connections/{gone['id']}", status=404)
    # The first reads answer slowly, so a client that reads in parallel is seen to overlap
    # them whatever the machine's load (a serial client never has two in flight).
    api.fail(method="GET", path="/source-connections/", delay=0.3, times=4)
    registry = open_provider(
        AirweaveRegistry, "airweave+" + api.url, tmp_path, Clock(), token=TOKEN
    )
    records = registry.list_records()
    assert len(records) == 205  # the one deleted between list and read is left out
    lists = [p for m, p in api.requests if m == "GET" and p == "/source-connections"]
    # The server answers at most 3 of the 100 asked for: 69 pages from skip=0, 3, 6, ...
    # (the next skip counts what came back), then an empty one.
    assert len(lists) == 70
    assert 1 < api.max_in_flight <= 16


def test_credentials_are_never_read_back(api: Airweave, tmp_path: Path) -> None:
    registry = open_provider(
        AirweaveRegistry, "airweave+" + api.url, tmp_path, Clock(), token=TOKEN
    )
    registry.init()
    sent = {"readable_collection_id": "docs", "credentials.personal_access_token": "ghp"}
    applied = {**sent, "credentials.personal_access_token": "${env:PAT}"}
    registry.apply(
        Writes(creates=[new("docs-repo", "airweave/github", sent, last_connection=applied)]),
        run(),
    )
    (record,) = registry.list_records()
    assert record.connection == {
        "readable_collection_id": "docs",
        "credentials.personal_access_token": None,  # unknown: compared by fingerprint
    }
    with pytest.raises(RegistryError, match=r"HTTP 422 .*: name: String should have at least 4"):
        registry.apply(Writes(creates=[new("x", "airweave/github", sent)]), run())


def test_server_defaults_in_a_config_replaced_whole_are_never_a_diff(
    api: Airweave, cli: Any
) -> None:
    """Airweave fills in a source's config defaults (GitHub's branch) and replaces the whole
    config on PATCH: a default the manifest never set is neither a diff nor sent."""
    edit(
        cli, "config: {repo_name: company/docs, branch: main}", "config: {repo_name: company/docs}"
    )
    assert cli().exit_code == 0
    assert api.by_name("support-docs")["config"] == {"branch": "main", "repo_name": "company/docs"}
    assert cli("--dry-run").stdout.startswith("No changes.")
    edit(cli, "config: {repo_name: company/docs}", "config: {repo_name: company/wiki}")
    assert cli().exit_code == 0
    method, body = api.bodies[-1]
    assert method == "PATCH" and body["config"] == {"repo_name": "company/wiki"}
    assert api.by_name("support-docs")["config"] == {"branch": "main", "repo_name": "company/wiki"}
    assert cli("--dry-run").stdout.startswith("No changes.")
