"""`reconcile list` / `reconcile show`: what is live, who owns it, when and by which run it
was applied, and whether it is in sync with git; never a secret."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result
from conftest import CANARY, insert_raw, reconcile, sql_exec

from reconciler.cli import cli


def live(*args: str, registry: str, sources: Path | None = None) -> Result:
    extra = ["--sources-dir", str(sources)] if sources else ["--sources-dir", "/nonexistent-dir"]
    result = CliRunner().invoke(
        cli,
        [*args, "--registry", registry, *extra],
        env={"ORDERS_DB_PASSWORD": CANARY, "NO_COLOR": "1"},
        catch_exceptions=False,
    )
    assert CANARY not in result.output + result.stderr
    assert "Traceback" not in result.output + result.stderr
    return result


def records(result: Result) -> dict[str, dict[str, object]]:
    data = json.loads(result.stdout)
    assert data["format_version"] == "1.0" and data["kind"] == "list"
    return {r["name"]: r for r in data["records"]}


def test_list_shows_owner_last_run_and_state(registry_url: str, sources: Path) -> None:
    assert reconcile("apply", registry=registry_url, sources=sources).exit_code == 0
    insert_raw(registry_url, "by_hand")
    history = json.loads(
        CliRunner().invoke(cli, ["history", "-o", "json", "--registry", registry_url]).stdout
    )
    run_id = history["runs"][0]["id"]

    found = records(live("list", "-o", "json", registry=registry_url, sources=sources))
    assert set(found) == {"by_hand", "customers", "events", "orders"}
    assert found["orders"]["owner"] == "reconciler" and found["orders"]["managed"] is True
    assert found["orders"]["run_id"] == run_id and found["orders"]["applied_at"]
    assert found["orders"]["state"] == "in sync"
    assert found["orders"]["connection"]["password"] == "(sensitive)"  # type: ignore[index]
    assert found["by_hand"]["managed"] is False and found["by_hand"]["run_id"] is None
    assert found["by_hand"]["state"] == "-"

    text = live("list", registry=registry_url, sources=sources)
    assert text.exit_code == 0
    header, *rows = text.stdout.splitlines()
    assert header.split() == ["NAME", "TYPE", "OWNER", "STATE", "APPLIED", "(UTC)", "RUN"]
    assert any(r.startswith("orders") and "in sync" in r and run_id in r for r in rows)
    assert any(r.startswith("by_hand") and "(unmanaged)" in r for r in rows)


def test_states_drifted_conflict_and_no_manifest(registry_url: str, sources: Path) -> None:
    assert reconcile("apply", registry=registry_url, sources=sources).exit_code == 0
    # events: changed outside git -> drifted; customers: changed in both -> conflict.
    sql_exec(registry_url, "UPDATE sources SET description = 'by hand' WHERE name = 'events'")
    sql_exec(registry_url, "UPDATE sources SET description = 'ui' WHERE name = 'customers'")
    (sources / "customers.yml").write_text(
        (sources / "customers.yml").read_text().replace("from the CRM", "from the new CRM")
    )
    (sources / "shop" / "orders.yaml").unlink()
    found = records(live("list", "-o", "json", registry=registry_url, sources=sources))
    assert found["events"]["state"] == "drifted"
    assert found["customers"]["state"] == "conflict"
    assert found["orders"]["state"] == "no manifest"
    # Without manifests, states are not computed (and nothing fails).
    unchecked = records(live("list", "-o", "json", registry=registry_url))
    assert {r["state"] for r in unchecked.values()} == {"-"}


def test_show_one_record_without_secrets(registry_url: str, sources: Path) -> None:
    assert reconcile("apply", registry=registry_url, sources=sources).exit_code == 0
    # A secret written into a non-secret field's URL by someone: redacted too.
    sql_exec(
        registry_url,
        "UPDATE sources SET connection = ? WHERE name = 'events'",
        (json.dumps({"file_path": f"https://u:{CANARY}@host/x.csv", "extra": {"token": CANARY}}),),
    )
    shown = live("show", "ORDERS", registry=registry_url, sources=sources)
    assert shown.exit_code == 0, shown.stderr
    assert "Name:        orders" in shown.stdout
    assert 'password: "(sensitive)"' in shown.stdout
    assert "State:       in sync" in shown.stdout
    data = json.loads(live("show", "events", "-o", "json", registry=registry_url).stdout)
    assert data["kind"] == "show" and data["record"]["name"] == "events"
    assert data["record"]["connection"]["extra"] == {"token": "(sensitive)"}
    missing = live("show", "nope", registry=registry_url, sources=sources)
    assert missing.exit_code == 1 and "no record named 'nope'" in missing.stderr


def test_a_registry_that_does_not_exist(registry_url: str, sources: Path) -> None:
    for args in (("list",), ("show", "orders")):
        for where in (sources, None):
            result = live(*args, registry=registry_url, sources=where)
            assert result.exit_code == 1
            assert "does not exist" in result.stderr
    if registry_url.startswith("sqlite:///"):
        assert not Path(registry_url[len("sqlite:///") :]).exists()


def test_list_on_the_sources_api_reads_the_state_store(registry_url: str, sources: Path) -> None:
    from sources_api import SourcesApi

    token = "tok-live-Secret-1a2b"
    with SourcesApi.running(token=token) as api:
        env = {"RECONCILER_TOKEN": token}
        applied = reconcile(
            "apply", "--state", registry_url, registry=api.url, sources=sources, **env
        )
        assert applied.exit_code == 0, applied.output
        listed = reconcile(
            "list", "-o", "json", "--state", registry_url, registry=api.url, sources=sources, **env
        )
        assert listed.exit_code == 0, listed.stderr
        assert token not in listed.output + listed.stderr
        found = records(listed)
        assert found["orders"]["state"] == "in sync"
        assert found["orders"]["run_id"] and found["orders"]["applied_at"]
        assert found["orders"]["connection"]["password"] == "(sensitive)"  # type: ignore[index]
