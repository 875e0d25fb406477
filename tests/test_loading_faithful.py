"""Loads store exactly what the file says, or refuse and say why (issue: "data in without a
single silent change"). Each test here failed on the loader before that issue."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from retentio import RetentioError, ValidationError, Workspace
from tests.conftest import write

NOW = dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC)
HEAD = "order_id;customer_id;ordered_at;amount\n"


def amounts(ws: Workspace) -> list[float]:
    return ws.table("orders").order_by("order_id").to_pandas().amount.astype(float).tolist()


def orders(tmp_path: Path, *values: str, sep: str = ";", name: str = "o.csv") -> Path:
    head = HEAD.replace(";", sep)
    rows = "".join(f"o{i}{sep}c1{sep}2024-01-0{1 + i % 9}{sep}{v}\n" for i, v in enumerate(values))
    return write(tmp_path / name, head + rows)


# ------------------------------------------------------------------ 1. decimals and money
@pytest.mark.parametrize("values,expected", [
    (["1 234,50", "2 000,00"], [1234.5, 2000.0]),            # every amount grouped: was 123450
    (["1\u00a0234,50", "12\u00a0345,00"], [1234.5, 12345.0]),  # no-break spaces (Excel, 1C)
    (["1\u202f234,50"], [1234.5]),                             # narrow no-break space
    (["12,50", "12.50"], [12.5, 12.5]),                        # mixed: each read as written (was 1250)
    (["1,234.50", "1,200"], [1234.5, 1200.0]),                 # US: the point decides, 1,200 is 1200
    (["1.234,50", "1.200"], [1234.5, 1200.0]),                 # German: the comma decides
    (["1'234.50", "12.5"], [1234.5, 12.5]),                    # Swiss apostrophe
    (["1 234 567", "12"], [1234567.0, 12.0]),                  # whole numbers grouped by spaces
    (["-1 234,50"], [-1234.5]),
])
def test_decimal_and_thousands_separators_read_as_written(ws, tmp_path, values, expected):
    # amounts negative only on returns
    path = orders(tmp_path, *values)
    if any(v.startswith("-") for v in values):
        path.write_text(path.read_text().replace("order_id;customer_id;ordered_at;amount",
                                                 "order_id;customer_id;ordered_at;amount;status")
                        .replace("-1 234,50", "-1 234,50;returned"))
    ws.load("orders", path, now=NOW)
    assert amounts(ws) == expected


def test_ambiguous_thousands_refused_asking_for_decimal(ws, tmp_path):
    path = orders(tmp_path, "1,200", "2,500", "300", sep=";")
    with pytest.raises(RetentioError) as info:
        ws.load("orders", path, now=NOW)
    msg = str(info.value)
    assert "decimal='.' or decimal=','" in msg and "line 2, column 'amount': '1,200'" in msg and "Nothing was stored" in msg
    assert amounts(ws) == []
    ws.load("orders", path, decimal=".", now=NOW)
    assert amounts(ws) == [1200.0, 2500.0, 300.0]


def test_explicit_decimal_rejects_values_written_the_other_way(ws, tmp_path):
    path = orders(tmp_path, "12,50", "12.50")
    with pytest.raises(ValidationError) as info:
        ws.load("orders", path, decimal=",", now=NOW)
    (e,) = info.value.errors
    assert (e.line, e.column, e.value) == (3, "amount", "12.50")
    assert "decimal separator is ','" in e.expected


@pytest.mark.parametrize("currency,values,expected", [
    ("RUB", ["1 234,50 ₽", "1 234,50 руб.", "99,90 р.", "10 RUB"], [1234.5, 1234.5, 99.9, 10.0]),
    ("USD", ["$1,234.50", "USD 5.25", "$-0.00"], [1234.5, 5.25, 0.0]),
    ("EUR", ["€ 1.234,50", "1.234,50 €", "7 EUR"], [1234.5, 1234.5, 7.0]),
])
def test_money_with_the_workspace_currency(tmp_path, currency, values, expected):
    with Workspace.init(tmp_path / "w", currency=currency) as ws:
        ws.load("orders", orders(tmp_path, *values), now=NOW)
        assert amounts(ws) == expected


def test_money_in_another_currency_is_an_error(ws, tmp_path):
    path = orders(tmp_path, "1 234,50 ₽", "$12,00", "15,00 EUR")
    with pytest.raises(ValidationError) as info:
        ws.load("orders", path, now=NOW)
    errs = info.value.errors
    assert [(e.line, e.value) for e in errs] == [(3, "$12,00"), (4, "15,00 EUR")]
    assert all("in RUB, the workspace's currency" in e.expected for e in errs)


# ------------------------------------------------------------------ 2. replace with almost nothing valid
def test_replace_that_would_keep_nothing_is_refused(ws, tmp_path):
    ws.load("orders", orders(tmp_path, "10", "20", "30", name="good.csv"), now=NOW)
    bad = write(tmp_path / "bad.csv", HEAD + "o9;c1;not a date;5\no8;c1;2024-13-45;1\n")
    with pytest.raises(RetentioError, match=r"only 0 of 2 rows are valid.*delete its 3 stored rows.*force=True"):
        ws.load("orders", bad, mode="replace", skip_invalid=tmp_path / "rej.csv", now=NOW)
    assert amounts(ws) == [10.0, 20.0, 30.0]
    assert not (tmp_path / "rej.csv").exists()
    report = ws.load("orders", bad, mode="replace", skip_invalid=tmp_path / "rej.csv", force=True, now=NOW)
    assert (report.rows_stored, report.rows_rejected) == (0, 2)
    assert amounts(ws) == []


def test_replace_keeping_most_rows_needs_no_force(ws, tmp_path):
    path = write(tmp_path / "o.csv", HEAD + "o1;c1;2024-01-01;1\no2;c1;2024-01-02;2\no3;c1;bad;3\n")
    report = ws.load("orders", path, mode="replace", skip_invalid=tmp_path / "r.csv", now=NOW)
    assert (report.rows_stored, report.rows_rejected) == (2, 1)


# ------------------------------------------------------------------ 4. upsert keeps what the file lacks
def test_upsert_updates_only_the_columns_the_file_has(ws, tmp_path):
    ws.load("customers", write(tmp_path / "c.csv", "customer_id,city,email,tier\nc1,Moscow,a@x.ru,gold\nc2,Kazan,b@x.ru,silver\n"),
            now=NOW)
    report = ws.load("customers", write(tmp_path / "u.csv", "customer_id,email\nc1,new@x.ru\nc3,c@x.ru\n"),
                     mode="upsert", now=NOW)
    assert (report.rows_stored, report.rows_updated) == (2, 1)
    df = ws.table("customers").order_by("customer_id").to_pandas().set_index("customer_id")
    assert df.loc["c1", ["city", "email", "tier"]].tolist() == ["Moscow", "new@x.ru", "gold"]
    assert df.loc["c2", ["city", "email", "tier"]].tolist() == ["Kazan", "b@x.ru", "silver"]
    assert df.loc["c3", "email"] == "c@x.ru" and pd.isna(df.loc["c3", "city"])


# ------------------------------------------------------------------ 5. non-ASCII attribute names
def test_russian_attribute_names_are_kept_and_distinct(ws, tmp_path):
    path = write(tmp_path / "c.csv", "customer_id,Город,Уровень лояльности,Менеджер\nc1,Москва,золото,Иван\n")
    report = ws.load("customers", path, now=NOW)
    assert report.attributes_added == ["город", "уровень_лояльности", "менеджер"]
    row = ws.table("customers").to_pandas().iloc[0]
    assert (row["город"], row["уровень_лояльности"], row["менеджер"]) == ("Москва", "золото", "Иван")


def test_attribute_names_that_collide_are_refused(ws, tmp_path):
    path = write(tmp_path / "c.csv", "customer_id,Город,город ,Г-о-р\nc1,A,B,C\n")
    with pytest.raises(RetentioError, match="'Город' and 'город' would both be stored as the customer attribute 'город'"):
        ws.load("customers", path, now=NOW)
    assert ws.table("customers").count().execute() == 0


# ------------------------------------------------------------------ 6. the same rows twice
EVENTS = "customer_id,occurred_at,event_type\nc1,2024-01-01 10:00,login\nc1,2024-01-01 10:00,login\nc2,2024-01-02,usage\n"


def test_same_file_twice_into_a_table_without_ids_is_refused(ws, tmp_path):
    path = write(tmp_path / "e.csv", EVENTS)
    ws.load("events", path, now=NOW)
    with pytest.raises(RetentioError, match=r"already loaded into events .* \(3 rows stored\).*allow_duplicates=True"):
        ws.load("events", path, now=NOW)
    assert ws.table("events").count().execute() == 3  # two identical rows inside one file are kept


def test_overlapping_export_skips_rows_already_stored(ws, tmp_path):
    ws.load("surveys", write(tmp_path / "s1.csv", "answered_at,kind,score,customer_id\n2024-01-01,nps,9,c1\n2024-01-02,nps,3,c2\n"), now=NOW)
    report = ws.load("surveys", write(tmp_path / "s2.csv", "answered_at,kind,score,customer_id\n2024-01-02,nps,3,c2\n2024-01-03,nps,10,c3\n"), now=NOW)
    assert (report.rows_stored, report.rows_skipped_duplicate) == (1, 1)
    assert any("identical to rows already stored" in w for w in report.warnings)
    assert ws.table("surveys").count().execute() == 3


def test_allow_duplicates_stores_a_repeat(ws, tmp_path):
    path = write(tmp_path / "e.csv", EVENTS)
    ws.load("events", path, now=NOW)
    report = ws.load("events", path, allow_duplicates=True, now=NOW)
    assert report.rows_stored == 3
    assert ws.table("events").count().execute() == 6


def test_same_file_after_a_replace_of_other_data_is_allowed(ws, tmp_path):
    a, b = write(tmp_path / "a.csv", EVENTS), write(tmp_path / "b.csv", "customer_id,occurred_at,event_type\nc9,2024-01-01,login\n")
    ws.load("events", a, now=NOW)
    ws.load("events", b, mode="replace", now=NOW)
    ws.load("events", a, now=NOW)
    assert ws.table("events").count().execute() == 4


def test_same_orders_file_twice_names_the_earlier_load(ws, tmp_path):
    path = orders(tmp_path, "10")
    ws.load("orders", path, now=NOW)
    with pytest.raises(RetentioError, match="mode='upsert'"):
        ws.load("orders", path, now=NOW)


# ------------------------------------------------------------------ 7. ids written as floats
def test_integral_float_ids_are_one_customer(ws, tmp_path):
    ws.load("customers", write(tmp_path / "c.csv", "customer_id,city\n17850.0,York\n13047,Leeds\n"), now=NOW)
    report = ws.load("orders", write(tmp_path / "o.csv", "order_id,customer_id,ordered_at,amount\n"
                                     "536365,17850,2024-01-01,15.3\n536366.0,17850.0,2024-01-02,22\n"
                                     "536367,13047.00,2024-01-03,1\n"), now=NOW)
    assert report.normalised == {"order_id": 1, "customer_id": 2}
    assert any("17850" in w for w in report.warnings)
    df = ws.table("orders").order_by("order_id").to_pandas()
    assert df.customer_id.tolist() == ["17850", "17850", "13047"]
    assert df.order_id.tolist() == ["536365", "536366", "536367"]
    assert ws.table("customers").to_pandas().customer_id.tolist() == ["17850", "13047"]


def test_float_ids_from_a_pandas_frame(ws):
    frame = pd.DataFrame({"order_id": [1.0, 2.0], "customer_id": [17850.0, 17850.0],
                          "ordered_at": ["2024-01-01", "2024-01-02"], "amount": [1.0, 2.0]})
    report = ws.load("orders", frame, now=NOW)
    assert report.normalised == {"order_id": 2, "customer_id": 2}
    assert ws.table("orders").to_pandas().customer_id.nunique() == 1


# ------------------------------------------------------------------ 8. outputs checked first
def test_rejects_file_must_not_be_the_input(ws, tmp_path):
    path = write(tmp_path / "o.csv", HEAD + "o1;c1;2024-01-01;1\no2;c1;bad;2\n")
    before = path.read_bytes()
    with pytest.raises(RetentioError, match="would overwrite"):
        ws.load("orders", path, skip_invalid=path, now=NOW)
    with pytest.raises(RetentioError, match="would overwrite"):
        ws.load("orders", path, skip_invalid=ws.database_file, now=NOW)
    assert path.read_bytes() == before
    assert amounts(ws) == []


def test_rejects_folder_must_exist_before_anything_is_stored(ws, tmp_path):
    path = write(tmp_path / "o.csv", HEAD + "o1;c1;2024-01-01;1\no2;c1;bad;2\n")
    with pytest.raises(RetentioError, match="does not exist; nothing was stored"):
        ws.load("orders", path, skip_invalid=tmp_path / "missing" / "r.csv", now=NOW)
    assert amounts(ws) == []


# ------------------------------------------------------------------ dates
def test_day_month_ambiguous_dates_need_a_format(ws, tmp_path):
    path = write(tmp_path / "o.csv", "order_id,customer_id,ordered_at,amount\no1,c1,03/01/2024,1\no2,c1,12/25/2024,2\n")
    with pytest.raises(ValidationError) as info:
        ws.load("orders", path, now=NOW)
    assert [e.line for e in info.value.errors] == [2, 3]
    assert "date_format='%d/%m/%Y'" in info.value.errors[0].expected
    ws.load("orders", path, date_format="%m/%d/%Y", now=NOW)
    df = ws.table("orders").order_by("order_id").to_pandas()
    assert df.ordered_at.tolist() == [pd.Timestamp("2024-03-01"), pd.Timestamp("2024-12-25")]


def test_bad_date_format_is_refused(ws, tmp_path):
    with pytest.raises(RetentioError, match="not a strptime format"):
        ws.load("orders", orders(tmp_path, "1"), date_format="DD/MM/YYYY", now=NOW)


# ------------------------------------------------------------------ malformed lines and physical line numbers
def test_extra_field_names_the_line_and_the_counts(ws, tmp_path):
    path = write(tmp_path / "o.csv", "order_id,customer_id,ordered_at,amount\no1,c1,2024-01-01,1\n"
                                     "o2,c1,2024-01-02,1,50\no3,c1,2024-01-03,3\n")
    with pytest.raises(ValidationError) as info:
        ws.load("orders", path, now=NOW)
    (e,) = info.value.errors
    assert e.line == 3 and "4 fields like the header; found 5" in e.expected
    report = ws.load("orders", path, skip_invalid=tmp_path / "rej.csv", now=NOW)
    assert (report.rows_read, report.rows_stored, report.rows_rejected) == (3, 2, 1)
    rej = pd.read_csv(tmp_path / "rej.csv")
    assert rej.line.tolist() == [3] and "found 5" in rej.reasons[0] and rej.raw_line[0] == "o2,c1,2024-01-02,1,50"


def test_line_numbers_are_physical_after_multiline_fields(ws, tmp_path):
    path = write(tmp_path / "c.csv", 'customer_id,note,signup_at\nc1,"two\nlines",2024-01-01\n'
                                     'c2,"three\nlines\nhere",2024-01-02\nc3,x,not-a-date\n')
    with pytest.raises(ValidationError) as info:
        ws.load("customers", path, now=NOW)
    (e,) = info.value.errors
    assert (e.line, e.column) == (7, "signup_at")


def test_mapping_file(tmp_path, ws):
    from retentio.data.loading import read_mapping_file

    toml = write(tmp_path / "map.toml", '"Номер заказа" = "order_id"\n"Клиент" = "customer_id"\n'
                                        '"Дата" = "ordered_at"\n"Сумма, руб" = "amount"\n')
    plain = write(tmp_path / "map.txt", "# 1C export\nНомер заказа = order_id\nКлиент=customer_id\nДата = ordered_at\n"
                                        "Сумма, руб = amount\n")
    assert read_mapping_file(toml) == read_mapping_file(plain)
    path = write(tmp_path / "o.csv", "Номер заказа;Клиент;Дата;Сумма, руб\n1;c1;01.03.2024;1 234,50\n")
    report = ws.load("orders", path, mapping=read_mapping_file(toml), now=NOW)
    assert report.columns["Сумма, руб"] == "amount" and amounts(ws) == [1234.5]
