"""The demo business: deterministic, and carrying the signals the analyses must find."""

from __future__ import annotations

import pandas as pd

from retentio.data.demo import DEMO_END, generate


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = generate(400, seed=5), generate(400, seed=5), generate(400, seed=6)
    for name, frame in a.tables().items():
        pd.testing.assert_frame_equal(frame, b.tables()[name])
    assert not a.orders.equals(c.orders)


def test_demo_has_every_feature_the_spec_asks_for(demo_data):
    d = demo_data
    assert set(d.customers.acquisition_channel) >= {"organic", "paid_search", "referral"}
    assert d.customers.groupby("acquisition_channel").acquisition_cost.mean()["organic"] == 0
    assert set(d.orders.status) == {"completed", "returned", "cancelled"}
    s = d.subscriptions
    assert s.is_trial.any() and set(s.churn_type.dropna()) == {"voluntary", "involuntary"}
    assert {"basic", "standard", "premium"} <= set(s.plan)
    assert set(d.surveys.kind) == {"nps", "csat", "ces"} and d.surveys.customer_id.isna().any()
    assert d.customers.consent_email.any() and d.customers.birth_date.notna().all()
    assert d.orders.ordered_at.max() < pd.Timestamp(DEMO_END)
    # seasonality: December sells more per day than the average month
    by_month = d.orders.groupby(d.orders.ordered_at.dt.month).size()
    assert by_month[12] > by_month.mean() * 1.1


def test_heterogeneous_buyers_and_dropout(demo_data):
    n_orders = demo_data.orders.groupby("customer_id").size()
    assert n_orders.max() >= 10 * n_orders.median()  # heavy buyers beside one-timers
    assert (n_orders == 1).mean() > 0.15


def test_leavers_have_fading_logins_and_lower_nps(demo_data):
    """Logins in the 60 days before a customer leaves are far fewer than in the 60 days
    before that; NPS given in the 120 days before leaving is lower than everyone else's."""
    d = demo_data
    left = d.truth.dropna(subset=["left_at"]).set_index("customer_id").left_at
    signup = d.customers.set_index("customer_id").signup_at
    long_lived = left[(left - signup[left.index]) > pd.Timedelta(days=200)]
    logins = d.events[(d.events.event_type == "login") & d.events.customer_id.isin(long_lived.index)]
    age = (logins.customer_id.map(long_lived) - logins.occurred_at).dt.days
    assert (age < 60).sum() < 0.7 * ((age >= 60) & (age < 120)).sum()
    nps = d.surveys[d.surveys.kind == "nps"].dropna(subset=["customer_id"])
    until = (nps.customer_id.map(left) - nps.answered_at).dt.days
    leaving = until.between(0, 120)
    assert nps[leaving].score.mean() < nps[~leaving].score.mean() - 2


def test_downgrades_and_payment_failures_planted(demo_data):
    s = demo_data.subscriptions.sort_values(["customer_id", "started_at"])
    prev = s.groupby("customer_id").mrr.shift()
    assert ((s.mrr < prev) & ~s.is_trial).sum() > 0  # downgrades happen
    invol = s[s.churn_type == "involuntary"].customer_id
    failed = demo_data.events[demo_data.events.event_type == "payment_failed"].customer_id
    assert set(invol) <= set(failed)
