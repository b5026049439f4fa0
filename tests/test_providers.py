"""The backend contract, run from the command line over every registry: the four
providers' and the Sources API's fake servers, SQLite and PostgreSQL (sql_cases.py).

Each scenario runs against each `provider_cases.Case`: create, an empty no-op plan, update or
replace, a rotated secret, prune, drift, unowned objects left alone, `reconcile import`,
rate limits and gateway errors. conftest's `reconcile` fails any run whose output shows the
secret canary or a traceback; every run here also checks the API token never shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import CANARY
from provider_cases import REGISTRIES, TOKEN, Case
from provider_harness import Cli
from sql_cases import SQL_CASES

from reconciler.cli import cli

ALL = [*REGISTRIES, *SQL_CASES]


@pytest.fixture(params=ALL, ids=[c.name for c in ALL])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def server(case: Case, request: pytest.FixtureRequest) -> Iterator[Any]:
    if case.start_on is not None and case.fixture is not None:
        started = case.start_on(request.getfixturevalue(case.fixture))
    else:
        started = case.start()
    with started as running:
        case.prepare(running)
        yield running


def http_only(case: Case) -> None:
    if not case.api:
        pytest.skip(f"{case.name} is not reached over HTTP")


@pytest.fixture
def run(case: Case, server: Any, tmp_path: Path) -> Cli:
    cli_ = Cli(case.url(server), tmp_path, case.token_env, TOKEN)
    cli_.env.update(case.env)
    for relative, text in case.manifests.items():
        (cli_.sources / relative).parent.mkdir(parents=True, exist_ok=True)
        (cli_.sources / relative).write_text(text)
    return cli_


@pytest.fixture
def sources(run: Cli) -> Path:
    return run.sources


def test_create_then_the_plan_is_empty(case: Case, server: Any, run: Any, tmp_path: Path) -> None:
    planned = run("--dry-run")
    assert planned.exit_code == 0, planned.output
    assert f"+ create orders ({case.shown_type}" in planned.stdout
    assert "Plan: 3 to create, 0 to update, 0 to delete." in planned.stdout
    assert case.names(server) == [] and not (tmp_path / "state.db").exists()

    applied = run()
    assert applied.exit_code == 0, applied.output
    assert "Apply complete: 3 created, 0 updated, 0 deleted" in applied.stdout
    assert case.names(server) == ["customers", "events", "orders"]
    assert case.secret(server, "orders") == CANARY  # the service needs it; no output shows it

    again = run("--dry-run", "--detailed-exitcode")
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith("No changes."), again.stdout
    assert "(3 sources in sync)" in again.stdout
    drift = run("drift")
    assert drift.exit_code == 0 and drift.stdout.startswith("No drift."), drift.output


def test_a_change_in_git_is_an_update_or_a_replace(
    case: Case, server: Any, run: Any, sources: Path
) -> None:
    assert run().exit_code == 0
    file, old, new = case.edit
    path = sources / file
    path.write_text(path.read_text().replace(old, new))
    plan = run("plan", "--detailed-exitcode")
    assert plan.exit_code == 2, plan.output
    symbol = {"update": "~ update", "replace": "-/+ replace"}[case.edit_action]
    assert f"{symbol} {path.stem.split('.')[0]} (" in plan.stdout, plan.stdout
    applied = run()
    assert applied.exit_code == 0, applied.output
    assert case.edited(server)
    assert run("--dry-run").stdout.startswith("No changes."), "not converged"


def test_a_rotated_secret_is_seen_by_fingerprint_and_never_shown(
    case: Case, server: Any, run: Any
) -> None:
    assert run().exit_code == 0
    rotated = "rotated-" + CANARY
    plan = run("--dry-run", ORDERS_DB_PASSWORD=rotated)
    symbol = {"update": "~ update", "replace": "-/+ replace"}[case.rotate_action]
    assert f"{symbol} orders (" in plan.stdout, plan.stdout
    assert ": (sensitive, changed)" in plan.stdout and rotated not in plan.output
    assert run(ORDERS_DB_PASSWORD=rotated).exit_code == 0
    assert case.secret(server, "orders") == rotated
    after = run("--dry-run", ORDERS_DB_PASSWORD=rotated)
    assert after.stdout.startswith("No changes."), after.output


def test_prune_deletes_only_what_it_owns(case: Case, server: Any, run: Any, sources: Path) -> None:
    assert run().exit_code == 0
    case.add_foreign(server, "hand_made")
    (sources / "events.yaml").unlink()
    kept = run()
    assert kept.exit_code == 0, kept.output
    assert "Owned records without a manifest" in kept.stdout and "· events" in kept.stdout
    pruned = run("--prune", "--force-deletes")
    if case.no_prune is not None:
        assert pruned.exit_code == 1
        assert f"events: {case.no_prune}" in pruned.stderr, pruned.stderr
        assert "events" in case.names(server)
        return
    assert pruned.exit_code == 0, pruned.output
    assert "- delete events (" in pruned.stdout
    assert "? hand_made  (no owner)" in pruned.stdout
    assert case.names(server) == ["customers", "hand_made", "orders"]


@pytest.mark.parametrize("fmt", ["text", "json", "markdown", "github", "junit"])
def test_no_output_shows_a_secret_even_rotated(case: Case, server: Any, run: Any, fmt: str) -> None:
    """conftest's `reconcile` fails any run whose output shows the canary; the rotated value
    contains it, and the token is checked by `run`."""
    assert run().exit_code == 0
    rotated = "rotated-" + CANARY
    for command in ("plan", "drift"):
        result = run(command, "-o", fmt, ORDERS_DB_PASSWORD=rotated)
        assert result.exit_code in (0, 2), result.output
        assert rotated not in result.output + result.stderr


def test_drift_is_reported_then_converged(case: Case, server: Any, run: Any) -> None:
    assert run().exit_code == 0
    path = case.drift(server, "customers")
    drift = run("drift")
    assert drift.exit_code == 2, drift.output
    assert "customers" in drift.stdout and path in drift.stdout, drift.stdout
    assert run().exit_code == 0
    assert run("drift").exit_code == 0


def test_unowned_objects_are_never_touched(
    case: Case, server: Any, run: Any, sources: Path
) -> None:
    case.add_foreign(server, "hand_made")
    run.init()  # a first run against objects made by hand: this store is the registry's
    plan = run("--dry-run")
    assert "? hand_made  (no owner)" in plan.stdout, plan.stdout
    taken = case.manifests["customers.yml"].replace("name: customers", "name: Hand_Made")
    (sources / "hand_made.yaml").write_text(taken)
    blocked = run()
    assert blocked.exit_code == 1
    assert "a registry record with this name already exists" in blocked.stderr
    assert case.names(server) == ["hand_made"]


def test_import_adopts_an_existing_object(
    case: Case, server: Any, run: Any, sources: Path, tmp_path: Path
) -> None:
    case.add_foreign(server, "legacy")
    before = case.names(server)
    args = ["import", "--name", "legacy", "--out", str(sources / "imported")]
    args += ["--sources-dir", str(sources)]
    args += ["--registry", case.url(server), "--state", f"sqlite:///{tmp_path / 'state.db'}"]
    imported = CliRunner().invoke(cli, args, env={**run.env, "NO_COLOR": "1"})
    assert imported.exit_code == 0, imported.output
    assert TOKEN not in imported.output
    written = sources / "imported" / "legacy.yaml"
    expected = f"{case.name}/" if case.foreign_types else "csv"  # the Sources API's own types
    assert f"source_type: {expected}" in written.read_text()
    plan = run("--dry-run")
    assert plan.exit_code == 0, plan.output
    assert "+ create legacy" not in plan.stdout and "? legacy" not in plan.stdout, plan.stdout
    assert case.names(server) == before


def test_a_manifest_of_another_registry_is_blocked(
    case: Case, server: Any, run: Any, sources: Path
) -> None:
    if not case.foreign_types:
        pytest.skip(f"{case.name} takes `csv` sources")
    (sources / "pg.yaml").write_text(
        "name: pg\nsource_type: csv\nconnection: {file_path: /data/pg.csv}\n"
    )
    plan = run("--dry-run")
    assert f"pg: source type 'csv' cannot be registered in a {case.name} registry" in (
        plan.output
    ), plan.output
    applied = run()
    assert applied.exit_code == 1 and "Nothing was written." in applied.stderr
    assert case.names(server) == []


def test_rate_limits_and_gateway_errors_are_retried(case: Case, server: Any, run: Any) -> None:
    http_only(case)
    server.fail(method="GET", status=429, headers={"Retry-After": "0"}, detail="slow down")
    server.fail(method="GET", status=503)
    result = run("--dry-run")
    assert result.exit_code == 0, result.output
    assert sum(1 for f in server.faults if f.fired) == 2


def test_a_slow_answer_is_retried_within_the_timeout(case: Case, server: Any, run: Any) -> None:
    http_only(case)
    server.fail(method="GET", delay=1.0)  # past --http-timeout: the client gives up, retries
    result = run("--dry-run", "--http-timeout", "0.3")
    assert result.exit_code == 0, result.output
    assert server.faults[0].fired == 1


def test_a_bad_token_is_one_line_naming_the_variable(case: Case, server: Any, run: Any) -> None:
    http_only(case)
    result = run("--dry-run", **{case.token_env: "wrong-" + TOKEN})
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
    assert f"HTTP 401 from {case.url(server)}: the registry rejected the " in result.stderr
    assert case.token_env in result.stderr and "wrong-" not in result.stderr


# -- a fresh runner: another working directory, no state store ---------------------------


def test_a_fresh_runner_plans_from_the_owner_marker_or_refuses(
    case: Case, server: Any, run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Apply from one working directory, plan from a fresh one with the default (local,
    empty) state store: where the API can carry the owner marker the plan is the same, two
    way, and says so once; where it cannot, the run refuses in one line naming the fix."""
    assert run().exit_code == 0
    fresh = tmp_path / "fresh-runner"
    fresh.mkdir()
    monkeypatch.chdir(fresh)
    env = {**run.env, "ORDERS_DB_PASSWORD": CANARY, "NO_COLOR": "1"}
    args = ["plan", "--registry", case.url(server), "--sources-dir", str(run.sources)]
    planned = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    assert TOKEN not in planned.output + planned.stderr
    assert CANARY not in planned.output + planned.stderr
    if not case.api:  # the registry is its own state: a fresh runner is like any other
        assert planned.exit_code == 0 and planned.stdout.startswith("No changes."), planned.output
        assert planned.stderr == ""
    elif case.marks_owner:
        assert planned.exit_code == 0, planned.output
        assert planned.stdout.startswith("No changes."), planned.stdout
        notes = [line for line in planned.stderr.splitlines() if "two-way" in line]
        assert len(notes) == 1 and "--state postgresql://" in notes[0], planned.stderr
        events = run.sources / "events.yaml"
        kept = events.read_text()
        events.unlink()
        pruned = CliRunner().invoke(cli, [*args, "--prune"], env=env, catch_exceptions=False)
        assert pruned.exit_code == 1 and "prune it from a run that shares" in pruned.output
        assert "events" in case.names(server)  # prevent_destroy cannot be told: kept
        events.write_text(kept)
    else:
        assert planned.exit_code == 1
        [line] = planned.stderr.splitlines()
        assert line.startswith("error: the state store sqlite:///.reconciler/state.db has no ")
        assert "--state postgresql://" in line and "RECONCILER_STATE" in line
    assert not (fresh / ".reconciler").exists()  # a plan creates nothing
    shared = run("plan")  # the shared state store: three-way, no note
    assert shared.stdout.startswith("No changes.") and "two-way" not in shared.stderr


def test_an_apply_with_the_local_default_state_warns_it_cannot_lock_other_machines(
    case: Case, server: Any, run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    http_only(case)
    monkeypatch.chdir(tmp_path)
    env = {**run.env, "ORDERS_DB_PASSWORD": CANARY, "NO_COLOR": "1"}
    args = ["apply", "--registry", case.url(server), "--sources-dir", str(run.sources)]
    applied = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    assert applied.exit_code == 0, applied.output
    [warning] = [line for line in applied.stderr.splitlines() if line.startswith("warning:")]
    assert "cannot lock out runs on other machines" in warning
    assert "--state postgresql://" in warning
    assert "warning:" not in run("apply").stderr  # a state store given: no warning


# -- reconciler-only fields and prevent_destroy -----------------------------------------


def test_a_reconciler_only_field_never_reaches_the_api(
    case: Case, server: Any, run: Any, sources: Path
) -> None:
    http_only(case)
    assert run().exit_code == 0
    writes = [r for r in server.requests if r[0] != "GET"]
    path = sources / "customers.yml"
    path.write_text(path.read_text() + "lifecycle: {prevent_destroy: true}\nschema_policy: fail\n")
    plan = run("plan")
    assert "~ update customers" in plan.stdout and "replace" not in plan.stdout, plan.output
    applied = run()
    assert applied.exit_code == 0, applied.output
    assert [r for r in server.requests if r[0] != "GET"] == writes  # not one write call
    assert run("plan").stdout.startswith("No changes.")


def test_prevent_destroy_blocks_a_replace_unless_forced(
    case: Case, server: Any, run: Any, sources: Path
) -> None:
    if case.edit_action != "replace":
        pytest.skip(f"{case.name} updates {case.edit[0]} in place")
    file, old, new = case.edit
    path = sources / file
    path.write_text(path.read_text() + "lifecycle: {prevent_destroy: true}\n")
    assert run().exit_code == 0
    before = case.names(server)
    path.write_text(path.read_text().replace(old, new))
    refused = run()
    assert refused.exit_code == 1 and "--force-replaces" in refused.stderr, refused.output
    assert not case.edited(server) and case.names(server) == before
    forced = run("--force-replaces")
    assert forced.exit_code == 0, forced.output
    assert case.edited(server)
