"""Issue 12.13: every sensitive field of a provider connection takes a reference, never a
literal, and no value of one is ever printed.

Which fields are sensitive is decided by the provider's connection schema (one pattern per
schema, `x-sensitive`), so these cases name fields of every kind the vendors document:
passwords, passphrases, private keys, API keys and tokens, OAuth client secrets and
refresh tokens, connection strings, service-account files, SASL JAAS configs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import reconcile
from provider_cases import CASES, TOKEN, Case
from provider_harness import Cli

LITERAL = "lit-Secret-9c41e7"
NUMBER = 48151623  # a literal that is not a string: the type error must hide it too

# provider -> (source_type, the connection's other required keys, its sensitive keys)
SENSITIVE: dict[str, tuple[str, dict[str, Any], tuple[str, ...]]] = {
    "streamkap": (
        "streamkap/postgresql",
        {"database.hostname.user.defined": "db.internal"},
        (
            "database.password",
            "database.password.user.defined",
            "ssh.private.key",
            "ssh.privateKey",
            "snowflake.private.key.passphrase",
            "api.key",
            "mongodb.connection.string.user.defined",
            "sasl.jaas.config",
            "oauth.client.secret",
            "access.token",
            "aws.credentials",
            "gcp.service.account.json",
        ),
    ),
    "airweave": (
        "airweave/github",
        {"readable_collection_id": "docs"},
        (
            "credentials.personal_access_token",
            "credentials.api_key",
            "credentials.password",
            "credentials.client_secret",
            "credentials.privateKey",
            "credentials.refresh_token",
            "credentials.service_account_json",
        ),
    ),
    "airbyte-agents": (
        "airbyte-agents/hubspot",
        {},
        (
            "credentials.client_secret",
            "credentials.refresh_token",
            "credentials.access_token",
            "credentials.api_key",
            "credentials.personal_access_token",
            "credentials.password",
            "credentials.credentials_json",
        ),
    ),
    "splendor": (
        "splendor/hubspot",
        {},
        (
            "client_secret",
            "refresh_token",
            "api_key",
            "password",
            "private_key",
            "credentials_json",
            "service_account_info",
            "tunnel_method.ssh_key",
            "source.external_id",
        ),
    ),
}
NOWHERE = {
    "streamkap": "streamkap+http://127.0.0.1:9",
    "airweave": "airweave+http://127.0.0.1:9",
    "airbyte-agents": "airbyte-agents+http://127.0.0.1:9?workspace_name=default",
    "splendor": "splendor+http://127.0.0.1:9?tenant=acme",
}


def _manifest(source_type: str, connection: dict[str, Any]) -> str:
    lines = ["name: vault", f"source_type: {source_type}", "connection:"]
    lines += [
        f"  {key}: {value!r}" if isinstance(value, str) else f"  {key}: {value}"
        for key, value in connection.items()
    ]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("provider", sorted(SENSITIVE))
@pytest.mark.parametrize("literal", [LITERAL, NUMBER], ids=["string", "number"])
def test_a_literal_in_a_sensitive_field_is_refused_and_never_printed(
    provider: str, literal: Any, tmp_path: Path
) -> None:
    source_type, required, keys = SENSITIVE[provider]
    sources = tmp_path / "sources.d"
    sources.mkdir()
    connection = {**required, **{key: literal for key in keys}}
    (sources / "vault.yaml").write_text(_manifest(source_type, connection))
    for args in (("--dry-run",), ("--dry-run", "-o", "json"), ("--dry-run", "-o", "github")):
        result = reconcile(*args, registry=NOWHERE[provider], sources=sources)
        out = result.output + result.stderr
        assert result.exit_code == 1, out
        assert str(literal) not in out
        for line, key in enumerate(keys, start=4 + len(required)):
            assert f"vault.yaml:{line}" in out, (key, out)
            assert f"connection.{key}" in out, (key, out)


@pytest.mark.parametrize(
    ("provider", "nested"),
    [
        ("airweave", "config: {repo_name: docs, api_token: lit-Secret-9c41e7}"),
        ("airbyte-agents", "replication_config: {auth: {client_secret: lit-Secret-9c41e7}}"),
        ("splendor", "tunnel_method: [{tunnel_user_password: lit-Secret-9c41e7}]"),
    ],
)
def test_a_secret_inside_an_object_is_refused(provider: str, nested: str, tmp_path: Path) -> None:
    """References are resolved only in a connection's top-level keys: a secret-named key
    deeper down would be sent as written, so it is refused whatever its value."""
    source_type, required, _ = SENSITIVE[provider]
    sources = tmp_path / "sources.d"
    sources.mkdir()
    text = _manifest(source_type, required) + f"  {nested}\n"
    (sources / "vault.yaml").write_text(text)
    result = reconcile("--dry-run", registry=NOWHERE[provider], sources=sources)
    out = result.output + result.stderr
    assert result.exit_code == 1, out
    assert LITERAL not in out
    assert "a secret cannot sit inside an object" in out
    assert f"vault.yaml:{4 + len(required)}" in out


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_references_in_every_sensitive_field_plan_and_never_show(
    case: Case, tmp_path: Path
) -> None:
    """The orders manifest of each contract case, with every sensitive field of its
    provider added as a reference: the plan works, and no output format shows a value."""
    _, _, keys = SENSITIVE[case.name]
    values = {f"SECRET_{i}": f"ref-Secret-{i:02d}{case.name[:3]}" for i in range(len(keys))}
    with case.start() as server:
        case.prepare(server)
        run = Cli(case.url(server), tmp_path, case.token_env, TOKEN)
        run.env.update({**case.env, **values})
        for relative, text in case.manifests.items():
            if relative == "shop/orders.yaml":
                added = "".join(
                    f"  {k}: ${{env:SECRET_{i}}}\n"
                    for i, k in enumerate(keys)
                    if f"  {k}:" not in text
                )
                text = text.replace("connection:\n", "connection:\n" + added, 1)
            (run.sources / relative).parent.mkdir(parents=True, exist_ok=True)
            (run.sources / relative).write_text(text)
        for fmt in ("text", "json", "markdown", "github", "junit"):
            result = run("--dry-run", "-o", fmt)
            out = result.output + result.stderr
            assert result.exit_code == 0, out
            assert "orders" in out
            for value in values.values():
                assert value not in out, (fmt, value)
