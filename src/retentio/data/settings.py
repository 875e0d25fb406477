"""Workspace settings: the ``retentio.toml`` file of a workspace folder."""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tomli_w

from retentio.data.errors import RetentioError
from retentio.data.schema import TABLES

SETTINGS_FILE = "retentio.toml"
DATABASE_FILE = "retentio.duckdb"
ENGINES = ("duckdb", "spark")
ENV_WORKSPACE = "RETENTIO_WORKSPACE"


def default_path() -> Path:
    """``$RETENTIO_WORKSPACE``, else the current directory."""
    return Path(os.environ.get(ENV_WORKSPACE) or ".")


def is_currency(code: str) -> bool:
    """True for an ISO 4217 code of a currency in use today: legal tender of some
    territory with no end date in CLDR's territory currencies (as Babel ships them), so
    withdrawn codes such as RUR (the rouble before 1998) are refused."""
    from babel.core import get_global

    return any(c == code and end is None and tender
               for entries in get_global("territory_currencies").values() for c, _start, end, tender in entries)


@dataclass
class EngineSettings:
    """``[engine]``: ``kind`` is ``duckdb`` (the embedded file) or ``spark``."""

    kind: str = "duckdb"
    #: Spark master: "local[2]" or a cluster URL
    master: str = "local[2]"
    #: extra Spark configuration, e.g. {"spark.executor.memory": "8g"}
    conf: dict[str, str] = field(default_factory=dict)


@dataclass
class AnalysisSettings:
    """Analysis defaults, written once (``[analysis]`` in ``retentio.toml``); every face
    and analysis reads them from here."""

    #: customer value: future purchases counted this many months ahead (CLV, LTV:CAC, value at risk)
    clv_horizon_months: int = 12
    #: customer value: discount rate per month
    clv_discount_rate: float = 0.01
    #: CLV holdout check in the report: the last this many days are held out
    holdout_days: int = 182
    #: churn bands: probability from which a customer is "high" / "medium" risk
    churn_band_high: float = 0.5
    churn_band_medium: float = 0.25

    def validate(self, path: Path) -> None:
        for name in ("clv_horizon_months", "holdout_days"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise RetentioError(f"{path}: [analysis] {name} must be a positive whole number, got {value!r}")
        if not 0 <= self.clv_discount_rate < 1:
            raise RetentioError(f"{path}: [analysis] clv_discount_rate must be in [0, 1), got {self.clv_discount_rate!r}")
        if not 0 < self.churn_band_medium < self.churn_band_high < 1:
            raise RetentioError(f"{path}: [analysis] needs 0 < churn_band_medium < churn_band_high < 1, got "
                                f"{self.churn_band_medium!r} and {self.churn_band_high!r}")


@dataclass
class StoreSettings:
    """``[store]``: where Retentio keeps what it owns."""

    #: SQLAlchemy URL of the operational store; empty = the SQLite file in the workspace
    url: str = ""


def _fields_of(cls: type, section: str, raw: dict, path: Path) -> dict:
    """``raw`` checked against the fields of dataclass ``cls``: an unknown key is refused
    naming the file, the section and the keys it knows."""
    known = set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    extra = sorted(set(raw) - known)
    if extra:
        raise RetentioError(f"{path}: unknown {section} setting(s) {extra}; known: {', '.join(sorted(known))}")
    return raw


@dataclass
class EmailChannelSettings:
    """``[channels.email]``: an SMTP server. The password is never written in the file:
    ``password_env`` names the environment variable that holds it."""

    host: str = ""
    port: int = 587
    #: none, starttls or ssl
    security: str = "starttls"
    username: str = ""
    password_env: str = ""
    sender: str = ""
    reply_to: str = ""
    #: most messages per second (0: as fast as the server takes them)
    rate_per_second: float = 0.0
    timeout_s: float = 30.0
    cost_per_message: float = 0.0
    #: a CA bundle (PEM) that signed the server's certificate, for a private relay
    #: (default: the system's trusted authorities)
    ca_file: str = ""


@dataclass
class WebhookChannelSettings:
    """``[channels.webhook]``: HTTP POST of JSON (SMS, messengers, push providers), signed
    with HMAC-SHA256 by the secret in the environment variable ``secret_env``."""

    url: str = ""
    secret_env: str = ""
    timeout_s: float = 10.0
    cost_per_message: float = 0.0


@dataclass
class CsvChannelSettings:
    """``[channels.csv]``: the audience with rendered messages and codes as a CSV file,
    for tools Retentio does not talk to (relative folders are inside the workspace)."""

    folder: str = "exports"
    cost_per_message: float = 0.0


@dataclass
class ChannelSettings:
    email: EmailChannelSettings = field(default_factory=EmailChannelSettings)
    webhook: WebhookChannelSettings = field(default_factory=WebhookChannelSettings)
    csv: CsvChannelSettings = field(default_factory=CsvChannelSettings)

    def validate(self, path: Path) -> None:
        if self.email.security not in ("none", "starttls", "ssl"):
            raise RetentioError(f"{path}: [channels.email] security must be none, starttls or ssl, "
                                f"got {self.email.security!r}")
        for section, value in (("[channels.email] port", self.email.port),):
            if not isinstance(value, int) or not 0 < value < 65536:
                raise RetentioError(f"{path}: {section} must be a port number, got {value!r}")
        for section, number in (("[channels.email] rate_per_second", self.email.rate_per_second),
                                ("[channels.email] timeout_s", self.email.timeout_s),
                                ("[channels.webhook] timeout_s", self.webhook.timeout_s),
                                ("[channels.email] cost_per_message", self.email.cost_per_message),
                                ("[channels.webhook] cost_per_message", self.webhook.cost_per_message),
                                ("[channels.csv] cost_per_message", self.csv.cost_per_message)):
            if isinstance(number, bool) or not isinstance(number, (int, float)) or number < 0:
                raise RetentioError(f"{path}: {section} must be a number ≥ 0, got {number!r}")

    @classmethod
    def from_raw(cls, raw: dict, path: Path) -> ChannelSettings:
        _fields_of(cls, "[channels]", raw, path)
        return cls(
            email=EmailChannelSettings(**_fields_of(EmailChannelSettings, "[channels.email]", raw.get("email") or {}, path)),
            webhook=WebhookChannelSettings(**_fields_of(WebhookChannelSettings, "[channels.webhook]",
                                                        raw.get("webhook") or {}, path)),
            csv=CsvChannelSettings(**_fields_of(CsvChannelSettings, "[channels.csv]", raw.get("csv") or {}, path)),
        )


@dataclass
class CampaignSettings:
    """``[campaigns]``: the rules every campaign of the workspace keeps."""

    #: at most this many marketing messages per customer ...
    frequency_cap: int = 2
    #: ... in this many days, across all campaigns
    frequency_days: int = 7
    #: quiet hours in the workspace timezone: messages due then wait until they end
    quiet_start: str = "21:00"
    quiet_end: str = "09:00"
    #: share (%) of all customers who never receive any campaign (a global control group)
    global_control_pct: float = 0.0
    #: soft bounces in a row that suppress an address
    soft_bounce_limit: int = 3
    #: where unsubscribe links point (the web app serves the page)
    unsubscribe_url: str = "http://127.0.0.1:8000/unsubscribe"
    #: where personal survey answer links point: {survey_base_url}/s/{token} (the web app
    #: serves the page)
    survey_base_url: str = "http://localhost:8000"
    #: sending attempts of a message before a transient failure counts as failed
    max_attempts: int = 5
    #: first retry after this many seconds, doubling with each attempt
    retry_base_s: float = 30.0
    #: how long a run waits for its retries to come due before it returns (the rest go
    #: with the next `retentio campaign send`)
    retry_wait_s: float = 0.0
    #: what one bonus point costs the business, in the workspace currency (a points
    #: offer's cost when its effect is measured)
    point_value: float = 1.0
    #: days after the send in which a customer's orders count for the campaign (a
    #: playbook's [measure] window_days overrides it)
    attribution_days: int = 30

    def validate(self, path: Path) -> None:
        import re

        for name in ("frequency_cap", "frequency_days", "soft_bounce_limit", "max_attempts", "attribution_days"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise RetentioError(f"{path}: [campaigns] {name} must be a positive whole number, got {value!r}")
        for name in ("quiet_start", "quiet_end"):
            value = getattr(self, name)
            if not isinstance(value, str) or not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
                raise RetentioError(f"{path}: [campaigns] {name} must be a time such as \"21:00\", got {value!r}")
        for name in ("retry_base_s", "retry_wait_s", "point_value"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                what = "an amount" if name == "point_value" else "a number of seconds"
                raise RetentioError(f"{path}: [campaigns] {name} must be {what} ≥ 0, got {value!r}")
        if not isinstance(self.survey_base_url, str) or not self.survey_base_url.startswith(("http://", "https://")):
            raise RetentioError(f"{path}: [campaigns] survey_base_url must be an http(s) address such as "
                                f"\"https://shop.example.com\", got {self.survey_base_url!r}")
        if isinstance(self.global_control_pct, bool) or not isinstance(self.global_control_pct, (int, float)) \
                or not 0 <= self.global_control_pct < 100:
            raise RetentioError(f"{path}: [campaigns] global_control_pct must be in [0, 100), "
                                f"got {self.global_control_pct!r}")


@dataclass
class Settings:
    """A workspace's ``retentio.toml``: every default written once, validated on read.

    Attributes
    ----------
    timezone : str
        IANA timezone of the business; periods start at its midnights.
    currency : str
        ISO 4217 code of every amount.
    activity_window_days : int
        The window W in which a completed order makes a customer active (orders).
    engine : EngineSettings
        ``[engine]``: DuckDB or Spark, and Spark's master and configuration.
    tables : dict[str, str]
        ``[tables]``: canonical tables read from external sources instead of loaded.
    store : StoreSettings
        ``[store]``: the operational store's URL (empty: SQLite in the workspace).
    analysis : AnalysisSettings
        ``[analysis]``: CLV horizon and discount rate, holdout length, churn bands.
    """

    timezone: str = "UTC"
    currency: str = "USD"
    #: non-contractual activity window W in days (docs/definitions.md, "Customers and periods")
    activity_window_days: int = 90
    engine: EngineSettings = field(default_factory=EngineSettings)
    #: canonical table -> external source (Parquet file/dir, or catalog table on Spark)
    tables: dict[str, str] = field(default_factory=dict)
    #: where Retentio keeps what it owns (models, score snapshots, ...)
    store: StoreSettings = field(default_factory=StoreSettings)
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    channels: ChannelSettings = field(default_factory=ChannelSettings)
    campaigns: CampaignSettings = field(default_factory=CampaignSettings)

    def validate(self, path: Path) -> Settings:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise RetentioError(f"{path}: unknown timezone {self.timezone!r} (use an IANA name such as 'Europe/Moscow')") from None
        if not isinstance(self.currency, str) or not is_currency(self.currency):
            raise RetentioError(f"{path}: unknown currency {self.currency!r}; use an ISO 4217 code such as "
                                "RUB, USD or EUR")
        if not isinstance(self.activity_window_days, int) or self.activity_window_days <= 0:
            raise RetentioError(f"{path}: activity_window_days must be a positive whole number of days, got {self.activity_window_days!r}")
        if self.engine.kind not in ENGINES:
            raise RetentioError(f"{path}: [engine] kind must be one of {', '.join(ENGINES)}, got {self.engine.kind!r}")
        self.analysis.validate(path)
        self.channels.validate(path)
        self.campaigns.validate(path)
        unknown = sorted(set(self.tables) - set(TABLES))
        if unknown:
            raise RetentioError(f"{path}: [tables] names unknown table(s) {unknown}; known: {', '.join(TABLES)}")
        return self

    @classmethod
    def read(cls, path: Path) -> Settings:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise RetentioError(f"{path}: not valid TOML: {exc}") from None
        engine = raw.pop("engine", {}) or {}
        tables = raw.pop("tables", {}) or {}
        store = raw.pop("store", {}) or {}
        analysis = raw.pop("analysis", {}) or {}
        channels = raw.pop("channels", {}) or {}
        campaigns = raw.pop("campaigns", {}) or {}
        known_analysis = set(AnalysisSettings.__dataclass_fields__)
        if set(analysis) - known_analysis:
            raise RetentioError(f"{path}: unknown [analysis] setting(s) {sorted(set(analysis) - known_analysis)}; "
                                f"known: {', '.join(sorted(known_analysis))}")
        extra_store = sorted(set(store) - {"url"})
        if extra_store:
            raise RetentioError(f"{path}: unknown [store] setting(s) {extra_store}; known: url")
        known = {"timezone", "currency", "activity_window_days"}
        extra = sorted(set(raw) - known)
        if extra:
            raise RetentioError(f"{path}: unknown setting(s) {extra}; known: {sorted(known)}, [engine], [tables], "
                                "[store], [analysis], [channels], [campaigns]")
        extra_engine = sorted(set(engine) - {"kind", "master", "conf"})
        if extra_engine:
            raise RetentioError(f"{path}: unknown [engine] setting(s) {extra_engine}")
        return cls(
            **raw,
            engine=EngineSettings(**engine),
            tables={str(k): str(v) for k, v in tables.items()},
            store=StoreSettings(url=str(store.get("url", ""))),
            analysis=AnalysisSettings(**analysis),
            channels=ChannelSettings.from_raw(channels, path),
            campaigns=CampaignSettings(**_fields_of(CampaignSettings, "[campaigns]", campaigns, path)),
        ).validate(path)

    def write(self, path: Path) -> None:
        data = asdict(self)
        if not data["tables"]:
            data.pop("tables")
        if not data["engine"]["conf"]:
            data["engine"].pop("conf")
        if not data["store"]["url"]:
            data.pop("store")
        for name, default in (("analysis", AnalysisSettings()), ("campaigns", CampaignSettings())):
            if data[name] == asdict(default):
                data.pop(name)
        data["channels"] = {k: v for k, v in data["channels"].items()
                            if v != asdict(getattr(ChannelSettings(), k))}
        if not data["channels"]:
            data.pop("channels")
        header = (
            "# Retentio workspace settings.\n"
            "# [engine] kind = \"duckdb\" (embedded file in this folder) or \"spark\" (PySpark;\n"
            "# master = \"local[2]\" or a cluster URL). [tables] maps canonical tables to external\n"
            "# sources: Parquet files or directories, or catalog table names on Spark.\n"
            "# [store] url = \"postgresql+psycopg://user@host/db\" keeps models and score snapshots\n"
            "# in PostgreSQL instead of retentio-store.sqlite in this folder.\n"
        )
        path.write_text(header + tomli_w.dumps(data), encoding="utf-8")
