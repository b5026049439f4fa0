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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from reconciler import progress
from reconciler.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK
from reconciler.redaction import REDACTOR
from reconciler.reporters import FORMAT_VERSION, FORMATS, Report, render

_KEY = "reconciler.session"


@dataclass(frozen=True)
class Target:
    """One `--output` value: a format, to stdout (path None) or to a file."""

    format: str
    path: Path | None = None

    def __str__(self) -> str:
        return self.format if self.path is None else f"{self.format}={self.path}"


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


def attach(ctx: click.Context, merged: dict[str, Any]) -> dict[str, Any]:
    """Read the delivery options of a command's settings; `merged["output"]` becomes the
    stdout format (a string), the file targets go to the session kept on the context."""
    targets = merged.get("output") or "text"
    if isinstance(targets, str | Target):
        targets = (targets,)
    parsed = [t if isinstance(t, Target) else Target(str(t)) for t in targets]
    stdout = [t.format for t in parsed if t.path is None]
    merged["output"] = stdout[0] if stdout else "text"
    from reconciler.backends import redact_url

    ctx.meta[_KEY] = Session(
        stdout=merged["output"],
        files=tuple(t for t in parsed if t.path is not None),
        report_path=merged.get("report"),
        metrics_path=merged.get("metrics_file"),
        fail_on_drift=bool(merged.get("fail_on_drift")),
        owner=str(merged.get("owner") or ""),
        registry=redact_url(str(merged.get("registry") or "")),
        sources_dir=Path(merged.get("sources_dir") or ".").as_posix(),
    )
    progress.configure(merged.get("progress"))
    return merged


def current() -> Session | None:
    ctx = click.get_current_context(silent=True)
    session = ctx.meta.get(_KEY) if ctx is not None else None
    return session if isinstance(session, Session) else None


def rendered(fmt: str, report: Report, *, color: bool = False) -> str:
    """A report in a format. Never scrubbed as text: its values are references and
    `(sensitive)` markers already, and its free text was scrubbed where it was made."""
    return render(fmt, report, color=color)


def write_atomic(path: Path, text: str) -> None:
    """Write a file so that readers see the old content or the new, never a partial one."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def finish(code: int, *, kind: str, error: str = "") -> int:
    """End of a command: the final exit code, the run report and the metrics file."""
    session = current()
    progress.configure(None)
    if session is None:
        return code
    report = session.report
    plan = report.plan if report is not None else None
    if session.fail_on_drift and code == EXIT_OK and plan is not None and plan.has_drift:
        code = EXIT_CHANGES
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
