"""The Customers pages: search (``/customers?q=&offset=``), the CSV export of a search
(``/customers/export.csv``, contacts in full, audited) and one customer's profile
(``/customers/{customer_id}``: orders, churn risk with reasons, value, loyalty,
messages, surveys, tasks and a timeline of everything).

Email and phone are masked for roles without ``contacts``
(:func:`retentio.services.access.mask_contacts`); for roles with it, a search page (a
bulk read of contacts) is audited as ``customers.list`` and an export as
``export.customers``, with their row counts; one profile's view is not.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from retentio.faces.web.context import web_of
from retentio.faces.web.i18n_app import APP_WORDS
from retentio.faces.web.pages import page_language, render
from retentio.faces.web.security import WebError, need
from retentio.services.access import allowed, mask_contacts
from retentio.services.accounts import Principal, audit

#: rows per page of the search
PAGE_SIZE = 50
#: the most rows one CSV export holds
EXPORT_MAX = 100_000
#: events shown on the timeline
TIMELINE_ROWS = 150
#: the columns of the search's CSV export
EXPORT_COLUMNS = ("customer_id", "name", "email", "phone", "signup_date", "acquisition_channel", "orders", "revenue",
                  "last_order")


def csv_response(rows: Iterable[dict[str, Any]], columns: Iterable[str], filename: str) -> Response:
    """A CSV download (UTF-8 with BOM, so spreadsheet programs read Cyrillic right)."""
    out = io.StringIO()
    cols = list(columns)
    writer = csv.DictWriter(out, fieldnames=cols, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _cell(row.get(c)) for c in cols})
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store",
               "X-Content-Type-Options": "nosniff"}
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


def _cell(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        value = "; ".join(str(v) for v in value)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") and not _number(value):
        return "'" + value  # a spreadsheet would run it as a formula (CSV injection)
    return value


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def masked(rows: list[dict[str, Any]], role: str | None) -> list[dict[str, Any]]:
    return [mask_contacts(r, role) for r in rows]


def timeline(profile: dict[str, Any]) -> list[dict[str, Any]]:
    """Everything that happened to the customer, newest first: (at, kind, text)."""
    items: list[dict[str, Any]] = []

    def add(at: Any, kind: str, text: str) -> None:
        if at:
            items.append({"at": str(at)[:19].replace("T", " "), "kind": kind, "text": text})

    c = profile.get("customer") or {}
    add(c.get("signup_at"), "signup", str(c.get("acquisition_channel") or ""))
    for o in profile.get("orders", []):
        add(o.get("ordered_at"), "order", f"{o.get('order_id')} · {o.get('amount')} · {o.get('status') or ''}")
    for s in profile.get("subscriptions", []):
        add(s.get("started_at"), "subscription", f"{s.get('subscription_id')} · {s.get('plan') or ''}")
        add(s.get("ended_at"), "subscription_end", f"{s.get('subscription_id')} · {s.get('cancel_reason') or ''}")
    for e in profile.get("events", []):
        add(e.get("occurred_at"), "event", str(e.get("event_type")))
    for s in profile.get("surveys", []):
        add(s.get("answered_at"), "survey", f"{s.get('kind')} {s.get('score')} {s.get('comment') or ''}".strip())
    for t in profile.get("tickets", []):
        add(t.get("opened_at"), "ticket", str(t.get("topic") or ""))
    for m in profile.get("messages", []):
        add(m.get("sent_at") or m.get("not_before"), "message", f"{m.get('campaign')} · {m.get('channel')} · "
                                                                f"{m.get('status')}")
    for p in profile.get("loyalty", []):
        for e in p.get("entries") or []:
            add(e.get("created_at") or e.get("at"), "loyalty", f"{p.get('program')} · {e.get('kind', '')} "
                                                                f"{e.get('points', '')}")
    items.sort(key=lambda x: x["at"], reverse=True)
    return items[:TIMELINE_ROWS]


def columns_of(rows: list[dict[str, Any]], skip: tuple[str, ...] = ("customer_id",)) -> list[str]:
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols and k not in skip:
                cols.append(k)
    return cols


def add_routes(app: FastAPI) -> None:
    from retentio.services.customers import search_customers

    @app.get("/customers", response_class=HTMLResponse, include_in_schema=False)
    def customers_page(request: Request, q: Annotated[str, Query(max_length=200)] = "",
                       offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                       who: Principal = need("customers")) -> Response:
        words = APP_WORDS[page_language(request, who)]
        with web_of(request).read() as ws:
            found = search_customers(ws, q, limit=PAGE_SIZE, offset=offset,
                                     match_email=allowed(who.role, "contacts"))
        items = masked(found["items"], who.role)
        if allowed(who.role, "contacts") and items:  # a page of unmasked contacts: a bulk read, audited
            audit(web_of(request).store, who, "customers.list", q or None,
                  {"rows": len(items), "query": q, "offset": offset, "via": "page"})
        prev_offset = max(offset - PAGE_SIZE, 0) if offset > 0 else None
        next_offset = offset + PAGE_SIZE if offset + PAGE_SIZE < found["total"] else None
        return render(request, who, "customers.html.j2", words["cust_title"], active="/customers", q=q,
                      found=found, items=items, offset=offset, prev_offset=prev_offset, next_offset=next_offset,
                      shown_to=offset + len(items) if items else 0, can_export=allowed(who.role, "contacts"))

    @app.get("/customers/export.csv", include_in_schema=False)
    def customers_export(request: Request, q: Annotated[str, Query(max_length=200)] = "",
                         who: Principal = need("contacts")) -> Response:
        """Every customer matching the search, contacts in full (an audited export)."""
        rows: list[dict[str, Any]] = []
        with web_of(request).read() as ws:
            while len(rows) < EXPORT_MAX:
                page = search_customers(ws, q, limit=1000, offset=len(rows), match_email=True)
                rows.extend(page["items"])
                if not page["items"] or len(rows) >= page["total"]:
                    break
        audit(web_of(request).store, who, "export.customers", q or None,
              {"rows": len(rows), "query": q, "address": who.address})
        return csv_response(rows, EXPORT_COLUMNS, "customers.csv")

    @app.get("/customers/{customer_id}", response_class=HTMLResponse, include_in_schema=False)
    def customer_page(request: Request, customer_id: Annotated[str, Path(max_length=200)],
                      who: Principal = need("customers")) -> Response:
        from retentio.faces.report.i18n import Fmt
        from retentio.services.customers import UnknownCustomer, customer_profile

        lang = page_language(request, who)
        words = APP_WORDS[lang]
        with web_of(request).read() as ws:
            try:
                profile = customer_profile(ws, customer_id)
            except UnknownCustomer as exc:
                raise WebError(404, "not_found", str(exc)) from None
            currency = ws.settings.currency
        profile["customer"] = mask_contacts(profile["customer"], who.role)
        f = Fmt(lang, currency)
        c = profile["customer"]
        title = words["cust_profile_title"].format(name=c.get("name") or customer_id)
        lists = {k: (profile[k], columns_of(profile[k])) for k in ("orders", "subscriptions", "events", "surveys",
                                                                    "tickets", "messages", "campaigns", "tasks")}
        return render(request, who, "customer_profile.html.j2", title, active="/customers", p=profile, c=c, f=f,
                      lists=lists, timeline=timeline(profile), segment_name=(
                          f.segment(profile["segment"]["name"]) if profile.get("segment") else None))


__all__ = ["add_routes", "columns_of", "csv_response", "masked", "timeline"]
