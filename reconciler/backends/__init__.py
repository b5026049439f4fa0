"""Registry backends, picked by the scheme of the registry URL."""

from __future__ import annotations

from importlib import import_module
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


def _lazy(module: str, opener: str) -> Factory:
    """The factory of one backend: it imports `reconciler.backends.MODULE` only when called
    (a backend's driver or HTTP client costs start-up time) and opens with its OPENER. mypy
    cannot see through the import, so the result is checked here: it is a Registry (and
    tests/test_backend_interfaces.py has mypy check every opener against `Factory`)."""

    def factory(url: str, *, writable: bool, options: ConnectOptions) -> Registry:
        found = getattr(import_module(f"reconciler.backends.{module}"), opener)
        opened: object = found(url, writable=writable, options=options)
        if not isinstance(opened, Registry):
            raise TypeError(f"{module}.{opener} opened a {type(opened).__name__}, not a Registry")
        return opened

    return factory


_sqlite = _lazy("sql.sqlite", "open_sqlite")
_postgres = _lazy("sql.postgres", "open_postgres")
_sources_api = _lazy("providers.sources_api", "open_http")

# scheme -> factory; adding a backend is one module and one line here. A provider's key
# ends with "+": it serves NAME+https:// and NAME+http:// (the latter for local servers).
BACKENDS: dict[str, Factory] = {
    "sqlite": _sqlite,
    "postgresql": _postgres,
    "postgres": _postgres,
    "http": _sources_api,
    "https": _sources_api,
    "streamkap+": _lazy("providers.streamkap", "open_streamkap"),
    "airweave+": _lazy("providers.airweave", "open_airweave"),
    "airbyte-agents+": _lazy("providers.airbyte_agents", "open_airbyte_agents"),
    "splendor+": _lazy("providers.splendor", "open_splendor"),
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
