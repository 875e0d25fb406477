"""The workspace: a folder with ``retentio.toml`` and, for the default engine, one
embedded DuckDB file. Every analysis reads the canonical tables through Ibis, so the
same expressions run on DuckDB and on Spark.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis

from retentio.data.errors import RetentioError
from retentio.data.schema import TABLES, TableSchema, table_schema
from retentio.data.settings import DATABASE_FILE, ENV_WORKSPACE, SETTINGS_FILE, EngineSettings, Settings, default_path
from retentio.data.staging import q

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from retentio.data.loading import LoadReport

#: columns of the load log added after its first version: content checksum and size of
#: the file (to refuse loading the same content twice), rows skipped as already stored
LOAD_LOG_COLUMNS = {"checksum": "VARCHAR", "bytes": "BIGINT", "rows_skipped": "BIGINT"}


class Workspace:
    """A Retentio workspace: a folder with ``retentio.toml``, the analytics database
    (``retentio.duckdb``, or external Parquet/catalog tables on Spark) and the operational
    store. Open one with :meth:`open`, create one with :meth:`init`.

    Parameters
    ----------
    path : Path
        The workspace folder.
    settings : Settings
        Its settings, as read from ``retentio.toml`` (:class:`retentio.data.settings.Settings`).

    Attributes
    ----------
    path : Path
        The workspace folder.
    settings : Settings
        Timezone, currency, activity window, engine, external tables, store URL and the
        ``[analysis]`` defaults.
    read_only : bool
        Whether the analytics database is opened for reading only (analyses beside other
        readers, or on a read-only folder).

    References
    ----------
    The canonical tables are :data:`retentio.data.schema.TABLES`; the definitions every
    analysis uses are in ``docs/definitions.md``.
    """

    def __init__(self, path: Path, settings: Settings):
        self.path = Path(path)
        self.settings = settings
        self.read_only = False
        self._creating = False
        self._backend: Any = None
        self._store: Any = None
        self._shares_store = False

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def init(
        cls,
        path: str | Path = ".",
        *,
        timezone: str = "UTC",
        currency: str = "USD",
        activity_window_days: int = 90,
        engine: str = "duckdb",
        tables: Mapping[str, str] | None = None,
        exist_ok: bool = False,
    ) -> Workspace:
        """Create a workspace folder (and its database for the DuckDB engine)."""
        path = Path(path)
        settings_file = path / SETTINGS_FILE
        if settings_file.exists():
            if exist_ok:
                return cls.open(path)
            raise RetentioError(f"{path} is already a workspace ({settings_file} exists)")
        # Everything is checked before anything is created: a refused init leaves no folder.
        settings = Settings(
            timezone=timezone,
            currency=currency.strip().upper(),
            activity_window_days=activity_window_days,
            engine=EngineSettings(kind=engine),
            tables=dict(tables or {}),
        ).validate(settings_file)
        if path.exists() and not path.is_dir():
            raise RetentioError(f"{path} exists and is not a folder")
        # Only what this init creates is removed when it fails: a database file already
        # there (a workspace whose retentio.toml was lost) is the user's data.
        created = [p for p in (path, *path.parents) if not p.exists()]
        database = path / DATABASE_FILE
        had_database = database.exists()
        ws = cls(path, settings)
        try:
            path.mkdir(parents=True, exist_ok=True)
            settings.write(settings_file)
            if engine == "duckdb":
                ws._creating = True
                _ = ws.backend  # creates the database file and the canonical tables
                ws._creating = False
        except BaseException:
            with contextlib.suppress(Exception):
                ws.close()
            settings_file.unlink(missing_ok=True)
            if not had_database:
                database.unlink(missing_ok=True)
                Path(f"{database}.wal").unlink(missing_ok=True)
            for p in created:  # deepest first
                with contextlib.suppress(OSError):
                    p.rmdir()
            raise
        return ws

    @classmethod
    def open(cls, path: str | Path | None = None, *, read_only: bool = False) -> Workspace:
        """Open the workspace at ``path``. ``read_only`` opens its database for reading
        only: analyses then run on a read-only folder and beside other readers."""
        path = Path(path) if path is not None else default_path()
        settings_file = path / SETTINGS_FILE
        if not settings_file.exists():
            raise RetentioError(
                f"{path.resolve()} is not a Retentio workspace (no {SETTINGS_FILE}); "
                f"create one with `retentio init {path}` or point -w / ${ENV_WORKSPACE} at one"
            )
        ws = cls(path, Settings.read(settings_file))
        ws.read_only = read_only
        return ws

    def reader(self) -> Workspace:
        """A read-only view of this workspace that shares its (open, migrated) store: for a
        long-running process such as the web app, which reads the analytics database
        briefly per request — so ``retentio load`` and other writers are not locked out
        between requests — and keeps one pool of store connections. Closing the view
        leaves the store open."""
        view = Workspace(self.path, self.settings)
        view.read_only = True
        view._store = self.store
        view._shares_store = True
        return view

    def writer(self) -> Workspace:
        """Like :meth:`reader`, but with the analytics database open for writing."""
        view = self.reader()
        view.read_only = False
        return view

    def close(self) -> None:
        if self._backend is not None and self.engine == "duckdb":
            self._backend.disconnect()
        self._backend = None
        if self._store is not None and not self._shares_store:
            self._store.close()
        self._store = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ engine
    @property
    def engine(self) -> str:
        return self.settings.engine.kind

    @property
    def database_file(self) -> Path:
        return self.path / DATABASE_FILE

    @property
    def backend(self):
        """The Ibis backend: DuckDB on the workspace file, or PySpark."""
        if self._backend is None:
            if self.engine == "duckdb":
                self._backend = self._connect_duckdb()
                # progress is shown by the faces (Rich), not by DuckDB on stdout
                self._backend.con.execute("SET enable_progress_bar = false")
                if not self.read_only:
                    self._ensure_tables()
            else:
                from retentio.data.spark import spark_backend

                self._backend = spark_backend(self.settings.engine)
        return self._backend

    def _connect_duckdb(self):
        """Connect to the workspace's database file; a missing file, a database held by
        another process or a folder that cannot be written are user errors that say so."""
        import duckdb

        db = self.database_file
        if not self._creating and not db.exists():
            raise RetentioError(
                f"the workspace's data file {db} is missing (deleted or moved?). Put it back, or start a new "
                f"workspace with `retentio init`; nothing was created"
            )
        try:
            return ibis.duckdb.connect(str(db), read_only=self.read_only)
        except duckdb.IOException as exc:
            message = str(exc)
            if "lock" in message.lower():
                holder = re.search(r"held in (.+?) \(PID (\d+)\)", message)
                who = f"process {holder.group(2)} ({holder.group(1)})" if holder else "another process"
                raise RetentioError(
                    f"the workspace {self.path} is busy: {who} is using its database (a load or another "
                    "command still running?). Try again when it has finished; nothing was changed"
                ) from None
            if any(s in message for s in ("Read-only file system", "Permission denied", "read-only")):
                raise RetentioError(
                    f"the workspace {self.path} is read-only ({db} cannot be written): this command changes "
                    "data, so it needs a writable workspace; commands that only read work as they are"
                ) from None
            raise RetentioError(f"the workspace's data file {db} cannot be opened: {message.splitlines()[0]}") from None

    @property
    def store(self):
        """The operational store (models, score snapshots): ``[store] url`` or the SQLite
        file in the workspace, opened on first use and upgraded to the newest schema."""
        if self._store is None:
            from retentio.data.store import Store, default_url

            self._store = Store.open(self.settings.store.url or default_url(self.path))
        return self._store

    def data_fingerprint(self) -> str:
        """A fingerprint of the data the analyses read: the load log of the embedded
        database (every load changes it), or name, size and modification time of each
        external source. Equal fingerprints mean results computed on one hold for the other."""
        import hashlib

        digest = hashlib.sha256()
        if self.engine == "duckdb":
            for row in self.con.execute("SELECT loaded_at, table_name, mode, rows_stored, checksum "
                                        "FROM _retentio_loads ORDER BY loaded_at, table_name").fetchall():
                digest.update(repr(row).encode())
        for name, source in sorted(self.settings.tables.items()):
            path = Path(source) if Path(source).is_absolute() else self.path / source
            files = sorted(path.rglob("*")) if path.is_dir() else [path]
            stats = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.is_file()]
            digest.update(repr((name, source, stats)).encode())
        return digest.hexdigest()

    @property
    def con(self):
        """The raw DuckDB connection (loading and storage only; analytics use Ibis)."""
        if self.engine != "duckdb":
            raise RetentioError(
                "this workspace runs on Spark, which reads its tables from [tables] in retentio.toml; "
                "load data into a DuckDB workspace and `retentio export` it, or point [tables] at your Parquet files"
            )
        return self.backend.con

    def _ensure_tables(self) -> None:
        """Create the canonical tables and the load log when missing, and add the load
        log's later columns to workspaces made by earlier versions. Nothing is written
        when everything is there (so a read-only workspace opens)."""
        con = self._backend.con
        existing = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
        for schema in TABLES.values():
            if schema.name in self.settings.tables:
                continue
            if schema.name in existing:
                # a canonical column added by a later Retentio (e.g. orders.promo_code)
                have = {r[0] for r in con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' "
                    "AND table_name = ?", [schema.name]).fetchall()}
                for c in schema.columns:
                    if c.name not in have and not self.read_only:
                        con.execute(f"ALTER TABLE {q(schema.name)} ADD COLUMN {q(c.name)} {c.sql_type}")
                continue
            cols = ", ".join(f"{q(c.name)} {c.sql_type}" for c in schema.columns)
            con.execute(f"CREATE TABLE IF NOT EXISTS {q(schema.name)} ({cols})")
        if "_retentio_loads" not in existing:
            con.execute(
                "CREATE TABLE IF NOT EXISTS _retentio_loads (loaded_at TIMESTAMP, table_name VARCHAR, "
                "source VARCHAR, mode VARCHAR, rows_read BIGINT, rows_stored BIGINT, rows_rejected BIGINT)"
            )
        log_cols = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = '_retentio_loads'").fetchall()}
        for name, sql_type in LOAD_LOG_COLUMNS.items():
            if name not in log_cols:
                con.execute(f"ALTER TABLE _retentio_loads ADD COLUMN {q(name)} {sql_type}")

    # ------------------------------------------------------------------ tables
    def table(self, name: str) -> ir.Table:
        """The canonical table ``name`` as an Ibis table expression."""
        table_schema(name)
        external = self.settings.tables.get(name)
        backend = self.backend
        if external:
            return self._external(name, external)
        if self.engine == "spark":
            raise RetentioError(
                f"table {name} has no source: a Spark workspace reads its tables from [tables] in "
                f"{self.path / SETTINGS_FILE}"
            )
        return _with_all_columns(backend.table(name), table_schema(name))

    def _external(self, name: str, source: str) -> ir.Table:
        backend = self.backend
        path = Path(source)
        if not path.is_absolute() and "://" not in source:
            candidate = self.path / path
            path = candidate if candidate.exists() else path
        looks_like_path = "/" in source or "\\" in source or source.endswith(".parquet") or path.exists()
        if not looks_like_path and self.engine == "spark":
            return backend.table(source)
        if "://" not in source and not path.exists():
            raise RetentioError(f"[tables] {name} = {source!r}: no such file or directory")
        target = source if "://" in source else str(path.resolve())
        if self.engine == "duckdb" and Path(target).is_dir():
            target = str(Path(target) / "**" / "*.parquet")
        try:
            return _with_all_columns(backend.read_parquet(target, table_name=f"ext_{name}"), table_schema(name))
        except Exception as exc:  # the engine's own error says why; we say where
            raise RetentioError(f"[tables] {name} = {source!r} cannot be read as Parquet: {exc}") from None

    def has_source(self, name: str) -> bool:
        return name in self.settings.tables or self.engine == "duckdb"

    def is_loaded(self, name: str) -> bool:
        """True when the table has at least one row."""
        if not self.has_source(name):
            return False
        t = self.table(name)
        return bool(t.limit(1).count().execute() > 0)

    def customers(self) -> ir.Table:
        """The customers table; when none is loaded, derived from the other tables
        (every customer_id seen, ``signup_at`` = first activity)."""
        if self.is_loaded("customers"):
            return self.table("customers")
        parts = []
        for name in ("orders", "subscriptions", "events", "tickets", "surveys"):
            if self.is_loaded(name):
                t = self.table(name)
                when = TABLES[name].time_column
                parts.append(
                    t.filter(t.customer_id.notnull()).select(
                        customer_id=t.customer_id, seen_at=t[when].cast("timestamp")
                    )
                )
        if not parts:
            return self.table("customers")
        union = parts[0]
        for p in parts[1:]:
            union = union.union(p)
        return union.group_by("customer_id").agg(signup_at=union.seen_at.min())

    # ------------------------------------------------------------------ loading
    def load(
        self,
        table: str,
        source: Any,
        *,
        mapping: Mapping[str, str] | None = None,
        mode: str = "append",
        skip_invalid: str | Path | None = None,
        delimiter: str | None = None,
        decimal: str | None = None,
        fmt: str | None = None,
        encoding: str | None = None,
        sheet: str | None = None,
        date_format: str | None = None,
        allow_duplicates: bool = False,
        force: bool = False,
        now: dt.datetime | None = None,
        step: Callable[[str], None] = lambda _msg: None,
    ) -> LoadReport:
        """Validate and store ``source`` (a CSV/Excel/Parquet/JSON-lines path, or a pandas,
        Polars or Arrow frame) into canonical ``table``; see :mod:`retentio.data.loading`."""
        from retentio.data.loading import load_table

        schema: TableSchema = table_schema(table)
        if table in self.settings.tables:
            raise RetentioError(
                f"table {table} is read from {self.settings.tables[table]!r} ([tables] in retentio.toml); "
                "remove that line to load it into the workspace"
            )
        return load_table(
            self.con,
            schema,
            source,
            mapping=mapping,
            mode=mode,
            skip_invalid=skip_invalid,
            delimiter=delimiter,
            decimal=decimal,
            fmt=fmt,
            encoding=encoding,
            sheet=sheet,
            date_format=date_format,
            allow_duplicates=allow_duplicates,
            force=force,
            timezone=self.settings.timezone,
            currency=self.settings.currency,
            now=now,
            step=step,
            protected=(self.database_file, self.path / SETTINGS_FILE),
        )

    def stored_rows(self) -> dict[str, int]:
        """Rows per canonical table stored in this workspace's own database (tables read
        from [tables] sources are not its to lose), for tables holding any."""
        if self.engine != "duckdb":
            return {}
        counts = {name: self.con.execute(f"SELECT count(*) FROM {q(name)}").fetchall()[0][0]
                  for name in TABLES if name not in self.settings.tables}
        return {name: n for name, n in counts.items() if n}

    def load_history(self) -> list[dict]:
        """Every load into this workspace: when, what, how many rows stored and rejected."""
        if self.engine != "duckdb":
            return []
        rows = self.con.execute(
            "SELECT loaded_at, table_name, source, mode, rows_read, rows_stored, rows_rejected "
            "FROM _retentio_loads ORDER BY loaded_at"
        ).fetchall()
        keys = ("loaded_at", "table", "source", "mode", "rows_read", "rows_stored", "rows_rejected")
        return [dict(zip(keys, r)) | {"loaded_at": r[0].isoformat()} for r in rows]

    # ------------------------------------------------------------------ summaries
    def summary(self) -> list[dict]:
        """Per canonical table: rows, distinct customers, first and last date, source."""
        out = []
        for name, schema in TABLES.items():
            if not self.has_source(name):
                out.append({"table": name, "rows": 0, "customers": 0, "from": None, "to": None,
                            "source": None})
                continue
            t = self.table(name)
            aggs = {"rows": t.count()}
            if "customer_id" in t.columns:
                aggs["customers"] = t.customer_id.nunique()
            if schema.time_column and schema.time_column in t.columns:
                aggs["first"] = t[schema.time_column].min()
                aggs["last"] = t[schema.time_column].max()
            row = t.aggregate(**aggs).to_pyarrow().to_pylist()[0]
            out.append({
                "table": name,
                "rows": int(row["rows"]),
                "customers": int(row.get("customers") or 0),
                "from": iso_date(row.get("first")),
                "to": iso_date(row.get("last")),
                "source": self.settings.tables.get(name, "workspace"),
            })
        return out

    # ------------------------------------------------------------------ export
    def export(self, directory: str | Path, fmt: str = "parquet",
               step: Callable[[str], None] = lambda _msg: None) -> list[dict]:
        """Write every canonical table to ``directory`` as ``TABLE.parquet`` or ``TABLE.csv``."""
        if fmt not in ("parquet", "csv"):
            raise RetentioError(f"unknown export format {fmt!r}; use parquet or csv")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for name in TABLES:
            if not self.has_source(name):
                continue
            step(name)
            target = directory / f"{name}.{fmt}"
            t = self.table(name)
            if fmt == "parquet":
                t.to_parquet(target)
            else:
                t.to_csv(target)
            written.append({"table": name, "path": str(target), "rows": int(t.count().execute())})
        return written


def _with_all_columns(t: ir.Table, schema: TableSchema) -> ir.Table:
    """``t`` with every canonical column: an optional column a file (or a read-only
    database made by an earlier Retentio) lacks is read as nulls of its type."""
    import ibis

    from retentio.data.schema import SQL_TYPES

    missing = {c.name: ibis.null().cast(_IBIS_TYPES[SQL_TYPES[c.kind]]) for c in schema.columns
               if c.name not in t.columns}
    return t.mutate(**missing) if missing else t


_IBIS_TYPES = {"VARCHAR": "string", "TIMESTAMP": "timestamp", "DATE": "date", "DECIMAL(18,4)": "decimal(18,4)",
               "DOUBLE": "float64", "BIGINT": "int64", "BOOLEAN": "boolean"}


def iso_date(value: Any) -> str | None:
    """The day of a date, a datetime or a timestamp as ``YYYY-MM-DD`` (None for a missing
    one, pandas' NaT included: it is the one value unequal to itself)."""
    if value is None or value != value:
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)[:10]


__all__ = ["Workspace", "default_path"]
