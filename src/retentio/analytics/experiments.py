"""The statistics of a randomised holdout: effects with confidence intervals, checks that
the experiment is sound, and honest wording when it cannot tell.

Everything here is arrays in, numbers out; :mod:`retentio.analytics.campaign_effect`
applies it to campaigns.

* **Difference of means** (conversion as a 0/1 mean, revenue per customer, margin) —
  Welch's unequal-variance interval: ``d = ȳ_T − ȳ_C``, ``se² = s_T²/n_T + s_C²/n_C``,
  degrees of freedom by Welch–Satterthwaite ``ν = se⁴ / Σ (s_k²/n_k)² / (n_k − 1)``
  (Welch 1947, *Biometrika* 34:28–35; Satterthwaite 1946, *Biometrics Bulletin*
  2:110–114). For a 0/1 outcome this is the unpooled Wald interval for a difference in
  proportions.
* **Strata** — a campaign measured over several runs (or groups) is the sum of its
  cells: incremental total ``Δ = Σ_g n_T,g d_g`` with ``Var Δ = Σ_g n_T,g² se_g²`` (the
  stratified estimator, Cochran 1977, *Sampling Techniques*, §5.3), so the groups of a
  breakdown add up to the whole. Its degrees of freedom follow the general
  Satterthwaite formula over all the variance components.
* **Relative uplift** ``Δ / B`` with ``B = Σ n_T,g ȳ_C,g`` (what the treated would have
  done untreated), its variance by the delta method (Kohavi, Tang & Xu 2020,
  *Trustworthy Online Controlled Experiments*, ch. 18; Deng, Knoblich & Lu 2018,
  "Applying the Delta Method in Metric Analytics", KDD):
  ``Var(Δ/B) ≈ Var Δ / B² − 2 Δ Cov(Δ, B) / B³ + Δ² Var B / B⁴``.
* **CUPED** (Deng, Xu, Kohavi & Walker 2013, "Improving the sensitivity of online
  controlled experiments by utilizing pre-experiment data", WSDM): ``Y' = Y − θ (X − X̄)``
  with ``θ = cov(Y, X) / var(X)`` pooled over both arms; the estimate stays unbiased
  (X is measured before randomisation's effect) and the variance shrinks by ``1 − ρ²``.
* **Sample-ratio mismatch** — Pearson's chi-square of the arm counts against the
  planned split (Fabijan et al. 2019, "Diagnosing Sample Ratio Mismatch in Online
  Controlled Experiments", KDD); p < 0.001 means the assignment is broken and the
  effect is not to be trusted.
* **Minimum detectable effect** at 80 % power and two-sided α = 0.05:
  ``MDE = (z_{1−α/2} + z_{power}) · se`` (Kohavi et al. 2020, ch. 17).
* **Many comparisons** — p-values adjusted with Benjamini & Hochberg (1995, *JRSS B*
  57:289–300) when several campaigns or groups are shown at once.
* **Winsorising** — revenue capped at a pooled upper percentile (default 99.9 %) so one
  whale does not decide (Kohavi et al. 2020, ch. 22, "capping").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

#: below this adjusted p-value an arm split is called a sample-ratio mismatch
SRM_ALPHA = 0.001


@dataclass(frozen=True)
class Cell:
    """One stratum of an experiment: both arms' size, mean and variance (ddof = 1) of a
    per-customer outcome."""

    n_t: int
    n_c: int
    mean_t: float
    mean_c: float
    var_t: float
    var_c: float

    @classmethod
    def of(cls, treated: np.ndarray, control: np.ndarray) -> Cell:
        t = np.asarray(treated, dtype="float64")
        c = np.asarray(control, dtype="float64")
        return cls(len(t), len(c), _mean(t), _mean(c), _var(t), _var(c))

    @property
    def measurable(self) -> bool:
        """Both arms have two or more customers (a variance exists)."""
        return self.n_t >= 2 and self.n_c >= 2


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else float("nan")


def _var(x: np.ndarray) -> float:
    return float(x.var(ddof=1)) if len(x) > 1 else float("nan")


@dataclass(frozen=True)
class Effect:
    """The effect of treatment on one outcome over one or more cells.

    ``per_customer`` is the average effect per treated customer (for a 0/1 outcome: the
    uplift in rate); ``incremental`` the total over the treated (``per_customer × n_t``);
    ``relative`` the effect over what the treated would have done untreated. Intervals
    are two-sided at ``level``.
    """

    n_t: int
    n_c: int
    mean_t: float
    mean_c: float
    per_customer: float
    per_customer_low: float
    per_customer_high: float
    incremental: float
    incremental_low: float
    incremental_high: float
    relative: float
    relative_low: float
    relative_high: float
    se: float
    df: float
    p_value: float
    #: the smallest per-customer effect these sizes detect with 80 % power
    mde: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def welch(cell: Cell, level: float = 0.95) -> tuple[float, float, float, float, float, float]:
    """Welch's interval for ``mean_t − mean_c``: (estimate, low, high, se, df, p)."""
    e = combine([cell], level)
    return e.per_customer, e.per_customer_low, e.per_customer_high, e.se, e.df, e.p_value


def combine(cells: Sequence[Cell], level: float = 0.95, power: float = 0.8) -> Effect:
    """The stratified effect over ``cells`` (see the module notes): cells without two
    customers in each arm are left out of the estimate (their customers still count in
    ``n_t``/``n_c``)."""
    cells = list(cells)
    n_t = sum(c.n_t for c in cells)
    n_c = sum(c.n_c for c in cells)
    used = [c for c in cells if c.measurable]
    nan = float("nan")
    mean_t = _weighted([c.mean_t for c in cells], [c.n_t for c in cells])
    mean_c = _weighted([c.mean_c for c in cells], [c.n_c for c in cells])
    if not used:
        return Effect(n_t, n_c, mean_t, mean_c, *(nan,) * 13)
    w = np.array([c.n_t for c in used], dtype="float64")
    d = np.array([c.mean_t - c.mean_c for c in used])
    # variance components s²/n of each arm of each cell, times the cell's weight²
    comp_t = np.array([c.var_t / c.n_t for c in used]) * w**2
    comp_c = np.array([c.var_c / c.n_c for c in used]) * w**2
    dof_t = np.array([c.n_t - 1 for c in used], dtype="float64")
    dof_c = np.array([c.n_c - 1 for c in used], dtype="float64")
    total_w = w.sum()
    inc = float((w * d).sum())
    var_inc = float(comp_t.sum() + comp_c.sum())
    se_inc = float(np.sqrt(var_inc))
    denominator = float((comp_t**2 / dof_t).sum() + (comp_c**2 / dof_c).sum())
    df = var_inc**2 / denominator if denominator > 0 else float("inf")
    if se_inc > 0:
        q = float(stats.t.ppf(0.5 + level / 2, df))
        p = float(2 * stats.t.sf(abs(inc) / se_inc, df))
    else:  # no variance at all: the difference is exact
        q, p = 0.0, (1.0 if inc == 0 else 0.0)
    z = float(stats.norm.ppf(0.5 + level / 2) + stats.norm.ppf(power))
    base = float((w * np.array([c.mean_c for c in used])).sum())
    var_base = float(comp_c.sum())
    cov = -var_base  # Δ = Σ w(ȳ_T − ȳ_C), B = Σ w ȳ_C: they share −Var(B)
    if base != 0:
        rel = inc / base
        var_rel = var_inc / base**2 - 2 * inc * cov / base**3 + inc**2 * var_base / base**4
        se_rel = float(np.sqrt(max(var_rel, 0.0)))
        zq = float(stats.norm.ppf(0.5 + level / 2))
        rel_lo, rel_hi = rel - zq * se_rel, rel + zq * se_rel
    else:
        rel = rel_lo = rel_hi = nan
    return Effect(n_t, n_c, mean_t, mean_c,
                  inc / total_w, (inc - q * se_inc) / total_w, (inc + q * se_inc) / total_w,
                  inc * n_t / total_w, (inc - q * se_inc) * n_t / total_w, (inc + q * se_inc) * n_t / total_w,
                  rel, rel_lo, rel_hi, se_inc / total_w, float(df), p, z * se_inc / total_w)


def _weighted(values: list[float], weights: list[int]) -> float:
    v = np.array(values, dtype="float64")
    w = np.array(weights, dtype="float64")
    ok = ~np.isnan(v) & (w > 0)
    return float((v[ok] * w[ok]).sum() / w[ok].sum()) if ok.any() else float("nan")


def mean_difference(treated: np.ndarray, control: np.ndarray, level: float = 0.95) -> Effect:
    """Welch's difference of means of two samples (one cell)."""
    return combine([Cell.of(treated, control)], level)


def cuped(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float]:
    """CUPED-adjusted outcomes ``y − θ (x − x̄)`` and θ = cov(y, x) / var(x), both pooled
    over the arms (Deng et al. 2013). θ is 0 when ``x`` does not vary."""
    y = np.asarray(y, dtype="float64")
    x = np.asarray(x, dtype="float64")
    if len(x) < 2:
        return y.copy(), 0.0
    vx = float(x.var(ddof=1))
    theta = float(np.cov(y, x, ddof=1)[0, 1] / vx) if vx > 0 else 0.0
    return y - theta * (x - x.mean()), theta


def srm_p_value(n_t: int, n_c: int, control_share: float) -> float:
    """Pearson's chi-square test (1 df) of the arm counts against the planned share of
    control; 1.0 when there is nothing to test."""
    n = n_t + n_c
    if n == 0 or not 0 < control_share < 1:
        return 1.0
    expected = np.array([n * (1 - control_share), n * control_share])
    return float(stats.chisquare([n_t, n_c], expected).pvalue)


def srm_combined(p_counts: Sequence[tuple[int, int, float]]) -> float:
    """One SRM p-value over several independent cells: the chi-square statistics add up,
    with one degree of freedom per cell."""
    stat, dof = 0.0, 0
    for n_t, n_c, share in p_counts:
        n = n_t + n_c
        if n == 0 or not 0 < share < 1:
            continue
        expected = np.array([n * (1 - share), n * share])
        stat += float(((np.array([n_t, n_c]) - expected) ** 2 / expected).sum())
        dof += 1
    return float(stats.chi2.sf(stat, dof)) if dof else 1.0


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (missing ones stay missing)."""
    p = np.asarray(p_values, dtype="float64")
    out = np.full(len(p), np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = stats.false_discovery_control(p[ok], method="bh")
    return out


def winsorize(values: np.ndarray, percentile: float = 99.9) -> tuple[np.ndarray, float]:
    """Values capped at their ``percentile`` (pooled over both arms, so the cap does not
    depend on the treatment) and the cap used."""
    v = np.asarray(values, dtype="float64")
    if not len(v) or percentile >= 100:
        return v.copy(), float("inf")
    cap = float(np.percentile(v, percentile))
    return np.minimum(v, cap), cap


def verdict(effect: Effect, p_adjusted: float, srm_p: float, alpha: float = 0.05) -> str:
    """How to word an effect: ``srm`` (assignment broken: not trustworthy), ``too_few``
    (no measurable cell, or not significant — the sizes could not tell an effect
    smaller than the MDE from none), ``positive`` or ``negative``."""
    if srm_p < SRM_ALPHA:
        return "srm"
    if np.isnan(effect.per_customer) or np.isnan(p_adjusted) or p_adjusted >= alpha:
        return "too_few"
    return "positive" if effect.per_customer > 0 else "negative"


__all__ = ["SRM_ALPHA", "Cell", "Effect", "benjamini_hochberg", "combine", "cuped", "mean_difference",
           "srm_combined", "srm_p_value", "verdict", "welch", "winsorize"]
