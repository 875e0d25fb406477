"""Period metrics on a small hand-made business whose every count is written out here."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from retentio import Workspace
from retentio.analytics.metrics import ORDER_KEYS, SUB_KEYS, SURVEY_KEYS
from tests.conftest import run_cli

ORDERS = [  # id, customer, when, amount, status
    ("a1", "A", "2023-12-20", 100, "completed"), ("a2", "A", "2024-01-10", 50, "completed"),
    ("a3", "A", "2024-02-25", 30, "completed"), ("b1", "B", "2024-01-05", 20, "completed"),
    ("c1", "C", "2023-11-01", 40, "completed"), ("c2", "C", "2024-02-10", 60, "completed"),
    ("d1", "D", "2023-12-28", 70, "completed"), ("d2", "D", "2024-01-15", 70, "returned"),
    ("e1", "E", "2024-02-15", 10, "completed"), ("e2", "E", "2024-02-20", 15, "completed"),
]
SUBS = [  # id, customer, started, mrr, ended, trial
    ("s1", "A", "2023-12-01", 10, "2024-01-20", False), ("s2", "A", "2024-01-20", 20, None, False),
    ("s3", "B", "2023-12-15", 15, "2024-01-10", False), ("s4", "C", "2024-01-15", 5, "2024-01-25", False),
    ("s5", "C", "2024-02-20", 5, None, False), ("s6", "D", "2023-11-01", 30, "2024-02-05", False),
    ("s7", "D", "2024-02-05", 12, None, False), ("t1", "E", "2024-02-01", 0, None, True),
]
SURVEYS = [("2024-01-03", "nps", 10), ("2024-01-04", "nps", 9), ("2024-01-05", "nps", 7), ("2024-01-06", "nps", 3),
           ("2024-01-07", "csat", 5), ("2024-01-08", "csat", 4), ("2024-01-09", "csat", 2),
           ("2024-01-10", "ces", 2), ("2024-01-11", "ces", 4)]


@pytest.fixture
def shop(tmp_path):
    ws = Workspace.init(tmp_path / "shop", activity_window_days=30)
    ws.load("orders", pd.DataFrame(ORDERS, columns=["order_id", "customer_id", "ordered_at", "amount", "status"]))
    ws.load("subscriptions", pd.DataFrame(SUBS, columns=["subscription_id", "customer_id", "started_at", "mrr",
                                                         "ended_at", "is_trial"]))
    ws.load("surveys", pd.DataFrame(SURVEYS, columns=["answered_at", "kind", "score"]))
    yield ws
    ws.close()


def metrics(ws, **kw):
    df = ws.metrics(start=dt.date(2024, 1, 1), end=dt.date(2024, 2, 29), **kw)
    return df.set_index("period_start")


def test_customer_counts_by_hand(shop):
    m = metrics(shop)
    assert list(m.index) == ["2024-01-01", "2024-02-01"]
    cols = ["customers_start", "customers_new", "customers_end", "customers_retained", "customers_lost",
            "customers_reactivated"]
    # Jan: start {A, D}; B new; end {A, B}; D lost (a returned order is not activity)
    assert m.loc["2024-01-01", cols].tolist() == [2, 1, 2, 1, 1, 0]
    # Feb: start {A, B}; E new; end {A, C, E}; B lost; C reactivated
    assert m.loc["2024-02-01", cols].tolist() == [2, 1, 3, 1, 1, 1]
    assert m.loc["2024-01-01", "crr_pct"] == pytest.approx(50.0)
    assert m.loc["2024-02-01", "crr_pct"] == pytest.approx(100.0)
    assert m.churn_pct.tolist() == pytest.approx([50.0, 50.0])


def test_order_statistics_by_hand(shop):
    m = metrics(shop)
    jan, feb = m.loc["2024-01-01"], m.loc["2024-02-01"]
    assert (jan.buyers, jan.orders, jan.revenue, jan.aov) == (2, 2, 70.0, 35.0)
    assert jan.return_rate_pct == pytest.approx(100 / 3)
    assert jan.repeat_purchase_rate_pct == pytest.approx(50.0)  # A's 2nd order is in Jan; B has one
    assert (feb.buyers, feb.orders, feb.revenue, feb.aov) == (3, 4, 115.0, 28.75)
    assert feb.purchase_frequency == pytest.approx(4 / 3)
    assert feb.repeat_purchase_rate_pct == pytest.approx(100.0)


def test_mrr_movements_by_hand_and_they_add_up(shop):
    m = metrics(shop)
    cols = ["mrr_start", "mrr_new", "mrr_expansion", "mrr_contraction", "mrr_churned", "mrr_reactivated", "mrr_end"]
    assert m.loc["2024-01-01", cols].tolist() == [55.0, 0.0, 10.0, 0.0, 15.0, 0.0, 50.0]
    assert m.loc["2024-02-01", cols].tolist() == [50.0, 0.0, 0.0, 18.0, 0.0, 5.0, 37.0]
    assert m.loc["2024-01-01", ["subscribers_start", "subscribers_end", "subscribers_lost"]].tolist() == [3, 2, 1]
    assert m.loc["2024-01-01", "grr_pct"] == pytest.approx(40 / 55 * 100)
    assert m.loc["2024-01-01", "nrr_pct"] == pytest.approx(50 / 55 * 100)
    assert m.loc["2024-01-01", "revenue_churn_pct"] == pytest.approx(15 / 55 * 100)
    assert m.loc["2024-02-01", "grr_pct"] == pytest.approx(64.0)


def test_mrr_identity_holds_exactly_on_the_demo(demo_ws_path):
    with Workspace.open(demo_ws_path) as ws:
        m = ws.metrics(period="month")
    lhs = m.mrr_start + m.mrr_new + m.mrr_expansion - m.mrr_contraction - m.mrr_churned + m.mrr_reactivated
    assert (lhs - m.mrr_end).abs().max() < 1e-6
    assert (m.mrr_end.iloc[:-1].to_numpy() == m.mrr_start.iloc[1:].to_numpy()).all()
    assert (m.customers_end.iloc[:-1].to_numpy() == m.customers_start.iloc[1:].to_numpy()).all()
    assert (m.customers_start - m.customers_lost == m.customers_retained).all()


def test_surveys_by_hand_and_null_on_zero_denominators(shop):
    m = metrics(shop)
    jan, feb = m.loc["2024-01-01"], m.loc["2024-02-01"]
    assert (jan.nps, jan.nps_responses) == (25.0, 4)
    assert jan.csat_pct == pytest.approx(200 / 3)
    assert jan.ces_mean == 3.0
    assert pd.isna(feb.nps) and feb.nps_responses == 0 and pd.isna(feb.csat_pct) and pd.isna(feb.ces_mean)
    full = shop.metrics().set_index("period_start")
    first = full.iloc[0]  # Nov 2023: nobody was active at its start
    assert first.customers_start == 0 and pd.isna(first.crr_pct) and pd.isna(first.churn_pct)
    # GRR and NRR by hand (SUBS): Nov starts with D's 30 and loses nothing; Jan starts with
    # A 10 + B 15 + D 30 = 55, B churns 15 and A expands by 10 (C comes and goes within the
    # month); Feb starts with A 20 + D 30 = 50 and D contracts by 18.
    assert (first.mrr_start, first.grr_pct, first.nrr_pct) == (30, 100, 100)
    jan, feb = full.loc["2024-01-01"], full.loc["2024-02-01"]
    assert jan.mrr_start == 55 and jan.grr_pct == pytest.approx(100 * 40 / 55)
    assert jan.nrr_pct == pytest.approx(100 * 50 / 55)
    assert feb.mrr_start == 50 and feb.grr_pct == pytest.approx(64.0) and feb.nrr_pct == pytest.approx(64.0)


def test_window_changes_activity(shop):
    wide = metrics(shop, window=90)
    # with 90 days C's November order keeps C active at Jan 1
    assert wide.loc["2024-01-01", "customers_start"] == 3


def test_quarters_and_weeks(shop):
    q = shop.metrics(period="quarter")
    assert q.period_start.tolist() == ["2023-10-01", "2024-01-01"]
    w = shop.metrics(period="week", start=dt.date(2024, 1, 1), end=dt.date(2024, 1, 14))
    assert w.period_start.tolist() == ["2024-01-01", "2024-01-08"]  # ISO weeks start on Monday


def test_demo_json_has_every_key_for_every_month(demo_ws_path):
    import json

    from tests.conftest import run_cli

    code, out, err = run_cli("-w", str(demo_ws_path), "metrics", "--period", "month", "--json")
    assert code == 0, err
    rows = json.loads(out)
    months = pd.period_range("2023-10", "2026-09", freq="M")
    assert [r["period_start"][:7] for r in rows] == [str(p) for p in months]
    for r in rows:
        assert set(ORDER_KEYS + SUB_KEYS + SURVEY_KEYS + ["period_start", "period_end", "complete"]) <= set(r)


def test_by_group_sums_to_total(demo_ws_path):
    with Workspace.open(demo_ws_path) as ws:
        total = ws.metrics(period="quarter").set_index("period_start")
        by = ws.metrics(period="quarter", by="acquisition_channel")
    summed = by.groupby("period_start")[["customers_start", "customers_new", "customers_lost", "orders"]].sum()
    pd.testing.assert_frame_equal(summed, total[summed.columns], check_dtype=False)


def test_unknown_by_column_is_a_clear_error(demo_ws_path):
    from retentio import RetentioError

    with Workspace.open(demo_ws_path) as ws, pytest.raises(RetentioError, match="expected a customer column"):
        ws.metrics(by="shoe_size")
    code, _, err = run_cli("-w", str(demo_ws_path), "metrics", "--by", "shoe_size")
    assert code == 2 and "--by 'shoe_size': expected a customer column" in err
    code, _, err = run_cli("-w", str(demo_ws_path), "metrics", "--from", "2025-03-01", "--to", "2025-02-01")
    assert code == 2 and "--to '2025-02-01': expected a day not before the start" in err
