"""Cohorts, RFM segments, lifecycle and funnels on small data with known answers."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from retentio import Workspace
from retentio.analytics.cohorts import average_curve
from retentio.analytics.segments import SEGMENTS, segment_summary
from tests.conftest import run_cli

ORDERS = [  # customer: months with orders (2024)
    ("A", ["2024-01-05", "2024-02-05", "2024-04-05"]),
    ("B", ["2024-01-10"]),
    ("C", ["2024-01-20", "2024-03-01"]),
    ("D", ["2024-02-03", "2024-02-04", "2024-03-09"]),
]


@pytest.fixture
def shop(tmp_path):
    rows = [(f"{c}{i}", c, d, 10.0 * (i + 1)) for c, ds in ORDERS for i, d in enumerate(ds)]
    ws = Workspace.init(tmp_path / "shop")
    ws.load("orders", pd.DataFrame(rows, columns=["order_id", "customer_id", "ordered_at", "amount"]))
    yield ws
    ws.close()


def cell(df, cohort, offset, col):
    return df[(df.cohort == cohort) & (df.offset == offset)][col].item()


def test_bounded_and_unbounded_cohorts(shop):
    b = shop.cohorts(period="month")
    # January cohort {A, B, C}: Feb A; Mar C; Apr A
    assert [cell(b, "2024-01-01", k, "active") for k in range(4)] == [3, 1, 1, 1]
    assert cell(b, "2024-01-01", 0, "cohort_size") == 3
    assert cell(b, "2024-02-01", 1, "retention_pct") == 100.0  # D in March
    u = shop.cohorts(period="month", mode="unbounded")
    # unbounded: active in that month or later -> A (last Apr), C (last Mar), B (last Jan)
    assert [cell(u, "2024-01-01", k, "active") for k in range(4)] == [3, 2, 2, 1]
    # revenue: Jan cohort in Jan = A 10 + B 10 + C 10; cumulative per customer after Feb = (30 + 20) / 3
    assert cell(b, "2024-01-01", 0, "revenue") == 30.0
    assert cell(b, "2024-01-01", 1, "cumulative_revenue_per_customer") == pytest.approx(50 / 3)


def test_incomplete_trailing_period_is_flagged(shop):
    b = shop.cohorts(period="month")
    # the data end on 2024-04-05: April is not complete
    assert not cell(b, "2024-01-01", 3, "complete") and cell(b, "2024-01-01", 2, "complete")
    curve = average_curve(b).set_index("offset")
    # offset 1 complete for Jan (1 of 3) and Feb (1 of 1) cohorts: (1 + 1) / (3 + 1)
    assert curve.loc[1, "retention_pct"] == pytest.approx(50.0)
    assert 3 not in curve.index  # only incomplete cells at offset 3


def test_quarter_and_week_cohorts(shop):
    q = shop.cohorts(period="quarter")
    assert cell(q, "2024-01-01", 0, "cohort_size") == 4 and cell(q, "2024-01-01", 1, "active") == 1
    w = shop.cohorts(period="week")
    assert w.cohort.min() == "2024-01-01"  # Monday of the first order's week


def test_cohorts_by_group_and_subscriptions(demo_ws_path):
    with Workspace.open(demo_ws_path) as ws:
        total = ws.cohorts(period="quarter")
        by = ws.cohorts(period="quarter", by="acquisition_channel")
        subs = ws.cohorts(period="quarter", source="subscriptions")
    sizes = by[by.offset == 0].groupby("cohort").cohort_size.sum()
    assert sizes.to_dict() == total[total.offset == 0].set_index("cohort").cohort_size.to_dict()
    assert (subs[subs.offset == 0].retention_pct == 100).all()
    assert subs.active.sum() > 0


def test_rfm_scores_and_segments(shop):
    seg = shop.segments(as_of="2024-05-01").set_index("customer_id")
    assert seg.frequency.to_dict() == {"A": 3, "B": 1, "C": 2, "D": 3}
    assert seg.loc["A", "recency_days"] == 26.0
    # recency ranked longest-ago first: B (Jan 10) lowest score, A (Apr 5) highest
    assert seg.loc["B", "r_score"] == 1 and seg.loc["A", "r_score"] == 4
    # equal frequencies share a score: A and D both 3 orders
    assert seg.loc["A", "f_score"] == seg.loc["D", "f_score"] == 3
    assert set(seg.segment) <= set(SEGMENTS)
    assert seg.sleeping.to_dict() == {"A": False, "B": True, "C": False, "D": False}
    summary = segment_summary(seg.reset_index())
    assert summary.customers.sum() == 4 and summary.share_pct.sum() == pytest.approx(100)


def test_segment_map_on_demo(demo_ws_path):
    with Workspace.open(demo_ws_path) as ws:
        seg = ws.segments()
    assert set(seg.segment) == set(SEGMENTS)  # every segment of the map occurs in a realistic base
    champions = seg[seg.segment == "champions"]
    assert (champions.r_score == 5).all() and (champions.f_score >= 4).all()
    key = seg[seg.key_customer]
    assert (key.frequency >= 2).all() and key.monetary.min() >= seg[seg.frequency >= 2].monetary.quantile(0.85)
    assert 0.08 < len(key) / (seg.frequency >= 2).sum() <= 0.11


def test_funnel_and_lifecycle(shop):
    f = shop.funnel().set_index("order_number")
    assert f.customers.tolist() == [4, 3, 2]
    assert f.loc[2, "conversion_pct"] == 75.0
    assert f.loc[3, "median_days"] == pytest.approx((60 + 34) / 2)  # A: Feb 5 -> Apr 5 (60 d); D: Feb 4 -> Mar 9 (34 d)
    life = shop.lifecycle()
    assert {"new", "retained", "reactivated", "dormant", "quick_ratio"} <= set(life.columns)
    assert life.new.sum() == 4


def test_cli_json_of_cohorts_segments_lifecycle_funnel(demo_ws_path):
    w = str(demo_ws_path)
    code, out, _ = run_cli("-w", w, "cohorts", "--json")
    data = json.loads(out)
    assert code == 0 and {"cohort", "cohort_size", "offset", "active", "retention_pct", "revenue",
                          "cumulative_revenue_per_customer"} <= set(data["cohorts"][0])
    assert data["average_curve"][0]["retention_pct"] == 100.0
    code, out, _ = run_cli("-w", w, "segments", "--json")
    rows = json.loads(out)
    assert code == 0 and {"customer_id", "recency_days", "frequency", "monetary", "r_score", "f_score", "m_score",
                          "segment", "key_customer", "sleeping"} == set(rows[0])
    code, out, _ = run_cli("-w", w, "segments", "--summary", "--json")
    assert code == 0 and sum(r["customers"] for r in json.loads(out)) == len(rows)
    code, out, _ = run_cli("-w", w, "lifecycle", "--json")
    assert code == 0 and "quick_ratio" in json.loads(out)[0]
    code, out, _ = run_cli("-w", w, "funnel", "--json")
    data = json.loads(out)
    assert code == 0 and data["largest_drop"] == "order 2" and data["subscriptions"][0]["step"] == "trial"
    for cmd in ("metrics", "cohorts", "segments", "lifecycle", "funnel"):
        code, out, err = run_cli("-w", w, cmd)
        assert code == 0 and out.strip(), (cmd, err)
