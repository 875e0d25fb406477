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
    kind: str = "duckdb"
    #: Spark master: "local[2]" or a cluster URL
    master: str = "local[2]"
    #: extra Spark configuration, e.g. {"spark.executor.memory": "8g"}
    conf: dict[str, str] = field(default_factory=dict)


@dataclass
class StoreSettings:
    #: SQLAlchemy URL of the operational store; empty = the SQLite file in the workspace
    url: str = ""


@dataclass
class Settings:
    timezone: str = "UTC"
    currency: str = "USD"
    #: non-contractual activity window W in days (SPEC.md "Definitions")
    activity_window_days: int = 90
    engine: EngineSettings = field(default_factory=EngineSettings)
    #: canonical table -> external source (Parquet file/dir, or catalog table on Spark)
    tables: dict[str, str] = field(default_factory=dict)
    #: where Retentio keeps what it owns (models, score snapshots, ...)
    store: StoreSettings = field(default_factory=StoreSettings)

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
        ).validate(path)

    def write(self, path: Path) -> None:
        data = asdict(self)
        if not data["tables"]:
            data.pop("tables")
        if not data["engine"]["conf"]:
            data["engine"].pop("conf")
        if not data["store"]["url"]:
            data.pop("store")
        header = (
            "# Retentio workspace settings.\n"
            "# [engine] kind = \"duckdb\" (embedded file in this folder) or \"spark\" (PySpark;\n"
            "# master = \"local[2]\" or a cluster URL). [tables] maps canonical tables to external\n"
            "# sources: Parquet files or directories, or catalog table names on Spark.\n"
            "# [store] url = \"postgresql+psycopg://user@host/db\" keeps models and score snapshots\n"
            "# in PostgreSQL instead of retentio-store.sqlite in this folder.\n"
        )
        path.write_text(header + tomli_w.dumps(data), encoding="utf-8")
