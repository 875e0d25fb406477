"""Every validation rule of the loader, atomicity, formats, and the error's address."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from retentio import RetentioError, ValidationError, Workspace
from tests.conftest import write

ORDERS_OK = """
order_id,customer_id,ordered_at,amount,status
o1,c1,2024-01-05 10:00:00,10.50,completed
o2,c1,2024-02-05,20,completed
o3,c2,2024-02-07T10:00:00+00:00,5,returned
"""

NOW = dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC)


def counts(ws: Workspace) -> dict[str, int]:
    return {r["table"]: r["rows"] for r in ws.summary()}


def only_error(exc: ValidationError):
    assert len(exc.errors) == 1, exc.errors
    return exc.errors[0]


def test_valid_csv_is_stored_with_types_and_timezone(ws, tmp_path):
    report = ws.load("orders", write(tmp_path / "o.csv", ORDERS_OK), now=NOW)
    assert (report.rows_read, report.rows_stored, report.rows_rejected) == (3, 3, 0)
    df = ws.table("orders").order_by("order_id").to_pandas()
    assert df.amount.astype(float).tolist() == [10.5, 20.0, 5.0]
    # an instant with an offset is converted to the workspace's wall clock (Moscow, UTC+3)
    assert df.ordered_at.iloc[2] == pd.Timestamp("2024-02-07 13:00:00")
    assert df.ordered_at.iloc[1] == pd.Timestamp("2024-02-05 00:00:00")


def test_missing_required_column_names_file_and_column(ws, tmp_path):
    path = write(tmp_path / "o.csv", "order_id,customer_id,amount\no1,c1,5\n")
    with pytest.raises(ValidationError) as info:
        ws.load("orders", path, now=NOW)
    e = only_error(info.value)
    assert (e.source, e.line, e.column) == (str(path), 1, "ordered_at")
    assert "mapping={'their_name': 'ordered_at'}" in e.expected  # worded for Python; the CLI says --map


def test_mapping_renames_foreign_columns(ws, tmp_path):
    path = write(tmp_path / "o.csv", "Номер,Клиент,Дата,Сумма\no1,c1,2024-01-05,5\n")
    ws.load("orders", path, mapping={"Номер": "order_id", "Клиент": "customer_id", "Дата": "ordered_at",
                                     "Сумма": "amount"}, now=NOW)
    assert counts(ws)["orders"] == 1


def test_unknown_columns_reported_for_orders_kept_for_customers(ws, tmp_path):
    o = write(tmp_path / "o.csv", "order_id,customer_id,ordered_at,amount,coupon\no1,c1,2024-01-05,5,XMAS\n")
    report = ws.load("orders", o, now=NOW)
    assert any("coupon" in w for w in report.warnings)
    assert "coupon" not in ws.table("orders").columns
    c = write(tmp_path / "c.csv", "customer_id,Loyalty Tier\nc1,gold\n")
    report = ws.load("customers", c, now=NOW)
    assert report.attributes_added == ["loyalty_tier"]
    assert ws.table("customers").to_pandas().loyalty_tier.tolist() == ["gold"]


@pytest.mark.parametrize(
    "column,value,expected",
    [
        ("ordered_at", "2024-02-30", "date-time"),
        ("ordered_at", "yesterday", "date-time"),
        ("amount", "12abc", "number"),
        ("order_id", "", "required"),
        ("customer_id", "  ", "required"),
        ("amount", "-3", "at least 0 on a completed order"),
        ("status", "lost", "one of completed"),
        ("ordered_at", "2031-05-01", "not in the future"),
    ],
)
def test_each_bad_value_is_reported_at_its_line(ws, tmp_path, column, value, expected):
    row = {"order_id": "o9", "customer_id": "c9", "ordered_at": "2024-03-01", "amount": "1", "status": "completed"}
    row[column] = value
    lines = ORDERS_OK.strip().splitlines() + [",".join(row.values())]
    path = write(tmp_path / "o.csv", "\n".join(lines) + "\n")
    with pytest.raises(ValidationError) as info:
        ws.load("orders", path, now=NOW)
    e = only_error(info.value)
    assert (e.line, e.column) == (5, column)
    assert expected in e.expected
    assert str(path) in str(info.value) and "line 5" in str(info.value)
    assert counts(ws)["orders"] == 0


def test_negative_amount_allowed_on_a_return(ws, tmp_path):
    path = write(tmp_path / "o.csv", "order_id,customer_id,ordered_at,amount,status\no1,c1,2024-01-05,-5,returned\n")
    ws.load("orders", path, now=NOW)
    assert counts(ws)["orders"] == 1


@pytest.mark.parametrize("kind,score,ok", [("nps", 10, True), ("nps", 11, False), ("nps", -1, False),
                                           ("csat", 5, True), ("csat", 0, False), ("csat", 6, False),
                                           ("ces", 7, True), ("ces", 8, False)])
def test_survey_score_must_be_on_its_scale(ws, tmp_path, kind, score, ok):
    path = write(tmp_path / "s.csv", f"answered_at,kind,score,customer_id\n2024-01-01,{kind},{score},\n")
    if ok:
        ws.load("surveys", path, now=NOW)
        assert counts(ws)["surveys"] == 1
    else:
        with pytest.raises(ValidationError) as info:
            ws.load("surveys", path, now=NOW)
        assert only_error(info.value).column == "score"


def test_subscription_ending_before_it_starts(ws, tmp_path):
    path = write(tmp_path / "s.csv", "subscription_id,customer_id,started_at,mrr,ended_at\n"
                                     "s1,c1,2024-03-01,10,2024-02-01\ns2,c1,2024-03-01,10,2026-01-01\n")
    with pytest.raises(ValidationError) as info:
        ws.load("subscriptions", path, now=NOW)
    e = only_error(info.value)
    assert (e.line, e.column) == (2, "ended_at")  # s2's end in the future is a paid-up term: fine


def test_duplicate_id_inside_file_points_at_first(ws, tmp_path):
    path = write(tmp_path / "o.csv", ORDERS_OK.strip() + "\no2,c3,2024-03-01,1,completed\n")
    with pytest.raises(ValidationError) as info:
        ws.load("orders", path, now=NOW)
    e = only_error(info.value)
    assert (e.line, e.column, e.value) == (5, "order_id", "o2")
    assert "line 3" in e.expected


def test_append_refuses_stored_ids_upsert_replaces_them(ws, tmp_path):
    ws.load("orders", write(tmp_path / "a.csv", ORDERS_OK), now=NOW)
    again = write(tmp_path / "b.csv", "order_id,customer_id,ordered_at,amount\no1,c1,2024-01-05,99\no4,c4,2024-01-06,1\n")
    with pytest.raises(ValidationError) as info:
        ws.load("orders", again, now=NOW)
    assert "upsert" in only_error(info.value).expected
    assert counts(ws)["orders"] == 3
    ws.load("orders", again, mode="upsert", now=NOW)
    df = ws.table("orders").to_pandas().set_index("order_id")
    assert len(df) == 4 and float(df.loc["o1", "amount"]) == 99.0
    ws.load("orders", again, mode="replace", now=NOW)
    assert counts(ws)["orders"] == 2


def test_upsert_needs_a_primary_key(ws, tmp_path):
    path = write(tmp_path / "e.csv", "customer_id,occurred_at,event_type\nc1,2024-01-01,login\n")
    with pytest.raises(RetentioError, match="no primary key"):
        ws.load("events", path, mode="upsert", now=NOW)


def test_unknown_customer_rejected_once_customers_exist(ws, tmp_path):
    ev = write(tmp_path / "e.csv", "customer_id,occurred_at,event_type\nc1,2024-01-01,login\nc2,2024-01-02,login\n")
    ws.load("customers", write(tmp_path / "c.csv", "customer_id\nc1\n"), now=NOW)
    with pytest.raises(ValidationError) as info:
        ws.load("events", ev, now=NOW)
    e = only_error(info.value)
    assert (e.line, e.column, e.value) == (3, "customer_id", "c2")


def test_empty_file_and_header_only_file(ws, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(RetentioError, match="empty.csv: the file is empty"):
        ws.load("orders", empty, now=NOW)
    header = write(tmp_path / "header.csv", "order_id,customer_id,ordered_at,amount\n")
    with pytest.raises(RetentioError, match="header.csv: no data rows"):
        ws.load("orders", header, now=NOW)


def test_all_errors_reported_at_once_and_capped(ws, tmp_path):
    rows = "\n".join(f"o{i},c1,not-a-date,1" for i in range(200))
    path = write(tmp_path / "o.csv", "order_id,customer_id,ordered_at,amount\n" + rows + "\n")
    with pytest.raises(ValidationError) as info:
        ws.load("orders", path, now=NOW)
    assert info.value.total == 200
    assert len(info.value.errors) == 50
    assert "150 more" in str(info.value)


def test_failed_load_leaves_store_exactly_as_before(ws, tmp_path):
    ws.load("orders", write(tmp_path / "a.csv", ORDERS_OK), now=NOW)
    before = ws.table("orders").order_by("order_id").to_pandas()
    bad = write(tmp_path / "b.csv", "order_id,customer_id,ordered_at,amount\no7,c1,2024-01-05,1\no8,c1,bad,1\n")
    for mode in ("append", "replace", "upsert"):
        with pytest.raises(ValidationError):
            ws.load("orders", bad, mode=mode, now=NOW)
    pd.testing.assert_frame_equal(before, ws.table("orders").order_by("order_id").to_pandas())


def test_failure_while_storing_rolls_back(ws, tmp_path, monkeypatch):
    """An error after the first write of the transaction (here: the load log) undoes it."""
    ws.load("orders", write(tmp_path / "a.csv", ORDERS_OK), now=NOW)
    ws.con.execute("DROP TABLE _retentio_loads")
    ws.con.execute("CREATE TABLE _retentio_loads (x INTEGER)")  # wrong shape: the final INSERT fails
    more = write(tmp_path / "b.csv", "order_id,customer_id,ordered_at,amount\no9,c1,2024-01-05,1\n")
    with pytest.raises(duckdb.Error, match="_retentio_loads"):  # the load log's INSERT, the last write
        ws.load("orders", more, mode="replace", now=NOW)
    assert sorted(ws.table("orders").to_pandas().order_id) == ["o1", "o2", "o3"]


def test_skip_invalid_stores_valid_rows_and_writes_reasons(ws, tmp_path):
    path = write(tmp_path / "o.csv", ORDERS_OK.strip() + "\no4,c1,31.31.2024,1,completed\no5,c1,2024-01-01,x,completed\n")
    rejects = tmp_path / "rejects.csv"
    report = ws.load("orders", path, skip_invalid=rejects, now=NOW)
    assert (report.rows_stored, report.rows_rejected) == (3, 2)
    rej = pd.read_csv(rejects)
    assert rej.line.tolist() == [5, 6]
    assert "ordered_at: expected a date-time" in rej.reasons[0]
    assert "amount: expected a number" in rej.reasons[1]
    assert counts(ws)["orders"] == 3


def test_semicolon_and_decimal_comma_detected(ws, tmp_path):
    path = write(tmp_path / "ru.csv", "order_id;customer_id;ordered_at;amount\no1;c1;05.01.2024;1 234,50\no2;c1;06.01.2024 14:30;12,5\n")
    report = ws.load("orders", path, now=NOW)
    assert (report.delimiter, report.decimal) == (";", ",")
    df = ws.table("orders").order_by("order_id").to_pandas()
    assert df.amount.astype(float).tolist() == [1234.5, 12.5]
    assert df.ordered_at.tolist() == [pd.Timestamp("2024-01-05"), pd.Timestamp("2024-01-06 14:30")]


def test_bad_date_far_into_a_large_file_is_on_the_right_line(ws, tmp_path):
    n = 60_000
    lines = [f"o{i},c{i % 97},2024-01-{1 + i % 28:02d},{i % 50}" for i in range(n)]
    lines[41_234] = "o41234,c1,2024-99-01,5"
    path = write(tmp_path / "big.csv", "order_id,customer_id,ordered_at,amount\n" + "\n".join(lines) + "\n")
    with pytest.raises(ValidationError) as info:
        ws.load("orders", path, now=NOW)
    e = only_error(info.value)
    assert (e.line, e.value) == (41_236, "2024-99-01")


@pytest.mark.parametrize("kind", ["pandas", "polars", "arrow", "parquet", "jsonl"])
def test_frames_parquet_and_json_lines(ws, tmp_path, kind):
    df = pd.DataFrame({"order_id": ["o1", "o2"], "customer_id": ["c1", "c2"],
                       "ordered_at": pd.to_datetime(["2024-01-01 00:00", "2024-01-02 10:00"], format="%Y-%m-%d %H:%M"), "amount": [1.5, -2.0],
                       "status": ["completed", "completed"]})
    source = {"pandas": lambda: df, "polars": lambda: pl.from_pandas(df), "arrow": lambda: pa.Table.from_pandas(df)}
    if kind in source:
        src = source[kind]()
    elif kind == "parquet":
        src = tmp_path / "o.parquet"
        df.to_parquet(src)
    else:
        src = tmp_path / "o.jsonl"
        df.assign(ordered_at=df.ordered_at.astype(str)).to_json(src, orient="records", lines=True)
    with pytest.raises(ValidationError) as info:
        ws.load("orders", src, now=NOW)
    e = only_error(info.value)
    assert (e.line, e.column) == (2, "amount")
    assert e.unit == ("line" if kind == "jsonl" else "row")
    df.loc[1, "amount"] = 2.0
    src = {"pandas": df, "polars": pl.from_pandas(df), "arrow": pa.Table.from_pandas(df)}.get(kind, src)
    if kind == "parquet":
        df.to_parquet(src)
    elif kind == "jsonl":
        df.assign(ordered_at=df.ordered_at.astype(str)).to_json(src, orient="records", lines=True)
    ws.load("orders", src, now=NOW)
    out = ws.table("orders").order_by("order_id").to_pandas()
    assert out.ordered_at.tolist() == df.ordered_at.tolist()


def test_unknown_table_and_mode_and_missing_file(ws, tmp_path):
    with pytest.raises(RetentioError, match="canonical tables are"):
        ws.load("payments", tmp_path / "x.csv")
    with pytest.raises(RetentioError, match="unknown mode"):
        ws.load("orders", tmp_path / "x.csv", mode="merge")
    with pytest.raises(RetentioError, match="no such file"):
        ws.load("orders", tmp_path / "x.csv")


def test_customers_derived_when_none_loaded(ws, tmp_path):
    ws.load("orders", write(tmp_path / "o.csv", ORDERS_OK), now=NOW)
    ws.load("events", write(tmp_path / "e.csv", "customer_id,occurred_at,event_type\nc7,2023-12-01,login\nc1,2023-12-02,login\n"), now=NOW)
    derived = ws.customers().order_by("customer_id").to_pandas()
    assert derived.customer_id.tolist() == ["c1", "c2", "c7"]
    assert derived.signup_at.tolist()[0] == pd.Timestamp("2023-12-02")
