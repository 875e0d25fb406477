"""What the continuous-time models share: input checks and discounted CLV."""

from __future__ import annotations

import numpy as np

from retentio.analytics.clv.base import compress, factorize
from retentio.analytics.clv.identify import require_purchase_data
from retentio.data.errors import RetentioError


def distinct_x(x, t_x, T):
    ix, ux = factorize(x)  # x-only terms are computed per distinct x
    return x, t_x, T, np.asarray(ux, dtype="float64"), ix


def distinct_times(t_x, T):
    """(distinct times, index of each row's t_x, index of each row's T): terms in ln(α+t)
    are then computed per distinct time — a few hundred for day-level data."""
    codes, ut = factorize(np.concatenate([t_x, T]))
    return np.asarray(ut, dtype="float64"), codes[: len(t_x)], codes[len(t_x):]


class ContinuousBTYD:
    """Mixin for BG/NBD, MBG/NBD and Pareto/NBD (they define ``expected_purchases``)."""

    model_name: str
    param_names: tuple[str, ...]

    def expected_purchases(self, t, frequency, recency, T) -> np.ndarray:
        """E[X(t) | x, t_x, T]: each model defines it."""
        raise NotImplementedError

    def fit(self, frequency, recency, T, weights=None):
        """Fit on per-customer repeat purchases ``frequency`` (x), ``recency`` (t_x: time of
        the last purchase since the first) and ``T`` (time since the first purchase), all
        in one time unit; identical rows are fitted once with their count as weight.
        Data that cannot identify the model (no repeat purchase at all, fewer customers
        than parameters) raise :class:`~retentio.analytics.clv.identify.NotIdentifiable`
        instead of returning meaningless estimates."""
        x, t_x, T_ = np.broadcast_arrays(*(np.asarray(v, dtype="float64") for v in (frequency, recency, T)))
        (x, t_x, T_), w = compress(x, t_x, T_, weights=weights)
        x, t_x, T_ = self._validate(x, t_x, T_)  # the distinct rows: the same checks, fewer rows
        require_purchase_data(self.model_name, x, T_, w, len(self.param_names))
        return self._fit(self._prepare(distinct_x(x, t_x, T_)), w)

    def _prepare(self, data):
        """Precompute what every likelihood evaluation of a fit reuses (models override)."""
        return data

    @staticmethod
    def _validate(frequency, recency, T):
        x = np.asarray(frequency, dtype="float64")
        t_x = np.asarray(recency, dtype="float64")
        T_ = np.asarray(T, dtype="float64")
        x, t_x, T_ = np.broadcast_arrays(x, t_x, T_)
        if np.any(x < 0) or np.any(np.round(x) != x):
            raise RetentioError("frequency must be a whole number of repeat purchases ≥ 0")
        if np.any(t_x < 0) or np.any(T_ < 0):
            raise RetentioError("recency and T must be ≥ 0")
        if np.any(t_x > T_ + 1e-9):
            raise RetentioError("recency (time of the last purchase) cannot exceed T (time observed)")
        if np.any((x == 0) & (t_x > 0)):
            raise RetentioError("a customer without repeat purchases has recency 0")
        return x.astype("float64"), t_x, T_

    def clv(self, frequency, recency, T, spend, *, horizon: int, period: float,
            discount_rate: float) -> np.ndarray:
        """Discounted expected value of the next ``horizon`` periods.

        ``period`` is the length of one period in the model's time unit (e.g. 7 days per
        week for a model fitted in days: explicit, never an assumed "30 days per month");
        ``discount_rate`` is per period. CLV = Σₖ spend · (E[Y(k·period)] − E[Y((k−1)·period)])
        / (1 + d)ᵏ for k = 1..horizon — purchases of period k discounted by k periods, as in
        Fader, Hardie & Lee (2005b), "RFM and CLV: using iso-value curves".
        """
        if horizon <= 0 or period <= 0:
            raise RetentioError("horizon and period must be positive")
        if discount_rate < 0:
            raise RetentioError("discount_rate must be ≥ 0")
        x, t_x, T_ = self._validate(frequency, recency, T)
        spend = np.broadcast_to(np.asarray(spend, dtype="float64"), x.shape)
        total = np.zeros_like(x)
        previous = np.zeros_like(x)
        for k in range(1, horizon + 1):
            cumulative = self.expected_purchases(k * period, x, t_x, T_)
            total += (cumulative - previous) / (1 + discount_rate) ** k
            previous = cumulative
        return spend * total
