"""The retention report: one self-contained HTML file (Vega-Lite charts with the Vega
JavaScript inlined from the installed vl-convert package, so nothing is fetched when it is
opened), twelve sections each with a takeaway written from its numbers, and PNG copies of
the charts on request. Every number comes from :func:`retentio.services.report.report_data`;
this module only charts, arranges and words them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import altair as alt
import numpy as np
import pandas as pd

from retentio.faces.report.i18n import (
    TEXT,
    Fmt,
    definition,
    effect_reason,
    reason_phrases,
    setting,
    thin_rfm_note,
    why_unavailable,
)
from retentio.services.report import SECTIONS, ReportData

if TYPE_CHECKING:
    from retentio.data.workspace import Workspace

PALETTE = ["#2f6690", "#d1495b", "#3a7d44", "#edae49", "#7b5ea7", "#00798c", "#9c6644", "#66a182", "#8d99ae",
           "#e07a5f", "#30638e"]
WIDTH = 620


@dataclass
class Section:
    key: str
    title: str
    takeaway: str = ""
    charts: list[tuple[str, alt.TopLevelMixin]] = field(default_factory=list)
    tables: list[tuple[list[str], list[list[str]]]] = field(default_factory=list)
    note: str = ""
    #: shown loud, above everything else in the section (e.g. a model not to be used)
    warning: str = ""


def _theme(chart):
    return chart.configure_range(category=PALETTE).configure_view(strokeWidth=0).configure_axis(
        labelFontSize=11, titleFontSize=12, grid=True, gridColor="#eee")


# ----------------------------------------------------------------------------- sections
class Unavailable(Exception):
    """The facts a section shows are missing or too few to say anything; ``reason`` says
    why: the analytics' message (worded for the report's language by
    :func:`~retentio.faces.report.i18n.why_unavailable`), or, with ``worded``, the
    report's own sentence in its language."""

    def __init__(self, reason: str, worded: bool = False):
        super().__init__(reason)
        self.reason, self.worded = reason, worded


def _need(d: ReportData, key: str, fact):
    """The fact a section shows, or :class:`Unavailable` with the reason the service gave."""
    if fact is None:
        exc = d.unavailable.get(key)
        raise Unavailable(str(exc) if exc is not None else "")
    return fact


def _complete(d: ReportData, f: Fmt) -> pd.DataFrame:
    """The complete periods of the metrics, or :class:`Unavailable` when there is none yet
    (all the data fall in the period still running)."""
    done = _need(d, "metrics", d.metrics).complete
    if done.empty:
        raise Unavailable(f.t["no_complete"].format(period=f.t.get(f"period_{d.period}", d.period)), worded=True)
    return done


def _kpis(d: ReportData, f: Fmt) -> Section:
    t = f.t
    h = _need(d, "metrics", d.headline)
    if h["period_start"] is None or not h["kpis"]:
        _complete(d, f)  # no complete period: say so
        raise Unavailable(t["na_section"], worded=True)
    s = Section("kpis", t["s1"])
    rows = []
    for k in h["kpis"]:
        fmt = f.money if k["kpi"] == "revenue" else (lambda v: f.num(v, 0)) if k["kpi"] == "customers_end" \
            else (lambda v: f.num(v, 1))
        bench = t.get(f"bench_{k['kpi']}", k["benchmark"]) if k["benchmark"] else ""
        rows.append([t[k["kpi"]], fmt(k["value"]), fmt(k["previous"]), fmt(k["year_ago"]), bench])
    s.tables.append(([t["kpi"], t["value"], t["previous"], t["year_ago"], t["benchmark"]], rows))
    crr = next((k for k in h["kpis"] if k["kpi"] == "crr_pct"), None)
    if crr and crr["change"] is not None:
        verb = t["rose"] if crr["change"] > 0 else t["fell"] if crr["change"] < 0 else t["held"]
        s.takeaway = t["k_up"].format(kpi=t["crr_pct"], verb=verb, value=f.num(crr["value"], 1),
                                      delta=f.signed(crr["change"]))
    s.note = f"{t['period']}: {h['period_start']}"
    return s


def _over_time(d: ReportData, f: Fmt) -> Section:
    t = f.t
    s = Section("over_time", t["s2"])
    done = _complete(d, f)
    long = done.melt(id_vars=["period_start"], value_vars=[c for c in ("crr_pct", "churn_pct") if c in done],
                     var_name="metric", value_name="pct").dropna()
    long["metric"] = long.metric.map({"crr_pct": t["crr_pct"], "churn_pct": t["churn_pct"]})
    chart = alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("period_start:T", title=None), y=alt.Y("pct:Q", title="%"),
        color=alt.Color("metric:N", title=None, legend=alt.Legend(orient="top")),
        tooltip=["period_start:T", "metric:N", alt.Tooltip("pct:Q", format=".1f")]).properties(width=WIDTH, height=260)
    s.charts.append(("retention_over_time", chart))
    v = d.verdict
    if v is None or v.kind == "short":
        s.takeaway = t["v_short"].format(n=len(done), periods=f.count(len(done), "period"))
    else:
        s.takeaway = t[f"v_{v.kind}"].format(delta=f.signed(v.change))
    return s


def _cohorts(d: ReportData, f: Fmt) -> Section:
    t = f.t
    s = Section("cohorts", t["s3"])
    cohorts = _need(d, "cohorts", d.cohorts)
    c = cohorts.frame[cohorts.frame.complete]
    avg = cohorts.average_curve
    if c.empty or not (avg.offset > 0).any():  # only the first month of each cohort: nothing to retain yet
        raise Unavailable(t["cohort_short"], worded=True)
    # the heatmap shows the last two years of cohorts: more rows would not be readable
    recent = c[c.cohort >= sorted(c.cohort.unique())[-24]] if c.cohort.nunique() > 24 else c
    heat = alt.Chart(recent).mark_rect().encode(
        x=alt.X("offset:O", title=t["offset"]), y=alt.Y("cohort:O", title=t["cohort"]),
        color=alt.Color("retention_pct:Q", title=t["retention"], scale=alt.Scale(scheme="blues")),
        tooltip=["cohort:O", "offset:O", "cohort_size:Q", alt.Tooltip("retention_pct:Q", format=".1f")],
    ).properties(width=WIDTH, height=360)
    s.charts.append(("cohort_heatmap", heat))
    curve = alt.Chart(avg[avg.offset > 0]).mark_line(point=True).encode(
        x=alt.X("offset:Q", title=t["offset"]), y=alt.Y("retention_pct:Q", title=t["retention"]),
        tooltip=["offset:Q", alt.Tooltip("retention_pct:Q", format=".1f")]).properties(width=WIDTH, height=220)
    s.charts.append(("retention_curve", curve))
    rev = recent.groupby("cohort").cumulative_revenue_per_customer.max().reset_index()
    bars = alt.Chart(rev).mark_bar().encode(
        x=alt.X("cohort:O", title=t["cohort"]), y=alt.Y("cumulative_revenue_per_customer:Q", title=f.currency),
        tooltip=["cohort:O", alt.Tooltip("cumulative_revenue_per_customer:Q", format=",.2f")],
    ).properties(width=WIDTH, height=200)
    s.charts.append(("revenue_per_customer", bars))
    k = 3 if (avg.offset == 3).any() else int(avg.offset.max())
    s.takeaway = t["cohort_take"].format(pct=f.pct(float(avg.loc[avg.offset == k, "retention_pct"].iloc[0])), k=k,
                                         periods=f.count(k, "period"))
    return s


def _mrr(d: ReportData, f: Fmt) -> Section:
    t = f.t
    s = Section("mrr", t["s4"])
    m = _need(d, "metrics", d.metrics)
    if "mrr_start" not in m.frame:
        s.takeaway = t["no_subs"]
        return s
    done = _complete(d, f)
    cols = ["mrr_new", "mrr_expansion", "mrr_reactivated", "mrr_contraction", "mrr_churned"]
    long = done.melt(id_vars=["period_start"], value_vars=cols, var_name="movement", value_name="mrr")
    long.loc[long.movement.isin(["mrr_contraction", "mrr_churned"]), "mrr"] *= -1
    long["movement"] = long.movement.str.replace("mrr_", "").map(lambda k: t.get(k, k))
    chart = alt.Chart(long).mark_bar().encode(
        x=alt.X("period_start:T", title=None), y=alt.Y("sum(mrr):Q", title="MRR"),
        color=alt.Color("movement:N", title=None, legend=alt.Legend(orient="top")),
        tooltip=["period_start:T", "movement:N", alt.Tooltip("mrr:Q", format=",.2f")]).properties(width=WIDTH, height=260)
    s.charts.append(("mrr_movements", chart))
    last = done.iloc[-1]
    s.takeaway = t["mrr_take"].format(a=f.money(last.mrr_start), b=f.money(last.mrr_end), c=f.money(last.mrr_churned))
    return s


def _lifecycle(d: ReportData, f: Fmt) -> Section:
    t = f.t
    s = Section("lifecycle", t["s5"])
    lc = _need(d, "lifecycle", d.lifecycle).frame
    long = lc.melt(id_vars=["period_start"], value_vars=["new", "retained", "reactivated", "dormant"],
                   var_name="state", value_name="customers")
    long.loc[long.state == "dormant", "customers"] *= -1
    long["state"] = long.state.map(t)
    chart = alt.Chart(long).mark_bar().encode(
        x=alt.X("period_start:T", title=None), y=alt.Y("customers:Q", title=t["count"]),
        color=alt.Color("state:N", title=None, legend=alt.Legend(orient="top")),
        tooltip=["period_start:T", "state:N", "customers:Q"]).properties(width=WIDTH, height=260)
    if not lc.empty:  # no complete period yet: no bars to draw
        s.charts.append(("lifecycle", chart))
    funnels = _need(d, "funnel", d.funnels)
    # the steps worded in the report's language ("order 2" → "2-й заказ")
    steps = {str(r.step): t["order_step"].format(k=int(r.order_number)) for r in funnels.orders.itertuples()}
    orders = funnels.orders.assign(step=funnels.orders.step.map(steps))
    fchart = alt.Chart(orders).mark_bar().encode(
        x=alt.X("step:N", sort=None, title=None), y=alt.Y("customers:Q", title=t["count"]),
        tooltip=["step:N", "customers:Q", alt.Tooltip("conversion_pct:Q", format=".1f"), "median_days:Q"],
    ).properties(width=WIDTH, height=220)
    s.charts.append(("repeat_funnel", fchart))
    drop = funnels.largest_drop
    if drop is not None and drop.lost > 0:
        a, b = steps.get(drop.previous_step, drop.previous_step), steps.get(drop.step, drop.step)
        s.takeaway = t["funnel_take"].format(a=a, b=b, n=f.num(drop.lost), customers=f.count(drop.lost, "customer"),
                                             pct=f.pct(drop.lost_pct))
    elif len(orders) > 1:  # nobody lost between the steps there are: name no drop
        s.takeaway = t["funnel_flat"].format(a=orders.step.iloc[0], b=orders.step.iloc[-1])
    elif len(orders) == 1:
        s.takeaway = t["funnel_single"]
    return s


def _segments(d: ReportData, f: Fmt) -> Section:
    t = f.t
    s = Section("segments", t["s6"])
    seg = _need(d, "segments", d.segments)
    summ = seg.summary[seg.summary.customers > 0]
    if summ.empty:
        raise Unavailable(t["na_section"], worded=True)
    summ = summ.assign(action=[f.segment_action(r.segment, r.action) for r in summ.itertuples()],
                       segment=summ.segment.map(f.segment))
    chart = alt.Chart(summ[["segment", "recency_days", "frequency", "customers", "revenue"]]).mark_circle(
        opacity=0.8).encode(
        x=alt.X("recency_days:Q", title=t["recency"], scale=alt.Scale(reverse=True)),
        y=alt.Y("frequency:Q", title=t["orders"]),
        size=alt.Size("customers:Q", title=t["count"], scale=alt.Scale(range=[60, 2400])),
        color=alt.Color("segment:N", title=t["segment"], legend=alt.Legend(columns=2)),
        tooltip=["segment:N", "customers:Q", alt.Tooltip("revenue:Q", format=",.0f")]).properties(width=WIDTH, height=300)
    s.charts.append(("rfm_map", chart))
    s.tables.append(([t["segment"], t["customers"], t["share"], t["revenue"], t["action"]],
                     [[r.segment, f.num(r.customers), f.pct(r.share_pct), f.money(r.revenue), r.action]
                      for r in summ.itertuples()]))
    big = summ.loc[summ.customers.idxmax()]
    s.takeaway = t["rfm_take"].format(seg=big.segment, n=f.num(big.customers),
                                      customers=f.count(big.customers, "customer"),
                                      top=" + ".join(f.segment(b) for b in d.best_segments),
                                      share=f.pct(seg.revenue_share_pct(*d.best_segments)))
    if getattr(seg, "scoring", "quintiles") != "quintiles":  # too few customers for quintiles: say how they were scored
        s.note = thin_rfm_note(f, len(seg.customers), seg.activity_window_days, getattr(seg, "note", None) or "")
    return s


def _clv(d: ReportData, f: Fmt) -> Section:
    t = f.t
    s = Section("clv", t["s7"])
    value = _need(d, "clv", d.value)
    v = value.values
    # binned here: a chart carries 40 bars, not one row per customer
    values = v.clv[v.clv > 0].to_numpy()
    upper = float(np.quantile(values, 0.99)) if len(values) else 1.0
    counts, edges = np.histogram(np.clip(values, 0, upper), bins=40, range=(0, upper))
    bins = pd.DataFrame({"from": edges[:-1], "to": edges[1:], "customers": counts})
    hist = alt.Chart(bins).mark_bar().encode(
        x=alt.X("from:Q", title=t["clv_axis"].format(cur=f.currency)), x2="to:Q",
        y=alt.Y("customers:Q", title=t["count"]), tooltip=["from:Q", "to:Q", "customers:Q"],
    ).properties(width=WIDTH, height=220)
    s.charts.append(("clv_distribution", hist))
    top = v.sort_values("clv", ascending=False).head(10)
    s.tables.append(([t["customer"], "P(alive)", "CLV"],
                     [[r.customer_id, f.pct(100 * r.p_alive), f.money(r.clv)] for r in top.itertuples()]))
    s.takeaway = t["clv_take"].format(median=f.money(value.median_clv), share=f.pct(value.top_share_pct),
                                      months=value.horizon_months)
    ch = value.channels
    if ch is not None:
        s.tables.append(([t["channel"], t["customers"], t["cac"], t["ltv"], t["ratio"], t["romi"]],
                         [[str(r.acquisition_channel), f.num(r.customers), f.money(r.cac), f.money(r.ltv),
                           f.num(r.ltv_to_cac, 1) if pd.notna(r.ltv_to_cac) else "—",
                           f.num(r.romi_pct, 0) if pd.notna(r.romi_pct) else "—"] for r in ch.itertuples()]))
        s.note = t["cac_take"].format(ok=value.healthy_channels, n=len(ch), channels=f.count(len(ch), "channel"))
    long = value.holdout.tracking.melt(id_vars=["date", "holdout"], value_vars=["actual", "predicted"],
                                       var_name="series", value_name="repeat_purchases")
    long["series"] = long.series.map(t)
    track = alt.Chart(long).mark_line().encode(
        x=alt.X("date:T", title=None), y=alt.Y("repeat_purchases:Q", title=t["cum_repeat"]),
        color=alt.Color("series:N", title=None, legend=alt.Legend(orient="top")),
        strokeDash=alt.StrokeDash("series:N", title=None),
    ).properties(width=WIDTH, height=240)
    rule = alt.Chart(pd.DataFrame({"date": [str(value.calibration_end)]})).mark_rule(color="#888").encode(x="date:T")
    s.charts.append(("clv_holdout", track + rule))
    return s


def _churn(d: ReportData, f: Fmt) -> Section:
    t = f.t
    s = Section("churn", t["s8"])
    churn = _need(d, "churn", d.churn)
    report, scored = churn.training, churn.scores
    names = {"lightgbm": t["model_lgbm"], "logistic": t["model_lr"], "average": t["model_avg"]}
    chosen = report.get("model", "lightgbm")  # models trained before the choice existed are trees
    cands = report.get("candidates") or [{"model": "lightgbm", "roc_auc": report["roc_auc"], "chosen": True},
                                         {"model": "logistic", "roc_auc": report["logistic_roc_auc"], "chosen": False}]
    q = pd.DataFrame([{"model": names[c["model"]] + (f" ({t['chosen']})" if c["chosen"] else ""),
                       "roc_auc": c["roc_auc"]} for c in cands]
                     + [{"model": t["model_recency"], "roc_auc": report["baseline_roc_auc"]}])
    s.charts.append(("churn_quality", alt.Chart(q).mark_bar(clip=True).encode(
        x=alt.X("roc_auc:Q", scale=alt.Scale(domain=[0.5, 1]), title=t["auc_oot"]),
        y=alt.Y("model:N", sort=None, title=None), tooltip=["model:N", alt.Tooltip("roc_auc:Q", format=".3f")],
    ).properties(width=WIDTH, height=110)))
    cal = pd.DataFrame(report["calibration"])
    diag = alt.Chart(pd.DataFrame({"x": [0, 1], "y": [0, 1]})).mark_line(color="#aaa", strokeDash=[4, 4]).encode(
        x="x:Q", y="y:Q")
    s.charts.append(("churn_calibration", (diag + alt.Chart(cal).mark_line(point=True).encode(
        x=alt.X("predicted:Q", title=t["predicted"]), y=alt.Y("observed:Q", title=t["observed"]),
        tooltip=["bin:N", "customers:Q"])).properties(width=300, height=260)))
    kinds = pd.Series([g[0] for g in scored.reason_groups if g]).value_counts().head(10)
    kinds = kinds.rename_axis("reason").reset_index(name="customers")
    kinds["reason"] = kinds.reason.map(f.reason_group)
    s.charts.append(("churn_reasons", alt.Chart(kinds).mark_bar().encode(
        x=alt.X("customers:Q", title=t["count"]), y=alt.Y("reason:N", sort="-x", title=None),
    ).properties(width=WIDTH, height=240)))
    top = scored.head(15)
    s.tables.append(([t["customer"], t["probability"], t["at_risk"], t["reasons"]],
                     [[r.customer_id, f.pct(100 * r.churn_probability, 0), f.money(r.value_at_risk),
                       "; ".join(r.reasons)] for r in top.itertuples()]))
    others = ", ".join(f"{names[c['model']]} {f.num(c['roc_auc'], 3)}" for c in cands if not c["chosen"])
    s.takeaway = t["churn_take"].format(model=names[chosen], auc=f.num(report["roc_auc"], 3),
                                        base=f.num(report["baseline_roc_auc"], 3), others=others,
                                        n=f.num(churn.high_risk),
                                        customers=f.count(churn.high_risk, "customer"),
                                        var=f.money(churn.high_risk_value))
    label = report["label"]
    # the analytics state the definition in English; other languages word it from the same fields
    worded = t.get(f"label_{label['kind']}")
    s.note = worded.format(**label) if worded else label["definition"]
    if report.get("selection"):
        margin = report["selection"].get("margin")
        s.note += " " + t["churn_choice"].format(
            model=names[chosen], cal=report["plan"]["calibration"] if report.get("plan") else "",
            margin=f.num(margin, 3) if margin is not None else "—")
    if report.get("warning"):
        n = report.get("n_customers", 0)
        s.warning = t["churn_weak"].format(auc=f.num(report["roc_auc"], 2), n=f.count(n, "customer"), num=f.num(n))
    return s


@dataclass
class FeedbackInsights:
    """What the feedback section shows beyond the NPS figures: themes of the comments and
    exit reasons (:mod:`retentio.services.feedback_insights`), the follow-up tasks' SLA
    figures (:func:`retentio.services.feedback_tasks.sla_report`), or why each is missing."""

    themes: object = None
    exits: object = None
    #: the SLA report, None when no follow-up task has been opened
    sla: dict | None = None
    #: the key of the report's own sentence saying why (missing data), else None
    themes_error: str | None = None
    exits_error: str | None = None


def _feedback_insights(ws: Workspace) -> FeedbackInsights:
    """Gather the themes and exit reasons; a missing table or too few comments is said in
    the section, never an error of the whole report."""
    from retentio.data.errors import RetentioError
    from retentio.services.feedback_insights import SURVEY_KINDS, ThemesParams, exit_reasons, feedback_themes

    out = FeedbackInsights()
    try:
        out.themes = feedback_themes(ws, ThemesParams(include=SURVEY_KINDS))
    except RetentioError:  # no survey comments (the one error the data can give)
        out.themes_error = "fb_no_comments"
    try:
        out.exits = exit_reasons(ws)
    except RetentioError:  # no subscriptions
        out.exits_error = "fb_no_subs"
    from retentio.services.feedback_tasks import sla_report

    try:
        sla = sla_report(ws)
    except RetentioError:  # a store that cannot be read: the section says nothing of tasks
        sla = None
    out.sla = sla if sla and sla["totals"]["opened"] else None
    return out


def _feedback(d: ReportData, f: Fmt, extra: FeedbackInsights | None = None) -> Section:
    t = f.t
    s = Section("feedback", t["s9"])
    m = _need(d, "metrics", d.metrics)
    takeaways: list[str] = []
    if "nps" not in m.frame or d.nps_groups is None:
        if "feedback" in d.unavailable and extra is None:
            raise Unavailable(str(d.unavailable["feedback"]))
        takeaways.append(t["no_surveys"])
    else:
        done = _complete(d, f)
        long = done.melt(id_vars=["period_start"], value_vars=["nps", "csat_pct"], var_name="metric",
                         value_name="score").dropna()
        long["metric"] = long.metric.map({"nps": "NPS", "csat_pct": t["csat"]})
        s.charts.append(("feedback_over_time", alt.Chart(long).mark_line(point=True).encode(
            x=alt.X("period_start:T", title=None), y=alt.Y("score:Q", title=None),
            color=alt.Color("metric:N", title=None, legend=alt.Legend(orient="top"))).properties(width=WIDTH,
                                                                                                height=240)))
        groups = d.nps_groups.copy()
        groups["group"] = groups.group.map(t)
        s.charts.append(("nps_groups", alt.Chart(groups).mark_arc(innerRadius=50).encode(
            theta="answers:Q", color=alt.Color("group:N", title=None, scale=alt.Scale(
                domain=[t["promoters"], t["passives"], t["detractors"]], range=["#3a7d44", "#edae49", "#d1495b"])),
            tooltip=["group:N", "answers:Q"]).properties(width=260, height=260)))
        last = done.iloc[-1]
        takeaways.append(t["fb_take"].format(nps=f.num(last.nps, 1), resp=f.num(last.nps_responses),
                                             answers=f.count(last.nps_responses, "answer")))
    if extra is not None:
        takeaways += _themes_part(s, f, extra)
        takeaways += _exits_part(s, f, extra)
        takeaways += _sla_part(s, f, extra)
    s.takeaway = " ".join(takeaways)
    return s


def _themes_part(s: Section, f: Fmt, extra: FeedbackInsights) -> list[str]:
    """The themes table (customers' words are text: the template escapes them)."""
    t = f.t
    th = extra.themes
    if th is None or th.themes.empty:  # type: ignore[attr-defined]
        return [t["fb_themes_none"].format(reason=t[extra.themes_error or "fb_few_comments"])]
    frame = th.themes  # type: ignore[attr-defined]
    rows = []
    for r in frame.sort_values(["count", "theme"], ascending=[False, True]).head(12).itertuples():
        rows.append([r.label, r.language, f.num(r.count), f.pct(100 * r.share, 1),
                     f.num(r.nps, 0) if r.nps == r.nps else "—", t[f"fb_{r.sentiment}"],
                     f"{t['fb_' + r.trend]} ({f.signed(r.trend_pp)} {t['fb_pp']})", r.examples[0] if r.examples else ""])
    s.tables.append(([t["fb_theme"], t["fb_lang"], t["fb_comments"], t["fb_share"], "NPS", t["fb_sentiment"],
                      t["fb_trend"], t["fb_example"]], rows))
    s.note = (s.note + " " if s.note else "") + t["fb_themes_note"].format(
        n=f.count(th.n_comments, "comment"), num=f.num(th.n_comments))  # type: ignore[attr-defined]
    top = frame.sort_values(["count", "theme"], ascending=[False, True]).iloc[0]
    scored = frame[frame.nps.notna()]
    if scored.empty:
        return []
    worst = scored.sort_values(["nps", "theme"]).iloc[0]
    return [t["fb_themes_take"].format(top=top.label, top_n=f.count(top["count"], "comment"),
                                       worst=worst.label, nps=f.num(worst.nps, 0),
                                       worst_n=f.count(worst["count"], "comment"))]


def _sla_part(s: Section, f: Fmt, extra: FeedbackInsights) -> list[str]:
    """Follow-up tasks: opened, closed, share closed within SLA, median time to close,
    overdue — in total and per period — and the observational follow-up comparison."""
    t = f.t
    if extra.sla is None:
        return [t["fb_sla_none"]]
    tot = extra.sla["totals"]

    def share(x: float) -> str:
        return f.pct(100 * x, 0) if x == x else "—"

    def hours(x: float) -> str:
        return f.num(x, 1) if x == x else "—"

    s.tables.append(([t["fb_sla_period"], t["fb_sla_opened"], t["fb_sla_closed"], t["fb_sla_within"], t["fb_sla_median"],
                      t["fb_sla_overdue"]],
                     [[r["period_start"], f.num(r["opened"]), f.num(r["closed"]), share(r["within_sla"]),
                       hours(r["median_hours_to_close"]), f.num(r["overdue_open"])]
                      for r in extra.sla["periods"][-6:]]))
    out = [t["fb_sla_take"].format(opened=f.count(tot["opened"], "task"), closed=f.num(tot["closed"]),
                                   within=share(tot["within_sla"]), median=hours(tot["median_hours_to_close"]),
                                   overdue=f.num(tot["overdue_open"]))]
    diff = extra.sla["followup"]["retention_difference"]
    if diff and diff.get("difference") == diff.get("difference") and diff.get("difference") is not None:
        out.append(t["fb_sla_followup"].format(d=f.signed(100 * diff["difference"]), low=f.num(100 * diff["low"], 0),
                                               high=f.num(100 * diff["high"], 0)))
    return out


def _exits_part(s: Section, f: Fmt, extra: FeedbackInsights) -> list[str]:
    t = f.t
    ex = extra.exits
    if ex is None or ex.totals.empty:  # type: ignore[attr-defined]
        return [t["fb_exits_none"].format(reason=t[extra.exits_error or "fb_no_exits"])]
    totals = ex.totals  # type: ignore[attr-defined]
    s.tables.append(([t["fb_reason"], t["fb_churn_type"], t["fb_exits"], t["fb_share"]],
                     [[str(r.reason).replace("_", " "), t[f"fb_{r.churn_type}"], f.num(r.exits), f.pct(r.share, 1)]
                      for r in totals.head(15).itertuples()]))
    vol = totals[totals.churn_type == "voluntary"]
    if vol.empty:
        return []
    top = vol.iloc[0]
    return [t["fb_exits_take"].format(vol=f.count(ex.voluntary, "customer"),  # type: ignore[attr-defined]
                                      invol=f.count(ex.involuntary, "customer"),  # type: ignore[attr-defined]
                                      reason=str(top.reason).replace("_", " "), share=f.pct(top.share, 0))]


def _actions(d: ReportData, f: Fmt) -> Section:
    t = f.t
    s = Section("actions", t["s10"])
    facts = _need(d, "actions", d.actions)
    rows = [r for r in facts.campaigns.rows if r["group"] != "total" or len(facts.campaigns.rows) == 1]

    def name(r: dict) -> str:
        return t["total"] if r["group"] == "total" else str(r["group"])

    bars = pd.DataFrame([{"campaign": name(r), "uplift": 100 * (r["conversion"]["per_customer"] or 0.0),
                          "low": 100 * (r["conversion"]["per_customer_low"] or 0.0),
                          "high": 100 * (r["conversion"]["per_customer_high"] or 0.0),
                          "verdict": t[f"v_{r['verdict']}"]} for r in rows])
    y = alt.Y("campaign:N", title=None, sort=None)
    points = alt.Chart(bars).mark_point(filled=True, size=80).encode(
        x=alt.X("uplift:Q", title=t["uplift_pp"]), y=y, color=alt.Color("verdict:N", title=t["verdict"]),
        tooltip=["campaign:N", alt.Tooltip("uplift:Q", format="+.1f"), alt.Tooltip("low:Q", format="+.1f"),
                 alt.Tooltip("high:Q", format="+.1f")])
    whiskers = alt.Chart(bars).mark_rule().encode(x="low:Q", x2="high:Q", y=y)
    zero = alt.Chart(pd.DataFrame({"x": [0]})).mark_rule(color="#888", strokeDash=[4, 4]).encode(x="x:Q")
    s.charts.append(("campaign_uplift", (whiskers + points + zero).properties(width=WIDTH, height=40 + 36 * len(bars))))

    def money_ci(r: dict) -> str:
        e = r["revenue"]
        if e["incremental"] is None:
            return "—"
        return f"{f.money(e['incremental'])} [{f.money(e['incremental_low'])}, {f.money(e['incremental_high'])}]"

    def roi(r: dict) -> str:
        return "—" if r["roi"] is None else f"{f.pct(100 * r['roi'], 0)} [{f.pct(100 * r['roi_low'], 0)}, " \
                                            f"{f.pct(100 * r['roi_high'], 0)}]"

    def uplift(r: dict) -> str:
        e = r["conversion"]
        if e["per_customer"] is None:
            return "—"
        return (f"{f.signed(100 * e['per_customer'])} [{f.signed(100 * e['per_customer_low'])}, "
                f"{f.signed(100 * e['per_customer_high'])}]")

    s.tables.append(([t["campaign"], t["treated"], t["control"], t["uplift_pp"], t["incr_revenue"], t["cost"],
                      t["roi"], t["verdict"]],
                     [[name(r), f.num(r["treatment_n"]), f.num(r["control_n"]), uplift(r), money_ci(r),
                       f.money(r["cost"]), roi(r), t[f"v_{r['verdict']}"]] for r in facts.campaigns.rows]))
    tools = [r for r in facts.tools.rows if r["group"] != "total" or len(facts.tools.rows) == 1]
    s.tables.append(([t["tool"], t["treated"], t["uplift_pp"], t["incr_revenue"], t["cost"], t["roi"], t["verdict"]],
                     [[t.get(f"tool_{r['group']}", name(r)), f.num(r["treatment_n"]), uplift(r), money_ci(r),
                       f.money(r["cost"]), roi(r), t[f"v_{r['verdict']}"]] for r in tools]))
    total = facts.campaigns.rows[-1]
    srm = sum(r["srm"] for r in rows)
    s.takeaway = t["act_take"].format(
        n=len(rows), campaigns=f.count(len(rows), "campaign"), works=sum(r["verdict"] == "positive" for r in rows),
        unclear=sum(r["verdict"] == "too_few" for r in rows), srm=t["act_srm"].format(k=srm) if srm else "",
        inc=f.money(total["revenue"]["incremental"] or 0.0), cost=f.money(total["cost"]))
    paying = [r for r in tools if r["roi"] is not None]
    if paying:
        best = max(paying, key=lambda r: r["roi"])
        s.takeaway += " " + t["act_tool"].format(best=t.get(f"tool_{best['group']}", best["group"]),
                                                 roi=f.pct(100 * best["roi"], 0))
    n_tests = len(rows)
    s.note = t["act_note"].format(w=f.plain(facts.campaigns.winsor_pct),
                                  adj=t["adj_bh"].format(n=n_tests) if n_tests > 1 else t["adj_none"])
    return s


def _data(d: ReportData, f: Fmt) -> Section:
    t = f.t
    s = Section("data", t["s12"])
    facts = _need(d, "data", d.data)
    s.tables.append(([t["table"], t["rows"], t["customers"], t["from"], t["to"]],
                     [[t.get(f"tbl_{r.table}", r.table), f.num(r.rows), f.num(r.customers), r.first_day or "—",
                       r.last_day or "—"] for r in facts.tables]))
    loaded = sum(1 for r in facts.tables if r.rows)
    s.takeaway = t["data_take"].format(tables=loaded if f.lang == "ru" else f.count(loaded, "table"),
                                       rejected=f.num(facts.rows_rejected))
    versions = ", ".join(f"{k} {v}" for k, v in (facts.versions | {"altair": alt.__version__}).items())
    s.tables.append(([t["definitions"], ""], [
        *[list(setting(f, k, v)) for k, v in facts.settings.items()],
        *[list(definition(f, k, v)) for k, v in facts.definitions.items()],
        [t["versions"], versions],
    ]))
    return s


def _loyalty(d: ReportData, f: Fmt) -> Section:
    t = f.t
    s = Section("loyalty", t["s11"])
    facts = _need(d, "loyalty", d.loyalty)
    st = facts.stats
    periods = st.periods
    flows = periods.melt(id_vars=["period_start"], value_vars=["issued", "redeemed", "expired"],
                         var_name="flow", value_name="points")
    flows["flow"] = flows["flow"].map({"issued": t["loy_issued"], "redeemed": t["loy_redeemed"],
                                       "expired": t["loy_expired"]})
    s.charts.append(("loyalty_points", alt.Chart(flows).mark_line(point=True).encode(
        x=alt.X("period_start:T", title=None), y=alt.Y("points:Q", title=t["loy_points"]),
        color=alt.Color("flow:N", title=None), tooltip=["period_start:T", "flow:N", alt.Tooltip("points:Q", format=",")])
        .properties(width=WIDTH, height=220)))
    s.charts.append(("loyalty_liability", alt.Chart(periods).mark_area(opacity=0.6).encode(
        x=alt.X("period_start:T", title=None), y=alt.Y("liability:Q", title=f"{t['loy_liability']}, {d.currency}"),
        tooltip=["period_start:T", alt.Tooltip("liability:Q", format=",.0f")]).properties(width=WIDTH, height=160)))

    def share(v: float) -> str:
        return "—" if v != v else f.pct(100 * v, 1)

    tiers = ", ".join(f"{k}: {f.num(v)}" for k, v in st.tier_distribution.items()) or "—"
    rows = [[t["loy_members"], f.num(st.members)], [t["loy_active"], f.num(st.active_members)],
            [t["loy_issued"], f.num(st.issued)], [t["loy_redeemed"], f.num(st.redeemed)],
            [t["loy_expired"], f.num(st.expired)], [t["loy_rr"], share(st.redemption_rate)],
            [t["loy_liability"], f.money(st.liability)], [t["loy_breakage"], share(st.breakage_rate)],
            [t["loy_net"], f.money(st.liability_net_of_breakage)], [t["loy_reward_cost"], f.money(st.reward_cost)],
            [t["loy_discount_cost"], f.money(st.discount_cost)], [t["loy_tiers"], tiers]]
    if st.cards:
        rows.append([t["loy_stamps"], share(st.stamp_completion_rate)])
    s.tables.append(([t["loy_measure"], t["value"]], rows))
    s.takeaway = t["loy_take"].format(members=f.count(st.members, "member"), program=facts.program, rr=share(st.redemption_rate),
                                      liab=f.money(st.liability), net=f.money(st.liability_net_of_breakage),
                                      breakage=share(st.breakage_rate))
    e = facts.effect
    if e is not None and e.reason is None:
        s.takeaway += " " + t["loy_effect"].format(
            m=share(e.member_rate), c=share(e.control_rate), w=e.window_days, days=f.count(e.window_days, "day"),
            eff=f.signed(100 * e.effect), lo=f.signed(100 * e.effect_low), hi=f.signed(100 * e.effect_high))
        s.tables.append(([t["loy_feature"], t["loy_before"], t["loy_after"]],
                         [[t.get(f"feat_{r.feature}", r.feature), f.signed(r.smd_before, 2), f.signed(r.smd_after, 2)]
                          for r in e.balance.itertuples(index=False)]))
    elif e is not None:
        s.takeaway += " " + t["loy_none"].format(reason=effect_reason(f, e.reason))
    if e is not None:
        s.note = e.caveat_ru if f.lang == "ru" else e.caveat
    return s


# ----------------------------------------------------------------------------- assembly
MAKERS: dict[str, Callable[[ReportData, Fmt], Section]] = {
    "kpis": _kpis, "over_time": _over_time, "cohorts": _cohorts, "mrr": _mrr, "lifecycle": _lifecycle,
    "segments": _segments, "clv": _clv, "churn": _churn, "feedback": _feedback, "actions": _actions,
    "loyalty": _loyalty, "data": _data,
}


def build(ws: Workspace, out: Path, period: str = "month", lang: str = "en", png_dir: Path | None = None,
          progress: Callable[[str], None] | None = None) -> dict:
    """Write the report to ``out`` (and each chart as PNG into ``png_dir``); returns a summary."""
    from retentio.data.errors import InvalidParameter
    from retentio.services.report import ReportParams, report_data

    if lang not in TEXT:
        raise InvalidParameter("lang", lang, " or ".join(TEXT))
    f = Fmt(lang, ws.settings.currency)
    step = progress or (lambda _m: None)
    data = report_data(ws, ReportParams(period=period, phrases=reason_phrases(f)), progress=step)  # type: ignore[arg-type]
    step("feedback themes and exit reasons")
    insights = _feedback_insights(ws)
    sections = []
    for i, key in enumerate(SECTIONS, 1):
        step(f"section {i}: {key}")
        try:
            sec = _feedback(data, f, insights) if key == "feedback" else MAKERS[key](data, f)
        except Unavailable as exc:  # the data do not support this section: say so, keep the rest
            takeaway, note = (exc.reason, "") if exc.worded else why_unavailable(f, exc.reason)
            sec = Section(key, f.t[f"s{i}"], takeaway=takeaway, note=note)
        sections.append(sec)
    html = render(sections, f, ws)
    out = Path(out)
    out.write_text(html, encoding="utf-8")
    pngs = []
    if png_dir:
        png_dir = Path(png_dir)
        png_dir.mkdir(parents=True, exist_ok=True)
        for sec in sections:
            for name, chart in sec.charts:
                path = png_dir / f"{name}.png"
                _theme(chart).save(str(path), format="png", scale_factor=1.5)
                pngs.append(str(path))
    return {"report": str(out), "sections": [s.key for s in sections],
            "charts": sum(len(s.charts) for s in sections), "png": pngs, "bytes": out.stat().st_size}


def render(sections: list[Section], f: Fmt, ws) -> str:
    import jinja2
    import vl_convert as vlc
    from altair.utils._importers import vl_version_for_vl_convert

    bundle = vlc.javascript_bundle(vl_version=vl_version_for_vl_convert())
    specs = {}
    for sec in sections:
        for name, chart in sec.charts:
            specs[name] = _theme(chart).to_dict()
    # autoescape every template: the templates are named *.html.j2, which
    # select_autoescape(["html"]) does not match — customers' comments are shown as text
    env = jinja2.Environment(loader=jinja2.PackageLoader("retentio.faces.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "html.j2"]))
    # axis numbers and month names in the report's language (d3 locales shipped with vl-convert)
    tag = {"en": "en-US", "ru": "ru-RU"}[f.lang]
    embed = {"actions": False, "renderer": "svg", "formatLocale": vlc.get_format_locale(tag),
             "timeFormatLocale": vlc.get_time_format_locale(tag)}
    return env.get_template("report.html.j2").render(
        t=f.t, lang=f.lang, sections=sections, bundle=bundle, specs=json.dumps(specs).replace("</", "<\\/"),
        embed=json.dumps(embed),
        generated=dt.datetime.now().strftime("%Y-%m-%d %H:%M"), workspace=str(ws.path))


__all__ = ["SECTIONS", "build", "render"]
