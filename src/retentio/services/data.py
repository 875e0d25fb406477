"""Data use cases: create a workspace, load a file or frame into a canonical table, see
what is loaded, export the tables, and set up the demo business. Typed parameters in,
typed results out.

Validation, reading and storing are in :mod:`retentio.data.loading` (one transaction per
load: all or nothing), the tables in :mod:`retentio.data.schema`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from retentio.data.errors import InvalidParameter, RetentioError, option

if TYPE_CHECKING:
    from retentio.data.loading import LoadReport
    from retentio.data.workspace import Workspace

Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    """The default progress callback: report nothing."""


# ------------------------------------------------------------------------------ workspace
@dataclass(frozen=True)
class WorkspaceParams:
    """A new workspace: the business's timezone and currency, the activity window that
    defines "active" for orders, and the analytics engine."""

    timezone: str = "UTC"
    currency: str = "USD"
    activity_window_days: int = 90
    engine: Literal["duckdb", "spark"] = "duckdb"


@dataclass(frozen=True)
class WorkspaceInfo:
    """Where a workspace is and how it reads its data."""

    path: Path
    engine: str
    timezone: str
    currency: str
    activity_window_days: int


def create_workspace(path: Path, params: WorkspaceParams = WorkspaceParams()) -> WorkspaceInfo:
    """Create a workspace folder with ``retentio.toml`` (and the database for DuckDB);
    a refused creation leaves nothing behind."""
    from retentio.data.workspace import Workspace

    ws = Workspace.init(path, timezone=params.timezone, currency=params.currency,
                        activity_window_days=params.activity_window_days, engine=params.engine)
    with ws:
        return WorkspaceInfo(ws.path.resolve(), ws.engine, ws.settings.timezone, ws.settings.currency,
                             ws.settings.activity_window_days)


# ------------------------------------------------------------------------------ loading
@dataclass(frozen=True)
class LoadParams:
    """How to read and store a file: renames (their column → ours), the mode (``append``
    refuses stored ids and repeated files, ``replace`` the whole table, ``upsert`` updates
    matching ids), where to write rejected rows (storing the valid ones), and reading
    options that are detected when not given."""

    mapping: Mapping[str, str] = field(default_factory=dict)
    mode: Literal["append", "replace", "upsert"] = "append"
    skip_invalid: Path | None = None
    force: bool = False
    allow_duplicates: bool = False
    delimiter: str | None = None
    decimal: Literal[".", ","] | None = None
    encoding: str | None = None
    date_format: str | None = None
    sheet: str | None = None
    format: Literal["csv", "xlsx", "xls", "ods", "parquet", "jsonl"] | None = None


def parse_renames(items: list[str]) -> dict[str, str]:
    """``their_column=our_column`` pairs into a mapping."""
    mapping = {}
    for item in items:
        if "=" not in item:
            raise InvalidParameter("mapping", item, "their_column=our_column")
        theirs, ours = item.split("=", 1)
        mapping[theirs.strip()] = ours.strip()
    return mapping


def read_renames(path: Path) -> dict[str, str]:
    """Renames from a file: lines ``their_col=our_col``, or TOML ``"their col" = "our_col"``."""
    from retentio.data.loading import read_mapping_file

    return read_mapping_file(path)


def load_table(ws: Workspace, table: str, source: Any, params: LoadParams = LoadParams(),
               progress: Progress = _quiet) -> LoadReport:
    """Validate ``source`` (a file path or a pandas/Polars/Arrow frame) and store it into
    canonical ``table`` in one transaction; returns what was read, stored, rejected and
    normalised, and how the file was read. ``progress`` hears ``"stored"`` once the
    transaction has committed."""
    report = ws.load(table, source, mapping=dict(params.mapping), mode=params.mode, skip_invalid=params.skip_invalid,
                     delimiter=params.delimiter, decimal=params.decimal, fmt=params.format, encoding=params.encoding,
                     sheet=params.sheet, date_format=params.date_format, allow_duplicates=params.allow_duplicates,
                     force=params.force, step=progress)
    if table == "orders" and _store_in_use(ws):
        # orders carrying a campaign's promo code mark it redeemed (campaign show counts them)
        from retentio.actions.promo import redeem

        redeem(ws, ws.store)
    return report


def _store_in_use(ws: Workspace) -> bool:
    """Whether the workspace has an operational store already (a load never creates one)."""
    from retentio.data.store import STORE_FILE

    return bool(ws.settings.store.url) or (ws.path / STORE_FILE).exists()


@dataclass(frozen=True)
class TableInfo:
    """One canonical table: rows, distinct customers, first and last day, and where it is
    read from (``workspace`` or a [tables] source); ``source`` is None when nothing is loaded."""

    table: str
    rows: int
    customers: int
    first_day: str | None
    last_day: str | None
    source: str | None

    def as_dict(self) -> dict:
        return {"table": self.table, "rows": self.rows, "customers": self.customers, "from": self.first_day,
                "to": self.last_day, "source": self.source}


def describe_tables(ws: Workspace) -> list[TableInfo]:
    """What is loaded: every canonical table, empty ones included."""
    return [TableInfo(r["table"], r["rows"], r["customers"], r["from"], r["to"], r["source"])
            for r in ws.summary()]


@dataclass(frozen=True)
class Exported:
    """A table written to a file."""

    table: str
    path: Path
    rows: int


def export_tables(ws: Workspace, directory: Path, fmt: Literal["parquet", "csv"] = "parquet",
                  progress: Progress = _quiet) -> list[Exported]:
    """Write every loaded canonical table to ``directory/TABLE.parquet`` (or ``.csv``)."""
    return [Exported(r["table"], Path(r["path"]), r["rows"]) for r in ws.export(directory, fmt, step=progress)]


# ------------------------------------------------------------------------------ demo
@dataclass(frozen=True)
class DemoParams:
    """The demo business: how many customers, the seed (the same seed gives the same
    data), where to also write its CSVs, and whether to replace a workspace's data."""

    customers: int = 20_000
    seed: int = 7
    csv_dir: Path | None = None
    force: bool = False


@dataclass(frozen=True)
class DemoWorkspace:
    """A demo workspace, loaded and with a trained churn model."""

    path: Path
    tables: list[TableInfo]
    churn_model_version: int | None
    csv_dir: Path | None
    #: one playbook of every kind, exporting to CSV (the demo sends nothing anywhere)
    playbooks: list[str] = field(default_factory=list)
    #: the web app's demo administrator: (email, password), also in DEMO_LOGIN_FILE
    login: tuple[str, str] | None = None


def prepare_demo(path: Path, params: DemoParams = DemoParams(), progress: Progress = _quiet) -> DemoWorkspace:
    """Generate the demo business (a shop with subscriptions, three years), load it into
    the workspace at ``path`` (created when missing) and train the churn model. A
    workspace that already holds data is refused unless ``force``: nothing is changed."""
    from retentio.actions.history import record_history
    from retentio.actions.playbooks import KINDS
    from retentio.data.demo import generate
    from retentio.data.demo_campaigns import past_campaigns
    from retentio.data.workspace import Workspace
    from retentio.services.campaigns import new_playbook
    from retentio.services.churn import score_churn, train_churn
    from retentio.services.loyalty import demo_loyalty

    if params.csv_dir is not None and params.csv_dir.exists() and not params.csv_dir.is_dir():
        raise InvalidParameter("csv_dir", str(params.csv_dir), "a folder (this path exists and is not one)")
    ws = Workspace.init(path, timezone="Europe/Moscow", currency="RUB", exist_ok=True)
    with ws:
        held = ws.stored_rows()
        if held and not params.force:
            what = ", ".join(f"{table} ({rows:,} rows)" for table, rows in held.items())
            raise RetentioError(
                f"{Path(path).resolve()} already holds data: {what}. The demo would replace all of it. "
                f"Nothing was changed; use another folder, or {option('force')} to replace it")
    _demo_settings(path)
    progress("generating")
    data = generate(params.customers, params.seed)
    history = past_campaigns(data.customers, data.orders, params.seed)
    data.orders = history.orders
    if params.csv_dir:
        data.write_csv(params.csv_dir)
    with ws:
        for name, frame in data.tables().items():
            progress(f"loading {name}")
            ws.load(name, frame, mode="replace")
        progress("training the churn model")
        trained = train_churn(ws, progress=progress)
        progress("scoring churn risk")
        score_churn(ws)  # kept as a snapshot: the web app's at-risk list and profiles read it
        tables = describe_tables(ws)
        progress("recording past campaigns")
        record_history(ws.store, [{"name": c.name, "kind": c.kind, "definition": _past_definition(c)}
                                  for c in history.campaigns], history.assignments,
                       data.customers.set_index("customer_id").email, costs=DEMO_MESSAGE_COSTS)
        progress("writing playbooks")
        playbooks = [new_playbook(ws, kind, kind, channel="csv", force=True).stem for kind in KINDS]
        progress("running the loyalty program over the orders")
        demo_loyalty(ws, seed=params.seed)
        login = _demo_login(ws)
    return DemoWorkspace(Path(path).resolve(), tables, trained.get("model_version"), params.csv_dir, playbooks,
                         login)


#: the demo's web sign-in (an administrator), and the file in the workspace that keeps it
DEMO_EMAIL = "demo@retentio.local"
DEMO_LOGIN_FILE = "demo-login.txt"


def _demo_login(ws: Any) -> tuple[str, str]:
    """The demo administrator of the web app with a new random password (a rerun of the
    demo sets a new one), written to DEMO_LOGIN_FILE readable by the owner only."""
    import os
    import secrets

    from retentio.services.accounts import add_user, cli_principal, reset_password, users

    password = secrets.token_urlsafe(12)
    actor = cli_principal()
    if any(u["email"] == DEMO_EMAIL for u in users(ws.store)):
        reset_password(ws.store, DEMO_EMAIL, password, actor=actor)
    else:
        add_user(ws.store, DEMO_EMAIL, password, "admin", actor=actor)
    target = Path(ws.path) / DEMO_LOGIN_FILE
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"email: {DEMO_EMAIL}\npassword: {password}\n")
    return DEMO_EMAIL, password


#: what the demo's past messages cost (RUB): an email through a paid provider; CSV exports are free
DEMO_MESSAGE_COSTS = {"email": 0.1, "csv": 0.0, "sms": 2.0}
#: the demo's [campaigns] settings: a bonus point costs the shop 0.1 RUB
DEMO_CAMPAIGN_SETTINGS = {"point_value": "0.1"}


def _demo_settings(path: Path) -> None:
    """Write the demo's [campaigns] settings into its retentio.toml (kept when present)."""
    toml = Path(path) / "retentio.toml"
    text = toml.read_text(encoding="utf-8")
    lines = [f"{k} = {v}" for k, v in DEMO_CAMPAIGN_SETTINGS.items() if f"\n{k} =" not in text]
    if not lines:
        return
    if "\n[campaigns]" in text or text.startswith("[campaigns]"):
        text = text.replace("[campaigns]\n", "[campaigns]\n" + "\n".join(lines) + "\n", 1)
    else:
        text = text.rstrip("\n") + "\n\n[campaigns]\n" + "\n".join(lines) + "\n"
    toml.write_text(text, encoding="utf-8")


def _past_definition(c: Any) -> dict[str, Any]:
    """A past demo campaign as the store keeps a playbook's definition."""
    from retentio.data.demo_campaigns import HOLDOUT_PCT

    return {"kind": c.kind, "name": c.name, "description": "simulated past campaign of the demo (known truth)",
            "offer": {"kind": c.offer_kind, "value": c.offer_value}, "channel": {"kind": c.channel},
            "holdout": {"percent": HOLDOUT_PCT}, "measure": {"window_days": c.window_days}}


__all__ = ["DemoParams", "DemoWorkspace", "Exported", "LoadParams", "TableInfo", "WorkspaceInfo",
           "WorkspaceParams", "create_workspace", "describe_tables", "export_tables", "load_table",
           "parse_renames", "prepare_demo", "read_renames"]
