"""Campaign planning on the hand-made shop of ``tests/campaign_data.py``: each trigger
picks exactly its customers; each gate removes the right ones, with its reason; the
holdout is the same on every run; a run records everything once. Store tests run on
SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from tests.campaign_data import AS_OF, EXPECTED, IDS, LATE, NOON, make_workspace, playbook, write_playbook

NO_QUIET = '[campaigns]\nquiet_start = "00:00"\nquiet_end = "00:00"\n'



@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """One read-only shop (SQLite store) for the trigger tests."""
    path = tmp_path_factory.mktemp("shop")
    ws = make_workspace(path)
    for name in EXPECTED:
        write_playbook(path, name, playbook(name))
    yield ws
    ws.close()


def _plan(ws, name, now=NOON, **kw):
    from retentio.actions.campaigns import plan
    from retentio.actions.playbooks import read_playbook

    return plan(ws, read_playbook(ws.path, name), AS_OF, now=now, samples=0, **kw)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_trigger_picks_exactly_its_customers(shop, name):
    p = _plan(shop, name)
    assert set(p.frame.customer_id) == EXPECTED[name]


def test_trigger_facts_reach_the_message(shop):
    birthday = _plan(shop, "birthday").frame.set_index("customer_id")
    assert birthday.loc["C", "birthday"] == dt.date(2026, 6, 18)
    renewal = _plan(shop, "renewal").frame.set_index("customer_id")
    assert renewal.loc["H", "renewal_date"] == dt.date(2026, 6, 17)
    replenish = _plan(shop, "replenishment").frame.set_index("customer_id")
    assert replenish.loc["J", "due_item"] == "Coffee beans"
    assert replenish.loc["J", "due_date"] == dt.date(2026, 6, 15)
    cart = _plan(shop, "abandoned_cart").frame.set_index("customer_id")
    assert cart.loc["E", "items"] == [{"item_id": "MUG", "name": "Mug"}]  # the name, from the order lines
    onboarding = _plan(shop, "onboarding").frame.set_index("customer_id")
    assert onboarding.step.to_dict() == {"G": 1, "M": 7}
    winback = _plan(shop, "winback").frame.set_index("customer_id")
    assert winback.loc["A", "days_since_order"] == 134  # 2026-02-01 12:00 → 2026-06-15 00:00


def test_churn_risk_takes_the_bands_of_the_snapshot(shop):
    from retentio.actions.playbooks import parse_playbook
    from retentio.actions.triggers import triggered

    scores = pd.DataFrame({"customer_id": ["A", "B", "C"], "band": ["high", "medium", "low"]})
    pb = parse_playbook(playbook("churn", "churn_risk", trigger='bands = ["high", "medium"]'), "churn.toml")
    hit = triggered(shop, pb, pd.Timestamp(AS_OF), scores)
    assert set(hit.customer_id) == {"A", "B"}
    assert set(hit.occurrence) == {"risk:2026-02-01", "risk:2026-05-20"}  # one episode per last order


def test_auto_winback_uses_the_customers_own_gap(shop):
    from retentio.actions.playbooks import parse_playbook
    from retentio.actions.triggers import triggered

    # A's gap is 31 days: × 2 = 62 ≤ 134 days → lapsed; min_days 100 moves the bar above J's 30 days
    pb = parse_playbook(playbook("w", "winback", trigger='days = "auto"\ngap_multiplier = 2\nmin_days = 100'), "w.toml")
    assert set(triggered(shop, pb, pd.Timestamp(AS_OF)).customer_id) == {"A"}
    pb = parse_playbook(playbook("w", "winback", trigger='days = "auto"\ngap_multiplier = 5\nmin_days = 1'), "w.toml")
    # × 5 = 155 > 134: A has not lapsed by their own rhythm; J (one gap of 30 → 150) neither;
    # single-order customers take the median gap (30.5 → 152.5): none lapsed
    assert set(triggered(shop, pb, pd.Timestamp(AS_OF)).customer_id) == set()


# ------------------------------------------------------------------------------ gates
@pytest.fixture
def store_shop(tmp_path, store_url):
    """The shop on SQLite and PostgreSQL, without quiet hours (runs deliver at any time of day)."""
    ws = make_workspace(tmp_path / "ws", store_url, settings=NO_QUIET)
    yield ws
    ws.close()


def _everyone(ws, name="drop", holdout=0, **kw):
    write_playbook(ws.path, name, playbook(name, "early_access", holdout=holdout,
                                           trigger=f'occurrence = "{name}"', **kw))


def _reasons(p) -> dict[str, str | None]:
    f = p.frame.set_index("customer_id")
    return {c: (None if pd.isna(r) else r) for c, r in f.reason.items()}


def test_consent_address_and_suppression_each_remove_the_right_customers(store_shop):
    from retentio.services.campaigns import suppress

    ws = store_shop
    _everyone(ws)
    ws.close()
    customers = ws.table("customers").to_pandas()
    customers.loc[customers.customer_id == "A", "consent_email"] = False
    customers.loc[customers.customer_id == "B", "email"] = None
    ws.load("customers", customers, mode="replace")
    suppress(ws, "c@example.com", channel="email", kind="unsubscribe")
    suppress(ws, None, channel="email", kind="unsubscribe", customer_id="D")  # the one-click link: by customer
    suppress(ws, "e@example.com", channel="email", kind="hard_bounce")
    suppress(ws, "F@Example.com", channel="email", kind="complaint")
    suppress(ws, "+79000000006", channel="sms", kind="unsubscribe")  # G's phone: not this channel
    reasons = _reasons(_plan(ws, "drop"))
    assert {c: r for c, r in reasons.items() if r} == {
        "A": "no_consent", "B": "no_address", "C": "unsubscribed", "D": "unsubscribed", "E": "bounced",
        "F": "complained"}


def test_soft_bounces_suppress_only_after_the_limit(store_shop):
    from retentio.services.campaigns import suppress

    ws = store_shop
    _everyone(ws)
    for _ in range(2):
        suppress(ws, "a@example.com", channel="email", kind="soft_bounce")
    assert _reasons(_plan(ws, "drop"))["A"] is None  # 2 < soft_bounce_limit 3
    suppress(ws, "a@example.com", channel="email", kind="soft_bounce")
    assert _reasons(_plan(ws, "drop"))["A"] == "bounced"


def test_frequency_cap_counts_every_campaign_and_keeps_the_most_valuable(store_shop):
    from retentio.actions.campaigns import plan, record
    from retentio.actions.playbooks import read_playbook

    ws = store_shop
    for name in ("one", "two", "three"):
        _everyone(ws, name)
    for name in ("one", "two"):
        record(ws, plan(ws, read_playbook(ws.path, name), AS_OF, now=NOON, samples=0))
    # two marketing messages queued for everyone in the last 7 days: the third is capped
    reasons = _reasons(_plan(ws, "three"))
    assert set(reasons.values()) == {"frequency_cap"}
    # a service message is exempt from the cap
    write_playbook(ws.path, "service", playbook("service", "early_access", trigger='occurrence = "s"',
                                                message_class="service", offer='kind = "none"',
                                                text="Your order {{ first_name }}"))
    assert set(_reasons(_plan(ws, "service")).values()) == {None}
    # eight days later the window has moved on
    later = _plan(ws, "three", now=NOON + dt.timedelta(days=8))
    assert set(_reasons(later).values()) == {None}


def test_when_the_cap_binds_the_higher_expected_value_wins():
    from retentio.actions.gates import apply_gates

    frame = pd.DataFrame({"customer_id": ["X", "X", "Y"], "address": ["x@e.com", "x@e.com", "y@e.com"],
                          "consent_email": [True, True, True], "arm": ["treatment"] * 3,
                          "expected_value": [1.0, 5.0, 1.0]})
    reason, capped = apply_gates(frame, channel="email", consent="email", message_class="marketing", suppressed={},
                                 global_pct=0, sent_recently=pd.Series({"X": 1}), cap=2)
    # X has room for one more: the message worth 5 goes, the one worth 1 is capped
    assert reason.tolist() == ["frequency_cap", None, None] and capped.tolist() == [True, False, False]
    # in control the reason is the holdout (it comes first), and the cap says whether the
    # would-be message is recorded
    reason, capped = apply_gates(frame.assign(arm="control"), channel="email", consent="email",
                                 message_class="marketing", suppressed={}, global_pct=0,
                                 sent_recently=pd.Series({"X": 1}), cap=2)
    assert reason.tolist() == ["holdout"] * 3 and capped.tolist() == [True, False, False]


def test_quiet_hours_defer_messages_without_dropping_them(tmp_path, store_url):
    from retentio.actions.campaigns import plan, record
    from retentio.actions.outbox import waiting
    from retentio.actions.playbooks import read_playbook

    ws = make_workspace(tmp_path / "ws", store_url)  # the default quiet hours, 21:00-09:00
    _everyone(ws)
    p = plan(ws, read_playbook(ws.path, "drop"), AS_OF, now=LATE, samples=0)
    assert p.deferred and set(_reasons(p).values()) == {None}  # nobody is stopped by quiet hours
    # 23:00 in Moscow: they wait until 09:00 Moscow = 06:00 UTC next day
    assert p.not_before == dt.datetime(2026, 6, 16, 6, 0, tzinfo=dt.UTC)
    rec = record(ws, p)
    assert rec.queued == len(IDS)
    assert waiting(ws.store) == {"pending": len(IDS)}
    ws.close()


def test_global_control_is_the_same_customers_for_every_campaign(tmp_path, store_url):
    ws = make_workspace(tmp_path / "ws", store_url, settings=NO_QUIET + "global_control_pct = 40\n")
    try:
        _everyone(ws, "one")
        _everyone(ws, "two")
        first = {c for c, r in _reasons(_plan(ws, "one")).items() if r == "global_control"}
        second = {c for c, r in _reasons(_plan(ws, "two")).items() if r == "global_control"}
        assert first == second and 0 < len(first) < len(IDS)
        from retentio.actions.gates import global_control

        assert first == set(pd.Series(IDS)[global_control(pd.Series(IDS), 40)])
    finally:
        ws.close()


def test_exclusions_remove_the_listed_customers(store_shop, tmp_path):
    from retentio.actions.campaigns import plan, record
    from retentio.actions.playbooks import read_playbook

    ws = store_shop
    (ws.path / "employees.csv").write_text("customer_id,name\nH,Staff\nI,Staff\n", encoding="utf-8")
    _everyone(ws, "other")
    record(ws, plan(ws, read_playbook(ws.path, "other"), AS_OF, now=NOON - dt.timedelta(days=1), samples=0))
    write_playbook(ws.path, "drop", playbook(
        "drop", "early_access", trigger='occurrence = "x"',
        extra='[exclude]\nordered_within_days = 10\ncustomers_file = "employees.csv"\n'))
    reasons = _reasons(_plan(ws, "drop"))
    # G (06-13) and M (06-08) ordered in the last 10 days; H, I are employees
    assert {c: r for c, r in reasons.items() if r} == {"G": "ordered recently", "M": "ordered recently",
                                                       "H": "on the exclusion list", "I": "on the exclusion list"}
    write_playbook(ws.path, "drop", playbook("drop", "early_access", trigger='occurrence = "x"',
                                             extra="[exclude]\nother_campaign_within_days = 3\n"))
    assert set(_reasons(_plan(ws, "drop")).values()) == {"in another campaign recently"}


def test_the_same_seed_puts_the_same_customers_in_control(tmp_path, store_url):
    """Re-planning, and a second workspace with the same data, give the same arms; the
    share of control matches the holdout."""
    from retentio.actions.gates import arms

    ids = pd.Series([f"C{i}" for i in range(20_000)])
    a = arms("winback", ids, 10)
    assert (a == arms("winback", ids, 10)).all()
    assert abs((a == "control").mean() - 0.10) < 0.01
    assert (a != arms("other", ids, 10)).any()  # another campaign draws its own control
    runs = []
    for k in range(2):
        ws = make_workspace(tmp_path / f"ws{k}", store_url if k == 0 else None)
        try:
            _everyone(ws, "drop", holdout=50)
            runs.append({c for c, arm in _plan(ws, "drop").frame.set_index("customer_id").arm.items()
                         if arm == "control"})
        finally:
            ws.close()
    assert runs[0] == runs[1] and 0 < len(runs[0]) < len(IDS)


def test_both_arms_pass_the_same_gates_and_control_records_its_message(store_shop):
    from retentio.actions.campaigns import plan, record
    from retentio.actions.playbooks import read_playbook
    from retentio.data.store.campaign_tables import Assignment, OutboxMessage

    ws = store_shop
    customers = ws.table("customers").to_pandas()
    customers["consent_email"] = [i % 3 != 0 for i in range(len(customers))]
    ws.close()
    ws.load("customers", customers, mode="replace")
    _everyone(ws, "drop", holdout=50)
    p = plan(ws, read_playbook(ws.path, "drop"), AS_OF, now=NOON, samples=0)
    f = p.frame
    for arm in ("treatment", "control"):
        part = f[f.arm == arm]
        assert set(part[part.reason == "no_consent"].customer_id) == set(
            customers[~customers.consent_email & customers.customer_id.isin(part.customer_id)].customer_id)
    rec = record(ws, p)
    from sqlalchemy import select

    with ws.store.session() as s:
        assigned = s.execute(select(Assignment.customer_id, Assignment.arm, Assignment.reason)).all()
        outbox = dict(s.execute(select(OutboxMessage.customer_id, OutboxMessage.status)).all())
    assert len(assigned) == len(IDS)  # every eligible customer, both arms, is recorded
    for c, arm, reason in assigned:
        if reason is None:
            assert arm == "treatment" and outbox[c] == "pending"
        elif reason == "holdout":
            assert arm == "control" and outbox[c] == "withheld"  # the message it would have had
        else:
            assert c not in outbox
    assert rec.withheld == sum(1 for _, a, r in assigned if r == "holdout")


def test_a_second_run_acts_on_nothing_already_acted_on(store_shop):
    from retentio.services.campaigns import run_campaign

    ws = store_shop
    write_playbook(ws.path, "winback", playbook("winback"))
    first = run_campaign(ws, "winback", AS_OF)
    second = run_campaign(ws, "winback", AS_OF)
    assert (first.treatment, first.sent) == (1, 1)
    assert (second.treatment, second.control, second.sent) == (0, 0, 0)
    export = pd.read_csv(ws.path / "exports" / "winback.csv")
    assert export.customer_id.tolist() == ["A"]
    assert export.promo_code.str.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}").all()


def test_why_explains_each_outcome(store_shop):
    from retentio.services.campaigns import run_campaign, why

    ws = store_shop
    customers = ws.table("customers").to_pandas()
    customers.loc[customers.customer_id == "B", "consent_email"] = False
    ws.close()
    ws.load("customers", customers, mode="replace")
    _everyone(ws, "drop")
    run_campaign(ws, "drop", AS_OF)
    a = why(ws, "A", "drop")[0]
    assert (a["reason"], a["message"]) == ("sent", "sent")
    b = why(ws, "B", "drop")[0]
    assert b["reason"] == "no_consent" and "no consent" in b["explanation"]
    write_playbook(ws.path, "winback", playbook("winback"))
    (c,) = why(ws, "C", "winback", AS_OF)
    assert c["reason"] == "not triggered"


def test_promo_codes_are_unique_and_redeemed_once_by_their_owner(store_shop):
    from sqlalchemy import select

    from retentio.actions.promo import new_codes, normalize_code, redeem
    from retentio.data.store.campaign_tables import PromoCode
    from retentio.services.campaigns import run_campaign

    codes = new_codes(50_000, "back")
    assert len(set(codes)) == 50_000 and all(c.startswith("BACK-") for c in codes)
    assert normalize_code(codes[0].lower().replace("-", " ")) == codes[0]
    ws = store_shop
    _everyone(ws, "drop")
    run_campaign(ws, "drop", AS_OF)
    with ws.store.session() as s:
        issued = dict(s.execute(select(PromoCode.customer_id, PromoCode.code)).all())
    assert set(issued) == set(IDS) and len(set(issued.values())) == len(IDS)
    orders = ws.table("orders").to_pandas()
    extra = pd.DataFrame({
        "order_id": ["P1", "P2", "P3", "P4"], "customer_id": ["A", "A", "B", "C"],
        "ordered_at": pd.to_datetime(["2026-06-16 10:00", "2026-06-17 10:00", "2026-06-16 10:00", "2026-06-16 10:00"]),
        "amount": 10.0, "status": "completed",
        "promo_code": [issued["A"].lower(), issued["A"], issued["C"], "NOPE-NOPE-NOPE"]})
    ws.close()
    ws.load("orders", pd.concat([orders, extra], ignore_index=True), mode="replace")
    counts = redeem(ws, ws.store)
    assert counts == {"redeemed": 1, "unknown": 1, "expired": 0, "other_customer": 1, "already_used": 1}
    assert redeem(ws, ws.store)["redeemed"] == 0  # idempotent
    with ws.store.session() as s:
        used = s.execute(select(PromoCode.customer_id, PromoCode.redeemed_order_id)
                         .where(PromoCode.redeemed_at.isnot(None))).all()
    assert used == [("A", "P1")]


def test_campaigns_run_together_share_the_cap_and_the_more_valuable_wins(store_shop):
    from sqlalchemy import select

    from retentio.data.store.campaign_tables import Assignment, Campaign
    from retentio.services.campaigns import run_campaigns

    ws = store_shop
    _everyone(ws, "earlier")
    run_campaigns(ws, ["earlier"], AS_OF, now=NOON)  # one message each: one place left under the cap of 2
    for name, uplift in (("low", 0.01), ("high", 0.5)):
        write_playbook(ws.path, name, playbook(name, "early_access", trigger=f'occurrence = "{name}"',
                                               extra=f"expected_uplift = {uplift}"))
    low, high = run_campaigns(ws, ["low", "high"], AS_OF, now=NOON + dt.timedelta(hours=1))
    with ws.store.session() as s:
        rows = s.execute(select(Campaign.name, Assignment.customer_id, Assignment.reason)
                         .join(Campaign, Campaign.id == Assignment.campaign_id)
                         .where(Campaign.name.in_(["low", "high"]))).all()
    sent = {(n, c) for n, c, r in rows if r is None}
    buyers = {"A", "B", "G", "J", "M"}  # the customers with orders: expected value = uplift × order value > 0
    assert {c for n, c in sent if n == "high"} == buyers
    # without orders both are worth 0: the first named keeps its place
    assert {c for n, c in sent if n == "low"} == set(IDS) - buyers
    assert {(n, c) for n, c, r in rows if r == "frequency_cap"} == (
        {("low", c) for c in buyers} | {("high", c) for c in set(IDS) - buyers})
    assert (high.sent, low.sent) == (len(buyers), len(IDS) - len(buyers))


def test_the_python_api_gives_frames(store_shop):
    from retentio import actions

    ws = store_shop
    write_playbook(ws.path, "winback", playbook("winback", holdout=0))
    p = actions.plan(ws, "winback", AS_OF)
    assert p.counts()["messages"] == 1 and p.frame.customer_id.tolist() == ["A"]
    runs = actions.run(ws, ["winback"], AS_OF)
    assert runs[["campaign", "treatment", "sent"]].to_dict("records") == [
        {"campaign": "winback", "treatment": 1, "sent": 1}]
    a = actions.assignments(ws, "winback")
    row = a.iloc[0]
    assert (row.customer_id, row.arm, row.message_status, row.offer_kind, row.offer_value) == (
        "A", "treatment", "sent", "percent", 10.0)
    assert row.occurrence == "lapse:2026-02-01"
    assert actions.suppressions(ws).empty


def test_the_demo_writes_a_playbook_of_every_kind_and_each_has_customers_to_act_on(tmp_path):
    """`retentio demo` (here smaller than its 20,000 customers) writes one playbook per
    kind, exporting to CSV; each plan finds customers to message."""
    from retentio.actions.playbooks import KINDS
    from retentio.data.workspace import Workspace
    from retentio.services.campaigns import check_playbook, plan_campaign
    from retentio.services.data import DemoParams, prepare_demo

    made = prepare_demo(tmp_path / "demo", DemoParams(customers=6000, seed=1))
    assert sorted(made.playbooks) == sorted(KINDS)
    with Workspace.open(made.path) as ws:
        for name in made.playbooks:
            check_playbook(ws, name)
            p = plan_campaign(ws, name)
            assert p.counts["messages"] > 0 and p.counts["control"] > 0, (name, p.counts)
            assert p.samples and all(s["text"].strip() for s in p.samples)


def test_audience_filters_keep_exactly_the_matching_customers(shop):
    from retentio.actions.playbooks import PlaybookError

    def picked(audience: str) -> set[str]:
        write_playbook(shop.path, "aud", playbook("aud", "early_access", trigger='occurrence = "a"',
                                                  extra="").replace("[offer]", f"[audience]\n{audience}\n\n[offer]"))
        p = _plan(shop, "aud")
        return set(p.frame[p.frame.stage != "audience"].customer_id)

    assert picked("min_orders = 2") == {"A", "J"}
    assert picked("max_orders = 0") == set(IDS) - {"A", "B", "G", "J", "M"}
    assert picked('last_order_after = 2026-06-01') == {"G", "M"}
    assert picked('last_order_before = 2026-03-01') == {"A"}
    assert picked('where = { first_name = ["NameC", "NameD"] }') == {"C", "D"}
    assert picked('min_orders = 1\nwhere = { first_name = ["NameA", "NameC"] }') == {"A"}
    with pytest.raises(PlaybookError, match=r"\[audience\] where.shoe_size: no customer column"):
        picked('where = { shoe_size = ["42"] }')
    with pytest.raises(PlaybookError, match=r"aud.toml: \[audience\] last_order_after"):
        picked('last_order_after = "2024-13-45"')
