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
