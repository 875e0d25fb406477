"""The services: typed parameters in, typed results out, the same numbers the commands print."""

from __future__ import annotations

import datetime as dt

import pytest

from retentio import Workspace
from retentio.data.errors import InvalidParameter
from retentio.services import clv
from tests.conftest import DATA


def test_fit_model_from_a_file_needs_no_workspace():
    fitted = clv.fit_model(None, clv.FitParams("bgnbd", summary=DATA / "cdnow_customers_summary.csv"))
    assert fitted.summary["params"]["r"] == pytest.approx(0.243, abs=1e-3)  # Fader, Hardie & Lee (2005)
    with pytest.raises(InvalidParameter, match="summary is missing"):
        clv.fit_model(None, clv.FitParams("bgbb"))


def test_channels_and_customers_are_valued_over_one_horizon(demo_ws_path):
    with Workspace.open(demo_ws_path) as ws:
        customers = clv.value_customers(ws)
        channels = clv.value_channels(ws)
        longer = clv.value_customers(ws, clv.ValueParams(horizon=24))
    assert (customers.horizon, customers.unit) == (channels.horizon, channels.unit) == (12, "month")
    assert longer.frame.clv.sum() > customers.frame.clv.sum()
    assert set(channels.frame.columns) >= {"acquisition_channel", "cac", "ltv", "ltv_to_cac", "romi_pct"}


def test_holdout_check_is_typed(demo_ws_path):
    with Workspace.open(demo_ws_path) as ws:
        check = clv.check_holdout(ws, dt.date(2025, 6, 30))
    assert check.model_summary["converged"]
    assert {"actual", "predicted"} <= set(check.tracking.columns)
    assert check.tracking.actual.iloc[-1] > 0


def test_churn_scores_are_typed_not_attrs(demo_ws_path, tmp_path):
    import shutil

    from retentio.services import churn

    copy = tmp_path / "w"
    shutil.copytree(demo_ws_path, copy)
    with Workspace.open(copy) as ws:
        report = churn.train_churn(ws, churn.TrainParams(threads=1, seed=0))
        first = churn.score_churn(ws, top=5)
        again = churn.score_churn(ws, top=5)
    assert report["model_version"] == first.model_version == 1
    assert (first.snapshot_reused, again.snapshot_reused) == (False, True) and first.snapshot_id == again.snapshot_id
    assert first.label and first.value_basis and first.as_of and len(first.frame) == 5
    assert first.frame.attrs == {}  # the facts travel in the result, not in DataFrame.attrs
    with pytest.raises(InvalidParameter, match="label"):
        churn.cross_validate_table(tmp_path / "t.csv", None)
