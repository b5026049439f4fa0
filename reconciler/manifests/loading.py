"""Find, parse and validate the manifests of a sources directory, reporting every problem.

Validation is all-or-nothing: `load_manifests` either returns every source or raises
InvalidManifests with every problem found, so nothing downstream ever sees half a directory.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reconciler import progress
from reconciler.errors import InvalidManifests, Problem, ReconcilerError
from reconciler.files import read_regular, universal_newlines
from reconciler.manifests import batches as fastscan
from reconciler.manifests import fast_path as fastload
from reconciler.manifests import renames, variables
from reconciler.manifests.discovery import check_directory, manifest_files
from reconciler.manifests.discovery import find_manifest_files as find_manifest_files
from reconciler.manifests.discovery import reason as _reason
from reconciler.manifests.json_schemas import is_sensitive, manifest_validator
from reconciler.manifests.variables import Scope
from reconciler.manifests.yaml_lines import Document, dotted, parse_documents
from reconciler.models import Manifest
from reconciler.secret_refs import ALLOW_EMPTY, VARIABLE

# An env reference whatever its name, to tell a bad name from a literal secret.
_ENV_REFERENCE = re.compile(r"\$\{env:([^}]*?)(?:" + re.escape(ALLOW_EMPTY) + r")?\}")

_JSON_TYPES = {
    dict: "a mapping",
    list: "a list",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
    date: "a date",
    datetime: "a timestamp",
    bytes: "binary data",
}
_SCHEMA_TYPES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "boolean": "a boolean",
    "integer": "an integer",
    "number": "a number",
    "null": "null",
}


@dataclass(frozen=True)
class Loaded:
    manifests: list[Manifest]
    # Casefolded names of manifests for other environments: out of this run's reach.
    skipped: frozenset[str] = frozenset()


def load_manifests(
    sources_dir: Path, *, allow_empty: bool = False, scope: Scope | None = None
) -> list[Manifest]:
    """All manifests of the directory, or InvalidManifests listing every problem.

    A directory that declares no source is an error (a mistyped path, a checkout gone wrong)
    unless `allow_empty`: with --prune, the prune guard decides about emptying a registry.
    """
    return load_scoped(sources_dir, allow_empty=allow_empty, scope=scope).manifests


def load_scoped(
    sources_dir: Path, *, allow_empty: bool = False, scope: Scope | None = None
) -> Loaded:
    """`load_manifests` in an environment: variables resolved, other environments' manifests
    skipped (their names returned, so no run prunes their records)."""
    check_directory(sources_dir)
    return load_files(
        sources_dir, manifest_files(sources_dir), allow_empty=allow_empty, scope=scope
    )


def load_files(
    sources_dir: Path,
    files: list[tuple[str, str]],
    *,
    allow_empty: bool = False,
    scope: Scope | None = None,
    track: bool = True,
) -> Loaded:
    """load_scoped of some of the directory's files (relative path, path to open):
    content-addressed planning reads only the files whose documents it cannot vouch for
    (and shows the progress of reading them all: `track` False)."""
    scope = scope or variables.load_scope(None, os.environ.get(variables.ENVIRONMENT_VAR))
    skipped: set[str] = set()
    manifests: list[Manifest] = []
    problems: list[Problem] = []
    names: list[_Name] = []
    claims: list[renames.Claim] = []
    prefix = (sources_dir / "_").as_posix()[:-1]  # what Path.as_posix() puts before a child
    quick = _load_fast(files, prefix)
    shown = progress.track(files, "Loading manifests") if track else files
    for (relative, opened), fast in zip(shown, quick, strict=True):
        display = prefix + relative
        if fast is not None:
            manifests.extend(fast)
            names.extend(_Name(m.name, display, m.line) for m in fast)
            continue
        docs, file_problems = _read(Path(opened), display)
        problems.extend(file_problems)
        for doc in docs:
            if not scope.includes(doc.data):
                skipped.update(n.name.casefold() for n in _names(doc, display))
                continue
            names.extend(_names(doc, display))
            misuse = _resolve_variables(doc, display, scope)
            if misuse:
                problems.extend(misuse)
                continue
            claims.extend(renames.claims_in(doc, display))
            manifest, doc_problems = validate_document(doc, display)
            problems.extend(doc_problems)
            if manifest is not None and not file_problems:
                manifests.append(manifest)
    problems.extend(_duplicate_names(names))
    problems.extend(renames.clashes(((n.name, n.file, n.line) for n in names), claims))
    if problems:
        raise InvalidManifests(sorted(set(problems), key=lambda p: (p.file, p.line, p.message)))
    if not manifests and not allow_empty:
        raise ReconcilerError(
            f"no sources in sources directory '{sources_dir.as_posix()}' "
            f"(no *.yaml / *.yml file in it declares one)"
        )
    return Loaded(manifests, frozenset(skipped))


def _resolve_variables(doc: Document, display: str, scope: Scope) -> list[Problem]:
    """Replace the document's `${var:...}` in place; a problem for each that cannot be."""
    original = doc.data
    doc.data, misuse = variables.resolve(
        original, scope, sensitive=lambda path: _is_sensitive(original, path)
    )
    return [Problem(display, doc.line_of(m.path), m.message) for m in misuse]


def _load_fast(files: list[tuple[str, str]], prefix: str) -> Iterator[list[Manifest] | None]:
    """For each file, its manifests when the fast path can vouch for them all, else None.

    None (the file is outside the fast path's subset, or something in it is invalid) sends
    the file to the exact path, which alone reports problems.
    """
    if not fastload.ENABLED:
        yield from [None] * len(files)
        return
    found = fastscan.scan_all([opened for _, opened in files])
    for (relative, _), docs in zip(files, found, strict=True):
        yield _manifests(docs, prefix + relative) if docs is not None else None


def _manifests(docs: list[Document], display: str) -> list[Manifest] | None:
    if any("previous_names" in doc.data for doc in docs):
        return None  # the exact path knows each previous name's line, for its problems
    if any(variables.mentions(doc.data) for doc in docs):
        return None  # variables and environments are resolved on the exact path
    try:
        return [Manifest(**doc.data, file=display, line=doc.line) for doc in docs]
    except ValidationError:
        return None


def _read(path: Path, display: str) -> tuple[list[Document], list[Problem]]:
    """An unreadable file is one problem like any other, so the other files are still checked."""
    try:
        text = _read_regular(path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return [], [Problem(display, 1, f"cannot read file: {_reason(exc)}")]
    return parse_documents(text, display)


def _read_regular(path: Path) -> str:
    """Path.read_text, for a regular file only: one swapped for a FIFO since discovery must
    not hang the run (opened without blocking, checked before reading)."""
    return universal_newlines(read_regular(path)[0])


def validate_document(doc: Document, display: str) -> tuple[Manifest | None, list[Problem]]:
    """Check one document against the JSON Schema; build the typed manifest when it passes."""
    if not isinstance(doc.data, dict):
        kind = _kind(doc.data)
        return None, [Problem(display, doc.line, f"a manifest must be a mapping, got {kind}")]
    problems: list[Problem] = []
    for error in manifest_validator().iter_errors(doc.data):
        if not doc.is_rejected(tuple(error.absolute_path)):  # already reported by the parser
            problems.extend(_problems_for(error, doc, display))
    if problems or doc.rejected:
        # Every `required` error (one per missing key) reports all the missing keys: dedupe.
        return None, list(dict.fromkeys(problems))
    try:
        return Manifest(**doc.data, file=display, line=doc.line_of(("name",))), []
    except ValidationError as exc:  # the schema should have caught it; never show a traceback
        return None, [
            Problem(display, doc.line_of(tuple(e["loc"])), f"{dotted(e['loc'])}: {e['msg']}")
            for e in exc.errors()
        ]


def _problems_for(error: Any, doc: Document, display: str) -> Iterable[Problem]:
    path = tuple(error.absolute_path)
    prefix = f"{dotted(path)}: " if path else ""
    instance = error.instance
    if error.validator == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
        extra = (k for k in instance if k not in allowed and not any(p.search(k) for p in patterns))
        for key in sorted(extra):
            message = f"{prefix}unknown key '{key}'{_did_you_mean(key, allowed)}"
            yield Problem(display, doc.line_of((*path, key)), message)
        return
    if error.validator == "required":
        for key in error.validator_value:
            if key not in instance:
                yield Problem(display, doc.line_of(path), f"{prefix}missing required key '{key}'")
        return
    message = describe(error, secret=_is_sensitive(doc.data, path))
    yield Problem(display, doc.line_of(path), prefix + message)


def _did_you_mean(key: str, known: Iterable[str]) -> str:
    """A hint for a misspelt key: the closest known one, if any is close (difflib's ratio)."""
    close = difflib.get_close_matches(key.lower(), sorted(known), n=1, cutoff=0.75)
    return f"; did you mean '{close[0]}'?" if close else ""


def describe(error: Any, secret: bool) -> str:
    """A jsonschema error in the user's words; a sensitive value is never part of it."""
    instance = error.instance
    template = error.schema.get("errorMessage") if isinstance(error.schema, dict) else None
    bad_name = _bad_variable(instance)
    if bad_name is not None:
        return bad_name
    if template:
        return str(template).replace("{value}", "" if secret else _show(instance))
    if error.validator == "type":
        expected = error.validator_value
        names = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_SCHEMA_TYPES.get(name, name) for name in names)
        hidden = secret or instance is None or isinstance(instance, dict | list)
        shown = "" if hidden else f" {_show(instance)}"
        return f"expected {wanted}, got {_kind(instance)}{shown}"
    rule = _rule(str(error.validator), error.validator_value)
    if rule is None:
        return f"invalid value (fails the schema rule '{error.validator}')"
    if error.validator in ("enum", "const") and not secret:
        return f"{rule} (got {_show(instance)})"
    return rule


def _bad_variable(instance: Any) -> str | None:
    """`${env:1BAD}` is a reference with an invalid name, not a literal secret: say so."""
    if not isinstance(instance, str):
        return None
    match = _ENV_REFERENCE.fullmatch(instance)
    if match is None or VARIABLE.fullmatch(match[1]):
        return None
    return (
        f"invalid variable name '{match[1]}' in {instance} (letters, digits and _, "
        "not starting with a digit)"
    )


def _rule(validator: str, limit: Any) -> str | None:
    """What a schema keyword asks for, e.g. minLength 1 -> `must not be empty`."""
    match validator:
        case "minLength" | "minItems" | "minProperties" if limit == 1:
            return "must not be empty"
        case "minLength":
            return f"must be at least {_count(limit, 'character')} long"
        case "maxLength":
            return f"must be at most {_count(limit, 'character')} long"
        case "minItems":
            return f"must have at least {_count(limit, 'item')}"
        case "maxItems":
            return f"must have at most {_count(limit, 'item')}"
        case "uniqueItems":
            return "must not contain duplicates"
        case "minimum":
            return f"must be at least {limit}"
        case "maximum":
            return f"must be at most {limit}"
        case "exclusiveMinimum":
            return f"must be greater than {limit}"
        case "exclusiveMaximum":
            return f"must be less than {limit}"
        case "enum":
            return "must be one of: " + ", ".join(_word(choice) for choice in limit)
        case "const":
            return f"must be {_word(limit)}"
        case "pattern":
            return f"must match the pattern {limit}"
    return None


def _is_sensitive(data: dict[str, Any], path: tuple[Any, ...]) -> bool:
    """A secret field, or a whole connection written as one string (typically a URL with one)."""
    if not path or path[0] != "connection":
        return False
    if len(path) == 1:
        return True
    return is_sensitive(str(data.get("source_type")), str(path[1]))


@dataclass(frozen=True)
class _Name:
    """A string `name` and where it is written, whether or not its document is valid."""

    name: str
    file: str
    line: int


def _names(doc: Document, display: str) -> list[_Name]:
    """The document's name if it is a string, even when the document has other problems."""
    name = doc.data.get("name") if isinstance(doc.data, dict) else None
    if not isinstance(name, str):
        return []
    return [_Name(name, display, doc.line_of(("name",)))]


def _duplicate_names(names: list[_Name]) -> list[Problem]:
    """Names clash case-insensitively; checked on every document so one fix round finds all."""
    seen: dict[str, _Name] = {}
    problems = []
    for named in names:
        first = seen.setdefault(named.name.casefold(), named)
        if first is not named:
            problems.append(
                Problem(
                    named.file,
                    named.line,
                    f"duplicate source name '{named.name}' "
                    f"(also defined at {first.file}:{first.line}; names are case-insensitive)",
                )
            )
    return problems


def _kind(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _count(number: Any, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _word(value: Any) -> str:
    return value if isinstance(value, str) else _show(value)


def _show(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):  # a date, a timestamp: shown as written
        return json.dumps(str(value), ensure_ascii=False)
