"""Saved plans: apply exactly what was reviewed, or refuse because something moved.

A saved plan holds the plan (secret references and "(sensitive)" markers only, never a
value), the digest of the manifests it was computed from and each record's version.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from reconciler.errors import ReconcilerError
from reconciler.models import Manifest, Plan, Record
from reconciler.planning.plan import desired_document

FORMAT = "reconciler-plan/1"


class StalePlan(ReconcilerError):
    """The registry or the manifests changed since the plan was saved."""


class SavedPlan(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: str = FORMAT
    created_at: datetime
    registry: str
    sources_dir: str
    manifests_digest: str
    plan: Plan


def manifests_digest(manifests: Sequence[Manifest]) -> str:
    """A digest of what the manifests mean (canonical documents), not of their formatting."""
    docs = sorted((desired_document(m) for m in manifests), key=lambda d: d["name"].casefold())
    blob = json.dumps(docs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()


def save(path: Path, saved: SavedPlan) -> None:
    """Write atomically, so a reviewer never applies half a file."""
    # Not scrubbed as text: a plan holds references and `(sensitive)` markers, never values,
    # and text replacement of a secret like `null` would make the file unloadable.
    text = saved.model_dump_json(indent=2) + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise ReconcilerError(f"cannot write plan file {path}: {exc.strerror}") from None


def load(path: Path) -> SavedPlan:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ReconcilerError(f"cannot read plan file {path}: {reason}") from None
    try:
        saved = SavedPlan.model_validate_json(text)
    except ValidationError:
        raise ReconcilerError(
            f"{path} is not a saved plan (write one with `reconcile plan --out {path}`)"
        ) from None
    if saved.format != FORMAT:
        raise ReconcilerError(
            f"{path}: unsupported plan format {saved.format!r} (expected {FORMAT})"
        )
    return saved


def check_fresh(saved: SavedPlan, *, registry: str, digest: str, records: Sequence[Record]) -> None:
    """Refuse unless the registry and the manifests are exactly as when the plan was made."""
    if saved.registry != registry:
        raise StalePlan(
            f"the saved plan was made for registry {saved.registry}, not {registry}; "
            "nothing was written"
        )
    if saved.manifests_digest != digest:
        raise StalePlan(
            f"the manifests in {saved.sources_dir} changed since the plan was saved; "
            "nothing was written. Run `reconcile plan --out ...` again."
        )
    live = {r.name.casefold(): r for r in records}
    moved: list[str] = []
    for change in saved.plan.pending:
        current = live.get(change.name.casefold())
        if change.action == "create" and current is not None:
            moved.append(f"{change.name} (now exists)")
        elif change.action != "create" and (
            current is None or current.id != change.record_id or current.version != change.version
        ):
            now = "deleted" if current is None else f"version {current.version}"
            moved.append(f"{change.name} (version {change.version} → {now})")
    if moved:
        raise StalePlan(
            "the registry changed since the plan was saved: "
            + ", ".join(moved)
            + "; nothing was written. Run `reconcile plan --out ...` again."
        )


def now() -> datetime:
    return datetime.now(UTC)
