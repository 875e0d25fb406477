"""One estimator contract for every model, as scikit-learn's ``parametrize_with_checks``
checks its own: parameters are the constructor's arguments (``clone`` works), ``fit``
returns self and adds only attributes ending in ``_``, one ``NotFitted`` error before
fit, and ``ConvergenceWarning`` when the optimiser stops short."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from retentio.analytics.churn.model import ChurnModel
from retentio.analytics.clv.base import ConvergenceWarning
from retentio.analytics.uplift import TLearner, XLearner
from retentio.clv import (
    BetaGeoBetaBinomModel,
    BetaGeoModel,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    ShiftedBetaGeoModel,
)
from retentio.data.errors import NotFitted
from tests.clv_data import CDNOW, CDNOW_GG, DONATIONS


def _churn_data():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"recency_days": rng.exponential(60, 2000), "frequency": rng.poisson(3, 2000).astype(float)})
    y = (rng.random(2000) < 1 / (1 + np.exp(-(X.recency_days - 60) / 30))).astype(int)
    return (X[:1500], y[:1500], X[1500:], y[1500:]), X[:5]


FITS = {  # model, fit arguments, a call that needs a fitted model
    "bgnbd": (BetaGeoModel, (CDNOW.frequency, CDNOW.recency, CDNOW["T"]),
              lambda m: m.probability_alive(CDNOW.frequency[:3], CDNOW.recency[:3], CDNOW["T"][:3])),
    "mbgnbd": (ModifiedBetaGeoModel, (CDNOW.frequency, CDNOW.recency, CDNOW["T"]),
               lambda m: m.expected_purchases(4, CDNOW.frequency[:3], CDNOW.recency[:3], CDNOW["T"][:3])),
    "pareto_nbd": (ParetoNBDModel, (CDNOW.frequency, CDNOW.recency, CDNOW["T"]),
                   lambda m: m.expected_purchases_new_customer(10.0)),
    "bgbb": (BetaGeoBetaBinomModel, (DONATIONS.frequency, DONATIONS.recency, DONATIONS.periods),
             lambda m: m.summary()),
    "gamma_gamma": (GammaGammaModel, (CDNOW_GG.x, CDNOW_GG.zbar), lambda m: m.summary()),
    "sbg": (ShiftedBetaGeoModel, ([1000, 869, 743, 653, 593, 551, 517, 491],), lambda m: m.summary()),
}


def _uplift_data():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=600), "segment": rng.choice(["a", "b"], 600)})
    t = (rng.random(600) < 0.5).astype(int)
    y = (rng.random(600) < 0.2 + 0.1 * t * (X.segment == "a")).astype(int)
    return X, y, t


UPLIFT = _uplift_data()
# the uplift learners have no optimiser settings: their factories take (and ignore) tol/max_iter
FITS |= {
    "t_learner": (lambda **_: TLearner("lightgbm"), UPLIFT, lambda m: m.predict(UPLIFT[0][:3])),
    "x_learner": (lambda **_: XLearner("linear", propensity=0.5), UPLIFT, lambda m: m.predict(UPLIFT[0][:3])),
}


@pytest.mark.parametrize("name", [*FITS, "churn"])
def test_clone_and_params(name):
    model = ChurnModel(threads=2, seed=3) if name == "churn" else FITS[name][0](tol=1e-9, max_iter=500)
    params = model.get_params()
    twin = clone(model)
    assert twin is not model and twin.get_params() == params
    assert model.set_params(**params) is model
    with pytest.raises(ValueError):
        model.set_params(no_such_parameter=1)


@pytest.mark.parametrize("name", [*FITS, "churn"])
def test_fit_returns_self_learns_only_underscored_attributes_and_one_not_fitted_error(name):
    if name == "churn":
        model, (args, sample), needs_fit = ChurnModel(), _churn_data(), None
        needs_fit = lambda m: m.predict_proba(sample)  # noqa: E731
    else:
        cls, args, needs_fit = FITS[name]
        model = cls()
    with pytest.raises(NotFitted, match="not fitted"):
        needs_fit(model)
    before = set(vars(model))
    assert model.fit(*args) is model
    learned = set(vars(model)) - before
    assert learned and all(a.endswith("_") for a in learned), sorted(learned)
    needs_fit(model)  # works now
    assert clone(model).get_params() == model.get_params() and not hasattr(clone(model), "params_" if name != "churn"
                                                                           else "booster_")


def test_a_fit_stopped_short_warns():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = ParetoNBDModel(max_iter=2).fit(CDNOW.frequency, CDNOW.recency, CDNOW["T"])
    assert not m.converged_
    assert any(issubclass(w.category, ConvergenceWarning) for w in caught)
