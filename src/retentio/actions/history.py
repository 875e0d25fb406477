"""Recording campaigns that ran elsewhere — or, for the demo, in simulation — into the
store as if Retentio had run them: campaigns, runs, assignments, the messages (sent to
the treated, withheld from control), promo codes and their redemptions. Measurement
then reads them like any run of its own.

One transaction: the history is wholly recorded or not at all.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from retentio.data.store import Store

#: when an imported message counts as sent: 10:00 UTC on the as-of day
SENT_HOUR = 10


def record_history(store: Store, campaigns: list[dict[str, Any]], assignments: pd.DataFrame,
                   addresses: pd.Series, *, costs: dict[str, float] | None = None) -> int:
    """Store past runs. ``campaigns``: name, kind, definition (a playbook's fields; its
    ``measure.window_days`` is read by measurement). ``assignments``: campaign, as_of,
    customer_id, arm, offer_kind, offer_value, channel, promo_code, redeemed_order_id and
    redeemed_at (the order's time).
    ``addresses`` maps a customer to the address a message went to; ``costs`` a channel to
    its cost per message. Returns the number of
    assignments recorded. Refused (nothing stored) when a campaign of that name has run."""
    from sqlalchemy import insert, select

    from retentio.data.errors import RetentioError
    from retentio.data.store.campaign_tables import Assignment, Campaign, CampaignRun, OutboxMessage, PromoCode

    now = dt.datetime.now(dt.UTC)
    with store.session() as s:
        names = [c["name"] for c in campaigns]
        clash = s.scalars(select(Campaign.name).where(Campaign.name.in_(names))).all()
        if clash:
            raise RetentioError(f"campaign {clash[0]!r} is already in the store: its history was not imported again")
        for c in campaigns:
            camp = Campaign(name=c["name"], kind=c["kind"], created_at=now, definition=c["definition"])
            s.add(camp)
            s.flush()
            mine = assignments[assignments.campaign == c["name"]]
            for as_of, run_rows in mine.groupby("as_of", sort=True):
                sent_at = dt.datetime.combine(pd.Timestamp(as_of).date(), dt.time(SENT_HOUR), tzinfo=dt.UTC)
                treated = run_rows.arm == "treatment"
                run = CampaignRun(campaign_id=camp.id, as_of=pd.Timestamp(as_of).date(), started_at=sent_at,
                                  finished_at=sent_at, status="done", seed=c["name"],
                                  holdout_pct=float(c["definition"]["holdout"]["percent"]),
                                  counts={"eligible": len(run_rows), "treatment": int(treated.sum()),
                                          "control": int((~treated).sum()), "imported": True})
                s.add(run)
                s.flush()
                offers = [{"kind": k, "value": float(v), "gift": None, "text": ""}
                          for k, v in zip(run_rows.offer_kind, run_rows.offer_value)]
                occurrence = str(pd.Timestamp(as_of).date())
                a_rows = [{"campaign_id": camp.id, "run_id": run.id, "customer_id": cust, "occurrence": occurrence,
                           "arm": arm, "reason": None if arm == "treatment" else "holdout", "expected_value": 0.0,
                           "offer": offer, "promo_code": code if arm == "treatment" else None, "snapshot_id": None,
                           "model_version": None, "created_at": sent_at}
                          for cust, arm, code, offer in zip(run_rows.customer_id, run_rows.arm, run_rows.promo_code,
                                                            offers)]
                for k in range(0, len(a_rows), 20_000):
                    s.execute(insert(_core(Assignment)), a_rows[k:k + 20_000])
                ids = dict(s.execute(select(Assignment.customer_id, Assignment.id)
                                     .where(Assignment.run_id == run.id)).all())
                o_rows, p_rows = [], []
                for cust, arm, code, order, at, channel, offer in zip(
                        run_rows.customer_id, run_rows.arm, run_rows.promo_code, run_rows.redeemed_order_id,
                        run_rows.redeemed_at, run_rows.channel, offers):
                    o_rows.append({"assignment_id": ids[cust], "campaign_id": camp.id, "run_id": run.id,
                                   "customer_id": cust, "message_id": uuid.uuid4().hex, "channel": channel,
                                   "message_class": "marketing", "to_address": str(addresses.get(cust, "")),
                                   "subject": "", "body_text": "(imported history)", "body_html": None,
                                   "unsubscribe_url": None, "payload": {"campaign": c["name"], "imported": True},
                                   "status": "sent" if arm == "treatment" else "withheld", "attempts":
                                       1 if arm == "treatment" else 0,
                                   "not_before": sent_at, "sent_at": sent_at if arm == "treatment" else None,
                                   "cost": (costs or {}).get(channel, 0.0) if arm == "treatment" else 0.0})
                    if arm == "treatment" and isinstance(code, str):
                        p_rows.append({"code": code, "campaign_id": camp.id, "assignment_id": ids[cust],
                                       "customer_id": cust, "offer": offer, "issued_at": sent_at,
                                       "expires_at": sent_at + dt.timedelta(days=21),
                                       "redeemed_at": pd.Timestamp(at).tz_localize(dt.UTC).to_pydatetime()
                                       if isinstance(order, str) else None,
                                       "redeemed_order_id": order if isinstance(order, str) else None})
                for table, rows in ((_core(OutboxMessage), o_rows), (_core(PromoCode), p_rows)):
                    for k in range(0, len(rows), 20_000):
                        s.execute(insert(table), rows[k:k + 20_000])
        return len(assignments)


def _core(model: Any) -> Any:
    """The Core table of a mapped class (bulk inserts without the ORM's bookkeeping)."""
    return model.__table__


__all__ = ["record_history"]
