"""The campaign commands: ``playbook``, ``campaign`` and ``suppress``. Thin: each calls
:mod:`retentio.services.campaigns` and prints (tables on the terminal, ``--json`` on stdout)."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from retentio.faces.cli import HELP, DayOpt, JsonOpt, WorkspaceOpt, _records, _workspace, app
from retentio.faces.output import err, escape, out, print_json, print_table, progress

playbook_app = typer.Typer(help="Playbooks: retention campaigns as TOML files (trigger → audience → offer → "
                                "message → channel).", no_args_is_help=True, **HELP)
campaign_app = typer.Typer(help="Campaigns: plan (dry run), run (record, then send exactly once), and look back.",
                           no_args_is_help=True, **HELP)
suppress_app = typer.Typer(help="Suppression lists: unsubscribes, bounces, complaints, manual entries.",
                           no_args_is_help=True, **HELP)
app.add_typer(playbook_app, name="playbook")
app.add_typer(campaign_app, name="campaign")
app.add_typer(suppress_app, name="suppress")

KindArg = Annotated[Literal["winback", "churn_risk", "birthday", "abandoned_cart", "wishlist", "viewed_item",
                            "renewal", "replenishment", "onboarding", "early_access", "thank_you",
                            "detractor_followup", "nps_survey", "csat_after_ticket", "exit_survey",
                            "feedback_reply"], typer.Argument(help="The kind of playbook")]
NameArg = Annotated[str, typer.Argument(help="The playbook's name (playbooks/NAME.toml)")]
AsOfOpt = Annotated[datetime.date | None, DayOpt("--as-of", "Decide as of this day [default: the end of the data]")]


# ---------------------------------------------------------------------- playbook
@playbook_app.command("list")
def playbook_list(ctx: typer.Context, workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """The workspace's playbooks, with kind, channel and holdout."""
    from retentio.services.campaigns import playbook_summaries

    with _workspace(ctx, workspace) as ws:
        rows = playbook_summaries(ws)
    if json:
        print_json(rows)
        return
    if not rows:
        err.print("no playbooks yet: retentio playbook new KIND NAME")
        return
    print_table(rows, title="Playbooks", columns=["name", "kind", "channel", "offer", "holdout_pct", "problem"])


@playbook_app.command("new")
def playbook_new(
    ctx: typer.Context,
    kind: KindArg,
    name: NameArg,
    channel: Annotated[Literal["email", "webhook", "csv"], typer.Option(help="How messages go out")] = "csv",
    lang: Annotated[Literal["en", "ru"], typer.Option(help="Language of the message")] = "en",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing playbook of that name")] = False,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Write a commented, ready-to-run playbook of KIND as playbooks/NAME.toml."""
    from retentio.services.campaigns import new_playbook

    with _workspace(ctx, workspace) as ws:
        path = new_playbook(ws, kind, name, channel=channel, lang=lang, force=force)
    if json:
        print_json({"playbook": name, "kind": kind, "path": str(path)})
        return
    err.print(f"[green]written:[/] {escape(str(path))} — edit it, then: retentio campaign plan {name}")


@playbook_app.command("show")
def playbook_show(ctx: typer.Context, name: NameArg, workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """A playbook as Retentio reads it (every default filled in)."""
    from retentio.services.campaigns import read

    with _workspace(ctx, workspace) as ws:
        pb = read(ws, name)
    if json:
        print_json(pb.as_dict())
        return
    d = pb.as_dict()
    rows = [{"section": k, "settings": _short(v)} for k, v in d.items() if k not in ("message", "path")]
    print_table(rows, title=f"{name} ({pb.kind}) — {pb.path}")
    out.print(f"[bold]subject:[/] {escape(pb.message.subject)}")
    out.print(escape(pb.message.text))


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items() if v not in (None, "", [], {}, ()))
    return str(value)


@playbook_app.command("check")
def playbook_check(ctx: typer.Context, name: NameArg, workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Validate a playbook and render its message once with every variable set."""
    from retentio.services.campaigns import check_playbook

    with _workspace(ctx, workspace) as ws:
        result = check_playbook(ws, name)
    if json:
        print_json({"playbook": name, "ok": True, "sample": result.sample})
        return
    err.print(f"[green]ok:[/] {name} ({result.playbook.kind}) reads and renders")
    for field, text in result.sample.items():
        out.print(f"[bold]{field}:[/] {escape(text)}")


# ---------------------------------------------------------------------- campaign
@campaign_app.command("plan")
def campaign_plan(ctx: typer.Context, name: NameArg, as_of: AsOfOpt = None, workspace: WorkspaceOpt = None,
                  json: JsonOpt = False) -> None:
    """Dry run: who would get what, who not and why, the estimated cost, three sample messages. Writes nothing."""
    from retentio.services.campaigns import plan_campaign

    with _workspace(ctx, workspace) as ws:
        with progress(f"planning {name}") as step:
            p = plan_campaign(ws, name, as_of, progress=step)
    if json:
        print_json({"campaign": name, "as_of": p.as_of, **p.counts, "samples": p.samples,
                    "snapshot_id": p.snapshot_id, "model_version": p.model_version})
        return
    c = p.counts
    rows = [{"step": "triggered", "customers": c["triggered"]},
            {"step": "not in the audience", "customers": c["not_in_audience"]}]
    rows += [{"step": f"excluded: {k}", "customers": v} for k, v in c["excluded"].items()]
    rows += [{"step": "already acted on", "customers": c["already_acted_on"]}]
    if c.get("not_persuadable"):
        rows += [{"step": "not persuadable (uplift model)", "customers": c["not_persuadable"]}]
    rows += [{"step": "eligible (randomised)", "customers": c["eligible"]},
             {"step": "  treatment", "customers": c["treatment"]},
             {"step": "  control", "customers": c["control"]}]
    rows += [{"step": f"  suppressed: {k.replace('_', ' ')}", "customers": v} for k, v in c["suppressed"].items()]
    rows += [{"step": "messages to send", "customers": c["messages"]},
             {"step": "control: recorded, not sent", "customers": c["control_would_receive"]}]
    print_table(rows, title=f"Plan of {name} as of {p.as_of} (nothing written)")
    if c["deferred"]:
        err.print(f"[yellow]quiet hours now:[/] {c['deferred']:,} messages would wait until they end")
    err.print(f"estimated cost: {c['estimated_cost']:,.2f}")
    for s in p.samples:
        out.rule(f"to {escape(str(s['to']))} (customer {escape(str(s['customer_id']))})")
        if s.get("subject"):
            out.print(f"[bold]{escape(s['subject'])}[/]")
        out.print(escape(s.get("text", "")))


class _SendBar:
    """Progress stages for planning, then a count of messages sent."""

    def __init__(self, step: Any):
        self.step, self.sent = step, 0

    def __call__(self, stage: str) -> None:
        if stage == "sent":
            self.sent += 1
            if self.sent % 100 == 0 or self.sent < 100:
                self.step(f"{self.sent:,} sent")
        else:
            self.step(stage)


@campaign_app.command("run")
def campaign_run(ctx: typer.Context,
                 name: Annotated[str | None, typer.Argument(help="The playbook to run (or --all)")] = None,
                 all_: Annotated[bool, typer.Option("--all", help="Run every playbook together: they share the "
                                                    "frequency cap, the most valuable message wins")] = False,
                 as_of: AsOfOpt = None, workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Record the run (assignments, codes, outbox) in one transaction, then send each message exactly once."""
    from retentio.services.campaigns import run_campaigns

    if (name is None) == (not all_):
        raise typer.BadParameter("name one playbook, or --all")
    with _workspace(ctx, workspace) as ws:
        with progress("running " + (name or "every playbook")) as step:
            results = run_campaigns(ws, None if all_ else [name] if name else None, as_of, progress=_SendBar(step))
    if json:
        print_json(results[0].as_dict() if name else [r.as_dict() for r in results])
        return
    print_table([r.as_dict() | {"suppressed": sum(r.suppressed.values())} for r in results],
                title=f"Runs as of {results[0].as_of}",
                columns=["run_id", "campaign", "treatment", "control", "sent", "failed", "retry", "deferred",
                         "suppressed"])
    if any(r.retry or r.deferred for r in results):
        err.print("messages waiting (retries, quiet hours, a survey's weekday morning) go out with: "
                  "retentio campaign send — run it when they come due (e.g. hourly from cron)")


@campaign_app.command("send")
def campaign_send(ctx: typer.Context, workspace: WorkspaceOpt = None,
                  wait: Annotated[float, typer.Option(help="Seconds to wait for retries to come due")] = 0.0,
                  json: JsonOpt = False) -> None:
    """Send every message that is due: a killed run's, those held by quiet hours, retries."""
    from retentio.services.campaigns import deliver_due

    with _workspace(ctx, workspace) as ws:
        with progress("sending") as step:
            result = deliver_due(ws, progress=_SendBar(step), wait_s=wait)
    if json:
        print_json(result)
        return
    if not result:
        err.print("nothing due")
        return
    print_table([{"campaign": k, **v} for k, v in result.items()], title="Sent")


@campaign_app.command("list")
def campaign_list(ctx: typer.Context, workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Every run, newest first."""
    from retentio.services.campaigns import list_runs

    with _workspace(ctx, workspace) as ws:
        runs = list_runs(ws)
    if json:
        print_json(runs)
        return
    rows = [r | {"sent": r["messages"].get("sent", 0), "failed": r["messages"].get("failed", 0),
                 "waiting": sum(r["messages"].get(k, 0) for k in ("pending", "sending", "retry"))} for r in runs]
    print_table(rows, title="Campaign runs", columns=["run_id", "campaign", "as_of", "status", "treatment", "control",
                                                      "sent", "failed", "waiting"])


@campaign_app.command("show")
def campaign_show(ctx: typer.Context, run_id: Annotated[int, typer.Argument(help="The run's id (campaign list)")],
                  workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """One run: counts by stage and reason, messages by status, failures."""
    from retentio.services.campaigns import show_run

    with _workspace(ctx, workspace) as ws:
        run = show_run(ws, run_id)
    if json:
        print_json(run)
        return
    c = run["counts"]
    print_table([{"what": k, "count": v} for k, v in c.items() if isinstance(v, int)] +
                [{"what": f"suppressed: {k}", "count": v} for k, v in c.get("suppressed", {}).items()] +
                [{"what": f"messages {k}", "count": v} for k, v in run["messages"].items()] +
                [{"what": f"promo codes {k}", "count": v} for k, v in run["promo_codes"].items()],
                title=f"Run {run_id} of {run['campaign']} as of {run['as_of']} ({run['status']})")
    if run["failures"]:
        print_table(run["failures"], title="Failures")


@campaign_app.command("why")
def campaign_why(ctx: typer.Context, customer: Annotated[str, typer.Argument(help="The customer id")],
                 name: Annotated[str | None, typer.Argument(help="Only this playbook")] = None,
                 as_of: AsOfOpt = None, workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Why did (or didn't) this customer get a message?"""
    from retentio.services.campaigns import why

    with _workspace(ctx, workspace) as ws:
        rows = why(ws, customer, name, as_of)
    if json:
        print_json(rows)
        return
    if not rows:
        err.print(f"no campaign has decided anything about {customer} yet")
        return
    print_table(rows, title=f"Customer {customer}", columns=["campaign", "occurrence", "arm", "reason", "message",
                                                             "explanation"])


@campaign_app.command("measure")
def campaign_measure(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="One campaign (default: every campaign that has run)")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every campaign that has run (the default without NAME)")] = False,
    window: Annotated[int | None, typer.Option(min=1, max=365, help="Attribution window in days after the send "
                                                    "[default: the playbook's, else [campaigns] attribution_days]",
                                               show_default=False)] = None,
    metric: Annotated[Literal["conversion", "revenue", "retained"],
                      typer.Option(help="The headline metric (its p-values are adjusted and give the verdict)")]
    = "conversion",
    by: Annotated[Literal["channel", "tool", "playbook", "segment"] | None,
                  typer.Option(help="Break down by channel, tool (discount, free shipping, gift, points, no offer), "
                                    "playbook or RFM segment on the send day")] = None,
    winsor: Annotated[float, typer.Option(min=50, max=100, help="Cap revenue at this pooled percentile")] = 99.9,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Did it work? Uplift against the control group with 95 % intervals, incremental revenue, cost and ROI."""
    from retentio.services.measurement import MeasureParams, measure_campaigns

    names = None if all_ or name is None else [name]
    with _workspace(ctx, workspace) as ws:
        m = measure_campaigns(ws, MeasureParams(names, window, metric, by, winsor))
    if json:
        print_json(m.as_dict())
        return
    rows = [_measure_row(r, metric) for r in m.rows]
    if m.global_control:
        rows.append(_measure_row(m.global_control | {"group": "program vs global control"}, metric))
    print_table(rows, title=f"Campaign effect on {metric} ({m.level:.0%} intervals; by {by or 'campaign'})",
                columns=["group", "treated", "control", "treated rate", "control rate", "uplift", "incr. revenue",
                         "cost", "ROI", "verdict"])
    for r in m.rows + ([m.global_control] if m.global_control else []):
        if r["srm"]:
            err.print(f"[bold red]SAMPLE RATIO MISMATCH in {escape(r['group'])}[/] (p = {r['srm_p']:.2g}): the arms "
                      f"are not the planned split, so the assignment is broken; do not trust this effect")
    narrowed = [r["cuped_ci_narrowed_pct"] for r in m.rows if r["cuped_ci_narrowed_pct"] is not None]
    if narrowed:
        err.print(f"Revenue adjusted with CUPED (pre-period revenue): intervals {min(narrowed):.0f}–"
                  f"{max(narrowed):.0f} % narrower")
    err.print(f"Revenue capped at the {m.winsor_pct:g}th percentile; margin = {m.margin_basis}; "
              f"p-values adjusted: {m.adjustment}")
    if "window_open" in m.notes:
        err.print(f"[yellow]Some windows are still open[/] (data end {m.data_end}): those effects are partial")


def _pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f} %"


def _measure_row(r: dict[str, Any], metric: str) -> dict[str, Any]:
    e = r[metric]
    unit = metric != "revenue"
    if e["per_customer"] is None:
        uplift = "–"
    elif unit:
        uplift = f"{100 * e['per_customer']:+.1f} pp [{100 * e['per_customer_low']:+.1f}, " \
                 f"{100 * e['per_customer_high']:+.1f}]"
    else:
        uplift = f"{e['per_customer']:+,.1f} [{e['per_customer_low']:+,.1f}, {e['per_customer_high']:+,.1f}]"
    rev = r["revenue"]
    verdicts = {"srm": "SRM: not trustworthy", "positive": "works", "negative": "harms",
                "too_few": f"too few to tell (MDE {_pct(e['mde']) if unit else format(e['mde'] or 0, ',.0f')})"}
    return {"group": r["group"], "treated": r["treatment_n"], "control": r["control_n"],
            "treated rate": _pct(e["mean_t"]) if unit else f"{e['mean_t'] or 0:,.1f}",
            "control rate": _pct(e["mean_c"]) if unit else f"{e['mean_c'] or 0:,.1f}",
            "uplift": uplift,
            "incr. revenue": "–" if rev["incremental"] is None else
            f"{rev['incremental']:+,.0f} [{rev['incremental_low']:+,.0f}, {rev['incremental_high']:+,.0f}]",
            "cost": f"{r['cost']:,.0f}",
            "ROI": "–" if r["roi"] is None else f"{_pct(r['roi'], 0)} [{_pct(r['roi_low'], 0)}, {_pct(r['roi_high'], 0)}]",
            "verdict": verdicts[r["verdict"]]}


# ---------------------------------------------------------------------- suppress
ChannelOpt = Annotated[Literal["email", "sms"], typer.Option(help="The channel to suppress")]


@suppress_app.command("add")
def suppress_add(ctx: typer.Context,
                 address: Annotated[str | None, typer.Argument(help="An email address or phone number")] = None,
                 customer: Annotated[str | None, typer.Option(help="A customer id instead of an address")] = None,
                 channel: Annotated[str | None, typer.Option(help="email or sms [default: from the address]",
                                                                show_default=False)] = None,
                 kind: Annotated[Literal["unsubscribe", "hard_bounce", "soft_bounce", "complaint", "manual"],
                                 typer.Option(help="Why")] = "manual",
                 workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Stop a channel's marketing to an address (or a customer) for good."""
    from retentio.services.campaigns import suppress

    if channel is None and address is None:
        raise typer.BadParameter("with --customer, say which channel: --channel email or --channel sms")
    with _workspace(ctx, workspace) as ws:
        added = suppress(ws, address, channel=channel, kind=kind, customer_id=customer)
    ch = channel or ("email" if address and "@" in address else "sms")
    if json:
        print_json({"added": added, "channel": ch, "address": address, "customer_id": customer, "kind": kind})
        return
    err.print(f"[green]suppressed[/] ({ch}, {kind}): {escape(address or customer or '')}" if added
              else "already on the list")


@suppress_app.command("token")
def suppress_token(ctx: typer.Context, token: Annotated[str, typer.Argument(help="The token of an unsubscribe link")],
                   workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Unsubscribe as the link's one-click POST does (for tests and imports)."""
    from retentio.services.campaigns import unsubscribe

    with _workspace(ctx, workspace) as ws:
        done = unsubscribe(ws, token)
    if json:
        print_json(done)
        return
    err.print(f"[green]unsubscribed[/] customer {escape(done['customer_id'])} from {done['channel']}")


@suppress_app.command("import")
def suppress_import(ctx: typer.Context, file: Annotated[Path, typer.Argument(help="CSV or one address per line")],
                    channel: Annotated[str | None, typer.Option(help="email or sms [default: from each address]",
                                                                   show_default=False)] = None,
                    workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Import an unsubscribe, bounce or complaint list (hard bounces and complaints suppress at once,
    soft bounces after [campaigns] soft_bounce_limit in a row)."""
    from retentio.services.campaigns import import_suppressions

    with _workspace(ctx, workspace) as ws:
        result = import_suppressions(ws, file, channel)
    if json:
        print_json(result)
        return
    print_table([{"what": k, "count": v} for k, v in result.items()], title=f"Imported {file.name}")


@suppress_app.command("list")
def suppress_list(ctx: typer.Context, workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Everything on the suppression lists."""
    from retentio.services.campaigns import suppressions

    with _workspace(ctx, workspace) as ws:
        frame = suppressions(ws)
    if json:
        print_json(_records(frame))
        return
    print_table(_records(frame), title=f"Suppressions ({len(frame):,})")


__all__ = ["campaign_app", "playbook_app", "suppress_app"]
