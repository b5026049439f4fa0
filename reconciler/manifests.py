"""Find, parse and validate the manifests of a sources directory, reporting every problem.

Validation is all-or-nothing: `load_manifests` either returns every source or raises
InvalidManifests with every problem found, so nothing downstream ever sees half a directory.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import InvalidManifests, Problem, ReconcilerError
from .models import Manifest
from .schema_files import connection_specs, manifest_validator
from .yamldocs import Document, parse_documents

SUFFIXES = (".yaml", ".yml")
_JSON_TYPES = {
    dict: "a mapping",
    list: "a list",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}


def find_manifest_files(sources_dir: Path) -> list[Path]:
    """Every *.yaml / *.yml file under the directory, recursively, in sorted order."""
    if not sources_dir.exists():
        raise ReconcilerError(f"sources directory '{sources_dir}' does not exist")
    if not sources_dir.is_dir():
        raise ReconcilerError(f"sources directory '{sources_dir}' is not a directory")
    try:
        found = [p for p in sources_dir.rglob("*") if p.suffix in SUFFIXES and p.is_file()]
    except OSError as exc:
        raise ReconcilerError(
            f"cannot read sources directory '{sources_dir}': {exc.strerror}"
        ) from exc
    return sorted(found, key=lambda p: p.relative_to(sources_dir).as_posix())


def load_manifests(sources_dir: Path) -> list[Manifest]:
    """All manifests of the directory, or InvalidManifests listing every problem."""
    manifests: list[Manifest] = []
    problems: list[Problem] = []
    for path in find_manifest_files(sources_dir):
        display = path.as_posix()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(display, 1, f"cannot read file: {_reason(exc)}"))
            continue
        docs, parse_problems = parse_documents(text, display)
        problems.extend(parse_problems)
        for doc in docs:
            manifest, doc_problems = validate_document(doc, display)
            problems.extend(doc_problems)
            if manifest is not None and not parse_problems:
                manifests.append(manifest)
    problems.extend(_duplicate_names(manifests))
    if problems:
        raise InvalidManifests(sorted(set(problems), key=lambda p: (p.file, p.line, p.message)))
    return manifests


def validate_document(doc: Document, display: str) -> tuple[Manifest | None, list[Problem]]:
    """Check one document against the JSON Schema; build the typed manifest when it passes."""
    if not isinstance(doc.data, dict):
        kind = _JSON_TYPES.get(type(doc.data), type(doc.data).__name__)
        return None, [Problem(display, doc.line, f"a manifest must be a mapping, got {kind}")]
    problems: list[Problem] = []
    for error in manifest_validator().iter_errors(doc.data):
        problems.extend(_problems_for(error, doc, display))
    if problems:
        return None, problems
    try:
        return Manifest(**doc.data, file=display, line=doc.line_of(("name",))), []
    except ValidationError as exc:  # the schema should have caught it; never show a traceback
        return None, [
            Problem(display, doc.line_of(tuple(e["loc"])), f"{_dotted(e['loc'])}: {e['msg']}")
            for e in exc.errors()
        ]


def _problems_for(error: Any, doc: Document, display: str) -> Iterable[Problem]:
    path = tuple(error.absolute_path)
    prefix = f"{_dotted(path)}: " if path else ""
    instance = error.instance
    if error.validator == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        for key in sorted(k for k in instance if k not in allowed):
            yield Problem(display, doc.line_of((*path, key)), f"{prefix}unknown key '{key}'")
        return
    if error.validator == "required":
        for key in error.validator_value:
            if key not in instance:
                yield Problem(display, doc.line_of(path), f"{prefix}missing required key '{key}'")
        return
    line = doc.line_of(path)
    secret = _is_sensitive(doc.data, path)
    template = error.schema.get("errorMessage") if isinstance(error.schema, dict) else None
    if template:
        value = "" if secret else _show(instance)
        yield Problem(display, line, prefix + template.replace("{value}", value))
    elif error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        got = _JSON_TYPES.get(type(instance), type(instance).__name__)
        shown = "" if secret or isinstance(instance, dict | list) else f" {_show(instance)}"
        yield Problem(display, line, f"{prefix}expected {expected}, got {got}{shown}")
    elif secret:
        yield Problem(display, line, f"{prefix}invalid value (not shown: sensitive field)")
    else:
        yield Problem(display, line, prefix + error.message)


def _is_sensitive(data: dict[str, Any], path: tuple[Any, ...]) -> bool:
    if len(path) != 2 or path[0] != "connection":
        return False
    spec = connection_specs().get(str(data.get("source_type")))
    sensitive = spec.sensitive_fields if spec else frozenset({"password"})
    return path[1] in sensitive


def _duplicate_names(manifests: list[Manifest]) -> list[Problem]:
    seen: dict[str, Manifest] = {}
    problems = []
    for manifest in manifests:
        key = manifest.name.casefold()
        first = seen.setdefault(key, manifest)
        if first is not manifest:
            problems.append(
                Problem(
                    manifest.file,
                    manifest.line,
                    f"duplicate source name '{manifest.name}' "
                    f"(also defined at {first.file}:{first.line}; names are case-insensitive)",
                )
            )
    return problems


def _dotted(path: Iterable[Any]) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(".[", "[")


def _show(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(str(value))


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not valid UTF-8"
    return getattr(exc, "strerror", None) or str(exc)
