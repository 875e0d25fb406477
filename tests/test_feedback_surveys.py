"""Surveys out and in: the survey playbooks' triggers on a hand-made shop, throttling
across survey playbooks, signed answer links (tampered, expired, answered twice), an
invitation delivered to a real SMTP server on loopback, the answer command end to end,
response rates worked out by hand, comments never rendered as HTML, and the answers
reaching the metrics. Store tests run on SQLite and PostgreSQL (``store_url``).

The shop is :mod:`tests.campaign_data`'s (as of 2026-06-15, Europe/Moscow) plus:

* nps_survey (2nd order 14 days ago, 3 days' catch-up): B (orders 05-20 and 05-30);
  A's 2nd order was in February, J's on 05-16: no
* csat_after_ticket (resolved in the last 3 days): E (06-14) and B (06-13); F's was
  resolved 06-01, H's is open: no
* exit_survey (ended in the last 3 days, voluntary): Q (06-13); R's ended 06-14 but
  involuntarily, I's ends in July: no
* feedback_reply (answers without a comment, last 3 days): K (NPS 4) and N (CSAT 2); L
  (NPS 9) wrote a comment: no
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pandas as pd
import pytest
from sqlalchemy import func, select

from tests.campaign_data import AS_OF, NOON, tables, write_playbook
from tests.conftest import run_cli
from tests.servers import SmtpSink

RULES = "[campaigns]\nquiet_start = \"00:00\"\nquiet_end = \"00:00\"\nretry_base_s = 0.05\n"
LINK = re.compile(r"http://localhost:8000/s/(\S+)")


def survey_tables() -> dict[str, pd.DataFrame]:
    t = tables()
    extra = pd.DataFrame([("O8", "B", pd.Timestamp("2026-05-30 12:00"), 60.0, "completed")],
                         columns=["order_id", "customer_id", "ordered_at", "amount", "status"])
    t["orders"] = pd.concat([t["orders"], extra], ignore_index=True)
    t["tickets"] = pd.DataFrame({
        "customer_id": ["E", "B", "F", "H"],
        "opened_at": pd.to_datetime(["2026-06-12 10:00", "2026-06-12 11:00", "2026-05-30 10:00", "2026-06-14 10:00"]),
        "resolved_at": pd.to_datetime(["2026-06-14 10:00", "2026-06-13 10:00", "2026-06-01 10:00", None]),
        "topic": ["delivery", "billing", "delivery", "app"]})
    subs = t["subscriptions"]
    t["subscriptions"] = pd.concat([subs, pd.DataFrame({
        "subscription_id": ["S3", "S4"], "customer_id": ["Q", "R"],
        "started_at": pd.to_datetime(["2026-01-01", "2026-02-01"]),
        "ended_at": pd.to_datetime(["2026-06-13 10:00", "2026-06-14 10:00"]), "mrr": [10.0, 10.0],
        "plan": ["pro", "basic"], "churn_type": ["voluntary", "involuntary"]})], ignore_index=True)
    surveys = t["surveys"]
    surveys["comment"] = [None, "Great coffee", None]
    return t


def make_ws(path, store_url=None, settings: str = ""):
    from retentio.data.workspace import Workspace

    ws = Workspace.init(path, timezone="Europe/Moscow", currency="RUB")
    for name, frame in survey_tables().items():
        ws.load(name, frame, mode="replace")
    ws.close()
    extra = RULES + settings + (f'\n[store]\nurl = "{store_url}"\n' if store_url else "")
    with (path / "retentio.toml").open("a", encoding="utf-8") as f:
        f.write("\n" + extra)
    return Workspace.open(path)


def survey_playbook(kind: str, *, trigger: str = "", channel: str = "csv", min_days: int = 90,
                    html: str | None = None, text: str = "Hello {{ first_name }}: {{ survey_url }}",
                    question: str = "", mornings: bool = False) -> str:
    html_line = f"html = {json.dumps(html)}\n" if html is not None else ""
    survey = (f"\n[survey]\nmin_days_between = {min_days}\nweekday_mornings = {str(mornings).lower()}\n{question}"
              if kind != "feedback_reply" else "")
    return f'''kind = "{kind}"

[trigger]
{trigger}

[message]
subject = "A question, {{{{ first_name }}}}"
text = {json.dumps(text)}
{html_line}message_class = "service"
picks = "none"

[channel]
kind = "{channel}"

[holdout]
percent = 0
{survey}'''


@pytest.fixture
def shop(tmp_path, store_url):
    ws = make_ws(tmp_path / "ws", store_url)
    yield ws
    ws.close()


def plan_campaign(ws, name: str, as_of: dt.date, now: dt.datetime):
    from retentio.actions.campaigns import plan
    from retentio.actions.playbooks import read_playbook

    return plan(ws, read_playbook(ws.path, name), as_of, now=now, samples=1)


def picked(ws, kind: str, trigger: str = "") -> set[str]:
    write_playbook(ws.path, kind, survey_playbook(kind, trigger=trigger))
    p = plan_campaign(ws, kind, AS_OF, now=NOON)
    assert all("http" in x["text"] for x in p.samples) or kind == "feedback_reply"
    return set(p.frame[p.frame.stage == "message"].customer_id)


def run(ws, name: str, now: dt.datetime = NOON):
    from retentio.services.campaigns import run_campaign

    return run_campaign(ws, name, AS_OF, now=now, env={})


def invitations(ws) -> pd.DataFrame:
    from retentio.data.store.campaign_tables import OutboxMessage
    from retentio.data.store.survey_tables import SurveyInvitation

    with ws.store.session() as s:
        rows = s.execute(select(SurveyInvitation.customer_id, SurveyInvitation.kind, SurveyInvitation.channel,
                                SurveyInvitation.token_id, OutboxMessage.body_text, OutboxMessage.status)
                         .join(OutboxMessage, OutboxMessage.assignment_id == SurveyInvitation.assignment_id)).all()
    return pd.DataFrame(rows, columns=["customer_id", "kind", "channel", "token_id", "text", "status"])


def token_of(ws, customer: str) -> str:
    inv = invitations(ws).set_index("customer_id")
    return LINK.search(inv.loc[customer, "text"]).group(1)


def answers_count(ws) -> int:
    from retentio.data.store.survey_tables import SurveyAnswer

    with ws.store.session() as s:
        return int(s.scalar(select(func.count()).select_from(SurveyAnswer)))


# ---------------------------------------------------------------------- triggers
def test_each_survey_kind_triggers_on_the_hand_made_shop(tmp_path):
    ws = make_ws(tmp_path / "ws")
    try:
        assert picked(ws, "nps_survey") == {"B"}
        assert picked(ws, "csat_after_ticket") == {"E", "B"}
        assert picked(ws, "exit_survey") == {"Q"}
        assert picked(ws, "exit_survey", "voluntary_only = false") == {"Q", "R"}
        assert picked(ws, "feedback_reply") == {"K", "N"}
        assert picked(ws, "feedback_reply", "empty_comment_only = false") == {"K", "L", "N"}
        # every six months, every buyer (A, B, G, J, M), once per half-year
        assert picked(ws, "nps_survey", "every_months = 6") == {"A", "B", "G", "J", "M"}
    finally:
        ws.close()


def test_a_survey_playbook_needs_its_link_and_no_offer(tmp_path):
    from retentio.actions.playbooks import PlaybookError, parse_playbook

    with pytest.raises(PlaybookError, match=r"\[message\] text must contain \{\{ survey_url \}\}"):
        parse_playbook(survey_playbook("nps_survey", text="Hello"), "x.toml")
    with pytest.raises(PlaybookError, match=r"\[offer\] kind must be \"none\""):
        parse_playbook(survey_playbook("nps_survey") + '\n[offer]\nkind = "points"\nvalue = 10\n', "x.toml")
    with pytest.raises(PlaybookError, match=r"\[survey\] min_days_between"):
        parse_playbook(survey_playbook("nps_survey", min_days=0), "x.toml")
    pb = parse_playbook(survey_playbook("csat_after_ticket", question='question = "ces"\n'), "x.toml")
    assert pb.survey_kind == "ces"


def test_every_template_kind_parses_and_names_its_link():
    from retentio.actions.playbook_templates import playbook_text
    from retentio.actions.playbooks import SURVEY_PLAYBOOKS, parse_playbook

    for kind in [*SURVEY_PLAYBOOKS, "feedback_reply"]:
        for lang in ("en", "ru"):
            pb = parse_playbook(playbook_text(kind, kind, lang=lang), "x.toml", kind)
            assert pb.offer.kind == "none" and pb.message.message_class == "service"


# ---------------------------------------------------------------------- throttling
def test_nobody_is_asked_twice_within_the_window_across_survey_playbooks(shop):
    write_playbook(shop.path, "nps", survey_playbook("nps_survey"))
    write_playbook(shop.path, "csat", survey_playbook("csat_after_ticket", min_days=30))
    assert run(shop, "nps").treatment == 1  # B
    # B was asked by the NPS survey at NOON: the CSAT survey leaves B out, E goes
    result = run(shop, "csat")
    assert result.treatment == 1
    inv = invitations(shop)
    assert sorted(inv.customer_id) == ["B", "E"] and len(inv) == 2
    p = plan_campaign(shop, "csat", AS_OF, now=NOON + dt.timedelta(days=1))
    from retentio.actions.campaigns import SURVEYED_RECENTLY

    assert p.frame.set_index("customer_id").loc["B", "reason"] == SURVEYED_RECENTLY
    # 30 days later (the CSAT playbook's window) B may be asked again
    later = plan_campaign(shop, "csat", AS_OF, now=NOON + dt.timedelta(days=30, seconds=1))
    assert later.frame.set_index("customer_id").loc["B", "stage"] == "message"
    # one run of both together: still one invitation per person (recorded one after the other)
    write_playbook(shop.path, "nps2", survey_playbook("nps_survey", trigger="every_months = 6"))
    write_playbook(shop.path, "csat2", survey_playbook("csat_after_ticket"))
    from retentio.services.campaigns import run_campaigns

    run_campaigns(shop, ["nps2", "csat2"], AS_OF, now=NOON + dt.timedelta(days=200), env={})
    inv = invitations(shop)
    assert inv.groupby("customer_id").size().max() == 2  # B and E: once at NOON, once 200 days later
    assert set(inv.customer_id) == {"A", "B", "E", "G", "J", "M"}


def test_a_failed_or_cancelled_invitation_does_not_throttle(shop):
    from retentio.actions.campaigns import SURVEYED_RECENTLY
    from retentio.data.store.campaign_tables import Campaign, OutboxMessage

    write_playbook(shop.path, "nps", survey_playbook("nps_survey"))
    write_playbook(shop.path, "csat", survey_playbook("csat_after_ticket"))
    assert run(shop, "nps").treatment == 1  # B

    def b_is(status: str) -> str | None:
        nps = select(Campaign.id).where(Campaign.name == "nps").scalar_subquery()
        with shop.store.session() as s:
            s.execute(OutboxMessage.__table__.update().where(OutboxMessage.campaign_id == nps)
                      .values(status=status))
        p = plan_campaign(shop, "csat", AS_OF, now=NOON + dt.timedelta(hours=1))
        return p.frame.set_index("customer_id").loc["B", "reason"]

    for status in ("failed", "cancelled", "withheld"):  # never asked B: B may be asked
        assert b_is(status) is None, status
    for status in ("sent", "pending", "retry", "sending"):  # asked, or about to be
        assert b_is(status) == SURVEYED_RECENTLY, status


def next_friday_evening() -> dt.datetime:
    """19:00 in Moscow on a Friday at least a week ahead (so the morning after is in the future)."""
    day = dt.date.today() + dt.timedelta(days=7)
    day += dt.timedelta(days=(4 - day.weekday()) % 7)
    return dt.datetime.combine(day, dt.time(16, 0), tzinfo=dt.UTC)


def test_weekday_mornings_defer_the_run_and_the_link_counts_from_the_morning(shop):
    from retentio.actions.feedback.surveys import _aware
    from retentio.data.store.campaign_tables import OutboxMessage
    from retentio.data.store.survey_tables import SurveyInvitation

    write_playbook(shop.path, "csat", survey_playbook("csat_after_ticket", mornings=True))
    friday = next_friday_evening()
    result = run(shop, "csat", now=friday)
    # E and B: queued for Monday morning, not sent — and the run says so
    assert (result.treatment, result.sent, result.deferred) == (2, 0, 2)
    assert result.as_dict()["deferred"] == 2
    with shop.store.session() as s:
        rows = s.execute(select(SurveyInvitation.invited_at, SurveyInvitation.expires_at, OutboxMessage.not_before,
                                OutboxMessage.status)
                         .join(OutboxMessage, OutboxMessage.assignment_id == SurveyInvitation.assignment_id)).all()
    assert len(rows) == 2
    moscow = dt.timezone(dt.timedelta(hours=3))
    monday = (friday + dt.timedelta(days=3)).date()
    for invited, expires, not_before, status in rows:
        at = _aware(not_before)
        local = at.astimezone(moscow)
        assert status == "pending" and local.date() == monday and 9 <= local.hour < 12
        # the link is valid 30 days from when its message may go out, not from Friday's run
        assert _aware(invited) == at and _aware(expires) == at + dt.timedelta(days=30)


def test_the_run_command_says_how_weekday_morning_invitations_go_out(tmp_path, monkeypatch):
    from retentio.actions import runs

    ws = make_ws(tmp_path / "ws")
    write_playbook(ws.path, "exit", survey_playbook("exit_survey", mornings=True))
    path = str(ws.path)
    ws.close()
    monkeypatch.setattr(runs, "utcnow", next_friday_evening)
    code, out, err = run_cli("campaign", "run", "exit", "--as-of", AS_OF.isoformat(), "-w", path, "--json")
    assert code == 0, err
    assert (json.loads(out)["sent"], json.loads(out)["deferred"]) == (0, 1)
    code, out, err = run_cli("campaign", "run", "exit", "--as-of", AS_OF.isoformat(), "-w", path)
    assert code == 0, err  # nothing new to ask (Q was asked): no hint
    assert "retentio campaign send" not in err
    write_playbook(tmp_path / "ws", "exit2", survey_playbook("exit_survey", trigger="voluntary_only = false",
                                                             mornings=True, min_days=1))
    code, out, err = run_cli("campaign", "run", "exit2", "--as-of", AS_OF.isoformat(), "-w", path)
    assert code == 0, err
    assert "go out with: retentio campaign send" in " ".join(err.split())


def test_a_customers_comment_attribute_stays_the_customers(tmp_path):
    from retentio.actions.campaigns import plan
    from retentio.actions.playbooks import read_playbook
    from retentio.data.workspace import Workspace

    ws = make_ws(tmp_path / "ws")
    customers = ws.table("customers").to_pandas()
    customers["comment"] = "note on " + customers.customer_id.astype(str)
    ws.load("customers", customers, mode="replace")
    ws.close()
    ws = Workspace.open(tmp_path / "ws")
    try:
        write_playbook(ws.path, "reply", survey_playbook(
            "feedback_reply", trigger="empty_comment_only = false",
            text="{{ customer.comment }} | {{ answer_comment or '-' }} | {{ score | int }}"))
        write_playbook(ws.path, "nps", survey_playbook(
            "nps_survey", text="{{ customer.comment }}: {{ survey_url }}"))
        for name in ("reply", "nps"):
            p = plan(ws, read_playbook(ws.path, name), AS_OF, now=NOON, samples=10)
            assert "comment_x" not in p.frame and "comment_y" not in p.frame
            texts = {x["customer_id"]: x["text"] for x in p.samples}
            if name == "reply":
                assert set(texts) == {"K", "L", "N"}
                assert texts["L"] == "note on L | Great coffee | 9" and texts["K"] == "note on K | - | 4"
            else:
                assert texts["B"].startswith("note on B: https://example.com/s/")
    finally:
        ws.close()


def test_loopback_covers_the_unspecified_addresses():
    from retentio.actions.runs import _loopback

    for host in ("localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "::1", "[::1]", "0.0.0.0", "::", "[::]",
                 "0:0:0:0:0:0:0:1", "app.localhost"):
        assert _loopback(host), host
    for host in ("smtp.example.com", "10.0.0.1", "192.168.1.1", "::2", "", None, "0.0.0.1.example.com"):
        assert not _loopback(host), host


def test_weekday_mornings_spread_the_invitations():
    from retentio.actions.feedback.surveys import morning_slots

    ids = pd.Series([f"C{i}" for i in range(200)])
    saturday = dt.datetime(2026, 6, 13, 7, 0, tzinfo=dt.UTC)  # 10:00 in Moscow
    slots = morning_slots(ids, saturday, "Europe/Moscow", 9, 12)
    local = [s.astimezone(dt.timezone(dt.timedelta(hours=3))) for s in slots]
    assert {t.date() for t in local} == {dt.date(2026, 6, 15)}  # Monday
    assert all(9 <= t.hour < 12 for t in local) and len({t.hour for t in local}) == 3
    # Monday 10:30 local: the later minutes still go today, the earlier ones on Tuesday
    monday = dt.datetime(2026, 6, 15, 7, 30, tzinfo=dt.UTC)
    days = {s.astimezone(dt.timezone(dt.timedelta(hours=3))).date() for s in morning_slots(ids, monday,
                                                                                          "Europe/Moscow", 9, 12)}
    assert days == {dt.date(2026, 6, 15), dt.date(2026, 6, 16)}
    assert all(s >= monday for s in morning_slots(ids, monday, "Europe/Moscow", 9, 12))


# ---------------------------------------------------------------------- tokens
def test_signed_tokens_tampered_expired_and_answered_twice(shop):
    from retentio.actions.feedback.surveys import AlreadyAnswered, SurveyRefused, answer, make_token, survey_secret

    write_playbook(shop.path, "csat", survey_playbook("csat_after_ticket"))
    run(shop, "csat")
    secret = survey_secret(shop.path, env={})
    token = token_of(shop, "E")
    # tampered: one character changed, or signed by another workspace's key
    bad = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(SurveyRefused, match="^token: the signature does not match"):
        answer(shop.store, secret, bad, 5, now=NOON)
    forged = make_token(b"x" * 32, invitations(shop).set_index("customer_id").loc["E", "token_id"])
    with pytest.raises(SurveyRefused, match="^token: the signature does not match"):
        answer(shop.store, secret, forged, 5, now=NOON)
    # expired: the link is valid 30 days
    with pytest.raises(SurveyRefused, match="^token: the link expired on"):
        answer(shop.store, secret, token, 5, now=NOON + dt.timedelta(days=30, seconds=1))
    # out of the CSAT scale, or not a whole number
    for score in (0, 6, 4.5):
        with pytest.raises(SurveyRefused, match="^score: .* CSAT scale: a whole number from 1 to 5"):
            answer(shop.store, secret, token, score, now=NOON)
    assert answers_count(shop) == 0  # nothing was written by any refusal
    done = answer(shop.store, secret, token, 4, "ok", now=NOON + dt.timedelta(hours=1))
    assert (done.customer_id, done.kind, done.score, done.campaign) == ("E", "csat", 4, "csat")
    # answering twice: refused, the first answer stands
    with pytest.raises(AlreadyAnswered, match="already answered .* the first answer stands"):
        answer(shop.store, secret, token, 1, "changed my mind", now=NOON + dt.timedelta(hours=2))
    assert answers_count(shop) == 1


def test_the_schema_refuses_a_second_answer_and_a_score_off_the_scale(shop):
    from sqlalchemy.exc import IntegrityError

    from retentio.data.store.survey_tables import SurveyAnswer

    write_playbook(shop.path, "csat", survey_playbook("csat_after_ticket"))
    run(shop, "csat")
    from retentio.data.store.survey_tables import SurveyInvitation

    with shop.store.session() as s:
        inv = s.scalars(select(SurveyInvitation.id)).first()
    row = {"invitation_id": inv, "customer_id": "E", "kind": "csat", "answered_at": NOON, "source": "import"}
    with pytest.raises(IntegrityError), shop.store.session() as s:
        s.add(SurveyAnswer(**row, score=6))
    with shop.store.session() as s:
        s.add(SurveyAnswer(**row, score=5))
    with pytest.raises(IntegrityError), shop.store.session() as s:
        s.add(SurveyAnswer(**row, score=4))
    assert answers_count(shop) == 1


def test_the_scales_in_the_schema_match_the_canonical_ones():
    """The model's check and the copy frozen in migration 0005 both follow SURVEY_SCALES."""
    import importlib.util
    from pathlib import Path

    import retentio.data.store.migrations.versions as versions
    from retentio.data.schema import SURVEY_SCALES
    from retentio.data.store.survey_tables import SCORE_CHECK

    path = Path(versions.__file__).parent / "0005_surveys.py"
    spec = importlib.util.spec_from_file_location("retentio_migration_0005", path)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    expected = " OR ".join(f"(kind = '{kind}' AND score BETWEEN {low} AND {high})"
                           for kind, (low, high) in SURVEY_SCALES.items())
    for check in (SCORE_CHECK, migration.SCORES):
        assert check == expected
    assert migration.KINDS == "kind IN (" + ", ".join(f"'{k}'" for k in SURVEY_SCALES) + ")"


def test_only_a_clash_on_the_invitation_reads_as_already_answered(shop, monkeypatch):
    from sqlalchemy.exc import IntegrityError

    from retentio.actions.feedback import surveys
    from retentio.actions.feedback.surveys import AlreadyAnswered, answer, survey_secret

    write_playbook(shop.path, "csat", survey_playbook("csat_after_ticket"))
    run(shop, "csat")
    secret = survey_secret(shop.path, env={})
    token = token_of(shop, "E")
    # another violation (the schema's score check) is a real error, not "already answered"
    monkeypatch.setattr(surveys, "check_score", lambda kind, score: 99)
    with pytest.raises(IntegrityError) as caught:
        answer(shop.store, secret, token, 5, now=NOON)
    assert not isinstance(caught.value, AlreadyAnswered)
    monkeypatch.undo()
    assert answers_count(shop) == 0
    answer(shop.store, secret, token, 5, now=NOON)
    # a racing answer that slipped past the check: the unique key refuses it as already answered
    from sqlalchemy.orm import Session

    from retentio.data.store.survey_tables import SurveyAnswer

    scalars = Session.scalars

    def blind(self, statement, *args, **kwargs):  # the "already answered?" look-up misses the first answer
        result = scalars(self, statement, *args, **kwargs)
        if statement.column_descriptions[0]["entity"] is SurveyAnswer:
            return scalars(self, statement.where(SurveyAnswer.id < 0), *args, **kwargs)
        return result

    monkeypatch.setattr(Session, "scalars", blind)
    with pytest.raises(AlreadyAnswered, match="already answered; the first answer stands"):
        answer(shop.store, secret, token, 1, now=NOON + dt.timedelta(hours=1))
    monkeypatch.undo()
    assert answers_count(shop) == 1


# ---------------------------------------------------------------------- e-mail on loopback
def test_an_invitation_by_email_reaches_a_real_smtp_server_with_its_personal_link(tmp_path, store_url):
    from retentio.services.surveys import answer_survey

    with SmtpSink() as sink:
        ws = make_ws(tmp_path / "ws", store_url, settings=sink.settings())
        try:
            write_playbook(ws.path, "exit", survey_playbook(
                "exit_survey", channel="email", html="<p>{{ first_name }}, tell us: "
                                                     "<a href=\"{{ survey_url }}\">answer</a></p>"))
            result = run(ws, "exit")
            assert result.sent == 1 and len(sink.messages) == 1
            m = sink.messages[0]
            assert m["To"] == "q@example.com"
            text = m.get_body(("plain",)).get_content()
            html = m.get_body(("html",)).get_content()
            token = LINK.search(text).group(1)
            assert token == token_of(ws, "Q") and f'href="http://localhost:8000/s/{token}"' in html
            done = answer_survey(ws, token, 3, "Too expensive", now=NOON + dt.timedelta(days=1), env={})
            assert (done["customer_id"], done["kind"], done["score"], done["playbook"]) == ("Q", "nps", 3, "exit")
            assert done["synced"] == 1
        finally:
            ws.close()


# ---------------------------------------------------------------------- response rates
def test_response_rate_and_nps_per_playbook_and_channel_by_hand(shop):
    from retentio.actions.feedback.surveys import answer, survey_secret
    from retentio.services.surveys import survey_report

    write_playbook(shop.path, "relationship", survey_playbook("nps_survey", trigger="every_months = 6"))
    write_playbook(shop.path, "csat", survey_playbook("csat_after_ticket", min_days=1))
    run(shop, "relationship")  # A, B, G, J, M
    run(shop, "csat", now=NOON + dt.timedelta(days=2))  # E; B was asked 2 days ago, the window is 1 day: B too
    secret = survey_secret(shop.path, env={})
    for customer, score in (("A", 10), ("B", 9), ("G", 3)):
        answer(shop.store, secret, token_of_kind(shop, customer, "nps"), score, now=NOON + dt.timedelta(days=3))
    answer(shop.store, secret, token_of_kind(shop, "E", "csat"), 5, now=NOON + dt.timedelta(days=3))
    rows = {r["playbook"]: r for r in survey_report(shop)}
    r = rows["relationship"]
    # 5 invited, 3 answered: 3/5 = 0.6; NPS = (2 promoters - 1 detractor) / 3 = 33.3
    assert (r["channel"], r["kind"], r["invited"], r["answered"]) == ("csv", "nps", 5, 3)
    assert r["response_rate"] == 0.6 and r["nps"] == 33.3
    c = rows["csat"]
    # 2 invited (E, B), 1 answered with 5: 1/2 = 0.5; CSAT = 1 of 1 answers 4-5 = 100 %
    assert (c["invited"], c["answered"], c["response_rate"], c["csat"]) == (2, 1, 0.5, 100.0)


def token_of_kind(ws, customer: str, kind: str) -> str:
    inv = invitations(ws)
    row = inv[(inv.customer_id == customer) & (inv.kind == kind)].iloc[0]
    return LINK.search(row.text).group(1)


# ---------------------------------------------------------------------- the command, end to end
def test_the_answer_command_end_to_end_and_the_metrics_count_the_answer(tmp_path):
    ws = make_ws(tmp_path / "ws")
    write_playbook(ws.path, "nps", survey_playbook("nps_survey"))
    run(ws, "nps", now=dt.datetime.now(dt.UTC))
    token = token_of(ws, "B")
    path = str(ws.path)
    ws.close()
    before = json.loads(run_cli("metrics", "-w", path, "--json")[1])
    comment = "<script>alert('x')</script> & more"
    code, out, err = run_cli("feedback", "answer", token, "10", "--comment", comment, "-w", path, "--json")
    assert code == 0, err
    done = json.loads(out)
    assert (done["customer_id"], done["score"], done["comment"], done["synced"]) == ("B", 10, comment, 1)
    # twice: refused (exit 2), the first answer stands
    code, _out, err = run_cli("feedback", "answer", token, "0", "-w", path)
    assert code == 2 and "already answered" in err
    # tampered: refused naming the field, nothing written
    code, out, err = run_cli("feedback", "answer", token[:-3] + "xyz", "7", "-w", path, "--json")
    assert code == 2 and json.loads(out)["error"].startswith("token: the signature does not match")
    # off the scale: the score is checked first
    code, out, err = run_cli("feedback", "answer", token, "11", "-w", path, "--json")
    assert code == 2 and json.loads(out)["error"].startswith("score: 11 is not on the NPS scale")
    # the report
    code, out, _ = run_cli("feedback", "surveys", "-w", path, "--json")
    rows = json.loads(out)
    assert code == 0 and rows == [{"playbook": "nps", "channel": "csv", "kind": "nps", "invited": 1, "queued": 0,
                                   "failed": 0, "answered": 1, "response_rate": 1.0, "nps": 100.0}]
    # sync again: nothing new, never a duplicate
    code, out, _ = run_cli("feedback", "sync", "-w", path, "--json")
    assert code == 0 and json.loads(out) == {"appended": 0, "already": 0, "failed": []}
    from retentio.data.workspace import Workspace

    with Workspace.open(tmp_path / "ws") as again:
        s = again.table("surveys").to_pandas()
        assert len(s) == 4 and (s.comment == comment).sum() == 1  # stored as text, as typed
    after = json.loads(run_cli("metrics", "-w", path, "--json")[1])
    assert nps_responses(after) == nps_responses(before) + 1
    for command in (["feedback", "answer", "--help"], ["feedback", "surveys", "--help"], ["feedback", "sync", "--help"]):
        code, out, _ = run_cli(*command)
        assert code == 0 and "--json" in out


def nps_responses(metrics: dict) -> int:
    """The count of NPS answers in `retentio metrics --json`, wherever the period puts them."""
    found = []

    def walk(v):
        if isinstance(v, dict):
            for k, x in v.items():
                if k == "nps_responses" and isinstance(x, (int, float)):
                    found.append(x)
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(metrics)
    return int(sum(found))


def test_an_off_scale_score_is_refused_naming_the_field(tmp_path):
    ws = make_ws(tmp_path / "ws")
    write_playbook(ws.path, "nps", survey_playbook("nps_survey"))
    run(ws, "nps", now=dt.datetime.now(dt.UTC))
    token = token_of(ws, "B")
    path = str(ws.path)
    ws.close()
    code, out, _ = run_cli("feedback", "answer", token, "11", "-w", path, "--json")
    assert code == 2 and json.loads(out)["error"].startswith("score: 11 is not on the NPS scale")
    code, out, _ = run_cli("feedback", "surveys", "-w", path, "--json")
    assert json.loads(out)[0]["answered"] == 0


# ---------------------------------------------------------------------- html, and the reply
def test_a_comment_is_never_rendered_as_html_and_the_reply_goes_through_the_outbox(shop):
    from retentio.actions.feedback.surveys import answer, survey_secret
    from retentio.data.store.campaign_tables import Campaign, OutboxMessage

    write_playbook(shop.path, "csat", survey_playbook("csat_after_ticket"))
    run(shop, "csat")
    secret = survey_secret(shop.path, env={})
    evil = "<script>alert(1)</script><b>bold</b>"
    # answered on the evening of the 14th (Moscow), before the reply's as-of day
    answer(shop.store, secret, token_of(shop, "E"), 2, evil, now=dt.datetime(2026, 6, 14, 15, 0, tzinfo=dt.UTC))
    answer(shop.store, secret, token_of(shop, "B"), 5, None, now=dt.datetime(2026, 6, 14, 15, 0, tzinfo=dt.UTC))
    write_playbook(shop.path, "reply", survey_playbook(
        "feedback_reply", trigger="empty_comment_only = false",
        text="Thank you for {{ score | int }}. You wrote: {{ answer_comment }}",
        html="<p>Thank you for {{ score | int }}.</p><p>You wrote: {{ answer_comment }}</p>"))
    run(shop, "reply")
    with shop.store.session() as s:
        rows = s.execute(select(OutboxMessage.customer_id, OutboxMessage.body_text, OutboxMessage.body_html,
                                OutboxMessage.status)
                         .join(Campaign, Campaign.id == OutboxMessage.campaign_id)
                         .where(Campaign.name == "reply")).all()
    replies = {r[0]: r for r in rows}
    assert "E" in replies and "B" in replies
    _, text, html, status = replies["E"]
    assert status == "sent"
    assert evil in text  # plain text keeps what was typed
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in html
    # the default reply asks only those who left no comment: B (and the imported K and N)
    write_playbook(shop.path, "ask", survey_playbook("feedback_reply", text="Thank you! Why {{ score | int }}?"))
    run(shop, "ask")
    with shop.store.session() as s:
        asked = set(s.scalars(select(OutboxMessage.customer_id).join(Campaign, Campaign.id == OutboxMessage.campaign_id)
                              .where(Campaign.name == "ask")))
    assert asked == {"B", "K", "N"}


def test_a_loopback_survey_link_is_refused_for_email_to_the_outside_world(tmp_path):
    from retentio.actions.channels.base import ChannelError

    ws = make_ws(tmp_path / "ws", settings='[channels.email]\nhost = "smtp.example.com"\nsender = "s@example.com"\n')
    try:
        write_playbook(ws.path, "exit", survey_playbook("exit_survey", channel="email"))
        with pytest.raises(ChannelError, match=r"^\[campaigns\] survey_base_url: 'http://localhost:8000' points at"):
            run(ws, "exit")
        assert invitations(ws).empty  # nothing recorded
    finally:
        ws.close()


def test_the_signing_key_comes_from_the_environment_when_set_else_a_private_file(tmp_path):
    import os
    import stat

    from retentio.actions.feedback.surveys import SurveyRefused, make_token, read_token, survey_secret
    from retentio.data.errors import RetentioError

    folder = tmp_path / "ws"
    folder.mkdir()
    key = survey_secret(folder, env={})
    assert key == survey_secret(folder, env={})  # generated once, then kept
    assert stat.S_IMODE(os.stat(folder / ".retentio-secret").st_mode) == 0o600
    from_env = survey_secret(folder, env={"RETENTIO_SECRET_KEY": "k" * 32})
    assert from_env != key
    token = make_token(from_env, "abc")
    assert read_token(from_env, token) == "abc"
    with pytest.raises(SurveyRefused, match="^token: the signature does not match"):
        read_token(key, token)
    with pytest.raises(RetentioError, match="RETENTIO_SECRET_KEY: the signing key must be at least 16"):
        survey_secret(folder, env={"RETENTIO_SECRET_KEY": "short"})
    # an unsubscribe token is no survey token, though signed with the same key
    from retentio.actions.unsubscribe import make_token as unsubscribe_token

    with pytest.raises(SurveyRefused):
        read_token(key, unsubscribe_token(key, "A", "email", "x"))


def test_a_link_answer_is_replied_to_once_before_and_after_it_reaches_the_surveys_table(shop):
    from retentio.actions.feedback.surveys import answer, survey_secret
    from retentio.services.surveys import sync_answers

    write_playbook(shop.path, "csat", survey_playbook("csat_after_ticket"))
    run(shop, "csat")
    answer(shop.store, survey_secret(shop.path, env={}), token_of(shop, "E"), 3,
           now=dt.datetime(2026, 6, 14, 15, 0, 0, 123456, tzinfo=dt.UTC))
    write_playbook(shop.path, "ask", survey_playbook("feedback_reply", text="Thank you! Why {{ score | int }}?"))
    first = run(shop, "ask")
    assert first.treatment == 3  # E (from the store), K and N (imported)
    assert sync_answers(shop) == {"appended": 1, "already": 0, "failed": []}
    assert sync_answers(shop) == {"appended": 0, "already": 0, "failed": []}
    again = run(shop, "ask")
    assert again.treatment == 0  # the same answers, now also in the surveys table: no second reply
    # a crash between the append and its mark: the next sync recognises the row, appends nothing
    from sqlalchemy import update

    from retentio.data.store.survey_tables import SurveyAnswer

    with shop.store.session() as session:
        session.execute(update(SurveyAnswer).values(exported_at=None))
    assert sync_answers(shop) == {"appended": 0, "already": 1, "failed": []}
    s = shop.table("surveys").to_pandas()
    assert len(s) == 4 and int((s.customer_id == "E").sum()) == 1


def test_an_answer_the_surveys_table_refuses_is_kept_and_blocks_no_other(tmp_path):
    """The answer is committed first; if the surveys table then refuses it (here: its
    customer was removed from customers), the command says so without calling the answer
    refused, and the other answers still reach the table."""
    ws = make_ws(tmp_path / "ws")
    write_playbook(ws.path, "csat", survey_playbook("csat_after_ticket"))
    run(ws, "csat", now=dt.datetime.now(dt.UTC))
    tokens = {c: token_of(ws, c) for c in ("E", "B")}
    customers = ws.table("customers").to_pandas()
    ws.load("customers", customers[customers.customer_id != "E"], mode="replace")
    path = str(ws.path)
    ws.close()
    code, out, err = run_cli("feedback", "answer", tokens["E"], "2", "-w", path, "--json")
    assert code == 0, err
    done = json.loads(out)
    assert done["synced"] == 0 and "E" in done["sync_error"] and "not yet in the surveys table" in err
    code, _, err = run_cli("feedback", "answer", tokens["E"], "5", "-w", path)
    assert code == 2 and "already answered" in err  # it was stored: the first answer stands
    code, out, err = run_cli("feedback", "answer", tokens["B"], "5", "-w", path, "--json")
    assert code == 0 and json.loads(out)["synced"] == 1 and json.loads(out)["sync_error"] is None
    code, out, _ = run_cli("feedback", "sync", "-w", path, "--json")
    again = json.loads(out)
    assert code == 0 and again["appended"] == 0 and [f["id"] for f in again["failed"]] == [done["answer_id"]]


# ---------------------------------------------------------------------- exit surveys reach the exit reasons
def test_an_exit_survey_answer_reaches_the_exit_reasons_once_and_the_exit_themes(tmp_path):
    """An exit survey asks the NPS question (the canonical surveys table has no "exit" kind):
    its answer is told apart by its playbook, and joins Q's cancellation (S3, voluntary, no
    cancel reason) as its reason — one exit, not two — and the exit comments themes read."""
    from retentio.actions.feedback.surveys import exit_answers
    from retentio.data.workspace import Workspace
    from retentio.services.feedback_insights import gather_comments

    ws = make_ws(tmp_path / "ws")
    write_playbook(ws.path, "exit", survey_playbook("exit_survey"))
    write_playbook(ws.path, "nps", survey_playbook("nps_survey"))
    run(ws, "exit", now=dt.datetime.now(dt.UTC))
    run(ws, "nps", now=dt.datetime.now(dt.UTC))
    tokens = {"Q": token_of_kind(ws, "Q", "nps"), "B": token_of_kind(ws, "B", "nps")}
    path = str(ws.path)
    ws.close()
    comment = "Found a cheaper roaster nearby"
    code, out, err = run_cli("feedback", "answer", tokens["Q"], "3", "--comment", comment, "-w", path, "--json")
    assert code == 0, err
    assert json.loads(out)["kind"] == "nps"  # the question an exit survey asks
    code, out, err = run_cli("feedback", "answer", tokens["B"], "9", "--comment", "Lovely beans", "-w", path)
    assert code == 0, err
    code, out, err = run_cli("feedback", "exits", "-w", path, "--json")
    assert code == 0, err
    data = json.loads(out)
    # Q (S3, voluntary, no reason) and R (S4, involuntary, no reason): two exits; Q's reason is the answer
    assert (data["voluntary"], data["involuntary"], data["unknown"]) == (1, 1, 0)
    voluntary = [r for r in data["totals"] if r["churn_type"] == "voluntary"]
    assert voluntary == [{"churn_type": "voluntary", "reason": comment, "exits": 1, "share": 100.0}]
    survey_rows = [r for r in data["periods"] if r["source"] == "exit_survey"]
    assert [(r["reason"], r["exits"]) for r in survey_rows] == [(comment, 1)]
    with Workspace.open(tmp_path / "ws") as again:
        a = exit_answers(again.store, timezone=again.settings.timezone)
        assert a[["customer_id", "subscription_id", "score", "comment"]].values.tolist() == [["Q", "S3", 3, comment]]
        assert exit_answers(again.store, since=dt.date.today() + dt.timedelta(days=2)).empty
        exits_in = gather_comments(again, "exit")
        assert exits_in.text.tolist() == [comment] and set(exits_in.kind) == {"exit"}
        # B's NPS answer is no exit
        assert "Lovely beans" not in gather_comments(again, "exit").text.tolist()
    code, out, err = run_cli("feedback", "themes", "-w", path, "--kind", "exit", "--json")
    assert code == 0, err
    themes = json.loads(out)
    assert themes["sources"] == {"exit": 1} and themes["comments"] == 1
    # all kinds together: Q's answer (synced to the surveys table as nps) is taken once, as an exit
    code, out, err = run_cli("feedback", "themes", "-w", path, "--json")
    assert code == 0, err
    # nps: B's "Lovely beans" and the shop's "Great coffee"; the four ticket topics
    assert json.loads(out)["sources"] == {"exit": 1, "nps": 2, "ticket": 4}
