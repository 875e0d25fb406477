"""Whether the data can identify a CLV model: checked, never assumed.

Maximum likelihood always returns *some* numbers, and an optimiser can "converge" on data
that say nothing about the parameters: with every order on one day the log-likelihood is
0 at any parameters (BG/NBD stops at its starting point r = 1, a = b = 1), and one
customer drives r and α towards 10⁸. Such estimates must not be reported as a fit.

**Before fitting** (the data; the purchase models BG/NBD, MBG/NBD, Pareto/NBD, and BG/BB):

* *no repeat purchase at all* (frequency 0 for every customer, hence recency 0): how
  often customers buy and how soon they leave are told apart only by repeat purchases,
  so without any the likelihood is flat along a whole curve of parameters (and exactly
  flat when, on top, no customer was observed for any time, T = 0);
* *fewer customers than parameters*: the estimates then follow the few customers, not a
  population (the one-customer fit above).

**After fitting** (the estimates; every model, see :func:`estimate_problem`):

* *a parameter at the optimiser's bound* (|ln θ| ≥ 24.9, i.e. beyond ~6·10¹⁰ or below
  ~10⁻¹¹): the likelihood keeps rising towards 0 or infinity, so there is no maximum;
* *a singular observed information* (−Hessian not positive definite, so some standard
  error is missing): the likelihood is flat in some direction at the estimates;
* *a standard error of ln θ above* :data:`MAX_LOG_SE` (10): the data fit θ as well as
  θ · e^±20, a factor of ~10⁸ either way — the estimate is whatever the optimiser stopped
  at. On samples of CDNOW this flags no fit of 100 customers or more and most of 5–20.

The checks are deliberately coarse: a warning sign that is only statistical (a standard
error of 50 %) is the reader's to weigh; these mark estimates that mean nothing.

**The limit of a mixing distribution is a fit.** The two parameters of one mixing
distribution — (r, α) of the Gamma purchase rates, (a, b) of the Beta dropout
probabilities, (s, β) of the Gamma dropout rates, BG/BB's (α, β) and (γ, δ), sBG's (α, β),
Gamma-Gamma's (q, v) — may run off *together* while their ratio stays put: all customers
then share one rate or probability (a point mass), which the data determine well even
though each parameter alone is not. Simulated from BG/NBD with CDNOW-like parameters,
3,000 customers over 12 weeks end there in 2 of 5 samples. So when every flagged parameter
belongs to such a pair and both of the pair are flagged, the estimates stand (the summary
still says so), provided the fit rests on at least :data:`MIN_FOR_LIMIT` customers —
below that, a few customers make any limit look determined.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from retentio.data.errors import RetentioError

if TYPE_CHECKING:
    from retentio.analytics.clv.base import MLEModel

#: the bound of the optimiser on ln θ, less a margin (see ``MLEModel._fit``)
AT_BOUND = 24.9
#: largest standard error of ln θ (= SE / θ) an identified estimate may have
MAX_LOG_SE = 10.0
#: the parameter pairs of each model's mixing distributions (see the module docstring)
MIXING_PAIRS = (("r", "alpha"), ("a", "b"), ("s", "beta"), ("alpha", "beta"), ("gamma", "delta"), ("q", "v"))
#: fewest customers for which a joint run-off of a mixing pair counts as its point-mass limit
MIN_FOR_LIMIT = 50
#: the models' published names, for messages
NAMES = {"bgnbd": "BG/NBD", "mbgnbd": "MBG/NBD", "pareto_nbd": "Pareto/NBD", "bgbb": "BG/BB",
         "gamma_gamma": "Gamma-Gamma", "sbg": "sBG"}
#: what would let the purchase models identify their parameters
MORE_DATA = ("more customers (hundreds rather than a handful) with repeat purchases, and a longer order "
             "history (months, with purchases on different days)")


class NotIdentifiable(RetentioError):
    """The data cannot determine a model's parameters: ``why`` says which check failed,
    the message also what data would."""

    def __init__(self, model_name: str, why: str, needs: str = MORE_DATA):
        self.model_name, self.why, self.needs = model_name, why, needs
        name = NAMES.get(model_name, model_name)
        super().__init__(f"these data cannot identify the {name} model: {why}. Its estimates would mean nothing, "
                         f"so none are reported; it needs {needs}")


def purchase_data_problem(frequency: np.ndarray, T: np.ndarray, weights: np.ndarray,
                          n_params: int) -> str | None:
    """Why (x, T) rows weighted by their customer counts cannot identify a purchase
    model of ``n_params`` parameters, or None (see the module docstring)."""
    customers = float(weights.sum())
    if customers > 0 and customers < n_params:
        return f"only {customers:g} customer{'' if customers == 1 else 's'} for the model's {n_params} parameters"
    if customers > 0 and not np.any(frequency[weights > 0] > 0):
        why = (f"none of the {customers:g} customers bought again on a later day, and only repeat purchases "
               "tell how often customers buy apart from how soon they leave")
        if not np.any(T[weights > 0] > 0):
            why += "; all of them first bought on the last day of the data, so none was observed for any time"
        return why
    return None


def require_purchase_data(model_name: str, frequency: np.ndarray, T: np.ndarray, weights: np.ndarray,
                          n_params: int) -> None:
    """Raise :class:`NotIdentifiable` when :func:`purchase_data_problem` finds one."""
    why = purchase_data_problem(frequency, T, weights, n_params)
    if why is not None:
        raise NotIdentifiable(model_name, why)


def estimate_problem(model: MLEModel) -> str | None:
    """Why a fitted model's estimates are not identified, or None (see the module docstring)."""
    params = model.params_
    for name, value in params.items():
        if not np.isfinite(value) or value <= 0 or abs(np.log(value)) >= AT_BOUND:
            return f"{name} ran off to {'0' if 0 < value < 1 else 'infinity'} ({value:.3g}): the likelihood has no maximum"
    errors = model.std_errors_
    missing = [n for n in params if not np.isfinite(errors.get(n, np.nan))]
    if missing:
        return (f"the likelihood is flat around the estimates (no standard error for {', '.join(missing)}): "
                "other values fit the data as well")
    for name, value in params.items():
        if errors[name] / value > MAX_LOG_SE:
            return (f"{name} = {value:.3g} has a standard error {errors[name] / value:,.0f} times its size: "
                    "any value over many orders of magnitude fits the data as well")
    return None


def _flagged(model: MLEModel) -> set[str]:
    """The parameters that fail a check of :func:`estimate_problem`."""
    errors = model.std_errors_
    out = set()
    for name, value in model.params_.items():
        se = errors.get(name, np.nan)
        if (not np.isfinite(value) or value <= 0 or abs(np.log(value)) >= AT_BOUND or not np.isfinite(se)
                or se / value > MAX_LOG_SE):
            out.add(name)
    return out


def at_mixing_limit(model: MLEModel) -> bool:
    """Whether every flagged parameter is one of a mixing pair whose two parameters are
    both flagged, on at least :data:`MIN_FOR_LIMIT` customers (the point-mass limit)."""
    flagged = _flagged(model)
    if not flagged or float(getattr(model, "n_customers_", 0) or 0) < MIN_FOR_LIMIT:
        return False
    names = set(model.params_)
    pairs = [set(p) for p in MIXING_PAIRS if set(p) <= names]
    return all(any(name in p and p <= flagged for p in pairs) for name in flagged)


def require_identified(model: MLEModel, needs: str | None = None) -> MLEModel:
    """The fitted ``model``, or :class:`NotIdentifiable` when :func:`estimate_problem` finds a
    problem that is not the point-mass limit of a mixing distribution."""
    why = estimate_problem(model)
    if why is not None and not at_mixing_limit(model):
        raise NotIdentifiable(model.model_name, why, needs or _needs(model.model_name))
    return model


def _needs(model_name: str) -> str:
    """What data would identify the model, in its own terms."""
    if model_name == "gamma_gamma":
        return ("more repeat buyers whose spend per order differs (when every order costs about the same, the "
                "expected spend is simply that amount)")
    if model_name == "sbg":
        return "survivor counts over more periods, or more cohorts"
    return MORE_DATA


__all__ = ["MAX_LOG_SE", "MIN_FOR_LIMIT", "at_mixing_limit", "NotIdentifiable", "estimate_problem", "purchase_data_problem", "require_identified",
           "require_purchase_data"]
