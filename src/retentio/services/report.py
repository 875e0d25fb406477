"""The retention report's data: every number the report shows, gathered by the other
services with the workspace's one set of settings, as typed facts per section. The
HTML face (:mod:`retentio.faces.report`) only arranges, charts and words them; another
face (the web app) can show the same facts.

A section whose data the workspace does not support (no subscriptions, no surveys, too
little history for a model) is recorded in :attr:`ReportData.unavailable` with the reason,
and the rest of the report is still gathered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from retentio.data.errors import InvalidParameter, RetentioError

if TYPE_CHECKING:
    import pandas as pd

    from retentio.analytics.churn.reasons import Phrasebook
    from retentio.analytics.trends import Verdict
    from retentio.data.workspace import Workspace
    from retentio.services.clv import HoldoutCheck
    from retentio.services.data import TableInfo
    from retentio.services.loyalty import StatsResult
    from retentio.services.measurement import Measurement
    from retentio.services.retention import Cohorts, Funnels, Lifecycle, RetentionMetrics, Segments

#: the sections, in the order the report shows them
SECTIONS = ("kpis", "over_time", "cohorts", "mrr", "lifecycle", "segments", "clv", "churn", "feedback", "actions",
            "loyalty", "data")

#: the share of customers whose part of the total CLV the report states
TOP_FRACTION = 0.1

#: the segments whose revenue share the report states (the best customers)
BEST_SEGMENTS = ("champions", "loyal")


@dataclass(frozen=True)
class ReportParams:
    """The period of the time series, whether to train a churn model when none is saved,
    and the phrasebook that words the churn reasons (default English)."""

    period: Literal["week", "month", "quarter"] = "month"
    train_if_missing: bool = True
    phrases: Phrasebook | None = None


@dataclass(frozen=True)
class ValueFacts:
    """Section 7: customers valued over the workspace's horizon, how concentrated that
    value is, the channels' LTV : CAC (when customers carry channels) and a holdout check
    on the last ``holdout_days`` of orders."""

    values: pd.DataFrame
    horizon_months: int
    median_clv: float
    top_share_pct: float
    top_fraction: float
    channels: pd.DataFrame | None
    healthy_channels: int
    holdout: HoldoutCheck
    calibration_end: dt.date


@dataclass(frozen=True)
class ChurnFacts:
    """Section 8: the saved model's training report, whether it was trained for this
    report, the scores with their reason kinds, and the high-risk customers."""

    training: dict
    trained_now: bool
    scores: pd.DataFrame
    high_risk: int
    high_risk_value: float


@dataclass(frozen=True)
class ActionFacts:
    """Section 10: every campaign that has run against its control group (conversion
    uplift with intervals, incremental revenue, cost, ROI), and the same per tool."""

    campaigns: Measurement
    tools: Measurement


@dataclass(frozen=True)
class DataFacts:
    """Section 12: what is loaded, every load, rejected rows, the definitions used and
    the versions that computed the report."""

    tables: list[TableInfo]
    loads: list[dict]
    rows_rejected: int
    settings: dict[str, str]
    definitions: dict[str, str]
    versions: dict[str, str]


@dataclass
class ReportData:
    """Everything the report shows. A section the data do not support is missing
    (None) and its reason is in ``unavailable``, keyed by section."""

    period: str
    workspace: str
    currency: str
    metrics: RetentionMetrics | None = None
    headline: dict | None = None
    verdict: Verdict | None = None
    cohorts: Cohorts | None = None
    lifecycle: Lifecycle | None = None
    funnels: Funnels | None = None
    segments: Segments | None = None
    best_segments: tuple[str, ...] = BEST_SEGMENTS
    value: ValueFacts | None = None
    churn: ChurnFacts | None = None
    nps_groups: pd.DataFrame | None = None
    actions: ActionFacts | None = None
    #: section 11: the loyalty program's statistics and its effect on retention
    loyalty: StatsResult | None = None
    data: DataFacts | None = None
    unavailable: dict[str, RetentioError] = field(default_factory=dict)


def _value(ws: Workspace) -> ValueFacts:
    import numpy as np

    from retentio.analytics.base import last_time
    from retentio.analytics.clv.from_orders import channel_value, value_concentration
    from retentio.services.clv import check_holdout, value_customers

    v = value_customers(ws).frame
    channels = channel_value(ws, v) if ws.is_loaded("customers") else None
    last = last_time(ws, "orders", "the CLV holdout check").normalize()
    calibration_end = (last - dt.timedelta(days=ws.settings.analysis.holdout_days)).date()
    return ValueFacts(
        values=v, horizon_months=ws.settings.analysis.clv_horizon_months,
        median_clv=float(np.median(v.clv)) if len(v) else 0.0,
        top_share_pct=value_concentration(v.clv, TOP_FRACTION), top_fraction=TOP_FRACTION,
        channels=channels, healthy_channels=int(channels.healthy.sum()) if channels is not None else 0,
        holdout=check_holdout(ws, calibration_end, last.date()), calibration_end=calibration_end)


def _churn(ws: Workspace, params: ReportParams, progress: Callable[[str], None]) -> ChurnFacts:
    from retentio.analytics.churn.train import load
    from retentio.data.errors import ModelMissing
    from retentio.services.churn import score_churn, train_churn

    trained_now = False
    try:
        _, training = load(ws)
    except ModelMissing:
        if not params.train_if_missing:
            raise
        progress("training the churn model")
        training = train_churn(ws, progress=progress)
        trained_now = True
    scores = score_churn(ws, phrases=params.phrases, with_groups=True).frame
    high = scores[scores.band == "high"]
    return ChurnFacts(training, trained_now, scores, len(high), float(high.value_at_risk.sum()))


def _actions(ws: Workspace) -> ActionFacts:
    from retentio.services.data import _store_in_use
    from retentio.services.measurement import MeasureParams, measure_campaigns

    if not _store_in_use(ws):  # the report never creates the store
        raise RetentioError("No campaign has run yet.")
    return ActionFacts(measure_campaigns(ws), measure_campaigns(ws, MeasureParams(by="tool")))


def _loyalty(ws: Workspace) -> StatsResult:
    from retentio.actions.loyalty.programs import list_programs
    from retentio.services.data import _store_in_use
    from retentio.services.loyalty import stats

    names = list_programs(ws.path)
    if not names or not _store_in_use(ws):  # the report never creates the store
        raise RetentioError("No loyalty program runs yet (retentio loyalty program add, then loyalty apply-orders).")
    return stats(ws, name=names[0])


def _data(ws: Workspace) -> DataFacts:
    import duckdb
    import ibis
    import lightgbm

    from retentio import __version__
    from retentio.analytics.metrics import DEFINITIONS
    from retentio.services.data import describe_tables

    loads = ws.load_history()
    st = ws.settings
    return DataFacts(
        tables=describe_tables(ws), loads=loads,
        rows_rejected=sum(int(x["rows_rejected"] or 0) for x in loads),
        settings={"activity window": f"{st.activity_window_days} days", "timezone": st.timezone,
                  "currency": st.currency, "engine": ws.engine},
        definitions={k: DEFINITIONS[k] for k in ("active (orders)", "CRR", "NPS")},
        versions={"retentio": __version__, "ibis": ibis.__version__, "duckdb": duckdb.__version__,
                  "lightgbm": lightgbm.__version__})


def report_data(ws: Workspace, params: ReportParams = ReportParams(),
                progress: Callable[[str], None] = lambda _m: None) -> ReportData:
    """Gather the report's facts section by section (``progress`` hears each)."""
    from retentio.analytics.metrics import nps_groups
    from retentio.analytics.trends import headline, seasonal_verdict
    from retentio.services.retention import (
        CohortParams,
        MetricsParams,
        cohort_retention,
        customer_lifecycle,
        customer_segments,
        funnels,
        retention_metrics,
    )

    if params.period not in ("week", "month", "quarter"):
        raise InvalidParameter("period", params.period, "week, month or quarter")
    out = ReportData(params.period, str(ws.path), ws.settings.currency)

    def gather(key: str, make: Callable[[], Any]) -> Any:
        progress(key)
        try:
            return make()
        except RetentioError as exc:  # the data do not support this section: say why, keep the rest
            out.unavailable[key] = exc
            return None

    out.metrics = gather("metrics", lambda: retention_metrics(ws, MetricsParams(period=params.period)))
    if out.metrics is not None:
        done = out.metrics.complete
        out.headline = headline(out.metrics.frame, params.period)
        if "churn_pct" in done and len(done) >= 2:
            out.verdict = seasonal_verdict(done.churn_pct, params.period)
    out.cohorts = gather("cohorts", lambda: cohort_retention(ws, CohortParams(period="month")))
    out.lifecycle = gather("lifecycle", lambda: customer_lifecycle(ws, params.period, complete_only=True))
    out.funnels = gather("funnel", lambda: funnels(ws))
    out.segments = gather("segments", lambda: customer_segments(ws))
    out.value = gather("clv", lambda: _value(ws))
    out.churn = gather("churn", lambda: _churn(ws, params, progress))
    if ws.is_loaded("surveys"):
        out.nps_groups = gather("feedback", lambda: nps_groups(ws))
    out.actions = gather("actions", lambda: _actions(ws))
    out.loyalty = gather("loyalty", lambda: _loyalty(ws))
    out.data = gather("data", lambda: _data(ws))
    return out


__all__ = ["SECTIONS", "ActionFacts", "ChurnFacts", "DataFacts", "ReportData", "ReportParams", "ValueFacts", "report_data"]
