"""Customer value use cases: fit a CLV model, value customers, check a holdout, value
acquisition channels. Typed parameters in, typed results out; the faces only present.

The models and their sources are in :mod:`retentio.analytics.clv`; the one horizon and
discount rate come from the workspace's ``[analysis]`` settings unless given.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from retentio.data.errors import InvalidParameter

if TYPE_CHECKING:
    import pandas as pd

    from retentio.analytics.clv.from_orders import CustomerValues
    from retentio.data.workspace import Workspace

ModelName = Literal["bgnbd", "mbgnbd", "pareto_nbd", "bgbb", "gamma_gamma", "sbg"]
PurchaseModel = Literal["bgnbd", "mbgnbd", "pareto_nbd"]
Unit = Literal["day", "week", "month", "quarter", "year"]


@dataclass(frozen=True)
class FitParams:
    """What to fit: ``model`` on the workspace's orders (up to ``calibration_end``, in
    ``unit``), or on a ``summary`` file (``survival`` for sBG) when one is given."""

    model: ModelName = "bgnbd"
    calibration_end: dt.date | None = None
    unit: Unit = "month"
    summary: Path | None = None
    survival: Path | None = None


@dataclass(frozen=True)
class FittedModel:
    """A fitted model and its summary (params, std_errors, log_likelihood, n_customers,
    converged, message)."""

    model: Any
    summary: dict


def fit_model(ws: Workspace | None, params: FitParams) -> FittedModel:
    """Fit one model by maximum likelihood (files need no workspace).

    Raises :class:`~retentio.analytics.clv.identify.NotIdentifiable` when the data cannot
    identify the model (no repeat purchases, fewer customers than parameters, estimates
    at a bound, a flat likelihood): an optimiser that stopped is not a fit."""
    from retentio.analytics.clv.identify import require_identified

    if params.summary is not None or params.survival is not None or params.model == "sbg":
        from retentio.analytics.clv.summary_files import fit_from_files

        model = require_identified(fit_from_files(params.model, summary=params.summary, survival=params.survival))
        return FittedModel(model, model.summary())
    if params.model == "bgbb":
        raise InvalidParameter("summary", None, "a summary file (frequency,recency,n_periods): BG/BB is for "
                                                "discrete opportunities, not order histories")
    if ws is None:
        raise InvalidParameter("workspace", None, "a workspace with orders, or a summary file")
    from retentio.analytics.clv import make_model
    from retentio.analytics.clv.from_orders import rfm_summary

    s = rfm_summary(ws, params.calibration_end, unit=params.unit)
    model = make_model(params.model)
    if params.model == "gamma_gamma":
        model.fit(s.frequency, s.monetary_value)
    else:
        model.fit(s.frequency, s.recency, s["T"])
    require_identified(model)
    return FittedModel(model, model.summary())


@dataclass(frozen=True)
class ValueParams:
    """How to value customers: the purchase model, and the horizon and discount rate per
    ``unit`` (None: the workspace's ``[analysis]`` settings)."""

    model: PurchaseModel = "bgnbd"
    unit: Unit = "month"
    horizon: int | None = None
    discount_rate: float | None = None


def value_customers(ws: Workspace, params: ValueParams = ValueParams()) -> CustomerValues:
    """Per customer: expected purchases, P(alive), expected spend and discounted CLV."""
    from retentio.analytics.clv.from_orders import value_customers as valued

    result = valued(ws, params.model, unit=params.unit, horizon=params.horizon, discount_rate=params.discount_rate)
    result.frame.attrs.clear()  # the facts are the result's fields
    return result


@dataclass(frozen=True)
class ChannelValues:
    """Per acquisition channel: customers, CAC, LTV (revenue so far + future CLV over the
    horizon), LTV : CAC and ROMI."""

    frame: pd.DataFrame
    horizon: int
    unit: str


def value_channels(ws: Workspace, params: ValueParams = ValueParams()) -> ChannelValues:
    """LTV : CAC and ROMI per acquisition channel, valued like :func:`value_customers`."""
    from retentio.analytics.clv.from_orders import channel_value

    valued = value_customers(ws, params)
    return ChannelValues(channel_value(ws, valued.frame), valued.horizon, valued.unit)


@dataclass(frozen=True)
class HoldoutCheck:
    """A holdout check: the model fitted on the calibration period, predicted against
    actual purchases per calibration frequency, and cumulative tracking per week."""

    model_summary: dict
    by_frequency: pd.DataFrame
    tracking: pd.DataFrame


def check_holdout(ws: Workspace, calibration_end: dt.date, observation_end: dt.date | None = None,
                  model: PurchaseModel = "bgnbd") -> HoldoutCheck:
    """Fit on orders up to ``calibration_end`` and compare with what happened until
    ``observation_end`` (default: the end of the data). Data that cannot identify the
    model raise :class:`~retentio.analytics.clv.identify.NotIdentifiable`, as in
    :func:`fit_model`: a check of meaningless estimates would only mislead."""
    from retentio.analytics.base import last_time
    from retentio.analytics.clv import make_model
    from retentio.analytics.clv.from_orders import holdout_validation, rfm_summary
    from retentio.analytics.clv.identify import require_identified

    end = observation_end or last_time(ws, "orders", "a holdout check").date()
    if observation_end is None and calibration_end >= end:  # no holdout left: say where the data end
        raise InvalidParameter("calibration_end", calibration_end.isoformat(),
                               f"a day before the last order day, {end.isoformat()}, so that a holdout remains")
    s = rfm_summary(ws, calibration_end, end, unit="week")
    fitted = require_identified(make_model(model).fit(s.frequency, s.recency, s["T"]))
    by, tracking = holdout_validation(fitted, s, ws)
    return HoldoutCheck(fitted.summary(), by, tracking)


__all__ = ["ChannelValues", "FitParams", "FittedModel", "HoldoutCheck", "ValueParams", "check_holdout", "fit_model",
           "value_channels", "value_customers"]
