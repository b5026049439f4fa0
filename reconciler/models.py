"""Typed domain: manifests (desired), records (live), and the plan between them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Action = Literal["create", "update", "delete", "noop"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Column(_Frozen):
    name: str
    type: str
    nullable: bool = True


class Lifecycle(_Frozen):
    prevent_destroy: bool = False
    ignore_changes: tuple[str, ...] = ()


class Manifest(_Frozen):
    """One validated manifest document, with where it came from."""

    name: str
    source_type: str
    connection: dict[str, Any]
    description: str = ""
    tags: tuple[str, ...] = ()
    columns: tuple[Column, ...] | None = None
    schema_policy: Literal["warn", "fail"] = "warn"
    lifecycle: Lifecycle = Lifecycle()
    file: str = Field(default="", exclude=True)
    line: int = Field(default=0, exclude=True)


class Record(_Frozen):
    """A live registry record, as a backend returns it."""

    id: str
    name: str
    source_type: str
    connection: dict[str, Any]
    description: str = ""
    tags: tuple[str, ...] = ()
    registered_by: str = ""
    registered_at: datetime | None = None
    status: str = "active"
    managed_by: str | None = None
    version: int = 1
    last_applied: dict[str, Any] | None = None


class FieldChange(_Frozen):
    """One field that differs; values are display-safe (secrets are references or redacted)."""

    path: str
    old: Any = None
    new: Any = None


class Change(_Frozen):
    action: Action
    name: str
    source_type: str
    record_id: str | None = None
    version: int | None = None
    fields: tuple[FieldChange, ...] = ()
    file: str | None = None
    line: int | None = None
    # The canonical desired document (secret references unresolved); None for deletes.
    document: dict[str, Any] | None = None


class Unmanaged(_Frozen):
    """A live record this owner does not manage: reported, never touched."""

    name: str
    record_id: str
    managed_by: str | None


class Orphan(_Frozen):
    """An owned record whose manifest is gone: deleted only with --prune."""

    name: str
    record_id: str


class Blocked(_Frozen):
    """A manifest that cannot be applied, e.g. its name is taken by an unowned record."""

    name: str
    reason: str
    file: str | None = None
    line: int | None = None


class Plan(_Frozen):
    owner: str
    prune: bool
    changes: tuple[Change, ...] = ()
    unmanaged: tuple[Unmanaged, ...] = ()
    orphans: tuple[Orphan, ...] = ()
    blocked: tuple[Blocked, ...] = ()

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def pending(self) -> tuple[Change, ...]:
        """The changes that would write something."""
        return tuple(c for c in self.changes if c.action != "noop")

    @property
    def has_changes(self) -> bool:
        return any(c.action != "noop" for c in self.changes)


class ApplyResult(_Frozen):
    plan: Plan
    run_id: str
    created: int
    updated: int
    deleted: int
