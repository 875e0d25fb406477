"""The metrics API: the Overview's KPIs and series per period (optionally for one
acquisition channel), RFM segments and acquisition cohorts — the numbers of
``retentio metrics``, ``segments`` and ``cohorts`` and of the report."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from retentio.faces.web.context import web_of
from retentio.faces.web.security import need
from retentio.services.accounts import Principal

Period = Annotated[Literal["week", "month", "quarter"], Query()]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]


class Kpi(BaseModel):
    kpi: str
    value: float
    previous: float | None = None
    year_ago: float | None = None
    change: float | None = None
    change_year: float | None = None
    up_is_good: bool
    benchmark: str | None = None


class Metrics(BaseModel):
    """The headline KPIs of the last complete period and every period's metrics."""

    period: str
    segment: str | None = None
    period_start: str | None = None
    customers: int
    currency: str
    note: str | None = None
    kpis: list[Kpi]
    segments: list[str]
    total: int
    limit: int
    offset: int
    items: list[dict[str, Any]]


class SegmentRow(BaseModel):
    segment: str
    customers: int
    revenue: float | None = None
    recency_days: float | None = None
    frequency: float | None = None
    share_pct: float | None = None
    revenue_share_pct: float | None = None
    action: str | None = None


class SegmentList(BaseModel):
    as_of: str
    scoring: str | None = None
    note: str | None = None
    key_customers: int
    sleeping: int
    total: int
    items: list[SegmentRow]


class CohortList(BaseModel):
    period: str
    mode: str
    source: str
    total: int
    limit: int
    offset: int
    items: list[dict[str, Any]]
    average: list[dict[str, Any]]


def add_routes(router: APIRouter) -> None:
    @router.get("/metrics", response_model=Metrics, tags=["metrics"])
    def metrics(request: Request, period: Period = "month",
                segment: Annotated[str | None, Query(max_length=200)] = None, limit: Limit = 500,
                offset: Offset = 0, who: Principal = need("analytics")) -> Any:
        """Retention metrics per period (``items``, oldest first, paginated) and the headline
        KPIs of the last complete period with the previous period's; ``segment`` narrows to
        one acquisition channel (``segments`` lists them)."""
        from retentio.services.customers import _plain
        from retentio.services.overview import overview

        with web_of(request).read() as ws:
            data = overview(ws, period, segment or None)
        rows = [] if data.metrics is None else [_plain(r) for r in data.metrics.frame.to_dict(orient="records")]
        return {"period": data.period, "segment": data.segment, "period_start": data.period_start,
                "customers": data.customers, "currency": data.currency, "note": data.note, "kpis": data.kpis,
                "segments": data.segments, "total": len(rows), "limit": limit, "offset": offset,
                "items": rows[offset:offset + limit]}

    @router.get("/segments", response_model=SegmentList, tags=["metrics"])
    def segments(request: Request, who: Principal = need("analytics")) -> Any:
        """RFM segments as of the end of the data: customers, revenue and shares per
        segment, and the action each calls for."""
        from retentio.services.overview import segments_summary

        with web_of(request).read() as ws:
            found = segments_summary(ws)
        return found | {"total": len(found["items"])}

    @router.get("/cohorts", response_model=CohortList, tags=["metrics"])
    def cohorts(request: Request, period: Period = "month", limit: Limit = 500, offset: Offset = 0,
                who: Principal = need("analytics")) -> Any:
        """Acquisition-cohort retention: one row per cohort and offset (paginated), and
        the size-weighted average retention curve."""
        from retentio.services.overview import cohorts as cohort_table

        with web_of(request).read() as ws:
            found = cohort_table(ws, period)
        items = found["items"]
        return found | {"total": len(items), "limit": limit, "offset": offset,
                        "items": items[offset:offset + limit]}
