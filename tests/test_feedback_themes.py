"""Themes of comments and exit reasons: the planted themes of the demo recovered (purity
and adjusted Rand index per language), the lowest-NPS theme a churn driver, bad input
(empty, emoji-only, mixed languages, 10,000 characters, HTML), determinism, the commands
and the report's feedback section (with a ``<script>`` comment shown as text)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from retentio import Workspace
from retentio.analytics.exit_reasons import exit_reasons, exits, reason_totals
from retentio.analytics.text import ThemeParams, detect_language, detect_languages, find_themes
from retentio.analytics.text.tokens import MAX_CHARS, Analyzer, clean
from retentio.data.demo import CHURN_DRIVERS, COMMENT_THEMES
from tests.conftest import run_cli


def _comments(data) -> pd.DataFrame:
    s = data.surveys
    return pd.DataFrame({"text": s.comment, "kind": s.kind, "score": s.score, "at": s.answered_at})


@pytest.fixture(scope="module")
def demo_themes(demo_data):
    return find_themes(_comments(demo_data))


# ----------------------------------------------------------------------------- language and words
def test_language_by_share_of_cyrillic_letters():
    assert detect_language("Доставка опять опоздала") == "ru"
    assert detect_language("Delivery was late again") == "en"
    assert detect_language("доставка ok") == "ru"  # 8 Cyrillic letters against 2 Latin
    assert detect_language("the app is ok, но дорого") == "en"  # 11 Latin against 8 Cyrillic
    for nothing in ("", "   ", "😀😀👍", "12345 !!!", None, float("nan")):
        assert detect_language(nothing) == "und"
    s = pd.Series(["Цены", "Prices", None, "🙂", "Цены"], index=[5, 6, 7, 8, 9])
    assert detect_languages(s).to_dict() == {5: "ru", 6: "en", 7: "und", 8: "und", 9: "ru"}


def test_words_are_stemmed_per_alphabet_without_stop_words_and_html():
    a = Analyzer()
    words, stems, polarity = a.analyse("Доставка опять опоздала, и доставку ждали долго")
    assert stems.count("доставк") == 2 and "опять" not in words and "и" not in words
    words, stems, _ = a.analyse("Deliveries were delayed; the delivery was delayed again")
    assert stems.count("deliveri") == 2 and stems.count("delay") == 2 and "the" not in words
    # mixed: each word by the stemmer of its own alphabet
    _, stems, _ = a.analyse("доставка ok, but deliveries slow")
    assert "доставк" in stems and "deliveri" in stems
    words, _, _ = a.analyse("<b>Great</b> &amp; <script>alert('x')</script> https://example.com/x")
    assert words == ["great", "alert"]  # tags, entities and links are not words
    assert a.analyse("not good")[2] == -1.0 and a.analyse("good")[2] == 1.0
    assert a.analyse("не быстро")[2] == -1.0 and a.analyse("быстро")[2] == 1.0
    assert a.analyse("😀😀😀") == ([], [], 0.0)
    assert len(clean("слово " * 3000)) == MAX_CHARS


def test_stems_are_cached_per_distinct_token():
    a = Analyzer()
    for _ in range(1000):
        a.analyse("Delivery was late again, доставка опоздала")
    assert a.distinct_tokens == 6  # delivery, was, late, again, доставка, опоздала


# ----------------------------------------------------------------------------- the demo's planted themes
def test_demo_comments_are_planted_in_both_languages(demo_data):
    truth = demo_data.comment_truth
    assert set(truth.theme) == set(COMMENT_THEMES) and set(truth.language) == {"ru", "en"}
    commented = demo_data.surveys.comment.notna()
    assert commented.sum() == len(truth) and commented.iloc[truth.survey_row].all()
    assert (detect_languages(demo_data.surveys.comment.iloc[truth.survey_row]).to_numpy()
            == truth.language.to_numpy()).all()
    # the churn drivers are more frequent among customers about to leave
    share = truth.groupby("leaving").churn_driver.mean()
    assert share[True] > 2 * share[False]


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_themes_recover_the_planted_themes(demo_data, demo_themes, lang):
    truth = demo_data.comment_truth
    predicted = demo_themes.comments.theme.to_numpy()[truth.survey_row]
    m = (truth.language == lang).to_numpy()
    assert pd.notna(predicted[m]).all()  # every planted comment has words and a theme
    table = pd.crosstab(predicted[m].astype(int), truth.theme[m].to_numpy())
    purity = table.max(axis=1).sum() / m.sum()
    ari = adjusted_rand_score(truth.theme[m], predicted[m].astype(int))
    assert purity >= 0.8 and ari >= 0.8, (purity, ari, table)
    assert (demo_themes.themes.language == lang).sum() == 6


def test_theme_with_the_lowest_nps_is_a_churn_driver(demo_data, demo_themes):
    truth = demo_data.comment_truth
    themes = demo_themes.themes
    worst = themes.sort_values("nps").iloc[0]
    predicted = demo_themes.comments.theme.to_numpy()[truth.survey_row]
    planted = truth.theme[predicted == worst.theme].value_counts().index[0]
    assert planted in CHURN_DRIVERS, (worst.label, planted)
    # and the praise themes are positive, the complaints negative
    praise = themes.sort_values("nps").groupby("language").tail(1)
    assert (praise.sentiment == "positive").all()
    assert (themes.sort_values("nps").groupby("language").head(3).sentiment == "negative").all()


def test_theme_rows_carry_label_counts_trend_and_three_quotes(demo_themes):
    t = demo_themes.themes
    assert list(t.theme) == list(range(1, len(t) + 1))
    assert (t["count"] > 0).all() and ((t.share > 0) & (t.share <= 1)).all()
    assert t.label.str.len().gt(0).all() and t.words.map(len).between(1, 3).all()
    assert t.examples.map(len).eq(3).all() and t.examples.map(lambda e: len(set(e)) == 3).all()
    assert t.score_mean.between(0, 10).all() and t.nps.between(-100, 100).all()
    assert set(t.sentiment) <= {"negative", "neutral", "positive"} and set(t.trend) <= {"rising", "falling", "steady"}
    trend = demo_themes.trend
    assert set(trend.theme) == set(t.theme) and trend.groupby("theme").comments.sum().to_dict() == \
        dict(zip(t.theme, t["count"]))
    # a comment may have several themes; its primary one is among them
    c = demo_themes.comments
    has = c.theme.notna()
    assert all(int(p) in ts for p, ts in zip(c.theme[has], c.themes[has]))
    assert c.themes.map(len).max() >= 2


def test_themes_are_deterministic(demo_data, demo_themes):
    again = find_themes(_comments(demo_data))
    pd.testing.assert_frame_equal(again.themes, demo_themes.themes)
    pd.testing.assert_frame_equal(again.comments, demo_themes.comments)


# ----------------------------------------------------------------------------- bad input
def test_bad_input_never_breaks_the_themes(demo_data):
    base = _comments(demo_data).dropna(subset=["text"]).head(300)
    bad = pd.DataFrame({"text": ["", "   ", None, "😀😀😀", "👍", "!!!", "<script>alert('x')</script>",
                                 "Доставка " * 2000, "The app crashes, а доставка опоздала",
                                 "<p>Delivery was <b>late</b> again &amp; again</p>"],
                        "kind": "nps", "score": 5.0, "at": pd.Timestamp("2026-01-05")})
    found = find_themes(pd.concat([base, bad], ignore_index=True))
    assert found.n_comments == 310 and len(found.comments) == 310
    assert found.n_without_words == 6 + int(base.text.str.strip().eq("").sum())
    c = found.comments.tail(10)
    assert c.theme.iloc[:6].isna().all() and (c.language.iloc[:6] == "und").all()
    assert c.language.iloc[7] == "ru" and c.language.iloc[9] == "en"
    assert c.theme.iloc[[7, 8, 9]].notna().all()
    assert all(len(q) <= 200 for e in found.themes.examples for q in e)  # a 10,000-character paste is cut


def test_empty_and_thin_input():
    empty = find_themes(pd.DataFrame({"text": []}))
    assert empty.n_comments == 0 and empty.themes.empty and empty.comments.empty
    emoji = find_themes(pd.DataFrame({"text": ["😀", "", None, "🙂🙂"]}))
    assert emoji.themes.empty and emoji.n_without_words == 4 and set(emoji.notes) == {"ru", "en"}
    few = find_themes(pd.DataFrame({"text": ["Delivery late", "Delivery slow", "Price high"]}))
    assert few.themes.empty and "themes need at least" in few.notes["en"]
    # one theme per 10 comments at most
    some = find_themes(pd.DataFrame({"text": ["Delivery late again"] * 12 + ["Prices too high"] * 12}),
                       ThemeParams(themes=6))
    assert len(some.themes) == 2 and some.themes["count"].tolist() == [12, 12]


@pytest.mark.parametrize("texts", [
    ["Delivery was late again"] * 30,                                               # one distinct text
    ["Delivery was late again"] * 15 + ["Prices are too high"] * 15,               # two
    [r for r in ("too expensive", "payment failed", "switched to competitor", "not using it", "moved away")
     for _ in range(20)],                                                           # cancel-reason codes
    ["Отличный магазин, спасибо"] * 40 + ["Доставка долгая"] * 5,
])
def test_few_distinct_texts_give_at_most_one_theme_each(texts):
    """Many comments but few distinct texts (category codes, stock answers): NMF's start
    needs no more themes than distinct texts — this once raised ValueError."""
    found = find_themes(pd.DataFrame({"text": texts}))
    # here every distinct text is its own theme, with all its comments
    assert sorted(found.themes["count"].tolist()) == sorted(pd.Series(texts).value_counts().tolist())


# ----------------------------------------------------------------------------- exit reasons
def test_exit_reasons_keep_involuntary_churn_apart():
    subs = pd.DataFrame({
        "customer_id": ["a", "b", "c", "d", "e", "f", "g"],
        "ended_at": pd.to_datetime(["2026-01-10", "2026-01-20", "2026-02-03", "2026-02-04", None, "2026-02-10",
                                    "2026-02-11"]),
        "plan": ["basic", "premium", "basic", "basic", "basic", "basic", "basic"],
        "cancel_reason": ["too_expensive", "payment_failed", "card declined", None, None, None, "trial_not_converted"],
        "churn_type": ["voluntary", "involuntary", None, None, None, "voluntary", "voluntary"],
        "is_trial": [False, False, False, False, False, False, True],
    })
    answers = pd.DataFrame({"customer_id": ["a"], "answered_at": pd.to_datetime(["2026-01-11"]),
                            "reason": ["Too expensive for me"]})
    rows = exits(subs, answers)
    # d ended without reason or type: a plan change; e still runs; g a trial (not counted by default);
    # a's answer explains a cancellation that has its reason already: not a second exit
    assert sorted(rows.customer_id) == ["a", "b", "c", "f"]
    assert rows.set_index(["customer_id", "source"]).churn_type.to_dict() == {
        ("a", "cancel_reason"): "voluntary", ("b", "cancel_reason"): "involuntary",
        ("c", "cancel_reason"): "involuntary", ("f", "cancel_reason"): "voluntary"}
    assert len(exits(subs, include_trials=True)) == 5
    per = exit_reasons(rows, "month", by="plan")
    jan = per[per.period_start == pd.Timestamp("2026-01-01")]
    assert jan.set_index(["churn_type", "plan", "reason"]).exits.to_dict() == {
        ("involuntary", "premium", "payment_failed"): 1, ("voluntary", "basic", "too_expensive"): 1}
    assert (per.groupby(["period_start", "churn_type", "plan"]).share.sum().round(6) == 100).all()
    totals = reason_totals(rows)
    assert totals[totals.churn_type == "involuntary"].exits.sum() == 2


def test_an_exit_survey_answer_is_one_exit_with_its_cancellation():
    subs = pd.DataFrame({
        "subscription_id": ["S1", "S2", "S3", "S4"],
        "customer_id": ["a", "f", "h", "k"],
        "ended_at": pd.to_datetime(["2026-01-10", "2026-02-10", "2026-01-31", "2026-03-05"]),
        "plan": ["basic", "basic", "pro", "basic"],
        "cancel_reason": ["too_expensive", None, None, None],
        "churn_type": ["voluntary", "voluntary", "voluntary", "other"],
    })
    answers = pd.DataFrame({
        "customer_id": ["a", "f", "f", "h", "k", "z", "a"],
        # h answers in February about S3 (ended 31 January): the subscription names the match
        "subscription_id": [None, None, None, "S3", None, None, None],
        "answered_at": pd.to_datetime(["2026-01-11", "2026-02-11", "2026-02-20", "2026-02-02", "2026-03-06",
                                       "2026-03-01", "2026-04-02"]),
        "reason": ["Too expensive for me", "Delivery was late", "And slow", "Moved abroad", "  ", "No time", None],
    })
    rows = exits(subs, answers)
    # a: has its reason, the January answer adds nothing; the April answer finds no April cancellation
    #    of a: one exit of its own (no text: no reason given) → 2 exits of a
    # f: no cancel reason: the first answer is its reason, the second adds nothing → 1 exit
    # h: no reason, matched by subscription across the month's end → 1 exit, "Moved abroad"
    # k: an empty answer gives no reason: the cancellation stays without one (its type "other": unknown)
    # z: no cancellation at all → 1 exit of its own
    got = sorted(zip(rows.customer_id, rows.reason, rows.source, rows.churn_type, rows.ended_at.dt.strftime("%m-%d")))
    assert got == [
        ("a", "(no reason given)", "exit_survey", "voluntary", "04-02"),
        ("a", "too_expensive", "cancel_reason", "voluntary", "01-10"),
        ("f", "Delivery was late", "exit_survey", "voluntary", "02-10"),
        ("h", "Moved abroad", "exit_survey", "voluntary", "01-31"),
        ("k", "(no reason given)", "cancel_reason", "unknown", "03-05"),
        ("z", "No time", "exit_survey", "voluntary", "03-01")]
    assert len(rows) == 6  # 4 cancellations + 2 answers without one (not 4 + 7)
    # without subscription ids, h's February answer is in another month than the January end: its own exit
    alone = exits(subs.drop(columns="subscription_id"), answers.drop(columns="subscription_id"))
    assert len(alone) == 7 and (alone[alone.customer_id == "h"].reason.tolist() == ["(no reason given)", "Moved abroad"])
    # by quarter both are in Q1: one exit again, and a's April answer still its own (Q2)
    q = exits(subs.drop(columns="subscription_id"), answers.drop(columns="subscription_id"), period="quarter")
    assert len(q) == 6 and q[q.customer_id == "h"].reason.tolist() == ["Moved abroad"]
    per = exit_reasons(rows, "month")
    assert per[per.churn_type == "voluntary"].exits.sum() == 5 and per.exits.sum() == 6


# ----------------------------------------------------------------------------- commands and report
def test_themes_command(demo_ws_path):
    code, out, err = run_cli("feedback", "themes", "-w", str(demo_ws_path), "--kind", "nps", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["kind"] == "nps" and data["sources"] == {"nps": data["comments"]}
    assert {t["language"] for t in data["themes"]} == {"ru", "en"}
    assert all(len(t["examples"]) == 3 for t in data["themes"])
    code, out, err = run_cli("feedback", "themes", "-w", str(demo_ws_path), "--kind", "exit", "--themes", "3")
    assert code == 0, err
    assert "Themes of" in out
    code, out, err = run_cli("feedback", "themes", "-w", str(demo_ws_path), "--kind", "exit", "--json")
    assert code == 0, err
    assert any("expensive" in t["label"] for t in json.loads(out)["themes"])
    code, out, err = run_cli("feedback", "themes", "-w", str(demo_ws_path), "--from", "2026-06-01", "--json")
    assert code == 0, err
    assert set(json.loads(out)["sources"]) == {"nps", "csat", "ces", "ticket", "exit"}


def test_exits_command(demo_ws_path, demo_data):
    code, out, err = run_cli("feedback", "exits", "-w", str(demo_ws_path), "--by", "plan", "--json")
    assert code == 0, err
    data = json.loads(out)
    subs = demo_data.subscriptions
    ended = subs[subs.cancel_reason.notna() & ~subs.is_trial.astype(bool)]
    assert data["involuntary"] == int((ended.churn_type == "involuntary").sum()) > 0
    assert data["voluntary"] == int((ended.churn_type == "voluntary").sum()) > 0
    invol = [r for r in data["totals"] if r["churn_type"] == "involuntary"]
    assert [r["reason"] for r in invol] == ["payment_failed"]
    assert {r["plan"] for r in data["periods"]} <= {"basic", "standard", "premium"}
    code, out, err = run_cli("feedback", "exits", "-w", str(demo_ws_path), "--by", "segment", "--period", "quarter",
                             "--json")
    assert code == 0, err
    segs = {r["segment"] for r in json.loads(out)["periods"]}
    assert len(segs) >= 3
    code, out, err = run_cli("feedback", "exits", "-w", str(demo_ws_path))
    assert code == 0 and "involuntary" in out


def test_commands_on_a_workspace_without_comments(tmp_path):
    Workspace.init(tmp_path / "empty", timezone="Europe/Moscow", currency="RUB").close()
    code, _, err = run_cli("feedback", "themes", "-w", str(tmp_path / "empty"))
    assert code != 0 and "no comments loaded" in err
    code, _, err = run_cli("feedback", "exits", "-w", str(tmp_path / "empty"))
    assert code != 0 and "no subscriptions loaded" in err


def test_report_shows_themes_and_exits_and_escapes_comments(tmp_path, demo_data):
    data = demo_data
    surveys = data.surveys.copy()
    row = int(data.comment_truth.survey_row.iloc[0])
    surveys.loc[row, "comment"] = "<script>alert('owned')</script> Delivery was late again <img src=x onerror=1>"
    path = tmp_path / "ws"
    with Workspace.init(path, timezone="Europe/Moscow", currency="RUB") as w:
        for name, frame in data.tables().items():
            w.load(name, surveys if name == "surveys" else frame)
    for lang, words in (("en", ("Theme (key words)", "Exit reason", "involuntary (payment)")),
                        ("ru", ("Тема (ключевые слова)", "Причина ухода", "вынужденный (платёж)"))):
        out = tmp_path / f"r_{lang}.html"
        code, _, err = run_cli("-w", str(path), "report", "--out", str(out), "--lang", lang)
        assert code == 0, err
        html = out.read_text(encoding="utf-8")
        section = html[html.index('data-section="feedback"'):html.index('data-section="actions"')]
        for w_ in words:
            assert w_ in section
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "alert(&#39;owned&#39;)" in html or "owned" not in html  # shown as text, if quoted at all
    # the Russian takeaway words its counts with the right plural forms
    assert "комментари" in section


def test_report_quotes_the_html_comment_as_text(tmp_path):
    from retentio.faces.report.build import Section, render
    from retentio.faces.report.i18n import Fmt

    class W:
        path = tmp_path

    sec = Section("feedback", "Feedback", takeaway="<script>alert(1)</script>",
                  tables=[(["Example"], [["<script>alert(2)</script>"]])])
    html = render([sec], Fmt("en", "RUB"), W())
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;script&gt;alert(2)" in html


def test_service_sources_and_parameters(demo_ws_path):
    from retentio.data.errors import InvalidParameter
    from retentio.services.feedback_insights import (
        SURVEY_KINDS,
        ExitParams,
        ThemesParams,
        exit_reasons,
        feedback_themes,
    )

    with Workspace.open(demo_ws_path, read_only=True) as w:
        surveys_only = feedback_themes(w, ThemesParams(include=SURVEY_KINDS))  # what the report themes
        assert set(surveys_only.sources) == {"nps", "csat", "ces"}
        late = exit_reasons(w, ExitParams(since=pd.Timestamp("2026-01-01").date(), period="quarter"))
        assert (late.periods.period_start >= pd.Timestamp("2026-01-01")).all()
        with pytest.raises(InvalidParameter):
            feedback_themes(w, ThemesParams(themes=0))
        with pytest.raises(InvalidParameter):
            feedback_themes(w, ThemesParams(kind="sms"))  # type: ignore[arg-type]
