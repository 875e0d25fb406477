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
            raise RetentioError(f"{path}: unknown setting(s) {extra}; known: {sorted(known)}, [engine], [tables]")
        extra_engine = sorted(set(engine) - {"kind", "master", "conf"})
        if extra_engine:
            raise RetentioError(f"{path}: unknown [engine] setting(s) {extra_engine}")
        return cls(
            **raw,
            engine=EngineSettings(**engine),
            tables={str(k): str(v) for k, v in tables.items()},
            store=StoreSettings(url=str(store.get("url", ""))),
            analysis=AnalysisSettings(**analysis),
        ).validate(path)

    def write(self, path: Path) -> None:
        data = asdict(self)
        if not data["tables"]:
            data.pop("tables")
        if not data["engine"]["conf"]:
            data["engine"].pop("conf")
        if not data["store"]["url"]:
            data.pop("store")
        if data["analysis"] == asdict(AnalysisSettings()):
            data.pop("analysis")
        header = (
            "# Retentio workspace settings.\n"
            "# [engine] kind = \"duckdb\" (embedded file in this folder) or \"spark\" (PySpark;\n"
            "# master = \"local[2]\" or a cluster URL). [tables] maps canonical tables to external\n"
            "# sources: Parquet files or directories, or catalog table names on Spark.\n"
            "# [store] url = \"postgresql+psycopg://user@host/db\" keeps models and score snapshots\n"
            "# in PostgreSQL instead of retentio-store.sqlite in this folder.\n"
        )
        path.write_text(header + tomli_w.dumps(data), encoding="utf-8")
