"""The HTML report: every section present, every chart rendered in a real browser with no
console errors and no network requests; screenshots for both languages."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from retentio.data.demo import generate
from retentio.faces.report import SECTIONS
from tests.conftest import demo_workspace, run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def demo_ws(tmp_path_factory):
    # more than Altair's 5,000-row limit for any chart that would carry one row per customer
    return demo_workspace(tmp_path_factory.mktemp("report") / "ws", generate(n_customers=6000, seed=9))


@pytest.fixture(scope="module")
def reports(demo_ws, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    paths = {}
    for lang in ("en", "ru"):
        path = out / f"report_{lang}.html"
        args = ["-w", str(demo_ws), "report", "--out", str(path), "--lang", lang, "--json"]
        if lang == "en":
            args += ["--png", str(out / "png")]
        code, stdout, err = run_cli(*args)
        assert code == 0, err
        paths[lang] = (path, json.loads(stdout))
    return paths


def test_report_is_one_offline_file_with_every_section(reports):
    path, result = reports["en"]
    html = path.read_text(encoding="utf-8")
    assert result["sections"] == list(SECTIONS)
    for key in SECTIONS:
        assert f'data-section="{key}"' in html
    # nothing is fetched: no external scripts, styles or images
    assert "<script src" not in html and "<link" not in html and "https://cdn" not in html
    assert result["charts"] >= 14
    assert len(result["png"]) == result["charts"] and all(Path(p).stat().st_size > 1000 for p in result["png"])


def test_russian_report_formats_numbers_by_locale(reports):
    html = reports["ru"][0].read_text(encoding="utf-8")
    assert "Отчёт по удержанию" in html and "Риск оттока" in html
    assert "₽" in html  # the workspace currency, formatted by Babel for ru_RU
    # churn reasons, their groups and the label definition are in Russian too
    assert "Уход — клиент с завершённым заказом" in html
    assert "нет заказов уже" in html and "no order for" not in html
    assert json.dumps("перерыв в заказах")[1:-1] in html  # in the reasons chart's (JSON) data


def test_russian_reasons_use_plural_forms_and_local_numbers():
    import numpy as np
    import pandas as pd

    from retentio.analytics.churn.reasons import top_reasons
    from retentio.faces.report.i18n import Fmt, reason_phrases

    frame = pd.DataFrame({"recency_days": [1.0, 22.0, 82.0, 31.0], "overdue_ratio": [np.nan, np.nan, 3.14, np.nan],
                          "tickets_unresolved": [1.0, 2.0, 5.0, 21.0],
                          "last_nps": [2.0, np.nan, np.nan, np.nan],
                          "last_nps_at": pd.to_datetime(["2026-07-27", None, None, None])})
    contrib = pd.DataFrame({"recency_days": [0.0, 0.9, 0.9, 0.9], "tickets_unresolved": [0.5, 0.5, 0.5, 0.5],
                            "last_nps": [0.7, 0.0, 0.0, 0.0]})
    reasons, groups = top_reasons(contrib, frame, with_groups=True, phrases=reason_phrases(Fmt("ru", "RUB")))
    assert reasons[0] == ["оценка NPS 2 от 27.07.2026", "1 открытое обращение в поддержку"]
    assert reasons[1] == ["нет заказов уже 22 дня", "2 открытых обращения в поддержку"]
    assert reasons[2] == ["нет заказов уже 82 дня — в 3,1 раза дольше обычного интервала",
                          "5 открытых обращений в поддержку"]
    assert reasons[3] == ["нет заказов уже 31 день", "21 открытое обращение в поддержку"]
    assert groups[2] == ["перерыв в заказах", "обращения"]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")
@pytest.mark.parametrize("lang", ["en", "ru"])
def test_report_renders_in_chromium(reports, lang, tmp_path):
    from playwright.sync_api import sync_playwright

    path, result = reports[lang]
    errors, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:", "blob:"))
                else None)
        page.goto(path.as_uri())
        page.wait_for_function(f"window.chartsRendered + window.chartsFailed.length >= {result['charts']}",
                               timeout=60_000)
        assert page.evaluate("window.chartsFailed") == []
        for key in SECTIONS:
            assert page.locator(f'section[data-section="{key}"]').count() == 1
        # every chart drew marks from data
        charts = page.locator("div[data-chart]")
        assert charts.count() == result["charts"]
        for i in range(charts.count()):
            assert charts.nth(i).locator("svg path, svg rect, svg circle, svg line").count() > 3
        # screenshots go to a temporary folder; `make screenshots` points this at docs/
        shots = Path(os.environ.get("RETENTIO_SCREENSHOTS") or tmp_path)
        page.screenshot(path=str(shots / f"report_{lang}.png"), full_page=True)
        assert (shots / f"report_{lang}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        browser.close()
    assert errors == []
    assert requests == []


def test_english_and_russian_phrasebooks_say_the_same_things():
    """Every statement and group has its Russian wording, taking the same values."""
    import inspect

    from retentio.analytics.churn.reasons import ENGLISH
    from retentio.faces.report.i18n import Fmt, reason_phrases

    russian = reason_phrases(Fmt("ru", "RUB"))
    assert set(russian.say) == set(ENGLISH.say) and set(russian.groups) == set(ENGLISH.groups)
    for key, writer in ENGLISH.say.items():
        assert len(inspect.signature(writer).parameters) == len(inspect.signature(russian.say[key]).parameters), key
