"""CI and cron through the CLI: several outputs at once, run reports, metrics, history,
--fail-on-drift, the GitHub job summary, progress and the schema export."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from conftest import init_registry, reconcile, sql_exec

from reconciler import progress
from reconciler.cli import cli


def metrics(path: Path) -> dict[str, float]:
    """The samples of a textfile, parsed by prometheus_client, keyed `name{action}`."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            action = sample.labels.get("action")
            out[sample.name + (f"{{{action}}}" if action else "")] = sample.value
            assert sample.labels["owner"] == "reconciler"
    return out


def history(*args: str, registry: str) -> Any:
    result = CliRunner().invoke(cli, ["history", *args, "--registry", registry])
    assert "Traceback" not in result.output
    return result


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'reg' / 'registry.db'}"


# -- several outputs at once --------------------------------------------------------------


def test_one_format_to_stdout_others_to_files(tmp_path: Path, sources: Path) -> None:
    out = tmp_path / "out"
    result = reconcile(
        "--dry-run",
        "-o",
        "text",
        "-o",
        f"json={out}/plan.json",
        "-o",
        f"junit={out}/junit.xml",
        "-o",
        f"markdown={out}/plan.md",
        "-o",
        f"github={out}/annotations.log",
        registry=sqlite_url(tmp_path),
        sources=sources,
    )
    assert result.exit_code == 0, result.output
    assert "Plan: 3 to create, 0 to update, 0 to delete." in result.stdout
    assert json.loads((out / "plan.json").read_text())["summary"]["create"] == 3
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "3" and suite.get("failures") == "0"
    assert (out / "plan.md").read_text().startswith("### reconciler plan")
    assert "::notice title=reconciler plan::" in (out / "annotations.log").read_text()
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # atomic writes leave no temporary files behind


def test_only_files_means_text_on_stdout(tmp_path: Path, sources: Path) -> None:
    result = reconcile(
        "plan", "-o", f"json={tmp_path}/p.json", registry=sqlite_url(tmp_path), sources=sources
    )
    assert result.exit_code == 0
    assert result.stdout.startswith("  + create")
    assert (tmp_path / "p.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "text", "-o", "json"], "only one format can go to stdout"),
        (["-o", "yaml"], "unknown format 'yaml'"),
        (["-o", "json="], "a path is missing"),
    ],
)
def test_bad_outputs_are_usage_errors(
    tmp_path: Path, sources: Path, args: list[str], message: str
) -> None:
    result = reconcile("plan", *args, registry=sqlite_url(tmp_path), sources=sources)
    assert result.exit_code == 1
    assert message in result.stderr


def test_invalid_manifests_reach_the_junit_file_too(tmp_path: Path, sources: Path) -> None:
    (sources / "bad.yaml").write_text("name: bad\nsource_type: mysql\nconnection: {}\n")
    junit = tmp_path / "junit.xml"
    result = reconcile(
        "--dry-run",
        "-o",
        "text",
        "-o",
        f"junit={junit}",
        registry=sqlite_url(tmp_path),
        sources=sources,
    )
    assert result.exit_code == 1
    assert "bad.yaml:2: source_type" in result.stderr
    failure = ET.parse(junit).getroot().find("testsuite/testcase/failure")
    assert failure is not None and failure.get("type") == "invalid-manifest"


def test_github_output_appends_the_markdown_job_summary(tmp_path: Path, sources: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    result = reconcile(
        "--dry-run",
        "-o",
        "github",
        registry=sqlite_url(tmp_path),
        sources=sources,
        GITHUB_STEP_SUMMARY=str(summary),
    )
    assert result.exit_code == 0
    assert result.stdout.startswith("::group::reconciler plan\n")
    assert "::notice title=reconciler plan::Plan: 3 to create" in result.stdout
    text = summary.read_text()
    assert text.startswith("earlier step\n### reconciler plan")
    assert "| ➕ create | <code>orders</code> | postgres |" in text


# -- cron: run report, metrics, --fail-on-drift, history ----------------------------------


def test_run_report_on_success_and_on_failure(tmp_path: Path, sources: Path) -> None:
    report = tmp_path / "reports" / "last-run.json"
    ok = reconcile("--report", str(report), registry=sqlite_url(tmp_path), sources=sources)
    assert ok.exit_code == 0
    data = json.loads(report.read_text())
    assert data["kind"] == "apply" and data["applied"]["created"] == 3
    assert data["run"]["exit_code"] == 0 and data["run"]["success"] is True
    assert data["run"]["error"] is None and data["run"]["duration_seconds"] >= 0

    failed = reconcile(
        "--report", str(report), registry="mysql://nowhere/registry", sources=sources
    )
    assert failed.exit_code == 1
    data = json.loads(report.read_text())
    assert data["run"]["success"] is False and data["run"]["exit_code"] == 1
    assert "unsupported registry URL" in data["run"]["error"]
    assert data["kind"] == "apply" and "plan" not in data


def test_metrics_file_carries_the_values_of_the_run(tmp_path: Path, sources: Path) -> None:
    prom = tmp_path / "textfile" / "reconciler.prom"
    url = sqlite_url(tmp_path)
    before = time.time()
    planned = reconcile("--dry-run", "--metrics-file", str(prom), registry=url, sources=sources)
    assert planned.exit_code == 0
    m = metrics(prom)
    assert before <= m["reconciler_last_run_timestamp_seconds"] <= time.time()
    assert m["reconciler_last_run_success"] == 1
    assert (
        m["reconciler_last_success_timestamp_seconds"] == m["reconciler_last_run_timestamp_seconds"]
    )
    assert m["reconciler_changes{create}"] == 3 and m["reconciler_changes{update}"] == 0
    assert m["reconciler_drifted_records"] == 0 and m["reconciler_conflicts"] == 0
    assert 0 <= m["reconciler_last_run_duration_seconds"] < 60

    reconcile(registry=url, sources=sources)
    sql_exec(url, "UPDATE sources SET description = 'edited by hand' WHERE name = 'events'")
    applied = reconcile(
        "--fail-on-drift", "--metrics-file", str(prom), registry=url, sources=sources
    )
    assert applied.exit_code == 2  # converged, but someone edited the registry by hand
    m = metrics(prom)
    assert m["reconciler_last_run_exit_code"] == 2 and m["reconciler_last_run_success"] == 1
    assert m["reconciler_drifted_records"] == 1
    assert m["reconciler_changes{update}"] == 1 and m["reconciler_changes{noop}"] == 2
    succeeded_at = m["reconciler_last_success_timestamp_seconds"]

    (sources / "bad.yaml").write_text("name: [\n")
    failed = reconcile("--metrics-file", str(prom), registry=url, sources=sources)
    assert failed.exit_code == 1
    m = metrics(prom)
    assert m["reconciler_last_run_success"] == 0
    assert m["reconciler_last_success_timestamp_seconds"] == succeeded_at  # carried over
    assert m["reconciler_last_run_timestamp_seconds"] > succeeded_at
    assert m["reconciler_invalid_manifest_problems"] >= 1


def test_fail_on_drift_only_when_asked_and_only_on_drift(tmp_path: Path, sources: Path) -> None:
    url = sqlite_url(tmp_path)
    assert reconcile("--fail-on-drift", registry=url, sources=sources).exit_code == 0
    sql_exec(url, "UPDATE sources SET description = 'edited by hand' WHERE name = 'events'")
    assert reconcile("--dry-run", registry=url, sources=sources).exit_code == 0
    assert reconcile("plan", "--fail-on-drift", registry=url, sources=sources).exit_code == 2
    assert reconcile("apply", "--fail-on-drift", registry=url, sources=sources).exit_code == 2
    assert reconcile("--fail-on-drift", registry=url, sources=sources).exit_code == 0  # repaired


def test_history_lists_runs_with_counts_and_duration(registry_url: str, sources: Path) -> None:
    init_registry(registry_url)  # a registry that does not exist is an error
    empty = history(registry=registry_url)
    assert empty.exit_code == 0 and empty.stdout.startswith("No runs recorded in ")
    reconcile(registry=registry_url, sources=sources, RECONCILER_ACTOR="cron@ops-1")
    (sources / "events.yaml").unlink()
    reconcile("--prune", registry=registry_url, sources=sources, RECONCILER_ACTOR="ci")

    result = history("--output", "json", registry=registry_url)
    assert result.exit_code == 0
    runs: list[dict[str, Any]] = json.loads(result.stdout)["runs"]
    assert [(r["actor"], r["created"], r["deleted"], r["outcome"]) for r in runs] == [
        ("ci", 0, 1, "success"),
        ("cron@ops-1", 3, 0, "success"),
    ]
    assert all(r["duration_seconds"] >= 0 and r["owner"] == "reconciler" for r in runs)
    assert runs[0]["started_at"] >= runs[1]["started_at"]

    text = history("--limit", "1", registry=registry_url)
    lines = text.stdout.splitlines()
    assert lines[0].split() == [
        "STARTED",
        "(UTC)",
        "OWNER",
        "ACTOR",
        "CHANGES",
        "OUTCOME",
        "DURATION",
        "MESSAGE",
    ]
    assert len(lines) == 2 and "reconciler  ci" in lines[1] and "+0 ~0 -1" in lines[1]
    assert "success" in lines[1] and lines[1].rstrip().endswith("s")


def test_history_rejects_report_formats(tmp_path: Path) -> None:
    result = history("-o", "junit", registry=sqlite_url(tmp_path))
    assert result.exit_code == 1 and "'junit' is not one of" in result.output


# -- progress -----------------------------------------------------------------------------


def test_progress_only_when_asked_outside_a_terminal(tmp_path: Path, sources: Path) -> None:
    url = sqlite_url(tmp_path)
    quiet = reconcile(registry=url, sources=sources)
    assert "Loading manifests" not in quiet.stderr
    (sources / "more.yaml").write_text(
        "\n---\n".join(
            f"name: extra{i}\nsource_type: csv\nconnection: {{file_path: /d{i}}}" for i in range(5)
        )
    )
    shown = reconcile("--progress", registry=url, sources=sources)
    assert shown.exit_code == 0
    assert "Loading manifests: 4/4 (100%)" in shown.stderr
    assert "Applying changes: 5/5 (100%)" in shown.stderr
    assert "Applying" not in shown.stdout  # stdout stays clean for pipes


class _Tty:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_progress_auto_mode_needs_a_terminal_and_no_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    progress.configure(None)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(progress, "_stream", lambda: _Tty(True))
    assert progress._show(progress.AUTO_THRESHOLD)
    assert not progress._show(3)  # short work: no bar
    monkeypatch.setenv("CI", "true")
    assert not progress._show(1000)
    monkeypatch.delenv("CI")
    monkeypatch.setattr(progress, "_stream", lambda: _Tty(False))
    assert not progress._show(1000)
    progress.configure(False)
    assert not progress._show(1000)
    progress.configure(None)


# -- schema export ------------------------------------------------------------------------


def test_schema_export_is_self_contained_and_validates_manifests(tmp_path: Path) -> None:
    from jsonschema import Draft202012Validator

    result = CliRunner().invoke(cli, ["schema-export"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    refs = [ref for ref in _refs(schema)]
    assert refs and all(ref.startswith("#/$defs/") for ref in refs)  # nothing outside the file
    validator = Draft202012Validator(schema)
    repo = Path(__file__).parent.parent
    for manifest in sorted((repo / "sources.d").glob("*.yaml")):
        first = manifest.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema=")  # editors find it
        assert (manifest.parent / first.split("$schema=")[1]).resolve().is_file()
        assert list(validator.iter_errors(yaml.safe_load(manifest.read_text()))) == []
    bad = {"name": "x", "source_type": "postgres", "connection": {"host": "h", "port": "no"}}
    assert list(validator.iter_errors(bad))  # the connection schema is applied, inlined

    out = tmp_path / "schema" / "source.json"
    result = CliRunner().invoke(
        cli, ["schema-export", "--out", str(out), "--out-dir", str(tmp_path / "all")]
    )
    assert result.exit_code == 0 and json.loads(out.read_text()) == schema
    shipped = sorted(p.name for p in (repo / "schemas").glob("*.schema.json"))
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == shipped


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_metrics_count_unaccepted_breaking_changes_and_unreachable_sources(
    tmp_path: Path,
) -> None:
    from reports import apply_report, real_schema, with_schema

    from reconciler.reporters.prometheus import write_metrics

    prom = tmp_path / "m.prom"
    report = with_schema(apply_report(), real_schema())
    write_metrics(prom, report, code=3, kind="apply", owner="reconciler", started=10, finished=12)
    m = metrics(prom)
    assert m["reconciler_schema_breaking_changes"] == 1  # the accepted one does not count
    assert m["reconciler_schema_unreachable_sources"] == 1
    assert m["reconciler_last_run_exit_code"] == 3 and m["reconciler_last_run_success"] == 1
    assert m["reconciler_last_run_duration_seconds"] == 2
    assert m["reconciler_refused_records"] == 1 and m["reconciler_conflicts"] == 1
    without = tmp_path / "n.prom"
    write_metrics(
        without, apply_report(), code=0, kind="apply", owner="reconciler", started=1, finished=2
    )
    assert "reconciler_schema_breaking_changes" not in metrics(without)
