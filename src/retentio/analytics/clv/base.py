"""Maximum-likelihood fitting shared by the CLV models.

Each model supplies its log-likelihood per (compressed) row and the exact gradient with
respect to its parameters; this base class fits them with L-BFGS-B on log-parameters
(all parameters are positive), weights identical rows instead of repeating them, and
reports standard errors from the Hessian of the log-likelihood (finite differences of the
exact gradient) and whether the optimiser converged.

A model that also supplies the exact Hessian of its weighted log-likelihood
(:meth:`MLEModel._weighted`, with ``_exact_hessian = True``; BG/NBD does) is fitted by
Newton's method on the log-parameters instead, falling back to L-BFGS-B if Newton does
not converge; its standard errors come from that exact Hessian. SciPy is imported only
when L-BFGS-B runs, and identical rows are found by hashing (Arrow), not with pandas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import numpy as np

from retentio.data.errors import NotFitted, RetentioError


class ConvergenceWarning(UserWarning):
    """The optimiser stopped without meeting its convergence criteria (raised by ``fit``;
    ``converged_`` and ``fit_report_`` say the same)."""


class Params:
    """scikit-learn's parameter contract, so ``sklearn.base.clone`` and grid searches work:
    the constructor's keyword arguments are the parameters, stored under their own names
    (``get_params``/``set_params`` as in ``sklearn.base.BaseEstimator``). Written here
    rather than inherited because importing scikit-learn would cost a whole-process CLV
    fit a third of its time."""

    @classmethod
    def _param_names(cls) -> list[str]:
        import inspect

        signature = inspect.signature(cls.__init__)
        return sorted(p.name for p in signature.parameters.values()
                      if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))

    def get_params(self, deep: bool = True) -> dict:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> Self:
        valid = set(self._param_names())
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; valid: {sorted(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


@dataclass
class FitReport:
    converged: bool
    message: str
    iterations: int
    n_rows: int
    n_customers: float


def factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(code of each value, distinct values in order of first appearance), as
    ``pandas.factorize`` gives them, by Arrow's hash table: O(n), no sort, no pandas.
    The codes are int32 (fewer than 2³¹ distinct values)."""
    try:  # pyarrow.compute's own function, without the ~30 ms that module spends generating wrappers
        from pyarrow._compute import call_function
    except ImportError:  # pragma: no cover
        from pyarrow.compute import call_function

    from retentio.analytics.clv._arrow import from_numpy, to_numpy

    encoded = call_function("dictionary_encode", [from_numpy(values)])
    return to_numpy(encoded.indices), to_numpy(encoded.dictionary)


def _row_keys(cols: list[np.ndarray]):
    """Each column hashed to codes and the codes combined into one integer per row (mixed
    radix: the first column most significant): (keys, [(codes, uniques)], radices, number
    of possible keys), or None when that number could overflow int64."""
    factorized = [factorize(c) for c in cols]
    sizes = [max(len(u), 1) for _, u in factorized]
    space = float(np.prod(sizes, dtype="float64"))
    if space >= 2.0 ** 62:
        return None
    key = factorized[0][0].astype("int32" if space < 2.0 ** 31 else "int64")
    for (codes, _), size in zip(factorized[1:], sizes[1:]):
        key *= size
        key += codes
    return key, factorized, sizes, int(space)


def _decode(keys: np.ndarray, factorized, sizes) -> list[np.ndarray]:
    """The column values of combined keys."""
    out = []
    for (_, u), size in zip(factorized[::-1], sizes[::-1]):
        keys, digit = np.divmod(keys, size)
        out.append(np.asarray(u, dtype="float64")[digit])
    return out[::-1]


def _dense(space: int, n: int) -> bool:
    """Whether a table over all possible keys is small enough to index directly."""
    return space <= max(4 * n, 1 << 20)


def factorize_rows(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """The distinct rows of ``columns`` and each row's code (index into them): each column
    hashed to codes, then the combined code mapped through a table over all possible
    codes when that is small (O(n)), else hashed again column by column."""
    cols = [np.asarray(c, dtype="float64") for c in columns]
    keyed = _row_keys(cols)
    if keyed is not None and _dense(keyed[3], len(cols[0])):
        key, factorized, sizes, space = keyed
        present = np.zeros(space, dtype=bool)
        present[key] = True
        keys = np.flatnonzero(present)
        index = np.zeros(space, dtype="int64")
        index[keys] = np.arange(len(keys))
        return _decode(keys, factorized, sizes), index[key]
    key = np.zeros(len(cols[0]), dtype="int64")
    for c in cols:
        codes, uniques = factorize(c)
        # re-factorise after each column so the combined code stays below n (no overflow)
        key, _ = factorize(key.astype("int64") * (len(uniques) + 1) + codes)
    # the codes are dense and in order of first appearance: they are the rows' codes
    index = np.zeros(int(key.max()) + 1 if len(key) else 0, dtype="int64")
    index[key[::-1]] = np.arange(len(key))[::-1]  # the first row of each group
    return [c[index] for c in cols], key


def compress(*columns: np.ndarray, weights: np.ndarray | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """Identical rows once, with their counts as weights: fit time then grows with the
    number of distinct rows, not of customers."""
    if weights is None:
        counted = _count_rows([np.asarray(c, dtype="float64") for c in columns])
        if counted is not None:
            return counted
    distinct, codes = factorize_rows(*columns)
    w = np.ones(len(codes)) if weights is None else np.asarray(weights, dtype="float64")
    return distinct, np.bincount(codes, weights=w, minlength=len(distinct[0]))


def _count_rows(cols: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray] | None:
    """The distinct rows of ``cols`` (ordered by their columns' codes) and how often each
    occurs, from the combined row keys: counted in a table over all possible keys when
    that is small, else sorted (NumPy sorts integers fast) — several times faster than
    hashing the keys, as no row codes are needed. None if the keys could overflow."""
    keyed = _row_keys(cols)
    if keyed is None:
        return None
    key, factorized, sizes, space = keyed
    if not len(key):
        return [c[:0] for c in cols], np.zeros(0)
    if _dense(space, len(key)):
        counts = np.bincount(key, minlength=space)
        keys = np.flatnonzero(counts)
        return _decode(keys, factorized, sizes), counts[keys].astype("float64")
    ordered = np.sort(key)
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    counts = np.diff(np.append(np.flatnonzero(first), len(ordered))).astype("float64")
    return _decode(ordered[first], factorized, sizes), counts


def _reuse_large_blocks(nbytes: int) -> None:
    """glibc's malloc maps each block of at least its threshold (128 KiB at start) on its
    own and unmaps it when freed, and gives back heap above twice that, so the large
    temporaries of every likelihood evaluation are page-faulted anew — 40 % of a
    Pareto/NBD evaluation at a million customers. Freeing one mapped block raises the
    threshold to its size (if under 32 MiB; here 24 MiB, so heap up to 48 MiB is kept),
    after which such blocks are reused; pandas' hash tables used to do this by the way.
    It costs microseconds (the block is never touched) and is harmless elsewhere."""
    if nbytes >= 1 << 20:
        np.empty((24 << 20) // 8)


class _OutOfBudget(Exception):
    """Newton's method used up its evaluations."""


class MLEModel(Params):
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

    #: True when :meth:`_weighted` returns the exact Hessian: the fit is then Newton's method
    _exact_hessian: bool = False

    def _plan(self, data, weights: np.ndarray):
        """What every weighted evaluation of one fit reuses (models override)."""
        return data, weights

    def _coarse(self, plan):
        """A cheap approximation of ``plan`` (e.g. a sample of its rows) whose optimum is
        near the real one, where Newton's method starts; None for none (models override)."""
        return None

    def _weighted(self, params: np.ndarray, plan, hessian: bool = False):
        """(Σ w·LL, Σ w·∇LL, Σ w·∇²LL or None) over the rows, the customers' weights w.
        By default from the per-row values; models with an exact Hessian override this."""
        data, weights = plan
        ll, g = self._value_and_grad(params, data)
        return float(weights @ ll), weights @ g, None

    # -- fitting
    def _fit(self, data, weights: np.ndarray) -> Self:
        total = weights.sum()
        if total <= 0:
            raise RetentioError(f"{self.model_name}: no customers to fit on")
        theta0 = np.log(self._initial(data))
        plan = self._plan(data, weights)
        _reuse_large_blocks(len(weights) * max(len(theta0), 4) * 8)
        found = None
        if self._exact_hessian:
            start, coarse = theta0, self._coarse(plan)
            if coarse is not None:  # Newton on a sample first: the full data then need ~3 steps, not ~8
                warm = self._newton(theta0, coarse, total)
                if warm is not None and np.all(np.abs(warm[0]) < 24.9):
                    start = warm[0]
            found = self._newton(start, plan, total)
        if found is None:
            theta, iterations, why, fun = self._lbfgsb(theta0, plan, total)
            params = np.exp(theta)
            # one evaluation at the optimum serves the convergence check, the log-likelihood
            # and the base point of the Hessian
            ll, g_total, hessian = self._weighted(params, plan)
        else:
            theta, iterations, why, (ll, g_total, hessian) = found
            params, fun = np.exp(theta), -ll / total
        grad_norm = float(np.max(np.abs(g_total * params / total)))
        at_bound = bool(np.any(np.abs(theta) >= 24.9))
        converged = bool(np.isfinite(fun) and grad_norm < 1e-5 and not at_bound)
        if at_bound:
            why = "a parameter ran off to 0 or infinity: the model does not fit these data"
        elif not converged:
            why = f"{why} (largest gradient {grad_norm:.2e})"
        self.params_ = dict(zip(self.param_names, params.tolist()))
        self.log_likelihood_ = float(ll)
        self.n_customers_ = float(total)
        self.converged_ = converged
        self.fit_report_ = FitReport(converged, why, int(iterations), len(weights), float(total))
        self.std_errors_ = self._std_errors(params, plan, g_total, hessian)
        if not converged:
            import warnings

            warnings.warn(f"{type(self).__name__} did not converge: {why}", ConvergenceWarning, stacklevel=3)
        return self

    def _lbfgsb(self, theta0: np.ndarray, plan, total: float) -> tuple[np.ndarray, int, str, float]:
        """L-BFGS-B on the log-parameters: (θ, iterations, SciPy's message, −LL/W at θ)."""
        from scipy import optimize

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            params = np.exp(theta)
            ll, g, _ = self._weighted(params, plan)
            value = -ll / total
            grad = -g * params / total
            if not np.isfinite(value) or not np.all(np.isfinite(grad)):
                return np.inf, np.zeros_like(theta)
            return value, grad

        result = optimize.minimize(objective, theta0, jac=True, method="L-BFGS-B",
                                   bounds=[(-25, 25)] * len(theta0),
                                   options={"maxiter": self.max_iter, "ftol": self.tol * 1e-3,
                                            "gtol": self.tol, "maxcor": 20})
        why = result.message if isinstance(result.message, str) else str(result.message)
        return result.x, result.nit, why, result.fun

    def _newton(self, theta: np.ndarray, plan, total: float, max_iter: int = 30, max_evaluations: int = 60):
        """Newton's method on θ = ln(params) for f(θ) = −LL/W with the exact Hessian.

        The step solves H δ = −∇f (H with its eigenvalues made positive where it is not
        positive definite, so the step always descends), is shortened to at most 2 in any
        ln-parameter, and halved until f decreases enough (Armijo, up to rounding). Near
        the optimum it converges quadratically: ~8 evaluations from the initial guess
        (~3 from a sample's optimum) where L-BFGS-B needs ~20, plus 4 more for a
        finite-difference Hessian. Stops when the largest gradient component is below
        ``tol``. Returns (θ, iterations, message, the last evaluation) or None when it
        fails (non-finite values, no descent, ``max_iter`` iterations or
        ``max_evaluations`` evaluations reached); the fit then falls back to L-BFGS-B."""
        evaluations = [0]

        def evaluate(t: np.ndarray):
            evaluations[0] += 1
            if evaluations[0] > max_evaluations:
                raise _OutOfBudget
            p = np.exp(t)
            ll, g, h = self._weighted(p, plan, hessian=True)
            f = -ll / total
            grad = -g * p / total
            hess = -(h * np.outer(p, p) + np.diag(g * p)) / total
            if not (np.isfinite(f) and np.all(np.isfinite(grad)) and np.all(np.isfinite(hess))):
                return None
            return f, grad, hess, (ll, g, h)

        try:
            return self._newton_steps(theta, evaluate, max_iter)
        except _OutOfBudget:
            return None

    def _newton_steps(self, theta: np.ndarray, evaluate, max_iter: int):
        current = evaluate(theta)
        if current is None:
            return None
        for iteration in range(max_iter + 1):
            f, grad, hess, raw = current
            largest = float(np.max(np.abs(grad)))
            if largest < self.tol:
                return theta, iteration, f"Newton: largest gradient {largest:.1e}", raw
            if iteration == max_iter:
                return None
            values, vectors = np.linalg.eigh((hess + hess.T) / 2)
            floor = max(float(np.max(np.abs(values))) * 1e-10, 1e-300)
            step = -vectors @ ((vectors.T @ grad) / np.maximum(np.abs(values), floor))
            step *= min(1.0, 2.0 / max(float(np.max(np.abs(step))), 1e-300))
            if float(np.max(np.abs(step))) < 1e-10 and largest < 1e-7:
                return theta, iteration, f"Newton: largest gradient {largest:.1e} (step below 1e-10)", raw
            slope = float(grad @ step)
            # f, a sum over all customers, is exact to ~10⁻¹⁵ relative: at the optimum a step
            # may raise it by rounding alone, and is taken; the gradient then shows progress
            noise = 1e-13 * max(abs(f), 1.0)
            for _ in range(20):
                trial = np.clip(theta + step, -25.0, 25.0)
                candidate = evaluate(trial)
                if candidate is not None and candidate[0] <= f + 1e-4 * slope + noise:
                    break
                step = step / 2
            else:
                # no decrease left to find: converged to the precision of f, or stuck
                if largest < 1e-7:
                    return theta, iteration, f"Newton: largest gradient {largest:.1e} (f flat to rounding)", raw
                return None
            theta, current = trial, candidate
        return None  # pragma: no cover

    def _std_errors(self, params: np.ndarray, plan, g0: np.ndarray,
                    hessian: np.ndarray | None = None) -> dict[str, float]:
        """Square roots of the diagonal of the inverse observed information −∇²LL: the
        model's exact Hessian where it has one, else forward differences (step 10⁻⁶
        relative) of the exact gradient, whose value ``g0`` at the optimum is known: its
        truncation error, ~10⁻⁶ relative, is far below what a standard error is reported to."""
        k = len(params)
        if hessian is not None:
            information = -np.asarray(hessian, dtype="float64")
        else:
            information = np.empty((k, k))
            for j in range(k):
                h = 1e-6 * max(params[j], 1e-8)
                up = params.copy()
                up[j] += h
                information[:, j] = -(self._weighted(up, plan)[1] - g0) / h
        information = (information + information.T) / 2
        try:
            cov = np.linalg.inv(information)
            se = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
        except np.linalg.LinAlgError:
            se = np.full(k, np.nan)
        self.covariance_ = cov if np.all(np.isfinite(se)) else None
        return dict(zip(self.param_names, se.tolist()))

    # -- helpers
    def _check_fitted(self) -> np.ndarray:
        if not hasattr(self, "params_"):
            raise NotFitted(self)
        return np.array([self.params_[n] for n in self.param_names])

    def summary(self) -> dict:
        """The fit as the CLI prints it: params, standard errors, log-likelihood, convergence,
        and whether the data identify the estimates (``identified``; why not in
        ``identification``, see :mod:`retentio.analytics.clv.identify`)."""
        from retentio.analytics.clv.identify import estimate_problem

        self._check_fitted()
        problem = estimate_problem(self)
        return {
            "model": self.model_name,
            "params": self.params_,
            "std_errors": self.std_errors_,
            "log_likelihood": self.log_likelihood_,
            "n_customers": self.n_customers_,
            "converged": self.converged_,
            "message": self.fit_report_.message,
            "identified": problem is None,
            "identification": problem,
        }

    def conf_int(self, level: float = 0.95) -> dict[str, tuple[float, float]]:
        """Wald intervals params ± z · SE."""
        from scipy.stats import norm

        z = norm.ppf(0.5 + level / 2)
        return {n: (self.params_[n] - z * self.std_errors_[n], self.params_[n] + z * self.std_errors_[n])
                for n in self.param_names}
