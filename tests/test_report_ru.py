"""The Russian report: every count takes the CLDR plural form of its number (through the
functions the report words its sentences with), nothing of it is left in English, and
the report of a workspace too small for some sections says so instead of failing."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from retentio import Workspace
from retentio.analytics.segments import SEGMENT_ACTIONS
from retentio.faces.report import SECTIONS
from retentio.faces.report.build import MAKERS, Unavailable, build
from retentio.faces.report.i18n import Fmt, why_unavailable
from retentio.services.report import ReportData

RU = Fmt("ru", "RUB")
EN = Fmt("en", "RUB")


# ----------------------------------------------------------------------------- plural forms
@pytest.mark.parametrize(("n", "customers", "periods", "days"), [
    (1, "1 клиент", "1 период", "1 день"),
    (2, "2 клиента", "2 периода", "2 дня"),
    (5, "5 клиентов", "5 периодов", "5 дней"),
    (11, "11 клиентов", "11 периодов", "11 дней"),
    (21, "21 клиент", "21 период", "21 день"),
    (22, "22 клиента", "22 периода", "22 дня"),
    (25, "25 клиентов", "25 периодов", "25 дней"),
])
def test_russian_counts_take_the_cldr_plural_form(n, customers, periods, days):
    assert RU.count(n, "customer") == customers
    assert RU.count(n, "period") == periods
    assert RU.count(n, "day") == days


def test_counts_are_grouped_by_locale_and_english_has_two_forms():
    assert RU.count(1021, "customer") == "1\xa0021 клиент"
    assert RU.count(2502, "customer") == "2\xa0502 клиента"
    assert (EN.count(1, "customer"), EN.count(2, "customer"), EN.count(21, "customer")) == \
        ("1 customer", "2 customers", "21 customers")


def _cohorts(k: int) -> ReportData:
    """Report facts whose average retention curve reaches ``k`` periods (without period 3
    unless ``k`` is 3, so that the takeaway states ``k``)."""
    offsets = [o for o in range(k + 1) if o != 3 or k == 3]
    frame = pd.DataFrame({"cohort": "2024-01-01", "offset": offsets, "active": 10, "cohort_size": 40,
                          "retention_pct": 25.0, "cumulative_revenue_per_customer": 5.0, "complete": True})
    curve = pd.DataFrame({"offset": offsets, "retention_pct": [100.0] + [25.0] * (len(offsets) - 1)})
    return ReportData("month", "ws", "RUB", cohorts=SimpleNamespace(frame=frame, average_curve=curve))


@pytest.mark.parametrize(("k", "phrase"), [
    (1, "через 1 период после"), (2, "через 2 периода после"), (3, "через 3 периода после"),
    (5, "через 5 периодов после"), (11, "через 11 периодов после"), (21, "через 21 период после"),
    (22, "через 22 периода после"), (25, "через 25 периодов после"),
])
def test_cohort_takeaway_counts_periods(k, phrase):
    assert phrase in MAKERS["cohorts"](_cohorts(k), RU).takeaway
    assert ("1 period after" if k == 1 else f"{k} periods after") in MAKERS["cohorts"](_cohorts(k), EN).takeaway


@pytest.mark.parametrize(("n", "phrase"), [
    (1, "Данных всего за 1 период:"), (2, "Данных всего за 2 периода:"), (5, "Данных всего за 5 периодов:"),
    (11, "Данных всего за 11 периодов:"), (21, "Данных всего за 21 период:"), (22, "Данных всего за 22 периода:"),
])
def test_short_history_counts_periods(n, phrase):
    done = pd.DataFrame({"period_start": pd.date_range("2024-01-01", periods=n, freq="MS"),
                         "crr_pct": 50.0, "churn_pct": 10.0})
    d = ReportData("month", "ws", "RUB", metrics=SimpleNamespace(complete=done))
    assert MAKERS["over_time"](d, RU).takeaway.startswith(phrase)
    assert MAKERS["over_time"](d, EN).takeaway.startswith(f"Only {n} period{'' if n == 1 else 's'} of data")


@pytest.mark.parametrize(("h", "k", "phrase"), [
    (90, 9, "горизонта в 90 дней (нужно примерно 9 горизонтов)"),
    (21, 1, "горизонта в 21 день (нужно примерно 1 горизонт)"),
    (22, 22, "горизонта в 22 дня (нужно примерно 22 горизонта)"),
])
def test_reasons_of_a_section_without_data_are_worded_in_russian(h, k, phrase):
    reason = ("no eligible customers at the calibration or test cutoff: the data are too short "
              f"for a {h}-day horizon (need about {k} horizons)")
    takeaway, note = why_unavailable(RU, reason)
    assert phrase in takeaway and takeaway.startswith("Раздел не построен") and note == ""
    # an unknown reason: a plain Russian statement, the analytics' message kept as the detail
    takeaway, note = why_unavailable(RU, "something new went wrong")
    assert takeaway == RU.t["na_section"] and "something new went wrong" in note


# ----------------------------------------------------------------------------- small workspaces
class _Text(HTMLParser):
    """The text a reader sees (no scripts, no styles)."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skip = False

    def handle_starttag(self, tag, attrs):
        self._skip = tag in ("script", "style")
        self.parts.append("\n## " if tag == "h2" else "\n")

    def handle_endtag(self, tag):
        self._skip = False

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def visible(path: Path) -> str:
    p = _Text()
    p.feed(path.read_text(encoding="utf-8"))
    return re.sub(r"\s*\n\s*", "\n", "".join(p.parts))


def section(text: str, key: str, lang: str = "ru") -> str:
    """The visible text of one section (from its heading to the next one's)."""
    i = SECTIONS.index(key) + 1
    start = text.index(f"\n## {i}. {Fmt(lang, 'RUB').t[f's{i}']}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def _workspace(path: Path, rows) -> Workspace:
    ws = Workspace.init(path, timezone="Europe/Moscow", currency="RUB")
    ws.load("orders", pd.DataFrame(rows, columns=["order_id", "customer_id", "ordered_at", "amount"]))
    return ws


ONE_DAY = [(f"o{i}", f"c{i % 4}", "2025-03-10", 10.0 + i) for i in range(8)]
ONE_CUSTOMER = [(f"o{i}", "c1", d, 20.0) for i, d in
                enumerate(["2024-01-05", "2024-03-10", "2024-06-01", "2024-09-15", "2025-01-20"])]
THREE_ORDERS = [("o1", "a", "2025-01-10", 10.0), ("o2", "b", "2025-02-11", 15.0), ("o3", "a", "2025-03-15", 12.0)]
#: a dozen customers over five months: enough for cohorts, the funnel and RFM segments
SMALL = [(f"{c}-{i}", c, (pd.Timestamp("2025-01-03") + pd.Timedelta(days=11 * n + 23 * i)).date().isoformat(),
          10.0 + 3 * n + i) for n, c in enumerate(f"c{j:02d}" for j in range(12)) for i in range(1 + n % 4)]


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Russian and English reports of the small workspaces, and their visible text."""
    out = {}
    for name, rows in (("one_day", ONE_DAY), ("one_customer", ONE_CUSTOMER), ("three_orders", THREE_ORDERS),
                       ("small", SMALL)):
        folder = tmp_path_factory.mktemp(name)
        ws = _workspace(folder / "ws", rows)
        try:
            for lang in ("ru", "en"):
                result = build(ws, folder / f"{lang}.html", lang=lang)
                assert result["sections"] == list(SECTIONS)
                out[name, lang] = visible(folder / f"{lang}.html")
        finally:
            ws.close()
    return out


def test_orders_all_on_one_day_give_a_report_that_says_what_is_missing(reports):
    ru, en = reports["one_day", "ru"], reports["one_day", "en"]
    assert "нет ни одного завершённого периода (месяц)" in section(ru, "kpis")
    assert "нет ни одного завершённого периода" in section(ru, "over_time")
    assert "ни одна когорта ещё не наблюдалась целый месяц" in section(ru, "cohorts")
    assert "Между шагами «1-й заказ» и «2-й заказ» клиенты не теряются." in section(ru, "lifecycle")
    # customers who all bought on the last day are not "lost"; the report says how they were scored
    assert "потерянные" not in ru and "\nlost\n" not in section(en, "segments", "en")
    assert "Клиентов всего 4" in section(ru, "segments") and "до 15 дней" in section(ru, "segments")
    assert "Раздел не построен" in section(ru, "clv") and "Раздел не построен" in section(ru, "churn")
    assert "the data hold no complete month" in section(en, "kpis", "en")
    assert "no cohort has been observed for a whole month" in section(en, "cohorts", "en")
    assert "No customer is lost between order 1 and order 2." in section(en, "lifecycle", "en")
    assert "None" not in en and "nan" not in en.lower().split()


def test_a_single_customer_and_three_orders_never_mislead(reports):
    for name in ("one_customer", "three_orders"):
        ru, en = reports[name, "ru"], reports[name, "en"]
        # the funnel names no drop where nobody was lost (it once said "between order 5 and order 1: 0 customers")
        assert ": 0 клиентов" not in ru and ": 0 customers" not in en
        assert "по фиксированным порогам" in section(ru, "segments") and "Раздел не построен" in section(ru, "clv")
    assert "Между шагами «1-й заказ» и «5-й заказ» клиенты не теряются." in reports["one_customer", "ru"]
    assert "Клиентов всего 1," in reports["one_customer", "ru"] and "(1 клиент)" in reports["one_customer", "ru"]
    assert "между шагами «1-й заказ» и «2-й заказ»: 1 клиент (" in reports["three_orders", "ru"]
    assert "between order 1 and order 2: 1 customer (" in reports["three_orders", "en"]
    assert "Данных всего за 2 периода:" in reports["three_orders", "ru"]
    assert "через 1 период после первой покупки" in reports["three_orders", "ru"]


def test_russian_report_has_no_english_actions_and_right_plurals(reports):
    ru, en = reports["small", "ru"], reports["small", "en"]
    segments = section(ru, "segments")
    assert "Что делать" in segments and "Сегмент" in segments
    assert any(english in en for english in SEGMENT_ACTIONS.values())  # the sentences the English report has
    for english in SEGMENT_ACTIONS.values():
        assert english not in ru
    for name in SEGMENT_ACTIONS:  # segment names too
        assert f"\n{name}\n" not in segments
    assert any(f"\n{RU.segment_action(name, '')}\n" in segments for name in SEGMENT_ACTIONS)
    # every "N клиент…" in the report takes the form of its number
    for number, noun in re.findall(r"(\d+) (клиент\w*)", ru):
        assert noun == RU.noun(int(number), "customer"), f"{number} {noun}"
    for number, noun in re.findall(r"(\d+) (период\w*)", ru):
        assert noun == RU.noun(int(number), "period"), f"{number} {noun}"
    # no English word of the report's own (identifiers, acronyms and the data's names aside)
    allowed = {"RFM", "CLV", "CRR", "NPS", "MRR", "LTV", "CAC", "ROI", "ROMI", "ROC", "AUC", "CSAT", "CUPED", "RUB",
               "BG", "NBD", "Gamma", "Europe", "Moscow", "duckdb", "retentio", "ibis", "lightgbm", "altair",
               "alive", "loyalty", "program", "add", "apply", "orders", "load", "FILE", "LightGBM",
               "feedback", "tasks", "sync"}
    # (the sections only: the header names the workspace's folder; an analytics message the
    # report cannot word yet is shown as a marked detail, by design)
    body = ru[ru.index("\n## 1. "):]
    body = re.sub(re.escape(RU.t["na_details"].split("{")[0]) + ".*", "", body)
    leftovers = set(re.findall(r"\b[A-Za-z]{3,}\b", body)) - allowed
    assert not leftovers, leftovers


def test_a_section_without_data_is_never_an_internal_error():
    """Every maker turns missing facts into :class:`Unavailable`, not an exception."""
    empty = ReportData("month", "ws", "RUB")
    for key, make in MAKERS.items():
        with pytest.raises(Unavailable):
            make(empty, RU)
        assert key in SECTIONS
