"""One validated settings model.

Each setting comes from (highest first) the command line, an environment
variable ``SPREADWATCH_<NAME>`` (nested with ``__``), the TOML file given with
``--config``, or its default.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from platformdirs import user_data_dir
from pydantic import (
    AliasChoices,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from service import defaults
from service.errors import InputError, first_error
from service.tomlfile import read_toml

_config_data: ContextVar[dict[str, Any]] = ContextVar("spreadwatch_config", default={})  # noqa: B039


class IbSettings(BaseModel):
    """Interactive Brokers: IB Gateway or TWS, or ``spreadwatch fake-gateway``."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", min_length=1, description="IB Gateway / TWS host")
    port: int = Field(default=4002, ge=1, le=65535, description="4002: IB Gateway, paper")
    client_id: int = Field(
        default=17, ge=0, le=2**31 - 1, description="fixed: open orders are ours after a restart"
    )
    account: str = Field(default="", max_length=32, description="empty: the one account managed")
    market_data: Literal["live", "delayed"] = Field(
        default="live", description="delayed: fall back to delayed data when live is refused"
    )
    allow_live: bool = Field(default=False, description="trade an account that is not paper")
    timeout: float = Field(default=10.0, gt=0, le=300, description="seconds to connect")
    greeks_stale_after: float = Field(
        default=30.0, gt=0, le=3600, description="seconds without new IB Greeks: delta local"
    )


class SyncSettings(BaseModel):
    """``positions sync``: the book a spread found in the account is imported into."""

    model_config = ConfigDict(extra="forbid")

    book: str = Field(default="PRIMARY", min_length=1, description="the book of spreads found")
    books: dict[str, str] = Field(
        default_factory=dict, description='a book per underlying, over `book` (SPY = "NAME")'
    )


class LeaseSettings(BaseModel):
    """The trading lease: of the daemons of one account (one database), one trades."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        default="",
        max_length=200,
        description="this daemon's name as the lease's holder (empty: host:pid); a restart "
        "under the same name takes its lease back at once; never two daemons of one name",
    )
    ttl: float = Field(
        default=5.0, ge=1.0, le=60, description="seconds a lease lasts unrenewed (failover time)"
    )
    renew: float = Field(
        default=1.0, gt=0, le=20, description="seconds between renewals, and a standby's looks"
    )

    @model_validator(mode="after")
    def _renewed_in_time(self) -> LeaseSettings:
        if self.renew * 2 > self.ttl:
            raise ValueError(
                f"renew: {self.renew:g} s is more than half of ttl ({self.ttl:g} s): one "
                "late renewal would lose the lease"
            )
        return self


class Webhook(BaseModel):
    """Where alerts go: a URL and the payload's shape."""

    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl
    format: Literal["json", "slack", "discord"] = Field(
        default="json", description="json: kind, text, fields; slack: text; discord: content"
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SPREADWATCH_", env_nested_delimiter="__", extra="forbid"
    )

    rate: float = Field(
        default=defaults.RATE, ge=-0.05, le=0.5, description="risk-free rate, annual"
    )
    dividend: float = Field(
        default=defaults.DIVIDEND, ge=0, le=0.5, description="dividend yield, annual"
    )
    books_file: Path | None = Field(
        default=None, description="TOML file of books; the built-in PRIMARY and INCOME_POP if unset"
    )
    database_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("database_url", "DATABASE_URL", "SPREADWATCH_DATABASE_URL"),
        description="PostgreSQL URL (DATABASE_URL, as is); unset: an embedded server in data_dir",
    )
    data_dir: Path = Field(
        default_factory=lambda: Path(user_data_dir("spreadwatch")),
        description="where spreadwatch keeps its own files (the embedded database)",
    )
    account: str = Field(
        default="paper", min_length=1, max_length=32, description="account of imported positions"
    )
    http_host: str = Field(
        default="127.0.0.1", min_length=1, description="the health/metrics server's interface"
    )
    http_port: int = Field(
        default=8080, ge=0, le=65535, description="its port (0: any free port, printed)"
    )
    http: bool = Field(
        default=True, description="serve /healthz, /readyz, /metrics, the status page and API"
    )
    http_token: SecretStr | None = Field(
        default=None,
        min_length=16,
        description="the HTTP server's token (a bearer token, or the page's login): needed "
        "to bind http_host beyond loopback; unset: no token asked",
    )
    webhooks: list[Webhook] = Field(
        default_factory=list, description="alert webhooks (TOML [[webhooks]]; env: JSON list)"
    )
    disconnect_alert_after: float = Field(
        default=30.0, gt=0, le=3600, description="seconds disconnected before an alert"
    )
    poll: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="seconds between the daemon's looks at the store for changes made by "
        "hand (the fallback: changes are notified at once)",
    )
    reconcile: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="seconds between checks of the account's holdings against the open "
        "positions, at most (also on every broker position update)",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info",
        description="the least level logged (debug: libraries' info lines too, and each "
        "repeated decision)",
    )
    broker: Literal["sim", "ib"] = Field(
        default="sim", description="sim: the built-in simulated market; ib: Interactive Brokers"
    )
    ib: IbSettings = Field(default_factory=IbSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    lease: LeaseSettings = Field(default_factory=LeaseSettings)

    def check_http_token(self) -> None:
        """Refuse (one line) to serve beyond loopback without ``http_token``."""
        if self.http and self.http_token is None and not loopback(self.http_host):
            raise InputError(
                f"http_host: {self.http_host} is beyond loopback: set http_token "
                "(SPREADWATCH_HTTP_TOKEN, 16 characters or more) so that only its holders "
                "read the page and the API"
            )

    def secrets(self) -> list[str]:
        """Every secret in the settings, for the logs to mask wherever it appears: the
        database URL's password, each webhook's URL (its token is in the path)."""
        out: list[str] = []
        if self.database_url is not None:
            try:
                password = urlsplit(self.database_url.get_secret_value()).password
            except ValueError:  # (not a URL: the store says so, in one line)
                password = None
            out += [] if not password else [password, unquote(password)]
        token = [] if self.http_token is None else [self.http_token.get_secret_value()]
        return out + token + [str(hook.url) for hook in self.webhooks]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            InitSettingsSource(settings_cls, init_kwargs=_config_data.get()),
        )


def loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: it may resolve anywhere
        return False


PREFIX = defaults.PREFIX
NOT_SETTINGS = defaults.NOT_SETTINGS


def _names(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, bool, bool]]:
    """(variable, takes JSON, is a mapping) of each setting of ``model``, nested ones too."""
    for name, field in model.model_fields.items():
        var = prefix + name.upper()
        kind = field.annotation
        origin = getattr(kind, "__origin__", None)
        nested = isinstance(kind, type) and issubclass(kind, BaseModel)
        yield var, nested or origin in (list, dict), origin is dict
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            yield from _names(kind, var + "__")


def setting_variables() -> list[str]:
    """Every environment variable that names a setting (``SPREADWATCH_IB__PORT``...)."""
    return [var for var, _, _ in _names(Settings, PREFIX)]


def check_environment(environ: Mapping[str, str]) -> None:
    """Refuse a ``SPREADWATCH_*`` variable that names no setting (with the closest one),
    and malformed JSON in a setting that takes JSON, each in one line."""
    names = list(_names(Settings, PREFIX))
    known = {var for var, _, _ in names}
    mappings = tuple(var + "__" for var, _, mapping in names if mapping)
    json_vars = {var for var, takes_json, _ in names if takes_json}
    for raw in sorted(environ):
        var = raw.upper()
        if not var.startswith(PREFIX) or var in NOT_SETTINGS or var.startswith(mappings):
            continue
        if var not in known:
            # (the names' shared prefix left out: it would make every name look close)
            rests = sorted(k.removeprefix(PREFIX) for k in known)
            close = difflib.get_close_matches(var.removeprefix(PREFIX), rests, n=1, cutoff=0.6)
            hint = f"did you mean {PREFIX}{close[0]}?" if close else "see docs/configuration.md"
            raise InputError(f"{raw}: no such setting; {hint}")
        if var in json_vars:
            try:
                json.loads(environ[raw])
            except ValueError as exc:
                raise InputError(f"{raw}: not valid JSON: {exc}") from exc


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``config`` (TOML), the environment and ``overrides`` (None ignored)."""
    check_environment(os.environ)
    data: dict[str, Any] = {}
    where = "settings"
    if config is not None:
        where = str(config)
        data = read_toml(config)
    token = _config_data.set(data)
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        field, msg = first_error(exc)
        raise InputError(f"{where}: {field}: {msg}") from exc
    except SettingsError as exc:  # (what check_environment has not seen: one line too)
        raise InputError(f"{where}: {' '.join(str(exc).split())}: {exc.__cause__}") from exc
    finally:
        _config_data.reset(token)
