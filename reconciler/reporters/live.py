"""`reconcile list` and `reconcile show`: live records as a table, a detail view, or JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from reconciler.reporters.escaping import json_text, visible
from reconciler.reporters.model import FORMAT_VERSION

if TYPE_CHECKING:  # the values only; rendering needs nothing of the workflow at run time
    from reconciler.workflow.live import Live, LiveRecord

_COLUMNS = ("NAME", "TYPE", "OWNER", "STATE", "APPLIED (UTC)", "RUN")


@dataclass(frozen=True)
class _Table:
    rows: Sequence[Sequence[str]]

    def render(self) -> str:
        widths = [max(len(row[i]) for row in self.rows) for i in range(len(self.rows[0]))]
        lines = (
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in self.rows
        )
        return "\n".join(line.rstrip() for line in lines) + "\n"


def record_dict(record: LiveRecord) -> dict[str, Any]:
    """The record's fields in their declared order, times as ISO 8601, tags as a list."""
    data = asdict(record)
    data.update(
        applied_at=_iso(record.applied_at),
        registered_at=_iso(record.registered_at),
        tags=list(record.tags),
    )
    return data


def render_list(live: Live, fmt: str) -> str:
    if fmt == "json":
        return _json("list", live, {"records": [record_dict(r) for r in live.records]})
    if not live.records:
        return f"No records in {live.registry}.\n"
    rows = [_COLUMNS, *(tuple(visible(c) for c in _row(r)) for r in live.records)]
    return _Table(rows).render()


def render_show(live: Live, record: LiveRecord, fmt: str) -> str:
    if fmt == "json":
        return _json("show", live, {"record": record_dict(record)})
    fields: list[tuple[str, str]] = [
        ("Name", record.name),
        ("ID", record.id),
        ("Type", record.source_type),
        ("Owner", record.owner or "(unmanaged)"),
        ("State", record.state),
        ("Applied", _when(record.applied_at)),
        ("Run", record.run_id or "-"),
        ("Version", str(record.version)),
        ("Manifest", f"{record.file}:{record.line}" if record.file else "-"),
        ("Description", record.description or "-"),
        ("Tags", ", ".join(record.tags) or "-"),
    ]
    lines = [f"{label + ':':<13}{visible(value)}" for label, value in fields]
    lines.append("Connection:")
    for key in sorted(record.connection):
        value = json.dumps(record.connection[key], ensure_ascii=False, sort_keys=True)
        lines.append(f"  {visible(key)}: {visible(value)}")
    return "\n".join(lines) + "\n"


def _json(kind: str, live: Live, body: dict[str, Any]) -> str:
    data = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "registry": live.registry,
        "owner": live.owner,
        "states_checked": live.checked,
        **body,
    }
    return json_text(json.dumps(data, indent=2, ensure_ascii=False)) + "\n"


def _row(record: LiveRecord) -> tuple[str, ...]:
    return (
        record.name,
        record.source_type,
        record.owner or "(unmanaged)",
        record.state,
        _when(record.applied_at),
        record.run_id or "-",
    )


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
