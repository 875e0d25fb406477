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
(``include_trials``): a trial that lapses is a conversion problem, not churn.

**Exit-survey answers are not exits of their own** when the cancellation they answer is
counted already: exits are counted per customer (and per subscription where the answer
names it). An answer is matched to a cancellation row of the same subscription when it
names one that is among the rows, else to a cancellation of the same customer in the same
period (``period``: the answer's and the end's period start alike), preferring one
without a cancel reason and then the nearest end before the answer. Then

* the cancellation has no ``cancel_reason``: the answer's text becomes its reason
  (source ``exit_survey``; an ``unknown`` churn type becomes voluntary — the customer
  answered why they left); still one exit;
* the cancellation has its reason: the answer adds nothing (not a second exit);
* no cancellation matches: the answer is one voluntary exit, dated by its answer, its
  text the reason (``(no reason given)`` without text).

Two answers matched to one cancellation still make one exit. Pure: frames in, frames out.
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
          include_trials: bool = False, period: str = "month") -> pd.DataFrame:
    """One row per exit: customer_id, ended_at, plan, reason, churn_type, source
    ("cancel_reason" or "exit_survey").

    ``subscriptions`` needs customer_id, ended_at, cancel_reason, churn_type (subscription_id,
    plan and is_trial optional); ``answers`` (optional) customer_id, answered_at, reason
    (subscription_id optional). An answer joins the cancellation it answers (see the
    module: one exit per cancellation) within ``period`` (:data:`FREQ`).
    """
    if period not in FREQ:
        raise ValueError(f"period must be one of {', '.join(FREQ)}")
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
    }).reset_index(drop=True)
    if answers is not None and len(answers):
        out = _with_answers(out, reason.reset_index(drop=True).notna(),
                            s["subscription_id"].astype("object").reset_index(drop=True)
                            if "subscription_id" in s else None, answers, FREQ[period])
    return out.sort_values(["ended_at", "customer_id"], kind="stable").reset_index(drop=True)


def _with_answers(out: pd.DataFrame, has_reason: pd.Series, subscription: pd.Series | None,
                  answers: pd.DataFrame, freq: str) -> pd.DataFrame:
    """The exit rows with the exit-survey answers joined (the rule: the module's docstring)."""
    text = answers["reason"].astype("object")
    text = text.where(text.notna() & (text.astype(str).str.strip() != ""), NO_REASON).astype(str).str.strip()
    at = pd.to_datetime(answers["answered_at"])
    answer_sub = answers["subscription_id"] if "subscription_id" in answers else pd.Series(None, index=answers.index)
    out = out.copy()
    has_reason = has_reason.copy()
    out_period = out["ended_at"].dt.to_period(freq)
    own = []
    for i in answers.index:
        cid, when, sub = answers.at[i, "customer_id"], at[i], answer_sub[i]
        rows = out.index[out["customer_id"].astype(str) == str(cid)]
        if subscription is not None and pd.notna(sub) and (subscription[rows].astype(str) == str(sub)).any():
            rows = rows[(subscription[rows].astype(str) == str(sub)).to_numpy()]
        else:
            rows = rows[(out_period[rows] == when.to_period(freq)).to_numpy()]
        if not len(rows):
            own.append(i)
            continue
        # prefer a cancellation without a reason, then the nearest end before the answer
        order = sorted(rows, key=lambda r: (bool(has_reason[r]), out.at[r, "ended_at"] > when,
                                            abs(out.at[r, "ended_at"] - when)))
        r = order[0]
        if not has_reason[r] and text[i] != NO_REASON:
            out.at[r, "reason"] = text[i]
            out.at[r, "source"] = "exit_survey"
            if out.at[r, "churn_type"] == "unknown":
                out.at[r, "churn_type"] = "voluntary"
            has_reason[r] = True
    if own:
        out = pd.concat([out, pd.DataFrame({
            "customer_id": answers.loc[own, "customer_id"].astype("object").to_numpy(),
            "ended_at": at[own].to_numpy(), "plan": None, "reason": text[own].to_numpy(),
            "churn_type": "voluntary", "source": "exit_survey"})], ignore_index=True)
    return out


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
