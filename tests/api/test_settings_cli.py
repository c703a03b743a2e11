"""Settings sources (env, TOML or .env file), masked `config show`, the demo `token` command."""

from __future__ import annotations

import json

import jwt
import pytest
import typer
from typer.testing import CliRunner

from api.cli_facade import register
from api.settings import Settings, masked_dump
from tests.api.helpers import DEMO_SECRET

runner = CliRunner()


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_environment_with_nested_names(monkeypatch):
    monkeypatch.setenv("COREBRIDGE_AUTH__ISSUER", "https://issuer.example/")
    monkeypatch.setenv("COREBRIDGE_BACKENDS__SOAP__PASSWORD", "soap-pass-123")
    monkeypatch.setenv("COREBRIDGE_RESILIENCE__SOAP__BREAKER__WAIT_DURATION_IN_OPEN", "7.5")
    monkeypatch.setenv("COREBRIDGE_ROUTING__REQUIRED_BACKENDS", '["soap", "odbc"]')
    s = Settings()
    assert s.auth.issuer == "https://issuer.example/"
    assert s.backends.soap.password.get_secret_value() == "soap-pass-123"
    assert s.resilience.soap.breaker.wait_duration_in_open == 7.5
    assert s.resilience.odbc.attempt_timeout == 3.0  # the other backends keep their defaults
    assert s.routing.required_backends == ("soap", "odbc")
    config = s.resilience.soap.to_config()
    assert config.breaker.wait_duration_in_open == 7.5 and config.attempt_timeout == 5.0


def test_toml_config_file_under_the_environment(monkeypatch, tmp_path):
    path = tmp_path / "corebridge.toml"
    path.write_text('[auth]\nissuer = "https://from-file/"\naudience = "file-aud"\n'
                    '[backends.odbc]\nconnection_string = "DRIVER={SQLite3};PWD=odbc-secret"\n'
                    '[limits]\nmax_page_size = 100\n')
    monkeypatch.setenv("COREBRIDGE_CONFIG_FILE", str(path))
    monkeypatch.setenv("COREBRIDGE_AUTH__AUDIENCE", "env-aud")
    s = Settings()
    assert s.auth.issuer == "https://from-file/" and s.auth.audience == "env-aud"
    assert s.limits.max_page_size == 100
    assert "odbc-secret" in s.backends.odbc.connection_string.get_secret_value()


def test_dotenv_config_file(monkeypatch, tmp_path):
    path = tmp_path / "corebridge.env"
    path.write_text("COREBRIDGE_SERVER__PORT=9001\nCOREBRIDGE_CURSOR_SECRET=dotenv-cursor-secret-123\n")
    monkeypatch.setenv("COREBRIDGE_CONFIG_FILE", str(path))
    s = Settings()
    assert s.server.port == 9001 and s.cursor_secret.get_secret_value() == "dotenv-cursor-secret-123"


def test_missing_config_file_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("COREBRIDGE_CONFIG_FILE", str(tmp_path / "nope.toml"))
    with pytest.raises(FileNotFoundError):
        Settings()


def test_unknown_keys_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "c.toml"
    path.write_text("[auth]\nisuer = 'typo'\n")
    monkeypatch.setenv("COREBRIDGE_CONFIG_FILE", str(path))
    with pytest.raises(ValueError, match="isuer"):
        Settings()


SECRETS = {"COREBRIDGE_BACKENDS__SOAP__PASSWORD": "soap-pass-XYZ",
           "COREBRIDGE_BACKENDS__ODBC__CONNECTION_STRING": "DRIVER={X};PWD=odbc-pass-XYZ",
           "COREBRIDGE_BACKENDS__SFTP__PASSWORD": "sftp-pass-XYZ",
           "COREBRIDGE_CURSOR_SECRET": "cursor-secret-XYZ-0123",
           "COREBRIDGE_AUTH__DEMO_MODE": "true",
           "COREBRIDGE_AUTH__DEMO_HS256_SECRET": DEMO_SECRET,
           "COREBRIDGE_AUTH__JWKS_URL": "https://user:url-pass-XYZ@auth.example/jwks"}


@pytest.mark.parametrize("fmt", ["json", "env"])
def test_config_show_masks_secrets(cli, monkeypatch, fmt):
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    result = runner.invoke(cli, ["config", "show", "--format", fmt])
    assert result.exit_code == 0, result.output
    assert "XYZ" not in result.output and DEMO_SECRET not in result.output
    assert "**********" in result.output
    if fmt == "json":
        data = json.loads(result.output)
        assert data["backends"]["soap"]["password"] == "**********"
        assert data["auth"]["jwks_url"] == "https://user:**********@auth.example/jwks"
    else:
        assert "COREBRIDGE_BACKENDS__SOAP__PASSWORD=**********" in result.output


def test_masked_dump_keeps_non_secrets():
    data = masked_dump(Settings(cursor_secret="c" * 20))
    assert data["server"]["port"] == 8000 and data["cursor_secret"] == "**********"


def test_token_command_mints_a_demo_token(cli, monkeypatch):
    monkeypatch.setenv("COREBRIDGE_AUTH__DEMO_MODE", "true")
    monkeypatch.setenv("COREBRIDGE_AUTH__DEMO_HS256_SECRET", DEMO_SECRET)
    result = runner.invoke(cli, ["token", "--customer", "C0000001", "--scopes", "accounts:read,transfers:write",
                                 "--ttl", "120"])
    assert result.exit_code == 0, result.output
    s = Settings()
    claims = jwt.decode(result.output.strip(), DEMO_SECRET, algorithms=["HS256"], audience=s.auth.audience,
                        issuer=s.auth.issuer)
    assert claims["sub"] == "C0000001" and claims["scope"] == "accounts:read transfers:write"
    assert claims["exp"] - claims["iat"] == 120
    admin = runner.invoke(cli, ["token", "--customer", "svc-backend", "--admin"])
    claims = jwt.decode(admin.output.strip(), DEMO_SECRET, algorithms=["HS256"], audience=s.auth.audience)
    assert "admin" in claims["scope"].split()


def test_token_command_refuses_outside_demo_mode(cli):
    result = runner.invoke(cli, ["token", "--customer", "C0000001"])
    assert result.exit_code == 1 and "refused" in result.output


def test_backend_sections_build_the_adapters_settings(tmp_path):
    """The composition root turns each section into its adapter's settings object in one call."""
    s = Settings(cursor_secret="c" * 20, backends={
        "soap": {"password": "soap-pass"},
        "odbc": {"connection_string": "DRIVER={SQLite3};Database=/tmp/x.db", "statement_cache": 3},
        "sftp": {"password": "sftp-pass", "host_key_fingerprint": "SHA256:" + "A" * 43},
    })
    soap = s.backends.soap.to_adapter_settings()
    assert soap.endpoint == s.backends.soap.endpoint and soap.password == "soap-pass"
    odbc = s.backends.odbc.to_adapter_settings()
    assert odbc.connection_string.startswith("DRIVER={SQLite3}") and odbc.statement_cache == 3
    sftp = s.backends.sftp.to_adapter_settings()
    assert sftp.port == 2222 and sftp.password == "sftp-pass"
    assert s.routing.to_adapter_settings().source_for("balance") == "soap"
    assert s.resilience.sftp.to_config().bulkhead_size == 2
    assert "soap-pass" not in repr(s) and "sftp-pass" not in repr(s)
