"""Where a run's report goes: stdout, files, the GitHub job summary, the run report, metrics.

The CLI renders one Report per run. This module delivers it: one format to stdout (the CLI's
`emit`), every `--output FORMAT=PATH` to its file, the Markdown summary to
`$GITHUB_STEP_SUMMARY` when the `github` format is asked for, and, when the run ends,
`--report` (the JSON report plus how the run ended) and `--metrics-file`. Files are written
atomically (a reader sees the old file or the new one, never half of one). Secrets are kept
out structurally (see reconciler/redaction.py), not by scrubbing the rendered text.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click

from reconciler import progress
from reconciler.cli.settings import Target
from reconciler.exit_codes import EXIT_ERROR, EXIT_OK, with_drift_failure
from reconciler.files import UnsafePath, check_target, write_atomic
from reconciler.redaction import REDACTOR
from reconciler.reporters import FORMAT_VERSION, FORMATS, Report, render

if TYPE_CHECKING:
    from reconciler.cli.settings import Settings

_KEY = "reconciler.session"


# click.ParamType is generic in recent click only; subscripting it would break older ones.
class TargetType(click.ParamType):  # type: ignore[type-arg]
    """`--output FORMAT` (stdout) or `--output FORMAT=PATH` (a file)."""

    name = "FORMAT[=PATH]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, Target):
            return value
        fmt, sep, path = str(value).partition("=")
        if fmt not in FORMATS:
            self.fail(
                f"unknown format '{fmt}' (expected one of: {', '.join(FORMATS)}, "
                "optionally as FORMAT=PATH)",
                param,
                ctx,
            )
        if sep and not path:
            self.fail(f"'{value}': a path is missing after '='", param, ctx)
        return Target(fmt, Path(path) if path else None)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "[" + "|".join(FORMATS) + "][=PATH]"


def check_targets(
    ctx: click.Context, param: click.Parameter, value: tuple[Target, ...] | None
) -> tuple[Target, ...] | None:
    """Click callback: at most one format may go to stdout."""
    if value and sum(1 for t in value if t.path is None) > 1:
        raise click.BadParameter(
            "only one format can go to stdout; write the others to files: "
            "--output text --output json=report.json",
            ctx,
            param,
        )
    return value


@dataclass
class Session:
    """One command's delivery settings and what it has produced so far."""

    stdout: str = "text"
    files: tuple[Target, ...] = ()
    report_path: Path | None = None
    metrics_path: Path | None = None
    fail_on_drift: bool = False
    owner: str = ""
    registry: str = ""
    sources_dir: str = ""
    started: float = field(default_factory=time.time)
    report: Report | None = None
    write_failed: bool = False

    @property
    def formats(self) -> set[str]:
        return {self.stdout, *(t.format for t in self.files)}


def attach(ctx: click.Context, settings: Settings) -> None:
    """Keep the delivery options of a command's settings on its context, for `finish`."""
    from reconciler.backends import redact_url

    ctx.meta[_KEY] = Session(
        stdout=settings.stdout,
        files=settings.files,
        report_path=settings.report,
        metrics_path=settings.metrics_file,
        fail_on_drift=settings.fail_on_drift,
        owner=settings.owner,
        registry=redact_url(settings.registry),
        sources_dir=settings.sources_dir.as_posix(),
    )
    progress.configure(settings.progress, terminal=terminal_bar)


def terminal_bar(label: str, total: int, stream: TextIO) -> AbstractContextManager[Any]:
    """The progress bar a person watching a terminal sees (progress.py decides when)."""
    return click.progressbar(length=total, label=label, file=stream, show_pos=True, show_eta=True)


def preflight() -> None:
    """Before any work: refuse an output path that is a symlink, FIFO or device, so a run
    does not write the registry and only then find it cannot deliver its report."""
    session = current()
    if session is None:
        return
    paths = [t.path for t in session.files if t.path is not None]
    paths += [p for p in (session.report_path, session.metrics_path) if p is not None]
    for path in paths:
        try:
            check_target(path)
        except UnsafePath:
            # Not written at the end either (the error is said once).
            session.files = tuple(t for t in session.files if t.path != path)
            if session.report_path == path:
                session.report_path = None
            if session.metrics_path == path:
                session.metrics_path = None
            raise


def current() -> Session | None:
    ctx = click.get_current_context(silent=True)
    session = ctx.meta.get(_KEY) if ctx is not None else None
    return session if isinstance(session, Session) else None


def rendered(fmt: str, report: Report, *, color: bool = False) -> str:
    """A report in a format. Never scrubbed as text: its values are references and
    `(sensitive)` markers already, and its free text was scrubbed where it was made."""
    return render(fmt, report, color=color)


def deliver(report: Report) -> None:
    """Everything but stdout: the --output files and the GitHub job summary."""
    session = current()
    if session is None:
        return
    session.report = report
    for target in session.files:
        assert target.path is not None
        _guarded(
            session, target.path, lambda p, t=target: write_atomic(p, rendered(t.format, report))
        )
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary and "github" in session.formats:
        _guarded(session, Path(summary), lambda p: _append(p, rendered("markdown", report)))


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text + "\n")


def _guarded(session: Session, path: Path, write: Any) -> None:
    try:
        write(path)
    except OSError as exc:
        session.write_failed = True
        reason = exc.strerror or str(exc)
        click.echo(f"error: cannot write {path}: {reason}", err=True)
    except UnsafePath as exc:
        session.write_failed = True
        click.echo(f"error: {exc}", err=True)


def finish(code: int, *, kind: str, error: str = "") -> int:
    """End of a command: the final exit code, the run report and the metrics file."""
    session = current()
    progress.configure(None)
    if session is None:
        return code
    report = session.report
    plan = report.plan if report is not None else None
    code = with_drift_failure(code, plan, fail_on_drift=session.fail_on_drift)
    finished = time.time()
    if session.report_path is not None:
        text = run_report(session, code, kind=kind, error=error, finished=finished)
        _guarded(session, session.report_path, lambda p: write_atomic(p, text))
    if session.metrics_path is not None:
        from reconciler.reporters.prometheus import write_metrics

        _guarded(
            session,
            session.metrics_path,
            lambda p: write_metrics(
                p,
                report,
                code=code,
                kind=kind,
                owner=session.owner,
                started=session.started,
                finished=finished,
            ),
        )
    if session.write_failed and code == EXIT_OK:
        code = EXIT_ERROR
    return code


def run_report(session: Session, code: int, *, kind: str, error: str, finished: float) -> str:
    """`--report`: the JSON report of the run, plus how it ended; written even on failure."""
    if session.report is not None:
        from reconciler.reporters.json_report import report_dict

        data = report_dict(session.report)
    else:
        data = {
            "format_version": FORMAT_VERSION,
            "kind": kind,
            "registry": session.registry,
            "sources_dir": session.sources_dir,
        }
    from reconciler.actor import actor

    data["run"] = {
        "exit_code": code,
        "success": code != EXIT_ERROR,
        "error": REDACTOR.scrub(error) if error else None,
        "owner": session.owner,
        "actor": actor(),
        "started_at": _iso(session.started),
        "finished_at": _iso(finished),
        "duration_seconds": round(finished - session.started, 3),
    }
    return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
