"""Issue 12.2: credentials in registry URLs appear nowhere.

One function (reconciler.redaction.redact_url) hides them, tested over every URL form; a
canary in a real registry URL's userinfo and query is then looked for in every output
format, error, saved plan, run report, metrics file, run log, history and imported manifest.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from click.testing import CliRunner, Result
from conftest import CANARY, sql_exec
from hypothesis import given
from hypothesis import strategies as st

from reconciler.cli import cli
from reconciler.redaction import REDACTOR, is_sensitive_name, redact_locators, redact_url

USER_CANARY = "urlCanaryUser7c1e"
QUERY_CANARY = "urlCanaryQuery93ab"

FORMS = [
    # (url, redacted)
    ("postgresql://u:secretpw@host/db", "postgresql://u:***@host/db"),
    ("postgresql://u:p@ss:w@host:5432/db", "postgresql://u:***@host:5432/db"),
    ("postgresql://u:pa/ss@host/db?sslmode=require", "postgresql://u:***@host/db?sslmode=require"),
    ("postgresql://u:pa?ss@host/db", "postgresql://u:***@host/db"),
    ("postgresql://u:pa#ss@[::1]:5432/db", "postgresql://u:***@[::1]:5432/db"),
    ("postgres://u:p%40ss@host/db", "postgres://u:***@host/db"),
    ("postgresql://tokenonly@host/db", "postgresql://***@host/db"),
    ("postgresql://postgres:@/db?host=/tmp", "postgresql://postgres:@/db?host=/tmp"),
    ("postgresql://u:pw@/db?host=/tmp/sock", "postgresql://u:***@/db?host=/tmp/sock"),
    (
        "postgresql://host/db?password=pw&sslpassword=k&application_name=a",
        "postgresql://host/db?password=***&sslpassword=***&application_name=a",
    ),
    ("postgresql://host/db?sslkey=/etc/key.pem", "postgresql://host/db?sslkey=/etc/key.pem"),
    ("postgresql://host/db?user=a@b", "postgresql://host/db?user=a@b"),
    (
        "https://api.example/v1?token=t&access_token=a&api_key=k&apikey=k2&key=k3#frag",
        "https://api.example/v1?token=***&access_token=***&api_key=***&apikey=***&key=***#frag",
    ),
    (
        "https://h/x?client_secret=c&sig=s&signature=s2&X-Amz-Signature=s3&page=2",
        "https://h/x?client_secret=***&sig=***&signature=***&X-Amz-Signature=***&page=2",
    ),
    ("streamkap+https://u:pw@h/?tenant=t", "streamkap+https://u:***@h/?tenant=t"),
    ("host=db port=5432 password=pw user=u", "host=db port=5432 password=*** user=u"),
    ("host=db password='p w\\' x' user=u", "host=db password=*** user=u"),
    ("sqlite:///.reconciler/registry.db", "sqlite:///.reconciler/registry.db"),
]


@pytest.mark.parametrize(("url", "redacted"), FORMS)
def test_every_url_form_is_redacted(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted
    assert (
        redact_locators(f"error: cannot connect to {url} now")
        == f"error: cannot connect to {redacted} now"
    )


# A password made of anything a URL may carry unencoded, except whitespace.
PASSWORDS = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), exclude_characters="\\"
    ),
    min_size=1,
    max_size=24,
)


@given(password=PASSWORDS)
def test_any_userinfo_password_is_hidden_whole(password: str) -> None:
    url = f"postgresql://etl:{password}@db.internal:5432/shop?sslmode=require"
    assert redact_url(url) == "postgresql://etl:***@db.internal:5432/shop?sslmode=require"


@given(password=PASSWORDS, name=st.sampled_from(["password", "sslpassword", "token", "api_key"]))
def test_any_secret_query_parameter_is_hidden(password: str, name: str) -> None:
    url = f"postgresql://db.internal/shop?{name}={quote(password, safe='')}&sslmode=require"
    assert redact_url(url) == f"postgresql://db.internal/shop?{name}=***&sslmode=require"


@pytest.mark.parametrize(
    "name",
    ["password", "PASSWORD", "sslpassword", "passwd", "db_pwd", "secret", "client_secret",
     "token", "access_token", "api_key", "apikey", "API-Key", "key", "privateKey",
     "private key", "private_key", "ssh.privateKey", "credentials", "signature", "sig",
     "credentials.personal_access_token", "database.password"],
)  # fmt: skip
def test_secret_names(name: str) -> None:
    assert is_sensitive_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "host",
        "port",
        "user",
        "dbname",
        "sslkey",
        "sslmode",
        "table",
        "monkey",
        "author",
        "credentials.host",
        "credentials.user",
    ],
)
def test_ordinary_names(name: str) -> None:
    assert not is_sensitive_name(name)


# -- the canary, end to end -------------------------------------------------------------


def _canary_url(pg_url: str) -> str:
    """The test database's URL with a password in the userinfo and two in the query
    (the server trusts local connections, so it ignores them)."""
    scheme_less = pg_url.removeprefix("postgresql://postgres:@")
    return (
        f"postgresql://postgres:{USER_CANARY}@{scheme_less}"
        f"&password={QUERY_CANARY}&sslpassword={QUERY_CANARY}"
    )


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"ORDERS_DB_PASSWORD": CANARY, "NO_COLOR": "1"})


def _clean(text: str) -> None:
    for canary in (USER_CANARY, QUERY_CANARY, CANARY):
        assert canary not in text


def test_registry_url_credentials_appear_nowhere(
    pg_url: str, sources: Path, tmp_path: Path
) -> None:
    url = _canary_url(pg_url)
    assert "?host=" in pg_url and "&password=" in url
    out = tmp_path / "out"
    common = ["--registry", url, "--sources-dir", str(sources)]
    files = [f"{fmt}={out / ('report.' + fmt)}" for fmt in ("json", "markdown", "junit", "github")]
    outputs = [opt for f in files for opt in ("-o", f)]
    report, metrics, saved = out / "run.json", out / "metrics.prom", out / "plan.json"

    texts: list[str] = []

    def run(*args: str, code: int | None = 0) -> None:
        result = _invoke(*args)
        texts.append(result.output + result.stderr)
        assert "Traceback" not in result.output + result.stderr
        assert code is None or result.exit_code == code, result.output + result.stderr

    run("plan", *common, "-o", "text", *outputs, "--report", str(report),
        "--metrics-file", str(metrics), code=0)  # fmt: skip
    run("plan", *common, "--out", str(saved))
    run("apply", str(saved), *common, "--report", str(report))
    # An unowned record to import, then a failed run in the run log.
    sql_exec(
        pg_url,
        "INSERT INTO sources (id, name, source_type, connection, description, tags, "
        "registered_by, registered_at, updated_at) VALUES (gen_random_uuid(), ?, 'csv', "
        "?::jsonb, '', '[]'::jsonb, 'alice', now(), now())",
        ("hand", json.dumps({"file_path": "x.csv"})),
    )
    imported = tmp_path / "imported"
    run("import", "--all", "--sources-dir", str(imported), "--registry", url)
    run("apply", str(saved), *common, "--report", str(report), code=1)  # stale: logged
    run("drift", *common, "-o", "json", code=None)
    run("history", "--registry", url)
    run("history", "--registry", url, "-o", "json")
    for written in [report, metrics, saved, *out.glob("report.*"), *imported.glob("*.yaml")]:
        texts.append(written.read_text())
    assert "postgres:***@" in "".join(texts)  # the registry is named, without its password
    _clean("\n".join(texts))


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://u:p@{USER_CANARY}:w@127.0.0.1:1/db?password={QUERY_CANARY}",
        f"postgresql://u:{USER_CANARY}/x@127.0.0.1:1/db",
        f"postgresql://u:{USER_CANARY}@127.0.0.1:1/db?password={QUERY_CANARY}&connect_timeout=1",
        f"postgresq://u:{USER_CANARY}@h/db?token={QUERY_CANARY}",
        f"sqlite://u:{USER_CANARY}@h/db?password={QUERY_CANARY}",
        f"streamkap+https://u:{USER_CANARY}@127.0.0.1:1/?token={QUERY_CANARY}",
        f"http://u:{USER_CANARY}@127.0.0.1:1/?api_key={QUERY_CANARY}",
    ],
)
def test_errors_about_a_registry_url_never_show_its_credentials(
    url: str, sources: Path, tmp_path: Path
) -> None:
    report = tmp_path / "run.json"
    result = _invoke("plan", "--registry", url, "--sources-dir", str(sources),
                     "--report", str(report), "-o", f"junit={tmp_path / 'j.xml'}")  # fmt: skip
    assert result.exit_code == 1, result.output + result.stderr
    assert "error:" in result.stderr
    _clean(result.output + result.stderr + report.read_text())


def test_a_secret_a_server_echoes_is_scrubbed_in_every_escaped_form() -> None:
    secret = 'pa"ss wörd/+&'
    REDACTOR.add(secret)
    echoed = [
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
    ]
    for form in echoed:
        assert redact_locators(form) == form  # not a URL: only the redactor can know
        assert REDACTOR.scrub(f"invalid value '{form}' in body") == "invalid value '***' in body"
