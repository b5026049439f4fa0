"""Registry backends, picked by the scheme of the registry URL."""

from __future__ import annotations

from typing import Protocol

from reconciler.backends.base import ConnectOptions, Registry
from reconciler.errors import RegistryError
from reconciler.redaction import REDACTOR, redact_url, url_secrets

DEFAULT_REGISTRY = "sqlite:///.reconciler/registry.db"
DEFAULT_STATE = ConnectOptions().state
__all__ = [
    "BACKENDS",
    "DEFAULT_REGISTRY",
    "DEFAULT_STATE",
    "Factory",
    "open_registry",
    "redact_url",
]


class Factory(Protocol):
    """Opens the registry at a URL of its scheme; read-only opens never create anything."""

    def __call__(self, url: str, *, writable: bool, options: ConnectOptions) -> Registry: ...


# One function per backend, each importing its module only when called (a backend's driver
# or HTTP client costs start-up time), and each checked by mypy: it returns a Registry.
def _sqlite(url: str, *, writable: bool, options: ConnectOptions) -> Registry:
    from reconciler.backends.sql.sqlite import open_sqlite

    return open_sqlite(url, writable=writable, options=options)


def _postgres(url: str, *, writable: bool, options: ConnectOptions) -> Registry:
    from reconciler.backends.sql.postgres import open_postgres

    return open_postgres(url, writable=writable, options=options)


def _sources_api(url: str, *, writable: bool, options: ConnectOptions) -> Registry:
    from reconciler.backends.providers.sources_api import open_http

    return open_http(url, writable=writable, options=options)


def _streamkap(url: str, *, writable: bool, options: ConnectOptions) -> Registry:
    from reconciler.backends.providers.streamkap import open_streamkap

    return open_streamkap(url, writable=writable, options=options)


def _airweave(url: str, *, writable: bool, options: ConnectOptions) -> Registry:
    from reconciler.backends.providers.airweave import open_airweave

    return open_airweave(url, writable=writable, options=options)


def _airbyte_agents(url: str, *, writable: bool, options: ConnectOptions) -> Registry:
    from reconciler.backends.providers.airbyte_agents import open_airbyte_agents

    return open_airbyte_agents(url, writable=writable, options=options)


def _splendor(url: str, *, writable: bool, options: ConnectOptions) -> Registry:
    from reconciler.backends.providers.splendor import open_splendor

    return open_splendor(url, writable=writable, options=options)


# scheme -> factory; adding a backend is one module, one function and one line here. A
# provider's key ends with "+": it serves NAME+https:// and NAME+http:// (the latter for
# local servers).
BACKENDS: dict[str, Factory] = {
    "sqlite": _sqlite,
    "postgresql": _postgres,
    "postgres": _postgres,
    "http": _sources_api,
    "https": _sources_api,
    "streamkap+": _streamkap,
    "airweave+": _airweave,
    "airbyte-agents+": _airbyte_agents,
    "splendor+": _splendor,
}


def open_registry(url: str, *, writable: bool, options: ConnectOptions | None = None) -> Registry:
    """Open the registry named by URL; read-only opens never create anything."""
    for secret in url_secrets(url):
        REDACTOR.add(secret)  # whatever a driver or server echoes of it is scrubbed
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    provider, plus, _ = scheme.partition("+")
    factory = BACKENDS.get(provider + plus if plus else scheme)
    if factory is None:
        providers = ", ".join(k + "https://..." for k in BACKENDS if k.endswith("+"))
        known = f"sqlite:///PATH, postgresql://..., http(s)://..., {providers}"
        raise RegistryError(
            f"unsupported registry URL '{redact_url(url)}' (expected one of: {known})"
        )
    return factory(url, writable=writable, options=options or ConnectOptions())
