"""Point-in-time churn features: for a cutoff instant c, one row per customer built only
from data *strictly before* c.

The signals are the usual early-warning list (docs/definitions.md, "Churn"): falling purchase
frequency and spend, a customer overdue against their own rhythm, fading logins and
usage, plan downgrades, failed payments and involuntary cancellations, support tickets,
low NPS/CSAT, returns, discount dependence, acquisition channel and attributes, and the
BG/NBD probability of being alive (Fader, Hardie & Lee 2005, eq. 11).

Every aggregate is an Ibis expression filtered on ``time < c`` (DuckDB or Spark); only
the ratios of the per-customer aggregates are formed in pandas. A subscription's
``ended_at`` is used only as "ended before c" or "not ended before c", so a later change
to an end date (a cancellation recorded after c) cannot reach the features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import ibis
import numpy as np
import pandas as pd

from retentio.analytics.base import completed_orders, lit_ts, to_float

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from retentio.data.workspace import Workspace

DAY = 86400


@dataclass(frozen=True)
class Feature:
    name: str
    meaning: str
    source: str  # the table it needs


#: the model's numeric features (categorical customer attributes are added per workspace)
FEATURES: tuple[Feature, ...] = (
    Feature("recency_days", "days since the last completed order", "orders"),
    Feature("frequency", "completed orders so far", "orders"),
    Feature("monetary_avg", "average completed order value", "orders"),
    Feature("tenure_days", "days since the first order or signup", "orders"),
    Feature("orders_30", "orders in the last 30 days", "orders"),
    Feature("orders_prev_30", "orders 30–60 days before", "orders"),
    Feature("order_trend_30", "orders_30 − orders_prev_30", "orders"),
    Feature("spend_trend_90_pct", "spend of the last 90 days against the 90 before, %", "orders"),
    Feature("mean_gap_days", "mean days between orders", "orders"),
    Feature("overdue_ratio", "recency / mean gap between orders", "orders"),
    Feature("return_share", "returned / (completed + returned) orders", "orders"),
    Feature("discount_share", "share of completed orders with a discount", "orders"),
    Feature("p_alive", "BG/NBD probability the customer is still alive", "orders"),
    Feature("logins_30", "logins in the last 30 days", "events"),
    Feature("logins_prev_30", "logins 30–60 days before", "events"),
    Feature("login_trend_pct", "logins of the last 30 days against the 30 before, %", "events"),
    Feature("days_since_login", "days since the last login", "events"),
    Feature("usage_30", "usage events in the last 30 days", "events"),
    Feature("usage_trend_pct", "usage of the last 30 days against the 30 before, %", "events"),
    Feature("payment_failures_90", "payment_failed events in the last 90 days", "events"),
    Feature("subscribed", "a paid subscription covers the cutoff", "subscriptions"),
    Feature("mrr_now", "MRR at the cutoff", "subscriptions"),
    Feature("mrr_change_90", "MRR now minus MRR 90 days before", "subscriptions"),
    Feature("downgrades_90", "plan changes to a lower MRR in the last 90 days", "subscriptions"),
    Feature("involuntary_cancels", "subscriptions ended involuntarily before the cutoff", "subscriptions"),
    Feature("tickets_90", "support tickets opened in the last 90 days", "tickets"),
    Feature("tickets_30", "support tickets opened in the last 30 days", "tickets"),
    Feature("tickets_unresolved", "tickets still open at the cutoff", "tickets"),
    Feature("last_nps", "the last NPS answer (0–10)", "surveys"),
    Feature("days_since_nps", "days since that answer", "surveys"),
    Feature("last_csat", "the last CSAT answer (1–5)", "surveys"),
)

#: columns that are not features but make reasons checkable ("gave NPS 3 on 2025-05-02")
AUX = ("last_nps_at", "last_csat_at", "last_downgrade_at", "revenue_365", "mrr_90_ago")

#: customer attributes never used as features (identifiers, contact data, dates)
_SKIP_ATTRIBUTES = {"customer_id", "email", "phone", "signup_at", "birth_date", "name", "first_name",
                    "last_name"}
MAX_CATEGORIES = 50
#: the BG/NBD behind ``p_alive`` (and the CLV models behind value at risk) are fitted on at
#: most this many customers, a seeded sample: their few parameters are as well estimated
FIT_SAMPLE_ROWS = 200_000


def _age_days(ts: ir.Value, cutoff_epoch: int) -> ir.Value:
    """Days from ``ts`` to the cutoff (positive before it)."""
    return (ibis.literal(cutoff_epoch).cast("int64") - ts.epoch_seconds().cast("int64")).cast("float64") / DAY


def _epoch(cutoff: pd.Timestamp) -> int:
    return int((pd.Timestamp(cutoff) - pd.Timestamp("1970-01-01")).total_seconds())


def order_aggregates(ws: Workspace, cutoff: pd.Timestamp) -> ir.Table:
    """Per customer with a completed order before the cutoff: the order aggregates."""
    c, ep = lit_ts(cutoff), _epoch(cutoff)
    o = completed_orders(ws)
    o = o.filter(o.ordered_at < c)
    # the age is projected once: inside every aggregate the engine would recompute it
    o = o.mutate(age=_age_days(o.ordered_at, ep))
    age = o.age
    extra = {}
    if "discount" in o.columns:
        extra["discounted"] = o.count(where=o.discount.fill_null(0) > 0)
    return o.group_by("customer_id").agg(
        last_age=age.min(), first_age=age.max(), frequency=o.count(),
        revenue_total=to_float(o.amount.sum()),
        revenue_365=to_float(o.amount.sum(where=age < 365)),
        orders_30=o.count(where=age < 30), orders_prev_30=o.count(where=(age >= 30) & (age < 60)),
        spend_90=to_float(o.amount.sum(where=age < 90)),
        spend_prev_90=to_float(o.amount.sum(where=(age >= 90) & (age < 180))),
        **extra,
    )


def _returns(ws: Workspace, cutoff: pd.Timestamp) -> ir.Table:
    o = ws.table("orders")
    o = o.filter((o.ordered_at < lit_ts(cutoff)) & (o.status == "returned"))
    return o.group_by("customer_id").agg(returned=o.count())


def _events(ws: Workspace, cutoff: pd.Timestamp) -> ir.Table:
    c, ep = lit_ts(cutoff), _epoch(cutoff)
    e = ws.table("events")
    e = e.filter(e.occurred_at < c)
    e = e.mutate(age=_age_days(e.occurred_at, ep))
    age = e.age
    login, usage = e.event_type == "login", e.event_type == "usage"
    return e.group_by("customer_id").agg(
        logins_30=e.count(where=login & (age < 30)),
        logins_prev_30=e.count(where=login & (age >= 30) & (age < 60)),
        days_since_login=age.min(where=login),
        usage_30=e.count(where=usage & (age < 30)),
        usage_prev_30=e.count(where=usage & (age >= 30) & (age < 60)),
        payment_failures_90=e.count(where=(e.event_type == "payment_failed") & (age < 90)),
    )


def _subscriptions(ws: Workspace, cutoff: pd.Timestamp) -> ir.Table:
    c, ep = lit_ts(cutoff), _epoch(cutoff)
    before = lit_ts(pd.Timestamp(cutoff) - pd.Timedelta(days=90))
    s = ws.table("subscriptions")
    s = s.filter((s.started_at < c) & ~s.is_trial.fill_null(False))
    # "ended before c" is known at c; a later end date is not, so it only means "running"
    ended = s.ended_at.notnull() & (s.ended_at < c)
    covers_then = (s.started_at <= before) & (s.ended_at.isnull() | (s.ended_at > before))
    prev = s.mrr.lag().over(ibis.window(group_by=s.customer_id, order_by=s.started_at))
    s = s.mutate(down=(prev.notnull() & (s.mrr < prev)), age=_age_days(s.started_at, ep),
                 ended=ended, covers_then=covers_then)
    return s.group_by("customer_id").agg(
        subscribed=(~s.ended & (s.mrr > 0)).any().cast("int64"),
        mrr_now=to_float(s.mrr.sum(where=~s.ended)),
        mrr_90_ago=to_float(s.mrr.sum(where=s.covers_then)),
        downgrades_90=s.count(where=s.down & (s.age < 90)),
        last_downgrade_at=s.started_at.max(where=s.down),
        involuntary_cancels=s.count(where=s.ended & (s.churn_type == "involuntary")),
    )


def _tickets(ws: Workspace, cutoff: pd.Timestamp) -> ir.Table:
    c, ep = lit_ts(cutoff), _epoch(cutoff)
    t = ws.table("tickets")
    t = t.filter(t.opened_at < c)
    t = t.mutate(age=_age_days(t.opened_at, ep))
    return t.group_by("customer_id").agg(
        tickets_90=t.count(where=t.age < 90), tickets_30=t.count(where=t.age < 30),
        tickets_unresolved=t.count(where=t.resolved_at.isnull() | (t.resolved_at >= c)),
    )


def _surveys(ws: Workspace, cutoff: pd.Timestamp) -> ir.Table:
    c = lit_ts(cutoff)
    s = ws.table("surveys")
    s = s.filter((s.answered_at < c) & s.customer_id.notnull())
    nps, csat = s.kind == "nps", s.kind == "csat"
    return s.group_by("customer_id").agg(
        last_nps=s.score.argmax(s.answered_at, where=nps),
        last_nps_at=s.answered_at.max(where=nps),
        last_csat=s.score.argmax(s.answered_at, where=csat),
        last_csat_at=s.answered_at.max(where=csat),
    )


def _pct_change(now: pd.Series, before: pd.Series) -> pd.Series:
    """100 × (now − before) / before; null when there was nothing before."""
    before = before.astype("float64")
    return 100.0 * (now.astype("float64") - before) / before.where(before > 0)


def attribute_columns(ws: Workspace) -> tuple[list[str], list[str]]:
    """(categorical, numeric) customer attributes usable as features."""
    if not ws.is_loaded("customers"):
        return [], []
    schema = ws.table("customers").schema()
    cats, nums = [], []
    for name, dtype in schema.items():
        if name in _SKIP_ATTRIBUTES:
            continue
        if dtype.is_string() or dtype.is_boolean():
            cats.append(name)
        elif dtype.is_numeric():
            nums.append(name)
    return cats, nums


def build_features(ws: Workspace, cutoff: pd.Timestamp, customers: ir.Table | None = None) -> pd.DataFrame:
    """One row per customer who ordered (or, without orders, appears in any table) before
    ``cutoff``: ``customer_id``, the :data:`FEATURES` the workspace has data for, the
    categorical attributes and the :data:`AUX` columns. ``customers`` restricts the rows."""
    cutoff = pd.Timestamp(cutoff)
    parts: list[ir.Table] = []
    if ws.is_loaded("orders"):
        parts.append(order_aggregates(ws, cutoff))
        parts.append(_returns(ws, cutoff))
    for name, fn in (("events", _events), ("subscriptions", _subscriptions), ("tickets", _tickets),
                     ("surveys", _surveys)):
        if ws.is_loaded(name):
            parts.append(fn(ws, cutoff))
    cust = ws.customers()
    base = cust.filter(cust.signup_at.isnull() | (cust.signup_at < lit_ts(cutoff))) \
        if "signup_at" in cust.columns else cust
    cats, nums = attribute_columns(ws)
    keep = ["customer_id", *cats, *nums] + (["signup_at"] if "signup_at" in base.columns else [])
    frame = base.select(*keep)
    if customers is not None:
        frame = frame.semi_join(customers, "customer_id")
    for p in parts:
        p = p.rename(_cid="customer_id")
        frame = frame.left_join(p, frame.customer_id == p._cid).drop("_cid")
    # money sums are cast to float in the engine; DECIMAL attributes become floats in _derive
    return _derive(frame.to_pandas(), cutoff, cats, nums)


def _derive(df: pd.DataFrame, cutoff: pd.Timestamp, cats: list[str], nums: list[str]) -> pd.DataFrame:
    out = pd.DataFrame({"customer_id": df.customer_id.astype(str)})
    if "frequency" in df:
        freq = df.frequency.fillna(0).astype("float64")
        out["recency_days"] = df.last_age
        out["frequency"] = freq
        out["monetary_avg"] = df.revenue_total / freq.where(freq > 0)
        out["orders_30"] = df.orders_30.fillna(0)
        out["orders_prev_30"] = df.orders_prev_30.fillna(0)
        out["order_trend_30"] = out.orders_30 - out.orders_prev_30
        out["spend_trend_90_pct"] = _pct_change(df.spend_90.fillna(0), df.spend_prev_90.fillna(0))
        gap = (df.first_age - df.last_age) / (freq - 1).where(freq > 1)
        out["mean_gap_days"] = gap
        out["overdue_ratio"] = df.last_age / gap.where(gap > 0)
        returned = df.returned.fillna(0).astype("float64")
        out["return_share"] = returned / (freq + returned).where(freq + returned > 0)
        if "discounted" in df:
            out["discount_share"] = df.discounted / freq.where(freq > 0)
        out["revenue_365"] = df.revenue_365.fillna(0.0)
        tenure = df.first_age
    else:
        tenure = pd.Series(np.nan, index=df.index)
    if "signup_at" in df:
        since_signup = (cutoff - pd.to_datetime(df.signup_at)).dt.total_seconds() / DAY
        tenure = np.fmax(tenure, since_signup)
    out["tenure_days"] = tenure
    if "logins_30" in df:
        for c in ("logins_30", "logins_prev_30", "usage_30", "payment_failures_90"):
            out[c] = df[c].fillna(0)
        out["login_trend_pct"] = _pct_change(out.logins_30, out.logins_prev_30)
        out["days_since_login"] = df.days_since_login
        out["usage_trend_pct"] = _pct_change(out.usage_30, df.usage_prev_30.fillna(0))
    if "mrr_now" in df:
        for c in ("subscribed", "mrr_now", "downgrades_90", "involuntary_cancels", "mrr_90_ago"):
            out[c] = df[c].fillna(0)
        out["mrr_change_90"] = out.mrr_now - out.mrr_90_ago
        out["last_downgrade_at"] = df.last_downgrade_at
    if "tickets_90" in df:
        for c in ("tickets_90", "tickets_30", "tickets_unresolved"):
            out[c] = df[c].fillna(0)
    if "last_nps" in df:
        out["last_nps"] = df.last_nps
        out["last_nps_at"] = df.last_nps_at
        out["days_since_nps"] = (cutoff - pd.to_datetime(df.last_nps_at)).dt.total_seconds() / DAY
        out["last_csat"] = df.last_csat
        out["last_csat_at"] = df.last_csat_at
    for c in cats:
        out[c] = df[c].astype("string")
    for c in nums:
        out[c] = df[c].astype("float64")
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c]):
            out[c] = _steady(out[c].to_numpy("float64", na_value=np.nan))
    return out


def _steady(x: np.ndarray) -> np.ndarray:
    """``x`` rounded to 12 significant digits. The engine sums in parallel, so a total can
    differ in its last bits from run to run; rounded, the features (and a linear model's
    probabilities) are the same each time."""
    finite = np.isfinite(x) & (x != 0)
    out = x.copy()
    scale = 10.0 ** (11 - np.floor(np.log10(np.abs(x[finite]))))
    out[finite] = np.round(x[finite] * scale) / scale
    return out


def add_p_alive(frame: pd.DataFrame) -> pd.DataFrame:
    """The BG/NBD P(alive) at the cutoff, from a model fitted on these customers' order
    histories up to it (repeat purchases x, t_x and T in days; FHL 2005 eq. 11)."""
    from retentio.analytics.clv import BetaGeoModel
    from retentio.data.errors import RetentioError

    if "frequency" not in frame:
        return frame
    has = frame.frequency > 0
    # repeat purchases: orders after the first (several orders on a day count once in
    # lifetimes' convention; here the order count keeps the feature cheap and monotone)
    x = (frame.frequency[has] - 1).to_numpy(float)
    T = frame.tenure_days[has].to_numpy(float)
    t_x = np.clip(T - frame.recency_days[has].to_numpy(float), 0, None)
    t_x = np.where(x > 0, t_x, 0.0)
    frame = frame.copy()
    frame["p_alive"] = np.nan
    if has.sum() < 50:
        return frame
    T = np.maximum(T, t_x)
    fit = np.arange(len(x))
    if len(fit) > FIT_SAMPLE_ROWS:  # the four parameters are as well estimated from a large sample
        fit = np.random.default_rng(0).choice(len(x), FIT_SAMPLE_ROWS, replace=False)
    try:
        model = BetaGeoModel().fit(x[fit], t_x[fit], T[fit])
        p = model.probability_alive(x, t_x, T)
    except (RetentioError, ValueError, FloatingPointError):
        return frame  # the model does not fit these histories: the feature is missing
    # a value the model cannot give (overflow on an extreme history) is missing, not a number
    frame.loc[has, "p_alive"] = np.where(np.isfinite(p) & (p >= 0) & (p <= 1), p, np.nan)
    return frame


__all__ = ["AUX", "FEATURES", "Feature", "add_p_alive", "attribute_columns", "build_features", "order_aggregates"]
