"""The ready-made CI and cron files are valid for their tools and call real commands.

Every `reconcile ...` line in them is parsed by the CLI itself (options and subcommands
must exist and take the values given), so renaming an option breaks this test, not a
user's pipeline. Docker cannot run here: the Dockerfile is checked line by line.
"""

from __future__ import annotations

import configparser
import json
import re
import shlex
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from reconciler.cli import cli

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "examples" / "github-actions" / "reconcile.yml"
CRON = ROOT / "examples" / "cron"
SHELL_STOP = {"|", "||", "&&", ";", ">", ">>", "2>&1", "<"}


def parse_reconcile(args: list[str]) -> list[str]:
    """Parse args as the CLI would, without running anything; return the command path."""
    ctx = cli.make_context("reconcile", list(args))
    path = ["reconcile"]
    command: click.Command = cli
    while isinstance(command, click.Group):
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        if not rest:
            break
        name, sub, rest = command.resolve_command(ctx, rest)
        assert sub is not None and name is not None
        ctx = sub.make_context(name, rest, parent=ctx)
        command = sub
        path.append(name)
    return path


def reconcile_calls(script: str) -> list[list[str]]:
    """Every invocation of reconcile in a shell script, as its argument lists."""
    script = re.sub(r"\\\n\s*", " ", script)  # line continuations
    calls = []
    for line in script.splitlines():
        tokens = shlex.split(line, comments=True)
        for i, token in enumerate(tokens):
            if token == "reconcile" or token.endswith("/reconcile"):
                args = []
                for arg in tokens[i + 1 :]:
                    if arg in SHELL_STOP or arg.startswith((">", "2>")):
                        break
                    args.append(arg)
                calls.append(args)
    return calls


def check_calls(script: str) -> list[list[str]]:
    calls = reconcile_calls(script)
    for args in calls:
        try:
            parse_reconcile(args)
        except click.UsageError as exc:
            pytest.fail(f"`reconcile {' '.join(args)}`: {exc.format_message()}")
    return calls


def test_the_checker_rejects_what_the_cli_rejects() -> None:
    assert parse_reconcile(["history", "--limit", "2"]) == ["reconcile", "history"]
    assert parse_reconcile(["--dry-run", "-o", "junit=x.xml"]) == ["reconcile"]
    with pytest.raises(click.UsageError):
        parse_reconcile(["--no-such-option"])
    with pytest.raises(click.UsageError):
        parse_reconcile(["plan", "--output", "yaml"])


# -- GitHub Actions ---------------------------------------------------------------------


def _workflow() -> dict[Any, Any]:
    data = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(data, dict)
    return data


def test_workflow_has_the_triggers_and_jobs_github_requires() -> None:
    wf = _workflow()
    # YAML 1.1 reads a bare `on` key as true
    on: dict[str, Any] = wf["on"] if "on" in wf else wf[True]
    assert set(on) >= {"pull_request", "push", "schedule"}
    assert on["push"]["branches"] == ["main"]
    cron = on["schedule"][0]["cron"]
    assert len(cron.split()) == 5
    assert wf["jobs"], "a workflow needs jobs"
    for name, job in wf["jobs"].items():
        assert "runs-on" in job and job["steps"], name
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), step  # exactly one of them
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]


def test_pull_requests_get_the_plan_as_a_comment_and_main_applies() -> None:
    jobs = _workflow()["jobs"]
    plan, apply = jobs["plan"], jobs["apply"]
    assert "pull_request" in plan["if"] and "!=" not in plan["if"]
    assert plan["permissions"]["pull-requests"] == "write"
    runs = "\n".join(step.get("run", "") for step in plan["steps"])
    calls = check_calls(runs)
    assert [
        "--dry-run",
        "--detailed-exitcode",
        "--output",
        "github",
        "--output",
        "markdown=reconcile-plan.md",
        "--output",
        "junit=reconcile-junit.xml",
    ] in calls
    assert "gh pr comment" in runs and "--body-file reconcile-plan.md" in runs
    assert "!= 'pull_request'" in apply["if"]  # push to main and the schedule apply
    apply_calls = check_calls("\n".join(step.get("run", "") for step in apply["steps"]))
    assert apply_calls and all("--dry-run" not in call for call in apply_calls)
    assert any("--fail-on-drift" in call for call in apply_calls)
    assert apply["concurrency"]["cancel-in-progress"] is False


# -- pre-commit -------------------------------------------------------------------------


def test_pre_commit_hook_file() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert isinstance(hooks, list) and hooks
    languages = {"python", "system", "script", "docker", "docker_image"}
    for hook in hooks:
        assert {"id", "name", "entry", "language"} <= set(hook), hook
        assert hook["language"] in languages
        files = re.compile(hook["files"])
        assert files.search("sources.d/orders.yaml") and files.search("sources.d/a/b.yml")
        assert not files.search("README.md") and not files.search("src/sources.d.py")
        entry = shlex.split(hook["entry"])
        assert entry[0] == "reconcile"
        assert parse_reconcile(entry[1:] + hook.get("args", [])) == ["reconcile", "validate"]
        # validate reads the whole directory (names are unique across files): no file args
        assert hook["pass_filenames"] is False


# -- cron, systemd, Kubernetes ----------------------------------------------------------


def test_crontab_line() -> None:
    entries = [
        line
        for line in (CRON / "crontab").read_text().splitlines()
        if line.strip() and not line.startswith("#") and not re.match(r"^[A-Z_]+=", line)
    ]
    assert len(entries) == 1
    fields = entries[0].split(None, 5)
    assert len(fields) == 6 and all(re.fullmatch(r"[\d*/,-]+", f) for f in fields[:5])
    calls = check_calls(fields[5])
    assert calls and "--metrics-file" in calls[0] and "--report" in calls[0]


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string((CRON / name).read_text())
    return parser


def test_systemd_service_and_timer() -> None:
    service = _unit("reconciler.service")
    assert service["Service"]["Type"] == "oneshot"
    start = service["Service"]["ExecStart"]
    assert start.startswith("/") and check_calls(start)  # systemd wants an absolute path
    assert service["Service"]["ExecStartPre"].startswith("/")
    timer = _unit("reconciler.timer")
    assert timer["Timer"]["Unit"] == "reconciler.service"
    assert timer["Timer"]["OnCalendar"]
    assert timer["Install"]["WantedBy"] == "timers.target"


def test_kubernetes_cronjob() -> None:
    job = yaml.safe_load((CRON / "cronjob.yaml").read_text())
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "CronJob")
    assert len(job["spec"]["schedule"].split()) == 5
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] in ("Never", "OnFailure")
    volumes = {v["name"] for v in pod["volumes"]}
    for container in pod["initContainers"] + pod["containers"]:
        assert container["name"] and container["image"]
        assert {m["name"] for m in container.get("volumeMounts", [])} <= volumes
    (reconciler,) = [c for c in pod["containers"] if c["name"] == "reconcile"]
    assert "command" not in reconciler  # the image's ENTRYPOINT is `reconcile`
    assert parse_reconcile(reconciler["args"]) == ["reconcile"]
    assert reconciler["securityContext"]["runAsUser"] == 10001  # the Dockerfile's user


# -- Dockerfile -------------------------------------------------------------------------

INSTRUCTIONS = {
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
}


def _instructions(text: str) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_dockerfile() -> None:
    steps = _instructions((ROOT / "Dockerfile").read_text())
    assert all(keyword in INSTRUCTIONS for keyword, _ in steps), steps
    assert steps[0][0] == "FROM" and re.fullmatch(r"python:3\.1[1-9]-slim", steps[0][1])
    for keyword, rest in steps:
        if keyword == "COPY":
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), source
    assert any(k == "RUN" and "pip install /src" in rest for k, rest in steps)
    entry = [json.loads(rest) for k, rest in steps if k == "ENTRYPOINT"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entry == [["reconcile"]] and "reconcile" in scripts
    (cmd,) = [json.loads(rest) for k, rest in steps if k == "CMD"]
    assert parse_reconcile(cmd) == ["reconcile"]
    user = [rest for k, rest in steps if k == "USER"]
    assert user == ["10001"]  # not root
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv"} <= set(ignored)


# -- README -----------------------------------------------------------------------------


def test_readme_alert_rules_use_metrics_the_reconciler_writes(tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families
    from reports import apply_report, real_schema, with_schema

    from reconciler.reporters.prometheus import write_metrics

    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```yaml\n(\s*groups:.*?)```", readme, re.S)
    assert block, "README shows the alert rules"
    rules = yaml.safe_load(textwrap.dedent(block.group(1)))["groups"][0]["rules"]
    assert any("> 3600" in rule["expr"] for rule in rules)  # no successful run in 1 h

    prom = tmp_path / "m.prom"
    report = with_schema(apply_report(), real_schema())
    write_metrics(prom, report, code=0, kind="apply", owner="o", started=1.0, finished=2.0)
    written = {f.name for f in text_string_to_metric_families(prom.read_text())}
    for rule in rules:
        for name in re.findall(r"\breconciler_\w+", rule["expr"]):
            assert name in written, name
    for name in written:
        assert name in readme, f"{name} is not documented"


def test_readme_documents_every_command() -> None:
    readme = (ROOT / "README.md").read_text()

    def names(group: click.Group, prefix: str) -> list[str]:
        out = []
        for name, command in group.commands.items():
            out.append(f"{prefix}{name}")
            if isinstance(command, click.Group):
                out += names(command, f"{prefix}{name} ")
        return out

    for command in names(cli, "reconcile "):
        assert f"`{command}" in readme, command
