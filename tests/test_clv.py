"""The CLV models reproduce the published estimates, recover simulated parameters, and
stay finite where the usual closed forms overflow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retentio.clv import (
    BetaGeoBetaBinomModel,
    BetaGeoModel,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    ShiftedBetaGeoModel,
    compress,
)
from tests.clv_data import CDNOW, CDNOW_GG, DONATIONS

# Fader & Hardie (2007): customers (of 1,000) still active at the start of years 0..7
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241]
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491]


def sig3(value: float, published: float) -> bool:
    """Equal to 3 significant digits, as the papers print them."""
    return float(f"{value:.3g}") == float(f"{published:.3g}")


def check(model, published: dict, ll: float | None = None):
    assert model.converged_, model.fit_report_.message
    for name, value in published.items():
        assert sig3(model.params_[name], value), (name, model.params_[name], value)
    if ll is not None:
        assert model.log_likelihood_ == pytest.approx(ll, abs=0.1)
    assert all(np.isfinite(v) and v > 0 for v in model.std_errors_.values())


def test_bgnbd_cdnow_fader_hardie_lee_2005():
    m = BetaGeoModel().fit(CDNOW.frequency, CDNOW.recency, CDNOW["T"])
    check(m, {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, -9582.4)
    assert m.summary()["n_customers"] == 2357


def test_pareto_nbd_cdnow():
    m = ParetoNBDModel().fit(CDNOW.frequency, CDNOW.recency, CDNOW["T"])
    check(m, {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}, -9595.0)


def test_gamma_gamma_946_repeat_buyers():
    m = GammaGammaModel().fit(CDNOW_GG.x, CDNOW_GG.zbar)
    assert m.n_customers_ == 946
    check(m, {"p": 6.25, "q": 3.74, "v": 15.44})
    assert m.frequency_spend_correlation_ == pytest.approx(0.11, abs=0.01)  # Fader & Hardie (2013)


def test_bgbb_donations():
    m = BetaGeoBetaBinomModel().fit(DONATIONS.frequency, DONATIONS.recency, DONATIONS.periods,
                                    weights=DONATIONS.weights)
    check(m, {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}, -33225.6)
    assert m.n_customers_ == 11104


@pytest.mark.parametrize("counts,alpha,beta", [(REGULAR, 0.704, 1.182), (HIGH_END, 0.668, 3.806)])
def test_sbg_cohorts(counts, alpha, beta):
    m = ShiftedBetaGeoModel().fit(counts)
    check(m, {"alpha": alpha, "beta": beta})
    # the model reproduces the cohort it was fitted on closely (Fader & Hardie 2007, fig. 3)
    assert np.abs(m.survival(np.arange(8)) * 1000 - np.array(counts)).max() < 20


def test_sbg_per_customer_equals_counts():
    lost = -np.diff(REGULAR)
    tenure = np.concatenate([np.repeat(np.arange(1, 8), lost), np.full(REGULAR[-1], 7)])
    churned = np.concatenate([np.ones(lost.sum(), bool), np.zeros(REGULAR[-1], bool)])
    a = ShiftedBetaGeoModel().fit(tenure=tenure, churned=churned)
    b = ShiftedBetaGeoModel().fit(REGULAR)
    assert a.params_ == pytest.approx(b.params_, rel=1e-6)
    both = ShiftedBetaGeoModel().fit([REGULAR, HIGH_END])
    assert both.n_customers_ == 2000


def test_mbgnbd_fits_cdnow():
    m = ModifiedBetaGeoModel().fit(CDNOW.frequency, CDNOW.recency, CDNOW["T"])
    assert m.converged_ and m.log_likelihood_ > -9590
    p = m.probability_alive(0, 0, 38.86)
    assert 0 < p < 1  # unlike BG/NBD, a customer with no repeat purchase may be gone


def test_compression_gives_the_same_fit():
    dup = pd.concat([CDNOW] * 3)
    a = BetaGeoModel().fit(dup.frequency, dup.recency, dup["T"])
    b = BetaGeoModel().fit(CDNOW.frequency, CDNOW.recency, CDNOW["T"], weights=np.full(len(CDNOW), 3.0))
    assert a.params_ == pytest.approx(b.params_, rel=1e-6)
    (x, _, _), w = compress(dup.frequency, dup.recency, dup["T"])
    assert w.sum() == len(dup) and len(x) < len(CDNOW)


def test_extreme_customers_stay_finite():
    """Frequency 10^4 and T 10^4, last purchase at the end: finite likelihood and predictions."""
    x = np.array([10_000, 10_000, 0, 5000])
    t_x = np.array([10_000.0, 9_999.0, 0.0, 100.0])
    T = np.array([10_000.0, 10_000.0, 10_000.0, 10_000.0])
    for M in (BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel):
        m = M().fit(CDNOW.frequency, CDNOW.recency, CDNOW["T"])
        data = (x.astype(float), t_x, T)
        assert np.all(np.isfinite(m._loglik(np.array(list(m.params_.values())), data)))
        p = m.probability_alive(x, t_x, T)
        assert np.all(np.isfinite(p)) and np.all((p >= 0) & (p <= 1))
        assert p[0] > 0.99 and p[3] < 0.01  # bought at the very end vs silent for 9,900 days


def test_bgnbd_predictions_match_the_paper():
    """FHL (2005): expected repeat purchases in weeks 40-78 for a CDNOW customer with
    x = 2, t_x = 30.43, T = 38.86 is 1.226; P(X(39) = 0) for a new customer ≈ 0.5" """
    m = BetaGeoModel().fit(CDNOW.frequency, CDNOW.recency, CDNOW["T"])
    assert m.expected_purchases(39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=0.002)
    probs = [m.probability_of_n_purchases(39, n) for n in range(200)]
    assert sum(probs) == pytest.approx(1.0, abs=1e-3)
    assert m.expected_purchases_new_customer(39) == pytest.approx(sum(n * p for n, p in enumerate(probs)), rel=1e-2)


def test_probability_alive_later_is_lower():
    m = BetaGeoModel().fit(CDNOW.frequency, CDNOW.recency, CDNOW["T"])
    now = m.probability_alive([3], [20.0], [38.86])
    later = m.probability_alive([3], [20.0], [38.86], t=52)
    assert 0 < later[0] < now[0] < 1
    pn = ParetoNBDModel().fit(CDNOW.frequency, CDNOW.recency, CDNOW["T"])
    assert pn.probability_alive([3], [20.0], [38.86], t=52)[0] < pn.probability_alive([3], [20.0], [38.86])[0]


def test_clv_discounting_is_explicit():
    m = BetaGeoModel().fit(CDNOW.frequency, CDNOW.recency, CDNOW["T"])
    # 12 periods of 4.345 weeks (a month in weeks), 1 % a month
    undiscounted = m.clv([2], [30.43], [38.86], [50.0], horizon=12, period=52 / 12, discount_rate=0.0)
    assert undiscounted[0] == pytest.approx(50 * m.expected_purchases(52, 2, 30.43, 38.86), rel=1e-9)
    discounted = m.clv([2], [30.43], [38.86], [50.0], horizon=12, period=52 / 12, discount_rate=0.01)
    assert discounted[0] < undiscounted[0]


def test_bgbb_and_sbg_predictions():
    m = BetaGeoBetaBinomModel().fit(DONATIONS.frequency, DONATIONS.recency, DONATIONS.periods,
                                    weights=DONATIONS.weights)
    # a 6-for-6 donor was surely alive at 6, so P(alive at 7) = E[1 − θ | survived 6] = (δ+6)/(γ+δ+6)
    p = m.probability_alive([6, 0], [6, 0], [6, 6])
    g, d = m.params_["gamma"], m.params_["delta"]
    assert p[0] == pytest.approx((d + 6) / (g + d + 6)) and p[1] < 0.2
    e = m.expected_purchases(5, [6, 0], [6, 0], [6, 6])
    assert e[0] > 3 and e[1] < 0.5
    s = ShiftedBetaGeoModel().fit(REGULAR)
    r = s.retention_rate(np.arange(1, 13))
    assert np.all(np.diff(r) > 0)  # retention rises with tenure (Fader & Hardie 2007)
    derl = s.discounted_expected_residual_lifetime(renewals=3, discount_rate=0.1)
    assert 1 < derl < 1 / 0.1 + 1


def test_unfitted_and_bad_input_are_clear():
    from retentio import RetentioError

    with pytest.raises(RetentioError, match="not fitted"):
        BetaGeoModel().probability_alive(1, 1, 2)
    with pytest.raises(RetentioError, match="recency"):
        BetaGeoModel().fit([1], [5], [3])
    with pytest.raises(RetentioError, match="never increase"):
        ShiftedBetaGeoModel().fit([100, 120])


def test_pareto_nbd_new_customer_purchases_at_s_equal_one():
    """At s = 1 the closed form is 0/0; its limit is r β/α · ln(1 + t/β) (hand-computed:
    r 0.5, α 10, β 12, t 39 → 0.6 · ln(4.25) = 0.8681513898)."""
    import numpy as np

    from retentio.clv import ParetoNBDModel

    m = ParetoNBDModel()
    m.params_ = {"r": 0.5, "alpha": 10.0, "s": 1.0, "beta": 12.0}
    at_one = m.expected_purchases_new_customer(39.0)
    assert at_one == pytest.approx(0.6 * np.log(4.25), rel=1e-12)
    assert at_one == pytest.approx(0.8681513898, rel=1e-9)
    for s in (1 - 1e-7, 1 + 1e-7):  # continuous through s = 1
        m.params_ = {"r": 0.5, "alpha": 10.0, "s": s, "beta": 12.0}
        assert m.expected_purchases_new_customer(39.0) == pytest.approx(at_one, rel=1e-6)
    m.params_ = {"r": 0.5, "alpha": 10.0, "s": 2.0, "beta": 12.0}  # the closed form: 0.6 · (1 − 12/51)
    assert m.expected_purchases_new_customer(39.0) == pytest.approx(0.6 * (1 - 12 / 51), rel=1e-12)
