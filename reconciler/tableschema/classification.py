"""Compare two views of a table's columns and classify every difference for its readers.

The type rules live in one table (`TYPE_TRANSITIONS`) so that what counts as a widening is
decided in exactly one place, and both sides are normalised first so a manifest's `int` and
PostgreSQL's `integer` are the same type rather than a spurious change.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from reconciler.models import Frozen, ObservedTable, TableMissing, Unreachable

Severity = Literal["breaking", "warning", "info", "error"]
Kind = Literal[
    "column_added",
    "column_dropped",
    "type_widened",
    "type_changed",
    "column_renamed",
    "nullability_changed",
    "table_missing",
    "unreachable",
]
Perspective = Literal["consumer", "producer"]


class SchemaChange(Frozen):
    """One classified difference; `message` is the sentence shown to people."""

    kind: Kind
    column: str | None
    old: str | None
    new: str | None
    severity: Severity
    message: str


class ColumnLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def nullable(self) -> bool: ...


ColumnInput = ColumnLike | Mapping[str, Any]


# ------------------------------------------------------------------------ type normalising


@dataclass(frozen=True)
class TypeSpec:
    """A type reduced to its canonical PostgreSQL base name, modifiers and array depth."""

    base: str
    params: tuple[int, ...] = ()
    array: int = 0

    def __str__(self) -> str:
        mods = f"({','.join(map(str, self.params))})" if self.params else ""
        for zoned in ("timestamp", "time"):
            if mods and self.base.startswith(f"{zoned} with"):
                return f"{zoned}{mods}{self.base[len(zoned) :]}" + "[]" * self.array
        return f"{self.base}{mods}" + "[]" * self.array


_ALIASES: Final[Mapping[str, str]] = {
    "int2": "smallint",
    "smallserial": "smallint",
    "serial2": "smallint",
    "int": "integer",
    "int4": "integer",
    "serial": "integer",
    "serial4": "integer",
    "int8": "bigint",
    "bigserial": "bigint",
    "serial8": "bigint",
    "float4": "real",
    "float8": "double precision",
    "decimal": "numeric",
    "varchar": "character varying",
    "char": "character",
    "bpchar": "character",
    "bool": "boolean",
    "timestamp": "timestamp without time zone",
    "timestamptz": "timestamp with time zone",
    "time": "time without time zone",
    "timetz": "time with time zone",
}
_TYPE = re.compile(
    r"(?P<name>[a-z_][a-z0-9_ ]*?)\s*(?:\((?P<params>[0-9,\s]*)\))?\s*"
    r"(?P<zone>with(?:out)? time zone)?"
)


def parse_type(text: str) -> TypeSpec:
    """`varchar(50)`, `character varying (50)` and `VARCHAR(50)` all give one TypeSpec."""
    raw = " ".join(text.lower().split())
    array = 0
    while raw.endswith(("[]", " array")):
        raw, array = raw.removesuffix("[]").removesuffix(" array").rstrip(), array + 1
    raw = raw.removeprefix("pg_catalog.")
    match = _TYPE.fullmatch(raw)
    if match is None:
        return TypeSpec(raw, (), array)
    name = match["name"]
    params = tuple(int(p) for p in (match["params"] or "").replace(" ", "").split(",") if p)
    if match["zone"]:
        name = f"{name} {match['zone']}"
    if name == "float":  # float(p) is real up to 24 bits of mantissa, else double
        name = "real" if params and params[0] <= 24 else "double precision"
        params = ()
    name = _ALIASES.get(name, name)
    if name == "character" and not params:
        params = (1,)  # PostgreSQL: char without a length is char(1)
    if name == "numeric" and len(params) == 1:
        params = (params[0], 0)
    return TypeSpec(name, params, array)


def normalise_type(text: str) -> str:
    """The canonical PostgreSQL spelling, as format_type() would print it."""
    return str(parse_type(text))


# ---------------------------------------------------------------- the classification table

Verdict = Literal["widened", "warning"]
Condition = Callable[[TypeSpec, TypeSpec], bool]

# Decimal digits each integer type needs, for integer → numeric(p,s).
_INT_DIGITS: Final[Mapping[str, int]] = {"smallint": 5, "integer": 10, "bigint": 19}


def _always(old: TypeSpec, new: TypeSpec) -> bool:
    return True


def _longer(old: TypeSpec, new: TypeSpec) -> bool:
    """varchar(n) → varchar(m > n) or unbounded."""
    return not new.params or (bool(old.params) and new.params[0] > old.params[0])


def _at_least_as_long(old: TypeSpec, new: TypeSpec) -> bool:
    """char(n) → varchar(m >= n) or unbounded: every value still fits."""
    return not new.params or (bool(old.params) and new.params[0] >= old.params[0])


def _unbounded(old: TypeSpec, new: TypeSpec) -> bool:
    return not new.params


def _holds_integer(old: TypeSpec, new: TypeSpec) -> bool:
    """integer → numeric(p,s) only if p - s leaves room for every integer's digits."""
    return not new.params or new.params[0] - new.params[1] >= _INT_DIGITS[old.base]


def _more_precision_same_scale(old: TypeSpec, new: TypeSpec) -> bool:
    """numeric(p,s) → numeric(p2 > p, s) or unbounded numeric; a new scale is breaking."""
    if not new.params:
        return True
    return bool(old.params) and new.params[0] > old.params[0] and new.params[1] == old.params[1]


def _ladder(*types: str) -> dict[tuple[str, str], tuple[Verdict, Condition]]:
    """Every upward step of an ordered chain, so widening is transitive by construction."""
    return {
        (low, high): ("widened", _always) for i, low in enumerate(types) for high in types[i + 1 :]
    }


# (old base, new base) → (verdict, condition on the modifiers). A pair not listed, or whose
# condition fails, is a breaking type change. Identical normalised types are no change.
TYPE_TRANSITIONS: Final[Mapping[tuple[str, str], tuple[Verdict, Condition]]] = {
    **_ladder("smallint", "integer", "bigint"),
    ("smallint", "numeric"): ("widened", _holds_integer),
    ("integer", "numeric"): ("widened", _holds_integer),
    ("bigint", "numeric"): ("widened", _holds_integer),
    ("real", "double precision"): ("widened", _always),
    ("numeric", "numeric"): ("widened", _more_precision_same_scale),
    ("character varying", "character varying"): ("widened", _longer),
    ("character varying", "text"): ("widened", _always),
    # PostgreSQL's unbounded varchar *is* text; no reader can tell them apart.
    ("text", "character varying"): ("widened", _unbounded),
    ("character", "character varying"): ("widened", _at_least_as_long),
    ("character", "text"): ("widened", _always),
    # Same instants only if the server's TimeZone matched the stored local times.
    ("timestamp without time zone", "timestamp with time zone"): ("warning", _always),
}


def classify_type(old: str, new: str) -> tuple[Kind, Severity] | None:
    """None when both spell the same type; otherwise the kind and severity of the change."""
    a, b = parse_type(old), parse_type(new)
    if a == b:
        return None
    rule = TYPE_TRANSITIONS.get((a.base, b.base))
    if rule is None or a.array or b.array:
        return "type_changed", "breaking"
    verdict, condition = rule
    if not condition(a, b):
        return "type_changed", "breaking"
    return ("type_widened", "info") if verdict == "widened" else ("type_changed", "warning")


# ------------------------------------------------------------------------------ comparing


@dataclass(frozen=True)
class _Col:
    name: str
    type: str
    spec: TypeSpec
    nullable: bool
    position: int | None


def _col(column: ColumnInput, *, positions: bool) -> _Col:
    if isinstance(column, Mapping):
        name, type_ = str(column["name"]), str(column["type"])
        nullable, position = bool(column.get("nullable", True)), column.get("position")
    else:
        name, type_, nullable = column.name, column.type, column.nullable
        position = getattr(column, "position", None)
    pos = int(position) if positions and position is not None else None
    return _Col(name, type_, parse_type(type_), nullable, pos)


def _null(nullable: bool) -> str:
    return "NULL" if nullable else "NOT NULL"


def _change(
    kind: Kind, column: str | None, old: str | None, new: str | None, sev: Severity, text: str
) -> SchemaChange:
    return SchemaChange(kind=kind, column=column, old=old, new=new, severity=sev, message=text)


def _type_change(old: _Col, new: _Col, perspective: Perspective) -> list[SchemaChange]:
    verdict = classify_type(old.type, new.type)
    if verdict is None:
        return []
    kind, severity = verdict
    label = {
        "info": "widened, non-breaking",
        "warning": "warning: stored values are now read in a time zone",
        "breaking": "breaking",
    }[severity]
    if kind == "type_widened" and perspective == "producer":
        # Producers review every type change: their writers, and any typed copy of the
        # column they maintain, must follow a widening too.
        severity, label = "breaking", "widened, breaking for producers"
    text = f'column "{new.name}" type {old.type} → {new.type} ({label})'
    return [_change(kind, new.name, old.type, new.type, severity, text)]


def _null_change(old: _Col, new: _Col, perspective: Perspective) -> list[SchemaChange]:
    if old.nullable == new.nullable:
        return []
    # Readers break when NULLs may appear; writers break when NULLs are refused.
    loosened = new.nullable
    breaking = loosened if perspective == "consumer" else not loosened
    severity: Severity = "breaking" if breaking else "info"
    label = "breaking" if breaking else "non-breaking"
    was, now = _null(old.nullable), _null(new.nullable)
    text = f'column "{new.name}" {was} → {now} ({label} for {perspective}s)'
    return [_change("nullability_changed", new.name, was, now, severity, text)]


def _diff(old: Sequence[_Col], new: Sequence[_Col], perspective: Perspective) -> list[SchemaChange]:
    new_by_name = {c.name: c for c in new}
    old_names = {c.name for c in old}
    added = [c for c in new if c.name not in old_names]
    # A rename keeps its attnum and its type; a drop plus an add gets a new attnum.
    renamed: dict[str, _Col] = {}
    for gone in (c for c in old if c.name not in new_by_name and c.position is not None):
        for fresh in added:
            taken = fresh in renamed.values()
            if not taken and fresh.position == gone.position and fresh.spec == gone.spec:
                renamed[gone.name] = fresh
                break
    changes: list[SchemaChange] = []
    for col in old:
        if col.name in new_by_name:
            now = new_by_name[col.name]
            changes += _type_change(col, now, perspective) + _null_change(col, now, perspective)
        elif col.name in renamed:
            now = renamed[col.name]
            text = f'column "{col.name}" renamed to "{now.name}" (breaking)'
            changes.append(
                _change("column_renamed", now.name, col.name, now.name, "breaking", text)
            )
            changes += _null_change(col, now, perspective)
        else:
            text = f'column "{col.name}" dropped (breaking)'
            changes.append(_change("column_dropped", col.name, col.type, None, "breaking", text))
    for col in added:
        if col not in renamed.values():
            text = f'column "{col.name}" added ({col.type}, {_null(col.nullable)}) (non-breaking)'
            changes.append(_change("column_added", col.name, None, col.type, "info", text))
    return changes


def _outcome_change(outcome: TableMissing | Unreachable) -> SchemaChange:
    if isinstance(outcome, TableMissing):
        what = outcome.reason or "table not found"
        return _change("table_missing", None, None, None, "breaking", f"{what} (breaking)")
    text = f"cannot introspect: {outcome.reason}"
    return _change("unreachable", None, None, outcome.reason, "error", text)


NewSide = Iterable[ColumnInput] | ObservedTable | TableMissing | Unreachable


def compare(
    old: Iterable[ColumnInput], new: NewSide, *, perspective: Perspective = "consumer"
) -> list[SchemaChange]:
    """Changes from a recorded snapshot (`old`) to what is live now (`new`, columns or an
    introspection outcome). Columns with a position are checked for renames."""
    return _compare(old, new, perspective, positions=True)


def compare_with_contract(
    contract_columns: Iterable[ColumnInput],
    observed: NewSide,
    *,
    perspective: Perspective = "consumer",
) -> list[SchemaChange]:
    """Changes from the declared `columns` contract (the expected side) to the live table.
    Contracts carry no positions, so a rename shows as a drop plus an add."""
    return _compare(contract_columns, observed, perspective, positions=False)


def _compare(
    old: Iterable[ColumnInput], new: NewSide, perspective: Perspective, *, positions: bool
) -> list[SchemaChange]:
    if isinstance(new, TableMissing | Unreachable):
        return [_outcome_change(new)]
    columns = new.columns if isinstance(new, ObservedTable) else new
    return _diff(
        [_col(c, positions=positions) for c in old],
        [_col(c, positions=positions) for c in columns],
        perspective,
    )


def has_breaking(changes: Iterable[SchemaChange]) -> bool:
    return any(c.severity == "breaking" for c in changes)
