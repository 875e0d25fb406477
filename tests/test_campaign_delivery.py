"""Campaign messages through real channels: an SMTP server (aiosmtpd) and an HTTP server
on loopback, a sender killed with SIGKILL and started again, and the bad inputs that
must stop a campaign with a clear error and the store consistent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from sqlalchemy import func, select

from tests.campaign_data import AS_OF, IDS, make_workspace, playbook, write_playbook
from tests.servers import HookServer, SmtpSink

#: no quiet hours (the tests run at any time of day) and quick retries
RULES = "[campaigns]\nquiet_start = \"00:00\"\nquiet_end = \"00:00\"\nretry_base_s = 0.05\n"
SECRET = "hook-secret"


def _email_playbook(ws, name="drop", holdout=30, **kw):
    write_playbook(ws.path, name, playbook(
        name, "early_access", trigger=f'occurrence = "{name}"', channel="email", holdout=holdout,
        html="<p>Hello {{ first_name }}</p><p>{{ offer.text }}: {{ promo_code }}</p>", **kw))


def _outbox(ws) -> pd.DataFrame:
    from retentio.data.store.campaign_tables import Assignment, OutboxMessage

    with ws.store.session() as s:
        rows = s.execute(select(OutboxMessage.customer_id, OutboxMessage.message_id, OutboxMessage.status,
                                OutboxMessage.attempts, OutboxMessage.detail, Assignment.arm, Assignment.promo_code)
                         .join(Assignment, Assignment.id == OutboxMessage.assignment_id)).all()
    return pd.DataFrame(rows, columns=["customer_id", "message_id", "status", "attempts", "detail", "arm", "code"])


def _consenting(ws) -> set[str]:
    c = ws.table("customers").to_pandas()
    return set(c[c.consent_email.astype(bool)].customer_id)


@pytest.fixture
def shop_with_consent_gaps(tmp_path, store_url):
    def make(settings: str):
        ws = make_workspace(tmp_path / "ws", store_url, settings=RULES + settings)
        customers = ws.table("customers").to_pandas()
        customers["consent_email"] = [i % 4 != 1 for i in range(len(customers))]
        ws.close()
        ws.load("customers", customers, mode="replace")
        return ws

    return make


def test_smtp_one_message_per_treatment_customer_with_consent_and_none_twice(shop_with_consent_gaps):
    from retentio.services.campaigns import run_campaign

    with SmtpSink() as sink:
        ws = shop_with_consent_gaps(sink.settings())
        try:
            _email_playbook(ws)
            result = run_campaign(ws, "drop", AS_OF)
            box = _outbox(ws)
            treatment = set(box[box.arm == "treatment"].customer_id)
            control = set(box[box.arm == "control"].customer_id)
            assert treatment and control
            assert treatment | control <= _consenting(ws)  # no consent: no message, in either arm
            received = {m["To"].split("@")[0].upper(): m for m in sink.messages}
            assert len(sink.messages) == len(received) == result.sent == len(treatment)
            assert set(received) == treatment  # nothing to control
            codes = set()
            for customer, m in received.items():
                assert m["List-Unsubscribe"].startswith("<http") and "token=" in m["List-Unsubscribe"]
                assert m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
                assert m["Message-ID"] == f"<{box.set_index('customer_id').message_id[customer]}@example.com>"
                assert m["Reply-To"] == "care@example.com"
                assert m.get_content_type() == "multipart/alternative"
                text = m.get_body(("plain",)).get_content()
                html = m.get_body(("html",)).get_content()
                code = box.set_index("customer_id").code[customer]
                assert code in text and code in html and f"Hello Name{customer}" in text
                codes.add(code)
            assert len(codes) == len(treatment)
            # again: the occurrence is acted on, nothing new is sent
            again = run_campaign(ws, "drop", AS_OF)
            assert (again.treatment, again.sent) == (0, 0) and len(sink.messages) == len(treatment)
        finally:
            ws.close()


def test_smtp_temporary_failures_are_retried_with_backoff(shop_with_consent_gaps):
    from retentio.services.campaigns import run_campaign

    with SmtpSink(temporary_failures={"a@example.com"}) as sink:
        ws = shop_with_consent_gaps(sink.settings())
        try:
            _email_playbook(ws, holdout=0)
            result = run_campaign(ws, "drop", AS_OF, wait_s=10)
            box = _outbox(ws).set_index("customer_id")
            assert box.loc["A", "status"] == "sent" and box.loc["A", "attempts"] == 2
            assert result.failed == 0 and len(sink.messages) == len(box)
        finally:
            ws.close()


def _run_in_process(ws_path, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "retentio.faces.entry", "-w", str(ws_path), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)})


def test_a_sender_killed_midway_and_started_again_delivers_every_message_once(tmp_path, store_url):
    """SIGKILL while sending, then `campaign send`: every treatment message arrives; the
    only possible copy is the one in flight at the kill, with the same Message-ID."""
    with SmtpSink(delay_s=0.15) as sink:
        ws = make_workspace(tmp_path / "ws", store_url, settings=RULES + sink.settings())
        ws.close()
        _email_playbook(ws, holdout=20)
        sender = _run_in_process(ws.path, "campaign", "run", "drop", "--as-of", str(AS_OF))
        sink.wait_for(5)
        sender.send_signal(signal.SIGKILL)
        sender.wait(timeout=30)
        assert sender.returncode == -signal.SIGKILL
        got_before = len(sink.messages)
        assert 5 <= got_before < len(IDS)  # killed in the middle of the run
        box = _outbox(ws)
        assert (box.status == "sending").any() or (box.status == "pending").any()
        again = _run_in_process(ws.path, "campaign", "send", "--json")
        out, err = again.communicate(timeout=120)
        assert again.returncode == 0, err.decode()
        box = _outbox(ws)
        treatment = box[box.arm == "treatment"]
        assert set(treatment.status) == {"sent"} and set(box[box.arm == "control"].status) == {"withheld"}
        ids = pd.Series([m["Message-ID"] for m in sink.messages])
        wanted = {f"<{m}@example.com>" for m in treatment.message_id}
        assert set(ids) == wanted  # every message, nothing for control
        copies = ids[ids.duplicated()]
        assert len(copies) <= 1  # at most the one in flight, under its own Message-ID
        ws.close()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_login_refused_is_a_clear_error_and_records_nothing(shop_with_consent_gaps, monkeypatch):
    from retentio.actions.channels import ChannelError
    from retentio.data.store.campaign_tables import Assignment
    from retentio.services.campaigns import run_campaign

    monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong")
    with SmtpSink(require_auth=True) as sink:
        ws = shop_with_consent_gaps(sink.settings(username="shop"))
        try:
            _email_playbook(ws)
            with pytest.raises(ChannelError, match=r"\[channels.email\] username/password_env: .*refused the login"):
                run_campaign(ws, "drop", AS_OF)
            with ws.store.session() as s:
                assert s.scalar(select(func.count()).select_from(Assignment)) == 0
            assert sink.messages == []
            monkeypatch.setenv("TEST_SMTP_PASSWORD", "secret")
            assert run_campaign(ws, "drop", AS_OF).sent > 0  # the right password: it goes
        finally:
            ws.close()


def test_a_missing_password_variable_names_the_setting(shop_with_consent_gaps, monkeypatch):
    from retentio.actions.channels import ChannelError
    from retentio.services.campaigns import run_campaign

    monkeypatch.delenv("TEST_SMTP_PASSWORD", raising=False)
    with SmtpSink() as sink:
        ws = shop_with_consent_gaps(sink.settings(username="shop"))
        try:
            _email_playbook(ws)
            with pytest.raises(ChannelError, match=r"\[channels.email\] password_env: .*TEST_SMTP_PASSWORD is not set"):
                run_campaign(ws, "drop", AS_OF)
        finally:
            ws.close()


# ------------------------------------------------------------------------------ webhook
def _hook_playbook(ws, holdout=0):
    write_playbook(ws.path, "sms", playbook("sms", "early_access", trigger='occurrence = "sms"', channel="webhook",
                                            holdout=holdout, consent="sms"))


def test_webhook_requests_are_signed_retried_on_503_and_not_on_400(tmp_path, store_url, monkeypatch):
    from retentio.actions.channels.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
    from retentio.services.campaigns import run_campaign

    monkeypatch.setenv("TEST_HOOK_SECRET", SECRET)

    def answer(customer: str, attempt: int) -> int:
        if customer == "A":
            return 503 if attempt == 1 else 200
        if customer == "B":
            return 400
        if customer == "C":
            return 429 if attempt < 3 else 200
        return 200

    with HookServer(answer) as hook:
        ws = make_workspace(tmp_path / "ws", store_url, settings=RULES + hook.settings())
        try:
            _hook_playbook(ws)
            result = run_campaign(ws, "sms", AS_OF, wait_s=10)
            for r in hook.requests:
                h = {k.lower(): v for k, v in r["headers"].items()}
                assert verify_signature(SECRET.encode(), h[TIMESTAMP_HEADER.lower()], r["body"],
                                        h[SIGNATURE_HEADER.lower()])
                assert not verify_signature(b"other", h[TIMESTAMP_HEADER.lower()], r["body"],
                                            h[SIGNATURE_HEADER.lower()])
                assert h["idempotency-key"] == r["json"]["message_id"]
                assert r["json"]["to"].startswith("+7900")  # the phone: consent = "sms"
            tries = pd.Series([r["json"]["customer_id"] for r in hook.requests]).value_counts()
            assert tries["A"] == 2 and tries["B"] == 1 and tries["C"] == 3
            assert (tries.drop(["A", "B", "C"]) == 1).all()
            box = _outbox(ws).set_index("customer_id")
            assert box.loc["B", "status"] == "failed" and "400" in box.loc["B", "detail"]
            assert (box.drop("B").status == "sent").all()
            assert (result.sent, result.failed) == (len(IDS) - 1, 1)
            # a tampered body does not verify
            r = hook.requests[0]
            h = {k.lower(): v for k, v in r["headers"].items()}
            assert not verify_signature(SECRET.encode(), h[TIMESTAMP_HEADER.lower()], r["body"] + b" ",
                                        h[SIGNATURE_HEADER.lower()])
        finally:
            ws.close()


def test_a_webhook_that_times_out_is_retried_then_failed_with_the_setting_named(tmp_path, store_url, monkeypatch):
    from retentio.services.campaigns import run_campaign

    monkeypatch.setenv("TEST_HOOK_SECRET", SECRET)
    with HookServer(delay_s=1.0) as hook:
        ws = make_workspace(tmp_path / "ws", store_url,
                            settings=RULES + "max_attempts = 2\n" + hook.settings(timeout_s=0.2))
        customers = ws.table("customers").to_pandas().head(2)
        ws.close()
        ws.load("customers", customers, mode="replace")
        try:
            _hook_playbook(ws)
            result = run_campaign(ws, "sms", AS_OF, wait_s=5)
            box = _outbox(ws)
            assert (result.sent, result.failed) == (0, 2)
            assert set(box.status) == {"failed"} and (box.attempts == 2).all()
            assert box.detail.str.contains(r"timed out after 0.2 s \(\[channels.webhook\] timeout_s\)").all()
        finally:
            ws.close()


# ------------------------------------------------------------------------------ bad input
def test_an_unknown_kind_names_the_file_and_the_field(tmp_path):
    from retentio.actions.playbooks import PlaybookError, read_playbook

    write_playbook(tmp_path, "x", playbook("x", "win_back"))
    with pytest.raises(PlaybookError) as e:
        read_playbook(tmp_path, "x")
    assert str(tmp_path / "playbooks" / "x.toml") in str(e.value) and "kind" in str(e.value)
    assert "winback" in str(e.value)  # the kinds it knows


def test_a_missing_holdout_must_be_written_out(tmp_path):
    from retentio.actions.playbooks import PlaybookError, read_playbook

    write_playbook(tmp_path, "x", playbook("x", "winback").replace("[holdout]\npercent = 0\n", ""))
    with pytest.raises(PlaybookError, match=r"x.toml: holdout: missing: write percent = 0"):
        read_playbook(tmp_path, "x")


def test_a_missing_template_variable_stops_the_plan_with_its_line(tmp_path):
    from retentio.actions.templates import TemplateProblem
    from retentio.services.campaigns import plan_campaign

    ws = make_workspace(tmp_path / "ws", settings=RULES)
    try:
        write_playbook(ws.path, "winback", playbook("winback", text="Hello {{ first_name }}\nYour {{ coupon }}"))
        with pytest.raises(TemplateProblem) as e:
            plan_campaign(ws, "winback", AS_OF)
        message = str(e.value)
        assert "winback.toml" in message and "[message] text, line 2" in message and "'coupon'" in message
        # a customer field that does not exist is caught when the message is rendered
        write_playbook(ws.path, "winback", playbook("winback", text="Hello {{ customer.shoe_size }}"))
        with pytest.raises(TemplateProblem, match=r"\[message\] text, line 1.*shoe_size.*customer A"):
            plan_campaign(ws, "winback", AS_OF)
    finally:
        ws.close()


@pytest.mark.parametrize("attack", [
    "{{ customer.__class__.__mro__ }}",
    "{{ offer.text.__class__.__base__.__subclasses__() }}",
    "{{ first_name.format.__globals__ }}",
    "{{ picks.append(1) }}",
    "{% for x in range(10**9) %}{% endfor %}",
])
def test_a_template_cannot_reach_python_internals(tmp_path, attack):
    from retentio.actions.templates import TemplateProblem
    from retentio.services.campaigns import plan_campaign, run_campaign

    ws = make_workspace(tmp_path / "ws", settings=RULES)
    try:
        write_playbook(ws.path, "winback", playbook("winback", text="Hi " + attack))
        with pytest.raises(TemplateProblem, match=r"winback.toml: \[message\] text, line 1"):
            plan_campaign(ws, "winback", AS_OF)
        with pytest.raises(TemplateProblem):
            run_campaign(ws, "winback", AS_OF)
        from retentio.data.store.campaign_tables import Assignment

        with ws.store.session() as s:  # nothing recorded, nothing half-sent
            assert s.scalar(select(func.count()).select_from(Assignment)) == 0
        assert not (ws.path / "exports" / "winback.csv").exists()
    finally:
        ws.close()


def test_html_is_escaped_and_text_is_not(tmp_path):
    from retentio.actions.templates import MessageTemplate

    t = MessageTemplate.compile("p.toml", {"text": "Hi {{ first_name }}", "html": "<p>Hi {{ first_name }}</p>"})
    out = t.render({"first_name": "<b>Ann</b>"})
    assert out == {"text": "Hi <b>Ann</b>", "html": "<p>Hi &lt;b&gt;Ann&lt;/b&gt;</p>"}


def test_suppression_files_name_the_bad_line(tmp_path, store_url):
    from retentio.actions.suppression_files import SuppressionFileError
    from retentio.services.campaigns import import_suppressions, suppressions

    ws = make_workspace(tmp_path / "ws", store_url)
    try:
        good = tmp_path / "bounces.csv"
        good.write_text("email,event,bounce_type,timestamp\nA@example.com,bounce,hard,2026-06-01\n"
                        "b@example.com,spamreport,,2026-06-02\nc@example.com,bounce,soft,2026-06-03\n"
                        "d@example.com,unsubscribe,,2026-06-04\n", encoding="utf-8")
        assert import_suppressions(ws, good)["added"] == 4
        kinds = suppressions(ws).set_index("address").kind.to_dict()
        assert kinds == {"a@example.com": "hard_bounce", "b@example.com": "complaint",
                         "c@example.com": "soft_bounce", "d@example.com": "unsubscribe"}
        bad = tmp_path / "bad.csv"
        bad.write_text("email,event\ne@example.com,unsubscribe\nnot-an-address,bounce\n", encoding="utf-8")
        with pytest.raises(SuppressionFileError, match=r"bad.csv, line 3, column 'email': 'not-an-address' is not"):
            import_suppressions(ws, bad)
        worse = tmp_path / "worse.csv"
        worse.write_text("email,event\nf@example.com,exploded\n", encoding="utf-8")
        with pytest.raises(SuppressionFileError, match=r"worse.csv, line 2, column 'event': unknown kind 'exploded'"):
            import_suppressions(ws, worse)
        assert len(suppressions(ws)) == 4  # nothing of the bad files was stored
    finally:
        ws.close()


def test_unsubscribe_tokens_verify_and_refuse_tampering(tmp_path):
    from retentio.actions.unsubscribe import make_token, verify_token, workspace_secret
    from retentio.data.errors import RetentioError

    secret = workspace_secret(tmp_path)
    assert oct((tmp_path / ".retentio-secret").stat().st_mode & 0o777) == "0o600"
    assert workspace_secret(tmp_path) == secret  # stable
    token = make_token(secret, "C42", "email", "winback", AS_OF)
    asked = verify_token(secret, token)
    assert (asked.customer_id, asked.channel, asked.campaign, asked.issued) == ("C42", "email", "winback", AS_OF)
    forged = make_token(secret, "C43", "email", "winback", AS_OF).split(".")[0] + "." + token.split(".")[1]
    with pytest.raises(RetentioError, match="signature does not match"):
        verify_token(secret, forged)
    with pytest.raises(RetentioError, match="signature does not match"):
        verify_token(b"another workspace", token)


def test_cli_plan_run_why_and_suppress_speak_json(tmp_path):
    """The commands end to end on the shop, in a real process, with --json."""
    import json

    ws = make_workspace(tmp_path / "ws", settings=RULES)
    ws.close()
    write_playbook(ws.path, "winback", playbook("winback"))

    def cli(*args):
        p = subprocess.run([sys.executable, "-m", "retentio.faces.entry", "-w", str(ws.path), *args, "--json"],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    listed = cli("playbook", "list")
    assert [(r["name"], r["kind"]) for r in listed] == [("winback", "winback")]
    plan = cli("campaign", "plan", "winback", "--as-of", str(AS_OF))
    assert (plan["triggered"], plan["messages"]) == (1, 1) and plan["samples"][0]["customer_id"] == "A"
    run = cli("campaign", "run", "winback", "--as-of", str(AS_OF))
    assert (run["treatment"], run["sent"]) == (1, 1)
    assert cli("campaign", "list")[0]["run_id"] == run["run_id"]
    assert cli("campaign", "show", str(run["run_id"]))["messages"] == {"sent": 1}
    assert cli("campaign", "why", "A", "winback")[0]["message"] == "sent"
    assert cli("suppress", "add", "a@example.com")["added"] == 1
    assert cli("suppress", "list")[0]["address"] == "a@example.com"
    made = cli("playbook", "new", "birthday", "bday", "--lang", "ru")
    assert made["path"].endswith("bday.toml")
    assert cli("playbook", "check", "bday")["ok"] is True
    bad = subprocess.run([sys.executable, "-m", "retentio.faces.entry", "-w", str(ws.path), "campaign", "plan",
                          "nope"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "no such playbook" in bad.stderr and "Traceback" not in bad.stderr


# ------------------------------------------------------------------------------ review findings
def test_a_slow_live_sender_keeps_its_claim_and_nothing_goes_twice(tmp_path, monkeypatch):
    """Two senders, a lease shorter than a batch takes: the first renews its claim as it
    goes, so the second never takes over rows the first is still sending."""
    import threading

    from retentio.actions.campaigns import plan, record
    from retentio.actions.channels.webhook import WebhookChannel
    from retentio.actions.outbox import deliver
    from retentio.actions.playbooks import read_playbook

    monkeypatch.setenv("TEST_HOOK_SECRET", SECRET)
    with HookServer(delay_s=0.05) as hook:
        ws = make_workspace(tmp_path / "ws", settings=RULES + hook.settings())
        try:
            _hook_playbook(ws)
            record(ws, plan(ws, read_playbook(ws.path, "sms"), AS_OF, samples=0))
            results = []

            def sender(name: str) -> None:
                results.append(deliver(ws.store, WebhookChannel(ws.settings.channels.webhook, os.environ),
                                       worker=f"host:1:{name}", lease_s=0.3, batch=len(IDS)))

            threads = [threading.Thread(target=sender, args=(n,)) for n in ("a", "b")]
            for t in threads:
                t.start()
                time.sleep(0.4)  # b starts after a's lease would have run out without renewal
            for t in threads:
                t.join()
            ids = pd.Series([r["json"]["message_id"] for r in hook.requests])
            assert not ids.duplicated().any() and len(ids) == len(IDS)
            assert set(_outbox(ws).status) == {"sent"}
        finally:
            ws.close()


def test_one_message_that_cannot_be_sent_fails_alone(tmp_path):
    from retentio.actions.campaigns import plan, record
    from retentio.actions.outbox import deliver
    from retentio.actions.playbooks import read_playbook
    from retentio.data.store.campaign_tables import OutboxMessage

    with SmtpSink() as sink:
        ws = make_workspace(tmp_path / "ws", settings=RULES + sink.settings())
        try:
            _email_playbook(ws, holdout=0)
            record(ws, plan(ws, read_playbook(ws.path, "drop"), AS_OF, samples=0))
            with ws.store.session() as s:  # an address no message can carry
                s.execute(OutboxMessage.__table__.update().where(OutboxMessage.customer_id == "B")
                          .values(to_address="b@example.com\nBcc: everyone@example.com"))
            from retentio.actions.channels.email import EmailChannel

            counts = deliver(ws.store, EmailChannel(ws.settings.channels.email, {}), worker="host:1:x")
            box = _outbox(ws).set_index("customer_id")
            assert (counts.sent, counts.failed) == (len(IDS) - 1, 1)
            assert box.loc["B", "status"] == "failed" and "cannot build" in box.loc["B", "detail"]
            assert len(sink.messages) == len(IDS) - 1
        finally:
            ws.close()


def test_a_subject_with_a_line_break_is_a_template_error(tmp_path):
    from retentio.actions.templates import MessageTemplate, TemplateProblem

    t = MessageTemplate.compile("p.toml", {"subject": "Hi {{ first_name }}", "text": "x"})
    with pytest.raises(TemplateProblem, match=r"\[message\] subject: a subject must be one line"):
        t.render({"first_name": "Ann\nBcc: x@example.com", "customer": {"customer_id": "C1"}})


def test_the_csv_export_cuts_a_half_written_record_and_writes_it_again(tmp_path):
    import csv

    from retentio.actions.channels.base import OutgoingMessage
    from retentio.actions.channels.csv_export import CsvChannel

    path = tmp_path / "x.csv"
    ids = [f"{i:032x}" for i in range(3)]
    channel = CsvChannel(path)
    channel.open()
    for i in ids:
        channel.send(OutgoingMessage(i, "x", "C", "a@b.c", "s", "line one\nline two\r\nline three"))
    channel.close()
    path.write_bytes(path.read_bytes()[:-15])  # a kill in the middle of the last record
    channel = CsvChannel(path)
    channel.open()
    assert channel.written == set(ids[:2])
    channel.send(OutgoingMessage(ids[2], "x", "C", "a@b.c", "s", "line one\nline two\r\nline three"))
    channel.close()
    rows = list(csv.DictReader(path.open(newline="", encoding="utf-8")))
    assert [r["message_id"] for r in rows] == ids
    assert rows[2]["text"] == "line one\nline two\r\nline three"


def test_quiet_hours_hold_at_send_time(tmp_path):
    import datetime as dt

    from retentio.actions.campaigns import plan, record
    from retentio.actions.outbox import deliver
    from retentio.actions.playbooks import read_playbook
    from tests.campaign_data import NOON

    with SmtpSink() as sink:
        ws = make_workspace(tmp_path / "ws", settings=RULES + sink.settings())
        try:
            _email_playbook(ws, holdout=0)
            record(ws, plan(ws, read_playbook(ws.path, "drop"), AS_OF, now=NOON, samples=0))  # due at noon
            from retentio.actions.channels.email import EmailChannel

            later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)
            counts = deliver(ws.store, EmailChannel(ws.settings.channels.email, {}), worker="host:1:x",
                             quiet=lambda _now: later)  # it is quiet now: everything waits
            assert (counts.sent, counts.deferred) == (0, len(IDS)) and sink.messages == []
            assert set(_outbox(ws).status) == {"pending"}
        finally:
            ws.close()


def test_webhook_consent_decides_the_address(tmp_path, monkeypatch):
    from retentio.services.campaigns import plan_campaign

    monkeypatch.setenv("TEST_HOOK_SECRET", SECRET)
    ws = make_workspace(tmp_path / "ws", settings=RULES)
    try:
        customers = ws.table("customers").to_pandas()
        customers["consent_sms"] = customers.customer_id != "A"
        customers["consent_email"] = customers.customer_id != "B"
        ws.close()
        ws.load("customers", customers, mode="replace")
        for consent in ("email", "sms"):
            write_playbook(ws.path, "hook", playbook("hook", "early_access", trigger='occurrence = "h"',
                                                     channel="webhook", consent=consent))
            f = plan_campaign(ws, "hook", AS_OF).frame.set_index("customer_id")
            if consent == "email":
                assert f.loc["C", "address"] == "c@example.com" and f.loc["B", "reason"] == "no_consent"
                assert f.loc["A", "reason"] is None
            else:
                assert f.loc["C", "address"].startswith("+7900") and f.loc["A", "reason"] == "no_consent"
                assert f.loc["B", "reason"] is None
    finally:
        ws.close()


def test_a_service_message_cannot_carry_an_offer(tmp_path):
    from retentio.actions.playbooks import PlaybookError, parse_playbook

    with pytest.raises(PlaybookError, match="service.*cannot carry an offer"):
        parse_playbook(playbook("x", "renewal", message_class="service"), tmp_path / "x.toml")


def test_phone_suppressions_match_however_the_number_is_written(tmp_path, store_url):
    from retentio.services.campaigns import plan_campaign, suppress

    ws = make_workspace(tmp_path / "ws", store_url, settings=RULES)
    try:
        write_playbook(ws.path, "sms", playbook("sms", "early_access", trigger='occurrence = "s"', consent="sms"))
        suppress(ws, "+7 900 000-00-03", channel="sms", kind="unsubscribe")  # D's +79000000003
        f = plan_campaign(ws, "sms", AS_OF).frame.set_index("customer_id")
        assert f.loc["D", "reason"] == "unsubscribed" and f.reason.notna().sum() == 1
    finally:
        ws.close()


def test_the_same_soft_bounce_imported_twice_counts_once(tmp_path, store_url):
    from retentio.services.campaigns import import_suppressions, plan_campaign

    ws = make_workspace(tmp_path / "ws", store_url, settings=RULES)
    try:
        _email_playbook(ws, holdout=0)
        bounces = tmp_path / "soft.csv"
        bounces.write_text("email,event,bounce_type,timestamp\na@example.com,bounce,soft,2026-06-01T10:00:00Z\n",
                           encoding="utf-8")
        for _ in range(3):
            import_suppressions(ws, bounces)
        assert plan_campaign(ws, "drop", AS_OF).frame.set_index("customer_id").loc["A", "reason"] is None
        bounces.write_text("email,event,bounce_type,timestamp\na@example.com,bounce,soft,2026-06-02T10:00:00Z\n"
                           "a@example.com,bounce,soft,2026-06-03T10:00:00Z\n", encoding="utf-8")
        import_suppressions(ws, bounces)  # three different soft bounces in a row: suppressed
        assert plan_campaign(ws, "drop", AS_OF).frame.set_index("customer_id").loc["A", "reason"] == "bounced"
    finally:
        ws.close()


def test_the_unsubscribe_link_of_a_sent_message_suppresses_its_customer(shop_with_consent_gaps):
    from urllib.parse import parse_qs, urlsplit

    from retentio.services.campaigns import plan_campaign, run_campaign, unsubscribe

    with SmtpSink() as sink:
        ws = shop_with_consent_gaps(sink.settings())
        try:
            _email_playbook(ws, holdout=0)
            run_campaign(ws, "drop", AS_OF)
            message = sink.messages[0]
            link = message["List-Unsubscribe"].strip("<>")
            token = parse_qs(urlsplit(link).query)["token"][0]
            who = message["To"].split("@")[0].upper()
            assert unsubscribe(ws, token) == {"customer_id": who, "channel": "email", "campaign": "drop"}
            write_playbook(ws.path, "next", playbook("next", "early_access", trigger='occurrence = "n"',
                                                     channel="email"))
            assert plan_campaign(ws, "next", AS_OF).frame.set_index("customer_id").loc[who, "reason"] == \
                "unsubscribed"
        finally:
            ws.close()


def test_a_loopback_unsubscribe_url_is_refused_for_real_email(tmp_path):
    from retentio.actions.channels import ChannelError
    from retentio.services.campaigns import run_campaign

    settings = RULES + '[channels.email]\nhost = "smtp.example.com"\nsender = "shop@example.com"\n'
    ws = make_workspace(tmp_path / "ws", settings=settings)
    try:
        _email_playbook(ws)
        with pytest.raises(ChannelError, match=r"\[campaigns\] unsubscribe_url: .*points at this machine"):
            run_campaign(ws, "drop", AS_OF)
    finally:
        ws.close()


def test_control_and_treatment_cross_processes_share_the_cap(tmp_path, store_url):
    """Two campaigns planned before either is recorded (two processes at once): the
    second to record finds the customers' last place taken."""
    from retentio.actions.campaigns import plan, record
    from retentio.actions.playbooks import read_playbook

    ws = make_workspace(tmp_path / "ws", store_url, settings=RULES + "frequency_cap = 1\n")
    try:
        for name in ("one", "two"):
            write_playbook(ws.path, name, playbook(name, "early_access", trigger=f'occurrence = "{name}"'))
        plans = [plan(ws, read_playbook(ws.path, n), AS_OF, samples=0) for n in ("one", "two")]
        assert all(p.counts()["messages"] == len(IDS) for p in plans)  # each alone fits
        first, second = (record(ws, p) for p in plans)
        assert first.queued == len(IDS) and second.queued == 0
        assert second.counts["suppressed"] == {"frequency_cap": len(IDS)}
    finally:
        ws.close()


@pytest.mark.parametrize("tls", ["starttls", "ssl"])
def test_email_over_tls_verifies_the_server(tmp_path, tls):
    from retentio.actions.channels import ChannelError
    from retentio.services.campaigns import run_campaign
    from tests.servers import self_signed

    cert = self_signed(tmp_path)
    with SmtpSink(tls=tls, cert=cert) as sink:
        ws = make_workspace(tmp_path / "untrusted", settings=RULES + sink.settings())
        try:
            _email_playbook(ws, holdout=0)
            with pytest.raises(ChannelError, match=r"\[channels.email\] security/ca_file: TLS .* failed"):
                run_campaign(ws, "drop", AS_OF)  # a certificate nobody vouches for: nothing recorded or sent
            assert sink.messages == []
        finally:
            ws.close()
        ws = make_workspace(tmp_path / "trusted", settings=RULES + sink.settings(ca_file=cert[0]))
        try:
            _email_playbook(ws, holdout=0)
            assert run_campaign(ws, "drop", AS_OF).sent == len(IDS) == len(sink.messages)
        finally:
            ws.close()


def test_several_senders_at_once_send_each_message_once(tmp_path, store_url, monkeypatch):
    """Three sender processes on one outbox (rows claimed FOR UPDATE SKIP LOCKED on
    PostgreSQL; SQLite serialises the writers): every message once."""
    from retentio.actions.campaigns import plan, record
    from retentio.actions.playbooks import read_playbook

    monkeypatch.setenv("TEST_HOOK_SECRET", SECRET)
    with HookServer(delay_s=0.02) as hook:
        ws = make_workspace(tmp_path / "ws", store_url, settings=RULES + hook.settings())
        try:
            customers = ws.table("customers").to_pandas()
            many = pd.concat([customers.assign(customer_id=customers.customer_id + str(k),
                                               phone=customers.phone + str(k)) for k in range(10)])
            ws.close()
            ws.load("customers", many, mode="replace")
            _hook_playbook(ws)
            record(ws, plan(ws, read_playbook(ws.path, "sms"), AS_OF, samples=0))
            ws.close()
            senders = [_run_in_process(ws.path, "campaign", "send", "--json") for _ in range(3)]
            outputs = [s.communicate(timeout=120) for s in senders]
            assert all(s.returncode == 0 for s in senders), [e.decode() for _, e in outputs]
            ids = pd.Series([r["json"]["message_id"] for r in hook.requests])
            assert len(ids) == len(many) and not ids.duplicated().any()
            assert set(_outbox(ws).status) == {"sent"}
        finally:
            ws.close()


def test_russian_subject_and_body_arrive_intact(tmp_path):
    from retentio.services.campaigns import run_campaign

    with SmtpSink() as sink:
        ws = make_workspace(tmp_path / "ws", settings=RULES + sink.settings())
        try:
            write_playbook(ws.path, "ru", playbook(
                "ru", "early_access", trigger='occurrence = "ru"', channel="email", holdout=0,
                text="Здравствуйте, {{ first_name }}! Скидка для вас.", html="<p>Привет, {{ first_name }}</p>")
                .replace('subject = "For you, {{ first_name }}"', 'subject = "Для вас, {{ first_name }} — 10 %"'))
            run_campaign(ws, "ru", AS_OF)
            m = next(m for m in sink.messages if m["To"] == "a@example.com")
            assert m["Subject"] == "Для вас, NameA — 10 %"
            assert m.get_body(("plain",)).get_content().strip() == "Здравствуйте, NameA! Скидка для вас."
            assert "Привет, NameA" in m.get_body(("html",)).get_content()
        finally:
            ws.close()
