"""The web app's Overview and "start a campaign for this list": the report's headline
KPIs and trends for one period and (optionally) one acquisition channel, and a churn-risk
playbook whose audience is an At-risk list's filters.

The KPIs are the report's own (:func:`retentio.services.retention.retention_metrics`
then :func:`retentio.analytics.trends.headline`, as
:func:`retentio.services.report.report_data` gathers them), without the rest of the
report (models, campaigns, loyalty), which would take seconds. Results are cached in
this process by the workspace, :meth:`Workspace.data_fingerprint` and the parameters.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retentio.data.errors import InvalidParameter, RetentioError
from retentio.services.memo import Memo

if TYPE_CHECKING:
    from retentio.data.workspace import Workspace
    from retentio.services.retention import RetentionMetrics

#: the periods the overview may show
PERIODS = ("week", "month", "quarter")
#: the customer column the overview's segment filter groups by
SEGMENT_COLUMN = "acquisition_channel"
#: extra cards beside the headline KPIs (the last complete period's value)
EXTRA_KPIS = ("aov", "mrr_end", "customers_new", "orders")

CACHE_SIZE = 24
_MEMO: Memo[Any] = Memo(CACHE_SIZE)


def clear_cache() -> None:
    _MEMO.clear()


def _cached(key: tuple, compute: Any) -> Any:
    return _MEMO.get(key, compute)


@dataclass(frozen=True)
class Overview:
    """The headline of one period and segment: ``kpis`` as
    :func:`retentio.analytics.trends.headline` gives them (kpi, value, previous,
    year_ago, change, up_is_good, benchmark) plus :data:`EXTRA_KPIS`; ``metrics`` the
    whole series (for the trend charts); ``segments`` the values the filter offers."""

    period: str
    segment: str | None
    period_start: str | None
    kpis: list[dict[str, Any]]
    metrics: RetentionMetrics | None
    segments: list[str]
    customers: int
    currency: str
    note: str | None


def segment_values(ws: Workspace) -> list[str]:
    """The acquisition channels customers carry (the overview's segment filter)."""

    def compute() -> list[str]:
        if not ws.is_loaded("customers"):
            return []
        t = ws.table("customers")
        if SEGMENT_COLUMN not in t.columns:
            return []
        col = t[SEGMENT_COLUMN].cast("string")
        values = t.select(v=col).filter(col.notnull()).distinct().to_pyarrow().column("v").to_pylist()
        return sorted(str(v) for v in values)

    return _cached(("segments", str(ws.path.resolve()), ws.data_fingerprint()), compute)


def _customers(ws: Workspace, segment: str | None = None) -> int:
    """Customers in the workspace — those acquired through ``segment`` when it is given."""
    if ws.is_loaded("customers"):
        t = ws.table("customers")
        if segment is not None:
            t = t.filter(t[SEGMENT_COLUMN] == segment)
        return int(t.count().execute())
    if any(ws.is_loaded(t) for t in ("orders", "subscriptions", "events")):
        return int(ws.customers().count().execute())
    return 0


def overview(ws: Workspace, period: str = "month", segment: str | None = None) -> Overview:
    """The Overview's KPIs and series (cached by the data's fingerprint and parameters).
    ``segment`` is an acquisition channel (:func:`segment_values`); the data not
    supporting metrics gives no KPIs and the reason in ``note``."""
    if period not in PERIODS:
        raise InvalidParameter("period", period, "week, month or quarter")
    segment = segment or None
    key = (str(ws.path.resolve()), ws.data_fingerprint())
    if segment is not None and segment not in segment_values(ws):
        raise InvalidParameter("segment", segment,
                               f"an acquisition channel: {', '.join(segment_values(ws)) or 'none in the data'}")
    return _cached(("overview", *key, period, segment), lambda: _overview(ws, period, segment))


def _overview(ws: Workspace, period: str, segment: str | None) -> Overview:
    import math

    from retentio.analytics.trends import headline
    from retentio.services.retention import MetricsParams, RetentionMetrics, retention_metrics

    currency = ws.settings.currency
    try:
        customers = _customers(ws, segment)
        m = retention_metrics(ws, MetricsParams(period=period, by=SEGMENT_COLUMN if segment else None))  # type: ignore[arg-type]
    except RetentioError as exc:
        return Overview(period, segment, None, [], None, segment_values(ws), 0, currency, str(exc))
    if segment is not None:
        frame = m.frame[m.frame.group == segment].drop(columns="group").reset_index(drop=True)
        m = RetentionMetrics(frame, m.period, m.activity_window_days, m.definition, m.engine, None)
    h = headline(m.frame, period)
    kpis = list(h["kpis"])
    done = m.complete.reset_index(drop=True)
    if not done.empty:
        last = len(done) - 1
        for name in EXTRA_KPIS:
            if name not in done:
                continue
            value = done[name].iloc[last]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            prev = done[name].iloc[last - 1] if last >= 1 else None
            prev = None if prev is None or (isinstance(prev, float) and math.isnan(prev)) else float(prev)
            kpis.append({"kpi": name, "value": float(value), "previous": prev, "year_ago": None,
                         "change": None if prev is None else float(value) - prev, "change_year": None,
                         "up_is_good": name != "customers_lost", "benchmark": None})
    note = None if h["period_start"] else "no complete period yet: the KPIs need one period that has ended"
    return Overview(period, segment, h["period_start"], kpis, m, segment_values(ws), customers, currency, note)


# ------------------------------------------------------------------------------ at-risk → playbook
def _list_name(band: str | None, today: dt.date) -> str:
    return f"at_risk_{band or 'all'}_{today.strftime('%Y%m%d')}"


def _toml_list(values: list[str]) -> str:
    import json

    return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in values) + "]"


def at_risk_playbook(ws: Workspace, *, band: str | None = None, segment: str | None = None,
                     channel: str | None = None, name: str | None = None, lang: str = "en",
                     today: dt.date | None = None) -> Path:
    """Write a ``churn_risk`` playbook whose audience is the At-risk list with these
    filters: the trigger's churn ``bands`` (every band when none), the audience's RFM
    ``segments`` and ``where = {acquisition_channel = [...]}``; exporting to CSV, so it
    sends nothing until someone changes the channel. ``name`` defaults to
    ``at_risk_BAND_YYYYMMDD`` (with ``_2``, ``_3``… when taken). Returns its path."""
    from retentio.actions.playbook_templates import playbook_text
    from retentio.actions.playbooks import parse_playbook, playbooks_dir
    from retentio.analytics.segments import SEGMENTS
    from retentio.services.customers import BANDS

    if band is not None and band not in BANDS:
        raise InvalidParameter("band", band, f"one of {', '.join(BANDS)}")
    if segment is not None and segment not in SEGMENTS:
        raise InvalidParameter("segment", segment, f"one of {', '.join(SEGMENTS)}")
    folder = playbooks_dir(ws.path)
    if name is None:
        base = _list_name(band, today or dt.date.today())
        name, i = base, 1
        while (folder / f"{name}.toml").exists():
            i += 1
            name = f"{base}_{i}"
    elif not re.fullmatch(r"[A-Za-z0-9_\-]{1,80}", name):
        raise InvalidParameter("name", name, "letters, digits, _ and - (at most 80)")
    path = folder / f"{name}.toml"
    if path.exists():
        raise RetentioError(f"{path} exists; nothing was written (choose another name)")
    text = playbook_text("churn_risk", name, "csv", lang)
    bands = [band] if band else list(BANDS)
    text, n = re.subn(r'(?m)^bands = \[.*\]$', f"bands = {_toml_list(bands)}", text, count=1)
    if n != 1:  # the template changed: say so rather than write a playbook for another audience
        raise RetentioError("the churn_risk playbook template has no trigger bands line")
    audience = []
    if segment:
        audience.append(f"segments = {_toml_list([segment])}")
    if channel:
        audience.append(f"where = {{ {SEGMENT_COLUMN} = {_toml_list([channel])} }}")
    if audience:
        text = text.replace("[audience]\n", "[audience]\n" + "\n".join(audience) + "\n", 1)
    described = ", ".join(f"{k} {v}" for k, v in (("band", band), ("segment", segment), ("channel", channel)) if v)
    text = text.replace('description = ""', "description = " + _toml_list([f"At-risk list: {described or 'every band'}"])[1:-1], 1)
    parse_playbook(text, path, name)  # what is written always reads back
    folder.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ segments, cohorts
def _records(frame: Any) -> list[dict[str, Any]]:
    """A frame's rows as JSON values (None for missing, ISO days for times)."""
    from retentio.services.customers import _plain

    return [_plain(r) for r in frame.to_dict(orient="records")]


def segments_summary(ws: Workspace) -> dict[str, Any]:
    """RFM segments as of the end of the data (``retentio segments``): per segment the
    customers, revenue, shares and the action it calls for (cached)."""
    from retentio.services.retention import customer_segments

    def compute() -> dict[str, Any]:
        result = customer_segments(ws)
        return {"as_of": str(result.as_of), "scoring": result.scoring, "note": result.note,
                "key_customers": result.key_customers, "sleeping": result.sleeping,
                "items": _records(result.summary)}

    return _cached(("rfm", str(ws.path.resolve()), ws.data_fingerprint(), ws.settings.activity_window_days), compute)


def cohorts(ws: Workspace, period: str = "month") -> dict[str, Any]:
    """Acquisition-cohort retention (``retentio cohorts``): one row per cohort and offset,
    and the size-weighted average curve (cached)."""
    from retentio.services.retention import CohortParams, cohort_retention

    if period not in PERIODS:
        raise InvalidParameter("period", period, "week, month or quarter")

    def compute() -> dict[str, Any]:
        result = cohort_retention(ws, CohortParams(period=period))  # type: ignore[arg-type]
        return {"period": result.period, "mode": result.mode, "source": result.source,
                "items": _records(result.frame), "average": _records(result.average_curve)}

    return _cached(("cohorts", str(ws.path.resolve()), ws.data_fingerprint(), period), compute)


__all__ = ["EXTRA_KPIS", "PERIODS", "SEGMENT_COLUMN", "Overview", "at_risk_playbook", "clear_cache", "cohorts", "overview",
           "segments_summary",
           "segment_values"]
