"""`campaign measure` on a small shop worked by hand: two campaigns run on 2026-06-15
(a 10 % discount and 50 bonus points), their messages exported, orders after the send —
some with the campaign's codes — loaded the usual way, and every number of the
measurement (sizes, rates, revenue, margin, cost, ROI) recomputed here from the rows.
Groups of a breakdown add up to the total; bad options name the option."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tests.campaign_data import NOON, write_playbook

AS_OF = dt.date(2026, 6, 15)
IDS = [f"W{i:02d}" for i in range(1, 41)]
SETTINGS = ('[campaigns]\nquiet_start = "00:00"\nquiet_end = "00:00"\npoint_value = 0.5\n'
            '[channels.csv]\ncost_per_message = 2.0\n')


def _playbook(name: str, offer: str) -> str:
    return f'''kind = "early_access"
[trigger]
occurrence = "{name}"
[offer]
{offer}
[message]
text = "Hello {{{{ first_name }}}} {{{{ promo_code }}}}"
[channel]
kind = "csv"
[holdout]
percent = 30
'''


@pytest.fixture(scope="module")
def measured_shop(tmp_path_factory):
    from retentio.data.workspace import Workspace
    from retentio.services.campaigns import run_campaigns
    from retentio.services.data import load_table

    path = tmp_path_factory.mktemp("measured")
    ws = Workspace.init(path, timezone="Europe/Moscow", currency="RUB")
    customers = pd.DataFrame({"customer_id": IDS, "signup_at": pd.Timestamp("2025-01-01"),
                              "first_name": "N", "email": [f"{c.lower()}@example.com" for c in IDS],
                              "consent_email": True})
    # one order each before the send: 100 at cost 60 (pre-period revenue is the same for
    # all, so CUPED's θ is 0 and the hand numbers need no adjustment)
    before = pd.DataFrame({"order_id": [f"P{c}" for c in IDS], "customer_id": IDS,
                           "ordered_at": pd.Timestamp("2026-01-10 12:00"), "amount": 100.0, "cost": 60.0,
                           "discount": 0.0, "status": "completed"})
    ws.load("customers", customers, mode="replace")
    ws.load("orders", before, mode="replace")
    ws.close()
    with (path / "retentio.toml").open("a", encoding="utf-8") as f:
        f.write("\n" + SETTINGS)
    write_playbook(path, "discount", _playbook("discount", 'kind = "percent"\nvalue = 10'))
    write_playbook(path, "points", _playbook("points", 'kind = "points"\nvalue = 50'))
    ws = Workspace.open(path)
    run_campaigns(ws, ["discount", "points"], AS_OF, now=NOON, env={})
    from retentio.actions.ledger import assignments_frame

    a = assignments_frame(ws.store)
    d = a[a.campaign == "discount"].set_index("customer_id")
    t = sorted(d.index[d.arm == "treatment"])
    c = sorted(d.index[d.arm == "control"])
    code = d.promo_code
    # after the send: three treated redeem their code (90 paid, 10 discount, cost 50), one
    # treated buys without it (200, cost 120), one treated buys after the 30-day window,
    # one control customer buys (150, cost 100), one control order is returned
    after = pd.DataFrame([
        ("A1", t[0], "2026-06-20 12:00", 90.0, 50.0, 10.0, "completed", code[t[0]]),
        ("A2", t[1], "2026-06-21 12:00", 90.0, 50.0, 10.0, "completed", code[t[1]]),
        ("A3", t[2], "2026-06-22 12:00", 90.0, 50.0, 10.0, "completed", code[t[2]]),
        ("A4", t[3], "2026-06-25 12:00", 200.0, 120.0, 0.0, "completed", None),
        ("A5", t[4], "2026-07-20 12:00", 500.0, 300.0, 0.0, "completed", None),
        ("A6", c[0], "2026-06-18 12:00", 150.0, 100.0, 0.0, "completed", None),
        ("A7", c[1], "2026-06-19 12:00", 80.0, 40.0, 0.0, "returned", None),
    ], columns=["order_id", "customer_id", "ordered_at", "amount", "cost", "discount", "status", "promo_code"])
    after["ordered_at"] = pd.to_datetime(after.ordered_at)
    load_table(ws, "orders", after)
    yield ws, t, c, a
    ws.close()


def _hand(n_t: int, n_c: int, t_values: list[float], c_values: list[float]):
    """Welch by hand for sparse outcomes: the listed values, zeros for the rest."""
    yt = np.r_[t_values, np.zeros(n_t - len(t_values))]
    yc = np.r_[c_values, np.zeros(n_c - len(c_values))]
    d = yt.mean() - yc.mean()
    se = np.sqrt(yt.var(ddof=1) / n_t + yc.var(ddof=1) / n_c)
    df = se**4 / ((yt.var(ddof=1) / n_t) ** 2 / (n_t - 1) + (yc.var(ddof=1) / n_c) ** 2 / (n_c - 1))
    q = stats.t.ppf(0.975, df)
    return d, d - q * se, d + q * se


def test_one_campaign_worked_by_hand(measured_shop):
    from retentio.services.measurement import MeasureParams, measure_campaigns

    ws, t, c, _ = measured_shop
    m = measure_campaigns(ws, MeasureParams(["discount"], winsor_pct=100))
    (row,) = m.rows
    n_t, n_c = len(t), len(c)
    assert (row["treatment_n"], row["control_n"]) == (n_t, n_c) and n_t + n_c == 40
    # conversion: 4 treated of n_t (the fifth bought after the window), 1 control (the return does not count)
    conv = row["conversion"]
    assert conv["mean_t"] == pytest.approx(4 / n_t) and conv["mean_c"] == pytest.approx(1 / n_c)
    d, lo, hi = _hand(n_t, n_c, [1, 1, 1, 1], [1])
    assert (conv["per_customer"], conv["per_customer_low"], conv["per_customer_high"]) == pytest.approx((d, lo, hi))
    assert conv["incremental"] == pytest.approx(d * n_t)
    # revenue: 3 × 90 + 200 among the treated, 150 in control
    d, lo, hi = _hand(n_t, n_c, [90, 90, 90, 200], [150])
    rev = row["revenue"]
    assert rev["incremental"] == pytest.approx(d * n_t)
    assert (rev["incremental_low"], rev["incremental_high"]) == pytest.approx((lo * n_t, hi * n_t))
    # margin: 3 × 40 + 80 = 200 treated, 50 control
    d, lo, hi = _hand(n_t, n_c, [40, 40, 40, 80], [50])
    assert row["incremental_margin"] == pytest.approx(d * n_t)
    # cost: every treated message at 2.0, plus the three redeemed discounts of 10
    assert row["messages"] == n_t and row["codes_redeemed"] == 3
    assert row["cost"] == pytest.approx(2.0 * n_t + 30.0)
    cost = 2.0 * n_t + 30.0
    assert row["roi"] == pytest.approx((d * n_t - cost) / cost)
    assert (row["roi_low"], row["roi_high"]) == pytest.approx(((lo * n_t - cost) / cost, (hi * n_t - cost) / cost))
    # 30 % planned control: the SRM p-value is the chi-square of these counts
    assert row["srm_p"] == pytest.approx(stats.chisquare([n_t, n_c], [28, 12]).pvalue)
    assert m.margin_basis == "amount − cost"


def test_points_are_a_cost_at_their_value_and_tools_add_up(measured_shop):
    from retentio.services.measurement import MeasureParams, measure_campaigns

    ws, _, _, a = measured_shop
    p = a[(a.campaign == "points")]
    n_points = int(((p.arm == "treatment") & p.reason.isna()).sum())
    m = measure_campaigns(ws, MeasureParams(by="tool", winsor_pct=100))
    rows = {r["group"]: r for r in m.rows}
    assert set(rows) == {"discount", "points", "total"}
    assert rows["points"]["cost"] == pytest.approx(n_points * (2.0 + 50 * 0.5))
    assert rows["points"]["points_cost"] == pytest.approx(n_points * 25.0)
    for key in ("treatment_n", "control_n", "cost", "messages", "codes_redeemed"):
        assert rows["total"][key] == pytest.approx(rows["discount"][key] + rows["points"][key])
    for metric in ("conversion", "revenue", "retained"):
        assert rows["total"][metric]["incremental"] == pytest.approx(
            rows["discount"][metric]["incremental"] + rows["points"][metric]["incremental"])
    assert rows["total"]["incremental_margin"] == pytest.approx(
        rows["discount"]["incremental_margin"] + rows["points"]["incremental_margin"])
    assert m.adjustment == "Benjamini–Hochberg over 2 comparisons"
    ps = [rows["discount"]["conversion"]["p_value"], rows["points"]["conversion"]["p_value"]]
    assert sorted(r["p_adjusted"] for r in (rows["discount"], rows["points"])) == pytest.approx(
        sorted(stats.false_discovery_control(ps)))


@pytest.mark.parametrize("by", ["playbook", "channel", "segment"])
def test_every_breakdown_adds_up_to_its_total(measured_shop, by):
    from retentio.services.measurement import MeasureParams, measure_campaigns

    ws, *_ = measured_shop
    m = measure_campaigns(ws, MeasureParams(by=by, metric="revenue"))
    groups = [r for r in m.rows if r["group"] != "total"]
    total = m.rows[-1] if len(m.rows) > 1 else m.rows[0]
    assert sum(r["cost"] for r in groups) == pytest.approx(total["cost"])
    assert sum(r["revenue"]["incremental"] for r in groups) == pytest.approx(total["revenue"]["incremental"])
    assert sum(r["treatment_n"] for r in groups) == total["treatment_n"]
    if by == "channel":
        assert [r["group"] for r in groups] == ["csv"]


def test_small_campaign_says_too_few_and_winsorising_caps_the_whale(measured_shop):
    from retentio.services.measurement import MeasureParams, measure_campaigns

    ws, *_ = measured_shop
    (row,) = measure_campaigns(ws, MeasureParams(["discount"])).rows
    assert row["verdict"] == "too_few" and row["conversion"]["mde"] > 0.2
    capped = row["revenue"]["mean_t"]
    (plain,) = measure_campaigns(ws, MeasureParams(["discount"], winsor_pct=100)).rows
    assert capped < plain["revenue"]["mean_t"]


def test_bad_options_name_the_option(measured_shop):
    from retentio.data.errors import InvalidParameter
    from retentio.services.measurement import MeasureParams, measure_campaigns

    ws, *_ = measured_shop
    with pytest.raises(InvalidParameter, match="metric"):
        measure_campaigns(ws, MeasureParams(metric="clicks"))
    with pytest.raises(InvalidParameter, match="by"):
        measure_campaigns(ws, MeasureParams(by="weekday"))
    with pytest.raises(InvalidParameter, match="nosuch"):
        measure_campaigns(ws, MeasureParams(["nosuch"]))


def test_the_program_is_measured_against_the_global_control_group(tmp_path):
    """With a global control group, `--all` adds everyone who could be contacted against
    the customers never contacted: its control side is exactly the global control group."""
    from retentio.actions.ledger import assignments_frame
    from retentio.data.workspace import Workspace
    from retentio.services.campaigns import run_campaigns
    from retentio.services.measurement import MeasureParams, measure_campaigns

    ids = [f"G{i:03d}" for i in range(300)]
    ws = Workspace.init(tmp_path / "gc", timezone="Europe/Moscow", currency="RUB")
    ws.load("customers", pd.DataFrame({"customer_id": ids, "signup_at": pd.Timestamp("2025-01-01"),
                                       "first_name": "N", "email": [f"{c.lower()}@example.com" for c in ids],
                                       "consent_email": True}), mode="replace")
    ws.load("orders", pd.DataFrame({"order_id": [f"P{c}" for c in ids], "customer_id": ids,
                                    "ordered_at": pd.Timestamp("2026-01-10 12:00"), "amount": 100.0,
                                    "status": "completed"}), mode="replace")
    ws.close()
    with (tmp_path / "gc" / "retentio.toml").open("a", encoding="utf-8") as f:
        f.write('\n[campaigns]\nquiet_start = "00:00"\nquiet_end = "00:00"\nglobal_control_pct = 25\n')
    write_playbook(tmp_path / "gc", "drop", _playbook("drop", 'kind = "none"'))
    ws = Workspace.open(tmp_path / "gc")
    try:
        run_campaigns(ws, ["drop"], AS_OF, now=NOON, env={})
        a = assignments_frame(ws.store)
        gc = int((a.reason == "global_control").sum())
        assert 40 < gc < 110
        m = measure_campaigns(ws, MeasureParams(winsor_pct=100))
        g = m.global_control
        assert g is not None and g["control_n"] == gc and g["treatment_n"] == 300 - gc
        assert g["srm_p"] == pytest.approx(stats.chisquare([300 - gc, gc], [225, 75]).pvalue)
        # a single campaign named is not the program: no global comparison
        assert measure_campaigns(ws, MeasureParams(["drop"])).global_control is None
    finally:
        ws.close()
