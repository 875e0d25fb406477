"""A hand-made shop for the campaign tests: every customer is there for one trigger (or
to be left out by one), so what each playbook must pick can be read off this file.

The day is 2026-06-15 (``AS_OF``); the workspace is in Europe/Moscow. Expected picks
with the triggers' settings of :func:`playbook`:

* winback (days = 90): A (last order 2026-02-01, 134 days); B 26 days, J 30, G 2, M 7: no
* winback on events (no login for 5 days): P (login 2026-06-01); Q logged in 06-13: no
* birthday (3 days before): C (18 June); D (25 June): no
* abandoned_cart (24 h): E (cart 06-13 10:00); F (cart 06-14 12:00, not 24 h yet): no;
  G (cart 06-12, then ordered 06-13): no
* wishlist (24 h): R; viewed_item (24 h): S
* renewal (3 days before): H (monthly since 2026-01-17, renews 06-17); I (ends 07-01): no
* replenishment (3 days before): J (coffee 04-16 and 05-16: due 06-15); A's tea was due in March: no
* onboarding (days 1, 7, 30; catch-up 3 days): G step 1 (first order 06-13), M step 7 (06-08)
* thank_you (last 3 days): G (order 06-13)
* detractor_followup (NPS ≤ 6, CSAT ≤ 2, last 3 days): K (NPS 4), N (CSAT 2); L (NPS 9): no
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd

AS_OF = dt.date(2026, 6, 15)
#: 12:00 in Moscow: outside quiet hours
NOON = dt.datetime(2026, 6, 15, 9, 0, tzinfo=dt.UTC)
#: 23:00 in Moscow: inside quiet hours (21:00-09:00)
LATE = dt.datetime(2026, 6, 15, 20, 0, tzinfo=dt.UTC)

IDS = list("ABCDEFGHIJKLMNPQRS")

EXPECTED = {
    "winback": {"A"},
    "winback_login": {"P"},
    "birthday": {"C"},
    "abandoned_cart": {"E"},
    "wishlist": {"R"},
    "viewed_item": {"S"},
    "renewal": {"H"},
    "replenishment": {"J"},
    "onboarding": {"G", "M"},
    "thank_you": {"G"},
    "detractor_followup": {"K", "N"},
}


def tables() -> dict[str, pd.DataFrame]:
    customers = pd.DataFrame({
        "customer_id": IDS,
        "signup_at": pd.Timestamp("2025-01-01"),
        "first_name": [f"Name{c}" for c in IDS],
        "email": [f"{c.lower()}@example.com" for c in IDS],
        "phone": [f"+7900000{i:04d}" for i in range(len(IDS))],
        "consent_email": True,
        "consent_sms": True,
        "birth_date": [pd.Timestamp("1990-06-18") if c == "C" else pd.Timestamp("1990-06-25") if c == "D" else pd.NaT
                       for c in IDS],
    })
    orders = pd.DataFrame([
        ("O1", "A", "2026-01-01 12:00", 100.0), ("O2", "A", "2026-02-01 12:00", 120.0),
        ("O3", "B", "2026-05-20 12:00", 50.0), ("O4", "G", "2026-06-13 12:00", 70.0),
        ("O5", "J", "2026-04-16 12:00", 30.0), ("O6", "J", "2026-05-16 12:00", 30.0),
        ("O7", "M", "2026-06-08 12:00", 80.0),
    ], columns=["order_id", "customer_id", "ordered_at", "amount"])
    orders["ordered_at"] = pd.to_datetime(orders.ordered_at)
    orders["status"] = "completed"
    items = pd.DataFrame([
        ("O1", "TEA", "Green tea", "consumables"), ("O2", "TEA", "Green tea", "consumables"),
        ("O5", "COFFEE", "Coffee beans", "consumables"), ("O6", "COFFEE", "Coffee beans", "consumables"),
        ("O3", "MUG", "Mug", "kitchen"), ("O4", "MUG", "Mug", "kitchen"), ("O7", "LAMP", "Lamp", "home"),
    ], columns=["order_id", "item_id", "name", "category"])
    items["quantity"] = 1
    events = pd.DataFrame([
        ("P", "2026-06-01 10:00", "login", None), ("Q", "2026-06-13 10:00", "login", None),
        ("E", "2026-06-13 10:00", "cart_add", "MUG"), ("F", "2026-06-14 12:00", "cart_add", "LAMP"),
        ("G", "2026-06-12 10:00", "cart_add", "MUG"), ("R", "2026-06-13 09:00", "wishlist_add", "LAMP"),
        ("S", "2026-06-13 08:00", "view_item", "COFFEE"),
    ], columns=["customer_id", "occurred_at", "event_type", "item_id"])
    events["occurred_at"] = pd.to_datetime(events.occurred_at)
    subscriptions = pd.DataFrame([
        ("S1", "H", "2026-01-17 00:00", None, 10.0, "basic"),
        ("S2", "I", "2026-01-01 00:00", "2026-07-01 00:00", 10.0, "basic"),
    ], columns=["subscription_id", "customer_id", "started_at", "ended_at", "mrr", "plan"])
    subscriptions["started_at"] = pd.to_datetime(subscriptions.started_at)
    subscriptions["ended_at"] = pd.to_datetime(subscriptions.ended_at)
    surveys = pd.DataFrame([
        ("2026-06-14 10:00", "nps", 4.0, "K"), ("2026-06-14 11:00", "nps", 9.0, "L"),
        ("2026-06-13 10:00", "csat", 2.0, "N"),
    ], columns=["answered_at", "kind", "score", "customer_id"])
    surveys["answered_at"] = pd.to_datetime(surveys.answered_at)
    return {"customers": customers, "orders": orders, "order_items": items, "events": events,
            "subscriptions": subscriptions, "surveys": surveys}


TRIGGERS = {
    "winback": "days = 90",
    "winback_login": 'days = 5\nno_event = "login"',
    "birthday": "days_before = 3",
    "abandoned_cart": "hours = 24",
    "wishlist": "hours = 24",
    "viewed_item": "hours = 24",
    "renewal": "days_before = 3",
    "replenishment": 'days_before = 3\ncategories = ["consumables"]',
    "onboarding": "steps = [1, 7, 30]",
    "thank_you": "within_days = 3",
    "detractor_followup": "nps_max = 6\ncsat_max = 2\nwithin_days = 3",
    "early_access": 'occurrence = "drop-1"',
}


def playbook(name: str, kind: str | None = None, *, trigger: str | None = None, channel: str = "csv",
             holdout: float = 0, offer: str = 'kind = "percent"\nvalue = 10', extra: str = "",
             text: str = "Hello {{ first_name }}, {{ offer.text }} {{ promo_code }}", html: str | None = None,
             message_class: str = "marketing", consent: str = "email") -> str:
    """A minimal playbook of ``kind`` (default: ``name``) with the triggers above."""
    kind = kind or name.split("_login")[0]
    html_line = f"html = {json.dumps(html)}\n" if html is not None else ""
    return f'''kind = "{kind}"
{extra}
[trigger]
{trigger if trigger is not None else TRIGGERS.get(name, TRIGGERS.get(kind, ""))}

[offer]
{offer}

[message]
subject = "For you, {{{{ first_name }}}}"
text = {json.dumps(text)}
{html_line}message_class = "{message_class}"
picks = "bought"

[channel]
kind = "{channel}"
consent = "{consent}"

[holdout]
percent = {holdout}
'''


def write_playbook(workspace: Path, name: str, text: str) -> None:
    folder = workspace / "playbooks"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.toml").write_text(text, encoding="utf-8")


def make_workspace(path: Path, store_url: str | None = None, settings: str = ""):
    """The shop above, loaded into a workspace at ``path`` (store at ``store_url``)."""
    from retentio.data.workspace import Workspace

    ws = Workspace.init(path, timezone="Europe/Moscow", currency="RUB")
    for name, frame in tables().items():
        ws.load(name, frame, mode="replace")
    ws.close()
    extra = settings
    if store_url:
        extra += f'\n[store]\nurl = "{store_url}"\n'
    if extra:
        with (path / "retentio.toml").open("a", encoding="utf-8") as f:
            f.write("\n" + extra)
    return Workspace.open(path)
