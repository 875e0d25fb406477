"""The ``user`` and ``apikey`` commands: who may sign in to the web app (and with which
role), and the keys machine clients call the API with. Thin: each calls
:mod:`retentio.services.accounts`; every change is written to the audit log with the
person at the terminal as its author.

A password is never an argument (it would sit in the shell's history and in the process
list): it comes from a hidden prompt, typed twice, or from ``$RETENTIO_PASSWORD`` for
scripts."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from retentio.faces.cli import HELP, JsonOpt, WorkspaceOpt, _workspace, app
from retentio.faces.output import err, escape, print_json, print_table

PASSWORD_ENV = "RETENTIO_PASSWORD"

user_app = typer.Typer(help="Users of the web app: add, list, disable, enable, reset a password.",
                       no_args_is_help=True, **HELP)
apikey_app = typer.Typer(help="API keys for machine clients (a till, the shop, the CRM): create, list, revoke.",
                         no_args_is_help=True, **HELP)
app.add_typer(user_app, name="user")
app.add_typer(apikey_app, name="apikey")

RoleOpt = Annotated[str, typer.Option("--role", help="admin, analyst, marketer, support, pos or integration")]


def _password() -> str:
    from retentio.services.accounts import check_password

    given = os.environ.get(PASSWORD_ENV)
    if given is not None:
        return check_password(given)
    if not os.isatty(0):
        from retentio.data.errors import RetentioError

        raise RetentioError(f"password: type it at a terminal, or set ${PASSWORD_ENV} (never as an argument)")
    return check_password(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@user_app.command("add")
def user_add(ctx: typer.Context, email: Annotated[str, typer.Argument(help="The user's email (their sign-in name)")],
             role: RoleOpt = "analyst",
             language: Annotated[str, typer.Option(help="Page language: en or ru")] = "en",
             workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Add a user who signs in to the web app with EMAIL and a password (asked for, or
    $RETENTIO_PASSWORD; at least 10 characters; stored as an Argon2id hash)."""
    from retentio.services.accounts import add_user, cli_principal

    password = _password()
    with _workspace(ctx, workspace, read_only=False) as ws:
        made = add_user(ws.store, email, password, role, language=language, actor=cli_principal())
    if json:
        print_json(made)
        return
    err.print(f"[green]added[/] {escape(made['email'])} as {made['role']}", highlight=False)


@user_app.command("list")
def user_list(ctx: typer.Context, workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """The users: email, role, language, created, disabled."""
    from retentio.services.accounts import users

    with _workspace(ctx, workspace, read_only=False) as ws:
        rows = users(ws.store)
    if json:
        print_json(rows)
        return
    if not rows:
        err.print("no users yet: retentio user add EMAIL --role admin")
        return
    print_table(rows, columns=["email", "role", "language", "created_at", "disabled"])


def _set_disabled(ctx: typer.Context, email: str, disabled: bool, workspace, json: bool) -> None:
    from retentio.services.accounts import cli_principal, set_disabled

    with _workspace(ctx, workspace, read_only=False) as ws:
        done = set_disabled(ws.store, email, disabled, actor=cli_principal())
    if json:
        print_json(done)
        return
    what = f"disabled (sessions ended: {done['sessions_ended']})" if disabled else "enabled"
    err.print(f"[green]{escape(done['email'])}[/] {what}", highlight=False)


@user_app.command("disable")
def user_disable(ctx: typer.Context, email: Annotated[str, typer.Argument(help="The user's email")],
                 workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Disable a user: they can no longer sign in, and their open sessions end now."""
    _set_disabled(ctx, email, True, workspace, json)


@user_app.command("enable")
def user_enable(ctx: typer.Context, email: Annotated[str, typer.Argument(help="The user's email")],
                workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Let a disabled user sign in again."""
    _set_disabled(ctx, email, False, workspace, json)


@user_app.command("reset")
def user_reset(ctx: typer.Context, email: Annotated[str, typer.Argument(help="The user's email")],
               workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Set a new password (asked for, or $RETENTIO_PASSWORD) and end the user's sessions."""
    from retentio.services.accounts import cli_principal, reset_password

    password = _password()
    with _workspace(ctx, workspace, read_only=False) as ws:
        done = reset_password(ws.store, email, password, actor=cli_principal())
    if json:
        print_json(done)
        return
    err.print(f"[green]new password set[/] for {escape(done['email'])} (sessions ended: {done['sessions_ended']})",
              highlight=False)


@apikey_app.command("create")
def apikey_create(ctx: typer.Context, role: Annotated[str, typer.Option("--role", help="pos, integration, analyst "
                                                                                     "or admin")] = "pos",
                  name: Annotated[str, typer.Option("--name", help="What uses it (e.g. till-1, shop)")] = "api client",
                  workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Create an API key with ROLE. The key is printed once (stdout) and stored only as a
    hash: keep it now. Clients send it as `Authorization: Bearer KEY`."""
    from retentio.faces.output import out
    from retentio.services.accounts import cli_principal, create_key

    with _workspace(ctx, workspace, read_only=False) as ws:
        made = create_key(ws.store, name, role, actor=cli_principal())
    if json:
        print_json(made)
        return
    out.print(made["key"], highlight=False, soft_wrap=True)
    err.print(f"[green]created[/] API key {made['prefix']} ({escape(made['name'])}, role {made['role']}); "
              "it is shown only this once", highlight=False)


@apikey_app.command("list")
def apikey_list(ctx: typer.Context, workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """The API keys (prefix, name, role, created, last used, revoked) — never the keys."""
    from retentio.services.accounts import keys

    with _workspace(ctx, workspace, read_only=False) as ws:
        rows = keys(ws.store)
    if json:
        print_json(rows)
        return
    if not rows:
        err.print("no API keys yet: retentio apikey create --role pos --name till-1")
        return
    print_table(rows, columns=["prefix", "name", "role", "created_at", "last_used_at", "revoked"])


@apikey_app.command("revoke")
def apikey_revoke(ctx: typer.Context, prefix: Annotated[str, typer.Argument(help="The key's prefix (apikey list)")],
                  workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Revoke an API key: it stops working at once."""
    from retentio.services.accounts import cli_principal, revoke_key

    with _workspace(ctx, workspace, read_only=False) as ws:
        done = revoke_key(ws.store, prefix, actor=cli_principal())
    if json:
        print_json(done)
        return
    err.print(f"[green]revoked[/] {done['prefix']} ({escape(done['name'])})"
              + (" (it was already)" if done["already"] else ""), highlight=False)


@app.command("audit")
def audit_log(ctx: typer.Context, limit: Annotated[int, typer.Option(min=1, help="How many entries")] = 50,
              workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """The audit log, newest first: who changed what, when, from where."""
    from retentio.services.accounts import audit_entries

    with _workspace(ctx, workspace, read_only=False) as ws:
        rows = audit_entries(ws.store, limit=limit)["items"]
    if json:
        print_json(rows)
        return
    print_table(rows, columns=["at", "actor", "role", "address", "action", "target"])


__all__ = ["apikey_app", "user_app"]
