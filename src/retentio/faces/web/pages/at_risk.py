"""The At-risk page (``/at-risk?band=&segment=&channel=&offset=``): the customers of the
newest churn score snapshot, most value at risk first, with their reasons; its CSV export
(``/at-risk/export.csv``, contacts in full, audited ``export.at_risk``) and "Start a
campaign for this list" (POST ``/at-risk/campaign``): a churn-risk playbook whose
audience is the list's filters (:func:`retentio.services.overview.at_risk_playbook`),
audited ``playbook.create``, then its plan (``/campaigns/{name}/plan``).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from retentio.faces.web.context import web_of
from retentio.faces.web.i18n_app import APP_WORDS
from retentio.faces.web.pages import PAGE_HEADERS, page_language, render
from retentio.faces.web.pages.customers import csv_response, masked
from retentio.faces.web.security import need
from retentio.services.access import allowed
from retentio.services.accounts import Principal, audit

PAGE_SIZE = 50
EXPORT_COLUMNS = ("customer_id", "name", "email", "acquisition_channel", "segment", "band", "probability", "score",
                  "value_at_risk", "reasons")

Text = Annotated[str, Query(max_length=200)]


def _filters(band: str, segment: str, channel: str) -> dict[str, str | None]:
    return {"band": band or None, "segment": segment or None, "channel": channel or None}


def add_routes(app: FastAPI) -> None:
    from retentio.services.customers import at_risk

    @app.get("/at-risk", response_class=HTMLResponse, include_in_schema=False)
    def at_risk_page(request: Request, band: Text = "", segment: Text = "", channel: Text = "",
                     offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                     who: Principal = need("analytics")) -> Response:
        from retentio.analytics.segments import SEGMENTS
        from retentio.faces.report.i18n import Fmt
        from retentio.services.overview import segment_values

        lang = page_language(request, who)
        words = APP_WORDS[lang]
        chosen = _filters(band, segment, channel)
        with web_of(request).read() as ws:
            found = at_risk(ws, **chosen, limit=PAGE_SIZE, offset=offset)
            channels = segment_values(ws)
            f = Fmt(lang, ws.settings.currency)
        items = masked(found["items"], who.role)
        here = {k: v for k, v in (("band", band), ("segment", segment), ("channel", channel)) if v}
        prev_q = urlencode(here | {"offset": max(offset - PAGE_SIZE, 0)}) if offset > 0 else None
        next_q = urlencode(here | {"offset": offset + PAGE_SIZE}) if offset + PAGE_SIZE < found["total"] else None
        tabs = [(b, found["bands"][b], urlencode({k: v for k, v in here.items() if k != "band"} | {"band": b}))
                for b in ("high", "medium", "low")]
        return render(request, who, "at_risk.html.j2", words["risk_title"], active="/at-risk", found=found,
                      items=items, band=band, segment=segment, channel=channel, offset=offset, prev_q=prev_q,
                      next_q=next_q, tabs=tabs, segments=[(s, f.segment(s)) for s in SEGMENTS], channels=channels,
                      f=f, export_q=urlencode(here), can_export=allowed(who.role, "contacts"),
                      can_campaign=allowed(who.role, "campaigns.edit"),
                      all_q=urlencode({k: v for k, v in here.items() if k != "band"}))

    @app.get("/at-risk/export.csv", include_in_schema=False)
    def at_risk_export(request: Request, band: Text = "", segment: Text = "", channel: Text = "",
                       who: Principal = need("contacts")) -> Response:
        """The whole At-risk list with these filters, contacts in full (an audited export)."""
        chosen = _filters(band, segment, channel)
        rows: list[dict[str, Any]] = []
        with web_of(request).read() as ws:
            while True:
                page = at_risk(ws, **chosen, limit=1000, offset=len(rows))
                rows.extend(page["items"])
                if not page["items"] or len(rows) >= page["total"]:
                    break
        audit(web_of(request).store, who, "export.at_risk", None,
              {"rows": len(rows), **{k: v for k, v in chosen.items() if v}, "address": who.address})
        return csv_response(rows, EXPORT_COLUMNS, "at-risk.csv")

    @app.post("/at-risk/campaign", include_in_schema=False)
    def start_campaign(request: Request, band: Annotated[str, Form(max_length=20)] = "",
                       segment: Annotated[str, Form(max_length=200)] = "",
                       channel: Annotated[str, Form(max_length=200)] = "",
                       who: Principal = need("campaigns.edit")) -> Response:
        """Create a churn-risk playbook for this list's audience, then show its plan."""
        from retentio.services.overview import at_risk_playbook

        chosen = _filters(band, segment, channel)
        lang = page_language(request, who)
        with web_of(request).read() as ws:  # writes a playbook file only, not the analytics database
            path = at_risk_playbook(ws, band=chosen["band"], segment=chosen["segment"], channel=chosen["channel"],
                                    lang=lang)
        name = path.stem
        audit(web_of(request).store, who, "playbook.create", name,
              {"kind": "churn_risk", "source": "at-risk list", **{k: v for k, v in chosen.items() if v}})
        return RedirectResponse(f"/campaigns/{quote(name)}/plan", status_code=303, headers=PAGE_HEADERS)
