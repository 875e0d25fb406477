"""CLV from a workspace and the `retentio clv` commands; recovery of simulated parameters."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from retentio import Workspace
from retentio.analytics.clv.from_orders import channel_value, customer_value, holdout_validation, rfm_summary
from retentio.clv import BetaGeoBetaBinomModel, BetaGeoModel, GammaGammaModel, ParetoNBDModel, ShiftedBetaGeoModel
from tests.conftest import DATA, run_cli


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory):
    raw = pd.read_csv(DATA / "CDNOW_sample.txt", sep=r"\s+", header=None,
                      names=["cid", "sid", "date", "cds", "amount"])
    orders = pd.DataFrame({"order_id": [f"o{i}" for i in range(len(raw))], "customer_id": raw.cid.astype(str),
                           "ordered_at": pd.to_datetime(raw.date.astype(str), format="%Y%m%d"),
                           "amount": raw.amount})
    path = tmp_path_factory.mktemp("cdnow") / "ws"
    with Workspace.init(path) as ws:
        ws.load("orders", orders)
    return path


def test_summary_from_transactions_reproduces_the_published_summary(cdnow):
    with Workspace.open(cdnow) as ws:
        s = rfm_summary(ws, calibration_end="1997-09-30", observation_end="1998-06-30", unit="week")
    ref = pd.read_csv(DATA / "cdnow_customers_summary.csv")
    assert len(s) == len(ref) == 2357
    assert sorted(s.frequency) == sorted(ref.frequency)
    assert np.abs(np.sort(s.recency) - np.sort(ref.recency)).max() < 0.005  # the file rounds to 0.01
    assert np.allclose(np.sort(s["T"]), np.sort(ref["T"]), atol=0.005)
    m = BetaGeoModel().fit(s.frequency, s.recency, s["T"])
    assert m.params_["r"] == pytest.approx(0.243, abs=5e-4) and m.log_likelihood_ == pytest.approx(-9582.4, abs=0.1)
    assert s.duration_holdout.iloc[0] == pytest.approx(39.0)


def test_holdout_validation_figures(cdnow):
    with Workspace.open(cdnow) as ws:
        s = rfm_summary(ws, calibration_end="1997-09-30", observation_end="1998-06-30", unit="week")
        m = BetaGeoModel().fit(s.frequency, s.recency, s["T"])
        by, tracking = holdout_validation(m, s, ws)
    # FHL (2005) fig. 3: customers with no repeat purchase in weeks 1–39 make ~0.24 in weeks 40–78
    zero = by.set_index("frequency").loc["0"]
    assert zero.customers == 1411 and zero.actual == pytest.approx(0.237, abs=0.001)
    assert zero.predicted == pytest.approx(zero.actual, abs=0.03)
    assert tracking.actual.is_monotonic_increasing and tracking.predicted.is_monotonic_increasing
    end = tracking.iloc[-1]
    assert abs(end.predicted / end.actual - 1) < 0.1  # the model tracks cumulative repeat purchases


def test_customer_and_channel_value_on_demo(demo_ws_path):
    with Workspace.open(demo_ws_path) as ws:
        s = rfm_summary(ws)
        m = BetaGeoModel().fit(s.frequency, s.recency, s["T"])
        gg = GammaGammaModel().fit(s.frequency, s.monetary_value)
        v = customer_value(ws, m, gg, horizon=12, unit="month", discount_rate=0.01)
        ch = channel_value(ws, v)
    assert (v.clv >= 0).all() and ((v.p_alive >= 0) & (v.p_alive <= 1)).all()
    assert v.attrs["unit_days"] == pytest.approx(365.25 / 12)
    assert set(ch.acquisition_channel) >= {"referral", "paid_search"}
    organic = ch.set_index("acquisition_channel").loc["organic"]
    assert pd.isna(organic.ltv_to_cac)  # CAC 0: no ratio, not infinity
    paid = ch.dropna(subset=["ltv_to_cac"])
    assert np.allclose(paid.romi_pct, 100 * paid.ltv / paid.cac)


def test_cli_fit_json_with_summary_and_survival_files(tmp_path):
    code, out, err = run_cli("clv", "fit", "--model", "bgnbd", "--summary", str(DATA / "cdnow_customers_summary.csv"),
                             "--json")
    assert code == 0, err
    res = json.loads(out)
    assert set(res) >= {"model", "params", "std_errors", "log_likelihood", "n_customers", "converged"}
    assert set(res["params"]) == {"r", "alpha", "a", "b"} and res["converged"]
    assert res["log_likelihood"] == pytest.approx(-9582.4, abs=0.1)
    surv = tmp_path / "surv.csv"
    pd.DataFrame({"period": list(range(8)) * 2, "customers": [1000, 631, 468, 382, 326, 289, 262, 241,
                                                               1000, 869, 743, 653, 593, 551, 517, 491],
                  "cohort": ["regular"] * 8 + ["high end"] * 8}).to_csv(surv, index=False)
    code, out, _ = run_cli("clv", "fit", "--model", "sbg", "--survival", str(surv), "--json")
    assert code == 0 and set(json.loads(out)["params"]) == {"alpha", "beta"}
    dn = tmp_path / "don.csv"
    pd.read_csv(DATA / "donations.csv").rename(columns={"periods": "n_periods", "weights": "weight"}).to_csv(dn, index=False)
    code, out, _ = run_cli("clv", "fit", "--model", "bgbb", "--summary", str(dn), "--json")
    assert code == 0 and json.loads(out)["log_likelihood"] == pytest.approx(-33225.6, abs=0.1)
    gg = tmp_path / "gg.csv"
    pd.read_csv(DATA / "cdnow_customers_summary_with_transactions.csv").rename(
        columns={"x": "frequency", "zbar": "monetary_value"}).to_csv(gg, index=False)
    code, out, _ = run_cli("clv", "fit", "--model", "gamma_gamma", "--summary", str(gg), "--json")
    assert code == 0 and set(json.loads(out)["params"]) == {"p", "q", "v"}


def test_cli_bad_summary_file_names_line_and_column(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("frequency,recency,T\n1,2,3\n2,x,5\n")
    code, _, err = run_cli("clv", "fit", "--summary", str(bad))
    assert code == 2 and "line 3" in err and "'recency'" in err


def test_cli_predict_validate_channels_on_demo(demo_ws_path):
    w = str(demo_ws_path)
    code, out, err = run_cli("-w", w, "clv", "predict", "--horizon", "12", "--unit", "month", "--discount-rate",
                             "0.01", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert set(rows[0]) == {"customer_id", "expected_purchases", "p_alive", "expected_spend", "clv"}
    code, out, _ = run_cli("-w", w, "clv", "fit", "--calibration-end", "2025-12-31", "--json")
    assert code == 0 and json.loads(out)["converged"]
    code, out, _ = run_cli("-w", w, "clv", "validate", "--calibration-end", "2025-09-30", "--json")
    assert code == 0 and {"by_frequency", "tracking"} <= set(json.loads(out))
    code, out, _ = run_cli("-w", w, "clv", "channels", "--json")
    assert code == 0 and "ltv_to_cac" in json.loads(out)[0]


# ------------------------------------------------------------------ recovery of known parameters
def _within(model, truth: dict, level: float = 0.999):
    ci = model.conf_int(level)
    for name, value in truth.items():
        lo, hi = ci[name]
        assert lo <= value <= hi, (name, value, (lo, hi))


def test_bgnbd_and_pareto_recover_simulated_parameters():
    rng = np.random.default_rng(3)
    n, T = 20_000, 52.0
    # BG/NBD: r 0.5, alpha 5, a 0.8, b 2.5
    lam = rng.gamma(0.5, 1 / 5, n)
    p = rng.beta(0.8, 2.5, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    for i in range(n):
        t = rng.exponential(1 / lam[i])
        while t < T:
            x[i] += 1
            t_x[i] = t
            if rng.random() < p[i]:
                break
            t += rng.exponential(1 / lam[i])
    _within(BetaGeoModel().fit(x, t_x, np.full(n, T)), {"r": 0.5, "alpha": 5, "a": 0.8, "b": 2.5})
    # Pareto/NBD: r 0.6, alpha 8, s 0.7, beta 10
    lam = rng.gamma(0.6, 1 / 8, n)
    mu = rng.gamma(0.7, 1 / 10, n)
    death = rng.exponential(1 / mu)
    x = np.zeros(n)
    t_x = np.zeros(n)
    for i in range(n):
        end = min(death[i], T)
        k = rng.poisson(lam[i] * end)
        if k:
            x[i] = k
            t_x[i] = rng.uniform(0, end, k).max()
    _within(ParetoNBDModel().fit(x, t_x, np.full(n, T)), {"r": 0.6, "alpha": 8, "s": 0.7, "beta": 10})


def test_bgbb_gamma_gamma_sbg_recover_simulated_parameters():
    rng = np.random.default_rng(4)
    n, opp = 30_000, 8
    p = rng.beta(1.2, 0.8, n)
    theta = rng.beta(0.7, 2.5, n)
    x = np.zeros(n, int)
    t_x = np.zeros(n, int)
    for i in range(n):
        for k in range(1, opp + 1):
            # FHS (2010): a customer becomes inactive at the start of an opportunity, then buys
            if rng.random() < theta[i]:
                break
            if rng.random() < p[i]:
                x[i] += 1
                t_x[i] = k
    m = BetaGeoBetaBinomModel().fit(x, t_x, np.full(n, opp))
    _within(m, {"alpha": 1.2, "beta": 0.8, "gamma": 0.7, "delta": 2.5})
    rng = np.random.default_rng(5)
    freq = rng.integers(1, 10, 20_000)
    nu = rng.gamma(4.0, 1 / 20.0, 20_000)
    zbar = np.array([rng.gamma(6.0, 1 / v, k).mean() for v, k in zip(nu, freq)])
    _within(GammaGammaModel().fit(freq, zbar), {"p": 6.0, "q": 4.0, "v": 20.0})
    rng = np.random.default_rng(6)
    theta = rng.beta(0.9, 2.0, 20_000)
    lifetime = rng.geometric(theta)  # periods until the customer leaves, censored after 12
    tenure = np.minimum(lifetime, 12)
    churned = lifetime <= 12
    _within(ShiftedBetaGeoModel().fit(tenure=tenure, churned=churned), {"alpha": 0.9, "beta": 2.0})


def test_one_value_horizon_for_channels_predict_and_the_report(demo_ws_path, tmp_path):
    """clv channels and clv predict value customers over the workspace's one horizon
    ([analysis] clv_horizon_months), and changing it changes both."""
    import shutil

    from retentio.data.settings import SETTINGS_FILE

    w = tmp_path / "w"
    shutil.copytree(demo_ws_path, w)
    code, out, _ = run_cli("-w", str(w), "clv", "predict", "--json")
    twelve = sum(r["clv"] for r in json.loads(out))
    code, out, _ = run_cli("-w", str(w), "clv", "predict", "--horizon", "12", "--discount-rate", "0.01", "--json")
    assert sum(r["clv"] for r in json.loads(out)) == pytest.approx(twelve)
    channels12 = {r["acquisition_channel"]: r["ltv"] for r in json.loads(run_cli("-w", str(w), "clv", "channels",
                                                                                 "--json")[1])}
    text = (w / SETTINGS_FILE).read_text() + "\n[analysis]\nclv_horizon_months = 24\n"
    (w / SETTINGS_FILE).write_text(text)
    code, out, err = run_cli("-w", str(w), "clv", "predict", "--json")
    assert code == 0, err
    assert sum(r["clv"] for r in json.loads(out)) > twelve
    channels24 = {r["acquisition_channel"]: r["ltv"] for r in json.loads(run_cli("-w", str(w), "clv", "channels",
                                                                                 "--json")[1])}
    assert all(channels24[c] > channels12[c] for c in channels12)
    (w / SETTINGS_FILE).write_text(text.replace("= 24", "= 0"))
    code, _, err = run_cli("-w", str(w), "tables")
    assert code == 2 and "clv_horizon_months" in err
