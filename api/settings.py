"""The facade's configuration: one pydantic-settings tree, read once by the composition root.

Sources, highest priority first: keyword arguments, environment variables (prefix ``COREBRIDGE_``,
nested fields joined by ``__``: ``COREBRIDGE_AUTH__ISSUER``, ``COREBRIDGE_BACKENDS__SOAP__PASSWORD``),
the file named by ``COREBRIDGE_CONFIG_FILE`` (``*.toml``: tables per section; anything else is read
as a ``.env`` file of ``COREBRIDGE_...`` lines), then the defaults below. Sources are deep-merged,
so an environment variable overrides one key of a section the file sets.

Secrets are :class:`~pydantic.SecretStr`: they print as ``**********`` in ``repr``, in
``model_dump(mode="json")`` and in ``corebridge config show``. Secrets belong here (environment or
a file readable by the service only), never in mapping files.

Nothing reads the environment at import time: call :func:`load_settings` (or ``Settings()``).
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from api.batch.settings import BatchSettings
from api.store.settings import StoreSettings

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "CONFIG_FILE_ENV",
    "ENV_PREFIX",
    "SECRET_MASK",
    "AuthSettings",
    "BackendResilience",
    "BackendsSettings",
    "BreakerSettings",
    "LimitsSettings",
    "LoggingSettings",
    "OdbcSettings",
    "RateLimitSettings",
    "ResilienceSettings",
    "RoutingSettings",
    "ServerSettings",
    "Settings",
    "SftpBackendSettings",
    "SoapSettings",
    "StoreSettings",
    "load_settings",
    "masked_dump",
]

ENV_PREFIX = "COREBRIDGE_"
CONFIG_FILE_ENV = "COREBRIDGE_CONFIG_FILE"
SECRET_MASK = "**********"  # noqa: S105 - the mask, not a secret

#: asymmetric algorithms a JWKS key may be used with; HS256 is added only in demo mode
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- auth -----------------------------------------------------------------------------------------
class AuthSettings(_Section):
    """OAuth2 bearer JWTs: who issues them, for whom, and where their public keys are."""

    issuer: str = Field("https://auth.corebridge.example/", description="expected `iss` claim")
    audience: str = Field("corebridge", description="expected `aud` claim")
    jwks_file: Path | None = Field(None, description="a local JWKS file (RS256/ES256 public keys)")
    jwks_url: str | None = Field(None, description="a JWKS endpoint, fetched once and cached")
    jwks_cache_seconds: float = Field(300.0, gt=0, description="lifetime of a fetched JWKS")
    jwks_fetch_timeout: float = Field(5.0, gt=0)
    algorithms: tuple[str, ...] = Field(("RS256", "ES256"), description="accepted asymmetric `alg` values")
    leeway_seconds: float = Field(10.0, ge=0, le=120, description="clock skew allowed on exp/nbf/iat")
    token_cache_size: int = Field(4096, ge=0, description="verified tokens kept (LRU); 0 disables the cache")
    max_token_bytes: int = Field(8192, ge=256)
    demo_mode: bool = Field(False, description="accept HS256 tokens signed with demo_hs256_secret "
                                               "(never in production)")
    demo_hs256_secret: SecretStr | None = Field(None, description="HS256 secret of demo tokens (>= 32 characters)")
    admin_scope: str = "admin"

    @field_validator("algorithms")
    @classmethod
    def _only_asymmetric(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [a for a in value if a not in ASYMMETRIC_ALGORITHMS]
        if bad:
            raise ValueError(f"algorithms {bad} are not asymmetric JWS algorithms "
                             f"({', '.join(ASYMMETRIC_ALGORITHMS)}); HS256 is enabled by demo_mode only")
        return value

    @model_validator(mode="after")
    def _demo_secret(self) -> AuthSettings:
        if self.demo_mode:
            secret = self.demo_hs256_secret.get_secret_value() if self.demo_hs256_secret else ""
            if len(secret) < 32:
                raise ValueError("demo_mode needs demo_hs256_secret of at least 32 characters")
        return self


# -- request limits ------------------------------------------------------------------------------
class RateLimitSettings(_Section):
    """A token bucket per client (token subject, or client IP before authentication)."""

    enabled: bool = True
    rate_per_second: float = Field(20.0, gt=0, description="sustained requests per second per client")
    burst: int = Field(40, ge=1, description="bucket size: requests a client may send at once")
    max_clients: int = Field(100_000, ge=1, description="buckets kept (LRU)")


class LimitsSettings(_Section):
    max_body_bytes: int = Field(16 * 1024, ge=0, description="larger request bodies get 413")
    max_page_size: int = Field(200, ge=1, le=1000, description="upper bound of `limit` on list endpoints")
    default_page_size: int = Field(50, ge=1)
    core_timeout: float | None = Field(
        None, gt=0, description="timeout handed to the ports per request; None: the resilience deadline rules")

    @model_validator(mode="after")
    def _default_within_cap(self) -> LimitsSettings:
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size must not exceed max_page_size")
        return self


# -- backends -------------------------------------------------------------------------------------
class SoapSettings(_Section):
    """Mirrors :class:`adapters.soap.SoapSettings` (see :meth:`to_adapter_settings`)."""

    endpoint: str = "http://127.0.0.1:8081/corebank/v1"
    username: str = "CBRIDGE"
    password: SecretStr | None = None
    wsdl_path: Path | None = Field(None, description="local WSDL copy; None: adapters/wsdl/CoreBanking.wsdl")
    connect_timeout: float = Field(3.0, gt=0)
    read_timeout: float = Field(10.0, gt=0)
    pool_size: int = Field(20, ge=1, description="keep-alive connections (size it to the bulkhead)")
    max_response_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    verify: bool | str = Field(True, description="TLS verification: true, or a CA bundle path")
    proxy: SecretStr | None = Field(None, description="HTTP proxy URL (may carry credentials)")

    def to_adapter_settings(self) -> Any:
        from adapters.soap import SoapSettings as AdapterSoapSettings

        return AdapterSoapSettings(
            endpoint=self.endpoint, username=self.username,
            password=self.password.get_secret_value() if self.password else "",
            wsdl_path=self.wsdl_path, connect_timeout=self.connect_timeout, read_timeout=self.read_timeout,
            pool_size=self.pool_size, max_response_bytes=self.max_response_bytes, verify=self.verify,
            proxy=self.proxy.get_secret_value() if self.proxy else None,
        )


class OdbcSettings(_Section):
    """Mirrors :class:`adapters.odbc.OdbcSettings` (see :meth:`to_adapter_settings`)."""

    connection_string: SecretStr | None = Field(None, description="DSN-less ODBC connection string")
    pool_size: int = Field(4, ge=1)
    login_timeout: float = Field(5.0, gt=0)
    query_timeout: float = Field(10.0, gt=0)
    checkout_timeout: float = Field(2.0, gt=0)
    fetch_batch: int = Field(1000, ge=1)
    pad_keys: bool = True
    max_idle: float | None = Field(300.0, gt=0)
    limit_syntax: Literal["limit", "fetch_first"] = "limit"
    native_rows: bool = Field(True, description="read rows with the mapping's C row program where it is built "
                                                 "(same results; false: the generated Python)")
    statement_cache: int = Field(16, ge=0, description="prepared statements kept per connection "
                                                       "(0: prepare every statement again)")

    def to_adapter_settings(self) -> Any:
        from adapters.odbc import OdbcSettings as AdapterOdbcSettings

        if self.connection_string is None:
            raise ValueError("backends.odbc.connection_string is not set")
        values = self.model_dump(exclude={"connection_string"})
        return AdapterOdbcSettings(connection_string=self.connection_string.get_secret_value(), **values)


class SftpBackendSettings(_Section):
    """Mirrors :class:`adapters.sftp.SftpSettings` (see :meth:`to_adapter_settings`)."""

    host: str = "127.0.0.1"
    port: int = Field(2222, gt=0, lt=65536)
    username: str = "cbbatch"
    password: SecretStr | None = None
    private_key_path: Path | None = None
    private_key_passphrase: SecretStr | None = None
    known_hosts_path: Path | None = None
    host_key_fingerprint: str | None = Field(None, description="SHA256:... as ssh-keygen -lf prints it")
    connect_timeout: float = Field(10.0, gt=0)
    operation_timeout: float = Field(30.0, gt=0)
    outbox: str = "/outbox"
    inbox: str = "/inbox"
    download_dir: Path = Path("var/batch/incoming")

    def to_adapter_settings(self) -> Any:
        """The adapter's own settings object (imports paramiko through ``adapters.sftp``)."""
        from adapters.sftp import SftpSettings

        return SftpSettings(
            host=self.host, port=self.port, username=self.username,
            password=self.password.get_secret_value() if self.password else None,
            private_key_path=self.private_key_path,
            private_key_passphrase=(self.private_key_passphrase.get_secret_value()
                                    if self.private_key_passphrase else None),
            known_hosts_path=self.known_hosts_path, host_key_fingerprint=self.host_key_fingerprint,
            connect_timeout=self.connect_timeout, operation_timeout=self.operation_timeout,
            outbox=self.outbox, inbox=self.inbox, download_dir=self.download_dir,
        )


class BackendsSettings(_Section):
    soap: SoapSettings = SoapSettings()
    odbc: OdbcSettings = OdbcSettings()
    sftp: SftpBackendSettings = SftpBackendSettings()


# -- resilience -----------------------------------------------------------------------------------
class BreakerSettings(_Section):
    """Mirrors :class:`adapters.resilience.BreakerConfig` (Resilience4j's names)."""

    failure_rate_threshold: float = Field(50.0, gt=0, le=100)
    slow_call_rate_threshold: float = Field(100.0, gt=0, le=100)
    slow_call_duration: float = Field(5.0, gt=0)
    sliding_window_type: Literal["count", "time"] = "count"
    sliding_window_size: int = Field(50, ge=1)
    window_seconds: int = Field(60, ge=1)
    minimum_number_of_calls: int = Field(20, ge=1)
    wait_duration_in_open: float = Field(30.0, ge=0)
    permitted_calls_in_half_open: int = Field(5, ge=1)


class BackendResilience(_Section):
    """Mirrors :class:`adapters.resilience.ResilienceConfig` (see :meth:`to_config`)."""

    attempt_timeout: float = Field(5.0, gt=0)
    total_deadline: float = Field(15.0, gt=0)
    max_attempts: int = Field(3, ge=1)
    backoff_base: float = Field(0.1, ge=0)
    backoff_cap: float = Field(2.0, ge=0)
    budget_max_tokens: float = Field(10.0, ge=0)
    budget_token_ratio: float = Field(0.1, ge=0)
    bulkhead_size: int = Field(10, ge=1)
    bulkhead_max_wait: float = Field(1.0, ge=0, description="a call waits this long for a free slot before "
                                                             "503 (bounded by its deadline)")
    breaker: BreakerSettings = BreakerSettings()

    def to_config(self) -> Any:
        """The pipeline's :class:`~adapters.resilience.ResilienceConfig` for these settings."""
        from adapters.resilience import BreakerConfig, ResilienceConfig

        values = self.model_dump(exclude={"breaker"})
        return ResilienceConfig(**values, breaker=BreakerConfig(**self.breaker.model_dump()))


class ResilienceSettings(_Section):
    soap: BackendResilience = BackendResilience()
    odbc: BackendResilience = BackendResilience(attempt_timeout=3.0, total_deadline=8.0)
    sftp: BackendResilience = BackendResilience(attempt_timeout=30.0, total_deadline=120.0, max_attempts=2,
                                                bulkhead_size=2)


class RoutingSettings(_Section):
    """Which backend serves each read (``routes``: operation -> backend, ``default`` for the rest), the
    stale fallback per operation (balance only, see :mod:`adapters.routing`), and the backends
    ``/readyz`` requires (a required backend with an OPEN breaker makes the facade not ready).
    Transfers always go to SOAP."""

    routes: dict[str, str] = Field(default_factory=lambda: {"default": "soap"})
    fallbacks: dict[str, str] = Field(default_factory=lambda: {"balance": "odbc"})
    required_backends: tuple[str, ...] = ("soap",)

    def to_adapter_settings(self) -> Any:
        """:class:`adapters.routing.RoutingSettings` (which checks the operation names)."""
        from adapters.routing import RoutingSettings as AdapterRouting

        return AdapterRouting(routes=self.routes, fallbacks=self.fallbacks)


# -- process ----------------------------------------------------------------------------------------
class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, gt=0, lt=65536)
    workers: int = Field(1, ge=1)
    root_path: str = ""
    gc_threshold: int = Field(
        20_000, ge=0, description="once the app is built, its objects are frozen out of the cyclic collector and "
                                  "a young-generation collection runs every this many allocations (CPython's "
                                  "default 700 ran one every few requests); 0: leave the collector as it is")


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = Field("json", description="one JSON object per line, or plain text (both masked)")


class Settings(BaseSettings):
    """The effective configuration of one facade process."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True,
        case_sensitive=False, validate_default=True,
    )

    auth: AuthSettings = AuthSettings()
    cursor_secret: SecretStr = Field(
        default_factory=lambda: SecretStr(secrets.token_urlsafe(32)),
        description="HMAC key of pagination cursors; share it between instances (default: random per process)")
    rate_limit: RateLimitSettings = RateLimitSettings()
    limits: LimitsSettings = LimitsSettings()
    backends: BackendsSettings = BackendsSettings()
    resilience: ResilienceSettings = ResilienceSettings()
    routing: RoutingSettings = RoutingSettings()
    server: ServerSettings = ServerSettings()
    logging: LoggingSettings = LoggingSettings()
    mappings_dir: Path | None = Field(None, description="mapping files; None: the packaged mappings/")
    store: StoreSettings = Field(default_factory=StoreSettings,
                                 description="idempotency keys and the transfer intent log (backend none: off)")
    batch: BatchSettings = Field(default_factory=BatchSettings, description="batch read model, pull, history mode")

    @field_validator("cursor_secret")
    @classmethod
    def _cursor_secret_long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("cursor_secret must be at least 16 characters")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_FILE_ENV)
        if config_file:
            path = Path(config_file)
            if not path.is_file():
                raise FileNotFoundError(f"{CONFIG_FILE_ENV}={config_file}: no such file")
            if path.suffix.lower() == ".toml":
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
            else:
                sources.append(DotEnvSettingsSource(settings_cls, env_file=path))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Read the configuration (environment + ``COREBRIDGE_CONFIG_FILE``); keyword overrides win."""
    return Settings(**overrides)


_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/@:\s]*:)[^/@\s]*(?P<tail>@)", re.IGNORECASE)


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(rf"\g<head>{SECRET_MASK}\g<tail>", value)
    return value


def masked_dump(settings: Settings) -> dict[str, Any]:
    """The configuration as JSON-ready data, every secret (and URL password) as ``**********``."""
    data = settings.model_dump(mode="json")
    return _mask(data)
