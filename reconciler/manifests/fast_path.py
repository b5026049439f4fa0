"""The fast path for manifests: a Rust YAML parser and a compiled JSON Schema check.

It is used only where it provably gives what the exact path (yamldocs + jsonschema) gives,
and for valid files only: a file that is not in the *simple subset* below, that the fast
parser refuses, or whose documents fail the compiled check, returns None and is read again
by the exact path, which alone writes problems. So it can make loading faster, never
different: no message, line, duplicate-key, tag or alias check depends on it.

The simple subset is a line grammar (`_TEXT`): every line is blank, a comment, `---`, a
`key: value` entry or a `- value` item, with one-line values. In it, by construction:

- no tag (`!`), anchor (`&`), alias (`*`), merge key (`<<`), directive, block scalar,
  complex key or escape sequence can occur, since none of them may start a token there;
- every key starts with a letter and is not `true`/`false`/`null` in any case pyyaml or the
  fast parser knows, so both read it as the same string (the exact path keeps keys as
  written); a repeated key makes the fast parser fail, so duplicates go to the exact path;
- every plain scalar is spelled so that YAML 1.1 (pyyaml's SafeLoader) and YAML 1.2 (the
  fast parser) resolve it to the same value: a letter-first word other than the 1.1-only
  booleans `yes/no/on/off`, a path or `${...}` reference, `~`, a decimal integer without
  sign, leading zero or underscore, or a dotted number with two dots or more (a version or
  an IPv4 address: a string in both). Quoted scalars are one line without backslashes;
- no character pyyaml refuses or treats as a line break (NEL, LS, PS, BOM, C0/C1 controls,
  tabs, CR) occurs, the file is small and shallow enough that the exact path's node budget
  and nesting limit cannot be reached.

tests/test_fastload.py checks, on generated texts inside and just outside the subset, that
both paths give the same documents, and that duplicates, tags and alias bombs never pass.
"""

from __future__ import annotations

import os
import re
from functools import cache
from typing import Any

from reconciler.files import read_regular, universal_newlines
from reconciler.manifests.json_schemas import SOURCE_SCHEMA, load_schemas
from reconciler.manifests.yaml_lines import Document

# Set RECONCILER_EXACT_ONLY=1 to read every file with the exact path (for comparisons).
ENABLED = not os.environ.get("RECONCILER_EXACT_ONLY")
# Bigger files go to the exact path: it alone enforces the node budget (100,000 nodes need
# at least 200,000 characters) and the nesting limit (indentation is capped below).
MAX_CHARS = 65_536
_BASE_URI = "https://schemas.reconciler.invalid/"

# Characters pyyaml accepts and reads the same way as YAML 1.2: printable, no tab or CR,
# no NEL/LS/PS (line breaks in YAML 1.1 only), no BOM. ASCII text needs the short check only.
_CONTROL = re.compile("[^\n\x20-\x7e]")
_FOREIGN = "[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"

_BOOL_NULL = "true|True|TRUE|false|False|FALSE|null|Null|NULL"
_BOOL_11_ONLY = "yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF"
_KEY = rf"(?!(?:{_BOOL_NULL}):)[A-Za-z][A-Za-z0-9_-]*"
_SQ = r"'[^'\n]*(?:''[^'\n]*)*'"
_DQ = r'"[^"\\\n]*"'
_NUMBER = r"(?:0|[1-9][0-9]{0,17}|[0-9]+(?:\.[0-9]+){2,})"


def _plain(char: str, colon: bool, end: str) -> str:
    """A one-line plain scalar whose first character makes both YAML versions read it alike.

    Words of `char` (a single character class: what `re` runs fastest) separated by spaces;
    with `colon`, a word may hold single colons (`a:b`, `${env:X}`), as block scalars may.
    `end` is what must follow.
    """
    word = rf"{char}+(?::{char}+)*" if colon else rf"{char}+"
    rest = rf"{char}*(?::{char}+)*" if colon else rf"{char}*"
    first = rf"(?:(?!(?:{_BOOL_11_ONLY}){end})[A-Za-z]|[/$])"
    return rf"(?:{first}{rest}(?:[ ]+{word})*|(?:{_NUMBER}|~){end})"


_FEND = r"(?=[ ]*[,\]}])"  # where a flow item ends
_FLOW_CHAR = r"[^ \n:\#,\[\]{}'\"]"
_FITEM = rf"(?:{_SQ}|{_DQ}|{_plain(_FLOW_CHAR, False, _FEND)})"
# Flow collections on one line, no trailing comma: `[a, 'b c']`, `{key: value}`, `[]`, `{}`.
_FSEQ = rf"\[[ ]*(?:{_FITEM}[ ]*(?:,[ ]*(?![\] ])|(?=\])))*\]"
_FMAP = rf"\{{[ ]*(?:{_KEY}:[ ]+{_FITEM}[ ]*(?:,[ ]*(?![}} ])|(?=\}})))*\}}"
_END = r"(?=[ ]*$|[ ]+\#)"  # where a block value ends: end of line or a comment
_BLOCK_CHAR = r"[^ \n:\#]"
_VALUE = rf"(?:{_SQ}|{_DQ}|{_FSEQ}|{_FMAP}|{_plain(_BLOCK_CHAR, True, _END)}){_END}"
# One line: `key: value`, `- value`, `- key: value`, a comment, a blank line, or `---`.
_ENTRY = rf"{_KEY}:(?=[ ]|$)"
_LINE = (
    rf"[ ]{{0,40}}(?:(?:-[ ]+(?:{_ENTRY})?|{_ENTRY})(?:[ ]*{_VALUE})?)?(?:[ ]*\#[^\n]*)?[ ]*"
    r"|---(?:[ ]+\#[^\n]*)?[ ]*"
)
_TEXT = re.compile(rf"(?:(?:{_LINE})(?:\n|\Z))*", re.MULTILINE)
_MARKER = re.compile(r"^---", re.MULTILINE)
_CONTENT = re.compile(r"^[ ]*[^ \n\#]", re.MULTILINE)
_NAME = re.compile(r"^name:", re.MULTILINE)


def read_text(path: str) -> str | None:
    """The file as `Path.read_text(encoding="utf-8")` gives it, or None when that would fail
    or the file is too big for the fast path. Plain syscalls: twice as fast as open()."""
    try:
        return universal_newlines(read_regular(path, 4 * MAX_CHARS)[0])
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
        return None


def in_subset(text: str) -> bool:
    """Whether the text is in the simple subset both parsers read alike (see above)."""
    if len(text) > MAX_CHARS:
        return False
    if _CONTROL.search(text) is not None and (
        text.isascii() or re.search(_FOREIGN, text) is not None
    ):
        return False  # a control character, or a non-ASCII one pyyaml reads differently
    return _TEXT.fullmatch(text) is not None


def parse(text: str) -> list[Document] | None:
    """The documents of one file through the fast parser, or None: read it the exact way.

    Documents carry their data and the line of their top-level `name` key (what a valid
    manifest needs); everything else about lines is the exact path's business.
    """
    if not in_subset(text):
        return None
    import yaml_rs  # imported on first use: commands that read no manifest never pay for it

    try:
        loaded = yaml_rs.loads(text, parse_datetime=False)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # any refusal (a duplicate key, bad indentation, even a panic)
        return None  # the exact path decides and explains
    segments = _segments(text)
    if len(segments) == 1:
        datas: list[Any] = [loaded]
    elif isinstance(loaded, list) and len(loaded) == len(segments):
        datas = loaded
    else:
        return None  # a top-level sequence, or documents not where the markers say
    docs: list[Document] = []
    for (start, end), data in zip(segments, datas, strict=True):
        if data is None:
            continue  # an empty document is no source, as on the exact path
        if not isinstance(data, dict):
            return None  # a document that is no mapping: the exact path reports it
        found = _NAME.search(text, start, end)
        if found is None:
            return None  # no top-level `name:` at column 0: let the exact path locate things
        line = text.count("\n", 0, found.start()) + 1
        docs.append(Document(data=data, line=line, lines={("name",): line}))
    return docs


def _segments(text: str) -> list[tuple[int, int]]:
    """Where each document is: the text between `---` markers, as pyyaml counts them.

    Content before the first marker is a document; a marker starts one (empty if nothing
    follows). A file with no content and no marker has none: one empty segment stands for it.
    """
    starts = [m.start() for m in _MARKER.finditer(text)] if "---" in text else []
    if not starts:
        return [(0, len(text))]
    bounds = [*starts, len(text)]
    segments = [(bounds[i], bounds[i + 1]) for i in range(len(starts))]
    if _CONTENT.search(text, 0, starts[0]):
        segments.insert(0, (0, starts[0]))
    return segments


def is_valid(data: Any) -> bool:
    """The compiled check of the same schema files: True only when jsonschema finds nothing.

    A False sends the file to the exact path, which gives the messages (and the final word).
    """
    try:
        return bool(_validator().is_valid(data))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # a value the compiled validator cannot take: the exact path can
        return False


@cache
def _validator() -> Any:
    import jsonschema_rs

    schemas = load_schemas()
    registry = jsonschema_rs.Registry([(_BASE_URI + name, body) for name, body in schemas.items()])
    root = dict(schemas[SOURCE_SCHEMA], **{"$id": _BASE_URI + SOURCE_SCHEMA})
    return jsonschema_rs.validator_for(root, registry=registry)
