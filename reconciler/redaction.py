"""The one place that decides what is a credential and how it is hidden.

Three rules, used by every output, error, saved plan, run log and imported manifest:

- `is_sensitive_name`: a field or parameter whose *name* says it holds a secret (password,
  token, private key, ...), whatever the schema says; import, validation and planning share it.
- `redact_url` / `redact_locators`: userinfo and secret query parameters of URLs, and the
  `password=...` pairs of libpq keyword/value DSNs, replaced by `***`.
- `Redactor`: free text from outside (a server's error body, a driver message) scrubbed of
  every secret value this process resolved, also in its escaped forms. Structured output is
  never scrubbed as text: its sensitive values are replaced before it is rendered, so a
  secret equal to `null` or `5432` cannot corrupt it, and a guess written elsewhere is never
  confirmed by a `***`.
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote, quote_plus, unquote_plus

MASK = "***"

# Whole-name markers (after lower-casing and dropping separators: `private key`,
# `private_key` and `privateKey` are all `privatekey`).
_MARKERS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "privatekey",
    "credential",
    "apikey",
    "accesskey",
    "signature",
)
# Last words that name a secret on their own (`key=`, `sig=`, `db_pwd`, `ssh.key`).
_LAST_WORDS = frozenset({"key", "pwd", "pass", "sig", "auth", "authorization"})
# libpq parameters that are paths, not secrets, although their names end in "key".
_NOT_SECRET = frozenset({"sslkey", "sslcert", "sslrootcert", "sslcrl", "sslcrldir"})
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def is_sensitive_name(name: str) -> bool:
    """Whether a field, key or query parameter named so holds a secret (case-insensitive).

    A dotted name is judged by its last part: `ssh.privateKey` is a secret, the `host` of
    `credentials.host` is not.
    """
    name = name.rsplit(".", 1)[-1]
    flat = re.sub(r"[^a-z0-9]", "", name.lower())
    if not flat or flat in _NOT_SECRET:
        return False
    if any(marker in flat for marker in _MARKERS):
        return True
    words = _WORD.findall(name)
    return bool(words) and words[-1].lower() in _LAST_WORDS


# -- URLs and DSNs ------------------------------------------------------------------------

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*:)//")
# A URL inside free text: up to whitespace or a closing quote/bracket.
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[\w.-]*)(?::\d*)?(?:[/?#]|$)")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")
# libpq keyword/value pairs: `password=secret`, `password = 'with spaces \' quoted'`.
_DSN_PAIR = re.compile(
    r"(?P<key>\b[A-Za-z_][A-Za-z0-9_.-]*)(?P<eq>\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'?|[^\s&'\"]+)"
)


def redact_url(url: str) -> str:
    """The URL with its password (and any secret query parameter) replaced by `***`.

    Parsed by hand, not with urlsplit: a password written with an unencoded `@`, `:` or
    `/` must be hidden whole, never cut at the first special character.
    """
    match = _SCHEME.match(url)
    if match is None:
        return _redact_pairs(url) if "=" in url else url
    head, rest = url[: match.end()], url[match.end() :]
    at = _userinfo_end(rest)
    if at >= 0:
        user, colon, password = rest[:at].partition(":")
        # `user:@` (no password) is shown as is; a lone userinfo may be a token.
        userinfo = (f"{user}:{MASK}" if password else f"{user}:") if colon else MASK
        rest = f"{userinfo}@{rest[at + 1 :]}"
    path_end = _first(rest, "?#")
    if path_end < len(rest) and rest[path_end] == "?":
        fragment_at = rest.find("#", path_end)
        end = len(rest) if fragment_at < 0 else fragment_at
        rest = rest[: path_end + 1] + _redact_query(rest[path_end + 1 : end]) + rest[end:]
    return head + rest


def _userinfo_end(rest: str) -> int:
    """Where the userinfo of `rest` (the URL after `//`) ends (its last `@`), or -1.

    Errs on the side of hiding: `user:pa/ss@host` (an unencoded `/`, `?` or `#` in the
    password) hides everything up to the `@` before a host-like rest.
    """
    authority_end = _first(rest, "/?#")
    at = rest.rfind("@", 0, authority_end)
    if "@" in rest[authority_end:] and ":" in rest[:authority_end]:
        last = rest.rfind("@")
        if _HOST.match(rest[last + 1 :]):
            at = last
    return at


def unencoded_userinfo(url: str) -> bool:
    """A user name or password with an unencoded `@`, `/`, `?` or `#`: a driver would cut it
    elsewhere and quote the rest back as a host name."""
    match = _SCHEME.match(url)
    if match is None:
        return False
    rest = url[match.end() :]
    at = _userinfo_end(rest)
    return at >= 0 and any(c in rest[:at] for c in "@/?#")


def url_secrets(url: str) -> list[str]:
    """The secret values a URL carries (password, secret query parameters), as written and
    decoded, for the redactor to recognise in what a driver or server says back."""
    match = _SCHEME.match(url)
    if match is None:
        return [
            m["value"].strip("'") for m in _DSN_PAIR.finditer(url) if is_sensitive_name(m["key"])
        ]
    rest = url[match.end() :]
    found = []
    at = _userinfo_end(rest)
    if at >= 0:
        user, colon, password = rest[:at].partition(":")
        found.append(password if colon else user)
    query_at = rest.find("?", max(at, 0))
    if query_at >= 0:
        for pair in rest[query_at + 1 :].split("#", 1)[0].split("&"):
            key, eq, value = pair.partition("=")
            if eq and is_sensitive_name(unquote_plus(key)):
                found.append(value)
    return [v for raw in found for v in {raw, unquote_plus(raw)} if v]


def _first(text: str, chars: str) -> int:
    positions = [i for i in (text.find(c) for c in chars) if i >= 0]
    return min(positions) if positions else len(text)


def _redact_query(query: str) -> str:
    parts = []
    for pair in query.split("&"):
        key, eq, _ = pair.partition("=")
        parts.append(f"{key}={MASK}" if eq and is_sensitive_name(unquote_plus(key)) else pair)
    return "&".join(parts)


def _redact_pairs(text: str) -> str:
    """`host=db password=secret`: the value of every secret keyword replaced."""

    def one(match: re.Match[str]) -> str:
        if not is_sensitive_name(match["key"]):
            return match[0]
        return f"{match['key']}{match['eq']}{MASK}"

    return _DSN_PAIR.sub(one, text)


def redact_locators(text: str) -> str:
    """Free text with every URL redacted and every `password=...` pair hidden."""
    if "=" not in text and "://" not in text:
        return text
    out, start = [], 0
    for match in _URL_IN_TEXT.finditer(text):
        out += [_redact_pairs(text[start : match.start()]), redact_url(match[0])]
        start = match.end()
    out.append(_redact_pairs(text[start:]))
    return "".join(out)


# -- resolved values --------------------------------------------------------------------


def _escaped_forms(value: str) -> set[str]:
    """How a value may be echoed back: as is, JSON-escaped (also with ASCII escapes),
    URL-encoded."""
    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    forms |= {quote(value, safe=""), quote_plus(value), quote(value)}
    return {form for form in forms if form}


_SHORTEST = 4
_SHORT = 8


class Redactor:
    """Scrubs free text of every secret value this process resolved (and their escapes).

    Only for text that comes from outside (error bodies, driver messages): structured output
    holds references and `(sensitive)` markers instead of values, so it is never scrubbed.
    """

    def __init__(self) -> None:
        self._forms: set[str] = set()
        self._short: set[str] = set()

    def add(self, value: str) -> None:
        if len(value) < _SHORTEST:  # "x" or "ab" would mask every such token in a message
            return
        forms = _escaped_forms(value)
        # A short secret (`null`, `5432`) is replaced only where it stands as a whole token,
        # never inside a word ("nullable") or a number.
        (self._short if len(value) < _SHORT else self._forms).update(forms)

    def scrub(self, text: str) -> str:
        text = redact_locators(text)
        for form in sorted(self._forms, key=len, reverse=True):
            text = text.replace(form, MASK)
        for form in sorted(self._short, key=len, reverse=True):
            text = re.sub(rf"(?<!\w){re.escape(form)}(?!\w)", MASK, text)
        return text


REDACTOR = Redactor()
