"""Triggers: which customers a playbook acts on as of a day, and the occurrence each
is acted on for.

The **occurrence** names the event a message answers — a lapse since a given last
order, a birthday of a given year, a cart of a given moment, an order, a survey answer —
and (campaign, customer, occurrence) is unique in the store: a trigger is acted on once
however often a campaign runs, and the next lapse, birthday or cart is a new occurrence.

Every trigger is read as of the start of day ``as_of`` in the workspace's time (the
instant of :func:`retentio.analytics.churn.train.data_end` by default): it sees data
before that instant only. Triggers that fire on a date (birthday, renewal, onboarding,
replenishment, thank-you, follow-up) still fire for ``within_days`` after it, so a
missed daily run catches up. Each returns one row per customer: ``customer_id``,
``occurrence`` and the facts its message can use (days_since_order, birthday, plan,
renewal_date, due_item, due_date, step, order_id, score, items, and for
feedback_reply the answer's comment as ``answer_comment`` — named apart from any
``comment`` attribute of the customers table, which stays ``customer.comment``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

import ibis
import numpy as np
import pandas as pd

from retentio.actions.playbooks import BROWSE_EVENTS, SURVEY_DELAY_DAYS, Playbook
from retentio.analytics.base import completed_orders, lit_ts
from retentio.data.errors import NotLoaded, RetentioError

if TYPE_CHECKING:
    from retentio.data.workspace import Workspace

#: every column a trigger frame carries (missing facts are null)
COLUMNS = ("customer_id", "occurrence", "days_since_order", "birthday", "plan", "renewal_date", "due_item",
           "due_date", "step", "order_id", "score", "items", "answer_comment")


def _frame(df: pd.DataFrame) -> pd.DataFrame:
    for c in COLUMNS:
        if c not in df:
            df[c] = None
    out = df[list(COLUMNS)].reset_index(drop=True)
    out["customer_id"] = out.customer_id.astype(str)
    return out


def _need(ws: Workspace, table: str, kind: str) -> None:
    if not ws.is_loaded(table):
        raise NotLoaded(table, f"the {kind} trigger")


def _day(ts: pd.Timestamp) -> str:
    return pd.Timestamp(ts).strftime("%Y-%m-%d")


# ------------------------------------------------------------------------------ winback
def winback(ws: Workspace, pb: Playbook, instant: pd.Timestamp) -> pd.DataFrame:
    """No completed order for ``days`` days — or, with ``days = "auto"``, for longer than
    the customer's own median gap between orders × ``gap_multiplier`` (customers with one
    order: the median of all customers' gaps), at least ``min_days``; with ``no_event``,
    no event of that type for ``days`` days. One occurrence per lapse (the last order)."""
    t = pb.trigger
    if t.no_event:
        _need(ws, "events", "winback")
        e = ws.table("events")
        e = e.filter((e.event_type == t.no_event) & (e.occurred_at < lit_ts(instant)))
        last = e.group_by("customer_id").agg(last_at=e.occurred_at.max()).to_pandas()
        days = (instant - last.last_at).dt.total_seconds() / 86400
        hit = last[days >= float(t.days or 0)].copy()
        hit["days_since_order"] = None
        hit["occurrence"] = "no_" + t.no_event + ":" + _keys(hit.last_at, _day)
        return _frame(hit)
    _need(ws, "orders", "winback")
    o = completed_orders(ws)
    o = o.filter(o.ordered_at < lit_ts(instant))
    gap = (o.ordered_at.epoch_seconds() - o.ordered_at.lag().over(
        group_by=o.customer_id, order_by=o.ordered_at).epoch_seconds()).cast("float64") / 86400
    per = o.mutate(gap=gap).group_by("customer_id").agg(last_at=o.ordered_at.max(), orders=o.ordered_at.count(),
                                                       median_gap=gap.median()).to_pandas()
    since = (instant - per.last_at).dt.total_seconds() / 86400
    if t.days == "auto":
        typical = float(per.median_gap.median()) if per.median_gap.notna().any() else float(t.min_days)
        threshold = np.maximum(per.median_gap.fillna(typical).to_numpy() * t.gap_multiplier, t.min_days)
    else:
        threshold = np.full(len(per), float(t.days or 0))
    hit = per[since.to_numpy() >= threshold].copy()
    # what a customer would count: calendar days since the day of the last order
    hit["days_since_order"] = (instant.normalize() - hit.last_at.dt.normalize()).dt.days.astype(int).to_numpy()
    hit["occurrence"] = "lapse:" + _keys(hit.last_at, _day)
    return _frame(hit)


def churn_risk(ws: Workspace, pb: Playbook, instant: pd.Timestamp, scores: pd.DataFrame | None) -> pd.DataFrame:
    """Customers whose band in the latest churn score snapshot is one of ``bands``; one
    occurrence per risk episode (the customer's last order, or none)."""
    if scores is None:
        from retentio.data.errors import ModelMissing

        raise ModelMissing("churn", ws.path)
    hit = scores[scores.band.isin(pb.trigger.bands)][["customer_id"]].copy()
    hit["customer_id"] = hit.customer_id.astype(str)
    last = _last_orders(ws, instant)
    hit = hit.merge(last, on="customer_id", how="left")
    hit["days_since_order"] = (instant.normalize() - hit.last_at.dt.normalize()).dt.days.astype("Int64")
    hit["occurrence"] = "risk:" + _keys(hit.last_at, lambda v: _day(v) if pd.notna(v) else "none")
    return _frame(hit)


def _last_orders(ws: Workspace, instant: pd.Timestamp) -> pd.DataFrame:
    if not ws.is_loaded("orders"):
        return pd.DataFrame({"customer_id": pd.Series(dtype=str), "last_at": pd.Series(dtype="datetime64[ns]")})
    o = completed_orders(ws)
    o = o.filter(o.ordered_at < lit_ts(instant))
    last = o.group_by("customer_id").agg(last_at=o.ordered_at.max()).to_pandas()
    last["customer_id"] = last.customer_id.astype(str)
    return last


# ------------------------------------------------------------------------------ dates
def birthday(ws: Workspace, pb: Playbook, instant: pd.Timestamp) -> pd.DataFrame:
    """The next birthday falls ``days_before`` days after ``as_of`` (or up to
    ``within_days`` − 1 days fewer: a missed run catches up); 29 February is kept on
    28 February in other years. One occurrence per birthday year."""
    _need(ws, "customers", "birthday")
    c = ws.table("customers")
    c = c.filter(c.birth_date.notnull()).select("customer_id", "birth_date").to_pandas()
    today = instant.date()
    born = pd.to_datetime(c.birth_date)

    def next_birthday(year: int) -> pd.Series:
        day = np.where((born.dt.month == 2) & (born.dt.day == 29) & ~_leap(year), 28, born.dt.day)
        return pd.to_datetime(pd.DataFrame({"year": year, "month": born.dt.month, "day": day}))

    this = next_birthday(today.year)
    nxt = this.where(this.dt.date >= today, next_birthday(today.year + 1))
    ahead = (nxt - pd.Timestamp(today)).dt.days
    t = pb.trigger
    low = max(t.days_before - t.within_days + 1, 0)
    hit = c[(ahead >= low) & (ahead <= t.days_before)].copy()
    hit["birthday"] = nxt[hit.index].dt.date
    hit["occurrence"] = "birthday:" + nxt[hit.index].dt.year.astype(str)
    return _frame(hit)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def renewal(ws: Workspace, pb: Playbook, instant: pd.Timestamp) -> pd.DataFrame:
    """A paid subscription ends (``ended_at`` ahead) or, open, renews (every
    ``billing_months`` after it started) within ``days_before`` days after ``as_of``. One
    occurrence per subscription and date."""
    _need(ws, "subscriptions", "renewal")
    s = ws.table("subscriptions")
    s = s.filter(~s.is_trial.fill_null(False) & (s.mrr > 0) & (s.started_at < lit_ts(instant)))
    s = s.filter(s.ended_at.isnull() | (s.ended_at >= lit_ts(instant)))
    subs = s.select("subscription_id", "customer_id", "started_at", "ended_at", "plan").to_pandas()
    end = subs.ended_at.copy()
    open_ = end.isna()
    if open_.any():
        start = subs.started_at[open_]
        period = pb.trigger.billing_months
        months = ((instant.year - start.dt.year) * 12 + (instant.month - start.dt.month)).clip(lower=0)
        months = (months // period) * period
        nxt = [s0 + pd.DateOffset(months=int(k)) for s0, k in zip(start, months)]
        nxt = [n if n >= instant else n + pd.DateOffset(months=period) for n in nxt]
        end[open_] = nxt
    ahead = (end - instant).dt.total_seconds() / 86400
    hit = subs[(ahead >= 0) & (ahead < pb.trigger.days_before + 1)].copy()
    hit["renewal_date"] = end[hit.index].dt.date
    hit["plan"] = hit.plan.fillna("")
    hit["occurrence"] = "renewal:" + hit.subscription_id.astype(str) + ":" + _keys(end[hit.index], _day)
    hit = hit.sort_values("renewal_date").drop_duplicates("customer_id")
    return _frame(hit)


def replenishment(ws: Workspace, pb: Playbook, instant: pd.Timestamp) -> pd.DataFrame:
    """A consumable is due: the last order of the item + the customer's median interval
    between orders of it (customers who bought it once: the item's median interval across
    customers), falling within ``days_before`` days after ``as_of`` (or up to
    ``within_days`` days before it). The soonest due item per customer; one occurrence
    per item and last order."""
    _need(ws, "order_items", "replenishment")
    _need(ws, "orders", "replenishment")
    o = completed_orders(ws)
    o = o.filter(o.ordered_at < lit_ts(instant))
    items = ws.table("order_items")
    if pb.trigger.categories:
        items = items.filter(items.category.isin(list(pb.trigger.categories)))
    lines = items.join(o, "order_id").select("customer_id", "item_id", "name", "ordered_at")
    day = lines.ordered_at.date()
    lines = lines.mutate(day=day).distinct(on=["customer_id", "item_id", "day"], keep="first")
    gap = (lines.ordered_at.epoch_seconds() - lines.ordered_at.lag().over(
        group_by=[lines.customer_id, lines.item_id], order_by=lines.ordered_at).epoch_seconds()).cast("float64") / 86400
    lines = lines.mutate(gap=gap)
    per = lines.group_by(["customer_id", "item_id"]).agg(last_at=lines.ordered_at.max(), gap=lines.gap.median(),
                                                         name=lines.name.max()).to_pandas()
    if per.empty:
        return _frame(per.assign(occurrence=pd.Series(dtype=str)))
    typical = per.groupby("item_id").gap.median()
    interval = per.gap.fillna(per.item_id.map(typical))
    per = per[interval.notna()].copy()
    per["due"] = per.last_at + pd.to_timedelta(interval[per.index], unit="D")
    ahead = (per.due - instant).dt.total_seconds() / 86400
    t = pb.trigger
    hit = per[(ahead <= t.days_before) & (ahead > -t.within_days)].sort_values("due").drop_duplicates("customer_id")
    hit = hit.assign(due_date=hit.due.dt.date, due_item=hit.name.fillna(hit.item_id),
                     items=[[{"item_id": i, "name": n if isinstance(n, str) else i}] for i, n in zip(hit.item_id, hit.name)],
                     occurrence="replenish:" + hit.item_id.astype(str) + ":" + _keys(hit.last_at, _day))
    return _frame(hit)


def onboarding(ws: Workspace, pb: Playbook, instant: pd.Timestamp) -> pd.DataFrame:
    """Step ``s`` of the series is due ``s`` days after the customer's first completed
    order (customers with none: their signup), within ``within_days``. The latest due step
    per customer; one occurrence per step."""
    if ws.is_loaded("orders"):
        o = completed_orders(ws)
        o = o.filter(o.ordered_at < lit_ts(instant))
        first = o.group_by("customer_id").agg(first_at=o.ordered_at.min()).to_pandas()
    else:
        first = pd.DataFrame({"customer_id": [], "first_at": []})
    if ws.is_loaded("customers"):
        c = ws.table("customers")
        c = c.filter(c.signup_at.notnull() & (c.signup_at < lit_ts(instant)))
        signed = c.select("customer_id", first_at=c.signup_at).to_pandas()
        first = pd.concat([first, signed[~signed.customer_id.isin(first.customer_id)]], ignore_index=True)
    if first.empty:
        raise NotLoaded("orders or customers", "the onboarding trigger")
    age = (instant.normalize() - pd.to_datetime(first.first_at).dt.normalize()).dt.days
    hits = []
    for step in sorted(pb.trigger.steps):
        due = (age >= step) & (age < step + pb.trigger.within_days)
        part = first[due].copy()
        part["step"] = step
        part["occurrence"] = f"onboarding:{step}"
        hits.append(part)
    hit = pd.concat(hits, ignore_index=True).sort_values("step").drop_duplicates("customer_id", keep="last")
    return _frame(hit)


def thank_you(ws: Workspace, pb: Playbook, instant: pd.Timestamp) -> pd.DataFrame:
    """Completed orders in the ``within_days`` days before ``as_of``: the latest per
    customer; one occurrence per order."""
    _need(ws, "orders", "thank_you")
    o = completed_orders(ws)
    since = instant - pd.Timedelta(days=pb.trigger.within_days)
    o = o.filter((o.ordered_at < lit_ts(instant)) & (o.ordered_at >= lit_ts(since)))
    rows = o.select("customer_id", "order_id", "ordered_at").to_pandas()
    hit = rows.sort_values("ordered_at").drop_duplicates("customer_id", keep="last")
    hit["occurrence"] = "order:" + hit.order_id.astype(str)
    return _frame(hit)


def detractor_followup(ws: Workspace, pb: Playbook, instant: pd.Timestamp) -> pd.DataFrame:
    """NPS answers of at most ``nps_max`` or CSAT of at most ``csat_max`` in the
    ``within_days`` days before ``as_of`` (named customers only): the latest per customer;
    one occurrence per answer."""
    _need(ws, "surveys", "detractor_followup")
    s = ws.table("surveys")
    t = pb.trigger
    since = instant - pd.Timedelta(days=t.within_days)
    bad = ((s.kind == "nps") & (s.score <= t.nps_max)) | ((s.kind == "csat") & (s.score <= t.csat_max))
    s = s.filter(bad & s.customer_id.notnull() & (s.answered_at < lit_ts(instant)) & (s.answered_at >= lit_ts(since)))
    rows = s.select("customer_id", "kind", "score", "answered_at").to_pandas()
    hit = rows.sort_values("answered_at").drop_duplicates("customer_id", keep="last")
    hit["occurrence"] = "survey:" + hit.kind + ":" + _keys(hit.answered_at, _iso)
    return _frame(hit)


# ------------------------------------------------------------------------------ surveys
def _delay(pb: Playbook) -> pd.Timedelta:
    return pd.Timedelta(days=pb.trigger.days_after if pb.trigger.days_after is not None
                        else SURVEY_DELAY_DAYS.get(pb.kind, 0))


def nps_survey(ws: Workspace, pb: Playbook, instant: pd.Timestamp) -> pd.DataFrame:
    """The customer's ``after_order``-th completed order was ``days_after`` days ago (up
    to ``within_days`` more: a missed run catches up) — asked once the product has been
    used, not at checkout; one occurrence per that order. With ``every_months``, every
    customer with a completed order is also due once per period of that many months
    ("relationship NPS"; occurrence ``nps:period:YYYY-MM``, the period's first month).
    How often one person is asked is the playbook's ``[survey] min_days_between``
    (checked against every survey playbook when the run is planned), not the trigger's."""
    _need(ws, "orders", "nps_survey")
    t = pb.trigger
    o = completed_orders(ws)
    o = o.filter(o.ordered_at < lit_ts(instant))
    rank = ibis.row_number().over(group_by=o.customer_id, order_by=[o.ordered_at, o.order_id])
    nth = o.mutate(k=rank).filter(lambda x: x.k == t.after_order - 1)
    lo, hi = instant - _delay(pb) - pd.Timedelta(days=t.within_days), instant - _delay(pb)
    nth = nth.filter((nth.ordered_at >= lit_ts(lo)) & (nth.ordered_at < lit_ts(hi)))
    hit = nth.select("customer_id", "order_id").to_pandas()
    hit["occurrence"] = "nps:order:" + hit.order_id.astype(str)
    parts = [hit]
    if t.every_months:
        buyers = o.select("customer_id").distinct().to_pandas()
        month = (instant.year * 12 + instant.month - 1) // t.every_months * t.every_months
        buyers["occurrence"] = f"nps:period:{month // 12:04d}-{month % 12 + 1:02d}"
        parts.append(buyers[~buyers.customer_id.astype(str).isin(hit.customer_id.astype(str))])
    return _frame(pd.concat(parts, ignore_index=True))


def csat_after_ticket(ws: Workspace, pb: Playbook, instant: pd.Timestamp) -> pd.DataFrame:
    """A support ticket was resolved ``days_after`` days ago (up to ``within_days``
    more): the latest per customer; one occurrence per ticket (its opening time — the
    tickets table has no id of its own)."""
    _need(ws, "tickets", "csat_after_ticket")
    t = ws.table("tickets")
    lo = instant - _delay(pb) - pd.Timedelta(days=pb.trigger.within_days)
    hi = instant - _delay(pb)
    t = t.filter(t.resolved_at.notnull() & (t.resolved_at >= lit_ts(lo)) & (t.resolved_at < lit_ts(hi)))
    rows = t.select("customer_id", "opened_at", "resolved_at").to_pandas()
    hit = rows.sort_values("resolved_at").drop_duplicates("customer_id", keep="last")
    hit["occurrence"] = "ticket:" + _keys(hit.opened_at, _iso)
    return _frame(hit)


def exit_survey(ws: Workspace, pb: Playbook, instant: pd.Timestamp) -> pd.DataFrame:
    """A subscription ended ``days_after`` days ago (up to ``within_days`` more) — with
    ``voluntary_only``, not an involuntary end (a failed payment): the latest per
    customer; one occurrence per subscription. ``plan`` is the plan they left."""
    _need(ws, "subscriptions", "exit_survey")
    s = ws.table("subscriptions")
    lo = instant - _delay(pb) - pd.Timedelta(days=pb.trigger.within_days)
    hi = instant - _delay(pb)
    s = s.filter(s.ended_at.notnull() & (s.ended_at >= lit_ts(lo)) & (s.ended_at < lit_ts(hi)))
    if pb.trigger.voluntary_only:
        s = s.filter(s.churn_type.isnull() | (s.churn_type != "involuntary"))
    rows = s.select("subscription_id", "customer_id", "ended_at", "plan").to_pandas()
    hit = rows.sort_values("ended_at").drop_duplicates("customer_id", keep="last")
    hit["plan"] = hit.plan.fillna("")
    hit["occurrence"] = "exit:" + hit.subscription_id.astype(str)
    return _frame(hit)


def feedback_reply(ws: Workspace, pb: Playbook, instant: pd.Timestamp) -> pd.DataFrame:
    """Survey answers of named customers in the ``within_days`` days before ``as_of`` —
    with ``empty_comment_only`` (the default) only those without a comment, so the reply
    can thank and ask what lies behind the score: the latest per customer; one
    occurrence per answer (kind and second of the answer). Answers are read from both
    places they live: the store's answers given through survey links (also those not yet
    appended to the canonical table) and the canonical ``surveys`` table (imported
    answers) — the same answer in both has the same occurrence, so it is replied to
    once. ``score`` is the answer's score, ``answer_comment`` its comment."""
    from retentio.actions.feedback.surveys import answers_between

    since = instant - pd.Timedelta(days=pb.trigger.within_days)
    parts = [answers_between(ws.store, since.to_pydatetime(), instant.to_pydatetime(), ws.settings.timezone)
             [["customer_id", "kind", "score", "comment", "answered_at"]]]
    if ws.is_loaded("surveys"):
        s = ws.table("surveys")
        s = s.filter(s.customer_id.notnull() & (s.answered_at < lit_ts(instant)) & (s.answered_at >= lit_ts(since)))
        parts.append(s.select("customer_id", "kind", "score", "comment", "answered_at").to_pandas())
    rows = pd.concat([p for p in parts if not p.empty], ignore_index=True) if any(not p.empty for p in parts) \
        else parts[0]
    rows["customer_id"] = rows.customer_id.astype(str)
    if pb.trigger.empty_comment_only:
        rows = rows[rows.comment.fillna("").astype(str).str.strip() == ""]
    hit = rows.sort_values("answered_at").drop_duplicates("customer_id", keep="last").copy()
    hit = hit.rename(columns={"comment": "answer_comment"})
    hit["occurrence"] = "answer:" + hit.kind.astype(str) + ":" + _keys(
        hit.answered_at, lambda v: pd.Timestamp(v).floor("s").isoformat())
    return _frame(hit)


def _iso(value: object) -> str:
    return pd.Timestamp(value).isoformat()


def _keys(values: pd.Series, fmt: Callable[[object], str]) -> pd.Series:
    """``fmt`` of each value as strings (an empty series stays a string series, so it
    can be concatenated with a prefix)."""
    return pd.Series([fmt(v) for v in values], index=values.index, dtype=object)


def item_names(ws: Workspace, ids: set[str]) -> dict[str, str]:
    """The names of items, from the order lines (an item never ordered keeps its id)."""
    if not ids or not ws.is_loaded("order_items"):
        return {}
    lines = ws.table("order_items")
    wanted = ibis.memtable(pd.DataFrame({"item_id": sorted(ids)}))
    named = lines.filter(lines.name.notnull())
    named = named.join(wanted, named.item_id.cast("string") == wanted.item_id).select(named.item_id, named.name)
    found = named.group_by("item_id").agg(name=named.name.max()).to_pandas()
    return dict(zip(found.item_id.astype(str), found.name))


def browsing(ws: Workspace, pb: Playbook, instant: pd.Timestamp) -> pd.DataFrame:
    """Cart, wishlist or viewed items: events of the kind's type since the customer's
    last order, the latest at least ``hours`` before ``as_of`` — and at most
    ``within_days`` days more, so a missed run catches up but a cart of last month is not
    "abandoned" today — with no order after it. The items are the distinct items of those
    events (up to five, latest first); one occurrence per latest event."""
    _need(ws, "events", pb.kind)
    event = BROWSE_EVENTS[pb.kind]
    e = ws.table("events")
    since = instant - pd.Timedelta(hours=pb.trigger.hours) - pd.Timedelta(days=pb.trigger.within_days)
    e = e.filter((e.event_type == event) & (e.occurred_at < lit_ts(instant)) & (e.occurred_at >= lit_ts(since)))
    rows = e.select("customer_id", "occurred_at", "item_id").to_pandas()
    rows["customer_id"] = rows.customer_id.astype(str)
    last = _last_orders(ws, instant)
    rows = rows.merge(last, on="customer_id", how="left")
    rows = rows[rows.last_at.isna() | (rows.occurred_at > rows.last_at)]
    if rows.empty:
        return _frame(rows.assign(occurrence=pd.Series(dtype=str)))
    latest = rows.groupby("customer_id").occurred_at.max()
    ripe = latest[latest + pd.Timedelta(hours=pb.trigger.hours) <= instant]
    rows = rows[rows.customer_id.isin(ripe.index)].sort_values("occurred_at", ascending=False)
    names = item_names(ws, set(rows.item_id.dropna().astype(str)))
    items = rows.dropna(subset=["item_id"]).drop_duplicates(["customer_id", "item_id"]).groupby("customer_id") \
        .item_id.apply(lambda s: [{"item_id": str(i), "name": names.get(str(i), str(i))} for i in s.head(5)])
    hit = pd.DataFrame({"customer_id": ripe.index.astype(str), "latest": ripe.to_numpy()})
    hit["items"] = hit.customer_id.map(items).map(lambda v: v if isinstance(v, list) else [])
    hit["occurrence"] = event + ":" + _keys(hit.latest, _iso)
    return _frame(hit)


def everyone(ws: Workspace, pb: Playbook, instant: pd.Timestamp) -> pd.DataFrame:
    """early_access: every known customer (the audience narrows it); one occurrence per
    send (``occurrence``, default the day)."""
    c = ws.customers()
    ids = c.select("customer_id").to_pandas()
    ids["occurrence"] = "early_access:" + (pb.trigger.occurrence or _day(instant))
    return _frame(ids)


def triggered(ws: Workspace, pb: Playbook, instant: pd.Timestamp, scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """The customers ``pb``'s trigger fires for as of ``instant``."""
    makers: dict[str, Callable[[Workspace, Playbook, pd.Timestamp], pd.DataFrame]] = {
        "winback": winback, "birthday": birthday, "renewal": renewal, "replenishment": replenishment,
        "onboarding": onboarding, "thank_you": thank_you, "detractor_followup": detractor_followup,
        "abandoned_cart": browsing, "wishlist": browsing, "viewed_item": browsing, "early_access": everyone,
        "nps_survey": nps_survey, "csat_after_ticket": csat_after_ticket, "exit_survey": exit_survey,
        "feedback_reply": feedback_reply,
    }
    if pb.kind == "churn_risk":
        return churn_risk(ws, pb, instant, scores)
    if pb.kind not in makers:  # pragma: no cover - the playbook's schema lists the kinds
        raise RetentioError(f"no trigger for kind {pb.kind!r}")
    return makers[pb.kind](ws, pb, instant)


def as_of_instant(ws: Workspace, as_of: dt.date | None) -> pd.Timestamp:
    """The start of day ``as_of`` (default: the day after the last recorded activity)."""
    from retentio.analytics.churn.train import data_end

    return pd.Timestamp(as_of) if as_of else data_end(ws)


__all__ = ["COLUMNS", "as_of_instant", "triggered"]
