"""The campaigns API: playbooks, plans (dry runs), runs and their measured effect.

A run (``POST /campaigns/{name}/run``, permission ``campaigns.run``) records the run and
delivers its messages, as ``retentio campaign run NAME`` does, and is audited
(``campaign.run`` with the run id and counts).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel

from retentio.faces.web.api import ErrorBody
from retentio.faces.web.context import web_of
from retentio.faces.web.security import WebError, need
from retentio.services.access import mask_recipients
from retentio.services.accounts import Principal, audit

NAME_PATTERN = r"^[A-Za-z0-9_\-]{1,80}$"
PlaybookName = Annotated[str, Path(min_length=1, max_length=80, pattern=NAME_PATTERN,
                                   description="The playbook's name (playbooks/NAME.toml)")]
RunId = Annotated[int, Path(ge=1, le=2**53, description="The run's id")]
AsOf = Annotated[dt.date | None, Query(description="The business day (default: the day after the data's end)")]


def clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities as null, numpy scalars as Python, dates as text."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError, TypeError):
            pass
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    try:
        import pandas as pd

        if value is pd.NaT:
            return None
        if isinstance(value, pd.Timestamp):
            return value.isoformat()
    except ImportError:  # pragma: no cover
        pass
    return value


def playbook_error(exc: Exception) -> WebError:
    """A playbook that is not there (404) or cannot be used (422, naming the field)."""
    text = str(exc)
    if "no such playbook" in text:
        return WebError(404, "not_found", text, field="name")
    return WebError(422, "invalid_playbook", text, field=getattr(exc, "field", None))


# ---------------------------------------------------------------------- models
class PlaybookRow(BaseModel):
    name: str
    kind: str | None = None
    channel: str | None = None
    offer: str | None = None
    holdout_pct: float | None = None
    problem: str | None = None


class PlaybookList(BaseModel):
    total: int
    items: list[PlaybookRow]


class PlaybookDetail(BaseModel):
    name: str
    text: str
    playbook: dict[str, Any] | None = None
    problem: str | None = None
    field: str | None = None


class PlanCounts(BaseModel):
    triggered: int
    not_in_audience: int
    excluded: dict[str, int]
    already_acted_on: int
    not_persuadable: int
    eligible: int
    treatment: int
    control: int
    messages: int
    control_would_receive: int
    suppressed: dict[str, int]
    deferred: int
    estimated_cost: float


class SampleMessage(BaseModel):
    customer_id: str
    to: str | None = None
    subject: str | None = None
    text: str | None = None
    html: str | None = None


class PlanOut(BaseModel):
    campaign: str
    as_of: str
    counts: PlanCounts
    samples: list[SampleMessage]
    snapshot_id: int | None = None
    model_version: int | None = None


class RunOut(BaseModel):
    run_id: int
    campaign: str
    as_of: str
    treatment: int
    control: int
    sent: int
    failed: int
    retry: int
    deferred: int
    suppressed: dict[str, int]


class RunRow(BaseModel):
    run_id: int
    campaign: str
    as_of: str
    status: str
    started_at: str
    treatment: int
    control: int
    messages: dict[str, int]
    snapshot_id: int | None = None
    model_version: int | None = None


class RunList(BaseModel):
    total: int
    items: list[RunRow]


class Failure(BaseModel):
    customer_id: str | None = None
    to: str | None = None
    detail: str | None = None


class PromoCodes(BaseModel):
    issued: int
    redeemed: int


class RunDetail(BaseModel):
    run_id: int
    campaign: str | None = None
    as_of: str
    status: str
    counts: dict[str, Any]
    messages: dict[str, int]
    failures: list[Failure]
    promo_codes: PromoCodes
    snapshot_id: int | None = None
    model_version: int | None = None


class MeasurementOut(BaseModel):
    metric: str
    by: str | None = None
    level: float
    winsor_pct: float
    margin_basis: str
    adjustment: str
    data_end: str | None = None
    rows: list[dict[str, Any]]
    global_control: dict[str, Any] | None = None
    notes: list[str]


def plan_out(p: Any, role: str | None) -> PlanOut:
    """The plan as the API answers it, recipients masked for roles without contacts."""
    c = clean(p.counts)
    return PlanOut(campaign=p.name, as_of=p.as_of.isoformat(), counts=PlanCounts(**c),
                   samples=[SampleMessage(**{k: (None if v is None else str(v)) for k, v in s.items()
                                             if k in SampleMessage.model_fields})
                            for s in mask_recipients(clean(p.samples), role)],
                   snapshot_id=p.snapshot_id, model_version=p.model_version)


def run_detail(run: dict[str, Any], role: str | None) -> RunDetail:
    """The run as the API answers it, recipients masked for roles without contacts."""
    shown = clean(run)
    shown["failures"] = mask_recipients(shown.get("failures") or [], role)
    return RunDetail(**shown)


def measure(ws: Any, campaign: str | None = None, metric: str = "conversion", by: str | None = None,
            window: int | None = None) -> dict[str, Any]:
    """The measured effect (``services.measurement.measure_campaigns``) as JSON-safe data."""
    from retentio.services.measurement import MeasureParams, measure_campaigns

    m = measure_campaigns(ws, MeasureParams([campaign] if campaign else None, window, metric, by))
    return clean(m.as_dict())


def do_run(request: Request, who: Principal, name: str, as_of: dt.date | None = None) -> dict[str, Any]:
    """Run the campaign ``name`` (record, then deliver) and audit it; the run's counts."""
    from retentio.actions.playbooks import PlaybookError
    from retentio.services.campaigns import run_campaign

    web = web_of(request)
    with web.read() as ws:  # a run writes the store (and the CSV export), not the analytics database
        try:
            r = run_campaign(ws, name, as_of, env=web.env, wait_s=0.0)  # retries: `campaign send`
        except PlaybookError as exc:
            raise playbook_error(exc) from None
    out = clean(r.as_dict())
    audit(web.store, who, "campaign.run", name, out)
    return dict(out)


# ---------------------------------------------------------------------- routes
def add_routes(router: APIRouter) -> None:
    from retentio.actions.playbooks import PlaybookError

    @router.get("/campaigns", response_model=PlaybookList, tags=["campaigns"])
    def playbooks(request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50,
                  offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
                  who: Principal = need("campaigns.read")) -> PlaybookList:
        """The workspace's playbooks: kind, channel, offer, holdout — or the problem that
        keeps one from being read."""
        from retentio.services.campaigns import playbook_summaries

        with web_of(request).read() as ws:
            rows = playbook_summaries(ws)
        return PlaybookList(total=len(rows), items=[PlaybookRow(**r) for r in rows[offset:offset + limit]])

    @router.get("/campaigns/runs", response_model=RunList, tags=["campaigns"])
    def runs(request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50,
             offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
             who: Principal = need("campaigns.read")) -> RunList:
        """Every run, newest first, with its counts and its messages by status."""
        from retentio.services.campaigns import list_runs

        with web_of(request).read() as ws:
            rows = list_runs(ws)
        return RunList(total=len(rows), items=[RunRow(**clean(r)) for r in rows[offset:offset + limit]])

    @router.get("/campaigns/runs/{run_id}", response_model=RunDetail, tags=["campaigns"])
    def run(request: Request, run_id: RunId, who: Principal = need("campaigns.read")) -> RunDetail:
        """One run: its counts, messages by status, failures and promo codes."""
        from retentio.data.errors import InvalidParameter
        from retentio.services.campaigns import show_run

        with web_of(request).read() as ws:
            try:
                found = show_run(ws, run_id)
            except InvalidParameter as exc:
                raise WebError(404, "not_found", str(exc), field="run_id") from None
        return run_detail(found, who.role)

    @router.get("/campaigns/measure", response_model=MeasurementOut, tags=["campaigns"])
    def measured(request: Request,
                 campaign: Annotated[str | None, Query(min_length=1, max_length=80, pattern=NAME_PATTERN)] = None,
                 metric: Literal["conversion", "revenue", "retained"] = "conversion",
                 by: Literal["channel", "tool", "playbook", "segment"] | None = None,
                 window: Annotated[int | None, Query(ge=1, le=365)] = None,
                 who: Principal = need("campaigns.read")) -> MeasurementOut:
        """Did it work? Uplift against the control group with intervals, incremental
        revenue, cost and ROI, per campaign (or the breakdown) and in total."""
        from retentio.data.errors import InvalidParameter, RetentioError

        with web_of(request).read() as ws:
            try:
                return MeasurementOut(**measure(ws, campaign, metric, by, window))
            except InvalidParameter as exc:
                if exc.name == "campaign":
                    raise WebError(404, "not_found", str(exc), field="campaign") from None
                raise
            except RetentioError as exc:
                if "No campaign has customers to measure yet" in str(exc):
                    raise WebError(404, "not_measured", str(exc)) from None
                raise

    @router.get("/campaigns/{name}", response_model=PlaybookDetail, tags=["campaigns"])
    def playbook(request: Request, name: PlaybookName, who: Principal = need("campaigns.read")) -> PlaybookDetail:
        """A playbook's TOML text and, when it reads, its settings with defaults filled in."""
        from retentio.services.campaigns import playbook_text, read

        with web_of(request).read() as ws:
            try:
                text = playbook_text(ws, name)
            except PlaybookError as exc:
                raise playbook_error(exc) from None
            try:
                return PlaybookDetail(name=name, text=text, playbook=clean(read(ws, name).as_dict()))
            except PlaybookError as exc:
                return PlaybookDetail(name=name, text=text, problem=str(exc), field=exc.field)

    @router.get("/campaigns/{name}/plan", response_model=PlanOut, tags=["campaigns"])
    def plan(request: Request, name: PlaybookName, as_of: AsOf = None,
             who: Principal = need("campaigns.read")) -> PlanOut:
        """Dry run: who would get what, who not and why, the estimated cost, sample
        messages. Writes nothing."""
        from retentio.services.campaigns import plan_campaign

        with web_of(request).read() as ws:
            try:
                return plan_out(plan_campaign(ws, name, as_of), who.role)
            except PlaybookError as exc:
                raise playbook_error(exc) from None

    @router.post("/campaigns/{name}/run", response_model=RunOut, tags=["campaigns"],
                 responses={409: {"model": ErrorBody, "description": "Conflict"}})
    def run_now(request: Request, name: PlaybookName, as_of: AsOf = None,
                who: Principal = need("campaigns.run")) -> RunOut:
        """Record the run (assignments, codes, outbox) in one transaction, then send each
        message exactly once. Audited (``campaign.run``)."""
        return RunOut(**do_run(request, who, name, as_of))


__all__ = ["add_routes", "clean", "do_run", "measure", "plan_out", "playbook_error"]
