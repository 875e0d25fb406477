"""From the orders table to the models' inputs and back to business answers.

* :func:`rfm_summary` — the field's (x, t_x, T) summary, as in Fader, Hardie & Lee (2005)
  and ``lifetimes.utils.summary_data_from_transaction_data``: purchases on the same day
  count once (distinct purchase periods), x = repeat purchase days, t_x = time from the
  first to the last purchase day, T = time from the first purchase day to the end of the
  calibration period, monetary value = mean value of the repeat purchase days; with a
  holdout period, the same counts after it.
* :func:`holdout_validation` — predicted vs actual holdout purchases per calibration
  frequency (FHL 2005, fig. 3) and the cumulative weekly tracking of repeat purchases
  (fig. 1).
* :func:`customer_value` and :func:`channel_value` — CLV per customer, and LTV : CAC and
  ROMI per acquisition channel.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pandas as pd

from retentio.analytics.base import completed_orders, lit_ts, span, to_float
from retentio.data.errors import InvalidParameter, NotLoaded, RetentioError

if TYPE_CHECKING:
    from retentio.data.workspace import Workspace

#: length of each time unit in days — stated, never assumed (a month is 365.25 / 12 days)
UNIT_DAYS = {"day": 1.0, "week": 7.0, "month": 365.25 / 12, "quarter": 365.25 / 4, "year": 365.25}


def unit_days(unit: str) -> float:
    try:
        return UNIT_DAYS[unit]
    except KeyError:
        raise RetentioError(f"unknown time unit {unit!r}; use one of {', '.join(UNIT_DAYS)}") from None


def _purchase_days(ws: Workspace):
    o = completed_orders(ws)
    return o.group_by(o.customer_id, day=o.ordered_at.truncate("D")).agg(amount=to_float(o.amount.sum()))


def rfm_summary(ws: Workspace, calibration_end: dt.date | None = None,
                observation_end: dt.date | None = None, unit: str = "week") -> pd.DataFrame:
    """Per customer with a purchase on or before ``calibration_end`` (default: the last
    order day): frequency, recency, T, monetary_value (in ``unit``); with
    ``observation_end`` also frequency_holdout, monetary_value_holdout, duration_holdout.
    Both dates are inclusive days."""
    days = unit_days(unit)
    sp = span(ws, ("orders",))
    if sp is None:
        raise NotLoaded("orders are", "CLV")
    cal = pd.Timestamp(calibration_end) if calibration_end else pd.Timestamp(sp[1]).normalize()
    if cal < sp[0].normalize():  # nothing to calibrate on: say where the data start
        raise InvalidParameter("calibration_end", cal.date().isoformat(),
                               f"a day on or after the first order, {sp[0].date().isoformat()}")
    cal_next = cal + pd.Timedelta(days=1)
    pdays = _purchase_days(ws)
    c = pdays.filter(pdays.day < lit_ts(cal_next))
    secs = 86400.0 * days
    summ = c.group_by("customer_id").agg(
        first=c.day.min(), last=c.day.max(), n=c.count(), total=c.amount.sum(),
        first_amount=c.amount.argmin(c.day))
    summ = summ.mutate(
        frequency=(summ.n - 1).cast("int64"),
        recency=(summ["last"].epoch_seconds() - summ["first"].epoch_seconds()).cast("float64") / secs,
        T=(lit_ts(cal).epoch_seconds() - summ["first"].epoch_seconds()).cast("float64") / secs,
        monetary_value=ibis.ifelse(summ.n > 1, (summ.total - summ.first_amount) / (summ.n - 1).cast("float64"), 0.0),
    )
    out = summ.select("customer_id", "frequency", "recency", "T", "monetary_value", "first")
    if observation_end is not None:
        obs = pd.Timestamp(observation_end)
        if obs <= cal:
            raise RetentioError("the observation end must be after the calibration end")
        h = pdays.filter((pdays.day >= lit_ts(cal_next)) & (pdays.day < lit_ts(obs + pd.Timedelta(days=1))))
        hold = h.group_by("customer_id").agg(frequency_holdout=h.count(), holdout_total=h.amount.sum())
        out = out.left_join(hold, out.customer_id == hold.customer_id).drop("customer_id_right")
        out = out.mutate(frequency_holdout=out.frequency_holdout.fill_null(0).cast("int64"),
                         monetary_value_holdout=ibis.ifelse(out.frequency_holdout > 0,
                                                            out.holdout_total / out.frequency_holdout, 0.0))
        out = out.drop("holdout_total")
    df = out.order_by("customer_id").to_pandas()
    if observation_end is not None:
        df["duration_holdout"] = (pd.Timestamp(observation_end) - cal).days / days
    df.attrs.update({"unit": unit, "unit_days": days, "calibration_end": cal.date().isoformat()})
    return df


def holdout_validation(model, summary: pd.DataFrame, ws: Workspace, max_frequency: int = 7,
                       track_unit: str = "week") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(by_frequency, tracking) for a model fitted on the calibration columns of ``summary``.

    by_frequency: customers, actual and predicted mean holdout purchases per calibration
    frequency 0..max (the last bucket is "max+"). tracking: per ``track_unit`` from the
    first purchase to the observation end, cumulative repeat purchases actual and as the
    model expects them (Σ over customers of E[X(t − first purchase)] for a new customer).
    """
    if "frequency_holdout" not in summary:
        raise RetentioError("holdout validation needs a summary with a holdout period (observation_end)")
    s = summary
    pred = model.expected_purchases(s.duration_holdout.iloc[0], s.frequency, s.recency, s["T"])
    bucket = np.minimum(s.frequency, max_frequency)
    by = pd.DataFrame({"frequency": bucket, "actual": s.frequency_holdout, "predicted": pred}) \
        .groupby("frequency").agg(customers=("actual", "size"), actual=("actual", "mean"),
                                  predicted=("predicted", "mean")).reset_index()
    by["frequency"] = [f"{k}+" if k == max_frequency else str(k) for k in by.frequency]

    days = s.attrs["unit_days"]
    step = unit_days(track_unit)
    first = pd.to_datetime(s["first"])
    start = first.min()
    cal_end = pd.Timestamp(s.attrs["calibration_end"])
    end = cal_end + pd.Timedelta(days=float(s.duration_holdout.iloc[0]) * days)
    grid = pd.date_range(start, end + pd.Timedelta(days=step), freq=pd.Timedelta(days=step))
    births, counts = np.unique(first.to_numpy(), return_counts=True)
    expected = []
    for g in grid:
        age = (g - pd.DatetimeIndex(births)).days.to_numpy() / days
        alive = age > 0
        expected.append(float((counts[alive] * model.expected_purchases_new_customer(age[alive])).sum()))
    pdays = _purchase_days(ws).to_pandas()
    pdays = pdays[pdays.customer_id.isin(s.customer_id)]
    pdays["rank"] = pdays.sort_values("day").groupby("customer_id").cumcount()
    repeat_days = np.sort(pdays.loc[pdays["rank"] > 0, "day"].to_numpy())
    actual = np.searchsorted(repeat_days, grid.to_numpy(), side="left")
    tracking = pd.DataFrame({"date": grid.date.astype(str), "actual": actual, "predicted": expected,
                             "holdout": grid > cal_end})
    return by, tracking


def fit_value_models(ws: Workspace, model: str = "bgnbd", unit: str = "week",
                     calibration_end: dt.date | None = None, summary: pd.DataFrame | None = None):
    """A purchase model (bgnbd, mbgnbd or pareto_nbd) and Gamma-Gamma spend, both fitted on
    the workspace's order history (up to ``calibration_end``, inclusive, when given), or
    on ``summary`` (an :func:`rfm_summary` in ``unit``, or a sample of one) when given.

    Raises :class:`~retentio.analytics.clv.identify.NotIdentifiable` (a
    :class:`RetentioError`) when the data cannot identify the purchase model: its
    estimates would value customers at random. The spend model is not held to that: when
    it runs off to its limit it is because spend hardly varies between repeat buyers, and
    its expected spend is then that common amount — a sensible value."""
    from retentio.analytics.clv import make_model
    from retentio.analytics.clv.identify import require_identified

    if model not in ("bgnbd", "mbgnbd", "pareto_nbd"):
        raise RetentioError("the purchase model must be bgnbd, mbgnbd or pareto_nbd")
    s = rfm_summary(ws, calibration_end, unit=unit) if summary is None else summary
    purchases = require_identified(make_model(model).fit(s.frequency, s.recency, s["T"]))
    spend = make_model("gamma_gamma").fit(s.frequency, s.monetary_value)
    return purchases, spend


def value_horizon(ws: Workspace, unit: str = "month", horizon: int | None = None,
                  discount_rate: float | None = None) -> tuple[int, float]:
    """(horizon in ``unit``, discount rate per ``unit``): the given ones, else the
    workspace's ``[analysis]`` clv_horizon_months and clv_discount_rate (per month)
    converted to ``unit`` — one setting for every place customers are valued (CLV,
    LTV : CAC, value at risk). The rate converts by compounding: (1 + r)^(unit/month) − 1."""
    analysis = ws.settings.analysis
    ratio = unit_days("month") / unit_days(unit)
    if horizon is None:
        horizon = max(1, round(analysis.clv_horizon_months * ratio))
    if discount_rate is None:
        discount_rate = (1 + analysis.clv_discount_rate) ** (1 / ratio) - 1
    return horizon, discount_rate


def customer_value(ws: Workspace, model, spend_model, *, horizon: int | None = None, unit: str = "month",
                   discount_rate: float | None = None, fit_unit: str = "week",
                   calibration_end: dt.date | None = None, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per customer: expected purchases over the horizon, P(alive), expected spend per
    purchase and discounted CLV, from the order history (up to ``calibration_end``) or
    from ``summary`` (its :func:`rfm_summary` in ``fit_unit``) when given. Horizon and
    discount rate default to the workspace's (:func:`value_horizon`)."""
    horizon, discount_rate = value_horizon(ws, unit, horizon, discount_rate)
    s = rfm_summary(ws, calibration_end, unit=fit_unit) if summary is None else summary
    period = unit_days(unit) / unit_days(fit_unit)
    exp = model.expected_purchases(horizon * period, s.frequency, s.recency, s["T"])
    spend = spend_model.expected_spend(s.frequency, s.monetary_value)
    clv = model.clv(s.frequency, s.recency, s["T"], spend, horizon=horizon, period=period,
                    discount_rate=discount_rate)
    out = pd.DataFrame({
        "customer_id": s.customer_id,
        "frequency": s.frequency, "recency": s.recency, "T": s["T"],
        "expected_purchases": exp,
        "p_alive": model.probability_alive(s.frequency, s.recency, s["T"]),
        "expected_spend": spend,
        "clv": clv,
    })
    out.attrs.update({"horizon": horizon, "unit": unit, "unit_days": unit_days(unit),
                      "discount_rate_per_period": discount_rate, "model": model.model_name,
                      "spend_model": spend_model.model_name})
    return out


@dataclass(frozen=True)
class CustomerValues:
    """Customers valued by :func:`value_customers`: the per-customer frame (customer_id,
    frequency, recency, T, expected_purchases, p_alive, expected_spend, clv), the two
    fitted models and the horizon they were valued over."""

    frame: pd.DataFrame
    purchase_model: Any
    spend_model: Any
    horizon: int
    unit: str
    discount_rate: float


def value_customers(ws: Workspace, model: str = "bgnbd", *, unit: str = "month", horizon: int | None = None,
                    discount_rate: float | None = None, calibration_end: dt.date | None = None,
                    fit_sample: int | None = None, seed: int = 0) -> CustomerValues:
    """Fit the purchase model and Gamma-Gamma spend on the order history (up to
    ``calibration_end``), then value every customer over the workspace's horizon
    (:func:`value_horizon`) — the one composition behind ``clv predict``, ``clv channels``,
    the report's CLV section and churn value at risk. With ``fit_sample``, the models'
    few parameters are fitted on a seeded sample of that many customers and applied to all."""
    summary = rfm_summary(ws, calibration_end, unit="week")
    sample = summary.sample(fit_sample, random_state=seed) if fit_sample and len(summary) > fit_sample else summary
    purchases, spend = fit_value_models(ws, model, summary=sample)
    horizon, discount_rate = value_horizon(ws, unit, horizon, discount_rate)
    frame = customer_value(ws, purchases, spend, horizon=horizon, unit=unit, discount_rate=discount_rate,
                           summary=summary)
    return CustomerValues(frame, purchases, spend, horizon, unit, discount_rate)


def value_concentration(clv: pd.Series | np.ndarray, top_fraction: float = 0.1) -> float:
    """The share (in %) of the total CLV held by the ``top_fraction`` most valuable
    customers: Σ of the top max(⌊n · f⌋, 1) values / Σ of all values × 100 (0 when the
    total is 0). How concentrated value is decides how much a retention budget should
    favour the best customers (the Pareto view of customer value, Schmittlein,
    Cooper & Morrison 1993, "Truth in concentration in the land of (80/20) laws",
    *Marketing Science* 12(2))."""
    if not 0 < top_fraction <= 1:
        raise InvalidParameter("top_fraction", top_fraction, "a fraction in (0, 1]")
    values = np.sort(np.asarray(clv, dtype="float64"))[::-1]
    total = values.sum()
    if len(values) == 0 or total <= 0:
        return 0.0
    k = max(int(len(values) * top_fraction), 1)
    return float(100.0 * values[:k].sum() / total)


def channel_value(ws: Workspace, values: pd.DataFrame) -> pd.DataFrame:
    """Per acquisition channel: customers, mean CAC, mean historical revenue, mean future
    CLV, LTV (= historical + future), LTV : CAC (≥ 3 is the usual rule of thumb, Skok 2013) and ROMI
    = LTV / CAC × 100 (below 100 % a customer does not pay back their acquisition)."""
    if not ws.is_loaded("customers"):
        raise RetentioError("LTV : CAC by channel needs the customers table (acquisition_channel, acquisition_cost)")
    c = ws.table("customers")
    if "acquisition_channel" not in c.columns:
        raise RetentioError("the customers table has no acquisition_channel")
    cust = c.select("customer_id", "acquisition_channel",
                    cac=to_float(c.acquisition_cost)).to_pandas()
    o = completed_orders(ws)
    hist = o.group_by("customer_id").agg(revenue=to_float(o.amount.sum())).to_pandas()
    df = cust.merge(hist, on="customer_id", how="left").merge(values[["customer_id", "clv"]], on="customer_id",
                                                              how="left")
    df[["revenue", "clv"]] = df[["revenue", "clv"]].fillna(0.0)
    df["ltv"] = df.revenue + df.clv
    g = df.groupby("acquisition_channel", dropna=False).agg(
        customers=("customer_id", "size"), cac=("cac", "mean"), historical_revenue=("revenue", "mean"),
        future_clv=("clv", "mean"), ltv=("ltv", "mean")).reset_index()
    cac = g.cac.where(g.cac > 0)
    g["ltv_to_cac"] = g.ltv / cac
    g["romi_pct"] = 100 * g.ltv / cac
    g["healthy"] = g.ltv_to_cac >= 3
    return g.sort_values("ltv_to_cac", ascending=False, na_position="last").reset_index(drop=True)
