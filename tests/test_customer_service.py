"""The customer services behind the web app's Customers, profile and At risk pages:
real numbers against direct queries, ordering, filters, pagination, JSON safety, and a
read-only workspace."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retentio import Workspace
from retentio.data.errors import RetentioError
from retentio.services import customers as svc
from retentio.services.customers import UnknownCustomer, at_risk, customer_profile, search_customers


def dumps(value: object) -> str:
    """JSON as the web layer writes it: NaN or infinity would fail here."""
    return json.dumps(value, allow_nan=False)


@pytest.fixture(scope="module")
def scored_path(tmp_path_factory, demo_ws_path: Path) -> Path:
    """A copy of the small demo with a churn snapshot (known scores), a stored CLV model,
    a loyalty account and an open follow-up task; tests open it read-only."""
    from retentio.data.store.registry import register_model, save_snapshot
    from retentio.data.store.task_tables import FeedbackTask
    from retentio.services.clv import FitParams, fit_model
    from retentio.services.loyalty import add_program, ledger

    path = tmp_path_factory.mktemp("customers") / "ws"
    shutil.copytree(demo_ws_path, path)
    with Workspace.open(path) as ws:
        ids = ws.table("customers").customer_id.to_pandas().astype(str).sort_values().tolist()
        rng = np.random.default_rng(3)
        n = 300
        p = rng.uniform(0.01, 0.95, n)
        scores = pd.DataFrame({
            "customer_id": ids[:n],
            "churn_probability": p,
            "score": np.round(p * 100).astype(int),
            "band": np.where(p >= 0.5, "high", np.where(p >= 0.25, "medium", "low")),
            # ties on purpose (then by probability), and some without a value
            "value_at_risk": [None if i % 25 == 0 else float(round(rng.uniform(0, 50)) * 10) for i in range(n)],
            "reasons": [[f"reason {i}"] for i in range(n)],
        })
        model = register_model(ws.store, "churn", "{}", settings={}, metrics={}, data_fingerprint=ws.data_fingerprint())
        save_snapshot(ws.store, model, dt.date(2026, 9, 1), ws.data_fingerprint(), {}, scores)
        purchase = fit_model(ws, FitParams(model="bgnbd", unit="week")).model
        spend = fit_model(ws, FitParams(model="gamma_gamma", unit="week")).model
        payload = {"purchase": {"model": "bgnbd", "params": purchase.params_},
                   "spend": {"model": "gamma_gamma", "params": spend.params_}, "unit": "week"}
        register_model(ws.store, "clv", json.dumps(payload), settings={}, metrics={},
                       data_fingerprint=ws.data_fingerprint())
        add_program(ws, "points", "club")
        ledger(ws, "club", actor="test").earn(ids[0], 120, key="welcome-0", reason="test")
        now = dt.datetime(2026, 9, 2, 10, 0)
        with ws.store.session() as s:
            for status, occurrence in (("open", "nps@1"), ("done", "nps@2")):
                s.add(FeedbackTask(rule="detractor", trigger="nps", customer_id=ids[0], occurrence=occurrence,
                                   source={"score": 3}, triggered_at=now, due_at=now + dt.timedelta(days=1),
                                   value=10.0, value_basis="revenue_12m", owner_role="support", assignee=None,
                                   status=status, closed_at=now if status == "done" else None,
                                   created_at=dt.datetime.now(dt.UTC)))
    svc.clear_cache()
    return path


@pytest.fixture
def ro(scored_path: Path) -> Workspace:
    """The scored demo opened read-only, as the web app opens it."""
    ws = Workspace.open(scored_path, read_only=True)
    yield ws
    ws.close()


def first_customer(ws: Workspace) -> str:
    return str(ws.con.execute("SELECT min(customer_id) FROM customers").fetchone()[0])


# ------------------------------------------------------------------------------ search
def test_search_pages_through_every_match(ro: Workspace) -> None:
    everyone = ro.con.execute("SELECT count(*) FROM customers").fetchone()[0]
    page = search_customers(ro, limit=7, offset=0)
    assert page["total"] == everyone and len(page["items"]) == 7
    ids = [r["customer_id"] for r in page["items"]]
    assert ids == sorted(ids)
    nxt = search_customers(ro, limit=7, offset=7)
    assert nxt["items"][0]["customer_id"] > ids[-1]
    last = search_customers(ro, limit=7, offset=everyone - 3)
    assert len(last["items"]) == 3 and last["total"] == everyone
    assert search_customers(ro, limit=7, offset=everyone + 5)["items"] == []
    dumps(page)


def test_search_matches_id_name_and_email_case_insensitively(ro: Workspace) -> None:
    cid, name, email = ro.con.execute(
        "SELECT customer_id, first_name, email FROM customers ORDER BY customer_id LIMIT 1 OFFSET 10").fetchone()
    by_id = search_customers(ro, cid.lower())
    assert [r["customer_id"] for r in by_id["items"]] == [cid]
    by_email = search_customers(ro, email.upper())
    assert cid in [r["customer_id"] for r in by_email["items"]]
    by_name = search_customers(ro, name.swapcase(), limit=1000)
    expected = ro.con.execute("SELECT count(*) FROM customers WHERE lower(customer_id) LIKE '%' || lower(?) || '%' "
                              "OR lower(first_name) LIKE '%' || lower(?) || '%' "
                              "OR lower(email) LIKE '%' || lower(?) || '%'", [name, name, name]).fetchone()[0]
    assert by_name["total"] == expected and cid in [r["customer_id"] for r in by_name["items"]]
    assert search_customers(ro, "no such customer anywhere")["total"] == 0


def test_search_figures_are_the_completed_orders(ro: Workspace) -> None:
    item = search_customers(ro, limit=1, offset=10)["items"][0]
    n, revenue, last = ro.con.execute(
        "SELECT count(*), sum(amount)::DOUBLE, max(ordered_at) FROM orders WHERE customer_id = ? "
        "AND coalesce(status, 'completed') = 'completed'", [item["customer_id"]]).fetchone()
    assert item["orders"] == n
    assert item["revenue"] == pytest.approx(revenue or 0.0)
    assert item["last_order"] == (last.isoformat() if last else None)
    assert set(item) >= {"customer_id", "name", "email", "phone", "signup_date", "orders", "revenue", "last_order"}


def test_search_refuses_bad_pages(ro: Workspace) -> None:
    with pytest.raises(RetentioError):
        search_customers(ro, limit=0)
    with pytest.raises(RetentioError):
        search_customers(ro, offset=-1)


# ------------------------------------------------------------------------------ profile
def test_profile_orders_and_revenue_match_the_database(ro: Workspace) -> None:
    cid = first_customer(ro)
    p = customer_profile(ro, cid)
    dumps(p)
    total, completed, revenue = ro.con.execute(
        "SELECT count(*), count(*) FILTER (WHERE coalesce(status, 'completed') = 'completed'), "
        "(sum(amount) FILTER (WHERE coalesce(status, 'completed') = 'completed'))::DOUBLE "
        "FROM orders WHERE customer_id = ?", [cid]).fetchone()
    assert p["customer_id"] == cid and p["customer"]["customer_id"] == cid
    assert p["counts"]["orders"] == total == len(p["orders"])
    assert p["summary"]["orders"] == completed
    assert p["summary"]["revenue"] == pytest.approx(revenue or 0.0)
    times = [o["ordered_at"] for o in p["orders"]]
    assert times == sorted(times, reverse=True)
    events = ro.con.execute("SELECT count(*) FROM events WHERE customer_id = ?", [cid]).fetchone()[0]
    assert p["counts"]["events"] == events
    assert len(p["events"]) == min(events, svc.PROFILE_ROWS)
    assert p["customer"]["name"] == ro.con.execute("SELECT first_name FROM customers WHERE customer_id = ?",
                                                   [cid]).fetchone()[0]


def test_profile_caps_long_histories(ro: Workspace) -> None:
    cid, n = ro.con.execute("SELECT customer_id, count(*) n FROM events GROUP BY 1 ORDER BY n DESC, 1 LIMIT 1"
                            ).fetchone()
    p = customer_profile(ro, cid)
    assert p["counts"]["events"] == n
    assert len(p["events"]) == min(n, svc.PROFILE_ROWS)
    newest = ro.con.execute("SELECT max(occurred_at) FROM events WHERE customer_id = ?", [cid]).fetchone()[0]
    assert p["events"][0]["occurred_at"] == newest.isoformat()


def test_profile_segment_is_the_segments_command(ro: Workspace) -> None:
    from retentio.services.retention import customer_segments

    frame = customer_segments(ro).customers
    row = frame.iloc[len(frame) // 2]
    p = customer_profile(ro, str(row.customer_id))
    assert p["segment"]["name"] == row.segment
    assert p["segment"]["r_score"] == row.r_score and p["segment"]["f_score"] == row.f_score


def test_profile_churn_clv_loyalty_and_tasks(ro: Workspace) -> None:
    cid = first_customer(ro)
    p = customer_profile(ro, cid)
    assert p["churn"]["as_of"] == "2026-09-01" and p["churn"]["band"] in ("low", "medium", "high")
    assert 0 <= p["churn"]["probability"] <= 1 and p["churn"]["reasons"] == ["reason 0"]
    if p["summary"]["orders"]:
        assert 0 <= p["clv"]["p_alive"] <= 1 and p["clv"]["clv"] >= 0 and p["clv"]["model_version"] == 1
    [club] = p["loyalty"]
    assert club["program"] == "club" and club["available"] + club["pending"] == 120
    assert [e["points"] for e in club["entries"] if e["kind"] == "earn"] == [120]
    assert [t["occurrence"] for t in p["tasks"]] == ["nps@1"]
    assert p["messages"] == [] and p["campaigns"] == []
    dumps(p)


def test_profile_of_an_unscored_customer_says_why(ro: Workspace) -> None:
    last = str(ro.con.execute("SELECT max(customer_id) FROM customers").fetchone()[0])
    p = customer_profile(ro, last)
    assert p["churn"] is None and "churn" in p["notes"]
    assert p["loyalty"] == [] and p["tasks"] == []


def test_unknown_customer_is_refused_by_name(ro: Workspace) -> None:
    with pytest.raises(UnknownCustomer, match="NOPE-1") as info:
        customer_profile(ro, "NOPE-1")
    assert isinstance(info.value, RetentioError)


def test_profile_is_fast_once_cached(ro: Workspace) -> None:
    cid = first_customer(ro)
    customer_profile(ro, cid)
    start = time.perf_counter()
    for _ in range(3):
        customer_profile(ro, cid)
    assert (time.perf_counter() - start) / 3 < 0.5  # ~0.07 s on the 20,000-customer demo; generous for CI


def test_a_workspace_with_few_tables_gives_empty_lists(ws: Workspace) -> None:
    ws.load("customers", pd.DataFrame({"customer_id": ["A1", "B2"], "email": ["a@x.org", None]}))
    ws.load("orders", pd.DataFrame({"order_id": ["o1", "o2", "o3"], "customer_id": ["A1", "A1", "B2"],
                                    "ordered_at": ["2025-01-05 10:00", "2025-02-01 11:00", "2025-02-03 09:00"],
                                    "amount": ["10.10", "20.20", "5"], "status": ["completed", "returned", None]}))
    p = customer_profile(ws, "A1")
    dumps(p)
    assert p["subscriptions"] == [] and p["events"] == [] and p["surveys"] == [] and p["tickets"] == []
    assert p["counts"] == {"orders": 2, "subscriptions": 0, "events": 0, "surveys": 0, "tickets": 0}
    assert p["summary"]["orders"] == 1 and p["summary"]["revenue"] == pytest.approx(10.10)
    assert p["churn"] is None and p["clv"] is None and p["customer"]["name"] is None
    assert p["segment"]["name"]  # two customers: fixed thresholds, still a segment
    risk = at_risk(ws)
    assert risk["total"] == 0 and risk["items"] == [] and risk["as_of"] is None and "churn score" in risk["note"]
    found = search_customers(ws, "X.ORG")
    assert found["total"] == 1 and found["items"][0]["customer_id"] == "A1"
    assert found["items"][0]["phone"] is None and found["items"][0]["orders"] == 1


def test_an_empty_workspace(ws: Workspace) -> None:
    assert search_customers(ws)["total"] == 0
    with pytest.raises(UnknownCustomer):
        customer_profile(ws, "A1")


# ------------------------------------------------------------------------------ at risk
def test_at_risk_is_ordered_by_value_at_risk(ro: Workspace) -> None:
    r = at_risk(ro, limit=1000)
    dumps(r)
    assert r["as_of"] == "2026-09-01" and r["total"] == 300 and len(r["items"]) == 300
    assert sum(r["bands"].values()) == 300
    keys = [(-(i["value_at_risk"] if i["value_at_risk"] is not None else -1), -i["probability"]) for i in r["items"]]
    assert keys == sorted(keys)
    assert r["items"][-1]["value_at_risk"] is None  # customers without a value come last
    assert all(i["name"] and i["email"] and i["acquisition_channel"] for i in r["items"])


def test_at_risk_filters(ro: Workspace) -> None:
    everyone = at_risk(ro, limit=1000)
    high = at_risk(ro, band="high", limit=1000)
    assert high["total"] == everyone["bands"]["high"] > 0
    assert {i["band"] for i in high["items"]} == {"high"}
    channel = everyone["items"][0]["acquisition_channel"]
    by_channel = at_risk(ro, channel=channel, limit=1000)
    assert 0 < by_channel["total"] < everyone["total"]
    assert {i["acquisition_channel"] for i in by_channel["items"]} == {channel}
    segment = everyone["items"][0]["segment"]
    by_segment = at_risk(ro, segment=segment, limit=1000)
    assert by_segment["total"] > 0 and {i["segment"] for i in by_segment["items"]} == {segment}
    page = at_risk(ro, limit=10, offset=10)
    assert [i["customer_id"] for i in page["items"]] == [i["customer_id"] for i in everyone["items"][10:20]]
    with pytest.raises(RetentioError):
        at_risk(ro, band="severe")
    with pytest.raises(RetentioError):
        at_risk(ro, segment="no such segment")


def test_read_only_workspace_is_never_written(scored_path: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in scored_path.iterdir() if p.suffix == ".duckdb"}
    with Workspace.open(scored_path, read_only=True) as ws:
        assert ws.read_only
        cid = first_customer(ws)
        dumps(search_customers(ws, cid))
        dumps(customer_profile(ws, cid))
        dumps(at_risk(ws, band="medium"))
    after = {p.name: p.stat().st_mtime_ns for p in scored_path.iterdir() if p.suffix == ".duckdb"}
    assert before == after
