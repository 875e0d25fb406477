"""The files people really have: Excel workbooks and Windows-encoded CSVs load to the same
rows as a plain UTF-8 CSV, and what cannot be read is refused with the reason."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from retentio import RetentioError, ValidationError
from tests.conftest import database_held, run_cli, write

NOW = dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC)
MAPPING = {"Номер заказа": "order_id", "Клиент": "customer_id", "Дата заказа": "ordered_at", "Сумма": "amount",
           "Статус": "status"}
ROWS = [  # order, customer, date, amount, status
    ("A-1", 17850, dt.date(2024, 3, 1), 1234.5, "completed"),
    ("A-2", 17850, dt.date(2024, 3, 2), 12.0, "completed"),
    ("A-3", 13047, dt.date(2024, 3, 5), 99.9, "returned"),
    ("A-4", 13047, dt.date(2024, 4, 1), 0.5, "completed"),
    ("A-5", 12583, dt.date(2024, 4, 2), 250.0, "completed"),
    ("A-6", 12583, dt.date(2024, 5, 9), 3.25, "completed"),
]


def workbook(path: Path, bad_row_7: bool) -> Path:
    """An export as a marketer would make it: a title row, Russian headers on row 2, real
    Excel dates and numbers, customer ids as numbers; data rows are sheet rows 3..8."""
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Заказы")
    dates = book.add_format({"num_format": "dd.mm.yyyy"})
    sheet.write_row(0, 0, ["Выгрузка из 1С"])
    sheet.write_row(1, 0, list(MAPPING))
    for i, (order, customer, day, amount, status) in enumerate(ROWS):
        r = 2 + i
        sheet.write_string(r, 0, order)
        sheet.write_number(r, 1, customer)
        if bad_row_7 and r == 6:  # sheet row 7 (0-based 6): a date that does not exist
            sheet.write_string(r, 2, "31.02.2024")
        else:
            sheet.write_datetime(r, 2, dt.datetime.combine(day, dt.time()), dates)
        sheet.write_number(r, 3, amount)
        sheet.write_string(r, 4, status)
    book.add_worksheet("Пусто")
    book.close()
    return path


def csv_twin(path: Path, *, encoding: str = "utf-8", sep: str = ",", decimal: str = ".") -> Path:
    lines = [sep.join(MAPPING)]
    for order, customer, day, amount, status in ROWS:
        a = f"{amount:.2f}".replace(".", decimal)
        lines.append(sep.join([order, str(customer), day.strftime("%d.%m.%Y"), a, status]))
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def stored(ws) -> list[tuple]:
    df = ws.table("orders").order_by("order_id").to_pandas()
    return list(zip(df.order_id, df.customer_id, df.ordered_at, df.amount.astype(float), df.status))


def test_excel_with_a_bad_cell_names_sheet_row_column_value(ws, tmp_path):
    path = workbook(tmp_path / "orders.xlsx", bad_row_7=True)
    with pytest.raises(ValidationError) as info:
        ws.load("orders", path, mapping=MAPPING, now=NOW)
    (e,) = info.value.errors
    assert (e.line, e.unit, e.column, e.value) == (7, "row", "ordered_at", "31.02.2024")
    assert "sheet Заказы" in e.source and "row 7" in str(info.value)
    assert ws.table("orders").count().execute() == 0


def test_fixed_excel_loads_the_same_rows_as_its_csv_twin(ws, tmp_path):
    from retentio import Workspace

    report = ws.load("orders", workbook(tmp_path / "orders.xlsx", bad_row_7=False), mapping=MAPPING, now=NOW)
    assert (report.rows_stored, report.sheet, report.format) == (6, "Заказы", "excel")
    with Workspace.init(tmp_path / "twin", timezone="Europe/Moscow", currency="RUB") as twin:
        twin.load("orders", csv_twin(tmp_path / "orders.csv"), mapping=MAPPING, now=NOW)
        assert stored(ws) == stored(twin)
    assert stored(ws)[0] == ("A-1", "17850", pd.Timestamp("2024-03-01"), 1234.5, "completed")


def test_excel_sheet_by_name_and_unknown_sheet(ws, tmp_path):
    path = workbook(tmp_path / "orders.xlsx", bad_row_7=False)
    with pytest.raises(RetentioError, match="Заказы"):
        ws.load("orders", path, mapping=MAPPING, sheet="Orders", now=NOW)
    with pytest.raises(RetentioError):
        ws.load("orders", path, mapping=MAPPING, sheet="Пусто", now=NOW)
    assert ws.load("orders", path, mapping=MAPPING, sheet="Заказы", now=NOW).rows_stored == 6


def test_cp1251_semicolons_and_decimal_commas_load_to_the_same_numbers(ws, tmp_path):
    from retentio import Workspace

    path = csv_twin(tmp_path / "orders_1c.csv", encoding="cp1251", sep=";", decimal=",")
    report = ws.load("orders", path, mapping=MAPPING, now=NOW)
    assert (report.encoding, report.delimiter, report.decimal) == ("cp1251", ";", ",")
    with Workspace.init(tmp_path / "twin", timezone="Europe/Moscow", currency="RUB") as twin:
        twin.load("orders", csv_twin(tmp_path / "orders.csv"), mapping=MAPPING, now=NOW)
        assert stored(ws) == stored(twin)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_bom_and_utf16_exports(ws, tmp_path, encoding):
    path = csv_twin(tmp_path / "o.csv", encoding=encoding, sep="\t" if encoding == "utf-16" else ",")
    report = ws.load("orders", path, mapping=MAPPING, now=NOW)
    assert report.rows_stored == 6 and report.encoding == encoding
    assert stored(ws)[0][0] == "A-1"


def test_forced_wrong_encoding_names_the_line(ws, tmp_path):
    path = csv_twin(tmp_path / "o.csv", encoding="cp1251", sep=";", decimal=",")
    with pytest.raises(RetentioError, match=r"line 1: .*cannot be decoded as utf-8.*encoding='cp1251'"):
        ws.load("orders", path, mapping=MAPPING, encoding="utf-8", now=NOW)


def test_an_excel_file_named_csv_and_a_binary_file(ws, tmp_path):
    xlsx = workbook(tmp_path / "orders.xlsx", bad_row_7=False)
    renamed = tmp_path / "orders.csv"
    renamed.write_bytes(xlsx.read_bytes())
    with pytest.raises(RetentioError, match="Excel workbook"):
        ws.load("orders", renamed, mapping=MAPPING, now=NOW)
    binary = tmp_path / "data.csv"
    binary.write_bytes(b"order_id,amount\n\x00\x01\x02\x00" * 10)
    with pytest.raises(RetentioError, match="not a text file"):
        ws.load("orders", binary, now=NOW)


def test_cli_load_excel_with_map_file_prints_a_summary(tmp_path):
    from retentio import Workspace

    Workspace.init(tmp_path / "w", currency="RUB").close()
    maps = write(tmp_path / "map.txt", "\n".join(f"{k} = {v}" for k, v in MAPPING.items()) + "\n")
    code, out, err = run_cli("-w", str(tmp_path / "w"), "load", "orders",
                             str(workbook(tmp_path / "o.xlsx", bad_row_7=False)), "--map-file", str(maps))
    assert code == 0, err
    assert "rows stored" in out and "6" in out and "sheet Заказы" in out
    code, out, err = run_cli("-w", str(tmp_path / "w"), "load", "orders",
                             str(workbook(tmp_path / "o2.xlsx", bad_row_7=True)), "--map-file", str(maps), "--json")
    assert code == 2
    assert "row 7" in err and "ordered_at" in err


# ---------------------------------------------------------------------- found in review: each stored or lost data silently


def test_western_european_cp1252_is_not_read_as_cyrillic(ws, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_bytes("customer_id,city,company\nc1,München,Société Générale\nc2,São Paulo,Façade\n"
                     "c3,Zürich,Crédit\n".encode("cp1252"))
    report = ws.load("customers", path, now=NOW)
    assert report.encoding == "cp1252"
    df = ws.table("customers").order_by("customer_id").to_pandas()
    assert list(df.city) == ["München", "São Paulo", "Zürich"] and df.company[0] == "Société Générale"


def test_utf8_with_one_broken_byte_is_refused_naming_its_line(ws, tmp_path):
    lines = ["customer_id,city,name"] + [f"c{i},München,José Müller {i}" for i in range(50)]
    data = "\n".join(lines).encode().replace(b"c5,", b"c5,\x81", 1)  # the line of c5 is line 7
    path = tmp_path / "customers.csv"
    path.write_bytes(data)
    with pytest.raises(RetentioError, match=r"line 7: the bytes 81 cannot be decoded as utf-8"):
        ws.load("customers", path, now=NOW)
    assert ws.table("customers").count().execute() == 0


def test_excel_number_cells_beside_comma_text_cells_keep_their_value(ws, tmp_path):
    import xlsxwriter

    path = tmp_path / "mixed.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ["order_id", "customer_id", "ordered_at", "amount"])
    sheet.write_row(1, 0, ["o1", "c1", "2024-01-01"])
    sheet.write_number(1, 3, 2.125)           # a number cell: 2.125, whatever the text cells say
    sheet.write_row(2, 0, ["o2", "c1", "2024-01-02", "99,90"])  # a text cell with a decimal comma
    book.close()
    report = ws.load("orders", path, now=NOW)
    assert report.decimal == ","
    amounts = ws.table("orders").order_by("order_id").to_pandas().amount.astype(float).tolist()
    assert amounts == [2.125, 99.9]


def test_each_sheet_of_a_workbook_is_its_own_content(ws, tmp_path):
    import xlsxwriter

    path = tmp_path / "months.xlsx"
    book = xlsxwriter.Workbook(str(path))
    for name, order in (("Jan", "o1"), ("Feb", "o2")):
        sheet = book.add_worksheet(name)
        sheet.write_row(0, 0, ["order_id", "customer_id", "ordered_at", "amount"])
        sheet.write_row(1, 0, [order, "c1", "2024-01-01", "5"])
    book.close()
    assert ws.load("orders", path, sheet="Jan", now=NOW).rows_stored == 1
    assert ws.load("orders", path, sheet="Feb", now=NOW).rows_stored == 1
    with pytest.raises(RetentioError, match="same content"):
        ws.load("orders", path, sheet="Feb", now=NOW)


def test_a_stray_quote_near_the_top_is_a_line_error_not_an_unreadable_file(ws, tmp_path):
    path = write(tmp_path / "o.csv", 'order_id,customer_id,ordered_at,amount\no1,c1,2024-01-01,4\n'
                                     'o2,c1,2024-01-01,"5"x\no3,c1,2024-01-02,6\n')
    with pytest.raises(ValidationError) as info:
        ws.load("orders", path, now=NOW)
    (e,) = info.value.errors
    assert e.line == 3 and "stray quote" in e.expected
    report = ws.load("orders", path, skip_invalid=tmp_path / "rejects.csv", now=NOW)
    assert (report.rows_read, report.rows_stored, report.rows_rejected) == (3, 2, 1)


def test_a_short_line_is_one_error_with_its_true_field_count(ws, tmp_path):
    path = write(tmp_path / "o.csv", "order_id,customer_id,ordered_at,amount\no1,c1,2024-01-01,1\no2,c1\n"
                                     "o3,c1,2024-01-01,3\no4,c1,2024-01-01,4,x,y\n")
    with pytest.raises(ValidationError) as info:
        ws.load("orders", path, now=NOW)
    assert [(e.line, e.expected.split(";")[1].strip()[:7]) for e in info.value.errors] == [(3, "found 2"),
                                                                                          (5, "found 6")]
    report = ws.load("orders", path, skip_invalid=tmp_path / "rejects.csv", now=NOW)
    assert (report.rows_read, report.rows_stored, report.rows_rejected) == (4, 2, 2)
    assert len((tmp_path / "rejects.csv").read_text().strip().splitlines()) == 3  # header + 2 lines


def test_a_loosely_written_canonical_column_is_that_column(ws, tmp_path):
    path = write(tmp_path / "c.csv", "Customer.ID,City:\nc1,Moscow\n")
    report = ws.load("customers", path, now=NOW)
    assert report.rows_stored == 1 and not report.attributes_added
    assert ws.table("customers").to_pandas().city.tolist() == ["Moscow"]


def test_a_cp1251_mapping_file_is_read(tmp_path):
    from retentio.data.loading import read_mapping_file

    path = tmp_path / "map.txt"
    path.write_bytes("Номер заказа = order_id\nСумма = amount\n".encode("cp1251"))
    assert read_mapping_file(path) == {"Номер заказа": "order_id", "Сумма": "amount"}


@pytest.mark.parametrize("given", ["\\t", "tab", "\t"])
def test_a_tab_delimiter_as_typed_in_a_shell(ws, tmp_path, given):
    path = write(tmp_path / "o.tsv", "order_id\tcustomer_id\tordered_at\tamount\no1\tc1\t2024-01-01\t4\n\n"
                                     "o2\tc1\t2024-01-02\t5\n")
    report = ws.load("orders", path, delimiter=given, now=NOW)
    assert (report.rows_stored, report.delimiter) == (2, "\t")


def test_a_delimiter_of_several_characters_is_refused(ws, tmp_path):
    with pytest.raises(RetentioError, match="one character"):
        ws.load("orders", write(tmp_path / "o.csv", "a\n1\n"), delimiter=";;", now=NOW)


def test_money_beyond_four_decimals_is_rounded_and_said_and_items_must_be_whole(ws, tmp_path):
    path = write(tmp_path / "o.csv", "order_id,customer_id,ordered_at,amount,items\no1,c1,2024-01-01,12.34567,2\n"
                                     "o2,c1,2024-01-02,5.5,2.0000001\n")
    with pytest.raises(ValidationError) as info:
        ws.load("orders", path, now=NOW)
    assert [(e.line, e.column) for e in info.value.errors] == [(3, "items")]
    path = write(tmp_path / "o2.csv", "order_id,customer_id,ordered_at,amount\no1,c1,2024-01-01,12.34567\n")
    report = ws.load("orders", path, now=NOW)
    assert report.normalised == {"amount (rounded)": 1} and any("rounded" in w for w in report.warnings)


def test_a_refused_init_never_deletes_a_database_that_was_there(tmp_path):
    from retentio import Workspace

    with Workspace.init(tmp_path / "w", currency="RUB") as w:
        w.load("orders", write(tmp_path / "o.csv", "order_id,customer_id,ordered_at,amount\no1,c1,2024-01-01,4\n"),
               now=NOW)
    (tmp_path / "w" / "retentio.toml").unlink()  # the settings lost, the data still there
    with database_held(tmp_path / "w" / "retentio.duckdb"), pytest.raises(RetentioError, match="busy"):
        Workspace.init(tmp_path / "w", currency="RUB")
    assert (tmp_path / "w" / "retentio.duckdb").exists()
