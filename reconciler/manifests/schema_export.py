"""`reconcile schema-export`: the manifest JSON Schema for editors, self-contained or as files.

The shipped `source.schema.json` refers to one connection schema per source_type by relative
file name. An editor pointed at a single file cannot follow those references, so the export
inlines them under `$defs` (one document, no references outside it); `--out-dir` writes the
files as shipped instead, side by side so the relative references resolve.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from reconciler.manifests.json_schemas import SOURCE_SCHEMA, load_schemas


def _def_name(filename: str) -> str:
    return filename.removesuffix(".schema.json")


def bundled_schema() -> dict[str, Any]:
    """The source schema with every connection schema inlined under `$defs`."""
    schemas = load_schemas()
    root = copy.deepcopy(schemas[SOURCE_SCHEMA])
    defs: dict[str, Any] = root.setdefault("$defs", {})
    for name, body in sorted(schemas.items()):
        if name == SOURCE_SCHEMA:
            continue
        inlined = {k: v for k, v in copy.deepcopy(body).items() if k not in ("$schema", "$id")}
        defs[_def_name(name)] = inlined

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref in schemas and ref != SOURCE_SCHEMA:
                node = dict(node, **{"$ref": f"#/$defs/{_def_name(ref)}"})
            return {k: rewrite(v) for k, v in node.items()}
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    bundled: dict[str, Any] = rewrite(root)
    return bundled


def dumps(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_files(directory: Path) -> list[Path]:
    """Every shipped schema file into `directory`; returns the paths written."""
    from reconciler.files import write_atomic

    written = []
    for name, body in sorted(load_schemas().items()):
        target = directory / name
        write_atomic(target, dumps(body))
        written.append(target)
    return written
