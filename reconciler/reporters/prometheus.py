"""`--metrics-file`: the run as Prometheus metrics for node_exporter's textfile collector.

Written with prometheus_client (atomically: a temporary file renamed over the old one), so
the collector never scrapes half a file. A cron job overwrites the file every run; the time
of the last *successful* run is carried over from the previous file when this run failed,
which is what a "no successful run in 1 h" alert needs.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.errors import EXIT_ERROR
from reconciler.reporters.ci_findings import breaking, conflicted, schema_findings, unreachable
from reconciler.reporters.escaping import label_value
from reconciler.reporters.model import Report

PREFIX = "reconciler"
ACTIONS = ("create", "update", "replace", "delete", "noop")


def write_metrics(
    path: Path,
    report: Report | None,
    *,
    code: int,
    kind: str,
    owner: str,
    started: float,
    finished: float,
) -> None:
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    from reconciler.files import check_target, write_atomic

    check_target(path)  # before reading the previous metrics: a FIFO there would block
    registry = CollectorRegistry()
    labels = {"owner": label_value(owner), "kind": label_value(kind)}
    gauges: dict[str, Gauge] = {}

    def gauge(name: str, doc: str, value: float, **extra: str) -> None:
        if name not in gauges:
            names = [*labels, *extra]
            gauges[name] = Gauge(f"{PREFIX}_{name}", doc, names, registry=registry)
        gauges[name].labels(**labels, **extra).set(value)

    success = code != EXIT_ERROR
    last_success = finished if success else _previous_success(path, owner, kind)
    gauge("last_run_timestamp_seconds", "When the last run finished (Unix time).", finished)
    gauge("last_run_success", "1 if the last run succeeded (exit code not 1), else 0.", success)
    gauge("last_run_exit_code", "Exit code of the last run.", code)
    gauge("last_run_duration_seconds", "Wall time of the last run.", finished - started)
    if last_success is not None:
        gauge(
            "last_success_timestamp_seconds",
            "When a run last succeeded (Unix time); carried over by failed runs.",
            last_success,
        )
    if report is None:
        write_atomic(path, generate_latest(registry))
        return
    gauge("invalid_manifest_problems", "Problems found in the manifests.", len(report.problems))
    plan = report.plan
    if plan is not None:
        for action in ACTIONS:
            gauge(
                "changes",
                "Changes in the last run's plan, by action.",
                plan.count(action),  # type: ignore[arg-type]
                action=action,
            )
        gauge(
            "drifted_records",
            "Records changed, deleted or added outside git.",
            len(plan.drifted) + len(plan.added_out_of_band),
        )
        gauge("conflicts", "Records changed both in git and outside git.", len(conflicted(plan)))
        gauge("blocked_sources", "Sources that cannot be applied.", len(plan.blocked))
        gauge(
            "prune_refused", "1 if the prune guard refused the deletions.", plan.guard is not None
        )
        gauge(
            "unmanaged_records", "Live records owned by no one or by others.", len(plan.unmanaged)
        )
    if report.result is not None:
        gauge("refused_records", "Records apply refused (conflicts).", len(report.result.refused))
    if report.schema is not None:
        findings = schema_findings(report)
        gauge(
            "schema_breaking_changes",
            "Unaccepted breaking schema changes.",
            sum(1 for f in findings if breaking(f)),
        )
        gauge(
            "schema_unreachable_sources",
            "Sources whose table could not be introspected.",
            len({source.name for source, finding in findings if unreachable(finding)}),
        )
    write_atomic(path, generate_latest(registry))


def _previous_success(path: Path, owner: str, kind: str) -> float | None:
    """The last success time recorded in the file this run replaces, if any."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    from prometheus_client.parser import text_string_to_metric_families

    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if (
                    sample.name == f"{PREFIX}_last_success_timestamp_seconds"
                    and sample.labels.get("owner") == label_value(owner)
                    and sample.labels.get("kind") == label_value(kind)
                ):
                    return float(sample.value)
    except ValueError:  # a damaged file: start afresh
        return None
    return None
