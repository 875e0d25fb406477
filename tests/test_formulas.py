"""Every worked example of SPEC.md's metrics table, with SPEC.md's corrections."""

import pytest

from retentio import formulas as f


@pytest.mark.parametrize("s,n,e,expected", [
    (1000, 200, 1100, 0.90), (110, 60, 115, 0.50), (1500, 250, 1650, 0.93333),
    (100, 5, 95, 0.90), (190, 25, 205, 0.94737),
])
def test_crr(s, n, e, expected):
    assert f.crr(s, n, e) == pytest.approx(expected, abs=5e-6)


def test_crr_examples_stated_with_lost_customers_agree():
    # the seeds state some examples as S, lost, N: E = S − lost + N
    for s, lost, n, expected in [(110, 55, 60, 0.5), (1500, 100, 250, 0.93333), (100, 10, 5, 0.9), (190, 10, 25, 0.94737)]:
        assert f.crr(s, n, s - lost + n) == pytest.approx(expected, abs=5e-6)
        assert f.crr(s, n, s - lost + n) == pytest.approx(1 - f.churn_rate(lost, s))


@pytest.mark.parametrize("lost,start,expected", [(50, 1000, 0.05), (200 - 180, 200, 0.10), (10, 190, 0.052632)])
def test_churn_rate(lost, start, expected):
    assert f.churn_rate(lost, start) == pytest.approx(expected, abs=5e-7)


def test_nps_is_plus_20_not_the_seeds_30():
    assert f.nps(65, 50, 35) == pytest.approx(20.0)
    scores = [10] * 40 + [9] * 25 + [8] * 30 + [7] * 20 + [6] * 15 + [0] * 20
    assert f.nps_from_scores(scores) == pytest.approx(20.0)
    assert f.nps(10, 0, 0) == 100 and f.nps(0, 0, 10) == -100


def test_csat_and_rpr():
    assert f.csat([5, 4, 3, 2]) == 0.5
    assert f.repeat_purchase_rate(65, 150) == pytest.approx(0.43333, abs=5e-6)  # not the seed's 43.5 %


def test_clv_and_ltv():
    assert f.clv_simple(50, 4, 5) == 1000
    assert f.ltv_subscription(3000, 0.40, 0.90, 0.95, 0.073) == pytest.approx(8780.49, abs=0.01)
    assert f.ltv_short(3000, 0.10) == pytest.approx(30000)
    assert f.ltv_to_cac(900, 300) == 3.0
    assert f.romi(250, 200) == 1.25


@pytest.mark.parametrize("ni,div,expected", [(100_000, 20_000, 0.8), (200_000, 60_000, 0.7), (100_000, 60_000, 0.4)])
def test_retention_ratio(ni, div, expected):
    assert f.retention_ratio(ni, div) == pytest.approx(expected)


@pytest.mark.parametrize("call", [
    lambda: f.crr(0, 1, 1), lambda: f.churn_rate(1, 0), lambda: f.nps(0, 0, 0), lambda: f.csat([]),
    lambda: f.repeat_purchase_rate(0, 0), lambda: f.ltv_short(1, 0), lambda: f.ltv_to_cac(1, 0),
    lambda: f.romi(1, 0), lambda: f.retention_ratio(0, 0), lambda: f.ltv_subscription(1, 1, 1, 1.05, 0.05),
])
def test_zero_denominators_raise(call):
    with pytest.raises(ValueError, match="denominator is zero"):
        call()


def test_out_of_scale_scores_raise():
    with pytest.raises(ValueError):
        f.nps_from_scores([11])
    with pytest.raises(ValueError):
        f.csat([0])
