"""Headline KPIs with their comparisons, and whether the latest movement of a monthly
series is seasonal or persistent.

The verdict uses STL (Cleveland et al. 1990, "STL: a seasonal-trend decomposition
procedure based on loess", *Journal of Official Statistics* 6(1)) from statsmodels, with
a yearly season; it needs two full years of periods, and says so when there are fewer.
The latest change y[t] − y[t−1] splits into a trend part and a seasonal part: when the
seasonal part is the larger, the movement is what the calendar usually does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from retentio.analytics.metrics import BENCHMARKS

#: periods per year by period name
PER_YEAR = {"week": 52, "month": 12, "quarter": 4}

#: the headline KPIs and whether a rise is good
KPIS = (("crr_pct", True), ("churn_pct", False), ("revenue_churn_pct", False), ("nrr_pct", True),
        ("repeat_purchase_rate_pct", True), ("nps", True), ("customers_end", True), ("revenue", True))


def headline(metrics: pd.DataFrame, period: str = "month") -> dict:
    """For the last complete period: each KPI's value, the previous period's, the same
    period a year earlier (when the data reach back), the changes and the benchmark."""
    done = metrics[metrics.complete].reset_index(drop=True)
    if done.empty:
        return {"period_start": None, "kpis": []}
    t = len(done) - 1
    year = PER_YEAR.get(period)
    rows = []
    for key, up_is_good in KPIS:
        if key not in done or pd.isna(done[key].iloc[t]):
            continue
        value = float(done[key].iloc[t])
        prev = float(done[key].iloc[t - 1]) if t >= 1 and pd.notna(done[key].iloc[t - 1]) else None
        ago = float(done[key].iloc[t - year]) if year and t >= year and pd.notna(done[key].iloc[t - year]) else None
        rows.append({"kpi": key, "value": value, "previous": prev, "year_ago": ago,
                     "change": None if prev is None else value - prev,
                     "change_year": None if ago is None else value - ago,
                     "up_is_good": up_is_good, "benchmark": BENCHMARKS.get(key)})
    return {"period_start": done.period_start.iloc[t], "kpis": rows}


@dataclass
class Verdict:
    kind: str  # "seasonal", "persistent", "flat" or "short"
    change: float | None
    trend_part: float | None
    seasonal_part: float | None
    periods: int


def seasonal_verdict(values: pd.Series, period: str = "month") -> Verdict:
    """Is the last change of ``values`` (complete periods, oldest first) seasonal or persistent?"""
    y = pd.to_numeric(values, errors="coerce").astype("float64").interpolate(limit_direction="both").to_numpy()
    n = len(y)
    season = PER_YEAR.get(period, 12)
    change = float(y[-1] - y[-2]) if n >= 2 else None
    if change is None or n < 2 * season or np.isnan(y).any():
        return Verdict("short", change, None, None, n)
    from statsmodels.tsa.seasonal import STL

    res = STL(y, period=season, robust=True).fit()
    trend = float(res.trend[-1] - res.trend[-2])
    seas = float(res.seasonal[-1] - res.seasonal[-2])
    if abs(change) < 1e-9:
        kind = "flat"
    else:
        kind = "seasonal" if abs(seas) > abs(trend) else "persistent"
    return Verdict(kind, change, trend, seas, n)


__all__ = ["KPIS", "PER_YEAR", "Verdict", "headline", "seasonal_verdict"]
