"""Registry backends, picked by the scheme of the registry URL."""

from __future__ import annotations

from importlib import import_module

from reconciler.backends.base import ConnectOptions, Registry
from reconciler.errors import RegistryError
from reconciler.redaction import REDACTOR, redact_url, url_secrets

DEFAULT_REGISTRY = "sqlite:///.reconciler/registry.db"
DEFAULT_STATE = ConnectOptions().state
__all__ = ["BACKENDS", "DEFAULT_REGISTRY", "DEFAULT_STATE", "open_registry", "redact_url"]

# scheme -> "module:factory"; adding a backend is one module and one line here. A provider's
# key ends with "+": it serves NAME+https:// and NAME+http:// (the latter for local servers).
BACKENDS = {
    "sqlite": "reconciler.backends.sql.sqlite:open_sqlite",
    "postgresql": "reconciler.backends.sql.postgres:open_postgres",
    "postgres": "reconciler.backends.sql.postgres:open_postgres",
    "http": "reconciler.backends.providers.sources_api:open_http",
    "https": "reconciler.backends.providers.sources_api:open_http",
    "streamkap+": "reconciler.backends.providers.streamkap:open_streamkap",
    "airweave+": "reconciler.backends.providers.airweave:open_airweave",
    "airbyte-agents+": "reconciler.backends.providers.airbyte_agents:open_airbyte_agents",
    "splendor+": "reconciler.backends.providers.splendor:open_splendor",
}


def open_registry(url: str, *, writable: bool, options: ConnectOptions | None = None) -> Registry:
    """Open the registry named by URL; read-only opens never create anything."""
    for secret in url_secrets(url):
        REDACTOR.add(secret)  # whatever a driver or server echoes of it is scrubbed
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    provider, plus, _ = scheme.partition("+")
    target = BACKENDS.get(provider + plus if plus else scheme)
    if target is None:
        providers = ", ".join(k + "https://..." for k in BACKENDS if k.endswith("+"))
        known = f"sqlite:///PATH, postgresql://..., http(s)://..., {providers}"
        raise RegistryError(
            f"unsupported registry URL '{redact_url(url)}' (expected one of: {known})"
        )
    module, factory = target.split(":")
    registry: Registry = getattr(import_module(module), factory)(
        url, writable=writable, options=options or ConnectOptions()
    )
    return registry
