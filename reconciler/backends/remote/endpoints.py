"""A registry URL taken apart: `[PROVIDER+]http(s)://HOST[:PORT][/PREFIX][?PARAMS]` into
where requests go and the key that identifies the registry in a shared state store."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from reconciler.errors import RegistryError
from reconciler.redaction import redact_url


@dataclass(frozen=True)
class Endpoint:
    """A registry URL taken apart: where requests go, and what identifies the registry.

    `key` has no credentials and its query (only the parameters that select what the
    registry is, e.g. a tenant) sorted, so state is shared by every spelling of one URL.
    """

    base: str
    key: str
    query: dict[str, str] = field(default_factory=dict)


def endpoint(
    url: str,
    *,
    expected: str,
    provider: str | None = None,
    params: Collection[str] = (),
    required: Collection[str] = (),
    strip_path: str = "",
) -> Endpoint:
    """Parse `[PROVIDER+]http(s)://HOST[:PORT][/PREFIX][?PARAMS]`; `expected` shows the form.

    Unknown query parameters are errors: a mistyped `?tennant=` must not silently select
    nothing (or everything).
    """
    invalid = f"invalid registry URL '{redact_url(url)}' (expected {expected})"
    try:
        parts = urlsplit(url)
        port = parts.port
        query = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False))
    except ValueError:
        raise RegistryError(invalid) from None
    scheme = parts.scheme.lower()
    transport = scheme.removeprefix(f"{provider}+") if provider else scheme
    if transport not in ("http", "https") or (provider and transport == scheme):
        raise RegistryError(invalid)
    if not parts.hostname:
        raise RegistryError(invalid)
    unknown = sorted(set(query) - set(params))
    if unknown:
        allowed = ", ".join(sorted(params)) or "none"
        raise RegistryError(f"{invalid}: unknown parameter {unknown[0]} (allowed: {allowed})")
    missing = [p for p in required if not query.get(p)]
    if missing:
        raise RegistryError(f"{invalid}: {missing[0]} is required")
    path = parts.path.rstrip("/")
    if strip_path:
        path = path.removesuffix(strip_path)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname  # IPv6 literal
    if port:
        host += f":{port}"
    base_url = urlunsplit((transport, parts.netloc, path, "", ""))
    key = urlunsplit((scheme, host, path, urlencode(sorted(query.items())), ""))
    return Endpoint(base=base_url, key=key, query=query)
