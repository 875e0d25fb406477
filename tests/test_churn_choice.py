"""The churn model is chosen, not assumed: LightGBM, logistic regression and their
average compete on the calibration slice; the choice, its margin and every candidate's
out-of-time score are reported; a model that ranks no better than chance, or stands on
too few customers, is saved with a loud warning."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from retentio import Workspace
from retentio.analytics.churn.model import AverageChurnModel, LinearChurnModel, model_from_dict
from retentio.analytics.churn.train import FEW_CUSTOMERS, choose, load, weakness
from retentio.data.errors import NotFitted
from tests.conftest import DATA, run_cli


def cdnow_orders() -> pd.DataFrame:
    """CDNOW's 6,919 purchases of 2,357 customers (Fader, Hardie & Lee 2005) as orders."""
    raw = pd.read_csv(DATA / "CDNOW_sample.txt", sep=r"\s+", header=None,
                      names=["master", "sample", "date", "cds", "amount"], dtype={"master": str, "date": str})
    return pd.DataFrame({"order_id": [f"o{i}" for i in range(len(raw))], "customer_id": raw.master,
                         "ordered_at": pd.to_datetime(raw.date, format="%Y%m%d"), "amount": raw.amount})


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory):
    path = tmp_path_factory.mktemp("cdnow") / "ws"
    with Workspace.init(path) as ws:
        ws.load("orders", cdnow_orders())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err = run_cli("-w", str(path), "churn", "train", "--as-of", "1998-03-01", "--horizon", "90",
                                 "--json")
    assert code == 0, err
    return path, json.loads(out), err, caught


def test_cdnow_the_chosen_model_is_as_good_as_any_candidate_out_of_time(cdnow):
    _, report, _, _ = cdnow
    cands = {c["model"]: c for c in report["candidates"]}
    assert set(cands) == {"lightgbm", "logistic", "average"} and report["model"] in cands
    assert [c["model"] for c in report["candidates"] if c["chosen"]] == [report["model"]]
    # chosen on the calibration slice: the highest calibration AUC there
    assert cands[report["model"]]["calibration_roc_auc"] == max(c["calibration_roc_auc"] for c in cands.values())
    chosen = report["roc_auc"]
    assert chosen == cands[report["model"]]["roc_auc"]
    spread = report["backtest_spread"]
    assert spread is not None and 0 <= spread < 0.1
    assert all(chosen >= c["roc_auc"] - spread for c in cands.values())
    assert chosen >= min(c["roc_auc"] for c in cands.values())
    assert 0.65 < chosen < 0.8  # CDNOW sample, 390 customers out of time
    assert "calibration slice" in report["selection"]["by"] and report["selection"]["margin"] >= 0
    assert report["warning"] is None
    # the backtest states each cutoff's choice and all three candidates
    assert all({"model", "lightgbm_roc_auc", "logistic_roc_auc", "average_roc_auc"} <= set(b)
               for b in report["backtest"])


def test_cdnow_training_is_silent(cdnow):
    """The BG/NBD P(alive) feature once warned 'invalid value encountered in log' on CDNOW."""
    _, _, err, caught = cdnow
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in caught]
    assert "Warning" not in err


def test_cdnow_scores_have_reasons_from_whichever_model_won(cdnow):
    path, report, _, _ = cdnow
    with Workspace.open(path) as ws:
        model, saved = load(ws)
    assert saved["model"] == report["model"]
    code, out, err = run_cli("-w", str(path), "churn", "score", "--as-of", "1998-03-01", "--top", "20", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 20 and sum(bool(r["reasons"]) for r in rows) >= 15


def test_the_cli_names_the_model_and_the_candidates(cdnow):
    path, report, _, _ = cdnow
    code, out, err = run_cli("-w", str(path), "churn", "train", "--as-of", "1998-03-01", "--horizon", "90")
    assert code == 0, err
    assert "chosen by ROC-AUC on the calibration slice" in " ".join(out.split())
    assert "← chosen" in out and "lightgbm" in out and "average" in out


# ----------------------------------------------------------------------------- thin data
def thin_orders(customers: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(customers):
        days = np.sort(rng.integers(0, 420, rng.integers(1, 8)))
        rows += [(f"c{c}-{i}", f"c{c}", pd.Timestamp("2025-01-01") + pd.Timedelta(days=int(d)),
                  float(rng.integers(10, 90))) for i, d in enumerate(days)]
    return pd.DataFrame(rows, columns=["order_id", "customer_id", "ordered_at", "amount"])


def test_a_model_on_thirty_customers_is_saved_with_a_loud_warning(tmp_path):
    path = tmp_path / "ws"
    with Workspace.init(path) as ws:
        ws.load("orders", thin_orders(30))
    code, out, err = run_cli("-w", str(path), "churn", "train", "--horizon", "30", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert "do not target with it" in report["warning"]
    assert "WARNING" in err and "do not target" in err
    with Workspace.open(path) as ws:
        _, saved = load(ws)
    assert saved["warning"] == report["warning"]
    code, out, err = run_cli("-w", str(path), "churn", "score", "--top", "3")
    assert code == 0 and "WARNING" in err and "do not target" in err
    for lang, says in (("en", "Do not target with this model"), ("ru", "Не выбирайте клиентов по этой модели")):
        code, _, err = run_cli("-w", str(path), "report", "--lang", lang, "--out", str(tmp_path / f"{lang}.html"))
        assert code == 0, err
        html = (tmp_path / f"{lang}.html").read_text(encoding="utf-8")
        assert says in html and 'class="warning"' in html


@pytest.mark.parametrize(("auc", "customers", "says"), [
    (0.50, 5000, "no better than chance"), (0.55, 5000, "no better than chance"),
    (float("nan"), 5000, "could not be tested"), (0.80, FEW_CUSTOMERS - 1, f"only {FEW_CUSTOMERS - 1} labelled"),
    (0.551, FEW_CUSTOMERS, None)])
def test_weakness_thresholds(auc, customers, says):
    got = weakness(auc, customers)
    assert got is None if says is None else says in got


def test_choice_ties_go_to_the_simpler_model_and_an_unrankable_slice_keeps_the_average():
    assert choose({"lightgbm": 0.71, "logistic": 0.70, "average": 0.705}) == "lightgbm"
    assert choose({"lightgbm": 0.70001, "logistic": 0.70, "average": 0.70}) == "logistic"  # equal to 4 places
    assert choose({"lightgbm": 0.70, "logistic": 0.69, "average": 0.70}) == "average"
    assert choose({"lightgbm": float("nan"), "logistic": float("nan"), "average": float("nan")}) == "average"


# ----------------------------------------------------------------------------- the linear model
def _frame(n: int = 400, seed: int = 1):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"recency_days": rng.exponential(50, n), "frequency": rng.poisson(3, n).astype(float),
                      "plan": rng.choice(["basic", "pro", "rare"], n, p=[0.6, 0.36, 0.04])})
    X.loc[X.index % 9 == 0, "frequency"] = np.nan
    logit = (X.recency_days - 50) / 25 - 0.4 * X.frequency.fillna(3) + (X.plan == "pro") * 0.8
    y = (rng.random(n) < expit(logit)).astype(int)
    return X, y


def test_linear_contributions_are_coefficient_times_deviation():
    X, y = _frame()
    m = LinearChurnModel(min_frequency=20).fit(X, y)
    # the same regression fitted by hand on the same design: standardised recency, median-imputed
    # standardised frequency and its standardised missing indicator, share-centred plan indicators
    rec = X.recency_days.to_numpy()
    freq = X.frequency.to_numpy()
    miss = np.isnan(freq).astype(float)
    filled = np.where(np.isnan(freq), np.nanmedian(freq), freq)
    levels = sorted(lv for lv, k in X.plan.value_counts().items() if k >= 20)
    assert levels == ["basic", "pro"]  # "rare" (about 16 rows) is folded into the reference
    onehot = np.column_stack([(X.plan == lv).to_numpy(float) for lv in levels])
    design = np.column_stack([(rec - rec.mean()) / rec.std(), (filled - filled.mean()) / filled.std(),
                              (miss - miss.mean()) / miss.std(), onehot - onehot.mean(axis=0)])
    ref = LogisticRegression(C=1.0, max_iter=2000).fit(design, y)
    beta = ref.coef_[0]
    np.testing.assert_allclose(m.coef_["recency_days"], beta[:1], rtol=1e-6)
    np.testing.assert_allclose(m.coef_["frequency"], beta[1:3], rtol=1e-6)
    np.testing.assert_allclose(m.coef_["plan"], beta[3:], rtol=1e-6)
    c = m.contributions(X)
    row = 5
    assert c.loc[row, "recency_days"] == pytest.approx(beta[0] * (rec[row] - rec.mean()) / rec.std())
    # contributions add up to the log-odds
    np.testing.assert_allclose(expit(m.intercept_ + c.sum(axis=1)), m.predict_raw(X), rtol=1e-10)
    np.testing.assert_allclose(m.predict_raw(X), ref.predict_proba(design)[:, 1], rtol=1e-6)


def test_linear_and_average_models_keep_the_estimator_contract_and_survive_a_round_trip():
    X, y = _frame(1200)
    for model in (LinearChurnModel(C=0.5, seed=2), AverageChurnModel(seed=3)):
        with pytest.raises(NotFitted):
            model.predict_proba(X)
        twin = clone(model)
        assert twin.get_params() == model.get_params()
        before = set(vars(model))
        assert model.fit(X[:800], y[:800], X[800:], y[800:]) is model
        assert all(a.endswith("_") for a in set(vars(model)) - before)
        again = model_from_dict(json.loads(json.dumps(model.to_dict())))
        np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
        pd.testing.assert_frame_equal(again.contributions(X), model.contributions(X))
        assert list(model.contributions(X).columns) == list(X.columns)
        assert abs(sum(model.importance().values()) - 1) < 1e-9


def test_a_short_history_trains_on_cutoffs_inside_the_data():
    from retentio.analytics.churn.train import plan

    as_of, start = pd.Timestamp("2025-12-01"), pd.Timestamp("2025-03-10")
    old = plan(as_of, 60)
    # test 2025-10-02, calibration 08-03, first training cutoff 06-04; at a 30-day step the
    # last three (03-06, 02-04, 01-05) fall before the first day and see nobody
    assert sum(c > start for c in old.train) == 3
    short = plan(as_of, 60, data_start=start)
    assert short.train[0] == old.train[0] and len(short.train) == 6 and min(short.train) > start
    assert (short.train[0] - short.train[1]).days == 15  # the step halved once
    # a long history keeps the plan as it was
    assert plan(as_of, 60, data_start=pd.Timestamp("2020-01-01")) == old
    # the label windows leave no room at all: the latest training cutoff alone
    assert plan(as_of, 60, data_start=pd.Timestamp("2025-06-03")).train == (old.train[0],)
