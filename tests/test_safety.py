"""The failures users fear most, each made impossible and proven so on both backends:
leaked secrets, surprise mass deletions, overwritten out-of-band changes, stale plans."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import CANARY, init_registry, insert_raw, reconcile, snapshot, sql_exec, sql_rows

PORT_5433 = "UPDATE sources SET connection = ? WHERE name = 'orders'"


def _orders_connection(url: str) -> dict[str, object]:
    value = sql_rows(url, "SELECT connection FROM sources WHERE name = 'orders'")[0][0]
    return value if isinstance(value, dict) else json.loads(value)


def _set_orders_connection(url: str, connection: dict[str, object]) -> None:
    if url.startswith("sqlite"):
        sql_exec(url, PORT_5433, (json.dumps(connection),))
    else:
        sql_exec(url, PORT_5433.replace("= ?", "= ?::jsonb", 1), (json.dumps(connection),))


# -- secrets -------------------------------------------------------------------------------


def test_secret_rotation_is_detected_without_printing(registry_url: str, sources: Path) -> None:
    reconcile(registry=registry_url, sources=sources)
    rotated = "rotated-" + CANARY
    plan = reconcile(
        "plan",
        "--detailed-exitcode",
        registry=registry_url,
        sources=sources,
        ORDERS_DB_PASSWORD=rotated,
    )
    assert plan.exit_code == 2
    assert "~ connection.password: (sensitive, changed)" in plan.stdout
    assert rotated not in plan.stdout
    reconcile(registry=registry_url, sources=sources, ORDERS_DB_PASSWORD=rotated)
    assert _orders_connection(registry_url)["password"] == rotated
    again = reconcile(
        "plan",
        "--detailed-exitcode",
        registry=registry_url,
        sources=sources,
        ORDERS_DB_PASSWORD=rotated,
    )
    assert again.exit_code == 0, again.stdout


def test_dry_run_without_the_variable_shows_unknown_and_strict_fails(
    registry_url: str, sources: Path
) -> None:
    plan = reconcile("--dry-run", registry=registry_url, sources=sources, ORDERS_DB_PASSWORD=None)  # type: ignore[arg-type]
    assert plan.exit_code == 0
    assert '+ connection.password: "${env:ORDERS_DB_PASSWORD}" (unknown until apply)' in plan.stdout
    strict = reconcile(
        "--dry-run",
        "--strict",
        registry=registry_url,
        sources=sources,
        ORDERS_DB_PASSWORD=None,  # type: ignore[arg-type]
    )
    assert strict.exit_code == 1
    assert "environment variable ORDERS_DB_PASSWORD is not set" in strict.stderr


def test_canary_secret_never_appears_anywhere(
    registry_url: str, sources: Path, tmp_path: Path
) -> None:
    """Every command, every format, error paths, saved plans and the run log: 0 hits."""
    secret_file = tmp_path / "events.secret"
    secret_file.write_text(CANARY + "-file\n")
    (sources / "events.yaml").write_text(
        "name: events\nsource_type: postgres\nconnection:\n  host: h\n  dbname: d\n  user: u\n"
        f"  table: t\n  password: ${{file:{secret_file}}}\n"
    )
    outputs: list[str] = []

    def run(*args: str, **env: str) -> None:
        result = reconcile(*args, registry=registry_url, sources=sources, **env)
        outputs.append(result.stdout + result.stderr)

    for fmt in ("text", "json", "markdown"):
        run("--dry-run", "-o", fmt)
        run("-o", fmt)  # apply (the second and third are no-ops)
        run("drift", "-o", fmt)
        run("validate", "-o", fmt)
    plan_file = tmp_path / "plan.json"
    run("plan", "--out", str(plan_file), ORDERS_DB_PASSWORD="rotated-" + CANARY)
    run("apply", str(plan_file), ORDERS_DB_PASSWORD="rotated-" + CANARY)
    run("apply", str(plan_file), ORDERS_DB_PASSWORD="rotated-" + CANARY)  # stale now: refused
    _set_orders_connection(registry_url, {**_orders_connection(registry_url), "port": 5433})
    run("drift")
    run("--dry-run", "-o", "json")
    (sources / "bad.yaml").write_text(
        f"name: bad\nsource_type: postgres\nconnection:\n  password: {CANARY}\n"
    )
    run("--dry-run")  # invalid manifest carrying a literal secret
    run("-o", "json")
    for text in outputs:
        assert CANARY not in text
    assert CANARY not in plan_file.read_text()
    for row in sql_rows(registry_url, "SELECT * FROM runs"):
        assert CANARY not in repr(row)
    assert any("prune" in t or "Apply complete" in t for t in outputs)


# -- three-way drift -----------------------------------------------------------------------


def test_out_of_band_change_is_drift_and_apply_restores_git(
    registry_url: str, sources: Path
) -> None:
    reconcile(registry=registry_url, sources=sources)
    _set_orders_connection(registry_url, {**_orders_connection(registry_url), "port": 5433})
    drift = reconcile("drift", registry=registry_url, sources=sources)
    assert drift.exit_code == 2
    assert "! drift connection.port: 5432 → 5433 (changed outside git)" in drift.stdout
    assert "Drift: 1 changed, 0 deleted, 0 added outside git." in drift.stdout
    plan = reconcile("--dry-run", registry=registry_url, sources=sources)
    assert "~ connection.port: 5433 → 5432" in plan.stdout
    reconcile(registry=registry_url, sources=sources)
    assert _orders_connection(registry_url)["port"] == 5432
    assert reconcile("drift", registry=registry_url, sources=sources).exit_code == 0


def test_secret_changed_outside_git_is_drift(registry_url: str, sources: Path) -> None:
    reconcile(registry=registry_url, sources=sources)
    _set_orders_connection(registry_url, {**_orders_connection(registry_url), "password": "x1y2z3"})
    drift = reconcile("drift", registry=registry_url, sources=sources)
    assert drift.exit_code == 2
    assert "! drift connection.password: (sensitive, changed outside git)" in drift.stdout
    assert "x1y2z3" not in drift.stdout
    reconcile(registry=registry_url, sources=sources)
    assert _orders_connection(registry_url)["password"] == CANARY


def test_deleted_and_added_outside_git(registry_url: str, sources: Path) -> None:
    reconcile(registry=registry_url, sources=sources)
    sql_exec(registry_url, "DELETE FROM sources WHERE name = 'events'")
    insert_raw(registry_url, "sneaky")
    drift = reconcile("drift", "-o", "json", registry=registry_url, sources=sources)
    assert drift.exit_code == 2
    report = json.loads(drift.stdout)
    assert report["drift"] == {"changed": [], "deleted": ["events"], "added": ["sneaky"]}
    plan = reconcile("--dry-run", registry=registry_url, sources=sources)
    assert (
        "+ create events (csv)" in plan.stdout
        and "(deleted outside git; recreating)" in plan.stdout
    )


def test_conflict_is_refused_unless_forced(registry_url: str, sources: Path) -> None:
    reconcile(registry=registry_url, sources=sources)
    sql_exec(
        registry_url, "UPDATE sources SET description = 'edited in the UI' WHERE name = 'orders'"
    )
    orders = sources / "shop" / "orders.yaml"
    orders.write_text(orders.read_text().replace("Orders placed in the web shop.", "From git."))
    (sources / "customers.yml").write_text(
        (sources / "customers.yml").read_text().replace("from the CRM", "from the new CRM")
    )
    plan = reconcile("--dry-run", registry=registry_url, sources=sources)
    assert plan.exit_code == 1
    assert "✗ conflict description: changed in git and outside git" in plan.stdout
    applied = reconcile(registry=registry_url, sources=sources)
    assert applied.exit_code == 1
    assert "Refused because of conflicts: orders" in applied.stdout
    descriptions = dict(sql_rows(registry_url, "SELECT name, description FROM sources"))
    assert descriptions["orders"] == "edited in the UI"  # refused: untouched
    assert descriptions["customers"] == "Customer export from the new CRM."  # others applied
    outcome = sql_rows(registry_url, "SELECT outcome, message FROM runs ORDER BY started_at DESC")
    assert outcome[0] == ("partial", "refused (conflict): orders")
    forced = reconcile("--force-conflicts", registry=registry_url, sources=sources)
    assert forced.exit_code == 0
    assert "✗ conflict description: changed in git and outside git; git wins" in forced.stdout
    assert (
        dict(sql_rows(registry_url, "SELECT name, description FROM sources"))["orders"]
        == "From git."
    )


def test_ignore_changes_keeps_live_values(registry_url: str, sources: Path) -> None:
    orders = sources / "shop" / "orders.yaml"
    orders.write_text(
        orders.read_text() + "lifecycle:\n  ignore_changes: [description, connection.host]\n"
    )
    reconcile(registry=registry_url, sources=sources)
    sql_exec(
        registry_url, "UPDATE sources SET description = 'curated in the UI' WHERE name = 'orders'"
    )
    _set_orders_connection(registry_url, {**_orders_connection(registry_url), "host": "replica"})
    assert reconcile("drift", registry=registry_url, sources=sources).exit_code == 0
    orders.write_text(orders.read_text().replace("dbname: shop", "dbname: shop2"))
    reconcile(registry=registry_url, sources=sources)
    connection = _orders_connection(registry_url)
    assert connection["dbname"] == "shop2" and connection["host"] == "replica"
    assert (
        dict(sql_rows(registry_url, "SELECT name, description FROM sources"))["orders"]
        == "curated in the UI"
    )


# -- prune guard and prevent_destroy -------------------------------------------------------


def test_prune_guard_refuses_mass_deletion(
    registry_url: str, sources: Path, tmp_path: Path
) -> None:
    reconcile(registry=registry_url, sources=sources)
    empty = tmp_path / "empty.d"
    empty.mkdir()
    refused = reconcile("--prune", registry=registry_url, sources=empty)
    assert refused.exit_code == 1
    assert "prune refused: the sources directory has no manifests" in refused.stderr
    assert len(sql_rows(registry_url, "SELECT id FROM sources")) == 3
    (sources / "events.yaml").unlink()
    (sources / "customers.yml").unlink()
    half = reconcile("--prune", registry=registry_url, sources=sources)
    assert half.exit_code == 1
    assert "it would delete 2 of the 3 records this owner manages (over half)" in half.stderr
    capped = reconcile("--prune", "--max-deletes", "1", registry=registry_url, sources=sources)
    assert "more than --max-deletes 1" in capped.stderr
    forced = reconcile("--prune", "--force-deletes", registry=registry_url, sources=sources)
    assert forced.exit_code == 0 and "2 deleted" in forced.stdout
    assert sql_rows(registry_url, "SELECT name FROM sources") == [("orders",)]


def test_prevent_destroy_survives_removing_the_manifest(registry_url: str, sources: Path) -> None:
    events = sources / "events.yaml"
    events.write_text(events.read_text() + "lifecycle: {prevent_destroy: true}\n")
    reconcile(registry=registry_url, sources=sources)
    text = events.read_text()
    events.unlink()
    refused = reconcile("--prune", "--force-deletes", registry=registry_url, sources=sources)
    assert refused.exit_code == 1
    assert "cannot apply: events: lifecycle.prevent_destroy is set on this record" in refused.stderr
    assert len(sql_rows(registry_url, "SELECT id FROM sources")) == 3
    events.write_text(text.replace("prevent_destroy: true", "prevent_destroy: false"))
    reconcile(registry=registry_url, sources=sources)
    events.unlink()
    pruned = reconcile("--prune", registry=registry_url, sources=sources)
    assert pruned.exit_code == 0 and "1 deleted" in pruned.stdout


# -- saved plans ---------------------------------------------------------------------------


def test_saved_plan_applies_exactly_what_was_reviewed(
    registry_url: str, sources: Path, tmp_path: Path
) -> None:
    plan_file = tmp_path / "plan.json"
    saved = reconcile("plan", "--out", str(plan_file), registry=registry_url, sources=sources)
    assert saved.exit_code == 0 and "Plan saved to" in saved.stderr
    assert json.loads(plan_file.read_text())["format"] == "reconciler-plan/2"
    applied = reconcile("apply", str(plan_file), registry=registry_url, sources=sources)
    assert applied.exit_code == 0 and "3 created" in applied.stdout
    again = reconcile("apply", str(plan_file), registry=registry_url, sources=sources)
    assert again.exit_code == 1
    assert "the registry changed since the plan was saved: customers (now exists)" in again.stderr


def test_stale_saved_plan_is_refused_and_writes_nothing(
    registry_url: str, sources: Path, tmp_path: Path
) -> None:
    reconcile(registry=registry_url, sources=sources)
    customers = sources / "customers.yml"
    customers.write_text(customers.read_text().replace("from the CRM", "from the new CRM"))
    plan_file = tmp_path / "plan.json"
    reconcile("plan", "--out", str(plan_file), registry=registry_url, sources=sources)
    sql_exec(registry_url, "UPDATE sources SET version = version + 1 WHERE name = 'customers'")
    before = sql_rows(registry_url, "SELECT name, description, version FROM sources ORDER BY name")
    stale = reconcile("apply", str(plan_file), registry=registry_url, sources=sources)
    assert stale.exit_code == 1
    assert "customers (version 1 → version 2)" in stale.stderr
    assert (
        sql_rows(registry_url, "SELECT name, description, version FROM sources ORDER BY name")
        == before
    )
    customers.write_text(customers.read_text().replace("new CRM", "newer CRM"))
    changed = reconcile("apply", str(plan_file), registry=registry_url, sources=sources)
    assert (
        "the manifests in" in changed.stderr
        and "changed since the plan was saved" in changed.stderr
    )


def test_saved_plan_for_another_registry_is_refused(tmp_path: Path, sources: Path) -> None:
    plan_file = tmp_path / "plan.json"
    reconcile(
        "plan", "--out", str(plan_file), registry=f"sqlite:///{tmp_path}/a.db", sources=sources
    )
    other = reconcile(
        "apply", str(plan_file), registry=f"sqlite:///{tmp_path}/b.db", sources=sources
    )
    assert other.exit_code == 1 and "was made for registry" in other.stderr
    assert not (tmp_path / "b.db").exists()  # refused before the wrong registry was created


def test_not_a_plan_file_is_a_clear_error(tmp_path: Path, sources: Path) -> None:
    bogus = tmp_path / "plan.json"
    bogus.write_text("{}")
    result = reconcile("apply", str(bogus), registry=f"sqlite:///{tmp_path}/r.db", sources=sources)
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"error: {bogus} is not a saved plan (write one with `reconcile plan --out {bogus}`)\n"
    )


def test_registry_init_twice_keeps_the_fingerprint_key(registry_url: str) -> None:
    init_registry(registry_url)
    first = sql_rows(registry_url, "SELECT value FROM registry_meta")
    init_registry(registry_url)
    assert sql_rows(registry_url, "SELECT value FROM registry_meta") == first


def test_prune_guard_counts_in_words(registry_url: str, sources: Path) -> None:
    reconcile(registry=registry_url, sources=sources)
    (sources / "events.yaml").unlink()
    refused = reconcile("--prune", "--max-deletes", "0", registry=registry_url, sources=sources)
    assert refused.exit_code == 1
    assert "prune refused: it would delete 1 record, more than --max-deletes 0." in refused.stderr


# -- empty and invalid secret references (issue 13.3, 13.6) ---------------------------------


def test_an_empty_secret_is_refused_like_an_unset_one(
    registry_url: str, sources: Path, tmp_path: Path
) -> None:
    """An undefined CI secret expands to "": applying it would blank the password."""
    init_registry(registry_url)
    before = snapshot(registry_url)
    empty = reconcile(registry=registry_url, sources=sources, ORDERS_DB_PASSWORD="")
    assert empty.exit_code == 1
    assert (
        "error: source 'orders' connection.password: environment variable ORDERS_DB_PASSWORD "
        "is empty (write ${env:ORDERS_DB_PASSWORD:allow-empty} if that is meant); nothing was "
        "written"
    ) in empty.stderr
    secret_file = tmp_path / "empty.secret"
    secret_file.write_text("\n")
    orders = sources / "shop" / "orders.yaml"
    orders.write_text(orders.read_text().replace("env:ORDERS_DB_PASSWORD", f"file:{secret_file}"))
    from_file = reconcile(registry=registry_url, sources=sources)
    assert from_file.exit_code == 1
    assert f"secret file {secret_file} is empty" in from_file.stderr
    assert snapshot(registry_url) == before


def test_an_empty_secret_is_allowed_only_when_written_so(registry_url: str, sources: Path) -> None:
    orders = sources / "shop" / "orders.yaml"
    orders.write_text(
        orders.read_text().replace(
            "${env:ORDERS_DB_PASSWORD}", "${env:ORDERS_DB_PASSWORD:allow-empty}"
        )
    )
    applied = reconcile(registry=registry_url, sources=sources, ORDERS_DB_PASSWORD="")
    assert applied.exit_code == 0, applied.output + applied.stderr
    assert _orders_connection(registry_url)["password"] == ""
    again = reconcile("plan", "--detailed-exitcode", registry=registry_url, sources=sources,
                      ORDERS_DB_PASSWORD="")  # fmt: skip
    assert again.exit_code == 0, again.stdout


def test_missing_secrets_are_one_line_per_variable(registry_url: str, sources: Path) -> None:
    for name, variable in (("orders2", "ORDERS_DB_PASSWORD"), ("billing", "BILLING_PW")):
        text = (sources / "shop" / "orders.yaml").read_text()
        text = text.replace("name: orders", f"name: {name}").replace("ORDERS_DB_PASSWORD", variable)
        (sources / f"{name}.yaml").write_text(text)
    result = reconcile(registry=registry_url, sources=sources, ORDERS_DB_PASSWORD=None)  # type: ignore[arg-type]
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: 3 secret reference(s) cannot be resolved; nothing was written:",
        "  environment variable BILLING_PW is not set (needed by source 'billing' "
        "connection.password)",
        "  environment variable ORDERS_DB_PASSWORD is not set (needed by source 'orders' "
        "connection.password, source 'orders2' connection.password)",
    ]


def test_an_invalid_variable_name_is_called_so(sources: Path, registry_url: str) -> None:
    orders = sources / "shop" / "orders.yaml"
    orders.write_text(orders.read_text().replace("${env:ORDERS_DB_PASSWORD}", "${env:MY-VAR}"))
    result = reconcile("plan", registry=registry_url, sources=sources)
    assert result.exit_code == 1
    assert (
        "connection.password: invalid variable name 'MY-VAR' in ${env:MY-VAR} (letters, "
        "digits and _, not starting with a digit)"
    ) in result.stderr
    assert "literal secret" not in result.stderr
