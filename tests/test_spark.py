"""The same workspace read by the Spark engine gives the same answers."""

from __future__ import annotations

import json

import pytest

from retentio import Workspace
from retentio.data.schema import TABLES
from tests.conftest import run_cli

pytestmark = pytest.mark.spark


def test_exported_demo_reads_identically_on_spark(demo_ws_path, tmp_path, spark):
    code, duck_out, _ = run_cli("-w", str(demo_ws_path), "tables", "--json")
    assert code == 0
    export = tmp_path / "export"
    assert run_cli("-w", str(demo_ws_path), "export", "--to", str(export))[0] == 0
    spark_ws = Workspace.init(tmp_path / "spark", engine="spark", timezone="Europe/Moscow",
                              tables={t: str(export / f"{t}.parquet") for t in TABLES})
    spark_ws.close()
    code, spark_out, err = run_cli("-w", str(tmp_path / "spark"), "tables", "--json")
    assert code == 0, err
    duck = [r | {"source": None} for r in json.loads(duck_out)]
    sprk = [r | {"source": None} for r in json.loads(spark_out)]
    assert sprk == duck
    assert all(r["rows"] > 0 for r in sprk)


def test_spark_workspace_refuses_loading(tmp_path, spark):
    ws = Workspace.init(tmp_path / "s", engine="spark")
    from retentio import RetentioError

    with pytest.raises(RetentioError, match="Spark"):
        ws.load("orders", tmp_path / "x.csv")


@pytest.fixture(scope="module")
def both(demo_ws_path, tmp_path_factory, spark):
    """The demo in DuckDB and, exported, in a Spark workspace."""
    export = tmp_path_factory.mktemp("export")
    with Workspace.open(demo_ws_path) as duck:
        duck.export(export)
    path = tmp_path_factory.mktemp("spark") / "ws"
    Workspace.init(path, engine="spark", timezone="Europe/Moscow",
                   tables={t: str(export / f"{t}.parquet") for t in TABLES}).close()
    duck, sprk = Workspace.open(demo_ws_path), Workspace.open(path)
    yield duck, sprk
    duck.close()


def assert_same(a, b, keys):
    import pandas as pd

    a = a.sort_values(keys, na_position="last").reset_index(drop=True)
    b = b.sort_values(keys, na_position="last").reset_index(drop=True)
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a, b, check_dtype=False, rtol=1e-9, atol=1e-9)


def test_metrics_identical_on_duckdb_and_spark(both):
    duck, sprk = both
    assert_same(duck.metrics(period="month"), sprk.metrics(period="month"), ["period_start"])
    assert_same(duck.metrics(period="quarter", by="acquisition_channel"),
                sprk.metrics(period="quarter", by="acquisition_channel"), ["period_start", "group"])


def test_cohorts_identical_on_duckdb_and_spark(both):
    duck, sprk = both
    for kw in ({"period": "month"}, {"period": "week", "mode": "unbounded"},
               {"period": "quarter", "source": "subscriptions", "by": "acquisition_channel"}):
        keys = ["cohort", "offset"] + (["group"] if "by" in kw else [])
        assert_same(duck.cohorts(**kw), sprk.cohorts(**kw), keys)


def test_segments_and_funnel_identical_on_duckdb_and_spark(both):
    duck, sprk = both
    assert_same(duck.segments(), sprk.segments(), ["customer_id"])
    assert_same(duck.funnel(), sprk.funnel(), ["order_number"])


def test_churn_features_and_labels_identical_on_spark(both):
    import pandas as pd

    from retentio.analytics.churn.features import build_features
    from retentio.analytics.churn.labels import LabelSpec, labels

    duck, sprk = both
    cut = pd.Timestamp("2025-09-01")
    a, b = build_features(duck, cut), build_features(sprk, cut)
    for frame in (a, b):
        for c in frame.columns:
            if c.endswith("_at"):
                frame[c] = pd.to_datetime(frame[c]).astype("datetime64[us]")
            elif frame[c].dtype == object or str(frame[c].dtype) in ("string", "str"):
                frame[c] = frame[c].astype("object").where(frame[c].notna(), None)
    assert_same(a, b, ["customer_id"])
    spec = LabelSpec("orders", 60, 90)
    assert_same(labels(duck, cut, spec), labels(sprk, cut, spec), ["customer_id"])


def test_importing_the_spark_module_leaves_ibis_alone():
    """No global state: the BitOr rule is added by the Spark backend factory, not on import."""
    import subprocess
    import sys

    code = ("from ibis.backends.sql.compilers.pyspark import PySparkCompiler\n"
            "before = PySparkCompiler.__dict__.get('visit_BitOr')\n"
            "import retentio.data.spark\n"
            "print(PySparkCompiler.__dict__.get('visit_BitOr') is before)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"
