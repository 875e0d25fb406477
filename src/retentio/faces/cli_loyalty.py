"""The ``loyalty`` commands: programs, the ledger (earn, redeem, balance, history, adjust,
transfer, expire, check), members (join, tier, pay), ``apply-orders`` and ``stats``.
Thin: each calls :mod:`retentio.services.loyalty` and prints (tables on the terminal,
``--json`` on stdout). A refused request exits 2 and writes nothing."""

from __future__ import annotations

import datetime
import getpass
import math
from typing import Annotated, Any, Literal

import typer

from retentio.faces.cli import HELP, DayOpt, JsonOpt, WorkspaceOpt, _workspace, app
from retentio.faces.output import err, escape, out, print_json, print_table, progress

loyalty_app = typer.Typer(help="Loyalty programs on a ledger that never loses or double-spends a point.",
                          no_args_is_help=True, **HELP)
program_app = typer.Typer(help="Loyalty programs: TOML files in the workspace's loyalty/ folder.",
                          no_args_is_help=True, **HELP)
app.add_typer(loyalty_app, name="loyalty")
loyalty_app.add_typer(program_app, name="program")

ProgramOpt = Annotated[str | None, typer.Option("--program", "-p", help="The program (loyalty/NAME.toml); may be "
                                                                         "left out when the workspace has one")]
CustomerArg = Annotated[str, typer.Argument(help="The customer's id")]
KeyOpt = Annotated[str, typer.Option("--key", help="Idempotency key: repeating a request with the same key returns "
                                                   "the first result and writes nothing")]
PointsOpt = Annotated[int, typer.Option("--points", min=1, help="Points (stamps for a stamp card)")]
OrderOpt = Annotated[str | None, typer.Option("--order", help="The order it belongs to")]
AtOpt = Annotated[datetime.date | None, DayOpt("--at", "Business day of the request [default: now]")]
ActorOpt = Annotated[str | None, typer.Option("--actor", help="Who does it (written on every entry) "
                                                              "[default: the system user]", show_default=False)]


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _at(day: datetime.date | None) -> datetime.datetime | None:
    return datetime.datetime.combine(day, datetime.time()) if day else None


def _result(result: dict[str, Any], json: bool, message: str) -> None:
    if json:
        print_json(result)
        return
    if result.get("replayed"):
        err.print("[yellow]already done with this key:[/] the first result, nothing written")
    out.print(message)


# ---------------------------------------------------------------------- programs
@program_app.command("add")
def program_add(
    ctx: typer.Context,
    kind: Annotated[Literal["points", "discount", "stamps", "membership", "cashback"],
                    typer.Argument(help="The kind of program")],
    name: Annotated[str, typer.Argument(help="The program's name (loyalty/NAME.toml)")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing program of that name")] = False,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Write a commented, ready-to-use program of KIND as loyalty/NAME.toml."""
    from retentio.services.loyalty import add_program

    with _workspace(ctx, workspace) as ws:
        path = add_program(ws, kind, name, force=force)
    if json:
        print_json({"program": name, "kind": kind, "path": str(path)})
        return
    err.print(f"[green]written:[/] {path} — edit it, then `retentio loyalty apply-orders`")


@program_app.command("list")
def program_list(ctx: typer.Context, workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """The workspace's loyalty programs."""
    from retentio.services.loyalty import program_summaries

    with _workspace(ctx, workspace) as ws:
        rows = program_summaries(ws)
    if json:
        print_json(rows)
        return
    if not rows:
        err.print("no loyalty programs yet: retentio loyalty program add KIND NAME")
        return
    print_table(rows, title="Loyalty programs", columns=["name", "kind", "point_value", "tiers", "expiry", "returns",
                                                         "problem"])


@program_app.command("show")
def program_show(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The program's name")],
                 workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """A program's settings, as read and validated."""
    from retentio.services.loyalty import program

    with _workspace(ctx, workspace) as ws:
        p = program(ws, name)
    data = p.as_dict()
    if json:
        print_json(data)
        return
    rows = [{"setting": k, "value": v} for k, v in data.items() if v not in (None, "", {}, [])]
    print_table(rows, title=f"Program {name}", columns=["setting", "value"])


# ---------------------------------------------------------------------- the ledger
@loyalty_app.command("earn")
def earn(ctx: typer.Context, customer: CustomerArg, points: PointsOpt, key: KeyOpt, order: OrderOpt = None,
         pending: Annotated[bool, typer.Option("--pending", help="Pending for the program's return window")] = False,
         reason: Annotated[str, typer.Option(help="Why (written on the entry)")] = "manual",
         at: AtOpt = None, program: ProgramOpt = None, actor: ActorOpt = None, workspace: WorkspaceOpt = None,
         json: JsonOpt = False) -> None:
    """Credit points to a customer (a new lot, expiring by the program's rule)."""
    from retentio.services.loyalty import ledger

    with _workspace(ctx, workspace) as ws:
        r = ledger(ws, program, actor=_actor(actor)).earn(customer, points, key=key, order_id=order, at=_at(at),
                                                          reason=reason, pending=pending)
    _result(r, json, f"{customer}: +{points} → {r.get('available')} available, {r.get('pending')} pending")


@loyalty_app.command("redeem")
def redeem(ctx: typer.Context, customer: CustomerArg, points: PointsOpt, key: KeyOpt, order: OrderOpt = None,
           amount: Annotated[float | None, typer.Option("--amount", min=0, help="The order's amount: checks the "
                                                                                 "program's max share paid by points")]
           = None,
           at: AtOpt = None, program: ProgramOpt = None, actor: ActorOpt = None, workspace: WorkspaceOpt = None,
           json: JsonOpt = False) -> None:
    """Spend points, oldest-expiring first. Exit 2, writing nothing, when it would overdraw."""
    from retentio.services.loyalty import ledger

    with _workspace(ctx, workspace) as ws:
        r = ledger(ws, program, actor=_actor(actor)).redeem(customer, points, key=key, order_id=order,
                                                            order_amount=amount, at=_at(at))
    lots = ", ".join(f"{x['points']} from {x['lot']}" for x in r.get("lots", []))
    _result(r, json, f"{customer}: −{points} ({lots}) → {r.get('available')} available")


@loyalty_app.command("adjust")
def adjust(ctx: typer.Context, customer: CustomerArg,
           points: Annotated[int, typer.Option("--points", help="Points to add (negative: to take)")],
           reason: Annotated[str, typer.Option("--reason", help="Why (required; audited)")],
           key: KeyOpt, at: AtOpt = None, program: ProgramOpt = None, actor: ActorOpt = None,
           workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """A manual correction, with a reason and the actor on the entry."""
    from retentio.services.loyalty import ledger

    with _workspace(ctx, workspace) as ws:
        r = ledger(ws, program, actor=_actor(actor)).adjust(customer, points, key=key, reason=reason, at=_at(at))
    _result(r, json, f"{customer}: {points:+d} ({reason}) → {r.get('available')} available")


@loyalty_app.command("transfer")
def transfer(ctx: typer.Context, source: Annotated[str, typer.Argument(help="From this customer")],
             target: Annotated[str, typer.Argument(help="To this customer")], points: PointsOpt, key: KeyOpt,
             at: AtOpt = None, program: ProgramOpt = None, actor: ActorOpt = None,
             workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Move points between two members."""
    from retentio.services.loyalty import ledger

    with _workspace(ctx, workspace) as ws:
        r = ledger(ws, program, actor=_actor(actor)).transfer(source, target, points, key=key, at=_at(at))
    _result(r, json, f"{points} moved from {source} to {target}")


@loyalty_app.command("balance")
def balance(ctx: typer.Context, customer: CustomerArg,
            as_of: Annotated[datetime.date | None, DayOpt("--as-of", "As of this day [default: now]")] = None,
            program: ProgramOpt = None, workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Available and pending points, tier, what expires when, the discount."""
    from retentio.services.loyalty import ledger

    with _workspace(ctx, workspace) as ws:
        b = ledger(ws, program).balance(customer, at=_at(as_of))
    if json:
        print_json(b)
        return
    rows = [{"": "available", "value": f"{b['available']} {b['unit']} (= {b['value']:g})"},
            {"": "pending", "value": b["pending"]},
            {"": "tier", "value": (b["tier"] or "–") + (" (override)" if b["tier_override"] else "")},
            {"": "discount", "value": f"{b['discount_pct']:g} %"}]
    rows += [{"": f"expires {e['date']}", "value": e["points"]} for e in b["expiring"]]
    print_table(rows, title=f"{customer} in {b['program']}", columns=["", "value"])


@loyalty_app.command("history")
def history(ctx: typer.Context, customer: CustomerArg, program: ProgramOpt = None, workspace: WorkspaceOpt = None,
            json: JsonOpt = False) -> None:
    """Every entry and state change of a member, oldest first."""
    from retentio.services.loyalty import ledger

    with _workspace(ctx, workspace) as ws:
        rows = ledger(ws, program).history(customer)
    if json:
        print_json(rows)
        return
    print_table(rows, title=f"History of {customer}", columns=["at", "kind", "account", "points", "order", "reason",
                                                              "policy", "actor"])


@loyalty_app.command("expire")
def expire(ctx: typer.Context,
           as_of: Annotated[datetime.date | None, DayOpt("--as-of", "Expire what is due by the end of this day "
                                                                     "[default: today]")] = None,
           program: ProgramOpt = None, actor: ActorOpt = None, workspace: WorkspaceOpt = None,
           json: JsonOpt = False) -> None:
    """Post the expiries (and releases of pending points) due; a repeat finds nothing due."""
    from retentio.services.loyalty import ledger

    day = as_of or datetime.date.today()
    with _workspace(ctx, workspace) as ws:
        r = ledger(ws, program, actor=_actor(actor)).expire(datetime.datetime.combine(
            day + datetime.timedelta(days=1), datetime.time()))
    _result(r, json, f"expired {r['expired']} and released {r['released']} points of {r['members']} members "
                     f"(due by the end of {day})")


@loyalty_app.command("check")
def check(ctx: typer.Context, program: ProgramOpt = None, workspace: WorkspaceOpt = None,
          json: JsonOpt = False) -> None:
    """Verify the ledger: every operation balances; cached balances equal the entries' sums."""
    from retentio.data.errors import RetentioError
    from retentio.services.loyalty import ledger

    with _workspace(ctx, workspace) as ws:
        r = ledger(ws, program).check()
    if json:
        print_json(r)
    elif r["ok"]:
        out.print(f"[green]ok:[/] {r['accounts']} accounts, every operation balances, balances equal the ledger")
    if not r["ok"]:
        raise RetentioError(f"the ledger of {r['program']} does not add up: {len(r['mismatches'])} accounts differ, "
                            f"{len(r['unbalanced_operations'])} operations do not balance")


# ---------------------------------------------------------------------- members
@loyalty_app.command("join")
def join(ctx: typer.Context, customer: CustomerArg,
         referral: Annotated[str | None, typer.Option("--referral", help="A member's referral code")] = None,
         at: AtOpt = None, program: ProgramOpt = None, actor: ActorOpt = None, workspace: WorkspaceOpt = None,
         json: JsonOpt = False) -> None:
    """Enrol a customer (welcome bonus, referral code; a referral is guarded against self and duplicates)."""
    from retentio.services.loyalty import join as do_join

    with _workspace(ctx, workspace) as ws:
        r = do_join(ws, customer, name=program, referral_code=referral, at=_at(at), actor=_actor(actor))
    _result(r, json, f"{customer} {'joined' if r['new'] else 'is already a member'}"
                     + (f"; referral code {r['referral_code']}" if r["referral_code"] else ""))


@loyalty_app.command("tier")
def tier(ctx: typer.Context, customer: CustomerArg,
         set_: Annotated[str | None, typer.Option("--set", help="Override the tier (stays until --clear)")] = None,
         clear: Annotated[bool, typer.Option("--clear", help="Remove the override")] = False,
         reason: Annotated[str, typer.Option("--reason", help="Why (required; audited)")] = "",
         program: ProgramOpt = None, actor: ActorOpt = None, workspace: WorkspaceOpt = None,
         json: JsonOpt = False) -> None:
    """Set or clear a manual tier override."""
    from retentio.actions.loyalty.members import set_tier
    from retentio.data.errors import RetentioError
    from retentio.services.loyalty import ledger

    if (set_ is None) == (not clear):
        raise RetentioError("say --set TIER or --clear")
    with _workspace(ctx, workspace) as ws:
        r = set_tier(ledger(ws, program, actor=_actor(actor)), customer, set_, reason=reason)
    _result(r, json, f"{customer}: tier {r['tier']}" + (" (override)" if r["override"] else ""))


@loyalty_app.command("pay")
def pay(ctx: typer.Context, customer: CustomerArg, key: KeyOpt,
        periods: Annotated[int, typer.Option(min=1, help="Periods paid")] = 1, at: AtOpt = None,
        program: ProgramOpt = None, actor: ActorOpt = None, workspace: WorkspaceOpt = None,
        json: JsonOpt = False) -> None:
    """Record a paid membership period (renewal extends; after a lapse it starts afresh)."""
    from retentio.actions.loyalty.members import pay_membership
    from retentio.services.loyalty import ledger

    with _workspace(ctx, workspace) as ws:
        r = pay_membership(ledger(ws, program, actor=_actor(actor)), customer, key=key, at=_at(at), periods=periods)
    _result(r, json, f"{customer}: member until {r['member_until']}")


# ---------------------------------------------------------------------- orders and statistics
@loyalty_app.command("apply-orders")
def apply_orders(
    ctx: typer.Context,
    start: Annotated[datetime.date | None, DayOpt("--from", "First day [default: the first order]")] = None,
    end: Annotated[datetime.date | None, DayOpt("--to", "Last day, inclusive [default: the last order]")] = None,
    batch: Annotated[int, typer.Option(min=1, max=100_000, help="Members per transaction")] = 2000,
    program: ProgramOpt = None, actor: ActorOpt = None, workspace: WorkspaceOpt = None, json: JsonOpt = False,
) -> None:
    """Earn on completed orders, reverse returns, stamps, tiers, cashback — a repeat changes nothing."""
    from retentio.services.loyalty import apply_orders as run

    with _workspace(ctx, workspace) as ws, progress("apply-orders") as step:
        result = run(ws, name=program, start=start, end=end, batch_size=batch, actor=actor or "apply-orders",
                     progress=lambda done, total: step(f"batch {done}/{total}"))
    data = result.as_dict()
    if json:
        print_json(data)
        return
    print_table([{"": k, "count": v} for k, v in data.items()], title="apply-orders", columns=["", "count"])


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:,.4g}" if abs(value) < 1 else f"{value:,.2f}"
    return value


@loyalty_app.command("stats")
def stats(
    ctx: typer.Context,
    period: Annotated[Literal["week", "month", "quarter", "year"], typer.Option(help="Rows per period")] = "month",
    as_of: Annotated[datetime.date | None, DayOpt("--as-of", "End of the analysis [default: the data's end]")] = None,
    effect: Annotated[bool, typer.Option("--effect/--no-effect", help="Compare members with matched non-members")]
    = True,
    program: ProgramOpt = None, workspace: WorkspaceOpt = None, json: JsonOpt = False,
) -> None:
    """How the program performs: members, points issued/redeemed/expired, redemption rate, liability, tiers, effect."""
    from retentio.services.loyalty import stats as compute

    with _workspace(ctx, workspace) as ws:
        r = compute(ws, name=program, period=period, as_of=as_of, effect=effect)
    data = r.as_dict()
    if json:
        print_json(data)
        return
    print_table([{k: _fmt(v) for k, v in row.items()} for row in data["periods"][-12:]],
                title=f"{r.program}: the last 12 {period}s",
                columns=["period_start", "members", "active_members", "issued", "redeemed", "expired", "redemption_rate",
                         "liability"])
    totals = data["totals"]
    print_table([{"": k, "value": _fmt(v)} for k, v in totals.items() if not isinstance(v, dict)],
                title="Totals", columns=["", "value"])
    e = data.get("effect")
    if e:
        if e.get("effect") is None:
            err.print(f"effect on retention: not measured ({escape(str(e.get('reason')))})")
        else:
            err.print(f"effect on {e['window_days']}-day retention: members {100 * e['member_rate']:.1f} % vs matched "
                      f"non-members {100 * e['control_rate']:.1f} %: {100 * e['effect']:+.1f} pp "
                      f"[{100 * e['effect_low']:+.1f}, {100 * e['effect_high']:+.1f}]")
        err.print(escape(str(e.get("caveat", ""))))
