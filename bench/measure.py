"""Campaign measurement at scale: ``measure_campaigns`` over 100 campaigns with 1M assigned
customers in all, against GrowthBook's stats engine (gbstats) on the same statistics.

1. The fixture (timed on its own, not part of any measurement): a workspace
   (Europe/Moscow, RUB) with ``--customers`` customers and their orders — 1-5 each in
   the year before the first send day (3 % returned), then, per assignment, an order
   (20 %: two) inside its attribution window with a per-campaign base rate that grows
   with the customer's earlier orders and a planted per-campaign lift for the treated,
   and 5 % of the assigned buying again after their window; ``cost`` and ``discount``
   columns — loaded with ``Workspace.load(..., mode="replace")``. The store is filled
   directly with SQLAlchemy Core bulk inserts (100 real runs would take far too long to
   record): ``--campaigns`` campaigns (``definition`` a playbook-like dict; only
   ``measure.window_days`` is read: 14, 30, 30 or 60), one run each (as-of days spread
   over two months, holdout 10 %), ``--per-campaign`` assignments each drawn from all
   customers (10 % random control with reason ``holdout``, treatment with none; offer
   kind by campaign among percent / fixed / free_shipping / gift / points / none), one
   outbox row per assignment (``sent`` at cost 0.5 for treatment, ``withheld`` for
   control; channel csv / email / webhook by campaign), and a promo code per treated
   assignment of a coded offer, ~5 % of them redeemed on a real in-window order of that
   customer (its ``discount`` set).
2. ``measure_campaigns`` in its own process per call, so peak memory (VmHWM) is that
   call's: all campaigns; ``by="tool"``; ``by="segment"`` (RFM per as-of day); one
   campaign (``["c001"]``). The stages inside (reading the store, the window outcomes in
   DuckDB, winsorising, the statistics, …) are timed by wrapping the functions it calls
   (nothing else changes). A call still running after ``--budget`` seconds is stopped.
3. Peer: per campaign, both arms' sufficient statistics (n, sum, sum of squares, and the
   cross products with the CUPED covariate) are taken from the units the first call
   measured; gbstats' frequentist ``TwoSidedTTest`` (absolute difference) computes the
   conversion, revenue and CUPED revenue intervals and p-values from them, timed, and the
   largest differences from Retentio's are reported. Retentio's own statistics
   (``experiments.combine``) are timed on the same sufficient statistics for scale.

Prints progress; writes its section of docs/benchmarks.md (``--no-doc``: only print).

    python bench/measure.py                                   # 1M customers, 100 campaigns
    python bench/measure.py --customers 50000 --campaigns 10 --per-campaign 5000 --no-doc
    python bench/measure.py --keep /tmp/measure-ws --profile  # reuse the fixture; cProfile
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _report import log, peak_mb, table, vm_hwm, write_section  # noqa: E402

#: the first send day; the others follow over SEND_SPAN days
FIRST_SEND = dt.date(2025, 9, 1)
SEND_SPAN = 61
#: every order is before this day (the last window ends 2025-12-30)
DATA_END = dt.date(2026, 1, 1)
HOLDOUT_PCT = 10.0
KINDS = ("percent", "fixed", "free_shipping", "gift", "points", "none")
#: offer value per kind (RUB, %, points) and what a redeemed code takes off the order
VALUES = {"percent": 10.0, "fixed": 300.0, "free_shipping": 250.0, "gift": 400.0, "points": 200.0, "none": 0.0}
CODED = ("percent", "fixed", "free_shipping", "gift")
CHANNELS = ("csv", "email", "webhook")
WINDOWS = (14, 30, 30, 60)
REDEEMED_SHARE = 0.05
NAMES = ("Anna", "Boris", "Clara", "David", "Elena", "Farid", "Galina", "Hugo", "Irina", "Jon", "Katya", "Leo")
STEPS = {
    "all": ("all campaigns", {}),
    "tool": ("by tool", {"by": "tool"}),
    "segment": ("by segment (RFM per as-of day)", {"by": "segment"}),
    "one": ("one campaign (c001)", {"campaigns": ["c001"]}),
}


def campaign_name(j: int) -> str:
    return f"c{j + 1:03d}"


# ----------------------------------------------------------------------------- fixture
def build(folder: Path, customers: int, campaigns: int, per_campaign: int, seed: int = 7) -> dict:
    """The workspace and its store (see the module notes); returns counts, the planted
    effect and the time of each part."""
    import numpy as np
    import pandas as pd

    from retentio.data.workspace import Workspace

    if per_campaign > customers:
        raise SystemExit("--per-campaign cannot exceed --customers")
    rng = np.random.default_rng(seed)
    parts: dict[str, float] = {}
    t0 = time.perf_counter()
    ws = Workspace.init(folder, timezone="Europe/Moscow", currency="RUB")
    n = customers
    idx = np.arange(n)
    ids = np.char.add("C", np.char.zfill(idx.astype("U8"), 8))
    pre_start = np.datetime64(FIRST_SEND) - np.timedelta64(365, "D")
    signup = pre_start - rng.integers(0, 730, n).astype("timedelta64[D]")
    cust = pd.DataFrame({
        "customer_id": ids.astype(object),
        "signup_at": signup.astype("datetime64[s]"),
        "email": np.char.add(np.char.add("c", idx.astype("U8")), "@example.com").astype(object),
        "consent_email": True,
        "first_name": np.array(NAMES, dtype=object)[rng.integers(0, len(NAMES), n)],
    })
    ws.load("customers", cust, mode="replace")
    del cust
    parts["customers"] = time.perf_counter() - t0
    log(f"customers: {n:,} loaded in {parts['customers']:.1f}s")

    # --- campaigns and assignments (arrays first: the post-send orders depend on them)
    c = campaigns
    as_of = np.array([np.datetime64(FIRST_SEND) + np.timedelta64(j * SEND_SPAN // c, "D") for j in range(c)])
    window = np.array([WINDOWS[j % len(WINDOWS)] for j in range(c)])
    kind = np.array([KINDS[j % len(KINDS)] for j in range(c)], dtype=object)
    channel = np.array([CHANNELS[j % len(CHANNELS)] for j in range(c)], dtype=object)
    base = rng.uniform(0.03, 0.06, c)  # in-window conversion of an average control customer
    lift = rng.uniform(0.0, 0.5, c)  # relative lift of the treated (some campaigns near none)
    camp = np.repeat(np.arange(c), per_campaign)
    cust_of = np.concatenate([rng.choice(n, per_campaign, replace=False) for _ in range(c)])
    m = len(camp)
    control = rng.random(m) < HOLDOUT_PCT / 100
    k = rng.integers(1, 6, n)  # orders per customer in the year before the sends
    p_c = np.minimum(base[camp] * (0.6 + 0.2 * k[cust_of]), 1.0)
    p_t = np.minimum(p_c * (1 + lift[camp]), 1.0)
    planted = float((p_t - p_c)[~control].mean())
    converted = rng.random(m) < np.where(control, p_c, p_t)
    n_post = converted.astype("int64") * (1 + (rng.random(m) < 0.2))

    # --- orders: before the sends, inside each window, and after it
    t0 = time.perf_counter()
    owner = np.repeat(idx, k)
    n_pre = len(owner)
    pre_at = pre_start.astype("datetime64[s]") + (rng.random(n_pre) * 365 * 86400).astype("timedelta64[s]")
    post_of = np.repeat(np.arange(m), n_post)  # the assignment each in-window order answers
    day_s = 86400
    start_s = as_of[camp[post_of]].astype("datetime64[s]")
    span_s = (window[camp[post_of]] - 1) * day_s
    post_at = start_s + (day_s // 2 + rng.random(len(post_of)) * span_s).astype("timedelta64[s]")
    late = np.flatnonzero(rng.random(m) < 0.05)
    late_from = (as_of[camp[late]] + window[camp[late]].astype("timedelta64[D]")).astype("datetime64[s]")
    room = (np.datetime64(DATA_END).astype("datetime64[s]") - late_from).astype("int64")
    late = late[room > day_s]
    late_from, room = late_from[room > day_s], room[room > day_s]
    late_at = late_from + (rng.random(len(late)) * (room - day_s)).astype("timedelta64[s]")
    who = np.concatenate([owner, cust_of[post_of], cust_of[late]])
    at = np.concatenate([pre_at, post_at, late_at])
    total = len(who)
    scale = 1500.0 * (0.8 + 0.1 * k[who])
    amount = np.round(rng.gamma(2.0, scale) + 100.0, 2)
    status = np.where((np.arange(total) < n_pre) & (rng.random(total) < 0.03), "returned", "completed")
    order_ids = np.concatenate([
        np.char.add("O", np.char.zfill(np.arange(n_pre).astype("U9"), 9)),
        np.char.add("P", np.char.zfill(np.arange(len(post_of)).astype("U9"), 9)),
        np.char.add("L", np.char.zfill(np.arange(len(late)).astype("U9"), 9))])
    discount = np.zeros(total)
    # promo codes: treated assignments of coded offers; ~5 % redeemed on their first in-window order
    coded = ~control & np.isin(kind[camp], CODED)
    first_post = np.full(m, -1)
    has_post = n_post > 0
    first_post[has_post] = (np.cumsum(n_post) - n_post)[has_post]
    redeemed = np.zeros(m, dtype=bool)
    for j in range(c):
        pool = np.flatnonzero(coded & (camp == j))
        if not len(pool):
            continue
        can = pool[has_post[pool]]
        take = min(int(round(REDEEMED_SHARE * len(pool))), len(can))
        redeemed[rng.choice(can, take, replace=False)] = True
    red = np.flatnonzero(redeemed)
    red_order = n_pre + first_post[red]  # row in the orders arrays
    red_kind = kind[camp[red]]
    discount[red_order] = np.where(red_kind == "percent", np.round(amount[red_order] * VALUES["percent"] / 100, 2),
                                   np.minimum([VALUES[x] for x in red_kind], amount[red_order]))
    orders = pd.DataFrame({
        "order_id": order_ids.astype(object), "customer_id": ids[who].astype(object), "ordered_at": at,
        "amount": amount, "cost": np.round(amount * rng.uniform(0.5, 0.7, total), 2), "discount": discount,
        "status": status.astype(object)})
    parts["orders_generate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ws.load("orders", orders, mode="replace")
    parts["orders_load"] = time.perf_counter() - t0
    log(f"orders: {total:,} ({n_pre:,} before the sends, {len(post_of):,} in windows, {len(late):,} after) "
        f"generated in {parts['orders_generate']:.1f}s, loaded in {parts['orders_load']:.1f}s")
    red_ids = order_ids[red_order]
    red_at = at[red_order]
    del orders, who, at, amount, status, discount, order_ids, owner, pre_at

    # --- the store
    t0 = time.perf_counter()
    counts = fill_store(ws, c=c, as_of=as_of, window=window, kind=kind, channel=channel, camp=camp,
                        cust_ids=ids[cust_of], control=control, redeemed=red, red_ids=red_ids, red_at=red_at,
                        coded=coded, rng=rng)
    parts["store"] = time.perf_counter() - t0
    log(f"store: {counts['assignments']:,} assignments, {counts['outbox']:,} outbox rows, "
        f"{counts['promo_codes']:,} codes ({counts['redeemed']:,} redeemed) in {parts['store']:.1f}s")
    ws.close()
    return {"customers": n, "orders": total, "orders_before": n_pre, "orders_in_windows": int(len(post_of)),
            "orders_after": int(len(late)), "campaigns": c, "per_campaign": per_campaign, **counts,
            "planted_conversion_uplift": planted, "parts": parts}


def fill_store(ws, *, c, as_of, window, kind, channel, camp, cust_ids, control, redeemed, red_ids, red_at, coded,
               rng) -> dict:
    """Campaigns, runs, assignments, outbox and promo codes by SQLAlchemy Core bulk inserts,
    in one transaction; explicit ids, so no row is read back."""
    import numpy as np

    from retentio.data.store.campaign_tables import Assignment, Campaign, CampaignRun, OutboxMessage, PromoCode

    store = ws.store  # created by migration on first use
    utc = dt.UTC
    m = len(camp)
    from zoneinfo import ZoneInfo

    local = ZoneInfo("Europe/Moscow")  # order times are the workspace's local time
    red_of = dict(zip(redeemed.tolist(), zip(red_ids.tolist(), red_at.tolist())))
    camp_l, control_l, coded_l, cust_l = camp.tolist(), control.tolist(), coded.tolist(), cust_ids.tolist()
    with store.engine.begin() as conn:
        camp_rows, run_rows, offers, when = [], [], [], []
        for j in range(c):
            day = as_of[j].astype(object)
            sent = dt.datetime.combine(day, dt.time(7, 0), tzinfo=utc)  # 10:00 in Moscow
            when.append(sent)
            value = VALUES[kind[j]]
            offers.append({"kind": kind[j], "value": value, "gift": "tote bag" if kind[j] == "gift" else None,
                           "text": f"{kind[j]} {value:g}"})
            definition = {"name": campaign_name(j), "kind": "winback", "trigger": {"days": 60},
                          "offer": {"kind": kind[j], "value": value}, "channel": {"kind": channel[j]},
                          "holdout": {"percent": HOLDOUT_PCT}, "measure": {"window_days": int(window[j])}}
            camp_rows.append({"id": j + 1, "name": campaign_name(j), "kind": "winback", "created_at": sent,
                              "definition": definition})
            n_j = int((camp == j).sum())
            n_c = int((control & (camp == j)).sum())
            run_rows.append({"id": j + 1, "campaign_id": j + 1, "as_of": day, "started_at": sent,
                             "finished_at": sent + dt.timedelta(minutes=5), "status": "done",
                             "seed": campaign_name(j), "holdout_pct": HOLDOUT_PCT, "snapshot_id": None,
                             "model_version": None, "counts": {"eligible": n_j, "treatment": n_j - n_c,
                                                               "control": n_c}})
        conn.execute(Campaign.__table__.insert(), camp_rows)
        conn.execute(CampaignRun.__table__.insert(), run_rows)
        expected = rng.gamma(2.0, 200.0, m)
        n_codes = n_red = 0
        step = 50_000
        for lo in range(0, m, step):
            hi = min(lo + step, m)
            a_rows, o_rows, p_rows = [], [], []
            for i in range(lo, hi):
                j = camp_l[i]
                aid = i + 1
                cid = cust_l[i]
                treat = not control_l[i]
                code = f"R{j + 1:03d}-{aid:09d}" if coded_l[i] else None
                sent = when[j]
                a_rows.append({"id": aid, "campaign_id": j + 1, "run_id": j + 1, "customer_id": cid,
                               "occurrence": str(as_of[j]), "arm": "treatment" if treat else "control",
                               "reason": None if treat else "holdout", "expected_value": float(expected[i]),
                               "offer": offers[j], "promo_code": code, "snapshot_id": None, "model_version": None,
                               "created_at": sent})
                ch = channel[j]
                o_rows.append({"id": aid, "assignment_id": aid, "campaign_id": j + 1, "run_id": j + 1,
                               "customer_id": cid, "message_id": f"m{aid:012d}", "channel": ch,
                               "message_class": "marketing",
                               "to_address": cid if ch == "webhook" else f"{cid.lower()}@example.com",
                               "subject": "We miss you", "body_text": f"Hello! {offers[j]['text']} {code or ''}",
                               "body_html": None, "unsubscribe_url": None,
                               "payload": {"campaign": campaign_name(j), "occurrence": str(as_of[j]),
                                           "promo_code": code},
                               "status": "sent" if treat else "withheld", "attempts": 1 if treat else 0,
                               "not_before": sent, "claimed_by": None, "claimed_at": None,
                               "sent_at": sent if treat else None, "detail": None, "cost": 0.5 if treat else 0.0})
                if code is not None:
                    got = red_of.get(i)
                    redeemed_at = None
                    if got is not None:
                        redeemed_at = got[1].replace(tzinfo=local).astimezone(utc)
                        n_red += 1
                    p_rows.append({"code": code, "campaign_id": j + 1, "assignment_id": aid, "customer_id": cid,
                                   "offer": offers[j], "issued_at": sent, "expires_at": sent + dt.timedelta(days=30),
                                   "redeemed_at": redeemed_at, "redeemed_order_id": got[0] if got else None})
            conn.execute(Assignment.__table__.insert(), a_rows)
            conn.execute(OutboxMessage.__table__.insert(), o_rows)
            if p_rows:
                conn.execute(PromoCode.__table__.insert(), p_rows)
            n_codes += len(p_rows)
            if hi == m or (hi // step) % 5 == 0:
                log(f"  store: {hi:,} of {m:,} assignments inserted")
    assert n_red == len(red_of)
    return {"assignments": m, "treatment": int((~control).sum()), "control": int(control.sum()), "outbox": m,
            "promo_codes": n_codes, "redeemed": n_red,
            "distinct_assigned_customers": int(len(np.unique(cust_ids)))}


# ----------------------------------------------------------------------------- children
#: the functions measure_campaigns calls that are timed; indented: called by the one above
STAGES = ("units_frame", "  assignments_frame", "  runs_frame", "  _discounts", "  _segments", "    rfm",
          "window_outcomes", "winsorize_per_campaign", "measure_rows", "span")


class Stages:
    """Wall time of the functions measure_campaigns calls (each wrapped, nothing else
    changes); the last winsorised units are kept for the peer's statistics."""

    def __init__(self) -> None:
        import retentio.actions.ledger as ledger
        import retentio.analytics.base as base
        import retentio.analytics.campaign_effect as ce
        import retentio.analytics.segments as segments
        import retentio.services.measurement as me

        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.units = None
        for module, name, label in (
                (me, "units_frame", STAGES[0]), (ledger, "assignments_frame", STAGES[1]),
                (ledger, "runs_frame", STAGES[2]), (me, "_discounts", STAGES[3]), (me, "_segments", STAGES[4]),
                (segments, "rfm", STAGES[5]), (ce, "window_outcomes", STAGES[6]),
                (ce, "winsorize_per_campaign", STAGES[7]), (ce, "measure_rows", STAGES[8]), (base, "span", STAGES[9])):
            setattr(module, name, self._wrap(label, getattr(module, name)))

    def _wrap(self, label, fn):
        def wrapped(*a, **k):
            t0 = time.perf_counter()
            try:
                out = fn(*a, **k)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - t0
                self.calls[label] = self.calls.get(label, 0) + 1
            if label == STAGES[7]:
                self.units = out
            return out
        return wrapped


def sufficient_stats(units) -> list[dict]:
    """Per campaign and arm: n, sums and sums of squares of converted, revenue and
    pre_revenue, and the revenue × pre_revenue cross product."""
    u = units[["campaign", "arm", "converted", "revenue", "pre_revenue"]].copy()
    u["converted"] = u.converted.astype("float64")
    u["conv2"] = u.converted**2
    u["rev2"] = u.revenue**2
    u["pre2"] = u.pre_revenue**2
    u["revpre"] = u.revenue * u.pre_revenue
    g = u.groupby(["campaign", "arm"]).agg(n=("converted", "size"), conv=("converted", "sum"),
                                           conv2=("conv2", "sum"), rev=("revenue", "sum"), rev2=("rev2", "sum"),
                                           pre=("pre_revenue", "sum"), pre2=("pre2", "sum"),
                                           revpre=("revpre", "sum")).reset_index()
    return g.to_dict("records")


def child(step: str, folder: Path, profile: Path | None, stats_file: Path | None) -> dict:
    from retentio.data.workspace import Workspace
    from retentio.services.measurement import MeasureParams, measure_campaigns

    ws = Workspace.open(folder)
    stages = Stages()
    params = MeasureParams(**STEPS[step][1])
    prof = None
    if profile is not None:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    t0 = time.perf_counter()
    m = measure_campaigns(ws, params)
    elapsed = time.perf_counter() - t0
    if prof is not None:
        prof.disable()
        prof.dump_stats(str(profile))
    peak = peak_mb()
    rows = {r["group"]: r for r in m.rows}
    groups = [g for g in rows if g != "total"] if len(rows) > 1 else list(rows)
    positive = sum(rows[g]["verdict"] == "positive" for g in groups)
    head = rows.get("total") or m.rows[0]
    conv = head["conversion"]
    out = {"seconds": elapsed, "peak_mb": peak, "rows": len(m.rows), "groups": len(groups), "positive": positive,
           "units": head["treatment_n"] + head["control_n"], "stages": stages.seconds, "calls": stages.calls,
           "total": {"conversion": [conv["per_customer"], conv["per_customer_low"], conv["per_customer_high"]],
                     "revenue_incremental": head["revenue"]["incremental"], "cost": head["cost"],
                     "roi": head["roi"], "codes_redeemed": head["codes_redeemed"],
                     "cuped_ci_narrowed_pct": head["cuped_ci_narrowed_pct"], "srm": head["srm"]},
           "notes": m.notes, "margin_basis": m.margin_basis}
    if stats_file is not None and stages.units is not None:
        ours = {g: {metric: {k: rows[g][metric][k] for k in ("per_customer", "per_customer_low", "per_customer_high",
                                                             "p_value")}
                    for metric in ("conversion", "revenue_uncorrected", "revenue")} for g in groups}
        stats_file.write_text(json.dumps({"level": m.level, "stats": sufficient_stats(stages.units), "ours": ours}))
    ws.close()
    return out


def peer(stats_file: Path) -> dict:
    """gbstats' two-sided frequentist t-test per campaign from the sufficient statistics,
    compared with Retentio's intervals and p-values."""
    import importlib.metadata

    import numpy as np

    from retentio.analytics import experiments as ex

    data = json.loads(stats_file.read_text())
    level, ours = data["level"], data["ours"]
    by = {(s["campaign"], s["arm"]): s for s in data["stats"]}
    campaigns = sorted(ours)
    try:
        from gbstats.frequentist.tests import FrequentistConfig, TwoSidedTTest
        from gbstats.models.statistics import (
            ProportionStatistic,
            RegressionAdjustedStatistic,
            SampleMeanStatistic,
        )
    except ImportError as exc:
        return {"error": f"gbstats is not importable: {exc}"}
    version = importlib.metadata.version("gbstats")
    config = FrequentistConfig(alpha=1 - level, difference_type="absolute")

    def stat(kind: str, s: dict):
        if kind == "conversion":
            return SampleMeanStatistic(n=s["n"], sum=s["conv"], sum_squares=s["conv2"])
        if kind == "conversion_proportion":
            return ProportionStatistic(n=s["n"], sum=s["conv"])
        post = SampleMeanStatistic(n=s["n"], sum=s["rev"], sum_squares=s["rev2"])
        if kind == "revenue_uncorrected":
            return post
        pre = SampleMeanStatistic(n=s["n"], sum=s["pre"], sum_squares=s["pre2"])
        return RegressionAdjustedStatistic(n=s["n"], post_statistic=post, pre_statistic=pre,
                                           post_pre_sum_of_products=s["revpre"], theta=0.0)

    kinds = ("conversion", "conversion_proportion", "revenue_uncorrected", "revenue")
    results: dict[str, dict] = {k: {} for k in kinds}
    t0 = time.perf_counter()
    for cname in campaigns:
        a, b = by[(cname, "control")], by[(cname, "treatment")]
        for kind in kinds:
            r = TwoSidedTTest(stat(kind, a), stat(kind, b), config).compute_result()
            results[kind][cname] = (r.ci[0], r.ci[1], r.p_value, r.error_message)
    gb_seconds = time.perf_counter() - t0

    # Retentio's statistics on the same sufficient statistics (for scale: measure_campaigns
    # computes them from the units; here from n, mean and variance)
    def cell(s_t: dict, s_c: dict, key: str, key2: str) -> ex.Cell:
        def mv(s):
            mean = s[key] / s["n"]
            return mean, (s[key2] - s[key] ** 2 / s["n"]) / (s["n"] - 1)
        (mt, vt), (mc, vc) = mv(s_t), mv(s_c)
        return ex.Cell(s_t["n"], s_c["n"], mt, mc, vt, vc)

    t0 = time.perf_counter()
    for cname in campaigns:
        a, b = by[(cname, "control")], by[(cname, "treatment")]
        ex.combine([cell(b, a, "conv", "conv2")], level)
        ex.combine([cell(b, a, "rev", "rev2")], level)
    ours_seconds = time.perf_counter() - t0

    diffs: dict[str, dict] = {}
    skipped = 0
    for kind in kinds:
        mine = "conversion" if kind == "conversion_proportion" else kind
        d_ci, d_rel, d_p = [], [], []
        for cname in campaigns:
            lo, hi, p, err = results[kind][cname]
            o = ours[cname][mine]
            if err or o["per_customer_low"] is None:
                skipped += 1
                continue
            width = o["per_customer_high"] - o["per_customer_low"]
            d = max(abs(lo - o["per_customer_low"]), abs(hi - o["per_customer_high"]))
            d_ci.append(d)
            d_rel.append(d / width if width else np.nan)
            d_p.append(abs(p - o["p_value"]))
        diffs[kind] = {"campaigns": len(d_ci), "max_ci_abs": max(d_ci, default=np.nan),
                       "max_ci_rel_width": float(np.nanmax(d_rel)) if d_rel else np.nan,
                       "max_p": max(d_p, default=np.nan)}
    return {"version": version, "seconds": gb_seconds, "ours_seconds": ours_seconds, "campaigns": len(campaigns),
            "tests": len(campaigns) * len(kinds), "diffs": diffs, "skipped": skipped, "peak_mb": peak_mb()}


def run_child(args: list[str], timeout: float, label: str) -> dict:
    """Run one step in its own process; ``{"stopped": True, ...}`` when it is still
    running after ``timeout`` seconds (its peak memory read just before the stop)."""
    cmd = [sys.executable, __file__, *args]
    log(f"{label} ...")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        peak = vm_hwm(proc.pid)
        proc.kill()
        proc.communicate()
        log(f"{label}: stopped after {timeout:.0f}s (peak {peak or 0:,.0f} MB)")
        return {"stopped": True, "seconds": timeout, "peak_mb": peak}
    if proc.returncode != 0:
        raise SystemExit(f"{label} failed (exit {proc.returncode})")
    res = json.loads(out.strip().splitlines()[-1])
    res["wall_s"] = time.perf_counter() - t0
    return res


# ----------------------------------------------------------------------------- report
def fmt(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def stage_rows(res: dict) -> list[dict]:
    """The "of which" rows of a measured step, in call order; a nested stage is named
    after the one it is part of (``units_frame › rfm``)."""
    st, calls = res.get("stages", {}), res.get("calls", {})
    rows, top, path = [], 0.0, []
    for name in STAGES:
        depth = (len(name) - len(name.lstrip())) // 2
        path = [*path[:depth], name.strip()]
        if name not in st:
            continue
        if depth == 0:
            top += st[name]
        if st[name] < 0.05:  # runs_frame, span and the like: nothing to see
            continue
        label = " › ".join(path)
        if calls.get(name, 1) > 1:
            label += f" (×{calls[name]})"
        rows.append({"step": "  of which " + label, "seconds": fmt(st[name]), "peak RSS (MB)": "",
                     "rows of result": "", "note": ""})
    rows.append({"step": "  of which the rest (the per-row window check, …)", "seconds": fmt(res["seconds"] - top),
                 "peak RSS (MB)": "", "rows of result": "", "note": ""})
    return rows


def section(info: dict, results: dict, peer_res: dict | None, budget: float, total_s: float, load: tuple,
            build_res: dict) -> str:
    rows = []
    parts = info["parts"]
    rows.append({"step": "fixture: build workspace and store (not measured)",
                 "seconds": fmt(build_res["seconds"]), "peak RSS (MB)": fmt(build_res["peak_mb"], 0),
                 "rows of result": "",
                 "note": (f"customers load {parts['customers']:.0f} s, orders generate {parts['orders_generate']:.0f} s "
                          f"+ load {parts['orders_load']:.0f} s, store inserts {parts['store']:.0f} s")})
    for step, (label, _) in STEPS.items():
        res = results.get(step)
        if res is None:
            continue
        name = f"`measure_campaigns`: {label}"
        if res.get("stopped"):
            rows.append({"step": name, "seconds": f"> {budget:.0f} (stopped)",
                         "peak RSS (MB)": fmt(res.get("peak_mb"), 0), "rows of result": "—",
                         "note": "did not finish in the time allowed"})
            continue
        t = res["total"]
        conv = t["conversion"]
        note = (f"{res['units']:,} units; {res['positive']} of {res['groups']} "
                f"{'campaigns' if step in ('all', 'one') else 'groups'} positive on conversion; "
                f"uplift {100 * conv[0]:+.2f} pp [{100 * conv[1]:+.2f}, {100 * conv[2]:+.2f}]")
        if step == "all":
            note += (f"; incremental revenue {t['revenue_incremental']:,.0f} RUB, cost {t['cost']:,.0f} RUB, "
                     f"{t['codes_redeemed']:,} codes redeemed; CUPED narrowed the revenue CI by "
                     f"{fmt(t['cuped_ci_narrowed_pct'])} %")
        rows.append({"step": name, "seconds": fmt(res["seconds"]), "peak RSS (MB)": fmt(res["peak_mb"], 0),
                     "rows of result": f"{res['rows']:,}", "note": note})
        rows += stage_rows(res)
    body = [f"**Measuring {info['campaigns']:,} campaigns over {info['assignments']:,} assignments** "
            f"({info['customers']:,} customers, {info['distinct_assigned_customers']:,} of them assigned at least "
            f"once; {info['orders']:,} orders; {info['treatment']:,} treatment / {info['control']:,} control; "
            f"{info['promo_codes']:,} promo codes, {info['redeemed']:,} redeemed; each call in its own process, at "
            f"most {budget:.0f} s):", table(rows)]
    days = len({j * SEND_SPAN // info["campaigns"] for j in range(info["campaigns"])})
    where = []
    for step, what in (("all", "the all-campaigns call"), ("one", "the one-campaign call")):
        res = results.get(step)
        if res and not res.get("stopped") and STAGES[1] in res["stages"]:
            where.append(f"{res['stages'][STAGES[1]]:.0f} s of the {res['seconds']:.0f} s of {what}")
    seg = results.get("segment")
    if where:
        body.append("Where the time goes: reading the store (`ledger.assignments_frame`, every assignment with its "
                    "outbox row and promo code, even when one campaign is asked for) takes " + " and ".join(where)
                    + "." + (f" The segment breakdown computes RFM for all customers on each of the {days} as-of "
                             f"days: {seg['stages'].get(STAGES[5], 0):.0f} s, and {seg['stages'].get(STAGES[4], 0):.0f}"
                             " s with mapping the units to it." if seg and not seg.get("stopped") else ""))
    body.append(f"Planted conversion uplift (mean over the treated of the in-window order probability, before "
                f"other campaigns' orders dilute it): {100 * info['planted_conversion_uplift']:+.2f} pp.")
    if peer_res is None:
        pass
    elif "error" in peer_res:
        body.append(f"**Peer (GrowthBook's gbstats)**: not run — {peer_res['error']}.")
    else:
        d = peer_res["diffs"]
        names = {"conversion": "conversion (`SampleMeanStatistic` of the 0/1 outcome)",
                 "conversion_proportion": "conversion (`ProportionStatistic`: variance p(1−p), n in the denominator)",
                 "revenue_uncorrected": "revenue per customer, winsorised, without CUPED (`SampleMeanStatistic`)",
                 "revenue": "revenue per customer with CUPED (`RegressionAdjustedStatistic`, θ pooled over the arms)"}
        prow = [{"metric": names[k], "campaigns": v["campaigns"], "largest CI bound difference": f"{v['max_ci_abs']:.2e}",
                 "as share of CI width": f"{v['max_ci_rel_width']:.1e}", "largest p-value difference":
                 f"{v['max_p']:.1e}"} for k, v in d.items()]
        body.append(
            f"**Peer: GrowthBook's stats engine** (gbstats {peer_res['version']}, `frequentist.tests.TwoSidedTTest` "
            f"with `FrequentistConfig(difference_type=\"absolute\")`), fed per campaign and arm the sufficient "
            f"statistics (n, sum, sum of squares, cross product with the pre-period revenue) of the units the "
            f"all-campaigns call measured: {peer_res['tests']:,} tests ({peer_res['campaigns']} campaigns × 4) in "
            f"{peer_res['seconds'] * 1000:,.0f} ms; Retentio's `experiments.combine` on the same statistics "
            f"(conversion and revenue, {2 * peer_res['campaigns']} calls) in {peer_res['ours_seconds'] * 1000:,.0f} ms. "
            "Both are Welch's t-interval with Welch–Satterthwaite degrees of freedom, so they agree to rounding; "
            "the `ProportionStatistic` row differs only by its variance p(1−p) against the sample variance "
            "(a factor n/(n−1)). gbstats declares `pandas<2` and `numpy<2`, which the project's `pandas>=2.2` "
            "rules out, so it is not in the `bench` extra: install it beside them with `pip install --no-deps "
            "gbstats` (its frequentist tests use only numpy, scipy and pydantic):\n\n" + table(prow))
    body.append(NOTES + f" Load average (1 min) {load[0]:.2f} at the start, {load[1]:.2f} at the end; the whole "
                f"script took {total_s / 60:.1f} min.")
    return "\n\n".join(body)


NOTES = (
    "Data: synthetic, built by the script (see its docstring): orders 1–5 per customer in the year before the "
    "first send day (3 % returned), an in-window order for each assignment with a per-campaign base rate of "
    "3–6 % (higher for customers with more earlier orders) raised for the treated by a per-campaign lift drawn "
    "from 0–50 %, and 5 % of the assigned buying again after their window; order `cost` 50–70 % of the amount, "
    "`discount` set on the redeemed orders. The store is written with SQLAlchemy Core bulk inserts, not by "
    "`run_campaign` (that is measured in the section on campaigns). Offer kinds rotate over percent, fixed, "
    "free shipping, gift, points and none; windows over 14, 30, 30 and 60 days; as-of days over two months "
    "(`by=\"segment\"` computes RFM once per distinct as-of day). The stage rows are "
    "timed by wrapping the functions `measure_campaigns` calls; nested ones are part of the row above them. "
    "Peak RSS is each process's high-water mark (VmHWM). The machine has 2 cores; other jobs may have "
    "been running beside this one."
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--campaigns", type=int, default=100)
    ap.add_argument("--per-campaign", type=int, default=10_000, help="assignments per campaign")
    ap.add_argument("--budget", type=float, default=480, help="seconds allowed per measure call")
    ap.add_argument("--steps", nargs="+", choices=list(STEPS), default=list(STEPS))
    ap.add_argument("--keep", type=Path, help="build the fixture here (or reuse the one already there)")
    ap.add_argument("--profile", action="store_true", help="cProfile every measure call; print the top functions")
    ap.add_argument("--no-doc", action="store_true", help="do not write docs/benchmarks.md")
    ap.add_argument("--child", nargs=2, metavar=("STEP", "WORKSPACE"), help=argparse.SUPPRESS)
    ap.add_argument("--child-profile", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--child-stats", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--peer", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        step, folder = args.child
        if step == "build":
            t0 = time.perf_counter()
            info = build(Path(folder), args.customers, args.campaigns, args.per_campaign)
            out = {"info": info, "seconds": time.perf_counter() - t0, "peak_mb": peak_mb()}
        else:
            out = child(step, Path(folder), args.child_profile, args.child_stats)
        print(json.dumps(out, default=str))
        return
    if args.peer:
        print(json.dumps(peer(args.peer), default=str))
        return

    started = time.perf_counter()
    load0 = os.getloadavg()[0]
    tmp = None
    if args.keep:
        work = args.keep
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.mkdtemp(prefix="retentio-bench-measure-")
        work = Path(tmp)
    folder = work / "ws"
    info_file = work / "fixture.json"
    size = [str(args.customers), str(args.campaigns), str(args.per_campaign)]
    try:
        if info_file.exists() and json.loads(info_file.read_text()).get("size") == size:
            build_res = json.loads(info_file.read_text())["build"]
            log(f"reusing the fixture in {folder} (built in {build_res['seconds']:.0f}s)")
        else:
            shutil.rmtree(folder, ignore_errors=True)
            build_res = run_child(["--child", "build", str(folder), "--customers", size[0], "--campaigns", size[1],
                                   "--per-campaign", size[2]], 3600, "building the fixture")
            info_file.write_text(json.dumps({"size": size, "build": build_res}, default=str))
            log(f"fixture built in {build_res['seconds']:.0f}s (peak {build_res['peak_mb']:,.0f} MB)")
        info = build_res["info"]
        results: dict[str, dict] = {}
        stats_file = work / "stats.json"
        for step in args.steps:
            cmd = ["--child", step, str(folder)]
            if args.profile:
                cmd += ["--child-profile", str(work / f"{step}.prof")]
            if step == "all":
                stats_file.unlink(missing_ok=True)
                cmd += ["--child-stats", str(stats_file)]
            res = run_child(cmd, args.budget, f"measure {STEPS[step][0]}")
            results[step] = res
            if not res.get("stopped"):
                log(f"measure {STEPS[step][0]}: {res['seconds']:.1f}s, peak {res['peak_mb']:,.0f} MB, "
                    f"{res['rows']} rows; " + ", ".join(f"{k.strip()} {v:.1f}s" for k, v in res["stages"].items()))
        peer_res = None
        if stats_file.exists():
            peer_res = run_child(["--peer", str(stats_file)], 600, "peer: gbstats")
            if "error" in peer_res:
                log(f"peer: {peer_res['error']}")
            else:
                log(f"peer: gbstats {peer_res['version']}: {peer_res['tests']} tests in {peer_res['seconds']:.3f}s; "
                    + "; ".join(f"{k}: CI Δ {v['max_ci_abs']:.1e}, p Δ {v['max_p']:.1e}"
                                for k, v in peer_res["diffs"].items()))
        if args.profile:
            import pstats

            for step in args.steps:
                p = work / f"{step}.prof"
                if p.exists():
                    print(f"\n== profile {step}")
                    pstats.Stats(str(p)).sort_stats("cumulative").print_stats(35)
                    pstats.Stats(str(p)).sort_stats("tottime").print_stats(20)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    total = time.perf_counter() - started
    log(f"done in {total:.0f}s")
    print(json.dumps({"fixture": build_res, "measure": results, "peer": peer_res}, default=str, indent=1))
    if args.no_doc:
        return
    write_section(SECTION, section(info, results, peer_res, args.budget, total, (load0, os.getloadavg()[0]),
                                   build_res))


SECTION = "Campaign measurement"


if __name__ == "__main__":
    main()
