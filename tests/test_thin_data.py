"""Analyses that never mislead: honest answers on thin or odd data. Each case is a tiny
hand-made workspace on which an analysis used to give a confident wrong answer (a CLV fit
"converged" on nothing, a customer who bought yesterday "lost", "nan %", an empty table
for a day before the data, "the data are too short" for a misspelt event type)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retentio import Workspace
from retentio.analytics.clv.identify import NotIdentifiable, estimate_problem, require_identified
from retentio.analytics.segments import MIN_CUSTOMERS_FOR_QUINTILES, largest_drop
from retentio.clv import BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel
from retentio.data.errors import RetentioError
from tests.clv_data import CDNOW
from tests.conftest import run_cli, write

ALL_ON_ONE_DAY = """
order_id,customer_id,ordered_at,amount
o1,c1,2024-03-01,10
o2,c2,2024-03-01,20
o3,c3,2024-03-01,15
o4,c4,2024-03-01,12
"""
ONE_CUSTOMER = """
order_id,customer_id,ordered_at,amount
o1,c1,2024-01-01,10
o2,c1,2024-02-01,20
o3,c1,2024-03-01,15
o4,c1,2024-05-01,12
"""
ONE_ORDER = """
order_id,customer_id,ordered_at,amount
o1,c1,2024-03-01,10
"""
ONLY_CANCELLED = """
order_id,customer_id,ordered_at,amount,status
o1,c1,2024-01-01,10,cancelled
o2,c1,2024-03-01,10,cancelled
"""


def shop(tmp_path: Path, **tables: str) -> str:
    """A workspace made as a user makes one: init, then load each table from a CSV."""
    ws = str(tmp_path / "ws")
    assert run_cli("init", ws)[0] == 0
    for name, text in tables.items():
        code, _, err = run_cli("-w", ws, "load", name, str(write(tmp_path / f"{name}.csv", text)))
        assert code == 0, err
    return ws


def refused(ws: str, *args: str) -> str:
    """Run a command that must refuse with a user error (exit 2, no traceback); its message."""
    code, out, err = run_cli("-w", ws, *args)
    assert code == 2, (code, out, err)
    assert "internal error" not in err and "Traceback" not in err
    return " ".join(err.split())


# ---------------------------------------------------------------------- 1. CLV fits on data that identify nothing


def test_clv_fit_on_orders_all_on_one_day_says_the_data_cannot_identify_the_model(tmp_path):
    ws = shop(tmp_path, orders=ALL_ON_ONE_DAY)
    message = refused(ws, "clv", "fit")
    assert "cannot identify the BG/NBD model" in message and "converged" not in message
    assert "bought again" in message and "last day of the data" in message  # why
    assert "more customers" in message and "longer order history" in message  # what would
    code, out, _ = run_cli("-w", ws, "clv", "fit", "--json")
    assert code == 2 and "cannot identify" in json.loads(out)["error"]
    # a later calibration end gives them time, but still no repeat purchase
    assert "bought again" in refused(ws, "clv", "fit", "--calibration-end", "2024-06-01")


def test_clv_fit_on_a_single_customer_says_so(tmp_path):
    ws = shop(tmp_path, orders=ONE_CUSTOMER)
    for model in ("bgnbd", "mbgnbd", "pareto_nbd"):
        message = refused(ws, "clv", "fit", "--model", model)
        assert "only 1 customer for the model's 4 parameters" in message
    assert "cannot identify" in refused(ws, "clv", "predict")
    assert "cannot identify" in refused(ws, "clv", "channels")


@pytest.mark.parametrize("x, t_x, T", [
    ([1, 0, 0, 0, 0], [5, 0, 0, 0, 0], [10] * 5),       # one repeat buyer among five
    ([1, 1, 1, 1, 1], [5, 5, 5, 5, 5], [10] * 5),       # five identical customers
])
def test_estimates_that_run_off_or_sit_on_a_flat_likelihood_are_not_a_fit(x, t_x, T):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = BetaGeoModel().fit(x, t_x, T)
    problem = estimate_problem(m)
    assert problem is not None and ("ran off" in problem or "flat" in problem or "standard error" in problem)
    assert m.summary()["identified"] is False and m.summary()["identification"] == problem
    with pytest.raises(NotIdentifiable, match="cannot identify the BG/NBD model") as caught:
        require_identified(m)
    assert isinstance(caught.value, RetentioError)  # callers that catch RetentioError keep working


@pytest.mark.parametrize("cls", [BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel])
def test_a_real_customer_base_is_identified(cls):
    m = cls().fit(CDNOW.frequency, CDNOW.recency, CDNOW["T"])
    assert estimate_problem(m) is None and m.summary()["identified"] and require_identified(m) is m


def test_no_repeat_purchase_is_refused_by_the_model_itself():
    with pytest.raises(NotIdentifiable, match="bought again"):
        BetaGeoModel().fit([0, 0, 0, 0, 0], [0] * 5, [3, 4, 5, 6, 7])
    with pytest.raises(NotIdentifiable, match="only 2 customers"):
        ParetoNBDModel().fit([2, 1], [3, 1], [5, 4])


def test_the_report_and_churn_value_stay_available_around_an_unidentified_clv(tmp_path):
    """The report catches RetentioError per section: CLV is unavailable, with the reason,
    and every other section is still built."""
    from retentio.services.report import ReportParams, report_data

    ws = shop(tmp_path, orders=ALL_ON_ONE_DAY)
    with Workspace.open(ws, read_only=True) as w:
        data = report_data(w, ReportParams(train_if_missing=False))
    assert data.value is None and isinstance(data.unavailable["clv"], NotIdentifiable)
    assert data.segments is not None and data.metrics is not None


# ---------------------------------------------------------------------- 2. RFM with too few customers for quintiles


def test_a_single_customer_who_bought_yesterday_is_new_not_lost(tmp_path):
    from retentio.services.retention import customer_segments

    ws = shop(tmp_path, orders=ONE_ORDER)
    with Workspace.open(ws, read_only=True) as w:
        seg = customer_segments(w)
    row = seg.customers.iloc[0]
    assert (row.r_score, row.f_score, row.segment) == (5, 1, "new")
    assert seg.scoring == "fixed thresholds" and "only 1 customer" in seg.note and "15 days" in seg.note
    code, out, err = run_cli("-w", ws, "segments", "--json")
    rows = json.loads(out)
    assert code == 0 and rows[0]["segment"] == "new" and "fixed thresholds" in rows[0]["note"]
    assert "fixed thresholds" in " ".join(err.split())
    code, out, err = run_cli("-w", ws, "segments")
    assert code == 0 and "fixed thresholds" in " ".join(err.split())


def test_fixed_thresholds_score_recency_by_the_activity_window_and_counts_as_they_are(tmp_path):
    # as of 2024-06-01 (the day after the last order): recency 1, 20, 45, 80 and 120 days
    orders = "order_id,customer_id,ordered_at,amount\n" + "\n".join([
        "a1,A,2024-05-31,10",
        "b1,B,2024-05-12,10", "b2,B,2024-05-11,10",
        "c1,C,2024-04-17,10", "c2,C,2024-04-10,10", "c3,C,2024-04-01,40",
        "d1,D,2024-03-13,10",
        "e1,E,2024-02-02,10", *[f"e{i},E,2024-01-{i:02d},10" for i in range(2, 8)],
    ])
    ws = shop(tmp_path, orders=orders)
    with Workspace.open(ws, read_only=True) as w:
        seg = w.segments().set_index("customer_id")
    assert seg.r_score.to_dict() == {"A": 5, "B": 4, "C": 3, "D": 2, "E": 1}
    assert seg.f_score.to_dict() == {"A": 1, "B": 2, "C": 3, "D": 1, "E": 5}  # orders, 5 or more: 5
    # spend in typical orders (170 / 14 = 12.14), rounded: A 0.8 -> 1, B 1.6 -> 2, C 4.9 -> 5, E 5.8 -> 5
    assert seg.m_score.to_dict() == {"A": 1, "B": 2, "C": 5, "D": 1, "E": 5}
    assert seg.loc["A", "segment"] == "new" and seg.loc["E", "segment"] == "can't lose them"
    assert seg.attrs["scoring"] == "fixed thresholds"


def test_enough_customers_are_scored_by_quintiles(tmp_path):
    n = MIN_CUSTOMERS_FOR_QUINTILES
    orders = "order_id,customer_id,ordered_at,amount\n" + "\n".join(
        f"o{i},c{i},{(pd.Timestamp('2024-01-01') + pd.Timedelta(days=i)).date()},{10 + i}" for i in range(n))
    ws = shop(tmp_path, orders=orders)
    with Workspace.open(ws, read_only=True) as w:
        seg = w.segments()
    assert seg.attrs["scoring"] == "quintiles" and seg.attrs["note"] is None
    assert sorted(seg.r_score.value_counts().tolist()) == [5] * 5  # five customers per quintile
    code, out, err = run_cli("-w", ws, "segments", "--json")
    assert code == 0 and "note" not in json.loads(out)[0] and "note:" not in err


# ---------------------------------------------------------------------- 3. funnel and holdout check: no nan, no empty answers


def test_funnel_of_an_empty_workspace_says_what_to_load(tmp_path):
    ws = shop(tmp_path)
    message = refused(ws, "funnel")
    assert "no orders or subscriptions loaded" in message and "retentio load" in message


def test_funnel_of_cancelled_orders_only_says_none_is_completed(tmp_path):
    ws = shop(tmp_path, orders=ONLY_CANCELLED)
    assert "none of the 2 orders loaded is completed (cancelled 2)" in refused(ws, "funnel")


def test_funnel_nobody_drops_out_of_names_no_drop(tmp_path):
    ws = shop(tmp_path, orders=ONE_CUSTOMER)
    code, out, err = run_cli("-w", ws, "funnel")
    assert code == 0 and "lost before" not in err and "nan" not in out + err
    assert "No customer is lost between order 1 and order 4" in err
    code, out, _ = run_cli("-w", ws, "funnel", "--json")
    assert code == 0 and json.loads(out)["largest_drop"] is None
    single = shop(tmp_path / "single", orders=ONE_ORDER)
    code, out, err = run_cli("-w", single, "funnel")
    assert code == 0 and "lost before" not in err and "No customer has a second completed order yet" in err


def test_funnel_of_subscriptions_only_says_there_is_no_order_funnel(tmp_path):
    ws = shop(tmp_path, subscriptions="subscription_id,customer_id,started_at,mrr\ns1,c1,2024-03-01,10\n")
    code, out, err = run_cli("-w", ws, "funnel")
    assert code == 0 and "no orders loaded" in err and "Subscription funnel" in out
    code, out, _ = run_cli("-w", ws, "funnel", "--json")
    assert code == 0 and json.loads(out)["orders"] == [] and json.loads(out)["note"]


def test_largest_drop_is_never_the_first_step():
    steps = pd.DataFrame({"step": ["order 1", "order 2", "order 3"], "customers": [5, 5, 5], "lost": [0, 0, 0]})
    assert largest_drop(steps) is None
    steps["customers"], steps["lost"] = [5, 3, 2], [0, 2, 1]
    assert largest_drop(steps).step == "order 2"


def test_clv_validate_on_an_empty_workspace_says_what_to_load(tmp_path):
    ws = shop(tmp_path)
    message = refused(ws, "clv", "validate", "--calibration-end", "2024-01-01")
    assert "no orders loaded" in message and "retentio load" in message
    assert "no orders" in refused(ws, "clv", "validate", "--calibration-end", "2024-01-01", "--observation-end",
                                  "2024-06-01")


def test_clv_validate_never_prints_nan(tmp_path):
    ws = shop(tmp_path, orders=ONE_CUSTOMER)
    message = refused(ws, "clv", "validate", "--calibration-end", "2024-02-15")
    assert "cannot identify" in message and "nan" not in message
    assert "first order, 2024-01-01" in refused(ws, "clv", "validate", "--calibration-end", "2023-06-01")
    assert "last order day, 2024-05-01" in refused(ws, "clv", "validate", "--calibration-end", "2024-12-01")


# ---------------------------------------------------------------------- 4. an as-of day before the data


def test_segments_as_of_a_day_before_the_data_names_the_first_day(tmp_path):
    ws = shop(tmp_path, orders=ONE_CUSTOMER)
    message = refused(ws, "segments", "--as-of", "2023-06-01")
    assert "--as-of '2023-06-01'" in message and "2024-01-01" in message
    assert "2024-01-01" in refused(ws, "segments", "--as-of", "2024-01-01", "--json")  # nothing before it either
    assert run_cli("-w", ws, "segments", "--as-of", "2024-01-02")[0] == 0


def test_segments_of_cancelled_orders_only_is_an_error_not_an_empty_table(tmp_path):
    ws = shop(tmp_path, orders=ONLY_CANCELLED)
    assert "none of the orders loaded is completed" in refused(ws, "segments")


def test_churn_score_as_of_a_day_before_the_data_names_the_first_day(tmp_path):
    ws = shop(tmp_path, orders=ONE_CUSTOMER)
    message = refused(ws, "churn", "score", "--as-of", "2023-06-01")
    assert "--as-of '2023-06-01'" in message and "first day of the data, 2024-01-01" in message


# ---------------------------------------------------------------------- 5. churn labelled by an event type that is not there


EVENTS = "customer_id,occurred_at,event_type\n" + "\n".join(
    [f"c1,2024-0{m}-01,login" for m in range(1, 6)] + ["c1,2024-02-03,view_item"])


def test_churn_train_by_an_event_type_not_loaded_lists_the_types_there_are(tmp_path):
    ws = shop(tmp_path, orders=ONE_CUSTOMER, events=EVENTS)
    message = refused(ws, "churn", "train", "--event", "purchase")
    assert "no event of type 'purchase' is loaded" in message and "too short" not in message
    assert "login (5), view_item (1)" in message and "--event TYPE" in message


def test_churn_train_by_an_event_without_events_says_to_load_them(tmp_path):
    ws = shop(tmp_path, orders=ONE_CUSTOMER)
    message = refused(ws, "churn", "train", "--event", "login")
    assert "no events are loaded" in message and "retentio load" in message


def test_an_event_type_that_is_loaded_passes_the_check(tmp_path):
    from retentio.analytics.churn.labels import LabelSpec

    ws = shop(tmp_path, orders=ONE_CUSTOMER, events=EVENTS)
    with Workspace.open(ws, read_only=True) as w:
        spec = LabelSpec.for_workspace(w, None, "login")
    assert spec.kind == "event" and spec.event_type == "login"


def _simulate_bgnbd(n: int, weeks: float, seed: int, r=0.24, alpha=4.41, a=0.79, b=2.43):
    """Purchase histories drawn from BG/NBD itself (Fader, Hardie & Lee 2005): λ ~ Gamma(r, α),
    p ~ Beta(a, b), Poisson purchases at rate λ, leaving with probability p after each."""
    rng = np.random.default_rng(seed)
    lam, p = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    x, t_x = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while (t := t + rng.exponential(1 / lam[i])) <= weeks:
            x[i], t_x[i] = x[i] + 1, t
            if rng.random() < p[i]:
                break
    return x, t_x, np.full(n, float(weeks))


@pytest.mark.parametrize(("n", "seed", "a", "b"), [(300, 0, 0.79, 2.43), (300, 4, 0.79, 2.43),
                                                   (2000, 1, 1e-9, 1.0)])  # the last: nobody leaves
def test_the_point_mass_limit_of_a_mixing_distribution_is_a_fit(n, seed, a, b):
    """Healthy data drawn from the model itself can send a and b off together (every
    customer shares one dropout probability): flagged in the summary, not refused."""
    x, t_x, T = _simulate_bgnbd(n, 12, seed, a=a, b=b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = BetaGeoModel().fit(x, t_x, T)
    assert estimate_problem(m) is not None  # a and b ran off: the case this test is about
    assert require_identified(m) is m
    assert np.isfinite(m.probability_alive(x, t_x, T)).all()
    assert 0.15 < m.params_["r"] < 0.35  # the purchase rates are well estimated all the same
