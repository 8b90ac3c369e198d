"""Configuration: a TOML file (path in CHECKOUT_CONFIG) plus environment overrides.

Without CHECKOUT_CONFIG the bundled `sandbox.toml` is used: sandbox mode, SQLite,
every provider pointed at our simulators. Outside sandbox mode a missing secret
stops the app at start with a message naming it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from checkout.domain.account_crypto import AccountCipher
from checkout.domain.circuit import BreakerSettings
from checkout.domain.errors import AccountCipherError, ReceiptError
from checkout.domain.receipts import normalize_brn
from checkout.providers.base import MethodConfig, ProviderConfig, RouteConfig
from checkout.providers.registry import SPECS
from checkout.store.db import DatabaseTimeouts
from checkout.urls import UrlRefused, origin_or_empty, parse_web_url

BUNDLED_SANDBOX_CONFIG = Path(__file__).with_name("sandbox.toml")
ENV_PREFIX = "CHECKOUT__"  # CHECKOUT__PROVIDERS__PAYPRO_KR__APP_SECRET=... overrides a key
# [rate_limits]: the checkout form's POST per client IP, the API per API key, refused or
# repeated notifies per provider instance and IP (providers retry in bursts: generous), the
# operator login's POST per client IP (password guessing).
DEFAULT_RATE_LIMITS = {
    "checkout_form": "20/minute",
    "api": "120/minute",
    "notify": "600/minute",  # unverified notifies per instance and IP
    "notify_instance": "1000/hour",  # unverified notifies per instance, from every IP
    "admin_login": "10/minute",
}


class ConfigError(RuntimeError):
    """The configuration cannot run: the message says which key and why."""


# ---------------------------------------------------------------- the app's other settings
# Each read here, once, into Settings: nothing else reads the raw TOML.
# Payment creations at work at once per process. Measured on 2 cores with 4 workers
# (docs/benchmarks.md): 2 gave the most creates per second and the fastest pages beside
# them; 4 and 8 spent more CPU per create on threads contending for the interpreter.
DEFAULT_CREATE_TURNS = 2
DEFAULT_RECONCILE_AFTER = timedelta(seconds=120)  # config `reconcile_after_seconds`
DEFAULT_VA_EXPIRY_GRACE = timedelta(minutes=15)  # config `va_expiry_grace_minutes`
DEFAULT_TIMEOUT = (3.0, 10.0)  # connect, each read (seconds)
DEFAULT_DEADLINE = 10.0  # seconds for one delivery in all: connect, headers, body
DEFAULT_THREADS = 8  # deliveries at once per worker
# Of which one store may hold at most this many. One keeps a store's events in order;
# more deliver a busy store faster, in an order its payloads' `seq` restores.
DEFAULT_THREADS_PER_STORE = 1
DEFAULT_REFRESH_SECONDS = 0.5  # how old a process's read of an instance's calls may get
MAX_REFRESH_SECONDS = 60.0
DEFAULT_RETENTION_DAYS = 90
BREAKER_SETTING_KEYS = {f.name for f in fields(BreakerSettings)}


@dataclass(frozen=True)
class DeliveryOptions:
    """How a worker delivers: timeouts, the total deadline, and its pool's shape."""

    timeout: tuple[float, float] = DEFAULT_TIMEOUT
    deadline: float = DEFAULT_DEADLINE
    threads: int = DEFAULT_THREADS
    threads_per_store: int = DEFAULT_THREADS_PER_STORE


def delivery_options_from_config(raw: Mapping[str, Any]) -> DeliveryOptions:
    """`webhook_deadline` (seconds), `webhook_threads`, `webhook_threads_per_store`."""
    try:
        deadline = float(raw.get("webhook_deadline", DEFAULT_DEADLINE))
        threads = int(raw.get("webhook_threads", DEFAULT_THREADS))
        per_store = int(raw.get("webhook_threads_per_store", DEFAULT_THREADS_PER_STORE))
    except (TypeError, ValueError):
        raise ConfigError(
            "webhook_deadline must be seconds; webhook_threads and"
            " webhook_threads_per_store whole numbers"
        ) from None
    if not 0 < deadline <= 120:
        raise ConfigError("webhook_deadline must be between 0 and 120 seconds")
    if threads < 2 or not 1 <= per_store < threads:
        raise ConfigError(
            "webhook_threads must be at least 2 and webhook_threads_per_store between 1 and"
            " webhook_threads - 1 (no store may take every thread)"
        )
    return DeliveryOptions(deadline=deadline, threads=threads, threads_per_store=per_store)


def durations_from_config(raw: Mapping[str, Any]) -> tuple[timedelta, timedelta]:
    """(reconcile_after, va_expiry_grace) from the configuration's top-level keys."""
    after = float(raw.get("reconcile_after_seconds", DEFAULT_RECONCILE_AFTER.total_seconds()))
    grace = float(raw.get("va_expiry_grace_minutes", DEFAULT_VA_EXPIRY_GRACE.total_seconds() / 60))
    return timedelta(seconds=after), timedelta(minutes=grace)


class BreakerConfigError(ConfigError):
    """A [circuit_breaker] table that cannot work; the message names the key."""


def breaker_settings(table: Any, base: BreakerSettings, where: str) -> BreakerSettings:
    """`base` with the keys of a `[circuit_breaker]` table over it, each checked."""
    if table is None:
        return base
    if not isinstance(table, Mapping):
        raise BreakerConfigError(f"{where} must be a table")
    unknown = set(table) - BREAKER_SETTING_KEYS
    if unknown:
        raise BreakerConfigError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(BREAKER_SETTING_KEYS))}"
        )
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key == "enabled":
            if not isinstance(value, bool):
                raise BreakerConfigError(f"{where}.enabled must be true or false")
        elif key in ("failures", "min_calls"):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10000:
                raise BreakerConfigError(f"{where}.{key} must be a whole number 1 to 10000")
        elif key == "error_rate":
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
                raise BreakerConfigError(f"{where}.error_rate must be between 0 and 1 (e.g. 0.5)")
            value = float(value)
        elif (
            isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 86400
        ):
            raise BreakerConfigError(f"{where}.{key} must be seconds, more than 0 up to 86400")
        else:
            value = float(value)
        values[key] = value
    return replace(base, **values)


def breaker_settings_from_config(
    raw: Mapping[str, Any], instances: Mapping[str, Mapping[str, Any]]
) -> dict[str, BreakerSettings]:
    """Each instance's thresholds; `instances` maps instance names to their settings."""
    default = breaker_settings(raw.get("circuit_breaker"), BreakerSettings(), "circuit_breaker")
    return {
        name: breaker_settings(
            settings.get("circuit_breaker"), default, f"providers.{name}.circuit_breaker"
        )
        for name, settings in instances.items()
    }


def refresh_seconds_from_config(raw: Mapping[str, Any]) -> float:
    """`circuit_refresh_seconds`: how old a process's read of an instance's calls may get."""
    value = raw.get("circuit_refresh_seconds", DEFAULT_REFRESH_SECONDS)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= MAX_REFRESH_SECONDS
    ):
        raise BreakerConfigError(
            "circuit_refresh_seconds must be seconds from 0 (read on every decision) up to 60"
        )
    return float(value)


def retention_days(value: Any) -> int:
    """The configured `notify_retention_days`, checked: a whole number of days, at least 1."""
    if value is None:
        return DEFAULT_RETENTION_DAYS
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"notify_retention_days must be a whole number of days, not {value!r}")
    try:
        days = int(value)
    except ValueError:
        raise ValueError(
            f"notify_retention_days must be a whole number of days, not {value!r}"
        ) from None
    if days < 1:
        raise ValueError(f"notify_retention_days must be at least 1, not {days}")
    return days


def non_negative_int(raw: Mapping[str, Any], key: str, default: int) -> int:
    value = raw.get(key, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a whole number, not {value!r}") from None
    if number < 0:
        raise ConfigError(f"{key} must not be negative")
    return number


def _seconds(raw: Mapping[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number of seconds, not {value!r}") from None
    if not 0 <= number <= 600:
        raise ConfigError(f"{key} must be between 0 and 600 seconds")
    return number


def database_timeouts(raw: Mapping[str, Any]) -> DatabaseTimeouts:
    default = DatabaseTimeouts()
    return DatabaseTimeouts(
        lock=_seconds(raw, "database_lock_timeout", default.lock),
        statement=_seconds(raw, "database_statement_timeout", default.statement),
        pool=_seconds(raw, "database_pool_timeout", default.pool),
        sqlite_busy=_seconds(raw, "sqlite_busy_timeout", default.sqlite_busy),
    )


def _retention_days(value: Any) -> int:
    try:
        return retention_days(value)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


@dataclass(frozen=True)
class CashReceiptConfig:
    """A store's Korean cash-receipt issuer (`[stores.<id>.cash_receipts]`): its Popbill
    member (business number), the partner's link id and secret key, test bed or
    production, and the store's duty (designated industry, threshold, taxable).

    A store without this table issues no cash receipt. Test checkouts of a live deployment
    use `twin()`: our Popbill sandbox, with credentials of its own."""

    corp_num: str  # the store's business number, 10 digits
    link_id: str
    secret_key: str  # base64, as Linkhub gives it
    test_bed: bool = True  # Popbill's test bed (POPBILL_TEST); False: production
    designated_industry: bool = False  # 현금영수증 의무발행업종: self-issue unasked
    threshold: int = 100_000  # KRW; self-issue from this amount on
    taxable: bool = True  # 과세; False for a VAT-exempt store (비과세)
    corp_name: str | None = None  # printed on the receipt
    ceo_name: str | None = None
    addr: str | None = None
    tel: str | None = None
    ip_restrict: bool = True  # Popbill's token IP check; False sends x-lh-forwarded: *
    auth_url: str | None = None  # set only when pointed at our sandbox
    api_url: str | None = None
    twin_secret_key: str = ""  # the sandbox twin's secret (derived from secret_key)

    def __repr__(self) -> str:  # the secret key never reaches a log
        return f"CashReceiptConfig(corp_num={self.corp_num!r}, test_bed={self.test_bed})"

    @property
    def sandboxed(self) -> bool:
        return self.api_url is not None

    def twin(self, sandbox_url: str) -> CashReceiptConfig:
        """The same member on our sandbox, for test checkouts: no live credential leaves."""
        return replace(
            self,
            link_id=CASH_RECEIPT_TWIN_LINK_ID,
            secret_key=self.twin_secret_key,
            test_bed=True,
            auth_url=f"{sandbox_url}/popbill/auth",
            api_url=f"{sandbox_url}/popbill",
        )


CASH_RECEIPT_TWIN_LINK_ID = "CHECKOUT_SANDBOX"


@dataclass(frozen=True)
class StoreConfig:
    id: str
    name: str
    # sha256 hex of each accepted API key, by mode: live keys create real payments, test
    # keys create test checkouts (livemode false) paid through the sandbox providers.
    live_key_hashes: tuple[str, ...]
    # Origins the shop owns: return/cancel URLs, framing the checkout, postMessage targets.
    allowed_origins: tuple[str, ...]  # e.g. ("https://shop.example",)
    webhook_url: str | None = None  # where status-change webhooks go
    webhook_secret: str | None = None  # Standard Webhooks secret, "whsec_<base64>"
    link_secret: str | None = None  # signs /pay/<store> links (HMAC-SHA256)
    test_key_hashes: tuple[str, ...] = ()
    # A second secret during a rotation: every webhook is signed with both.
    webhook_secret_next: str | None = None

    @property
    def webhook_secrets(self) -> tuple[str, ...]:
        """The secrets that sign each webhook (one `v1,<sig>` per secret)."""
        return tuple(s for s in (self.webhook_secret, self.webhook_secret_next) if s)

    # API keys (live or test) that may also create refunds (scope "refunds"); they work for
    # the rest of the API too, in their own mode. Other live and test keys cannot refund.
    refund_key_hashes: tuple[str, ...] = ()
    # The most the store may pay out in refunds per calendar day (store timezone), per
    # currency, in minor units; a currency absent here has no cap.
    refund_daily_cap: Mapping[str, int] = field(default_factory=dict)
    timezone: str = "Asia/Seoul"
    cash_receipts: CashReceiptConfig | None = None  # None: this store issues no receipt

    def may_refund(self, api_key: str) -> bool:
        import hmac

        digest = hash_api_key(api_key)
        found = False
        for expected in self.refund_key_hashes:
            if hmac.compare_digest(digest, expected):
                found = True
        return found


@dataclass(frozen=True)
class Settings:
    sandbox: bool
    secret_key: str
    database_url: str
    public_base_url: str  # builds notify and return URLs: https://pay.example.com
    sandbox_url: str  # where the simulators answer (sandbox mode)
    proxy_fix_x_for: int  # trusted proxies in front of us (0 = none)
    checkout_ttl_minutes: int
    providers: Mapping[str, ProviderConfig]
    methods: Mapping[str, MethodConfig]
    stores: Mapping[str, StoreConfig]
    instance_path: Path
    raw: Mapping[str, Any] = field(default_factory=dict)
    # Flask-Limiter (checkout/limits.py): where counters live, their key prefix, the limits.
    rate_limit_storage_uri: str = "memory://"
    rate_limit_key_prefix: str = "checkout"
    rate_limits: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    # GET /metrics needs `Authorization: Bearer <metrics_token>` when set; open when None.
    metrics_token: str | None = None
    # Fernet keys sealing refund bank accounts, newest first (domain/account_crypto.py).
    refund_account_keys: tuple[str, ...] = ()
    # A refund above this (minor units, per currency) needs a second operator; a currency
    # absent here always does. Console refunds always do.
    refund_approval_thresholds: Mapping[str, int] = field(default_factory=dict)
    # The workers: when to ask a provider about a silent attempt, how long past a virtual
    # account's expiry to wait for its notify; how webhooks are delivered.
    reconcile_after: timedelta = DEFAULT_RECONCILE_AFTER
    va_expiry_grace: timedelta = DEFAULT_VA_EXPIRY_GRACE
    webhook_delivery: DeliveryOptions = field(default_factory=lambda: DeliveryOptions())
    # Circuit breakers: each instance's thresholds, how old a read of its calls may get.
    circuit_breakers: Mapping[str, BreakerSettings] = field(default_factory=dict)
    circuit_refresh_seconds: float = DEFAULT_REFRESH_SECONDS
    # The database: pooled connections per process (PostgreSQL) and every wait's bound.
    database_pool_size: int = 20
    database_max_overflow: int = 0
    database_timeouts: DatabaseTimeouts = field(default_factory=lambda: DatabaseTimeouts())
    create_payment_turns: int = DEFAULT_CREATE_TURNS
    notify_retention_days: int = DEFAULT_RETENTION_DAYS

    def store_for_api_key(self, api_key: str) -> StoreConfig | None:
        match = self.api_key_match(api_key)
        return match[0] if match else None

    def api_key_match(self, api_key: str) -> tuple[StoreConfig, bool] | None:
        """The store an API key belongs to and its mode (True: live), or None."""
        import hmac

        digest = hash_api_key(api_key)
        found = None
        for store in self.stores.values():
            for livemode, hashes in ((True, store.live_key_hashes), (False, store.test_key_hashes)):
                for expected in hashes:
                    # Compare every key so timing does not tell which store matched.
                    if hmac.compare_digest(digest, expected):
                        found = (store, livemode)
        return found

    @cached_property
    def account_cipher(self) -> AccountCipher:
        """What seals refund accounts and receipt identities (refund_account_keys), built
        once per settings."""
        return AccountCipher(list(self.refund_account_keys))


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def origin_of(url: str) -> str:
    """The origin a browser gives `url` (WHATWG rules, checkout/urls.py); "" if refused."""

    return origin_or_empty(url)


# ---------------------------------------------------------------- loading
def load_raw(environ: Mapping[str, str]) -> dict[str, Any]:
    path = environ.get("CHECKOUT_CONFIG")
    config_path = Path(path) if path else BUNDLED_SANDBOX_CONFIG
    try:
        with config_path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(
            f"CHECKOUT_CONFIG points at {config_path}, which does not exist"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path} is not valid TOML: {exc}") from None
    apply_env_overrides(raw, environ)
    return raw


def apply_env_overrides(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Apply the short names (DATABASE_URL, SECRET_KEY...) and CHECKOUT__A__B=... keys."""
    short = {
        "DATABASE_URL": "database_url",
        "CHECKOUT_SECRET_KEY": "secret_key",
        "CHECKOUT_PUBLIC_BASE_URL": "public_base_url",
        "CHECKOUT_SANDBOX_URL": "sandbox_url",
        "CHECKOUT_SANDBOX": "sandbox",
        "CHECKOUT_METRICS_TOKEN": "metrics_token",
    }
    for env_key, key in short.items():
        if env_key in environ:
            raw[key] = _parse_env_value(environ[env_key])
    for env_key, value in environ.items():
        if not env_key.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in env_key[len(ENV_PREFIX) :].split("__") if part]
        if not path:
            continue
        node = raw
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{env_key}: {part} is not a table in the configuration")
        node[path[-1]] = _parse_env_value(value)


def _parse_env_value(value: str) -> Any:
    """'true', '15', '["a"]' become TOML values; anything else stays a string."""
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def build_settings(raw: Mapping[str, Any], instance_path: Path) -> Settings:
    sandbox = bool(raw.get("sandbox", False))
    secret_key = str(raw.get("secret_key") or "")
    if not secret_key:
        if not sandbox:
            raise ConfigError(
                "secret_key is not set: set CHECKOUT_SECRET_KEY (or secret_key in the config "
                "file) to a long random string; it signs sessions and CSRF tokens"
            )
        secret_key = _sandbox_secret_key(instance_path)
    database_url = str(raw.get("database_url") or "")
    if not database_url:
        database_url = f"sqlite:///{instance_path / 'checkout.sqlite3'}"
    database_url = normalise_database_url(database_url)
    public_base_url = str(raw.get("public_base_url") or "").rstrip("/")
    if not public_base_url:
        if not sandbox:
            raise ConfigError("public_base_url is not set: providers need it to reach /notify")
        public_base_url = "http://127.0.0.1:5000"
    sandbox_url = str(raw.get("sandbox_url") or "http://127.0.0.1:5001").rstrip("/")

    providers: dict[str, ProviderConfig] = {}
    methods: dict[str, MethodConfig] = {}
    method_tables = raw.get("methods", {})
    for name, table in raw.get("providers", {}).items():
        providers[name] = _provider_config(name, table, sandbox, sandbox_url, instance_path)
    for code, table in method_tables.items():
        methods[code] = _method_config(code, table, providers)
    if not sandbox:
        # Test checkouts of a live deployment go to these twins, never to the live instances.
        for name, cfg in list(providers.items()):
            twin = sandbox_twin_name(name)
            if twin in providers:
                raise ConfigError(f"providers.{twin}: the name is reserved for {name}'s test twin")
            providers[twin] = _sandbox_twin(cfg, secret_key, sandbox_url, instance_path)
    # Each provider instance gets the methods that route to it, as it sees them (its
    # options); a twin gets its live instance's.
    providers = {
        name: _with_methods(
            cfg,
            tuple(
                replace(route, provider=name)
                for m in methods.values()
                if (route := m.route_to(live_name_of(name)))
            ),
        )
        for name, cfg in providers.items()
    }
    reconcile_after, va_expiry_grace = durations_from_config(raw)
    stores = {
        sid: replace(
            _store_config(sid, table, sandbox, public_base_url),
            cash_receipts=_cash_receipts(
                sid, table.get("cash_receipts"), sandbox, sandbox_url, secret_key
            ),
        )
        for sid, table in raw.get("stores", {}).items()
    }
    return Settings(
        sandbox=sandbox,
        secret_key=secret_key,
        database_url=database_url,
        public_base_url=public_base_url,
        sandbox_url=sandbox_url,
        proxy_fix_x_for=int(raw.get("proxy_fix_x_for", 0)),
        checkout_ttl_minutes=int(raw.get("checkout_ttl_minutes", 60)),
        providers=providers,
        methods=methods,
        stores=stores,
        instance_path=instance_path,
        raw=raw,
        rate_limit_storage_uri=str(raw.get("rate_limit_storage_uri") or "memory://"),
        rate_limit_key_prefix=str(raw.get("rate_limit_key_prefix") or "checkout"),
        rate_limits=_rate_limits(raw.get("rate_limits", {})),
        metrics_token=_metrics_token(raw.get("metrics_token")),
        refund_account_keys=_refund_account_keys(
            raw.get("refund_account_keys"), sandbox, instance_path
        ),
        refund_approval_thresholds=_currency_amounts(
            raw.get("refunds", {}).get("approval_thresholds", {}), "refunds.approval_thresholds"
        ),
        reconcile_after=reconcile_after,
        va_expiry_grace=va_expiry_grace,
        webhook_delivery=delivery_options_from_config(raw),
        circuit_breakers=breaker_settings_from_config(
            raw, {name: cfg.settings for name, cfg in providers.items()}
        ),
        circuit_refresh_seconds=refresh_seconds_from_config(raw),
        database_pool_size=non_negative_int(raw, "database_pool_size", 20),
        database_max_overflow=non_negative_int(raw, "database_max_overflow", 0),
        database_timeouts=database_timeouts(raw),
        create_payment_turns=non_negative_int(raw, "create_payment_turns", DEFAULT_CREATE_TURNS),
        notify_retention_days=_retention_days(raw.get("notify_retention_days")),
    )


def _refund_account_keys(value: Any, sandbox: bool, instance_path: Path) -> tuple[str, ...]:
    """The Fernet keys that seal refund accounts; required outside sandbox (the sandbox
    generates one into the instance folder)."""

    if not value:
        if not sandbox:
            raise ConfigError(
                "refund_account_keys is not set: give a list of Fernet keys, newest first "
                "(CHECKOUT__REFUND_ACCOUNT_KEYS='[\"<key>\"]'; make one with python3 -c "
                "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
            )
        path = instance_path / "sandbox_refund_account_key"
        if not path.exists():
            instance_path.mkdir(parents=True, exist_ok=True)
            path.write_text(AccountCipher.generate_key())
            path.chmod(0o600)
        value = [path.read_text().strip()]
    try:
        cipher = AccountCipher.from_setting(value)
    except AccountCipherError as exc:
        raise ConfigError(f"refund_account_keys: {exc}") from None
    del cipher
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return tuple(str(part).strip() for part in value if str(part).strip())


def _currency_amounts(table: Any, name: str) -> dict[str, int]:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{name} must be a table of currency = minor units, e.g. KRW = 100000")
    amounts: dict[str, int] = {}
    for currency, amount in table.items():
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
            raise ConfigError(f"{name}.{currency} must be a whole number of minor units")
        amounts[str(currency).upper()] = amount
    return amounts


def _metrics_token(value: Any) -> str | None:
    """The bearer token /metrics asks for; None (no token) leaves it open."""
    if value is None or value == "":
        return None
    token = str(value)
    if len(token) < 16 or not token.isascii() or not token.isprintable() or " " in token:
        raise ConfigError(
            "metrics_token must be at least 16 printable ASCII characters without spaces "
            "(e.g. the output of `python3 -c 'import secrets; print(secrets.token_urlsafe())'`)"
        )
    return token


def _rate_limits(table: Any) -> dict[str, str]:
    """The defaults with the configured `[rate_limits]` over them, each a valid limit string."""
    from limits import parse_many

    if not isinstance(table, Mapping):
        raise ConfigError('rate_limits must be a table, e.g. rate_limits.api = "120/minute"')
    unknown = set(table) - set(DEFAULT_RATE_LIMITS)
    if unknown:
        raise ConfigError(
            f"rate_limits: unknown key(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(DEFAULT_RATE_LIMITS)}"
        )
    merged = {**DEFAULT_RATE_LIMITS, **{k: str(v) for k, v in table.items()}}
    for key, value in merged.items():
        try:
            parse_many(value)
        except ValueError:
            raise ConfigError(
                f'rate_limits.{key} = {value!r} is not a rate limit (e.g. "20/minute", '
                f'"100 per hour; 5/second")'
            ) from None
    return merged


def normalise_database_url(url: str) -> str:
    """postgres:// and postgresql:// use psycopg 3, the driver we ship."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sandbox_secret_key(instance_path: Path) -> str:
    # Kept in a file so several workers and restarts share it (CSRF tokens survive).
    path = instance_path / "sandbox_secret_key"
    if not path.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _provider_config(
    name: str, table: Mapping[str, Any], sandbox: bool, sandbox_url: str, instance_path: Path
) -> ProviderConfig:
    ptype = str(table.get("type", ""))
    if ptype not in SPECS:
        raise ConfigError(f"providers.{name}.type must be one of {', '.join(SPECS)}, got {ptype!r}")
    base_url = str(table.get("base_url", "")).rstrip("/")
    uses_sandbox = base_url in ("", "sandbox")
    if uses_sandbox:
        if not sandbox:
            raise ConfigError(f"providers.{name}.base_url is not set (required outside sandbox)")
        base_url = f"{sandbox_url}/{ptype}"
    settings = {
        k: v
        for k, v in table.items()
        if k not in ("type", "base_url", "connect_timeout", "read_timeout")
    }
    for key in ("private_key_file", "platform_public_key_file"):
        if key in settings and not Path(str(settings[key])).is_absolute():
            settings[key] = str(instance_path / str(settings[key]))
    missing = [k for k in SPECS[ptype].required_settings if not settings.get(k)]
    if missing:
        raise ConfigError(
            f"providers.{name}: missing {', '.join(missing)} "
            f"(set them in the config file or as CHECKOUT__PROVIDERS__{name.upper()}__<KEY>)"
        )
    return ProviderConfig(
        name=name,
        type=ptype,
        base_url=base_url,
        settings=settings,
        connect_timeout=float(table.get("connect_timeout", 5.0)),
        read_timeout=float(table.get("read_timeout", 20.0)),
        sandbox=uses_sandbox,
    )


def _method_config(
    code: str, table: Mapping[str, Any], providers: Mapping[str, ProviderConfig]
) -> MethodConfig:
    name = str(table.get("name") or code)
    names = {str(k): str(v) for k, v in dict(table.get("names", {})).items()}
    if "routes" in table:
        routes = _routes(code, table, providers)
        first = routes[0]
        return MethodConfig(
            code=code,
            provider=first.provider,
            name=name,
            options=_with_kind(first.options, providers[first.provider]),
            names=names,
            routes=routes if len(routes) > 1 else (),
        )
    provider = str(table.get("provider", ""))
    if provider not in providers:
        raise ConfigError(f"methods.{code}.provider names unknown provider instance {provider!r}")
    options = {k: v for k, v in table.items() if k not in ("provider", "name", "names")}
    options = _with_kind(options, providers[provider])
    return MethodConfig(code=code, provider=provider, name=name, options=options, names=names)


def _with_kind(options: Mapping[str, Any], provider: ProviderConfig) -> dict[str, Any]:
    """The options with the method's `kind`: as configured, else the provider's reading of
    its own option keys (ProviderSpec.method_kind), else none (a bank transfer)."""
    spec = SPECS.get(provider.type)
    guessed = spec.method_kind(options) if spec is not None and "kind" not in options else None
    return {**options, "kind": guessed} if guessed else dict(options)


# Method keys about how the form shows it, not about a provider: a routed method may set
# them once for all its routes.
METHOD_DISPLAY_KEYS = ("kind", "hint", "hints", "where_to_pay")


def _routes(
    code: str, table: Mapping[str, Any], providers: Mapping[str, ProviderConfig]
) -> tuple[RouteConfig, ...]:
    """`routes = [{provider = "...", weight = 3, <that provider's options>}, ...]`."""
    where = f"methods.{code}.routes"
    extra = set(table) - {"routes", "name", "names", *METHOD_DISPLAY_KEYS}
    if extra:
        raise ConfigError(
            f"methods.{code}: with routes, put {', '.join(sorted(extra))} in each route's table"
        )
    listed = table["routes"]
    if not isinstance(listed, list) or not listed:
        raise ConfigError(f'{where} must list at least one route, e.g. [{{provider = "..."}}]')
    routes: list[RouteConfig] = []
    currencies: set[str] = set()
    for index, entry in enumerate(listed):
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where}[{index}] must be a table")
        provider = str(entry.get("provider", ""))
        if provider not in providers:
            raise ConfigError(f"{where}[{index}].provider names unknown instance {provider!r}")
        if any(r.provider == provider for r in routes):
            raise ConfigError(f"{where}: {provider!r} is named twice")
        weight = entry.get("weight")
        if weight is not None and (
            isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 1000
        ):
            raise ConfigError(f"{where}[{index}].weight must be a whole number 0 to 1000")
        currencies.add(_instance_currency(providers[provider]))
        # What the shopper sees of the method (its kind, hint) holds for every route.
        display = {k: table[k] for k in METHOD_DISPLAY_KEYS if k in table}
        options = {k: v for k, v in entry.items() if k not in ("provider", "weight")}
        routes.append(RouteConfig(provider, {**display, **options}, weight))
    if len(currencies) > 1:
        raise ConfigError(f"{where}: every route must take the same currency")
    return tuple(routes)


def _instance_currency(cfg: ProviderConfig) -> str:
    """The currency an instance takes, as far as the configuration says (KRW, MXN)."""
    country = str(cfg.settings.get("country") or "KR").upper()
    return "MXN" if country == "MX" else "KRW"


SANDBOX_TWIN_SUFFIX = "__test"


def sandbox_twin_name(name: str) -> str:
    """The provider instance that test checkouts use in a live deployment."""
    return name + SANDBOX_TWIN_SUFFIX


def live_name_of(name: str) -> str:
    return name.removesuffix(SANDBOX_TWIN_SUFFIX)


def _sandbox_twin(
    cfg: ProviderConfig, secret_key: str, sandbox_url: str, instance_path: Path
) -> ProviderConfig:
    """The live instance's sandbox twin: same type and method options, pointed at
    sandbox_url, with credentials of its own (derived from secret_key, so the app and
    `flask sandbox` agree on them) so no live credential ever reaches the simulators."""
    import hmac
    from dataclasses import replace

    name = sandbox_twin_name(cfg.name)
    settings = dict(cfg.settings)
    # Keyed by the merchant's identity, not the instance: instances sharing a merchant
    # number share one account in the simulator, so they need one secret.
    spec = SPECS[cfg.type]
    identity = settings.get(spec.twin_identity, "")
    for key in spec.twin_secrets:
        seed = f"sandbox-twin:{cfg.type}:{identity}:{key}".encode()
        settings[key] = hmac.new(secret_key.encode(), seed, hashlib.sha256).hexdigest()[:32]
    # Key files every twin of the type shares (the simulator has one platform key).
    keys = instance_path / "sandbox-twin-keys" / cfg.type
    for key, file_name in spec.twin_key_files.items():
        settings[key] = str(keys / file_name)
    return replace(
        cfg, name=name, base_url=f"{sandbox_url}/{cfg.type}", settings=settings, sandbox=True
    )


def _with_methods(cfg: ProviderConfig, methods: tuple[MethodConfig, ...]) -> ProviderConfig:
    from dataclasses import replace

    return replace(cfg, methods=methods)


def _store_config(
    sid: str, table: Mapping[str, Any], sandbox: bool, public_base_url: str
) -> StoreConfig:
    # api_key_sha256 / api_keys are live keys, as they always were; test keys have their own.
    live = _key_hashes(sid, table, "api_key_sha256", "api_keys", sandbox)
    live += _key_hashes(sid, table, "live_api_key_sha256", "live_api_keys", sandbox)
    test = _key_hashes(sid, table, "test_api_key_sha256", "test_api_keys", sandbox)
    # Keys that may also refund (scope "refunds"): refund_api_key_sha256 are live keys,
    # test_refund_api_key_sha256 test keys (a shop tries refunds on test checkouts, paid out
    # by the sandbox).
    refund_hashes = _key_hashes(sid, table, "refund_api_key_sha256", "refund_api_keys", sandbox)
    live += [h for h in refund_hashes if h not in live]
    test_refund_hashes = _key_hashes(
        sid, table, "test_refund_api_key_sha256", "test_refund_api_keys", sandbox
    )
    test += [h for h in test_refund_hashes if h not in test]
    refund_hashes += [h for h in test_refund_hashes if h not in refund_hashes]
    if not live and not test:
        raise ConfigError(f"stores.{sid} has no API key (live_api_key_sha256, test_api_key_sha256)")
    if set(live) & set(test):
        raise ConfigError(f"stores.{sid}: the same API key is listed as live and as test")
    # "self" stands for our own origin (the sandbox demo shop page lives there).
    listed = table.get("allowed_origins", table.get("return_url_origins", []))
    origins = tuple(origin_of(public_base_url if str(u) == "self" else str(u)) for u in listed)
    if not origins or "" in origins:
        bad = [str(u) for u, o in zip(listed, origins, strict=True) if not o]
        raise ConfigError(
            f"stores.{sid}.allowed_origins must list http(s) origins (as a browser reads "
            f"them: no user@, backslash or blank){': not ' + repr(bad[0]) if bad else ''}"
        )
    webhook_url = str(table.get("webhook_url") or "") or None
    webhook_secret = str(table.get("webhook_secret") or "") or None
    webhook_secret_next = str(table.get("webhook_secret_next") or "") or None
    if webhook_url:
        try:
            webhook_url = parse_web_url(webhook_url).href  # what a browser would call
        except UrlRefused as refused:
            raise ConfigError(
                f"stores.{sid}.webhook_url must be an http(s) URL: it {refused.reason}"
            ) from None
    if webhook_url and not webhook_secret:
        raise ConfigError(
            f"stores.{sid}.webhook_secret is not set: webhooks to {webhook_url} must be signed "
            f"(set CHECKOUT__STORES__{sid.upper()}__WEBHOOK_SECRET to whsec_<base64>)"
        )
    for key, value in (
        ("webhook_secret", webhook_secret),
        ("webhook_secret_next", webhook_secret_next),
    ):
        if value is not None:
            _check_webhook_secret(sid, key, value)
    return StoreConfig(
        id=sid,
        name=str(table.get("name") or sid),
        live_key_hashes=tuple(live),
        test_key_hashes=tuple(test),
        allowed_origins=origins,
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        webhook_secret_next=webhook_secret_next,
        link_secret=str(table.get("link_secret") or "") or None,
        refund_key_hashes=tuple(refund_hashes),
        refund_daily_cap=_currency_amounts(
            table.get("refund_daily_cap", {}), f"stores.{sid}.refund_daily_cap"
        ),
        timezone=_timezone(table.get("timezone", "Asia/Seoul"), sid),
    )


_CASH_RECEIPT_KEYS = {
    "issuer", "corp_num", "link_id", "secret_key", "test_bed", "designated_industry",
    "threshold", "taxable", "corp_name", "ceo_name", "addr", "tel", "ip_restrict",
}  # fmt: skip


def _cash_receipts(
    sid: str, table: Any, sandbox: bool, sandbox_url: str, secret_key: str
) -> CashReceiptConfig | None:
    """`[stores.<id>.cash_receipts]`, checked; in sandbox mode pointed at our simulator
    (with a secret of its own unless one is given)."""
    if table is None:
        return None
    where = f"stores.{sid}.cash_receipts"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table")
    unknown = set(table) - _CASH_RECEIPT_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    if str(table.get("issuer", "popbill")) != "popbill":
        raise ConfigError(f"{where}.issuer: only popbill issues cash receipts")
    try:
        corp_num = normalize_brn(str(table.get("corp_num", "")))
    except ReceiptError as exc:
        raise ConfigError(f"{where}.corp_num: {exc.message}") from None
    threshold = table.get("threshold", 100_000)
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise ConfigError(f"{where}.threshold must be a positive whole number of won")
    flags = {}
    for key, default in (
        ("test_bed", True),
        ("designated_industry", False),
        ("taxable", True),
        ("ip_restrict", True),
    ):
        value = table.get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{where}.{key} must be true or false")
        flags[key] = value
    # One partner for every store on the sandbox, as on Popbill: one secret, many members.
    seed = b"sandbox-twin:popbill"
    twin_secret = base64.b64encode(
        hmac.new(secret_key.encode(), seed, hashlib.sha256).digest()
    ).decode("ascii")
    link_id = str(table.get("link_id") or "")
    secret = str(table.get("secret_key") or "")
    if sandbox:
        link_id, secret = link_id or CASH_RECEIPT_TWIN_LINK_ID, secret or twin_secret
        flags["test_bed"] = True
    if not link_id or not secret:
        raise ConfigError(
            f"{where}: link_id and secret_key are required (set "
            f"CHECKOUT__STORES__{sid.upper()}__CASH_RECEIPTS__SECRET_KEY)"
        )
    try:
        base64.b64decode(secret.encode("ascii"), validate=True)
    except ValueError:
        raise ConfigError(f"{where}.secret_key is not base64 (as Linkhub gives it)") from None

    def text(key: str) -> str | None:
        return str(table.get(key) or "") or None

    config = CashReceiptConfig(
        corp_num=corp_num,
        link_id=link_id,
        secret_key=secret,
        threshold=threshold,
        corp_name=text("corp_name"),
        ceo_name=text("ceo_name"),
        addr=text("addr"),
        tel=text("tel"),
        twin_secret_key=twin_secret,
        **flags,
    )
    if sandbox:
        config = replace(
            config, auth_url=f"{sandbox_url}/popbill/auth", api_url=f"{sandbox_url}/popbill"
        )
    return config


def _key_hashes(
    sid: str, table: Mapping[str, Any], hashed_key: str, plain_key: str, sandbox: bool
) -> list[str]:
    hashes = [str(h).lower() for h in table.get(hashed_key, [])]
    plain = table.get(plain_key, [])
    if plain and not sandbox:
        raise ConfigError(
            f"stores.{sid}.{plain_key} holds plain keys; outside sandbox store only their "
            f"SHA-256 in {hashed_key}"
        )
    return hashes + [hash_api_key(str(k)) for k in plain]


def _check_webhook_secret(sid: str, key: str, value: str) -> None:
    """A Standard Webhooks secret: `whsec_` and base64 (the library itself would skip bad
    characters silently and sign with another key than the shop holds)."""
    import base64
    import binascii

    try:
        ok = bool(base64.b64decode(value.removeprefix("whsec_"), validate=True))
    except (binascii.Error, ValueError):
        ok = False
    if not ok:
        raise ConfigError(f"stores.{sid}.{key} is not a Standard Webhooks secret (whsec_<base64>)")


def _timezone(value: Any, sid: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"stores.{sid}.timezone {value!r} is not a time zone name") from None
    return str(value)
