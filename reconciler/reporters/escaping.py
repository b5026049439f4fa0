"""Escaping for each reader of a report, in one place per reader.

Names, values and messages come from manifests (anyone can open a pull request) and from
registries (anyone with a UI can write them), and every report lands in something that
interprets it: a terminal runs escape sequences, GitHub's runner runs workflow commands,
a PR comment renders Markdown and HTML. Renderers pass every such string through the
function for their reader here, never their own.
"""

from __future__ import annotations

import dataclasses
import html
import re
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from reconciler.redaction import REDACTOR

T = TypeVar("T")

# What a terminal (or a log viewer) would act on rather than show: C0 controls but tab
# (newline and carriage return too: a value must not fake a line of the report), DEL, C1
# controls (8-bit CSI, OSC...), and the bidirectional overrides and isolates that make text
# read differently from what it is ("Trojan Source"); also the private-use markers below.
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


_NAMED = {"\n": "\\n", "\r": "\\r"}


def _visible_char(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def visible(text: str) -> str:
    """`text` with every control character and bidi override shown as `\\x1b`, `\\u202e`."""
    if text.isascii() and text.isprintable():  # most strings: nothing _UNSAFE can match
        return text
    return _UNSAFE.sub(_visible_char, text)


def _scrubbed(text: str) -> str:
    """Secrets out before escaping: once escaped, a secret would no longer be found."""
    return REDACTOR.scrub(text)


def terminal_lines(text: str) -> str:
    """A message of several lines that we composed (e.g. one line per missing variable): each
    line as `terminal` shows it, and none that GitHub's runner would read as a command."""
    return "\n".join(gh_log_line(terminal(line)) for line in text.split("\n"))


def terminal(text: str) -> str:
    """An error line for a terminal or a log: secrets scrubbed (the last guard for free text
    from outside), control characters shown escaped. Report values use `visible`."""
    return visible(_scrubbed(text))


def escape_strings(
    obj: T, escape: Callable[[str], str], *, unshown: frozenset[str] = frozenset()
) -> T:
    """A copy of `obj` (models, dataclasses, containers) with `escape` applied to every
    string in it; unchanged parts are returned as they are, so a clean report costs no copy.
    Model fields named in `unshown` are left as they are: the caller never shows them (a
    change's canonical `document`, 100,000 mappings in a big plan)."""
    return _walk(obj, escape, unshown)  # type: ignore[no-any-return]


_PLAIN = frozenset({type(None), int, float, bool})
_IS_MODEL: dict[type, bool] = {}  # pydantic models, by class (not imported for --help)


def _walk(obj: Any, escape: Callable[[str], str], unshown: frozenset[str]) -> Any:
    cls = obj.__class__
    if cls is str:
        out = escape(obj)
        return obj if out == obj else out
    if cls in _PLAIN:
        return obj
    is_model = _IS_MODEL.get(cls)
    if is_model is None:
        is_model = _IS_MODEL[cls] = hasattr(cls, "model_fields") and not isinstance(obj, type)
    if is_model:  # a report holds 10,000s of these: the common fields inline
        changed: dict[str, Any] = {}
        for name, value in obj.__dict__.items():  # its fields (extra ones are forbidden)
            kind = value.__class__
            if kind is str:
                new = escape(value)
                if new == value:
                    continue
            elif kind in _PLAIN or (kind is tuple and not value) or name in unshown:
                continue
            else:
                new = _walk(value, escape, unshown)
                if new is value:
                    continue
            changed[name] = new
        return obj.model_copy(update=changed) if changed else obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        updates = {}
        for f in dataclasses.fields(obj):
            if not f.init:
                continue
            value = getattr(obj, f.name)
            new = _walk(value, escape, unshown)
            if new is not value:
                updates[f.name] = new
        return dataclasses.replace(obj, **updates) if updates else obj
    if isinstance(obj, list | tuple):
        items = []
        same = True
        for value in obj:
            kind = value.__class__
            if kind is str:
                new = escape(value)
                if new == value:
                    new = value
            elif kind in _PLAIN:
                new = value
            else:
                new = _walk(value, escape, unshown)
            same = same and new is value
            items.append(new)
        if same:
            return obj
        return items if isinstance(obj, list) else tuple(items)
    if isinstance(obj, dict):
        pairs = [(_walk(k, escape, unshown), _walk(v, escape, unshown)) for k, v in obj.items()]
        if all(k is a and v is b for (k, v), (a, b) in zip(pairs, obj.items(), strict=True)):
            return obj
        return dict(pairs)
    if isinstance(obj, frozenset | set):
        walked = {_walk(v, escape, unshown) for v in obj}
        return type(obj)(walked)
    return obj


# -- Markdown and HTML (a pull-request comment) -----------------------------------------
# ASCII punctuation that means something to GitHub Markdown inside a line (emphasis, links,
# images, tables, code spans, math, autolinks `https://` and `www.`); any of it may be
# backslash-escaped in CommonMark. `&<>` become entities instead. Newlines are shown
# escaped, so no value starts a line (a heading, a list, a fence).
_MD_PUNCT = re.compile(r"([\\`*_\[\]()#!|~:.$])")


def _no_mention(text: str) -> str:
    """A word joiner after `@`: GitHub does not see `@user` or `@org/team` as a mention."""
    return text.replace("@", "@\u2060")


def md_text(text: str) -> str:
    """`text` for Markdown (also in a table cell): shown as it is, never interpreted as
    HTML, a mention, a link, emphasis, a heading or a cell separator. Not scrubbed: free
    text from outside (server and driver messages) is scrubbed where it enters, and values
    in a report are markers, never secrets (redaction is structural, not textual)."""
    return _markdown(visible(text))


def md_code(text: str) -> str:
    """A name or other identifier shown as code in Markdown text or a table cell."""
    return f"<code>{_markdown(visible(text))}</code>"


def _markdown(text: str) -> str:
    escaped = _MD_PUNCT.sub(r"\\\1", text)
    return _no_mention(html.escape(escaped, quote=False))


def html_text(text: str) -> str:
    """`text` inside a raw HTML block (`<details><summary>`), where Markdown is not parsed."""
    return _no_mention(html.escape(visible(text), quote=False))


def fenced(text: str) -> str:
    """`text` as a line of a fenced code block: control characters (a newline could start
    a line that closes the fence) shown escaped."""
    return visible(text)


# -- JSON on a terminal ------------------------------------------------------------------
# json.dumps(ensure_ascii=False) escapes C0 controls but leaves DEL, C1 controls (an 8-bit
# CSI), bidi overrides and line separators raw; they only occur inside strings.
_JSON_RAW = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def json_text(dumped: str) -> str:
    """JSON text (from `json.dumps`) with those characters as `\\uXXXX`: the same JSON."""
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", dumped)


# -- Prometheus label values -----------------------------------------------------------
_SURROGATE = re.compile("[\ud800-\udfff]")


def label_value(text: str) -> str:
    """A label value prometheus_client can write and a scraper can parse: it escapes `\\`,
    `"` and newlines itself, but not a carriage return; lone surrogates cannot be UTF-8."""
    return _SURROGATE.sub("\ufffd", visible(text))


# -- GitHub workflow commands -----------------------------------------------------------
def gh_data(text: str) -> str:
    """A command's message, as @actions/core's `escapeData` (plus control characters shown)."""
    text = _UNSAFE.sub(lambda m: m.group() if m.group() in "\r\n" else _visible_char(m), text)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def gh_property(text: str) -> str:
    """A command's property value, as @actions/core's `escapeProperty`."""
    return gh_data(text).replace(":", "%3A").replace(",", "%2C")


# The runner reads a line as a command when, after leading whitespace, it starts so.
_COMMAND_START = re.compile(r"^\s*(::|##\[)")


def gh_log_line(line: str) -> str:
    """A line of free text for the Actions log that the runner cannot read as a command."""
    return f"\u2063{line}" if _COMMAND_START.match(line) else line


def stop_commands_token() -> str:
    """A fresh token for `::stop-commands::`: text from a manifest cannot guess it, so it
    cannot end the block and have its own lines run as commands."""
    return secrets.token_hex(16)
