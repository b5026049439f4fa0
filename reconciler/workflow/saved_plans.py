"""Saved plans: apply exactly what was reviewed, or refuse because something moved.

A saved plan holds the plan (secret references and "(sensitive)" markers only, never a
value), the options it was computed with, the digest of the manifests and each record's
version, and a MAC keyed by the registry's own key. The file travels as a CI artifact, so
nothing in it is trusted at apply: the plan is computed again from the manifests and the
registry with the saved options and must equal the saved one; what is written comes from
that recomputed plan, never from the file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reconciler.errors import ReconcilerError
from reconciler.files import write_atomic
from reconciler.manifests.documents import SECRET_CHANGED, desired_document
from reconciler.models import Frozen, Manifest, Plan, Record

FORMAT = "reconciler-plan/2"
_MAC_LABEL = b"reconciler saved plan\x00"  # keeps plan MACs apart from secret fingerprints
_AGAIN = "nothing was written. Run `reconcile plan --out ...` again."


class StalePlan(ReconcilerError):
    """The registry or the manifests changed since the plan was saved."""


class TamperedPlan(ReconcilerError):
    """The plan file is not what `reconcile plan --out` wrote."""


class PlanOptions(Frozen):
    """The options that decide what a plan contains; apply recomputes with these."""

    owner: str
    prune: bool
    max_deletes: int
    force_deletes: bool
    force_conflicts: bool
    force_replaces: bool = False
    select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


class SavedPlan(Frozen):
    format: str = FORMAT
    created_at: datetime
    registry: str
    sources_dir: str
    manifests_digest: str
    options: PlanOptions
    plan: Plan
    # HMAC-SHA256 over the canonical file content, keyed by the registry's key; None when
    # the registry did not exist yet when the plan was made (it then has no key).
    mac: str | None = None


def manifests_digest(manifests: Sequence[Manifest]) -> str:
    """A digest of what the manifests mean (canonical documents), not of their formatting."""
    docs = sorted((desired_document(m) for m in manifests), key=lambda d: d["name"].casefold())
    blob = json.dumps(docs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature(key: bytes, content: dict[str, Any]) -> str:
    body = {k: v for k, v in content.items() if k != "mac"}
    return hmac.new(key, _MAC_LABEL + _canonical(body), hashlib.sha256).hexdigest()


def save(path: Path, saved: SavedPlan, key: bytes | None) -> None:
    """Write atomically, so a reviewer never applies half a file; sign it with `key`."""
    # Not scrubbed as text: a plan holds references and `(sensitive)` markers, never values,
    # and text replacement of a secret like `null` would make the file unloadable.
    content = json.loads(saved.model_dump_json(exclude={"mac"}))
    if key is not None:
        content["mac"] = signature(key, content)
    text = json.dumps(content, indent=2, ensure_ascii=False) + "\n"
    try:
        write_atomic(path, text)
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


def verify_mac(saved: SavedPlan, key: bytes | None, *, registry_was_new: bool) -> None:
    """Refuse a file whose MAC does not match the registry's key (any edit of the file).

    An unsigned plan is accepted only if the registry had no key when this apply began
    (it did not exist at plan time either); recomputing the plan still decides what is
    written.
    """
    if saved.mac is None:
        if key is None or registry_was_new:
            return
        raise TamperedPlan(
            "the saved plan is not signed by this registry (was it edited?); " + _AGAIN
        )
    content = json.loads(saved.model_dump_json())
    if key is None or not hmac.compare_digest(saved.mac, signature(key, content)):
        raise TamperedPlan(
            "the saved plan was modified after `reconcile plan --out` wrote it "
            "(its signature does not match); " + _AGAIN
        )


def check_fresh(saved: SavedPlan, *, registry: str, digest: str, records: Sequence[Record]) -> None:
    """Refuse unless the registry and the manifests are exactly as when the plan was made."""
    if saved.registry != registry:
        raise StalePlan(
            f"the saved plan was made for registry {saved.registry}, not {registry}; "
            "nothing was written"
        )
    if saved.manifests_digest != digest:
        raise StalePlan(
            f"the manifests in {saved.sources_dir} changed since the plan was saved; " + _AGAIN
        )
    live = {r.name.casefold(): r for r in records}
    by_id = {r.id: r for r in records}  # a rename changes the name, never the id
    moved: list[str] = []
    for change in saved.plan.pending:
        if change.action == "create":
            current = live.get(change.name.casefold())
        else:
            current = by_id.get(change.record_id or "")
        if change.action == "create" and current is not None:
            moved.append(f"{change.name} (now exists)")
        elif change.action != "create" and (
            current is None or current.id != change.record_id or current.version != change.version
        ):
            now = "deleted" if current is None else f"version {current.version}"
            moved.append(f"{change.name} (version {change.version} → {now})")
    if moved:
        raise StalePlan(
            "the registry changed since the plan was saved: " + ", ".join(moved) + "; " + _AGAIN
        )


def check_same(saved: SavedPlan, recomputed: Plan) -> None:
    """The plan computed now must be exactly the saved one (both hold references and
    `(sensitive)` markers, never values: compared as they are, not scrubbed as text).

    One difference is expected: a secret that could not be resolved when the plan was made
    (CI plans a pull request without production secrets) is listed as unknown there; at
    apply it is known, and a rotation of it is what "unknown" promised, not a change.
    """
    now = json.loads(recomputed.model_dump_json())
    was = json.loads(saved.plan.model_dump_json())
    unknown = {c["name"].casefold(): c for c in was["changes"] if c["unknown"]}
    for change in now["changes"]:
        before = unknown.get(change["name"].casefold())
        if before is None:
            continue
        paths = set(before["unknown"])
        change["fields"] = [
            f for f in change["fields"] if not (f["path"] in paths and f["new"] == SECRET_CHANGED)
        ]
        change["unknown"] = sorted(paths | set(change["unknown"]))
        if before["action"] == "noop" and not change["fields"]:
            change["action"] = "noop"
    if _canonical(now) != _canonical(was):
        raise StalePlan(
            "the saved plan is not what the manifests and the registry produce now "
            "(the file was edited, or the registry changed); " + _AGAIN
        )


def now() -> datetime:
    return datetime.now(UTC)


def refusal(plan: Plan) -> str | None:
    """Why `reconcile apply` would refuse this plan (or part of it); None if it would not.

    A plan that apply would refuse is not saved: the file would promise what cannot happen.
    """
    if plan.blocked:
        return "; ".join(f"{b.name}: {b.reason}" for b in plan.blocked)
    if plan.guard:
        return plan.guard
    conflicted = [c.name for c in plan.changes if c.conflicts]
    if conflicted and not plan.force_conflicts:
        return "changed both in git and outside git (--force-conflicts): " + ", ".join(conflicted)
    return None
