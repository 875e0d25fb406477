"""`retentio uplift train` on a file: the experiment's arms read by name, one
out-of-fold prediction per row of the two arms (by its position in the file), the
model's ranking against random and a churn-risk column, and errors naming row and column."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_cli


def _experiment(n: int = 6000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    recency = rng.uniform(0, 400, n)
    group = np.where(recency < 150, "lapsing", np.where(recency < 300, "cold", "lost"))
    effect = np.select([group == "lapsing", group == "cold"], [0.15, 0.03], 0.0)
    arm = np.where(rng.random(n) < 0.2, "ctl", "mail").astype(object)
    arm[:50] = "pilot"  # a third arm, left out
    base = 0.25 * np.exp(-recency / 200)
    bought = rng.random(n) < base + effect * (arm == "mail")
    return pd.DataFrame({"customer": [f"K{i:05d}" for i in range(n)], "recency": recency, "group": group,
                         "risk": recency / 400 + rng.normal(0, 0.05, n), "arm": arm, "bought": bought.astype(int)})


def test_table_training_writes_out_of_fold_rows_and_beats_random(tmp_path):
    frame = _experiment()
    path = tmp_path / "exp.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "oof.csv"
    code, stdout, stderr = run_cli("uplift", "train", "--table", str(path), "--treatment", "arm", "--treated", "mail",
                                   "--control", "ctl", "--outcome", "bought", "--risk", "risk", "--out", str(out),
                                   "--json")
    assert code == 0, stderr
    result = json.loads(stdout)
    assert result["n_treated"] == int((frame.arm == "mail").sum())
    assert result["n_control"] == int((frame.arm == "ctl").sum())
    oof = pd.read_csv(out)
    assert list(oof.columns) == ["row", "uplift"]
    assert oof.row.tolist() == list(np.flatnonzero(frame.arm.isin(["mail", "ctl"])))
    assert "customer" in result["dropped_columns"]
    assert result["qini"] > result["random"]["qini"] + 0.05
    assert result["qini"] > result["churn_risk"]["qini"]
    # the predictions rank the planted groups: lapsing above lost
    pred = frame.iloc[oof.row].assign(uplift=oof.uplift.to_numpy())
    means = pred.groupby("group").uplift.mean()
    assert means["lapsing"] > means["lost"]
    assert result["ate"]["low"] < result["ate"]["estimate"] < result["ate"]["high"]
    assert "uplift_at_30" in result


def test_table_errors_name_row_and_column(tmp_path):
    frame = _experiment(600)
    frame["bought"] = frame.bought.astype(object)
    frame.loc[100, "bought"] = "n/a"
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    code, _, stderr = run_cli("uplift", "train", "--table", str(path), "--treatment", "arm", "--treated", "mail",
                              "--control", "ctl", "--outcome", "bought")
    assert code != 0 and "row 102" in stderr and "bought" in stderr
    code, _, stderr = run_cli("uplift", "train", "--table", str(path), "--treatment", "arm", "--outcome", "recency")
    assert code != 0 and "row 2, column 'arm': 'pilot'" in stderr and "--treated" in stderr
    code, _, stderr = run_cli("uplift", "train", "--table", str(path), "--treatment", "nope", "--outcome", "bought")
    assert code != 0 and "nope" in stderr


def test_a_tiny_arm_is_refused(tmp_path):
    frame = _experiment(2000)
    frame["arm"] = np.where(np.arange(len(frame)) < 30, "ctl", "mail")
    path = tmp_path / "tiny.csv"
    frame.to_csv(path, index=False)
    code, _, stderr = run_cli("uplift", "train", "--table", str(path), "--treatment", "arm", "--treated", "mail",
                              "--control", "ctl", "--outcome", "bought")
    assert code != 0 and "control" in stderr.lower()


@pytest.mark.parametrize("args", [["--table", "x.csv", "--campaign", "y"], []])
def test_table_or_campaign_exactly_one(args):
    code, _, stderr = run_cli("uplift", "train", *args)
    assert code != 0 and "--campaign" in stderr
