"""Fixed reports for renderer tests: every kind of finding, built from the real models."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from reconciler.errors import Problem
from reconciler.models import ApplyResult, Blocked, Change, FieldChange, Orphan, Plan, Unmanaged
from reconciler.reporters import Report
from reconciler.tableschema.report import SchemaFinding, SchemaReport, SourceSchema

# A resolved secret (tests register it). Written into a description it is shown as written:
# output is never scrubbed as text, so a `***` can never confirm a guess.
CANARY = "canary-Secret-6f1d2c"
REGISTRY = "postgresql://reconciler:***@db.internal/registry"

CREATE = Change(
    action="create",
    name="orders",
    source_type="postgres",
    file="sources.d/shop/orders.yaml",
    line=2,
    fields=(
        FieldChange(path="name", new="orders"),
        FieldChange(path="source_type", new="postgres"),
        FieldChange(path="connection.host", new="db.internal"),
        FieldChange(path="connection.password", new="${env:ORDERS_DB_PASSWORD}"),
        FieldChange(path="tags", new=["pii", "sales"]),
    ),
)
UPDATE = Change(
    action="update",
    name="customers",
    source_type="csv",
    record_id="00000000-0000-4000-8000-000000000002",
    version=3,
    file="sources.d/customers.yml",
    line=1,
    fields=(
        FieldChange(
            path="description", old="Customer export from the CRM.", new="CRM export, nightly."
        ),
        FieldChange(path="tags", old=["crm"], new=["crm", "daily"]),
    ),
)
DELETE = Change(
    action="delete",
    name="legacy_events",
    source_type="csv",
    record_id="00000000-0000-4000-8000-000000000003",
    version=1,
)
# In sync with git, but someone edited the live record: drift that leaked a secret into a
# description: shown as written (see above).
DRIFTED = Change(
    action="noop",
    name="events",
    source_type="csv",
    record_id="00000000-0000-4000-8000-000000000004",
    version=2,
    file="sources.d/events.yaml",
    line=1,
    drift=(FieldChange(path="description", old="Click events.", new=f"pw is {CANARY}"),),
)
CONFLICT = Change(
    action="update",
    name="payments",
    source_type="postgres",
    record_id="00000000-0000-4000-8000-000000000005",
    version=4,
    file="sources.d/payments.yaml",
    line=3,
    fields=(FieldChange(path="connection.host", old="pg-1.internal", new="pg-2.internal"),),
    drift=(FieldChange(path="connection.host", old="pg-1.internal", new="pg-3.internal"),),
    conflicts=("connection.host",),
)
RECREATE = Change(
    action="create",
    name="sessions",
    source_type="csv",
    file="sources.d/sessions.yaml",
    line=1,
    recreate=True,
    fields=(FieldChange(path="name", new="sessions"),),
)


def plan_report() -> Report:
    """A dry-run with creates, updates, deletes, drift, a conflict, blocked and unmanaged."""
    plan = Plan(
        owner="reconciler",
        prune=True,
        changes=(CREATE, UPDATE, DELETE, DRIFTED, CONFLICT, RECREATE),
        unmanaged=(
            Unmanaged(
                name="hand_made", record_id="00000000-0000-4000-8000-000000000006", managed_by=None
            ),
            Unmanaged(
                name="billing",
                record_id="00000000-0000-4000-8000-000000000007",
                managed_by="team-billing",
            ),
        ),
        blocked=(
            Blocked(
                name="invoices",
                reason="the name is taken by a record owned by 'team-billing'",
                file="sources.d/invoices.yaml",
                line=1,
            ),
        ),
    )
    return Report(kind="plan", registry=REGISTRY, sources_dir="sources.d", plan=plan, sources=6)


def apply_report() -> Report:
    """An apply that refused the conflicted source and applied the rest."""
    plan = Plan(
        owner="reconciler",
        prune=True,
        changes=(CREATE, UPDATE, DELETE, DRIFTED, CONFLICT),
        orphans=(Orphan(name="old_clicks", record_id="00000000-0000-4000-8000-000000000008"),),
    )
    result = ApplyResult(
        plan=plan,
        run_id="00000000-0000-4000-8000-0000000000aa",
        created=1,
        updated=1,
        deleted=1,
        refused=("payments",),
    )
    return Report(
        kind="apply",
        registry=REGISTRY,
        sources_dir="sources.d",
        plan=plan,
        result=result,
        sources=5,
    )


def drift_report() -> Report:
    plan = Plan(
        owner="reconciler",
        prune=False,
        changes=(DRIFTED, RECREATE),
        unmanaged=(
            Unmanaged(
                name="hand_made", record_id="00000000-0000-4000-8000-000000000006", managed_by=None
            ),
        ),
    )
    return Report(kind="drift", registry=REGISTRY, sources_dir="sources.d", plan=plan, sources=2)


def invalid_report() -> Report:
    return Report(
        kind="plan",
        registry=REGISTRY,
        sources_dir="sources.d",
        problems=[
            # A message quoting a value that happens to be a secret: scrubbed on the way out.
            Problem(
                "sources.d/bad.yaml", 4, f"connection.port: must be an integer, not '{CANARY}'"
            ),
            Problem(
                "sources.d/bad.yaml",
                9,
                "connection.password: a literal secret; use ${env:NAME} or ${file:PATH}",
            ),
            Problem(
                "sources.d/dup.yaml",
                1,
                "duplicate source name 'orders' (also in sources.d/shop/orders.yaml:2)",
            ),
        ],
    )


# The schema section as the schema checker shapes it: sources with a status and findings.
SCHEMA_SOURCES: list[dict[str, Any]] = [
    {
        "name": "orders",
        "source_type": "postgres",
        "status": "breaking",
        "policy": "fail",
        "file": "sources.d/shop/orders.yaml",
        "line": 2,
        "findings": [
            {
                "kind": "column_dropped",
                "column": "total",
                "old": "numeric(12,2)",
                "new": None,
                "severity": "breaking",
                "message": 'column "total" dropped (breaking)',
            },
            {
                "kind": "column_added",
                "column": "note",
                "old": None,
                "new": "text",
                "severity": "info",
                "message": 'column "note" added (text, nullable) (non-breaking)',
            },
        ],
    },
    {
        "name": "customers",
        "source_type": "csv",
        "status": "changed",
        "policy": "warn",
        "findings": [
            {
                "kind": "type_widened",
                "column": "ts",
                "old": "timestamp",
                "new": "timestamptz",
                "severity": "warning",
                "message": 'column "ts": timestamp → timestamptz (warning)',
            },
        ],
    },
    {
        "name": "payments",
        "source_type": "postgres",
        "status": "accepted",
        "policy": "warn",
        "findings": [
            {
                "kind": "column_dropped",
                "column": "fee",
                "old": "integer",
                "new": None,
                "severity": "breaking",
                "message": 'column "fee" dropped (breaking)',
            },
        ],
    },
    {
        "name": "clicks",
        "source_type": "postgres",
        "status": "unreachable",
        "policy": "warn",
        "file": "sources.d/clicks.yaml",
        "line": 1,
        "findings": [
            {
                "kind": "unreachable",
                "column": None,
                "old": None,
                "new": "timeout after 10 s",
                "severity": "error",
                "message": "cannot introspect: timeout after 10 s",
            },
        ],
    },
]


def real_schema() -> SchemaReport:
    """The schema section built from the schema checker's own models."""
    sources = []
    for entry in SCHEMA_SOURCES:
        findings = tuple(
            SchemaFinding(**f, against="contract" if entry["name"] == "orders" else "snapshot")
            for f in entry["findings"]
        )
        fields_ = {k: v for k, v in entry.items() if k != "findings"}
        sources.append(SourceSchema(**fields_, perspective="consumer", findings=findings))
    return SchemaReport(sources=tuple(sources), record=True, recorded=3, queries=2, seconds=0.25)


def with_schema(report: Report, schema: SchemaReport) -> Report:
    """`report` carrying a schema section."""
    return replace(report, schema=schema)
