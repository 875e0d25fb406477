"""Churn: point-in-time features, labels, out-of-time evaluation, reasons, tabular mode."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from retentio import Workspace
from retentio.analytics.churn.features import add_p_alive, build_features
from retentio.analytics.churn.labels import LabelSpec, labels
from retentio.analytics.churn.train import load, plan, save, score, train
from retentio.data.demo import generate
from tests.conftest import demo_workspace, run_cli, write

CUT = pd.Timestamp("2026-01-01")


# ----------------------------------------------------------------------------- a hand-made shop
def _orders(rows):
    return pd.DataFrame([{"order_id": f"O{i}", "customer_id": c, "ordered_at": t, "amount": a,
                          "status": s, "discount": d} for i, (c, t, a, s, d) in enumerate(rows)])


@pytest.fixture
def shop(ws):
    d = pd.Timestamp
    ws.load("orders", _orders([
        ("A", d("2025-10-01"), 10, "completed", 0), ("A", d("2025-11-01"), 20, "completed", 2),
        ("A", d("2025-12-22"), 30, "completed", 0), ("A", d("2026-01-20"), 40, "completed", 0),
        ("B", d("2025-12-10"), 50, "completed", 5), ("B", d("2025-12-11"), 50, "returned", 0),
        ("C", d("2025-05-01"), 10, "completed", 0),
        ("D", d("2026-01-01"), 10, "completed", 0),
        ("E", d("2025-12-01"), 10, "completed", 0), ("E", d("2026-01-31"), 10, "completed", 0),
    ]))
    logins = [("A", d("2025-12-20") - pd.Timedelta(days=k)) for k in range(0, 50, 5)]
    logins += [("B", d("2025-11-15")), ("B", d("2025-11-16")), ("B", d("2025-11-20")), ("B", d("2025-12-20"))]
    ws.load("events", pd.DataFrame([{"customer_id": c, "occurred_at": t, "event_type": "login"} for c, t in logins]))
    ws.load("surveys", pd.DataFrame([
        {"customer_id": "B", "answered_at": d("2025-12-05"), "kind": "nps", "score": 3},
        {"customer_id": "B", "answered_at": d("2025-06-05"), "kind": "nps", "score": 9},
        {"customer_id": "B", "answered_at": d("2025-12-06"), "kind": "csat", "score": 2},
        {"customer_id": "B", "answered_at": d("2026-01-05"), "kind": "nps", "score": 10},  # after the cutoff
    ]))
    ws.load("tickets", pd.DataFrame([
        {"customer_id": "B", "opened_at": d("2025-12-15"), "resolved_at": None},
        {"customer_id": "B", "opened_at": d("2025-12-01"), "resolved_at": d("2026-01-03")},  # open at the cutoff
        {"customer_id": "A", "opened_at": d("2025-08-01"), "resolved_at": d("2025-08-02")},
    ]))
    return ws


def test_labels_follow_the_stated_windows(shop):
    spec = LabelSpec("orders", horizon_days=30, window_days=90)
    got = labels(shop, CUT, spec).set_index("customer_id").churned.to_dict()
    # A ordered on 2026-01-20 (inside [cut, cut+30)); B did not; E's order on 01-31 falls at cut+30,
    # outside the half-open window; C (last order 8 months ago) and D (order exactly at the cutoff)
    # are not eligible
    assert got == {"A": 0, "B": 1, "E": 1}
    assert "no completed order in the 30 days after it" in spec.describe()


def test_features_hand_computed(shop):
    f = build_features(shop, CUT).set_index("customer_id")
    a, b = f.loc["A"], f.loc["B"]
    assert a.frequency == 3 and a.recency_days == pytest.approx(10.0)
    assert a.mean_gap_days == pytest.approx((92 - 10) / 2)  # 2025-10-01 … 2025-12-22
    assert a.overdue_ratio == pytest.approx(10.0 / 41.0)
    assert a.discount_share == pytest.approx(1 / 3)
    assert a.orders_30 == 1 and a.orders_prev_30 == 0
    assert a.logins_30 == 4  # 12-20, 12-15, 12-10, 12-05; 11-30 is 32 days before the cutoff
    assert a.logins_prev_30 == 6  # 11-30 … 11-05; 10-31 is 62 days before
    assert b.return_share == pytest.approx(0.5)
    assert b.last_nps == 3 and pd.Timestamp(b.last_nps_at).date().isoformat() == "2025-12-05"
    assert b.last_csat == 2
    assert b.tickets_unresolved == 2 and b.tickets_90 == 2
    assert b.logins_30 == 1 and b.logins_prev_30 == 3
    assert b.login_trend_pct == pytest.approx(-200 / 3)
    assert f.loc["E"].frequency == 1  # the order at cut+30 is not counted, the one before is
    assert "D" not in f.index  # D's only order is at the cutoff, not before it: no history, no row


def test_features_ignore_everything_on_or_after_the_cutoff(shop, tmp_path):
    before = build_features(shop, CUT)
    other = Workspace.init(tmp_path / "other", timezone="Europe/Moscow")
    for name in ("orders", "events", "surveys", "tickets"):
        t = shop.table(name).to_pandas()
        col = {"orders": "ordered_at", "events": "occurred_at", "surveys": "answered_at", "tickets": "opened_at"}[name]
        t = t[pd.to_datetime(t[col]) < CUT]
        other.load(name, t)
    after = build_features(other, CUT)
    cols = [c for c in before.columns]
    key = "customer_id"
    pd.testing.assert_frame_equal(before.sort_values(key).reset_index(drop=True)[cols],
                                  after.sort_values(key).reset_index(drop=True)[cols], check_dtype=False)


# ----------------------------------------------------------------------------- the demo business
@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    data = generate(n_customers=6000, seed=5)
    return demo_workspace(tmp_path_factory.mktemp("churn") / "ws", data), data


@pytest.fixture(scope="module")
def trained(demo):
    path, _ = demo
    with Workspace.open(path) as ws:
        report = train(ws, threads=1, seed=0)
    return report


def test_training_windows_close_before_the_test_cutoff():
    p = plan(pd.Timestamp("2026-10-01"), horizon=90, n_train=6, step=30)
    h = pd.Timedelta(days=90)
    assert all(c + h <= p.calibration for c in p.train)
    assert p.calibration + h <= p.test
    assert p.test + h <= pd.Timestamp("2026-10-01")


def test_report_states_the_plan_and_label(trained):
    p = {k: v for k, v in trained["plan"].items()}
    h = pd.Timedelta(days=trained["label"]["horizon_days"])
    assert all(pd.Timestamp(c) + h <= pd.Timestamp(p["calibration"]) for c in p["train"])
    assert pd.Timestamp(p["calibration"]) + h <= pd.Timestamp(p["test"])
    assert trained["label"]["kind"] == "orders" and "no completed order" in trained["label"]["definition"]


def test_model_beats_both_baselines_out_of_time(trained):
    assert trained["roc_auc"] > trained["baseline_roc_auc"] + 0.05
    assert trained["roc_auc"] > trained["logistic_roc_auc"]
    assert trained["top_decile_lift"] > 1.3
    assert 0 < trained["brier"] < 0.25
    assert len(trained["backtest"]) == 3
    assert all(b["roc_auc"] > b["baseline_roc_auc"] for b in trained["backtest"])


def test_training_is_deterministic(demo, trained):
    path, _ = demo
    with Workspace.open(path) as ws:
        again = train(ws, threads=1, seed=0, backtest=1)
    assert again["roc_auc"] == trained["roc_auc"] and again["model"] == trained["model"]
    # the logistic fit's BLAS products may differ in the last bits between runs (memory
    # alignment picks the kernel), so probabilities agree to 1e-12, not bit for bit
    assert again["brier"] == pytest.approx(trained["brier"], rel=1e-12, abs=0)


def test_scores_ignore_data_after_the_cutoff(demo, trained, tmp_path):
    path, data = demo
    cut = pd.Timestamp(trained["plan"]["test"])
    with Workspace.open(path) as ws:
        train(ws, threads=1, seed=0, backtest=1)  # the saved model
        first = score(ws, cut.date())
        saved = load(ws)
    other = tmp_path / "ws"
    with Workspace.init(other) as w:
        for name, frame in data.tables().items():
            col = {"orders": "ordered_at", "events": "occurred_at", "surveys": "answered_at", "tickets": "opened_at",
                   "subscriptions": "started_at"}.get(name)
            frame = frame.copy()
            if col:
                late = pd.to_datetime(frame[col]) >= cut
                frame = frame[~late]
            if name == "subscriptions":
                # an end date after the cutoff is unknown at the cutoff: move it
                ends = pd.to_datetime(frame.ended_at)
                frame.loc[ends >= cut, "ended_at"] = cut + pd.Timedelta(days=400)
            w.load(name, frame)
        save(w, *saved)
        second = score(w, cut.date())
    pd.testing.assert_frame_equal(first, second)


def test_calibration_never_promises_certainty():
    from retentio.analytics.churn.model import _smoothed_isotonic

    raw = np.linspace(0, 1, 88)
    y = np.r_[np.zeros(50), np.ones(38)]  # perfectly separated: plain isotonic gives 0 and 1
    cal = _smoothed_isotonic(raw, y)
    p = np.interp(raw, cal["x"], cal["y"])
    assert p[:50] == pytest.approx(1 / 52) and p[50:] == pytest.approx(39 / 40)
    # a corrected block that would undercut the one below it is pooled with it
    y = np.r_[np.zeros(10), np.ones(9), np.zeros(1), np.ones(2)]  # blocks 0/10, 9/10, 2/2
    p = np.interp(np.linspace(0, 1, 22), *_smoothed_isotonic(np.linspace(0, 1, 22), y).values())
    assert np.all(np.diff(p) >= 0) and p[-1] < 1


@pytest.fixture(scope="module")
def scored(demo, trained):
    path, data = demo
    cut = pd.Timestamp(trained["plan"]["test"])
    with Workspace.open(path) as ws:
        frame = score(ws, cut.date())
        feats = build_features(ws, cut).set_index("customer_id")
    return cut, frame, feats, data


def test_score_columns_and_bands(scored):
    _, frame, _, _ = scored
    assert list(frame.columns) == ["customer_id", "churn_probability", "score", "band", "value_at_risk", "reasons"]
    assert frame.churn_probability.between(0, 1).all()
    assert (frame.score == np.round(100 * frame.churn_probability)).all()
    assert set(frame.band) <= {"low", "medium", "high"}
    assert (frame[frame.churn_probability >= 0.5].band == "high").all()
    assert frame.churn_probability.is_monotonic_decreasing
    assert frame.reasons.map(len).between(0, 3).all() and frame.reasons.map(len).mean() > 2


def test_reasons_are_true_of_the_customer(scored):
    import re

    _, frame, feats, _ = scored
    for cid, reasons in zip(frame.customer_id, frame.reasons):
        f = feats.loc[cid]
        for text in reasons:
            if m := re.match(r"gave NPS (\d+) on (\S+)", text):
                assert f.last_nps == int(m[1]) <= 6
                assert pd.Timestamp(f.last_nps_at).date().isoformat() == m[2]
            elif m := re.match(r"no login for (\d+) days", text):
                assert abs(f.days_since_login - int(m[1])) <= 0.5
            elif m := re.match(r"no order for (\d+) days", text):
                assert abs(f.recency_days - int(m[1])) <= 0.5
            elif m := re.match(r"logins down (\d+) %.*\((\d+) against (\d+)", text):
                assert f.logins_30 == int(m[2]) < f.logins_prev_30 == int(m[3])
            elif text.startswith("downgraded their plan"):
                assert f.downgrades_90 >= 1


def test_reasons_follow_the_contributions_and_skip_what_is_not_true():
    from retentio.analytics.churn.reasons import top_reasons

    frame = pd.DataFrame({
        "recency_days": [82.0, 5.0, 40.0], "overdue_ratio": [3.14, 0.5, np.nan],
        "logins_30": [0.0, 4.0, 1.0], "logins_prev_30": [2.0, 3.0, 1.0],
        "login_trend_pct": [-100.0, 33.3, 0.0], "days_since_login": [31.0, 2.0, 10.0],
        "last_nps": [2.0, 9.0, np.nan], "last_nps_at": pd.to_datetime(["2026-07-27", "2026-07-01", None]),
        "segment": ["b2b", None, "retail"],
    })
    contrib = pd.DataFrame({
        # row 0: NPS strongest, then the order gap (two features, one reason), then logins
        # row 1: the gap and logins push but are not true of the customer (recent order and
        #        rising logins); NPS 9 is no warning; only the attribute is left, and it is missing
        # row 2: one positive push; negative ones are never reasons
        "recency_days": [0.5, 0.9, 0.3], "overdue_ratio": [0.6, 0.1, -0.2],
        "login_trend_pct": [0.2, 0.8, -0.1], "days_since_login": [0.1, 0.0, -0.3],
        "last_nps": [0.9, 0.7, -0.1], "segment": [0.05, 0.3, -0.4],
    })
    reasons, groups = top_reasons(contrib, frame, with_groups=True)
    assert reasons[0] == ["gave NPS 2 on 2026-07-27", "no order for 82 days — 3.1× their usual gap",
                          "logins down 100 % over the last 30 days (0 against 2 in the 30 before)"]
    assert groups[0] == ["low NPS", "order gap", "logins"]
    assert reasons[1] == [] and groups[1] == []
    assert reasons[2] == ["no order for 40 days"]
    assert top_reasons(contrib, frame, k=1)[0] == ["gave NPS 2 on 2026-07-27"]
    contrib.loc[0, "segment"] = 5.0
    assert top_reasons(contrib, frame, k=1)[0] == ["segment: b2b"]


def test_planted_causes_appear_in_the_reasons(scored, trained):
    cut, frame, feats, data = scored
    h = pd.Timedelta(days=trained["label"]["horizon_days"])
    left = data.truth.set_index("customer_id").left_at
    leavers = frame[frame.customer_id.map(left).between(cut, cut + h)]
    high = leavers[leavers.band == "high"]
    assert len(high) > 50

    def share(pattern, rows):
        return rows.reasons.map(lambda rs: any(pattern in r for r in rs)).mean()

    # logins fade before every planted departure: where the fade shows in the data, it is named
    faded = high[high.customer_id.map(feats.login_trend_pct).le(-50)
                 | high.customer_id.map(feats.days_since_login).ge(45)]
    assert len(faded) >= 25 and share("login", faded) > 0.5
    # low NPS answers were planted in the months before leaving
    low_nps = leavers[leavers.customer_id.map(feats.last_nps).le(6)
                      & leavers.customer_id.map(feats.days_since_nps).le(120)]
    assert len(low_nps) >= 5 and share("NPS", low_nps) > 0.5
    # downgrades precede many subscribers' departures
    down = frame[frame.customer_id.map(feats.downgrades_90).ge(1) & (frame.band != "low")]
    assert len(down) >= 5 and share("downgraded", down) > 0.3


def test_cli_train_and_score_json(demo, trained):
    path, _ = demo
    code, out, err = run_cli("-w", str(path), "churn", "score", "--top", "5", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 5 and set(rows[0]) == {"customer_id", "churn_probability", "score", "band", "value_at_risk",
                                               "reasons"}
    assert rows[0]["churn_probability"] >= rows[-1]["churn_probability"]


def test_score_without_a_model_says_so(ws):
    ws.load("orders", _orders([("A", pd.Timestamp("2025-10-01"), 10, "completed", 0)]))
    code, out, err = run_cli("-w", str(ws.path), "churn", "score")
    assert code == 2 and "train one first" in err


def test_p_alive_is_left_empty_when_too_few_customers_to_fit(shop):
    f = add_p_alive(build_features(shop, CUT))
    assert "p_alive" in f and f.p_alive.isna().all()


def test_p_alive_is_a_probability_that_falls_with_time_since_the_last_order(demo_ws_path):
    with Workspace.open(demo_ws_path) as w:
        f = add_p_alive(build_features(w, dt.date(2025, 6, 1)))
    buyers = f[f.frequency > 0]
    assert len(buyers) >= 50 and buyers.p_alive.notna().all()
    assert buyers.p_alive.between(0, 1).all()
    # BG/NBD: a customer with no repeat purchase is alive with probability 1 (FHL 2005, eq. 11)
    assert (buyers[buyers.frequency == 1].p_alive == 1).all()
    repeaters = buyers[buyers.frequency > 1]
    assert repeaters.p_alive.lt(1).any()
    # same history and tenure, longer silence: less likely alive
    two = repeaters[repeaters.frequency == 2]
    corr = two.recency_days.corr(two.p_alive, method="spearman")
    assert corr < -0.5


# ----------------------------------------------------------------------------- tabular mode
def _telecom(n=3000, seed=3):
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, n)
    contract = rng.choice(["Month-to-month", "One year", "Two year"], n, p=[0.55, 0.25, 0.2])
    charges = np.round(rng.uniform(20, 110, n), 2)
    logit = -1.0 - 0.04 * tenure + np.where(contract == "Month-to-month", 1.6, -0.8) + 0.015 * (charges - 60)
    churn = rng.random(n) < 1 / (1 + np.exp(-logit))
    total = (tenure * charges).astype(object)
    total[rng.random(n) < 0.01] = " "  # the famous blank TotalCharges
    return pd.DataFrame({"customerID": [f"{i:04d}-ABCD" for i in range(n)], "tenure": tenure, "Contract": contract,
                         "MonthlyCharges": charges, "TotalCharges": total,
                         "Churn": np.where(churn, "Yes", "No")})


def test_tabular_mode_cross_validates(tmp_path):
    path = tmp_path / "telecom.csv"
    _telecom().to_csv(path, index=False)
    code, out, err = run_cli("churn", "train", "--table", str(path), "--label", "Churn", "--json")
    assert code == 0, err
    r = json.loads(out)
    for key in ("roc_auc", "pr_auc", "brier", "top_decile_lift", "baseline_roc_auc", "logistic_roc_auc", "n_train",
                "n_test", "positive_rate", "label"):
        assert key in r
    assert r["n_test"] == 3000 and r["roc_auc"] > 0.75 and r["roc_auc"] >= r["baseline_roc_auc"]
    assert "5-fold" in r["label"]["definition"]


def test_tabular_mode_errors_name_file_line_and_column(tmp_path):
    bad = write(tmp_path / "t.csv", "id,tenure,Churn\nx1,3,Yes\nx2,4,maybe\n")
    code, _, err = run_cli("churn", "train", "--table", str(bad), "--label", "Churn")
    assert code == 2 and "t.csv, line 3, column 'Churn'" in err and "maybe" in err
    code, _, err = run_cli("churn", "train", "--table", str(bad), "--label", "Exited")
    assert code == 2 and "no column 'Exited'" in err


# ----------------------------------------------------------------------------- registry and snapshots
@pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)
def test_scores_are_kept_reused_and_still_name_their_model_after_a_retrain(demo, store_url, tmp_path):
    from retentio.data.settings import SETTINGS_FILE
    from retentio.data.store.registry import model_versions, snapshot_scores, snapshots

    path, _ = demo
    copy = tmp_path / "ws"
    shutil.copytree(path, copy, ignore=shutil.ignore_patterns("retentio-store.sqlite*"))
    with Workspace.open(copy) as ws:
        ws.settings.store.url = store_url
        ws.settings.write(copy / SETTINGS_FILE)
    with Workspace.open(copy) as ws:
        train(ws, threads=1, seed=0, backtest=1)
        first = score(ws)
        again = score(ws, top=10)
        assert (first.attrs["snapshot_reused"], again.attrs["snapshot_reused"]) == (False, True)
        assert again.attrs["snapshot_id"] == first.attrs["snapshot_id"] and first.attrs["model_version"] == 1
        pd.testing.assert_frame_equal(again, first.head(10))
        assert again.attrs["label"] == first.attrs["label"]
        train(ws, threads=1, seed=1, backtest=1)  # a new version; the old one and its snapshot stay
        newer = score(ws)
        assert newer.attrs["model_version"] == 2 and not newer.attrs["snapshot_reused"]
        assert [m.version for m in model_versions(ws.store, "churn")] == [1, 2]
        old = next(s for s in snapshots(ws.store) if s.id == first.attrs["snapshot_id"])
        assert old.model_version == 1 and old.customers == len(first)
        pd.testing.assert_frame_equal(snapshot_scores(ws.store, old), first, check_dtype=False)
    with Workspace.open(copy) as ws:  # new data: the snapshot of the old data is not reused
        ws.load("orders", pd.DataFrame({"order_id": ["late-1"], "customer_id": [str(first.customer_id[0])],
                                        "ordered_at": [pd.Timestamp(first.attrs["as_of"]) - pd.Timedelta(days=1)],
                                        "amount": [10.0]}))
        assert score(ws, pd.Timestamp(first.attrs["as_of"]).date()).attrs["snapshot_reused"] is False
