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
