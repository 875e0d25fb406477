"""The Spark session behind a ``kind = "spark"`` workspace."""

from __future__ import annotations

import shutil

from retentio.data.errors import RetentioError
from retentio.data.settings import EngineSettings

_DEFAULTS = {
    # Timestamps are workspace wall-clock time; a UTC session never shifts them.
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    # Small local jobs: the default 200 shuffle partitions only add scheduling overhead.
    "spark.sql.shuffle.partitions": "8",
    "spark.driver.memory": "4g",
    "spark.sql.ansi.enabled": "false",
}


def spark_session(engine: EngineSettings):
    """Get or create the SparkSession for ``engine`` (master and extra conf)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise RetentioError(
            "this workspace uses the Spark engine, but PySpark is not installed: "
            "pip install 'retentio[spark]'"
        ) from None
    if shutil.which("java") is None:
        raise RetentioError("the Spark engine needs Java 17 on the PATH (Debian: apt-get install openjdk-17-jre-headless)")
    builder = SparkSession.builder.master(engine.master).appName("retentio")
    for key, value in {**_DEFAULTS, **engine.conf}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def _teach_ibis_bit_or() -> None:
    """Ibis 12's PySpark compiler has no rule for the ``BitOr`` aggregate although Spark
    has had ``bit_or`` since 3.0; the retention counts use it (per-customer activity
    bitmasks), so add the one-line rule DuckDB's compiler already has."""
    from ibis.backends.sql.compilers.pyspark import PySparkCompiler
    from ibis.common.exceptions import OperationNotDefinedError

    def visit_bit_or(self, op, *, arg, where, **_kw):
        return self.agg.bit_or(arg, where=where)

    try:
        PySparkCompiler.visit_BitOr(PySparkCompiler(), None, arg=None, where=None)
    except OperationNotDefinedError:
        PySparkCompiler.visit_BitOr = visit_bit_or
    except Exception:  # a rule exists (a newer Ibis): keep it
        pass


def spark_backend(engine: EngineSettings):
    """The Ibis backend of a Spark workspace: the session for ``engine``, with the one
    compiler rule Retentio needs added explicitly here (importing this module changes
    nothing in Ibis)."""
    import ibis

    _teach_ibis_bit_or()
    return ibis.pyspark.connect(spark_session(engine))
