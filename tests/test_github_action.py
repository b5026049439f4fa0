"""The reusable Action (action.yml) and the example workflows call only what exists.

Every `reconcile` line they run is parsed by the CLI itself and its options are looked up in
the click command tree (for the Action: with each mode and with the `args` the examples
pass); every `${{ inputs.x }}` is declared; every `$VARIABLE` a script reads is set.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from test_integration_files import parse_reconcile, reconcile_calls

from reconciler.cli import cli

ROOT = Path(__file__).resolve().parent.parent
ACTION = ROOT / "action.yml"
WORKFLOWS = sorted((ROOT / "examples" / "github-actions").glob("*.yml"))
USES_ACTION = re.compile(r"[\w.-]+/reconciler@v\d+")
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}")
VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
# Set by the runner for every step (docs.github.com: default environment variables).
RUNNER_VARIABLES = {"GITHUB_OUTPUT", "GITHUB_EVENT_NAME", "GITHUB_REF", "GITHUB_REPOSITORY"}
RUNNER_VARIABLES |= {"GITHUB_ACTION_PATH", "RUNNER_TEMP", "GITHUB_STEP_SUMMARY"}


def _load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


def inputs_used(path: Path) -> set[str]:
    """The `inputs.x` read in `${{ ... }}` expressions and in `if:` conditions."""
    expressions = EXPRESSION.findall(path.read_text())

    def conditions(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "if":
                    expressions.append(str(value))
                conditions(value)
        elif isinstance(node, list):
            for item in node:
                conditions(item)

    conditions(_load(path))
    return {name for text in expressions for name in re.findall(r"\binputs\.([\w-]+)", text)}


def _options(command: click.Command) -> set[str]:
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def check_command(args: list[str]) -> list[str]:
    """Parse as the CLI would, then look every --option up on the command that owns it."""
    try:
        path = parse_reconcile(args)
    except click.UsageError as exc:
        pytest.fail(f"`reconcile {' '.join(args)}`: {exc.format_message()}")
    command: click.Command = cli
    owners = [command]
    for name in path[1:]:
        assert isinstance(command, click.Group)
        sub = command.get_command(click.Context(command), name)
        assert sub is not None, name
        command = sub
        owners.append(command)
    known = set().union(*(_options(c) for c in owners))
    for arg in args:
        if arg.startswith("--"):
            assert arg.split("=", 1)[0] in known, f"{arg} is not an option of {' '.join(path)}"
    return path


def _action() -> dict[Any, Any]:
    return _load(ACTION)


def _action_calls(extra: str) -> dict[str, list[str]]:
    """The Action's reconcile lines by mode, with `args: extra` as the shell splits it."""
    calls: dict[str, list[str]] = {}
    for step in _action()["runs"]["steps"]:
        for args in reconcile_calls(step.get("run", "")):
            expanded: list[str] = []
            for arg in args:
                if arg == "$EXTRA_ARGS":  # unquoted: word-split like the shell does
                    expanded += shlex.split(extra)
                else:
                    expanded.append(re.sub(r"\$\w+", "value", arg))
            mode = "drift" if "drift" in expanded else "plan" if "--dry-run" in args else "apply"
            calls[mode] = expanded
    return calls


def test_action_is_a_composite_that_runs_every_mode() -> None:
    action = _action()
    assert action["runs"]["using"] == "composite"
    for step in action["runs"]["steps"]:
        assert ("uses" in step) != ("run" in step), step
        if "run" in step:
            assert step["shell"] == "bash", step  # a composite run step must name its shell
    calls = _action_calls("")
    assert set(calls) == {"plan", "apply", "drift"}
    for args in calls.values():
        check_command(args)
    plan = calls["plan"]
    assert "--detailed-exitcode" in plan and "github" in plan
    assert any(a.startswith("markdown=") for a in plan)
    install = next(s["run"] for s in action["runs"]["steps"] if "pip install" in s.get("run", ""))
    assert "$GITHUB_ACTION_PATH" in install  # installs the reconciler the Action ships


def test_action_inputs_are_declared_and_never_pasted_into_scripts() -> None:
    action = _action()
    declared = set(action["inputs"])
    assert {"registry-url", "sources-dir", "mode", "args", "python-version"} <= declared
    used = inputs_used(ACTION)
    assert used <= declared, used - declared
    assert declared - {"github-token"} <= used, "an input nothing reads"
    for step in action["runs"]["steps"]:
        # Inputs reach a script through env: pasted in, `args: "; rm -rf ~"` would run.
        assert "${{" not in step.get("run", ""), step.get("name")


def test_scripts_read_only_variables_that_are_set() -> None:
    files = [(ACTION, step) for step in _action()["runs"]["steps"]]
    for path in WORKFLOWS:
        files += [(path, s) for job in _load(path)["jobs"].values() for s in job["steps"]]
    for path, step in files:
        script = re.sub(r"\$\{\{.*?\}\}", "", step.get("run", ""))
        assigned = set(re.findall(r"^\s*([A-Za-z_]\w*)=", script, re.M))
        for name in set(VARIABLE.findall(script)):
            env = set(step.get("env", {}))
            assert name in env | assigned | RUNNER_VARIABLES, f"{path.name}: ${name} is not set"


def test_example_workflows_call_only_what_exists() -> None:
    action_inputs = _action()["inputs"]
    uses_action = 0
    for path in WORKFLOWS:
        workflow = _load(path)
        on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
        dispatch = (on.get("workflow_dispatch") or {}) if isinstance(on, dict) else {}
        used = inputs_used(path)
        assert used <= set(dispatch.get("inputs") or {}), f"{path.name}: {used}"
        for job in workflow["jobs"].values():
            for step in job["steps"]:
                for args in reconcile_calls(step.get("run", "")):
                    check_command(args)
                if not USES_ACTION.fullmatch(step.get("uses", "")):
                    continue
                uses_action += 1
                given = step.get("with", {})
                assert set(given) <= set(action_inputs), f"{path.name}: {set(given)}"
                mode = given.get("mode", "plan")
                assert mode in ("auto", "plan", "apply", "drift")
                calls = _action_calls(given.get("args", ""))
                for checked in calls.values() if mode == "auto" else [calls[mode]]:
                    check_command(checked)
    assert uses_action >= 2, "an example workflow uses the Action"


def test_drift_to_pr_writes_drift_back_and_opens_a_pull_request() -> None:
    workflow = _load(ROOT / "examples" / "github-actions" / "drift-to-pr.yml")
    on: dict[str, Any] = workflow["on"] if "on" in workflow else workflow[True]
    assert len(on["schedule"][0]["cron"].split()) == 5
    assert workflow["permissions"] == {"contents": "write", "pull-requests": "write"}
    (job,) = workflow["jobs"].values()
    calls = [args for s in job["steps"] for args in reconcile_calls(s.get("run", ""))]
    assert [check_command(args) for args in calls] == [["reconcile", "drift"]]
    assert "--write" in calls[0]
    (opener,) = [s for s in job["steps"] if "create-pull-request" in s.get("uses", "")]
    assert re.fullmatch(r"peter-evans/create-pull-request@v\d+", opener["uses"])
    assert opener["with"]["add-paths"].startswith("sources.d")


def test_the_checker_rejects_unknown_options() -> None:
    with pytest.raises(pytest.fail.Exception):
        check_command(["drift", "--writ"])
    with pytest.raises(pytest.fail.Exception):
        check_command(["history", "--prune"])
    assert check_command(["drift", "--write"]) == ["reconcile", "drift"]
