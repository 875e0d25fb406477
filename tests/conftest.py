from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import pytest

from retentio import Workspace
from retentio.data.demo import generate

DATA = Path(__file__).parent / "data"


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A fresh, empty DuckDB workspace in Moscow time."""
    w = Workspace.init(tmp_path / "ws", timezone="Europe/Moscow", currency="RUB")
    yield w
    w.close()


@pytest.fixture(scope="session")
def demo_data():
    """A small demo business (shared, read-only)."""
    return generate(n_customers=1500, seed=11)


def demo_workspace(path: Path, data) -> Path:
    """Load a generated demo business into a new DuckDB workspace (Moscow time, roubles)."""
    with Workspace.init(path, timezone="Europe/Moscow", currency="RUB") as w:
        for name, frame in data.tables().items():
            w.load(name, frame)
    return path


@pytest.fixture(scope="session")
def demo_ws_path(tmp_path_factory, demo_data) -> Path:
    """A DuckDB workspace holding the small demo business (do not write to it)."""
    return demo_workspace(tmp_path_factory.mktemp("demo") / "ws", demo_data)


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for the whole run (starting one takes seconds)."""
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.fail("Java 17 is needed for the Spark tests: apt-get install openjdk-17-jre-headless")
    from retentio.data.settings import EngineSettings
    from retentio.data.spark import spark_session

    session = spark_session(EngineSettings(kind="spark", master="local[2]"))
    yield session
    session.stop()


@contextlib.contextmanager
def database_held(db: Path):
    """Another process holding a workspace's database, as a running load does; yields it."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('ready', flush=True); time.sleep(60)", str(db)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def write(path: Path, text: str) -> Path:
    path.write_text(text.lstrip("\n"), encoding="utf-8")
    return path


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (exit status, stdout, stderr)."""
    from retentio.faces.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


# ---------------------------------------------------------------------- PostgreSQL for the store tests
def _answers(url: str) -> bool:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as c:
            c.exec_driver_sql("SELECT 1")
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - no server there
        return False


def _throwaway_cluster(folder: Path):
    """A PostgreSQL cluster of the installed binaries in ``folder`` on a free loopback
    port, run as the ``postgres`` user when we are root (initdb refuses root). Returns
    (url, stop)."""
    import glob
    import os
    import socket
    import subprocess

    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.fail("PostgreSQL is needed for the store tests: apt-get install postgresql (make test does it)")
    bindir = Path(bins[-1]).parent
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = folder / "pgdata"
    data.mkdir(parents=True)
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(data, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "-o",
                    f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start"], check=True, capture_output=True)

    def stop() -> None:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], capture_output=True)

    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", stop


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """A real PostgreSQL server: $RETENTIO_TEST_POSTGRES_URL, else one answering on
    127.0.0.1:5432, else a throwaway cluster started from the installed binaries."""
    import os

    url = os.environ.get("RETENTIO_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    local = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    if _answers(local):
        yield local
        return
    import tempfile

    # not under pytest's temporary folder: that one is private to root, and the server runs as postgres
    folder = Path(tempfile.mkdtemp(prefix="retentio-pg-"))
    url, stop = _throwaway_cluster(folder)
    try:
        yield url
    finally:
        stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server):
    """A database of its own on the test server, dropped afterwards."""
    import uuid

    import sqlalchemy as sa

    name = f"retentio_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """The same store tests on SQLite and on a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    return request.getfixturevalue("postgres_url")
