"""The statistics of a holdout against known truth: interval coverage over many simulated
experiments, CUPED's narrowing without bias, a planted sample-ratio mismatch, an effect
below the MDE, and each formula against a hand computation or SciPy's own test."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from retentio.analytics import experiments as ex

REPS = 400


def test_welch_matches_scipy_and_hand_numbers():
    t = np.array([3.0, 5.0, 7.0, 9.0])
    c = np.array([2.0, 4.0, 4.0])
    e = ex.mean_difference(t, c)
    # by hand: means 6 and 10/3, variances 20/3 and 4/3; se² = 20/12 + 4/9 = 19/9
    assert e.per_customer == pytest.approx(6 - 10 / 3)
    assert e.se == pytest.approx(np.sqrt(19 / 9))
    # Welch–Satterthwaite: (19/9)² / ((5/3)²/3 + (4/9)²/2)
    assert e.df == pytest.approx((19 / 9) ** 2 / ((5 / 3) ** 2 / 3 + (4 / 9) ** 2 / 2))
    ref = stats.ttest_ind(t, c, equal_var=False)
    assert e.p_value == pytest.approx(ref.pvalue)
    q = stats.t.ppf(0.975, e.df)
    assert e.per_customer_low == pytest.approx(8 / 3 - q * np.sqrt(19 / 9))
    assert e.incremental == pytest.approx(4 * 8 / 3)


def test_relative_lift_by_the_delta_method_by_hand():
    rng = np.random.default_rng(1)
    t, c = rng.normal(12, 3, 500), rng.normal(10, 3, 400)
    e = ex.mean_difference(t, c)
    mt, mc = t.mean(), c.mean()
    vt, vc = t.var(ddof=1) / 500, c.var(ddof=1) / 400
    # r = mt/mc − 1;  Var r ≈ vt/mc² + mt² vc/mc⁴  (the per-customer form of the module's formula)
    se = np.sqrt(vt / mc**2 + mt**2 * vc / mc**4)
    assert e.relative == pytest.approx(mt / mc - 1)
    assert e.relative_high - e.relative == pytest.approx(1.959964 * se, rel=1e-5)


def test_strata_add_up_and_reduce_to_welch_for_one_cell():
    rng = np.random.default_rng(2)
    a = ex.Cell.of(rng.normal(5, 1, 300), rng.normal(4, 1, 100))
    b = ex.Cell.of(rng.normal(1, 2, 200), rng.normal(1, 2, 50))
    both = ex.combine([a, b])
    one, two = ex.combine([a]), ex.combine([b])
    assert both.incremental == pytest.approx(one.incremental + two.incremental)
    assert both.se * both.n_t == pytest.approx(np.hypot(one.se * one.n_t, two.se * two.n_t))
    assert both.n_t == 500 and both.n_c == 150


def _coverage(draw, truth: float) -> float:
    rng = np.random.default_rng(20261203)
    hits = 0
    for _ in range(REPS):
        t, c = draw(rng)
        e = ex.mean_difference(t, c)
        hits += e.per_customer_low <= truth <= e.per_customer_high
    return hits / REPS


def test_conversion_interval_covers_the_true_uplift_95_percent():
    share = _coverage(lambda r: (r.random(3000) < 0.14, r.random(1000) < 0.10), 0.04)
    assert 0.92 <= share <= 0.98, share


def test_revenue_interval_covers_the_true_difference_95_percent():
    # skewed revenue: most buy nothing, buyers spend lognormal amounts; treatment adds 20 % buyers
    def draw(r):
        def revenue(n, p):
            return (r.random(n) < p) * r.lognormal(7, 0.8, n)
        return revenue(4000, 0.12), revenue(1000, 0.10)

    truth = (0.12 - 0.10) * np.exp(7 + 0.8**2 / 2)
    share = _coverage(draw, truth)
    assert 0.92 <= share <= 0.98, share


def test_cuped_narrows_the_interval_and_stays_unbiased():
    rng = np.random.default_rng(3)
    widths, widths_cuped, estimates, estimates_cuped = [], [], [], []
    for _ in range(200):
        x = rng.gamma(2, 500, 4000)                      # pre-period revenue
        arm = rng.random(4000) < 0.8
        y = 0.6 * x + rng.normal(0, 300, 4000) + 50 * arm  # true effect 50
        plain = ex.mean_difference(y[arm], y[~arm])
        adjusted, theta = ex.cuped(y, x)
        cup = ex.mean_difference(adjusted[arm], adjusted[~arm])
        widths.append(plain.per_customer_high - plain.per_customer_low)
        widths_cuped.append(cup.per_customer_high - cup.per_customer_low)
        estimates.append(plain.per_customer)
        estimates_cuped.append(cup.per_customer)
    assert theta == pytest.approx(0.6, abs=0.05)
    # ρ² = 0.36·var(x) / (0.36·var(x) + 300²) with var(x) = 2·500²: 180,000 / 270,000 = 2/3,
    # so the interval is √(1 − ρ²) = 0.577 times as wide
    assert np.mean(widths_cuped) / np.mean(widths) == pytest.approx(np.sqrt(1 / 3), abs=0.02)
    # unbiased: the mean estimate is within 3 standard errors of the truth
    assert abs(np.mean(estimates_cuped) - 50) < 3 * np.std(estimates_cuped) / np.sqrt(200)
    assert abs(np.mean(estimates) - 50) < 3 * np.std(estimates) / np.sqrt(200)


def test_planted_sample_ratio_mismatch_is_flagged():
    # planned 10 % control of 100,000; a bug lost 5 % of the control customers
    n_c = int(100_000 * 0.10 * 0.95)
    assert ex.srm_p_value(90_000, n_c, 0.10) < ex.SRM_ALPHA
    assert ex.srm_p_value(90_000, 10_000, 0.10) == pytest.approx(1.0)
    rng = np.random.default_rng(5)
    e = ex.mean_difference(rng.random(90_000) < 0.2, rng.random(n_c) < 0.1)
    assert ex.verdict(e, e.p_value, ex.srm_p_value(90_000, n_c, 0.10)) == "srm"
    # by hand: n = 99,500, χ² = (90,000 − 89,550)²/89,550 + (9,500 − 9,950)²/9,950
    chi = 450**2 / 89_550 + 450**2 / 9_950
    assert ex.srm_combined([(90_000, n_c, 0.10)]) == pytest.approx(stats.chi2.sf(chi, 1))
    # two cells: the statistics add up over 2 degrees of freedom
    assert ex.srm_combined([(90_000, n_c, 0.10), (900, 100, 0.10)]) == pytest.approx(stats.chi2.sf(chi, 2))


def test_effect_below_the_mde_is_reported_as_too_few():
    rng = np.random.default_rng(4)
    t, c = rng.random(400) < 0.105, rng.random(100) < 0.10  # true uplift 0.5 pp
    e = ex.mean_difference(t, c)
    assert e.mde > 0.05  # these sizes detect ~6 pp at best
    assert ex.verdict(e, e.p_value, 1.0) == "too_few"
    big_t, big_c = rng.random(40_000) < 0.15, rng.random(40_000) < 0.10
    big = ex.mean_difference(big_t, big_c)
    assert big.mde < 0.01 and ex.verdict(big, big.p_value, 1.0) == "positive"


def test_mde_is_the_z_sum_times_the_standard_error():
    e = ex.mean_difference(np.r_[np.ones(100), np.zeros(900)], np.r_[np.ones(50), np.zeros(950)])
    se = np.sqrt(0.1 * 0.9 / 999 * 1000 / 1000 + 0.05 * 0.95 / 999)
    assert e.mde == pytest.approx((1.959964 + 0.841621) * se, rel=1e-4)


def test_benjamini_hochberg_by_hand():
    p = [0.01, 0.04, 0.03, np.nan, 0.5]
    # sorted 0.01, 0.03, 0.04, 0.5 (m = 4): 0.04, 0.04·(4/2)=0.06→min(0.06, 0.0533), 0.0533, 0.5
    adjusted = ex.benjamini_hochberg(p)
    assert adjusted[0] == pytest.approx(0.04)
    assert adjusted[2] == pytest.approx(0.04 * 4 / 3)
    assert adjusted[1] == pytest.approx(0.04 * 4 / 3)
    assert np.isnan(adjusted[3]) and adjusted[4] == pytest.approx(0.5)


def test_winsorize_caps_at_the_pooled_percentile():
    v = np.r_[np.arange(1000.0), 1e9]
    capped, cap = ex.winsorize(v, 99.9)
    assert cap == pytest.approx(np.percentile(v, 99.9)) and capped.max() == cap
    assert (capped[:1000] == v[:1000]).all()
