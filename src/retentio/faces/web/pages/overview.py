"""The Overview page (``/``): the report's headline KPIs for the last complete period,
with the previous period's and the trend charts, filtered by period and acquisition
channel; the charts are the report's Vega-Lite specs rendered to SVG on the server
(``/charts/NAME.svg``) and cached by the data's fingerprint and parameters.

Roles without ``analytics`` are sent to the first page of the navigation they may open;
a role with no page at all (``pos``, a till) gets a page saying it works through the API.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from retentio.faces.web.context import web_of
from retentio.faces.web.i18n_app import APP_WORDS, NAV
from retentio.faces.web.pages import PAGE_HEADERS, page_language, render
from retentio.faces.web.security import WebError, need
from retentio.services.access import allowed
from retentio.services.accounts import Principal
from retentio.services.memo import Memo

#: the charts the overview shows (name → the report section or our own)
CHARTS = ("retention", "revenue", "mrr")
SVG_CACHE_SIZE = 48
_SVGS: Memo[str] = Memo(SVG_CACHE_SIZE)

#: the card's number format per KPI: money, a count, or a rate with one decimal
MONEY_KPIS = ("revenue", "aov", "mrr_end")
COUNT_KPIS = ("customers_end", "customers_new", "orders")


def fmt_kpi(f: Any, kpi: str, value: float | None) -> str:
    """A KPI's value as its card shows it (the report's formatting)."""
    if value is None:
        return "—"
    if kpi in MONEY_KPIS:
        return str(f.money(value))
    if kpi in COUNT_KPIS:
        return str(f.num(value, 0))
    return str(f.num(value, 1))


def fmt_change(f: Any, kpi: str, value: float | None) -> str:
    if value is None:
        return ""
    if kpi in MONEY_KPIS:
        return ("+" if value > 0 else "") + str(f.money(value))
    return str(f.signed(value, 0 if kpi in COUNT_KPIS else 1))


def first_page(role: str | None) -> str | None:
    """The first page of the navigation ``role`` may open (None: no page at all)."""
    for path, _key, permission in NAV:
        if permission is None or allowed(role, permission):
            return path
    return None


def _svg(key: tuple, make: Any) -> str:
    return _SVGS.get(key, make)


def chart_spec(name: str, data: Any, lang: str) -> dict | None:
    """The Vega-Lite spec of chart ``name`` for an :class:`~retentio.services.overview.Overview`
    (the report's own for retention and MRR), or None when the data have nothing to draw."""
    import importlib

    import altair as alt

    from retentio.faces.report.i18n import Fmt
    from retentio.services.report import ReportData

    # the module (the package's ``build`` name is its function)
    build = importlib.import_module("retentio.faces.report.build")
    f = Fmt(lang, data.currency)
    if data.metrics is None:
        return None
    d = ReportData(data.period, "", data.currency, metrics=data.metrics)
    try:
        if name == "retention":
            section = build._over_time(d, f)
        elif name == "mrr":
            section = build._mrr(d, f)
        else:
            done = data.metrics.complete
            if done.empty or "revenue" not in done:
                return None
            frame = done[["period_start", "revenue"]]
            chart = alt.Chart(frame).mark_line(point=True).encode(
                x=alt.X("period_start:T", title=None), y=alt.Y("revenue:Q", title=f"{f.t['revenue']}, {f.currency}"),
                tooltip=["period_start:T", alt.Tooltip("revenue:Q", format=",.2f")]).properties(
                width=build.WIDTH, height=220)
            return dict(build._theme(chart).to_dict())
    except build.Unavailable:
        return None
    if not section.charts:
        return None
    return dict(build._theme(section.charts[0][1]).to_dict())


def add_routes(app: FastAPI) -> None:
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def overview_page(request: Request, period: Annotated[Literal["week", "month", "quarter"], Query()] = "month",
                      segment: Annotated[str | None, Query(max_length=200)] = None,
                      who: Principal = need(None)) -> Response:
        # the overview needs "analytics"; other roles land on their first page instead
        if not allowed(who.role, "analytics"):
            target = first_page(who.role)
            if target is not None and target != "/":
                return RedirectResponse(target, status_code=303, headers=PAGE_HEADERS)
            words = APP_WORDS[page_language(request, who)]
            return render(request, who, "overview_api_only.html.j2", words["ov_title"])
        from retentio.faces.report.i18n import Fmt
        from retentio.services.overview import overview

        lang = page_language(request, who)
        words = APP_WORDS[lang]
        with web_of(request).read() as ws:
            data = overview(ws, period, segment or None)
        f = Fmt(lang, data.currency)
        cards = [{"kpi": k["kpi"], "label": words.get(f"ov_kpi_{k['kpi']}", k["kpi"]), "value": k["value"],
                  "shown": fmt_kpi(f, k["kpi"], k["value"]), "previous": fmt_kpi(f, k["kpi"], k["previous"]),
                  "change": fmt_change(f, k["kpi"], k["change"]),
                  "good": None if k["change"] in (None, 0) else (k["change"] > 0) == k["up_is_good"]}
                 for k in data.kpis]
        from urllib.parse import urlencode

        query = urlencode({"period": period, "lang": lang, **({"segment": segment} if segment else {})})
        charts = [(name, words[f"ov_chart_{name}"], f"/charts/{name}.svg?{query}") for name in CHARTS
                  if name != "mrr" or (data.metrics is not None and "mrr_end" in data.metrics.frame)]
        return render(request, who, "overview.html.j2", words["ov_title"], active="/", data=data, cards=cards,
                      charts=charts, period=period, segment=segment or "", customers=f.num(data.customers, 0),
                      periods=("week", "month", "quarter"))

    @app.get("/charts/{name}.svg", include_in_schema=False)
    def chart(request: Request, name: Annotated[str, Path(max_length=40)],
              period: Annotated[Literal["week", "month", "quarter"], Query()] = "month",
              segment: Annotated[str | None, Query(max_length=200)] = None,
              lang: Annotated[Literal["en", "ru"] | None, Query()] = None,
              who: Principal = need("analytics")) -> Response:
        """A trend chart of the overview as SVG (cached by the data and parameters)."""
        if name not in CHARTS:
            raise WebError(404, "not_found", f"no chart {name!r} (known: {', '.join(CHARTS)})")
        from retentio.services.overview import overview

        language = lang or page_language(request, who)
        with web_of(request).read() as ws:
            key = (str(ws.path.resolve()), ws.data_fingerprint(), name, period, segment or None, language)
            data = overview(ws, period, segment or None)

        def make() -> str:
            import vl_convert as vlc

            spec = chart_spec(name, data, language)
            if spec is None:
                empty = APP_WORDS[language]["ov_chart_empty"]
                spec = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "width": 300, "height": 40,
                        "data": {"values": [{"t": empty}]}, "mark": {"type": "text", "fontSize": 13},
                        "encoding": {"text": {"field": "t", "type": "nominal"}}}
            tag: Any = {"en": "en-US", "ru": "ru-RU"}[language]
            return str(vlc.vegalite_to_svg(spec, format_locale=tag, time_format_locale=tag))

        svg = _svg(key, make)
        headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=300",
                   "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}
        return Response(svg, media_type="image/svg+xml", headers=headers)
