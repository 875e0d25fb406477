"""The operational store: SQLAlchemy 2 over one SQLite file in the workspace by default,
PostgreSQL by URL (``[store] url = "postgresql+psycopg://…"`` in ``retentio.toml``).

The same code and the same Alembic migrations serve both. Opening a store upgrades its
schema to the newest revision, in one transaction (SQLite's DDL is made transactional
here, PostgreSQL's is), so a migration that fails leaves the previous schema intact.
SQLite runs with foreign keys on and in WAL mode, so readers do not wait for a writer.
See SQLAlchemy's "Serializable isolation / Savepoints / Transactional DDL" notes for
pysqlite, whose recipe this follows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from retentio.data.errors import RetentioError

STORE_FILE = "retentio-store.sqlite"
MIGRATIONS = Path(__file__).parent / "migrations"


def default_url(workspace: Path) -> str:
    """The store of a workspace that names none: a SQLite file beside its settings."""
    return f"sqlite:///{(Path(workspace) / STORE_FILE).resolve()}"


class Store:
    """A connection to the operational store (see the module docstring).

    Parameters
    ----------
    url : str
        An SQLAlchemy URL: ``sqlite:///path/file.sqlite`` or
        ``postgresql+psycopg://user:password@host:5432/database``.
    migrations : Path, optional
        Alembic script folder (tests point it at a copy with an extra revision).
    """

    def __init__(self, url: str, *, migrations: Path = MIGRATIONS):
        from sqlalchemy import create_engine, event
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        self.migrations = migrations
        try:
            self.engine = create_engine(url, pool_pre_ping=True)
        except (ArgumentError, NoSuchModuleError) as exc:
            raise RetentioError(f"store url {url!r} is not a database URL SQLAlchemy can use: {exc}") from None
        self.url = self.engine.url.render_as_string(hide_password=True)
        if self.engine.dialect.name == "sqlite":

            @event.listens_for(self.engine, "connect")
            def _sqlite_connect(dbapi_connection, _record) -> None:
                # let SQLAlchemy, not the driver, open transactions (so DDL is transactional)
                dbapi_connection.isolation_level = None
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA foreign_keys = ON")
                cursor.execute("PRAGMA journal_mode = WAL")
                # in WAL mode NORMAL loses no committed transaction when a process dies (only a
                # power cut can take the last ones): the outbox records one message per commit
                cursor.execute("PRAGMA synchronous = NORMAL")
                cursor.execute("PRAGMA busy_timeout = 10000")
                # a 128 MB page cache (default 2 MB): the ledger's indexes stay in memory on large
                # apply-orders runs (+18 % orders/s at 300k orders); only pages touched use memory
                cursor.execute("PRAGMA cache_size = -131072")
                cursor.close()

            @event.listens_for(self.engine, "begin")
            def _sqlite_begin(connection) -> None:
                # IMMEDIATE: take the write lock at the start, so two writers queue (busy
                # timeout) instead of one failing when both read and then write; a session
                # that only reads (reading()) starts a deferred one and never waits for writers
                if connection.get_execution_options().get("retentio_read_only"):
                    connection.exec_driver_sql("BEGIN")
                else:
                    connection.exec_driver_sql("BEGIN IMMEDIATE")

    @classmethod
    def open(cls, url: str, *, migrations: Path = MIGRATIONS) -> Store:
        """Connect and bring the schema up to the newest revision. A store already at the
        newest revision is only read: many processes opening it at once (tills, workers)
        would otherwise queue on SQLite's write lock while each loads the migrations."""
        store = cls(url, migrations=migrations)
        try:
            current = store.revision()
        except Exception:  # unreachable or not yet a database: upgrade() says why
            current = None
        if current is None or current != store.head():
            store.upgrade()
        return store

    def _alembic(self):
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(self.migrations))
        return config

    def upgrade(self, revision: str = "head") -> None:
        """Apply the migrations up to ``revision`` in one transaction."""
        from alembic import command
        from sqlalchemy.exc import OperationalError

        config = self._alembic()
        try:
            with self.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
        except OperationalError as exc:
            raise RetentioError(f"the store {self.url} cannot be reached or upgraded: "
                                f"{str(exc.orig).strip().splitlines()[0]}") from None

    def revision(self) -> str | None:
        """The schema's current Alembic revision (None for an empty database)."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def head(self) -> str | None:
        """The newest revision the migrations know."""
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self._alembic()).get_current_head()

    @contextlib.contextmanager
    def session(self) -> Iterator:
        """A session in one transaction: committed when the block ends, rolled back when
        it raises (SQLAlchemy's ``Session.begin()`` pattern)."""
        from sqlalchemy.orm import Session

        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextlib.contextmanager
    def reading(self) -> Iterator:
        """A session for reading only: on SQLite it does not take the write lock (WAL
        readers see the last committed state and never wait for a writer), so page views
        and look-ups do not queue behind a ledger or campaign write. Anything written in
        it is rolled back."""
        from sqlalchemy.orm import Session

        engine = self.engine.execution_options(retentio_read_only=True)
        with Session(engine, expire_on_commit=False) as session, session.begin():
            yield session
            session.rollback()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Store", "default_url", "STORE_FILE"]
