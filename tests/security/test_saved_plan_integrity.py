"""Saved plans travel as CI artifacts: nothing in the file is trusted at apply.

Each tampering is tried twice: as is (the registry-keyed signature refuses it) and re-signed
with the registry's own key (as someone holding it could; recomputing the plan refuses it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import CANARY, insert_raw, reconcile, snapshot, sql_exec, sql_rows

from reconciler.backends import open_registry
from reconciler.backends.base import (
    ConnectOptions,
    NewRecord,
    RecordDelete,
    RecordUpdate,
    RunEntry,
    Writes,
)
from reconciler.cli import cli
from reconciler.errors import StaleRecordError
from reconciler.workflow.saved_plans import SavedPlan, signature

Tamper = Callable[[dict[str, Any], str], None]


def _key(registry: str) -> bytes:
    rows = sql_rows(registry, "SELECT value FROM registry_meta WHERE key = 'fingerprint_key'")
    return bytes.fromhex(rows[0][0])


def _edit(path: Path, tamper: Tamper, registry: str, *, resign: bool) -> None:
    content = json.loads(path.read_text())
    tamper(content, registry)
    if resign:  # as a holder of the registry's key would: over the file as it loads
        content.pop("mac", None)
        content = SavedPlan.model_validate(content).model_dump(mode="json")
        content["mac"] = signature(_key(registry), content)
    path.write_text(json.dumps(content, indent=2))


def _change(content: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in content["plan"]["changes"] if c["name"] == name)
    return found


def _edit_value(content: dict[str, Any], registry: str) -> None:
    change = _change(content, "customers")
    change["document"]["description"] = "EDITED"
    change["document"]["connection"]["file_path"] = "/etc/passwd"
    for field in change["fields"]:
        if field["path"] == "description":
            field["new"] = "EDITED"


def _splice_delete(content: dict[str, Any], registry: str) -> None:
    (orphan,) = content["plan"]["orphans"]
    version = sql_rows(registry, "SELECT version FROM sources WHERE name = 'events'")[0][0]
    content["plan"]["orphans"] = []
    content["plan"]["changes"].append(
        {
            "action": "delete",
            "name": orphan["name"],
            "source_type": "csv",
            "record_id": orphan["record_id"],
            "version": version,
        }
    )


def _splice_delete_with_prune(content: dict[str, Any], registry: str) -> None:
    _splice_delete(content, registry)
    content["options"]["prune"] = content["plan"]["prune"] = True


def _update_other_owner(content: dict[str, Any], registry: str) -> None:
    (theirs,) = [u for u in content["plan"]["unmanaged"] if u["name"] == "theirs"]
    content["plan"]["unmanaged"].remove(theirs)
    change = dict(_change(content, "customers"))
    change.update(
        name="theirs",
        action="update",
        record_id=theirs["record_id"],
        version=1,
        document={**change["document"], "name": "theirs", "description": "TAKEN"},
    )
    content["plan"]["changes"].append(change)


def _remove_guard(content: dict[str, Any], registry: str) -> None:
    assert content["plan"]["guard"]
    content["plan"]["guard"] = None


def _harmless_field(content: dict[str, Any], registry: str) -> None:
    content["sources_dir"] = "elsewhere"


def _saved(registry: str, sources: Path, tmp_path: Path, *args: str) -> Path:
    """Registry with all three sources, customers edited in git, events' manifest gone."""
    assert reconcile(registry=registry, sources=sources).exit_code == 0
    insert_raw(registry, "theirs", managed_by="someone-else")
    customers = sources / "customers.yml"
    customers.write_text(customers.read_text().replace("from the CRM", "from the new CRM"))
    (sources / "events.yaml").unlink()
    plan_file = tmp_path / "plan.json"
    saved = reconcile("plan", "--out", str(plan_file), *args, registry=registry, sources=sources)
    assert saved.exit_code == 0, saved.output
    return plan_file


@pytest.mark.parametrize(
    ("tamper", "resign"),
    [
        *((t, r) for t in (_edit_value, _splice_delete, _update_other_owner) for r in (0, 1)),
        # The options are the signer's word: only the signature protects them (someone who
        # holds the registry's key can write the registry directly anyway).
        (_splice_delete_with_prune, 0),
    ],
)
def test_a_tampered_plan_file_is_refused_and_writes_nothing(
    registry_url: str, sources: Path, tmp_path: Path, tamper: Tamper, resign: bool
) -> None:
    plan_file = _saved(registry_url, sources, tmp_path)
    _edit(plan_file, tamper, registry_url, resign=resign)
    before = snapshot(registry_url)
    result = reconcile("apply", str(plan_file), registry=registry_url, sources=sources)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "nothing was written" in result.stderr
    expected = "signature does not match" if not resign else "is not what the manifests"
    assert expected in result.stderr
    after = snapshot(registry_url)
    # Only the failed run is logged; not one source row moved.
    assert after["sources"] == before["sources"]


@pytest.mark.parametrize("resign", [False, True], ids=["as-is", "re-signed"])
def test_a_removed_prune_guard_is_refused(
    registry_url: str, sources: Path, tmp_path: Path, resign: bool
) -> None:
    assert reconcile(registry=registry_url, sources=sources).exit_code == 0
    (sources / "events.yaml").unlink()
    (sources / "customers.yml").unlink()
    # A plan the guard refuses is not saved (issue 13.7); one saved as old versions did:
    from reconciler.workflow import run, saved_plans

    options = run.Options(sources_dir=sources, registry=registry_url, prune=True, max_deletes=1)
    outcome, key = run._dry_run(options)
    assert outcome.plan.guard
    plan_file = tmp_path / "plan.json"
    saved = saved_plans.SavedPlan(
        created_at=saved_plans.now(),
        registry=outcome.registry,
        sources_dir=sources.as_posix(),
        manifests_digest=saved_plans.manifests_digest(outcome.manifests),
        options=saved_plans.PlanOptions(
            owner="reconciler",
            prune=True,
            max_deletes=1,
            force_deletes=False,
            force_conflicts=False,
        ),
        plan=outcome.plan,
    )
    saved_plans.save(plan_file, saved, key)
    _edit(plan_file, _remove_guard, registry_url, resign=resign)
    before = snapshot(registry_url)["sources"]
    result = reconcile("apply", str(plan_file), registry=registry_url, sources=sources)
    assert result.exit_code == 1 and "nothing was written" in result.stderr
    assert snapshot(registry_url)["sources"] == before


def test_any_edit_of_the_file_breaks_its_signature(
    registry_url: str, sources: Path, tmp_path: Path
) -> None:
    plan_file = _saved(registry_url, sources, tmp_path)
    _edit(plan_file, _harmless_field, registry_url, resign=False)
    result = reconcile("apply", str(plan_file), registry=registry_url, sources=sources)
    assert result.exit_code == 1 and "signature does not match" in result.stderr


def test_a_stripped_signature_is_refused(registry_url: str, sources: Path, tmp_path: Path) -> None:
    plan_file = _saved(registry_url, sources, tmp_path)
    content = json.loads(plan_file.read_text())
    del content["mac"]
    plan_file.write_text(json.dumps(content))
    result = reconcile("apply", str(plan_file), registry=registry_url, sources=sources)
    assert result.exit_code == 1 and "not signed by this registry" in result.stderr


def test_an_untampered_plan_applies_with_its_saved_options(
    registry_url: str, sources: Path, tmp_path: Path
) -> None:
    plan_file = _saved(registry_url, sources, tmp_path, "--prune")
    # Options given at apply do not change what the reviewed plan does.
    result = reconcile("apply", str(plan_file), registry=registry_url, sources=sources)
    assert result.exit_code == 0, result.output
    assert "1 updated" in result.stdout and "1 deleted" in result.stdout
    rows = sql_rows(registry_url, "SELECT name, description FROM sources ORDER BY name")
    assert [r[0] for r in rows] == ["customers", "orders", "theirs"]
    assert rows[0][1] == "Customer export from the new CRM."


def test_an_out_of_band_edit_makes_the_saved_plan_stale(
    registry_url: str, sources: Path, tmp_path: Path
) -> None:
    plan_file = _saved(registry_url, sources, tmp_path)
    # A UI writes the table directly, without touching the reconciler's version counter.
    sql_exec(
        registry_url,
        "UPDATE sources SET description = 'edited in the UI' WHERE name = ?",
        ("customers",),
    )
    result = reconcile("apply", str(plan_file), registry=registry_url, sources=sources)
    assert result.exit_code == 1
    assert "customers (version 1 → version 2)" in result.stderr
    rows = sql_rows(registry_url, "SELECT description FROM sources WHERE name = 'customers'")
    assert rows == [("edited in the UI",)]  # not silently reverted


def test_an_out_of_band_edit_of_an_unplanned_column_also_makes_it_stale(
    registry_url: str, sources: Path, tmp_path: Path
) -> None:
    """The database bumps the version on any UPDATE, even one the plan would not notice."""
    plan_file = _saved(registry_url, sources, tmp_path)
    sql_exec(registry_url, "UPDATE sources SET status = 'paused' WHERE name = ?", ("customers",))
    result = reconcile("apply", str(plan_file), registry=registry_url, sources=sources)
    assert result.exit_code == 1 and "customers (version 1 → version 2)" in result.stderr


def test_sql_writes_never_touch_another_owners_row(registry_url: str) -> None:
    """The owner is part of every UPDATE and DELETE statement, whatever the caller built."""
    CliRunner().invoke(cli, ["registry", "init", "--registry", registry_url])
    theirs = insert_raw(registry_url, "theirs", managed_by="someone-else")
    registry = open_registry(registry_url, writable=True, options=ConnectOptions())
    record = NewRecord(
        id=theirs,
        name="theirs",
        source_type="csv",
        connection={"file_path": "/x.csv"},
        description="TAKEN",
        tags=[],
        managed_by="reconciler",
        last_applied={},
    )
    before = snapshot(registry_url)["sources"]
    try:
        for writes in (
            Writes(updates=[RecordUpdate(record, 1, "reconciler")]),
            Writes(deletes=[RecordDelete(theirs, "theirs", 1, "reconciler")]),
        ):
            run = RunEntry(
                id=str(__import__("uuid").uuid4()),
                owner="reconciler",
                actor="t",
                started_at=__import__("datetime").datetime.now(),
            )
            with pytest.raises(StaleRecordError):
                registry.apply(writes, run)
    finally:
        registry.close()
    assert snapshot(registry_url)["sources"] == before


def test_a_plan_made_without_secrets_applies_with_them(
    registry_url: str, sources: Path, tmp_path: Path
) -> None:
    """CI plans a pull request without production secrets; the merge job applies it."""
    plan_file = tmp_path / "plan.json"
    planned = CliRunner().invoke(
        cli,
        [
            "plan",
            "--out",
            str(plan_file),
            "--registry",
            registry_url,
            "--sources-dir",
            str(sources),
        ],
        env={"ORDERS_DB_PASSWORD": None, "NO_COLOR": "1"},
    )
    assert planned.exit_code == 0, planned.output
    result = reconcile("apply", str(plan_file), registry=registry_url, sources=sources)
    assert result.exit_code == 0 and "3 created" in result.stdout, result.output
    assert CANARY not in plan_file.read_text()


@pytest.mark.parametrize("blocked_by", ["taken name", "prune guard", "conflict"])
def test_a_plan_apply_would_refuse_is_not_saved(
    registry_url: str, sources: Path, tmp_path: Path, blocked_by: str
) -> None:
    """Issue 13.7: no file that says "apply it with ..." for a plan apply refuses."""
    args: tuple[str, ...] = ()
    if blocked_by == "taken name":
        CliRunner().invoke(cli, ["registry", "init", "--registry", registry_url])
        insert_raw(registry_url, "customers", managed_by="someone-else")
    else:
        assert reconcile(registry=registry_url, sources=sources).exit_code == 0
    if blocked_by == "prune guard":
        (sources / "events.yaml").unlink()
        (sources / "customers.yml").unlink()
        args = ("--prune", "--max-deletes", "1")
    if blocked_by == "conflict":
        sql_exec(registry_url, "UPDATE sources SET description = 'ui' WHERE name = 'customers'")
        customers = sources / "customers.yml"
        customers.write_text(customers.read_text().replace("from the CRM", "from git"))
    plan_file = tmp_path / "plan.json"
    result = reconcile(
        "plan", "--out", str(plan_file), *args, registry=registry_url, sources=sources
    )
    assert result.exit_code == 1
    assert f"error: plan not saved to {plan_file}: apply would refuse it" in result.stderr
    assert "apply it with" not in result.stderr
    assert not plan_file.exists()
