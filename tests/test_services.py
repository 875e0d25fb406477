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
