"""Gamma-Gamma spend model: Fader & Hardie (2013), "The Gamma-Gamma model of monetary
value" (note), after Colombo & Jiang (1999).

A customer's transactions are Gamma(p, ν) with ν ~ Gamma(q, γ); for x repeat transactions
with mean value z̄ (eq. 1–3)::

    f(z̄ | p, q, γ, x) = Γ(px+q) / (Γ(px) Γ(q)) · γ^q · z̄^(px−1) · x^(px) / (γ + x z̄)^(px+q)

    E[M | p, q, γ, x, z̄] = p (γ + x z̄) / (px + q − 1)

CDNOW's 946 repeat buyers: p 6.25, q 3.74, γ 15.44 (reported as ``v`` as in PyMC-Marketing).
The model assumes spend is independent of frequency: :meth:`fit` records their correlation
in ``frequency_spend_correlation_`` (Fader & Hardie report 0.11 for CDNOW).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import digamma, gammaln

from retentio.analytics.clv.base import MLEModel, compress
from retentio.data.errors import RetentioError

#: above this |correlation| between frequency and mean spend the independence assumption is doubtful
CORRELATION_LIMIT = 0.3


class GammaGammaModel(MLEModel):
    """Gamma-Gamma: the spend per transaction, independent of purchase frequency.

    Gamma-Gamma. Parameters ``p, q, v`` (v is the papers' γ).

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
        The maximum-likelihood estimates: ``p, q, v`` (v is the papers' γ).
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
    frequency_spend_correlation_ : float
        Pearson correlation of frequency and mean spend on the fitted customers; the model
        assumes it is near 0.

    References
    ----------
    Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "RFM and CLV: using iso-value
    curves for customer base analysis". *Journal of Marketing Research* 42(4), 415–430.
    Fader, P. S. & Hardie, B. G. S. (2013). "The Gamma-Gamma model of monetary value".
    """

    param_names = ("p", "q", "v")
    model_name = "gamma_gamma"

    def fit(self, frequency, monetary_value, weights=None) -> GammaGammaModel:
        """Fit on customers with at least one repeat purchase: ``frequency`` x ≥ 1 and the
        mean value of their repeat purchases ``monetary_value`` z̄ > 0."""
        x = np.asarray(frequency, dtype="float64")
        z = np.asarray(monetary_value, dtype="float64")
        keep = x > 0
        if np.any(z[keep] <= 0):
            raise RetentioError("Gamma-Gamma needs a positive mean spend for every repeat buyer")
        x, z = x[keep], z[keep]
        w = None if weights is None else np.asarray(weights, dtype="float64")[keep]
        if len(x) < 3:
            raise RetentioError("Gamma-Gamma needs at least a few customers with repeat purchases")
        self.frequency_spend_correlation_ = float(np.corrcoef(x, z)[0, 1]) if len(x) > 2 else float("nan")
        if abs(self.frequency_spend_correlation_) > CORRELATION_LIMIT:
            warnings.warn(f"frequency and mean spend correlate ({self.frequency_spend_correlation_:.2f}): "
                          "the Gamma-Gamma independence assumption is doubtful", stacklevel=2)
        (x, z), w = compress(x, z, weights=w)
        return self._fit((x, z), w)

    def _initial(self, data) -> np.ndarray:
        x, z = data
        return np.array([1.0, 1.0, float(np.mean(z))])

    def _loglik(self, params, data) -> np.ndarray:
        p, q, v = params
        x, z = data
        return (gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(v)
                + (p * x - 1) * np.log(z) + p * x * np.log(x) - (p * x + q) * np.log(v + x * z))

    def _grad(self, params, data) -> np.ndarray:
        p, q, v = params
        x, z = data
        g_p = x * (digamma(p * x + q) - digamma(p * x) + np.log(z) + np.log(x) - np.log(v + x * z))
        g_q = digamma(p * x + q) - digamma(q) + np.log(v) - np.log(v + x * z)
        g_v = q / v - (p * x + q) / (v + x * z)
        return np.column_stack([g_p, g_q, g_v])

    def expected_spend(self, frequency, monetary_value) -> np.ndarray:
        """E[M | x, z̄]: a weighted mean of the population mean p v / (q − 1) and the
        customer's own z̄; customers without repeat purchases get the population mean."""
        p, q, v = self._check_fitted()
        x = np.asarray(frequency, dtype="float64")
        z = np.asarray(monetary_value, dtype="float64")
        z = np.where(x > 0, z, 0.0)
        return p * (v + x * z) / (p * x + q - 1)
