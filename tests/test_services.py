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


def test_value_concentration_by_hand():
    from retentio.analytics.clv.from_orders import value_concentration

    # ten customers worth 1..10: the top tenth is the single customer worth 10 of 55
    assert value_concentration(list(range(1, 11)), 0.1) == pytest.approx(100 * 10 / 55)
    # the top fifth of five customers is one customer: 50 of 50 + 4 × 0 ... of 60 here
    assert value_concentration([50, 5, 5, 0, 0], 0.2) == pytest.approx(100 * 50 / 60)
    assert value_concentration([0.0, 0.0], 0.1) == 0.0
    with pytest.raises(InvalidParameter, match="top_fraction"):
        value_concentration([1.0], 0.0)


def test_retention_results_carry_their_facts_as_fields(demo_ws_path):
    from retentio.services import retention

    with Workspace.open(demo_ws_path, read_only=True) as ws:
        m = retention.retention_metrics(ws, retention.MetricsParams(period="quarter", window=60))
        cohorts = retention.cohort_retention(ws)
        seg = retention.customer_segments(ws, dt.date(2025, 1, 1))
        life = retention.customer_lifecycle(ws, "quarter", complete_only=True)
        counts = retention.retention_metrics(ws, retention.MetricsParams(period="quarter")).complete
        fun = retention.funnels(ws)
    assert (m.period, m.activity_window_days, m.engine) == ("quarter", 60, "duckdb") and "60 days" in m.definition
    assert m.frame.attrs == {} and cohorts.frame.attrs == {} and seg.customers.attrs == {}
    assert m.complete.complete.all() and len(m.complete) == int(m.frame.complete.sum()) > 0
    # lifecycle comes from the same counts as the metrics (quarter, the workspace's window)
    assert life.frame.new.tolist() == counts.customers_new.tolist()
    assert seg.as_of == "2025-01-01" and seg.key_customers > 0
    best = seg.summary.set_index("segment").revenue_share_pct
    assert seg.revenue_share_pct("champions", "loyal") == pytest.approx(best["champions"] + best["loyal"])
    # the largest drop, worked out from the funnel's own rows
    orders = fun.orders
    i = int(orders.lost.idxmax())
    assert fun.largest_drop.step == orders.step[i] and fun.largest_drop.previous_step == orders.step[i - 1]
    assert fun.largest_drop.lost_pct == pytest.approx(100 * orders.lost[i] / orders.customers[i - 1])
    assert fun.subscriptions is not None and cohorts.average_curve.offset.min() == 0


def test_report_data_gathers_every_section_with_one_horizon(demo_ws_path, tmp_path):
    import shutil

    from retentio.analytics.clv.from_orders import value_concentration
    from retentio.services import report

    copy = tmp_path / "w"
    shutil.copytree(demo_ws_path, copy)
    (copy / "retentio.toml").write_text((copy / "retentio.toml").read_text() + "\n[analysis]\nclv_horizon_months = 6\n"
                                        "holdout_days = 120\n")
    heard: list[str] = []
    with Workspace.open(copy) as ws:
        d = report.report_data(ws, report.ReportParams(train_if_missing=True), progress=heard.append)
        channels = clv.value_channels(ws)
        last_order = ws.table("orders").ordered_at.max().execute()
    # no campaign has run and no loyalty program exists here: only those sections are unavailable, and say why
    assert set(d.unavailable) == {"actions", "loyalty"} and "No campaign" in str(d.unavailable["actions"])
    assert "No loyalty program" in str(d.unavailable["loyalty"])
    assert d.value.horizon_months == 6 and channels.horizon == 6
    assert d.value.top_share_pct == pytest.approx(value_concentration(d.value.values.clv, 0.1))
    assert d.value.calibration_end == (last_order - dt.timedelta(days=120)).date()
    assert d.churn.trained_now and "training the churn model" in heard
    assert d.churn.high_risk == int((d.churn.scores.band == "high").sum())
    assert "reason_groups" in d.churn.scores
    assert d.data.definitions["CRR"].startswith("(customers at end") and d.data.rows_rejected == 0


def test_a_section_without_data_is_unavailable_with_its_reason(tmp_path):
    from retentio.data.errors import NotLoaded
    from retentio.services import report
    from retentio.services.data import WorkspaceParams, create_workspace

    create_workspace(tmp_path / "empty", WorkspaceParams(currency="EUR"))
    with Workspace.open(tmp_path / "empty") as ws:
        d = report.report_data(ws, report.ReportParams(train_if_missing=False))
    assert d.value is None and isinstance(d.unavailable["clv"], NotLoaded)
    assert d.churn is None and "churn" in d.unavailable
    assert d.data is not None and all(t.rows == 0 for t in d.data.tables)


def test_load_service_and_renames(tmp_path):
    from retentio.services.data import LoadParams, describe_tables, load_table, parse_renames

    assert parse_renames(["Клиент = customer_id", "Сумма=amount"]) == {"Клиент": "customer_id", "Сумма": "amount"}
    with pytest.raises(InvalidParameter, match="their_column=our_column"):
        parse_renames(["customer_id"])
    f = tmp_path / "o.csv"
    f.write_text("Клиент;Заказ;Дата;Сумма\nC1;O1;2024-03-01;1 234,50\nC2;O2;2024-03-02;99,90\n", encoding="utf-8")
    heard: list[str] = []
    with Workspace.init(tmp_path / "w", currency="RUB") as ws:
        report = load_table(ws, "orders", f, LoadParams(
            mapping={"Клиент": "customer_id", "Заказ": "order_id", "Дата": "ordered_at", "Сумма": "amount"}),
            progress=heard.append)
        tables = {t.table: t for t in describe_tables(ws)}
        stored = ws.table("orders").amount.sum().execute()
    assert report.rows_stored == 2 and "stored" in heard
    assert float(stored) == pytest.approx(1234.50 + 99.90)
    assert tables["orders"].rows == 2 and tables["orders"].first_day == "2024-03-01"
