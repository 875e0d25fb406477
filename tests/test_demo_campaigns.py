"""The demo's past campaigns against their planted truth: every assignment carries both
potential outcomes, so the true effect in any group is known exactly; the measurement
must find it within its intervals, per campaign and per RFM segment."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import demo_workspace


@pytest.fixture(scope="module")
def history_ws(tmp_path_factory):
    from retentio.actions.history import record_history
    from retentio.data.demo import generate
    from retentio.data.demo_campaigns import past_campaigns
    from retentio.data.workspace import Workspace
    from retentio.services.data import DEMO_MESSAGE_COSTS, _past_definition

    data = generate(n_customers=12_000, seed=5)
    history = past_campaigns(data.customers, data.orders, seed=5)
    data.orders = history.orders
    path = demo_workspace(tmp_path_factory.mktemp("history") / "ws", data)
    ws = Workspace.open(path)
    record_history(ws.store, [{"name": c.name, "kind": c.kind, "definition": _past_definition(c)}
                              for c in history.campaigns], history.assignments,
                   data.customers.set_index("customer_id").email, costs=DEMO_MESSAGE_COSTS)
    from retentio.services.churn import train_churn

    train_churn(ws)
    yield ws, history
    ws.close()


def _truth(units, history, column):
    t = history.truth.assign(as_of=lambda f: f.as_of.astype(str))
    u = units.assign(as_of=units.as_of.astype(str)).merge(t, on=["campaign", "as_of", "customer_id"], how="left")
    assert u[column].notna().all()
    return u


def test_history_is_recorded_as_runs_with_both_arms(history_ws):
    from retentio.actions.ledger import runs_frame

    ws, history = history_ws
    runs = runs_frame(ws.store)
    assert len(runs) == sum(len(c.runs) for c in history.campaigns)
    assert (runs.holdout_pct == 20.0).all()
    share = (history.assignments.arm == "control").mean()
    assert 0.18 < share < 0.22


def test_measured_effects_cover_the_planted_truth_per_campaign_and_segment(history_ws):
    from retentio.services.measurement import MeasureParams, measure_campaigns, units_frame

    ws, history = history_ws
    # nine segments and three campaigns: Bonferroni-sized intervals, so all of them together
    # hold the truth with 95 % probability
    for by, level in ((None, 1 - 0.05 / 3), ("segment", 1 - 0.05 / 10)):
        params = MeasureParams(by=by, level=level, winsor_pct=100)
        m = measure_campaigns(ws, params)
        units = _truth(units_frame(ws, params), history, "tau_conversion")
        key = by or "campaign"
        checked = 0
        for row in m.rows:
            group = units if row["group"] == "total" else units[units[key].astype(str) == row["group"]]
            if row["treatment_n"] < 200 or row["control_n"] < 50:
                continue
            truth = group.tau_conversion.mean()
            e = row["conversion"]
            assert e["per_customer_low"] <= truth <= e["per_customer_high"], (by, row["group"], truth, e)
            revenue_truth = group.tau_revenue.mean()
            r = row["revenue_uncorrected"]
            assert r["per_customer_low"] <= revenue_truth <= r["per_customer_high"], (by, row["group"])
            checked += 1
        assert checked >= (3 if by is None else 5)


def test_the_planted_pattern_shows(history_ws):
    """The discount wins back the recently lapsed (RFM "about to sleep": 2–6 months),
    not the "lost" (over a year: no effect at all)."""
    from retentio.services.measurement import MeasureParams, measure_campaigns

    ws, history = history_ws
    m = measure_campaigns(ws, MeasureParams(["winback_discount"], by="segment"))
    rows = {r["group"]: r["conversion"] for r in m.rows}
    assert rows["about to sleep"]["per_customer_low"] > 0.05
    assert rows["lost"]["per_customer_low"] < 0 < rows["lost"]["per_customer_high"] < 0.03
    truth = history.truth
    w = truth[truth.campaign == "winback_discount"]
    assert np.isclose(w.true_uplift.max(), 0.12)
    b = truth[truth.campaign == "birthday_points"]
    assert (b.true_uplift == 0).any() and (b.true_uplift > 0).any()


def test_uplift_targeting_beats_churn_risk_and_random(history_ws, tmp_path):
    """Out-of-fold (each customer scored by a model that never saw them): the uplift
    model's Qini is above the churn-risk ranking's and a random one's, and its top 30 %
    gain more than the churn-risk top 30 %."""
    import pandas as pd

    from retentio.services.uplift import UpliftParams, train_on_campaign

    ws, history = history_ws
    out = tmp_path / "oof.csv"
    r = train_on_campaign(ws, "winback_discount", params=UpliftParams(out=out))
    assert r.churn_risk is not None, r.churn_risk_note
    assert r.qini > r.churn_risk["qini"] and r.qini > r.random["qini"] + 0.03
    assert r.uplift_at_k > r.churn_risk["uplift_at_k"]
    # the predictions agree with the planted truth: higher where the true uplift is higher
    pred = pd.read_csv(out).assign(as_of=lambda f: f.as_of.astype(str))
    t = history.truth[history.truth.campaign == "winback_discount"].assign(as_of=lambda f: f.as_of.astype(str))
    joined = pred.merge(t, on=["customer_id", "as_of"])
    assert len(joined) == len(pred)
    assert joined.groupby("true_uplift").uplift.mean().is_monotonic_increasing


def test_a_playbook_targets_the_persuadable_and_keeps_an_explore_slice(history_ws):
    import datetime as dt

    from retentio.data.errors import RetentioError
    from retentio.services.campaigns import plan_campaign
    from retentio.services.uplift import train_on_campaign
    from tests.campaign_data import write_playbook

    ws, _ = history_ws
    body = '''kind = "winback"
target = "uplift"
top = 0.3
explore = 0.1
uplift_model = "{model}"
[trigger]
days = 60
[offer]
kind = "percent"
value = 15
[message]
text = "Hello {{{{ first_name }}}}"
[channel]
kind = "csv"
[holdout]
percent = 10
'''
    write_playbook(ws.path, "winback_unknown", body.format(model="nothing_yet"))
    with pytest.raises(RetentioError, match="uplift train --campaign nothing_yet --save"):
        plan_campaign(ws, "winback_unknown", dt.date(2026, 9, 1))
    r = train_on_campaign(ws, "winback_discount", save=True)
    assert r.version == 1
    write_playbook(ws.path, "winback_uplift", body.format(model="winback_discount"))
    p = plan_campaign(ws, "winback_uplift", dt.date(2026, 9, 1))
    f = p.frame
    scored = f[f.predicted_uplift.notna()]
    live = scored.stage != "already"
    kept = scored[live & (scored.stage != "targeting")]
    dropped = scored[live & (scored.stage == "targeting")]
    n = int(live.sum())
    # the top 30 % plus about 10 % of the other 70 %
    assert len(kept) / n == pytest.approx(0.3 + 0.1 * 0.7, abs=0.02)
    assert p.counts["not_persuadable"] == len(f[f.stage == "targeting"])
    assert (dropped.reason == "not persuadable (predicted uplift)").all()
    top_cut = scored[live].predicted_uplift.quantile(0.7)
    explore = kept[kept.predicted_uplift < top_cut]
    assert 0.05 < len(explore) / (0.7 * n) < 0.15  # the explore slice: below the cut, kept at random
    assert kept.predicted_uplift.mean() > dropped.predicted_uplift.mean()
    # the kept are randomised as usual
    assert set(kept.arm.dropna()) == {"treatment", "control"}
