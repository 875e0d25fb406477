"""The files people really have: Excel workbooks and Windows-encoded CSVs load to the same
rows as a plain UTF-8 CSV, and what cannot be read is refused with the reason."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from retentio import RetentioError, ValidationError
from tests.conftest import run_cli, write

NOW = dt.datetime(2025, 1, 1, 12, tzinfo=dt.timezone.utc)
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
    with pytest.raises(RetentioError, match=r"line 1: .*cannot be decoded as utf-8.*--encoding"):
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
