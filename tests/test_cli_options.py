"""No option is silently ignored: options before a subcommand are honoured or refused, and
each command's --help lists only what does something there."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from conftest import init_registry, insert_raw, reconcile, snapshot

from reconciler.cli import cli


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"NO_COLOR": "1"}, catch_exceptions=False)


def test_dry_run_before_import_is_refused_and_writes_nothing(
    registry_url: str, tmp_path: Path
) -> None:
    init_registry(registry_url)
    insert_raw(registry_url, "legacy")
    before = snapshot(registry_url)
    out = tmp_path / "adopted"
    result = run(
        "--dry-run", "import", "--all", "--sources-dir", str(out), "--registry", registry_url
    )
    assert result.exit_code == 1
    assert "option --dry-run has no effect on `reconcile import`" in result.stderr
    assert not out.exists()
    assert snapshot(registry_url) == before


def test_dry_run_before_registry_init_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    result = run("--dry-run", "registry", "init", "--registry", f"sqlite:///{db}")
    assert result.exit_code == 1
    assert "option --dry-run has no effect on `reconcile registry init`" in result.stderr
    assert not db.exists()


def test_owner_before_history_is_refused(registry_url: str) -> None:
    init_registry(registry_url)
    result = run("--owner", "x", "history", "--registry", registry_url)
    assert result.exit_code == 1
    assert "option --owner has no effect on `reconcile history`" in result.stderr


def test_options_before_a_subcommand_that_has_them_are_honoured(
    registry_url: str, sources: Path
) -> None:
    """`reconcile --owner team-a plan` plans for team-a (the subcommand has --owner)."""
    reconcile("--owner", "team-a", registry=registry_url, sources=sources)
    as_a = reconcile(
        "--owner", "team-a", "plan", "--detailed-exitcode", registry=registry_url, sources=sources
    )
    assert as_a.exit_code == 0, as_a.output
    # Given after the subcommand too: the one after it wins.
    as_b = reconcile(
        "--owner", "team-a", "plan", "--owner", "team-b", registry=registry_url, sources=sources
    )
    assert as_b.exit_code == 1  # team-b would take names team-a owns: blocked
    dry = reconcile(
        "--dry-run", "--owner", "team-a", "plan", registry=registry_url, sources=sources
    )
    assert dry.exit_code == 0, dry.output


def test_apply_of_a_saved_plan_refuses_the_options_fixed_in_it(
    registry_url: str, sources: Path, tmp_path: Path
) -> None:
    saved = tmp_path / "plan.json"
    assert (
        reconcile("plan", "--out", str(saved), registry=registry_url, sources=sources).exit_code
        == 0
    )
    before = snapshot(registry_url)
    for extra in (("--prune",), ("--max-deletes", "3"), ("--force-deletes",)):
        result = reconcile("apply", str(saved), *extra, registry=registry_url, sources=sources)
        assert result.exit_code == 1
        assert f"{extra[0]}: fixed when the plan was saved" in result.stderr
        assert snapshot(registry_url) == before
    assert reconcile("apply", str(saved), registry=registry_url, sources=sources).exit_code == 0


@pytest.mark.parametrize("args", [("apply", "--dry-run"), ("--dry-run", "apply")])
def test_apply_dry_run_points_to_plan(args: tuple[str, ...]) -> None:
    result = run(*args)
    assert result.exit_code == 1
    assert "use `reconcile plan`" in result.stderr
    assert "--prune" not in result.stderr


def _options(*path: str) -> set[str]:
    command: click.Command = cli
    ctx = click.Context(cli, info_name="reconcile")
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
        ctx = click.Context(command, info_name=name, parent=ctx)
    return {
        opt
        for p in command.get_params(ctx)
        if isinstance(p, click.Option) and not p.hidden
        for opt in p.opts
        if opt.startswith("--")
    }


def test_help_lists_only_options_that_do_something() -> None:
    # A plan takes no lock; an apply is always strict; drift exits 2 on drift anyway.
    assert "--lock-timeout" not in _options("plan")
    assert "--strict" not in _options("apply")
    assert "--fail-on-drift" not in _options("drift")
    assert "--dry-run" not in _options("plan") | _options("apply")
    assert {"--lock-timeout", "--strict", "--fail-on-drift", "--dry-run"} <= _options()
    help_text = run("apply", "--help").stdout
    assert "--strict" not in help_text and "--dry-run" not in help_text


def test_shell_completion_as_documented() -> None:
    """README: eval "$(_RECONCILE_COMPLETE=bash_source reconcile)"."""
    script = CliRunner().invoke(
        cli, [], prog_name="reconcile", env={"_RECONCILE_COMPLETE": "bash_source"}
    )
    assert script.exit_code == 0
    assert "_reconcile_completion()" in script.stdout
    words = CliRunner().invoke(
        cli,
        [],
        prog_name="reconcile",
        env={
            "_RECONCILE_COMPLETE": "bash_complete",
            "COMP_WORDS": "reconcile pl",
            "COMP_CWORD": "1",
        },
    )
    assert words.stdout.split() == ["plain,plan"]
