"""Pareto/NBD: Schmittlein, Morrison & Colombo (1987), "Counting your customers: who are
they and what will they do next?", *Management Science* 33(1).

While alive a customer buys at rate λ ~ Gamma(r, α) and dies at an exponential time with
rate μ ~ Gamma(s, β). The likelihood (Fader & Hardie 2005, "A note on deriving the
Pareto/NBD model and related expressions", eq. 13 before the hypergeometric step)::

    L = Γ(r+x) α^r β^s / Γ(r) · [ (α+T)^−(r+x) (β+T)^−s  +  s ∫_{t_x}^{T} (α+τ)^−(r+x) (β+τ)^−(s+1) dτ ]

The second term — alive through t_x, gone by T — is the integral over the time of death.
The usual closed form writes it as a difference of two Gauss hypergeometric functions,
which cancels catastrophically (and gives NaN in ``lifetimes``) for frequent buyers whose
last purchase is near T. Here the integral is computed directly: Gauss–Legendre
quadrature after the change of variables that flattens its exponential decay, summed in
log space, with gradients by differentiating under the integral. CDNOW: r 0.553,
α 10.578, s 0.606, β 11.669, LL −9595.0.
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, gammaln, logsumexp

from retentio.analytics.clv.base import MLEModel, factorize_rows
from retentio.analytics.clv.predict import ContinuousBTYD

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(32)
_U = (_NODES + 1) / 2
_W = _WEIGHTS / 2


def _per_x(f, data):
    """f(x) per row, evaluated once per distinct x when the fit precomputed them."""
    if len(data) >= 5:
        return f(data[3])[data[4]]
    return f(data[0])


class ParetoNBDModel(ContinuousBTYD, MLEModel):
    """Pareto/NBD: Poisson purchases while alive, exponential lifetimes.

    Pareto/NBD. Parameters ``r, alpha, s, beta``.

    Parameters
    ----------
    tol : float, default 1e-10
        Gradient tolerance of the L-BFGS-B fallback (the exact-Hessian models converge by
        Newton's method first).
    max_iter : int, default 1000
        Most L-BFGS-B iterations. A fit that does not converge (largest scaled gradient
        above 1e-5, or a parameter running off to 0 or infinity) warns with
        :class:`~retentio.analytics.clv.base.ConvergenceWarning`.

    Attributes
    ----------
    params_ : dict[str, float]
        The maximum-likelihood estimates: ``r, alpha`` (Gamma purchase rates) and ``s, beta`` (Gamma dropout rates).
    std_errors_ : dict[str, float]
        Their standard errors, from the inverse observed information (Hessian).
    covariance_ : numpy.ndarray
        The covariance matrix of the estimates.
    log_likelihood_ : float
        The log-likelihood at the estimates, summed over customers.
    n_customers_ : float
        Customers fitted on (the sum of the weights).
    converged_ : bool
        Whether the optimiser met its criteria; ``fit_report_`` holds its message and iterations.

    References
    ----------
    Schmittlein, D. C., Morrison, D. G. & Colombo, R. (1987). "Counting your customers:
    who are they and what will they do next?". *Management Science* 33(1), 1–24.
    Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "A note on implementing the
    Pareto/NBD model in MATLAB" (the likelihood in the form computed here).
    """

    param_names = ("r", "alpha", "s", "beta")
    model_name = "pareto_nbd"

    def _initial(self, data) -> np.ndarray:
        x, t_x, T = data[:3]
        rate = max(np.average(x / np.maximum(T, 1e-9)), 1e-3)
        return np.array([1.0, 1.0 / rate, 1.0, float(np.mean(T)) + 1.0])

    @staticmethod
    def _nodes(params, data):
        """Quadrature nodes τ (rows × nodes) and the log of weight × integrand there.

        In u = ln(α+τ) the integrand (α+τ)^−(r+x) (β+τ)^−(s+1) dτ becomes
        e^(−(r+x−1)u) (β+τ)^−(s+1) du, nearly exponential in u; the map
        v = −ln(1 − w(1 − e^−κ))/κ, with κ the drop of the log-integrand across the interval, flattens that decay
        (or growth) so that Gauss–Legendre nodes in w cover where the mass is.
        """
        r, alpha, s, beta = params
        x, t_x, T = data[:3]
        u0, u1 = np.log(alpha + t_x), np.log(alpha + T)
        width = u1 - u0
        # the secant of the log-integrand over the interval: exact at both ends
        # (only growth is bounded: e^−κ overflows below −700; large decay is handled in log space)
        drop = (r + x - 1) * width + (s + 1) * (np.log(beta + T) - np.log(beta + t_x))
        # Gauss–Legendre integrates a change of up to ~e^10 across the interval exactly enough
        # on its own; only the excess is flattened (flattening all of it overshoots)
        kappa = np.sign(drop) * np.maximum(np.abs(drop) - 10.0, 0.0)
        kappa = np.maximum(kappa, -700)
        kappa = np.where(np.abs(kappa) < 1e-6, 1e-6, kappa)[:, None]
        one_minus = -np.expm1(-kappa)  # same sign as kappa
        v = -np.log1p(-_U[None, :] * one_minus) / kappa
        log_jac = np.log(one_minus / kappa) + kappa * v  # dv/dw
        u = u0[:, None] + width[:, None] * v
        tau = np.exp(u) - alpha
        log_f = -(r + x - 1)[:, None] * u - (s + 1) * np.log(beta + tau)
        # rows bought at T have no "died in between" term; keep their numbers finite
        log_w = np.log(_W)[None, :] + log_jac + np.log(np.where(width > 0, width, 1.0))[:, None]
        return tau, log_w + log_f

    def _prepare(self, data):
        return (*data[:5], self._pairs(data))

    @staticmethod
    def _pairs(data):
        """The integral splits as ∫_{t_x}^{T} = H_x(t_x) − H_x(T) with the tail
        H_x(t) = ∫_t^{T_max} (α+τ)^−(r+x) (β+τ)^−(s+1) dτ, so quadrature is needed once per
        distinct (x, t) among all t_x and T — a few thousand pairs for millions of customers
        (12,444 for the 345,514 distinct rows of 1M simulated customers) — instead of once
        per row. Returns (pair x, pair t, T_max, row → pair at t_x, row → pair at T)."""
        if len(data) == 6:
            return data[5]
        x, t_x, T = data[:3]
        (px, pt), codes = factorize_rows(np.concatenate([x, x]), np.concatenate([t_x, T]))
        n = len(x)
        return px, pt, float(T.max()) if n else 0.0, codes[:n], codes[n:]

    def _tails(self, params, pairs, with_grad: bool):
        """log H_x(t) per pair (−inf where t = T_max), and with ``with_grad`` its
        derivatives in (r, α, s, β), differentiated under the integral sign."""
        r, alpha, s, beta = params
        px, pt, t_max = pairs[:3]
        upper = np.full_like(pt, t_max)
        tau, log_terms = self._nodes(params, (px, pt, upper))
        empty = pt >= t_max
        log_h = np.where(empty, -np.inf, logsumexp(log_terms, axis=1))
        if not with_grad:
            return log_h, None
        q = np.where(empty[:, None], 0.0, np.exp(log_terms - np.where(empty, 0.0, log_h)[:, None]))
        d = np.column_stack([
            -(q * np.log(alpha + tau)).sum(1),
            -(r + px) * (q / (alpha + tau)).sum(1),
            -(q * np.log(beta + tau)).sum(1),
            -(s + 1) * (q / (beta + tau)).sum(1),
        ])
        return log_h, d

    def _parts(self, params, data, with_grad: bool = False):
        r, alpha, s, beta = params
        x, t_x, T = data[:3]
        head = _per_x(lambda u: gammaln(r + u), data) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
        pairs = self._pairs(data)
        log_h, d_h = self._tails(params, pairs, with_grad)
        h0, h1 = log_h[pairs[3]], log_h[pairs[4]]
        died = T > t_x
        # ρ = H(T) / H(t_x) < 1 where T > t_x; log(H(t_x) − H(T)) = log H(t_x) + log(1 − ρ)
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = np.where(died, np.exp(h1 - h0), 0.0)
            log_int = np.where(died, h0 + np.log1p(-rho), -np.inf)
        dead = np.where(died, np.log(s) + log_int, -np.inf)
        d_int = None
        if with_grad:
            # d log(H0 − H1) = (d log H0 − ρ d log H1) / (1 − ρ)
            g0, g1 = d_h[pairs[3]], d_h[pairs[4]]
            with np.errstate(divide="ignore", invalid="ignore"):
                d_int = np.where(died[:, None], (g0 - rho[:, None] * g1) / (1 - rho)[:, None], 0.0)
        return head, alive, dead, d_int

    def _loglik(self, params, data) -> np.ndarray:
        head, alive, dead, _ = self._parts(params, data)
        return head + np.logaddexp(alive, dead)

    def _value_and_grad(self, params, data):
        r, alpha, s, beta = params
        x, t_x, T = data[:3]
        head, alive, dead, d_int = self._parts(params, data, with_grad=True)
        total = np.logaddexp(alive, dead)
        wa = np.exp(alive - total)
        wd = 1 - wa
        g_r = _per_x(lambda u: digamma(r + u), data) - digamma(r) + np.log(alpha) + wa * -np.log(alpha + T) + wd * d_int[:, 0]
        g_alpha = r / alpha + wa * -(r + x) / (alpha + T) + wd * d_int[:, 1]
        g_s = np.log(beta) + wa * -np.log(beta + T) + wd * (1 / s + d_int[:, 2])
        g_beta = s / beta + wa * -s / (beta + T) + wd * d_int[:, 3]
        return head + total, np.column_stack([g_r, g_alpha, g_s, g_beta])

    def _grad(self, params, data) -> np.ndarray:
        return self._value_and_grad(params, data)[1]

    # ------------------------------------------------------------------ predictions
    def probability_alive(self, frequency, recency, T, t: float = 0.0) -> np.ndarray:
        """P(alive at T + t | x, t_x, T): the alive share of the likelihood, times the
        posterior survival ((β+T)/(β+T+t))^s for a future time."""
        params = self._check_fitted()
        data = self._validate(frequency, recency, T)
        _, alive, dead, _ = self._parts(params, data)
        now = np.exp(alive - np.logaddexp(alive, dead))
        s, beta = params[2], params[3]
        return now * ((beta + data[2]) / (beta + data[2] + t)) ** s

    def expected_purchases(self, t, frequency, recency, T) -> np.ndarray:
        """E[Y(t) | x, t_x, T] = P(alive) · (r+x)(β+T) / ((α+T)(s−1)) · [1 − ((β+T)/(β+T+t))^(s−1)]
        (Schmittlein et al. 1987; the s → 1 limit is (r+x)/(α+T) · (β+T) ln((β+T+t)/(β+T)))."""
        r, alpha, s, beta = self._check_fitted()
        x, t_x, T_ = self._validate(frequency, recency, T)
        p = self.probability_alive(x, t_x, T_)
        t = np.asarray(t, dtype="float64")
        ratio = (beta + T_) / (beta + T_ + t)
        if abs(s - 1) < 1e-9:
            shape = (beta + T_) * np.log(1 / ratio)
        else:
            shape = (beta + T_) / (s - 1) * (1 - ratio ** (s - 1))
        return p * (r + x) / (alpha + T_) * shape

    def expected_purchases_new_customer(self, t) -> np.ndarray:
        """E[X(t)] = r β / (α (s−1)) · [1 − (β/(β+t))^(s−1)] (Schmittlein, Morrison and
        Colombo 1987, eq. 17), and its limit r β / α · ln(1 + t/β) at s = 1.

        Written as r β/α · (1 − e^(−(s−1)L)) / (s−1) with L = ln(1 + t/β), via expm1, so
        it is exact near s = 1 instead of 0/0."""
        r, alpha, s, beta = self._check_fitted()
        t = np.asarray(t, dtype="float64")
        log_growth = np.log1p(t / beta)
        k = s - 1
        factor = log_growth if abs(k) < 1e-12 else -np.expm1(-k * log_growth) / k
        return r * beta / alpha * factor
