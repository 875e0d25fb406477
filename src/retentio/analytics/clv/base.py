"""Maximum-likelihood fitting shared by the CLV models.

Each model supplies its log-likelihood per (compressed) row and the exact gradient with
respect to its parameters; this base class fits them with L-BFGS-B on log-parameters
(all parameters are positive), weights identical rows instead of repeating them, and
reports standard errors from the Hessian of the log-likelihood (finite differences of the
exact gradient) and whether the optimiser converged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from retentio.data.errors import RetentioError


class ConvergenceWarning(UserWarning):
    """The optimiser stopped without meeting its convergence criteria."""


@dataclass
class FitReport:
    converged: bool
    message: str
    iterations: int
    n_rows: int
    n_customers: float


def factorize_rows(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """The distinct rows of ``columns`` and each row's code (index into them), by hashing
    each column to small integer codes and then the combined code: O(n), no row sort."""
    import pandas as pd

    cols = [np.asarray(c, dtype="float64") for c in columns]
    key = np.zeros(len(cols[0]), dtype="int64")
    for c in cols:
        codes, uniques = pd.factorize(c)
        # re-factorise after each column so the combined code stays below n (no overflow)
        key, _ = pd.factorize(key * (len(uniques) + 1) + codes)
    row_codes, first = pd.factorize(key)
    index = np.zeros(len(first), dtype="int64")
    index[row_codes[::-1]] = np.arange(len(key))[::-1]  # the first row of each group
    return [c[index] for c in cols], row_codes


def compress(*columns: np.ndarray, weights: np.ndarray | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """Identical rows once, with their counts as weights: fit time then grows with the
    number of distinct rows, not of customers."""
    distinct, codes = factorize_rows(*columns)
    w = np.ones(len(codes)) if weights is None else np.asarray(weights, dtype="float64")
    return distinct, np.bincount(codes, weights=w, minlength=len(distinct[0]))


class MLEModel:
    """Base class: subclasses define ``param_names``, ``_initial()``, ``_loglik(params, data)``
    returning per-row log-likelihoods, and ``_grad(params, data)`` returning per-row
    gradients of shape (n_rows, n_params)."""

    param_names: tuple[str, ...] = ()
    #: the published name of the model, for reports
    model_name: str = ""

    def __init__(self, tol: float = 1e-10, max_iter: int = 1000):
        self.tol = tol
        self.max_iter = max_iter

    # -- to implement
    def _initial(self, data) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _loglik(self, params: np.ndarray, data) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _grad(self, params: np.ndarray, data) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _value_and_grad(self, params: np.ndarray, data) -> tuple[np.ndarray, np.ndarray]:
        """Both at once; models whose terms are shared override this to compute them once."""
        return self._loglik(params, data), self._grad(params, data)

    # -- fitting
    def _fit(self, data, weights: np.ndarray) -> "MLEModel":
        total = weights.sum()
        if total <= 0:
            raise RetentioError(f"{self.model_name}: no customers to fit on")

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            params = np.exp(theta)
            ll, g = self._value_and_grad(params, data)
            value = -(weights @ ll) / total
            grad = -(weights @ g) * params / total
            if not np.isfinite(value) or not np.all(np.isfinite(grad)):
                return np.inf, np.zeros_like(theta)
            return value, grad

        theta0 = np.log(self._initial(data))
        result = optimize.minimize(objective, theta0, jac=True, method="L-BFGS-B",
                                   bounds=[(-25, 25)] * len(theta0),
                                   options={"maxiter": self.max_iter, "ftol": self.tol * 1e-3,
                                            "gtol": self.tol, "maxcor": 20})
        params = np.exp(result.x)
        # one evaluation at the optimum serves the convergence check, the log-likelihood
        # and the base point of the Hessian
        ll_rows, g_rows = self._value_and_grad(params, data)
        g_total = weights @ g_rows
        grad_norm = float(np.max(np.abs(g_total * params / total)))
        at_bound = bool(np.any(np.abs(result.x) >= 24.9))
        converged = bool(np.isfinite(result.fun) and grad_norm < 1e-5 and not at_bound)
        why = result.message if isinstance(result.message, str) else str(result.message)
        if at_bound:
            why = "a parameter ran off to 0 or infinity: the model does not fit these data"
        elif not converged:
            why = f"{why} (largest gradient {grad_norm:.2e})"
        self.params_ = dict(zip(self.param_names, params.tolist()))
        self.log_likelihood_ = float(weights @ ll_rows)
        self.n_customers_ = float(total)
        self.converged_ = converged
        self.fit_report_ = FitReport(converged, why, int(result.nit), len(weights), float(total))
        self.std_errors_ = self._std_errors(params, data, weights, g_total)
        return self

    def _std_errors(self, params: np.ndarray, data, weights: np.ndarray, g0: np.ndarray) -> dict[str, float]:
        """Square roots of the diagonal of the inverse observed information, the Hessian
        of −LL taken by forward differences (step 10⁻⁶ relative) of the exact gradient,
        whose value ``g0`` at the optimum is known: its truncation error, ~10⁻⁶ relative,
        is far below what a standard error is reported to."""
        k = len(params)
        hessian = np.empty((k, k))
        for j in range(k):
            h = 1e-6 * max(params[j], 1e-8)
            up = params.copy()
            up[j] += h
            hessian[:, j] = -(weights @ self._value_and_grad(up, data)[1] - g0) / h
        hessian = (hessian + hessian.T) / 2
        try:
            cov = np.linalg.inv(hessian)
            se = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
        except np.linalg.LinAlgError:
            se = np.full(k, np.nan)
        self.covariance_ = cov if np.all(np.isfinite(se)) else None
        return dict(zip(self.param_names, se.tolist()))

    # -- helpers
    def _check_fitted(self) -> np.ndarray:
        if not hasattr(self, "params_"):
            raise RetentioError(f"{type(self).__name__} is not fitted yet: call fit(...) first")
        return np.array([self.params_[n] for n in self.param_names])

    def summary(self) -> dict:
        """The fit as the CLI prints it: params, standard errors, log-likelihood, convergence."""
        self._check_fitted()
        return {
            "model": self.model_name,
            "params": self.params_,
            "std_errors": self.std_errors_,
            "log_likelihood": self.log_likelihood_,
            "n_customers": self.n_customers_,
            "converged": self.converged_,
            "message": self.fit_report_.message,
        }

    def conf_int(self, level: float = 0.95) -> dict[str, tuple[float, float]]:
        """Wald intervals params ± z · SE."""
        from scipy.stats import norm

        z = norm.ppf(0.5 + level / 2)
        return {n: (self.params_[n] - z * self.std_errors_[n], self.params_[n] + z * self.std_errors_[n])
                for n in self.param_names}
