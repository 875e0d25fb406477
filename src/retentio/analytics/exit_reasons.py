"""Why customers leave: cancel reasons and exit-survey answers counted per period, plan
and segment, with voluntary and involuntary churn kept apart.

**Why apart.** Involuntary churn — a subscription lost to a payment that never went
through (an expired card, insufficient funds) — is a *dunning* problem, fixed by retrying
and reminding, not by the product; a customer who cancels ("too expensive", "found an
alternative") is telling you about the product. Mixing the two makes "payment_failed"
look like the top product complaint. The ``churn_type`` column says which; where it is
empty, a reason that names a payment failure (:data:`PAYMENT_REASONS`) counts as
involuntary, any other reason as voluntary, and no reason as ``unknown``.

**What counts as an exit.** A subscription row that ended with a cancel reason or a churn
type (a row that ended without either is a plan change: the next row continues it), dated
by ``ended_at``; trials that were not converted are counted only on request
(``include_trials``): a trial that lapses is a conversion problem, not churn. An exit-survey
answer counts as a voluntary exit dated by its answer, its text the reason. Pure: frames
in, frames out.
"""

from __future__ import annotations

import pandas as pd

#: reasons (lower-case, spaces or underscores) that mean a payment failure
PAYMENT_REASONS = frozenset({"payment_failed", "payment_failure", "card_declined", "card_expired",
                             "insufficient_funds", "payment_declined", "dunning", "billing_failed"})
NO_REASON = "(no reason given)"
FREQ = {"day": "D", "week": "W-MON", "month": "M", "quarter": "Q", "year": "Y"}


def _key(reason: object) -> str:
    return str(reason).strip().lower().replace(" ", "_").replace("-", "_")


def exits(subscriptions: pd.DataFrame, answers: pd.DataFrame | None = None, *,
          include_trials: bool = False) -> pd.DataFrame:
    """One row per exit: customer_id, ended_at, plan, reason, churn_type, source
    ("cancel_reason" or "exit_survey").

    ``subscriptions`` needs customer_id, ended_at, cancel_reason, churn_type (plan and
    is_trial optional); ``answers`` (optional) customer_id, answered_at, reason.
    """
    s = subscriptions
    ended = s["ended_at"].notna() & (s["cancel_reason"].notna() | s["churn_type"].notna())
    if not include_trials and "is_trial" in s:
        ended &= ~s["is_trial"].fillna(False).astype(bool)
    s = s[ended]
    reason = s["cancel_reason"].astype("object")
    given = s["churn_type"].astype("object").str.lower()
    inferred = reason.map(lambda r: "unknown" if pd.isna(r) else
                          "involuntary" if _key(r) in PAYMENT_REASONS else "voluntary")
    out = pd.DataFrame({
        "customer_id": s["customer_id"].astype("object"),
        "ended_at": pd.to_datetime(s["ended_at"]),
        "plan": s["plan"].astype("object") if "plan" in s else None,
        "reason": reason.where(reason.notna(), NO_REASON).astype(str),
        "churn_type": given.where(given.isin(["voluntary", "involuntary"]), inferred),
        "source": "cancel_reason",
    })
    if answers is not None and len(answers):
        text = answers["reason"].astype("object")
        text = text.where(text.notna() & (text.astype(str).str.strip() != ""), NO_REASON)
        out = pd.concat([out, pd.DataFrame({
            "customer_id": answers["customer_id"].astype("object"),
            "ended_at": pd.to_datetime(answers["answered_at"]),
            "plan": None, "reason": text.astype(str).str.strip(), "churn_type": "voluntary",
            "source": "exit_survey"})], ignore_index=True)
    return out.sort_values(["ended_at", "customer_id"], kind="stable").reset_index(drop=True)


def exit_reasons(exit_rows: pd.DataFrame, period: str = "month", by: str | None = None) -> pd.DataFrame:
    """Exits counted per period × churn type (× ``by``: a column of ``exit_rows`` such as
    ``plan`` or ``segment``) × source × reason: period_start, churn_type, [by], source,
    reason, exits, share (of the exits of that period, churn type and group, in %).
    """
    if period not in FREQ:
        raise ValueError(f"period must be one of {', '.join(FREQ)}")
    cols = ["period_start", "churn_type", *([by] if by else []), "source", "reason"]
    if exit_rows.empty:
        return pd.DataFrame(columns=[*cols, "exits", "share"])
    f = exit_rows.copy()
    f["period_start"] = f["ended_at"].dt.to_period(FREQ[period]).dt.start_time
    if by:
        f[by] = f[by].astype("object").where(f[by].notna(), "(none)")
    g = f.groupby(cols, dropna=False).size().rename("exits").reset_index()
    group = ["period_start", "churn_type", *([by] if by else [])]
    g["share"] = 100 * g["exits"] / g.groupby(group)["exits"].transform("sum")
    return g.sort_values([*group, "exits", "reason"], ascending=[True] * len(group) + [False, True],
                         kind="stable").reset_index(drop=True)


def reason_totals(exit_rows: pd.DataFrame) -> pd.DataFrame:
    """All periods together: churn_type, reason, exits, share (% of that churn type)."""
    if exit_rows.empty:
        return pd.DataFrame(columns=["churn_type", "reason", "exits", "share"])
    g = exit_rows.groupby(["churn_type", "reason"]).size().rename("exits").reset_index()
    g["share"] = 100 * g["exits"] / g.groupby("churn_type")["exits"].transform("sum")
    return g.sort_values(["churn_type", "exits", "reason"], ascending=[False, False, True],
                         kind="stable").reset_index(drop=True)
