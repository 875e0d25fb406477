"""The loyalty commands end to end on a workspace, and the demo's program."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import run_cli


@pytest.fixture
def shop(tmp_path):
    """A workspace with five orders of two customers and a points program."""
    from retentio.data.workspace import Workspace

    ws = Workspace.init(tmp_path / "ws", timezone="UTC", currency="EUR")
    with ws:
        ws.load("orders", pd.DataFrame({
            "order_id": ["o1", "o2", "o3", "o4", "o5"], "customer_id": ["a", "a", "b", "a", "b"],
            "ordered_at": pd.to_datetime(["2026-01-05", "2026-02-01", "2026-02-03", "2026-03-01", "2026-03-02"]),
            "amount": [100.0, 250.0, 80.0, 40.0, 60.0],
            "status": ["completed", "completed", "completed", "returned", "completed"]}), mode="replace")
    w = str(ws.path)
    code, _, err = run_cli("loyalty", "program", "add", "points", "club", "-w", w)
    assert code == 0, err
    program = ws.path / "loyalty" / "club.toml"
    # a plain program for hand-computed numbers: 1 point per unit, available at once, no bonuses
    program.write_text('kind = "points"\npoint_value = 0.01\n[earn]\nper_amount = 1\n[redeem]\nmax_share = 0.5\n'
                       '[expiry]\ndays = 365\n', encoding="utf-8")
    return w


def cli_json(*args: str) -> dict:
    code, out, err = run_cli(*args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_apply_orders_then_balance_redeem_and_refusal(shop):
    result = cli_json("loyalty", "apply-orders", "-w", shop)
    # a: o1 100 + o2 250 (o4 was returned before it ever earned); b: o3 80 + o5 60
    assert (result["orders"], result["earn"]) == (5, 4)
    assert cli_json("loyalty", "apply-orders", "-w", shop)["operations"] == 0    # a repeat changes nothing
    b = cli_json("loyalty", "balance", "a", "-w", shop, "--as-of", "2026-03-10")
    assert set(b) >= {"available", "pending", "tier", "expiring", "discount_pct"}
    assert (b["available"], b["pending"], b["expiring"]) == (350, 0, [{"date": "2027-01-05", "points": 100},
                                                                      {"date": "2027-02-01", "points": 250}])
    r = cli_json("loyalty", "redeem", "a", "--points", "120", "--key", "till-1", "-w", shop, "--at", "2026-03-10")
    assert r["lots"] == [{"lot": "club:order:o1", "points": 100, "expires_at": "2027-01-05T00:00:00"},
                         {"lot": "club:order:o2", "points": 20, "expires_at": "2027-02-01T00:00:00"}]
    # overdraw: exit 2, the balance in the message, nothing written
    code, out, err = run_cli("loyalty", "redeem", "a", "--points", "231", "--key", "till-2", "-w", shop,
                             "--at", "2026-03-10")
    assert code == 2 and "a has 230 points available" in err and "nothing was written" in err
    history = cli_json("loyalty", "history", "a", "-w", shop)
    assert [h["key"] for h in history if h["kind"] == "redeem"] == ["till-1", "till-1"]
    # more than half the order paid with points is refused (max_share 0.5, 0.01 per point)
    code, _, err = run_cli("loyalty", "redeem", "a", "--points", "200", "--amount", "3", "--key", "till-3",
                           "-w", shop, "--at", "2026-03-10")
    assert code == 2 and "at most 50%" in err
    assert cli_json("loyalty", "check", "-w", shop)["ok"] is True


def test_adjust_needs_a_reason_and_is_audited(shop):
    cli_json("loyalty", "apply-orders", "-w", shop)
    code, _, err = run_cli("loyalty", "adjust", "b", "--points", "-40", "--reason", " ", "--key", "fix-1", "-w", shop)
    assert code == 2 and "needs a reason" in err
    r = cli_json("loyalty", "adjust", "b", "--points", "-40", "--reason", "double scan", "--key", "fix-1",
                 "--actor", "maria", "-w", shop)
    assert r["available"] == 100
    entry = [h for h in cli_json("loyalty", "history", "b", "-w", shop) if h["kind"] == "adjust"]
    assert entry and entry[0]["actor"] == "maria" and entry[0]["reason"] == "double scan"
    code, _, err = run_cli("loyalty", "earn", "b", "--points", "5", "--key", "expire:club:x", "-w", shop)
    assert code == 2 and "the ledger's own" in err


def test_program_commands_and_errors(shop, tmp_path):
    rows = cli_json("loyalty", "program", "list", "-w", shop)
    assert [(r["name"], r["kind"]) for r in rows] == [("club", "points")]
    assert cli_json("loyalty", "program", "show", "club", "-w", shop)["redeem"]["max_share"] == 0.5
    code, _, err = run_cli("loyalty", "program", "add", "points", "club", "-w", shop)
    assert code == 2 and "exists" in err
    for kind in ("discount", "stamps", "membership", "cashback"):
        assert cli_json("loyalty", "program", "add", kind, f"p_{kind}", "-w", shop)["kind"] == kind
    code, _, err = run_cli("loyalty", "balance", "a", "-w", shop)
    assert code == 2 and "say which program with --program" in err
    code, out, err = run_cli("loyalty", "balance", "a", "-w", shop, "--program", "nope")
    assert code == 2 and "no such loyalty program" in err


def test_the_demo_program_has_a_history_that_stats_and_the_report_show(tmp_path):
    from retentio.data.workspace import Workspace
    from retentio.services.data import DemoParams, prepare_demo
    from retentio.services.loyalty import ledger, stats

    made = prepare_demo(tmp_path / "demo", DemoParams(customers=2500, seed=2))
    with Workspace.open(made.path) as ws:
        assert ledger(ws).check()["ok"]
        r = stats(ws)
    st = r.stats
    assert st.members > 200 and st.issued > 0 and st.redeemed > 0 and st.expired > 0 and st.reversed > 0
    assert 0 < st.redemption_rate < 1 and st.liability > 0
    assert st.periods["tier_ups"].sum() > 0 and st.periods["tier_downs"].sum() > 0
    assert r.effect is not None and r.effect.at_checkout
    data = r.as_dict()
    assert data["totals"]["members"] == st.members and len(data["periods"]) == len(st.periods)


def test_a_campaigns_bonus_points_are_credited_once_when_sent(tmp_path):
    from retentio.services.campaigns import deliver_due, run_campaign
    from retentio.services.loyalty import ledger
    from tests.campaign_data import AS_OF, NOON, make_workspace, playbook, write_playbook

    # no quiet hours: the message goes out whatever the time of day the test runs
    ws = make_workspace(tmp_path / "shop", settings='[campaigns]\nquiet_start = "00:00"\nquiet_end = "00:00"\n')
    try:
        (ws.path / "loyalty").mkdir()
        (ws.path / "loyalty" / "club.toml").write_text('kind = "points"\n[expiry]\ndays = 90\n', encoding="utf-8")
        write_playbook(ws.path, "thanks", playbook("thanks", "thank_you", offer='kind = "points"\nvalue = 150'))
        # at noon in the shop's time: outside quiet hours whenever the test runs
        result = run_campaign(ws, "thanks", AS_OF, now=NOON)
        assert result.sent == 1                                   # G ordered in the last 3 days
        book = ledger(ws)
        history = book.history("G")
        credited = [h for h in history if h["kind"] == "earn" and h["account"] == "available"]
        assert [(h["points"], h["reason"]) for h in credited] == [(150, "campaign thanks")]
        deliver_due(ws)                                           # nothing due, and nothing credited twice
        run_campaign(ws, "thanks", AS_OF, now=NOON)
        assert book.balance("G")["available"] == 150 and book.check()["ok"]
    finally:
        ws.close()
