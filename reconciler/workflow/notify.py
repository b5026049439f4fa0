"""--notify URL: tell a human when a cron run needs one, once per distinct finding.

A finding is drift, a conflict, a breaking schema change or a failed apply. Each has a
digest; the digests already notified are kept in the registry (`registry_meta`, or the
state store of an API registry), so the next identical run posts nothing and a new finding
posts again. One POST per run, Slack-compatible (`{"text": ...}`), bounded (timeout, no
redirects). The message names sources and field paths, never values: no secret can be in
it (free text such as an error is scrubbed as well). The URL itself is a secret (a Slack
webhook is a credential): it is registered with the redactor and shown only redacted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from reconciler.backends import open_registry
from reconciler.backends.base import ConnectOptions
from reconciler.backends.sql.shared import SqlRegistry
from reconciler.errors import ReconcilerError
from reconciler.redaction import REDACTOR, redact_url, url_secrets

if TYPE_CHECKING:
    from reconciler.models import Plan
    from reconciler.tableschema.report import SchemaReport

MAX_LINES = 20  # the rest is counted, so one message stays readable


@dataclass(frozen=True)
class Finding:
    kind: str  # drift, conflict, schema, failed
    subject: str  # the source (or the run, for a failed apply)
    detail: str  # what; display-safe (paths, verdicts, a scrubbed error)
    # What makes it distinct beyond the text (e.g. the drifted values' display forms).
    identity: str = ""

    @property
    def digest(self) -> str:
        key = json.dumps([self.kind, self.subject, self.detail, self.identity])
        return hashlib.sha256(key.encode()).hexdigest()

    @property
    def line(self) -> str:
        return f"{self.kind}: {self.subject}: {self.detail}"


def findings(
    plan: Plan | None, schema: SchemaReport | None = None, error: str | None = None
) -> list[Finding]:
    """What in this run needs a human."""
    found: list[Finding] = []
    if plan is not None:
        for change in plan.changes:
            if change.conflicts:
                paths = ", ".join(change.conflicts)
                found.append(
                    Finding("conflict", change.name, f"changed in git and outside: {paths}")
                )
            elif change.drift:
                paths = ", ".join(f.path for f in change.drift)
                values = json.dumps([[f.path, f.new] for f in change.drift], default=str)
                found.append(Finding("drift", change.name, f"changed outside git: {paths}", values))
            elif change.recreate:
                found.append(Finding("drift", change.name, "deleted outside git"))
        for added in plan.added_out_of_band:
            found.append(Finding("drift", added.name, "added outside git", added.record_id))
    if schema is not None:
        for source in schema.sources:
            if source.status in ("breaking", "missing"):
                what = "; ".join(f.message for f in source.findings) or source.status
                found.append(Finding("schema", source.name, REDACTOR.scrub(what)))
    if error:
        found.append(Finding("failed", "apply", REDACTOR.scrub(error)))
    return found


@dataclass(frozen=True)
class Notified:
    posted: int  # findings in the message (0: nothing new, nothing sent)
    error: str | None = None  # why the post failed (redacted); the findings stay new


def notify(
    url: str,
    found: Sequence[Finding],
    *,
    registry: str,
    owner: str,
    connect: ConnectOptions | None = None,
    timeout: float = 10.0,
) -> Notified:
    """Post the findings not notified before, then remember them (only once posted)."""
    for secret in url_secrets(url):
        REDACTOR.add(secret)
    REDACTOR.add(url)
    store = _Seen.open(registry, connect)
    try:
        seen = store.seen() if store else set()
        new = [f for f in dict((f.digest, f) for f in found).values() if f.digest not in seen]
        if not new:
            return Notified(0)
        problem = post(url, message(new, registry=redact_url(registry), owner=owner), timeout)
        if problem is not None:
            return Notified(0, problem)
        if store:
            store.remember([f.digest for f in new])
        return Notified(len(new))
    finally:
        if store:
            store.close()


def message(found: Sequence[Finding], *, registry: str, owner: str) -> dict[str, Any]:
    lines = [f"reconcile ({owner} on {registry}) needs a human:"]
    lines += [f"• {f.line}" for f in found[:MAX_LINES]]
    if len(found) > MAX_LINES:
        lines.append(f"… and {len(found) - MAX_LINES} more (see `reconcile drift`)")
    return {"text": REDACTOR.scrub("\n".join(lines))}


def shown(url: str) -> str:
    """The notify URL as output may show it: its origin only (a webhook's path and query
    are its credential), through redact_url for any user:password."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.hostname or ''}" + (
            f":{parts.port}" if parts.port else ""
        )
    except ValueError:
        return "(notify URL)"
    return redact_url(origin) + "/…"


def post(url: str, body: dict[str, Any], timeout: float) -> str | None:
    """One POST, no redirects (a redirect could carry the message elsewhere); the reason it
    failed, redacted, or None."""
    import httpx

    try:
        answer = httpx.post(url, json=body, timeout=timeout, follow_redirects=False)
    except httpx.HTTPError as exc:
        return f"notification to {shown(url)} failed: {type(exc).__name__}"
    if not 200 <= answer.status_code < 300:
        return f"notification to {shown(url)} failed: HTTP {answer.status_code}"
    return None


class _Seen:
    """The digests already notified, in the registry's (or state store's) registry_meta.

    Read through a read-only open, written through a writable one only once a post went
    out: a run whose registry does not exist (yet) creates nothing here.
    """

    PREFIX = "notified:"

    def __init__(self, registry: str, connect: ConnectOptions | None, opened: Any) -> None:
        self._registry = registry
        self._connect = connect
        self._opened = opened

    @staticmethod
    def _sql(opened: Any) -> Any:
        """The SQL store behind a registry: itself, or an API registry's state store."""
        state = getattr(opened, "_state", None)
        return state.store if state is not None else opened

    @classmethod
    def open(cls, registry: str, connect: ConnectOptions | None) -> _Seen | None:
        try:
            opened = open_registry(registry, writable=False, options=connect)
        except (ReconcilerError, OSError):  # unreachable: posted without memory
            return None
        sql = cls._sql(opened)
        if not isinstance(sql, SqlRegistry) or not sql.initialised():
            opened.close()
            return None
        return cls(registry, connect, opened)

    def seen(self) -> set[str]:
        rows = self._sql(self._opened).read(
            "SELECT key FROM registry_meta WHERE key LIKE ?", (self.PREFIX + "%",)
        )
        return {str(r[0])[len(self.PREFIX) :] for r in rows}

    def remember(self, digests: Sequence[str]) -> None:
        now = datetime.now(UTC).isoformat()
        writable = open_registry(self._registry, writable=True, options=self._connect)
        try:
            sql = self._sql(writable)
            with sql.transaction() as tx:
                for digest in digests:
                    tx.execute(
                        "INSERT INTO registry_meta (key, value) VALUES (?, ?) "
                        "ON CONFLICT (key) DO NOTHING",
                        (self.PREFIX + digest, now),
                    )
        finally:
            writable.close()

    def close(self) -> None:
        self._opened.close()
