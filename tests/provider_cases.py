"""One `Case` per provider: its fake server, manifests, and how to act on it behind our back.

The contract suite (test_providers.py) runs the same scenarios over every case; what differs
between providers (which change updates in place and which replaces, what drifts, whether
pruning is possible) is data here, next to the manifests it depends on.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from conftest import CUSTOMERS, EVENTS, ORDERS
from fake_airbyte_agents import AirbyteAgents
from fake_airweave import Airweave
from fake_splendor import Splendor
from fake_streamkap import Streamkap
from sources_api import SourcesApi

TOKEN = "tok-Secret-3a9e71"


@dataclass(frozen=True)
class Case:
    name: str
    token_env: str
    # Three sources; orders has a secret from ${env:ORDERS_DB_PASSWORD} (conftest's CANARY).
    manifests: dict[str, str]
    start: Callable[[], AbstractContextManager[Any]]
    url: Callable[[Any], str]
    # The names of the remote objects (Splendor: the source_keys that are provisioned).
    names: Callable[[Any], list[str]]
    # The secret the server received for source `name`.
    secret: Callable[[Any, str], Any]
    # Create an object named `name` behind the reconciler's back.
    add_foreign: Callable[[Any, str], None]
    # Change source `name` behind the reconciler's back; the field path that drifted.
    drift: Callable[[Any, str], str]
    # A change in git: (file, old text, new text), the action it plans, and a check.
    edit: tuple[str, str, str]
    edit_action: str
    edited: Callable[[Any], bool]
    # The action a rotated secret plans.
    rotate_action: str
    # Why --prune cannot delete (the blocked reason's start), or None.
    no_prune: str | None = None
    # Prepare the server before anything is applied (Splendor: the sources to provision).
    prepare: Callable[[Any], None] = lambda server: None
    # Variables the manifests' other secret references need.
    env: dict[str, str] = field(default_factory=dict)
    # Whether the API has a place for the owner marker (a fresh runner then still plans).
    marks_owner: bool = False
    # How a plan shows orders' type ("streamkap/postgresql": "streamkap/").
    type_prefix: str = ""
    # Whether a manifest of another registry's type (`csv`) is blocked.
    foreign_types: bool = True
    # Whether it is reached over HTTP with a state store (False: a SQL registry).
    api: bool = True
    # A pytest fixture whose value `start_on` starts the server with (else `start()`).
    fixture: str | None = None
    start_on: Callable[[Any], AbstractContextManager[Any]] | None = None

    @property
    def shown_type(self) -> str:
        return self.type_prefix or f"{self.name}/"


# -- Streamkap ----------------------------------------------------------------------------

STREAMKAP = Case(
    name="streamkap",
    token_env="STREAMKAP_TOKEN",
    manifests={
        "shop/orders.yaml": """\
name: orders
source_type: streamkap/postgresql
description: Orders placed in the web shop.
connection:
  database.hostname.user.defined: db.internal
  database.port.user.defined: 5432
  database.user: reporting
  database.password: ${env:ORDERS_DB_PASSWORD}
  table.include.list.user.defined: public.orders
tags: [sales, pii]
""",
        "customers.yml": """\
name: customers
source_type: streamkap/mysql
description: Customer export from the CRM.
connection:
  database.hostname.user.defined: crm.internal
  database.include.list.user.defined: crm
tags: [crm]
""",
        "events.yaml": """\
name: events
source_type: streamkap/mongodb
# A connection string carries credentials: a secret by name, so a reference.
connection: {mongodb.connection.string.user.defined: "${env:EVENTS_MONGODB_URI}"}
""",
    },
    start=lambda: Streamkap.running(token=TOKEN),
    url=lambda s: "streamkap+" + s.url,
    names=lambda s: s.names(),
    secret=lambda s, name: s.by_name(name)["config"]["database.password"],
    add_foreign=lambda s, name: s.add(name, "postgresql", **{"database.hostname": "legacy"}),
    drift=lambda s, name: _streamkap_drift(s, name),
    edit=(
        "customers.yml",
        "database.include.list.user.defined: crm",
        "database.include.list.user.defined: crm,billing",
    ),
    edit_action="update",
    edited=lambda s: (
        s.by_name("customers")["config"]["database.include.list.user.defined"] == "crm,billing"
    ),
    rotate_action="update",
    env={"EVENTS_MONGODB_URI": "mongodb://events:ev-Secret-5a2e@mongodb-internal/events"},
)


def _streamkap_drift(server: Streamkap, name: str) -> str:
    server.by_name(name)["config"]["database.hostname.user.defined"] = "moved.internal"
    return "connection.database.hostname.user.defined"


# -- Airweave -----------------------------------------------------------------------------

AIRWEAVE = Case(
    name="airweave",
    token_env="AIRWEAVE_API_KEY",
    manifests={
        "shop/orders.yaml": """\
name: orders
source_type: airweave/postgresql
description: Orders placed in the web shop.
connection:
  readable_collection_id: warehouse
  config: {tables: orders}
  credentials.host: db.internal
  credentials.user: reporting
  credentials.password: ${env:ORDERS_DB_PASSWORD}
tags: [sales, pii]
""",
        "customers.yml": """\
name: customers
source_type: airweave/github
description: Customer support docs.
connection:
  readable_collection_id: docs
  config: {repo_name: company/docs, branch: main}
  schedule: {cron: "0 */6 * * *"}
  credentials.personal_access_token: ${env:GITHUB_PAT}
tags: [crm]
""",
        "events.yaml": """\
name: events
source_type: airweave/linear
connection:
  readable_collection_id: support-tickets
  credentials.api_key: ${env:LINEAR_API_KEY}
""",
    },
    start=lambda: Airweave.running(token=TOKEN),
    url=lambda s: "airweave+" + s.url,
    names=lambda s: s.names(),
    secret=lambda s, name: s.by_name(name)["credentials"]["password"],
    add_foreign=lambda s, name: s.add(name),
    drift=lambda s, name: _airweave_drift(s, name),
    edit=("customers.yml", "branch: main", "branch: develop"),
    edit_action="update",
    edited=lambda s: s.by_name("customers")["config"]["branch"] == "develop",
    rotate_action="update",
    env={"GITHUB_PAT": "ghp-Secret-71c0", "LINEAR_API_KEY": "lin-Secret-22de"},
)


def _airweave_drift(server: Airweave, name: str) -> str:
    server.by_name(name)["config"]["branch"] = "hotfix"
    return "connection.config.branch"


# -- Airbyte Agents -----------------------------------------------------------------------

AIRBYTE_AGENTS = Case(
    name="airbyte-agents",
    token_env="AIRBYTE_AGENTS_TOKEN",
    manifests={
        "shop/orders.yaml": """\
name: orders
source_type: airbyte-agents/stripe
description: Payments behind the web shop's orders.
connection:
  credentials.client_secret: ${env:ORDERS_DB_PASSWORD}
tags: [sales, pii]
""",
        "customers.yml": """\
name: customers
source_type: airbyte-agents/hubspot
description: Customer records from the CRM.
connection:
  credentials.client_id: hubspot-app-1
  credentials.client_secret: ${env:HUBSPOT_CLIENT_SECRET}
  credentials.refresh_token: ${env:HUBSPOT_REFRESH_TOKEN}
tags: [crm]
""",
        "events.yaml": """\
name: events
source_type: airbyte-agents/ef69ef6e-aa7f-4af1-a01d-ef775033524e
connection:
  credentials.option_title: PAT Credentials
  credentials.personal_access_token: ${env:GITHUB_PAT}
  replication_config: {repositories: [airbytehq/airbyte]}
""",
    },
    start=lambda: AirbyteAgents.running(token=TOKEN),
    url=lambda s: "airbyte-agents+" + s.url + "?workspace_name=default",
    names=lambda s: s.names(),
    secret=lambda s, name: s.by_name(name)["credentials"]["client_secret"],
    add_foreign=lambda s, name: s.add(name),
    drift=lambda s, name: _airbyte_drift(s, name),
    edit=("events.yaml", "[airbytehq/airbyte]", "[airbytehq/airbyte, airbytehq/agents]"),
    edit_action="replace",
    edited=lambda s: (
        s.by_name("events")["replication_config"]["repositories"]
        == ["airbytehq/airbyte", "airbytehq/agents"]
    ),
    rotate_action="replace",
    env={
        "HUBSPOT_CLIENT_SECRET": "hs-Secret-8d1f",
        "HUBSPOT_REFRESH_TOKEN": "hs-Refresh-51aa",
        "GITHUB_PAT": "ghp-Secret-71c0",
    },
)


def _airbyte_drift(server: AirbyteAgents, name: str) -> str:
    """Nothing of a connector can change (no update endpoint, write-only credentials) but
    its existence: deleted outside git."""
    server.connectors.pop(server.by_name(name)["id"])
    return "deleted outside git"


# -- Splendor -----------------------------------------------------------------------------

SPLENDOR = Case(
    name="splendor",
    token_env="SPLENDOR_TOKEN",
    manifests={
        "shop/orders.yaml": """\
name: orders
source_type: splendor/stripe
description: Payments behind the web shop's orders.
connection:
  account_id: acct_1
  client_secret: ${env:ORDERS_DB_PASSWORD}
tags: [sales, pii]
""",
        "customers.yml": """\
name: customers
source_type: splendor/hubspot
description: Customer records from the CRM.
connection:
  client_secret: ${env:HUBSPOT_CLIENT_SECRET}
  start_date: "2024-01-01"
tags: [crm]
""",
        "events.yaml": """\
name: events
source_type: splendor/github
connection:
  personal_access_token: ${env:GITHUB_PAT}
  repositories: [airbytehq/airbyte]
""",
    },
    start=lambda: Splendor.running(token=TOKEN, tenant="acme"),
    url=lambda s: "splendor+" + s.url + "?tenant=acme",
    names=lambda s: s.names(),
    secret=lambda s, name: s.by_key(name)["configuration"]["client_secret"],
    add_foreign=lambda s, name: s.add(name),
    drift=lambda s, name: _splendor_drift(s, name),
    edit=("customers.yml", 'start_date: "2024-01-01"', 'start_date: "2025-01-01"'),
    edit_action="update",
    edited=lambda s: s.by_key("customers")["configuration"]["start_date"] == "2025-01-01",
    rotate_action="update",
    no_prune="Splendor's API has no way to deprovision or delete a source",
    prepare=lambda s: _splendor_sources(s),
    env={"HUBSPOT_CLIENT_SECRET": "hs-Secret-8d1f", "GITHUB_PAT": "ghp-Secret-71c0"},
)


def _splendor_sources(server: Splendor) -> None:
    """Sources made in Splendor's console first (the manifests carry no creation fields):
    the first apply provisions them."""
    for key, provider in (("orders", "stripe"), ("customers", "hubspot"), ("events", "github")):
        server.console(key, provider)


def _splendor_drift(server: Splendor, name: str) -> str:
    """All a source shows is whether it is provisioned (its configuration is never
    returned): deprovisioned in the console, it is deleted outside git."""
    entry = server.by_key(name)
    entry["provisioned"] = False
    entry["airbyte"].update(airbyte_source_id=None, connection_status="pending")
    return "deleted outside git"


# -- The Sources API (the reconciler's own HTTP registry) -----------------------------------

SOURCES_API = Case(
    name="sources-api",
    token_env="RECONCILER_TOKEN",
    manifests={
        "shop/orders.yaml": ORDERS,
        "customers.yml": CUSTOMERS,
        "events.yaml": EVENTS,
    },
    start=lambda: SourcesApi.running(token=TOKEN),
    url=lambda s: s.url,
    names=lambda s: sorted(r["name"] for r in s.records.values()),
    secret=lambda s, name: s.by_name(name)["connection"]["password"],
    add_foreign=lambda s, name: s.add(name) and None,
    drift=lambda s, name: _sources_api_drift(s, name),
    edit=("customers.yml", "Customer export from the CRM.", "Nightly."),
    edit_action="replace",  # no update endpoint
    edited=lambda s: s.by_name("customers")["description"] == "Nightly.",
    rotate_action="replace",
    marks_owner=True,
    type_prefix="postgres",
    foreign_types=False,
    prepare=lambda s: setattr(s, "mask_secrets", True),  # as a real service may answer
)


def _sources_api_drift(server: SourcesApi, name: str) -> str:
    server.by_name(name)["description"] = "Edited in the registry's UI."
    return "description"


# The providers; the contract suite (test_providers.py) runs over every API registry.
CASES = [STREAMKAP, AIRWEAVE, AIRBYTE_AGENTS, SPLENDOR]
REGISTRIES = [*CASES, SOURCES_API]
