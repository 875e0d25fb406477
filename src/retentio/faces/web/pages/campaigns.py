"""The campaigns pages: playbooks and recent runs; a playbook's text to view and edit
(saved only after the whole file is validated, errors by field, audited as
``playbook.edit``); a message previewed for a real customer; the plan (dry run) with the
audience, suppressed by reason and cost; the run (``campaigns.run``, audited as
``campaign.run``) and its page with the measured results (uplift, interval, ROI)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from retentio.faces.web.context import web_of
from retentio.faces.web.pages import PAGE_HEADERS, page_language, render
from retentio.faces.web.security import WebError, need
from retentio.services.access import allowed, mask_recipients
from retentio.services.accounts import Principal, audit

NAME_PATTERN = r"^[A-Za-z0-9_\-]{1,80}$"
Name = Annotated[str, Path(min_length=1, max_length=80, pattern=NAME_PATTERN)]
MAX_TEXT = 200_000


def _words(request: Request, who: Principal) -> dict[str, str]:
    from retentio.faces.web.i18n_app import APP_WORDS

    return APP_WORDS[page_language(request, who)]


def _pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:+.{digits}f} %"


def result_rows(measured: dict[str, Any]) -> list[dict[str, Any]]:
    """The measurement's rows worded for the run page (as ``campaign measure`` prints them)."""
    metric = measured["metric"]
    unit = metric != "revenue"
    rows = []
    for r in measured["rows"]:
        e = r.get(metric) or {}
        per, low, high = e.get("per_customer"), e.get("per_customer_low"), e.get("per_customer_high")
        if per is None:
            uplift, ci = "–", "–"
        elif unit:
            uplift = f"{100 * per:+.1f} pp"
            ci = "–" if low is None or high is None else f"[{100 * low:+.1f}, {100 * high:+.1f}]"
        else:
            uplift = f"{per:+,.1f}"
            ci = "–" if low is None or high is None else f"[{low:+,.1f}, {high:+,.1f}]"
        rev = r.get("revenue") or {}
        incr = rev.get("incremental")
        roi = r.get("roi")
        rows.append({
            "group": r.get("group"), "n_treatment": r.get("treatment_n"), "n_control": r.get("control_n"),
            "uplift_text": uplift, "ci_text": ci,
            "revenue_text": "–" if incr is None else f"{incr:+,.0f}",
            "cost_text": f"{r.get('cost') or 0:,.0f}",
            "roi_text": "–" if roi is None else (f"{_pct(roi, 0)} [{_pct(r.get('roi_low'), 0)}, "
                                                 f"{_pct(r.get('roi_high'), 0)}]"),
            "verdict": r.get("verdict") or ""})
    return rows


def add_routes(app: FastAPI) -> None:
    from retentio.actions.playbooks import PlaybookError
    from retentio.data.errors import InvalidParameter, RetentioError
    from retentio.faces.web.api.campaigns import clean, do_run, measure, playbook_error

    @app.get("/campaigns", response_class=HTMLResponse, include_in_schema=False)
    def campaigns_page(request: Request, who: Principal = need("campaigns.read")) -> HTMLResponse:
        from retentio.services.campaigns import list_runs, playbook_summaries

        with web_of(request).read() as ws:
            playbooks = playbook_summaries(ws)
            runs = list_runs(ws)[:20]
        w = _words(request, who)
        return render(request, who, "campaigns.html.j2", w["camp_title"], active="/campaigns",
                      playbooks=playbooks, runs=runs)

    @app.get("/campaigns/runs/{run_id}", response_class=HTMLResponse, include_in_schema=False)
    def run_page(request: Request, run_id: Annotated[int, Path(ge=1, le=2**53)],
                 who: Principal = need("campaigns.read")) -> HTMLResponse:
        from retentio.services.campaigns import show_run

        with web_of(request).read() as ws:
            try:
                run = clean(show_run(ws, run_id))
                run["failures"] = mask_recipients(run.get("failures") or [], who.role)
            except InvalidParameter as exc:
                raise WebError(404, "not_found", str(exc), field="run_id") from None
            results, not_measured = None, ""
            if run.get("campaign"):
                try:
                    measured = measure(ws, run["campaign"])
                    results = {"rows": result_rows(measured), "window_open": "window_open" in measured["notes"]}
                except RetentioError as exc:
                    not_measured = str(exc)
        w = _words(request, who)
        return render(request, who, "campaign_run.html.j2", w["camp_run_title"].format(run_id=run_id),
                      active="/campaigns", run=run, results=results, not_measured=not_measured)

    def playbook_page(request: Request, who: Principal, name: str, text: str, *, status: int = 200,
                      saved: bool = False, error: str | None = None, error_field: str | None = None) -> HTMLResponse:
        from retentio.services.campaigns import read

        problem = None
        if error is None:
            with web_of(request).read() as ws:
                try:
                    read(ws, name)
                except PlaybookError as exc:
                    problem = str(exc)
        w = _words(request, who)
        return render(request, who, "campaign_playbook.html.j2", w["camp_playbook_title"].format(name=name),
                      status=status, active="/campaigns", name=name, text=text, saved=saved, error=error,
                      error_field=error_field, problem=problem, may_edit=allowed(who.role, "campaigns.edit"),
                      may_run=allowed(who.role, "campaigns.run"))

    @app.get("/campaigns/{name}", response_class=HTMLResponse, include_in_schema=False)
    def playbook_view(request: Request, name: Name, saved: Annotated[int, Query(ge=0, le=1)] = 0,
                      who: Principal = need("campaigns.read")) -> HTMLResponse:
        from retentio.services.campaigns import playbook_text

        with web_of(request).read() as ws:
            try:
                text = playbook_text(ws, name)
            except PlaybookError as exc:
                raise playbook_error(exc) from None
        return playbook_page(request, who, name, text, saved=bool(saved))

    @app.post("/campaigns/{name}", response_class=HTMLResponse, include_in_schema=False)
    def playbook_save(request: Request, name: Name, text: Annotated[str, Form(max_length=MAX_TEXT)] = "",
                      who: Principal = need("campaigns.edit")) -> Any:
        from retentio.services.campaigns import playbook_text, save_playbook

        with web_of(request).read() as ws:
            try:
                playbook_text(ws, name)  # an existing playbook only (new ones: playbook new, at-risk list)
            except PlaybookError as exc:
                raise playbook_error(exc) from None
            try:
                saved = save_playbook(ws, name, text)
            except PlaybookError as exc:
                field = getattr(exc, "field", None)
                return playbook_page(request, who, name, text, status=422, error=str(exc), error_field=field)
        audit(web_of(request).store, who, "playbook.edit", name, saved.as_dict())
        return RedirectResponse(f"/campaigns/{name}?saved=1", status_code=303, headers=PAGE_HEADERS)

    @app.get("/campaigns/{name}/preview", response_class=HTMLResponse, include_in_schema=False)
    def preview(request: Request, name: Name,
                customer: Annotated[str | None, Query(max_length=200)] = None,
                who: Principal = need("campaigns.read")) -> HTMLResponse:
        from retentio.services.campaigns import playbook_text, preview_message

        message, error, status = None, None, 200
        with web_of(request).read() as ws:
            try:
                playbook_text(ws, name)
            except PlaybookError as exc:
                raise playbook_error(exc) from None
            if customer and customer.strip():
                try:
                    message = clean(preview_message(ws, name, customer.strip()))
                except InvalidParameter as exc:
                    error, status = str(exc), 404
                except RetentioError as exc:
                    error, status = str(exc), 422
        w = _words(request, who)
        return render(request, who, "campaign_preview.html.j2", w["camp_preview_title"].format(name=name),
                      status=status, active="/campaigns", name=name, customer=customer, message=message, error=error)

    @app.get("/campaigns/{name}/plan", response_class=HTMLResponse, include_in_schema=False)
    def plan(request: Request, name: Name, who: Principal = need("campaigns.read")) -> HTMLResponse:
        from retentio.services.campaigns import plan_campaign

        with web_of(request).read() as ws:
            try:
                p = plan_campaign(ws, name)
            except PlaybookError as exc:
                raise playbook_error(exc) from None
        w = _words(request, who)
        return render(request, who, "campaign_plan.html.j2", w["camp_plan_title"].format(name=name),
                      currency=web_of(request).ws.settings.currency,
                      active="/campaigns", name=name, as_of=p.as_of.isoformat(), c=clean(p.counts),
                      samples=mask_recipients(clean(p.samples), who.role), may_run=allowed(who.role, "campaigns.run"))

    @app.post("/campaigns/{name}/run", include_in_schema=False)
    def run(request: Request, name: Name, who: Principal = need("campaigns.run")) -> RedirectResponse:
        done = do_run(request, who, name)
        return RedirectResponse(f"/campaigns/runs/{done['run_id']}", status_code=303, headers=PAGE_HEADERS)


__all__ = ["add_routes", "result_rows"]
