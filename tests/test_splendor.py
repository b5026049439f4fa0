"""Splendor beyond the shared contract: the provision request, what the plan refuses (no
source to provision, another provider, deletion), asynchronous provisioning, the tenant."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CANARY
from fake_splendor import Splendor
from provider_harness import Cli, Clock, new, open_provider, run

from reconciler.backends import open_registry
from reconciler.backends.base import Writes
from reconciler.backends.providers.splendor import SplendorRegistry
from reconciler.errors import RegistryError

TOKEN = "sp-Secret-9c04"
STRIPE = """\
name: app-payments
source_type: splendor/stripe
description: Stripe charges.
connection:
  account_id: acct_1
  client_secret: ${env:ORDERS_DB_PASSWORD}
tags: [finance]
"""


@pytest.fixture
def api() -> Iterator[Splendor]:
    with Splendor.running(token=TOKEN, tenant="acme") as server:
        server.console("app-payments", "stripe")
        yield server


@pytest.fixture
def cli(api: Splendor, tmp_path: Path) -> Cli:
    run_ = Cli(f"splendor+{api.url}?tenant=acme", tmp_path, "SPLENDOR_TOKEN", TOKEN)
    (run_.sources / "payments.yaml").write_text(STRIPE)
    return run_


def edit(cli: Cli, old: str, new: str) -> None:
    cli.edit("payments.yaml", old, new)


def test_create_provisions_the_source_and_waits_until_ready(api: Splendor, cli: Any) -> None:
    api.ready_after = 2
    applied = cli()
    assert applied.exit_code == 0, applied.output
    ((source_id, tenant, body),) = api.provisions
    assert source_id == api.by_key("app-payments")["source"]["source_id"] and tenant == "acme"
    assert body == {"source_configuration": {"account_id": "acct_1", "client_secret": CANARY}}
    assert api.by_key("app-payments")["airbyte"]["connection_status"] == "active"
    assert cli("--dry-run").stdout.startswith("No changes.")


def test_a_configuration_change_provisions_again_and_tags_write_nothing(
    api: Splendor, cli: Any
) -> None:
    assert cli().exit_code == 0
    edit(cli, "tags: [finance]", "tags: [finance, stripe]")
    assert "~ update app-payments" in cli().stdout
    assert len(api.provisions) == 1  # state only
    edit(cli, "account_id: acct_1", "account_id: acct_2")
    plan = cli("--dry-run")
    assert '~ connection.account_id: "acct_1" → "acct_2"' in plan.stdout
    assert "replace" not in plan.stdout
    assert cli().exit_code == 0
    assert api.provisions[-1][2]["source_configuration"]["account_id"] == "acct_2"
    assert cli("--dry-run").stdout.startswith("No changes.")


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (
            "name: app-payments",
            "name: app-refunds",
            "app-refunds: no unprovisioned Splendor source with source_key 'app-refunds' in "
            "tenant 'acme' to provision; to create one, give connection.source.bucket, "
            "connection.source.dataset_id, connection.source.iam_role_arn",
        ),
        (
            "account_id: acct_1",
            "account_id: acct_1\n  nested: {region: '${env:X}'}",
            "connection.nested.region holds a secret reference inside a nested value",
        ),
    ],
)
def test_what_splendor_cannot_do_is_blocked_in_the_plan(
    api: Splendor, cli: Any, old: str, new: str, reason: str
) -> None:
    edit(cli, old, new)
    assert reason in cli("--dry-run").output
    applied = cli()
    assert applied.exit_code == 1 and "Nothing was written." in applied.stderr
    assert api.provisions == []


def test_another_provider_is_blocked_once_provisioned(api: Splendor, cli: Any) -> None:
    assert cli().exit_code == 0
    edit(cli, "splendor/stripe", "splendor/hubspot")
    blocked = cli()
    assert blocked.exit_code == 1
    assert (
        "app-payments: source_type cannot change: the Airbyte provider of a Splendor source "
        "is chosen when it is created, and the provision API has no field for it"
    ) in blocked.stderr


def test_a_provider_other_than_the_manifests_is_reported(api: Splendor, cli: Any) -> None:
    api.console("app-crm", "hubspot")  # its provider is chosen in Splendor
    (cli.sources / "crm.yaml").write_text(
        "name: app-crm\nsource_type: splendor/stripe\n"
        "connection: {client_secret: '${env:ORDERS_DB_PASSWORD}'}\n"
    )
    failed = cli()
    assert failed.exit_code == 1
    assert failed.stderr.endswith(
        "error: provisioning source 'app-crm': Splendor provisioned it with provider 'hubspot', "
        "not 'stripe' (the provider is chosen in Splendor); it is provisioned and owned, fix its "
        "source_type and run again\n"
    )
    plan = cli("--dry-run")
    assert "app-crm: source_type cannot change" in plan.output
    fixed = (cli.sources / "crm.yaml").read_text().replace("splendor/stripe", "splendor/hubspot")
    (cli.sources / "crm.yaml").write_text(fixed)
    plan = cli("--dry-run")  # app-crm is in sync; app-payments was never reached
    assert "app-crm" not in plan.stdout and "1 to create, 0 to update" in plan.stdout


def test_failed_credentials_fail_the_run_and_stay_owned(api: Splendor, cli: Any) -> None:
    api.failing.add("app-payments")
    failed = cli()
    assert failed.exit_code == 1
    assert failed.stderr == (
        "error: provisioning source 'app-payments': Splendor reports connection pending, "
        "credential invalid, destination ready; it is provisioned and owned, fix its "
        "source_configuration and run again\n"
    )
    assert cli("--dry-run").stdout.startswith("No changes.")


def test_provisioning_that_never_ends_times_out(api: Splendor, tmp_path: Path) -> None:
    api.ready_after = 10_000
    clock = Clock()
    url = f"splendor+{api.url}?tenant=acme"
    registry = open_provider(SplendorRegistry, url, tmp_path, clock, token=TOKEN, timeout=2.0)
    registry.init()
    registry.list_records()  # what the plan reads first: the sources there are to provision
    config = {"account_id": "a", "client_secret": "s"}
    with pytest.raises(RegistryError) as caught:
        registry.apply(Writes(creates=[new("app-payments", "splendor/stripe", config)]), run())
    assert str(caught.value) == (
        "provisioning source 'app-payments': still connection pending, credential pending, "
        "destination provisioning after 2 s (RECONCILER_OPERATION_TIMEOUT); it may finish on "
        "its own, the next run shows where it stands"
    )
    assert [r.managed_by for r in registry.list_records()] == ["reconciler"]


def test_every_page_is_read(api: Splendor, tmp_path: Path) -> None:
    for i in range(150):
        api.add(f"s{i:03d}")
    url = f"splendor+{api.url}?tenant=acme"
    records = open_provider(SplendorRegistry, url, tmp_path, Clock(), token=TOKEN).list_records()
    # app-payments carries its `airbyte` object but is not provisioned: not a record.
    assert len(records) == 150
    # 151 sources, 40 a page at most (the server's cap, below the 100 asked for): 4 pages
    # from offsets 0, 40, 80, 120, then an empty one at 151.
    assert api.count("GET", "/v1/admin/airbyte-sources") == 5


def test_the_tenant_is_required_and_checked(api: Splendor, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"\?tenant=TENANT\): tenant is required"):
        open_registry(f"splendor+{api.url}", writable=False)
    url = f"splendor+{api.url}?tenant=globex"
    registry = open_provider(SplendorRegistry, url, tmp_path, Clock(), token=TOKEN)
    with pytest.raises(RegistryError) as caught:
        registry.list_records()
    assert str(caught.value) == (
        f"listing sources: HTTP 403 from {url}: the token in SPLENDOR_TOKEN is not allowed to "
        "do this (No access to tenant 'globex')"
    )


CREATED = """\
name: app-refunds
source_type: splendor/stripe
connection:
  source.bucket: acme-connectors
  source.dataset_id: refunds
  source.iam_role_arn: arn:aws:iam::123456789012:role/acme-splendor
  source.streams: [refunds]
  account_id: acct_9
  client_secret: ${env:ORDERS_DB_PASSWORD}
"""


def test_a_source_that_does_not_exist_is_created_then_provisioned(api: Splendor, cli: Any) -> None:
    """The documented create (POST /v1/admin/airbyte-sources) from the `source.*` fields;
    its answer already carries an `airbyte` object, and only provisioning makes it a
    record."""
    (cli.sources / "payments.yaml").unlink()
    (cli.sources / "refunds.yaml").write_text(CREATED)
    assert "+ create app-refunds (splendor/stripe)" in cli("--dry-run").stdout
    applied = cli()
    assert applied.exit_code == 0, applied.output
    assert api.creates == [
        {
            "provider_key": "stripe",
            "connector_key": "stripe",
            "connector_name": "stripe",
            "source_key": "app-refunds",
            "source_name": "app-refunds",
            "bucket": "acme-connectors",
            "dataset_id": "refunds",
            "iam_role_arn": "arn:aws:iam::123456789012:role/acme-splendor",
            "streams": ["refunds"],
        }
    ]
    ((source_id, _, body),) = api.provisions
    assert source_id == api.by_key("app-refunds")["source"]["source_id"]
    assert body == {"source_configuration": {"account_id": "acct_9", "client_secret": CANARY}}
    assert cli("--dry-run").stdout.startswith("No changes.")
    cli.edit("refunds.yaml", "dataset_id: refunds", "dataset_id: refunds-v2")
    blocked = cli("--dry-run")
    assert (
        "app-refunds: connection.source.dataset_id cannot change: Splendor's API documents "
        "no update of a source's creation fields"
    ) in blocked.output
