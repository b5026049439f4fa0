"""Origins (scheme, host, port): where a registry's credential may be sent, and how to say so."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

Origin = tuple[str, str, int | None]
_DEFAULT_PORT = {"http": 80, "https": 443}


def origin(url: str, base: Origin | None = None) -> Origin:
    """(scheme, host, port) of `url`, default ports made explicit; a relative URL is `base`'s."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ("invalid", "", None)
    scheme = parts.scheme.lower()
    if not scheme and not parts.netloc and base is not None:
        return base
    return (scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORT.get(scheme))


def format_origin(where: Origin) -> str:
    scheme, host, port = where
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + (f":{port}" if port is not None else "")


def call(request: httpx.Request) -> str:
    """How a message names a call: method and path, never the query (it may carry a key)."""
    return f"{request.method} {request.url.path}"
