"""The loyalty pages: programs and their statistics, member lookup, a member's balance
per program with the ledger (newest first), and the manual adjustment (``loyalty.adjust``;
a reason is required; audited with the balance before and after)."""

from __future__ import annotations

import math
import uuid
from typing import Annotated, Any

from fastapi import FastAPI, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from retentio.faces.web.context import web_of
from retentio.faces.web.pages import PAGE_HEADERS, page_language, render
from retentio.faces.web.security import WebError, need
from retentio.services.access import allowed
from retentio.services.accounts import Principal

CustomerId = Annotated[str, Path(min_length=1, max_length=200)]
KPIS = ("members", "active_members", "issued", "redeemed", "expired", "outstanding", "liability",
        "redemption_rate", "breakage_rate")


def _words(request: Request, who: Principal) -> dict[str, str]:
    from retentio.faces.web.i18n_app import APP_WORDS

    return APP_WORDS[page_language(request, who)]


def _kpi(name: str, value: Any, f: Any) -> str:
    """A program statistic in the page's language (``f``: the report's formatter)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if name.endswith("_rate"):
        return str(f.pct(100 * float(value)))
    if name == "liability":
        return str(f.money(value))
    return str(f.num(int(value)))


def program_stats(ws: Any, name: str) -> Any:
    """The program's statistics up to the data's end — or up to today when the ledger has
    entries after the data (requests made through the till or this app)."""
    import datetime as dt

    from retentio.data.errors import RetentioError
    from retentio.services.loyalty import stats

    try:
        return stats(ws, name=name, effect=False).stats
    except RetentioError:
        raise
    except (IndexError, ValueError):  # movements after the orders' end: count up to today
        try:
            return stats(ws, name=name, effect=False, as_of=dt.date.today()).stats
        except (IndexError, ValueError) as exc:
            raise RetentioError(f"the statistics of {name} cannot be computed ({type(exc).__name__})") from None


def add_routes(app: FastAPI) -> None:
    from retentio.data.errors import RetentioError

    @app.get("/loyalty", response_class=HTMLResponse, include_in_schema=False)
    def loyalty_page(request: Request, who: Principal = need("loyalty.read")) -> HTMLResponse:
        from retentio.faces.report.i18n import Fmt
        from retentio.services.loyalty import program_summaries

        w = _words(request, who)
        blocks = []
        with web_of(request).read() as ws:
            f = Fmt(page_language(request, who), ws.settings.currency)
            programs = [p | {"expiry": f.count(p["expiry_days"], "day") if p.get("expiry_days") else p["expiry"],
                             "point_value": None if p["point_value"] is None else f.plain(p["point_value"])}
                        for p in program_summaries(ws)]
            for p in programs:
                if p.get("problem"):
                    continue
                try:
                    s = program_stats(ws, p["name"])
                except RetentioError as exc:
                    blocks.append({"name": p["name"], "error": str(exc), "kpis": []})
                    continue
                blocks.append({"name": p["name"], "error": None,
                               "kpis": [(w[f"loy_kpi_{k}"], _kpi(k, getattr(s, k), f)) for k in KPIS]})
        return render(request, who, "loyalty.html.j2", w["loy_title"], active="/loyalty", programs=programs,
                      stats=blocks)

    @app.get("/loyalty/members", response_class=HTMLResponse, include_in_schema=False)
    def lookup(request: Request, customer: Annotated[str | None, Query(max_length=200)] = None,
               who: Principal = need("loyalty.read")) -> Any:
        from urllib.parse import quote

        from retentio.services.loyalty import is_customer

        wanted = (customer or "").strip()
        if wanted:
            with web_of(request).read() as ws:
                if is_customer(ws, wanted):
                    return RedirectResponse(f"/loyalty/members/{quote(wanted, safe='')}", status_code=303,
                                            headers=PAGE_HEADERS)
        w = _words(request, who)
        return render(request, who, "loyalty_lookup.html.j2", w["loy_lookup"], status=404 if wanted else 200,
                      active="/loyalty", customer=wanted)

    def member_page(request: Request, who: Principal, customer_id: str, *, status: int = 200,
                    adjusted: dict[str, int] | None = None, error: str | None = None, error_field: str | None = None,
                    form: dict[str, Any] | None = None) -> HTMLResponse:
        from retentio.actions.loyalty.programs import list_programs
        from retentio.services.loyalty import is_customer, member_balances, member_history

        with web_of(request).read() as ws:
            balances = member_balances(ws, customer_id)
            if not balances and not is_customer(ws, customer_id):
                raise WebError(404, "unknown_customer", f"no customer {customer_id!r}", field="customer_id")
            entries = member_history(ws, customer_id)
            programs = list_programs(ws.path)
        w = _words(request, who)
        return render(request, who, "loyalty_member.html.j2", w["loy_member_title"].format(customer=customer_id),
                      status=status, active="/loyalty", customer=customer_id, balances=balances, entries=entries,
                      programs=programs, may_adjust=allowed(who.role, "loyalty.adjust"), adjusted=adjusted,
                      error=error, error_field=error_field, form_key=f"web:{uuid.uuid4().hex}",
                      form=form or {"points": "", "reason": "", "program": None})

    @app.get("/loyalty/members/{customer_id}", response_class=HTMLResponse, include_in_schema=False)
    def member(request: Request, customer_id: CustomerId,
               before: Annotated[int | None, Query(ge=-(2**53), le=2**53)] = None,
               after: Annotated[int | None, Query(ge=-(2**53), le=2**53)] = None,
               who: Principal = need("loyalty.read")) -> HTMLResponse:
        done = {"before": before, "after": after} if before is not None and after is not None else None
        return member_page(request, who, customer_id, adjusted=done)

    @app.post("/loyalty/members/{customer_id}/adjust", response_class=HTMLResponse, include_in_schema=False)
    def adjust(request: Request, customer_id: CustomerId,
               points: Annotated[str, Form(max_length=20)] = "",
               reason: Annotated[str, Form(max_length=200)] = "",
               program: Annotated[str | None, Form(max_length=80)] = None,
               key: Annotated[str | None, Form(max_length=200)] = None,
               who: Principal = need("loyalty.adjust")) -> Any:
        from urllib.parse import quote

        from retentio.faces.web.api.loyalty import MAX_POINTS, do_adjust

        w = _words(request, who)
        form = {"points": points, "reason": reason, "program": program}
        try:
            amount = int(points.strip())
        except ValueError:
            amount = 0
        if amount == 0 or abs(amount) > MAX_POINTS:
            return member_page(request, who, customer_id, status=422, error=w["loy_points_invalid"],
                               error_field="points", form=form)
        if not reason.strip():
            return member_page(request, who, customer_id, status=422, error=w["loy_reason_required"],
                               error_field="reason", form=form)
        try:
            r, before, _name, _key = do_adjust(request, who, customer_id, amount, reason.strip(), program or None,
                                               key or None)
        except WebError as exc:
            if exc.status == 404:
                raise
            return member_page(request, who, customer_id, status=exc.status, error=exc.message,
                               error_field=exc.field, form=form)
        target = f"/loyalty/members/{quote(customer_id, safe='')}?before={before}&after={int(r['available'])}"
        return RedirectResponse(target, status_code=303, headers=PAGE_HEADERS)


__all__ = ["add_routes"]
