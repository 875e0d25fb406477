"""The ``uplift`` commands: whom a campaign actually persuades. Thin: calls
:mod:`retentio.services.uplift` and prints (a table on the terminal, ``--json`` on stdout)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from retentio.faces.cli import HELP, JsonOpt, WorkspaceOpt, _workspace, app
from retentio.faces.output import err, print_json, print_table, progress

uplift_app = typer.Typer(help="Uplift models: who is persuadable, from a randomised experiment or a past campaign.",
                         no_args_is_help=True, **HELP)
app.add_typer(uplift_app, name="uplift")


@uplift_app.command("train")
def uplift_train(
    ctx: typer.Context,
    table: Annotated[Path | None, typer.Option(help="A randomised experiment: CSV or Parquet, one row per customer")]
    = None,
    treatment: Annotated[str | None, typer.Option(help="The table's arm column")] = None,
    treated: Annotated[str | None, typer.Option(help="The arm column's value for treated [default: 1/true/treatment]")]
    = None,
    control: Annotated[str | None, typer.Option(help="The arm column's value for control [default: 0/false/control]")]
    = None,
    outcome: Annotated[str | None, typer.Option(help="The table's outcome column; with --campaign: conversion or "
                                                     "revenue [default: conversion]")] = None,
    risk: Annotated[str | None, typer.Option(help="A churn-risk column of the table to compare against")] = None,
    campaign: Annotated[str | None, typer.Option(help="Train on a past campaign of the workspace instead")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the out-of-fold predictions here (CSV)")] = None,
    save: Annotated[bool, typer.Option("--save", help="With --campaign: keep the model for playbooks with "
                                                      "target = \"uplift\"")] = False,
    folds: Annotated[int, typer.Option(min=2, max=20, help="Cross-fitting folds")] = 5,
    top: Annotated[float, typer.Option(min=0.01, max=1.0, help="The share targeted for uplift@k")] = 0.3,
    seed: Annotated[int, typer.Option(help="Random seed")] = 0,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Train T- and X-learners (LightGBM, linear), choose by cross-fitted Qini, and compare the
    out-of-fold ranking with random and churn-risk targeting."""
    from retentio.data.errors import InvalidParameter
    from retentio.services.uplift import TableExperiment, UpliftParams, train_on_campaign, train_on_table

    params = UpliftParams(folds=folds, seed=seed, top=top, out=out)
    if save and campaign is None:
        raise InvalidParameter("save", "true", "--campaign NAME (a model from a file is not kept)")
    if (table is None) == (campaign is None):
        raise InvalidParameter("table", str(table) if table else None, "either --table FILE or --campaign NAME")
    with progress("uplift") as step:
        if table is not None:
            if not treatment or not outcome:
                raise InvalidParameter("treatment" if not treatment else "outcome", None,
                                       "a column of the table (--treatment COL --outcome COL)")
            result = train_on_table(TableExperiment(table, treatment, outcome, treated, control, risk), params,
                                    progress=step)
        else:
            with _workspace(ctx, workspace) as ws:
                metric: Literal["conversion", "revenue"] = "revenue" if outcome == "revenue" else "conversion"
                if outcome not in (None, "conversion", "revenue"):
                    raise InvalidParameter("outcome", outcome, "conversion | revenue (with --campaign)")
                result = train_on_campaign(ws, campaign or "", metric, params, save=save, progress=step)
    if json:
        print_json(result.as_dict())
        return
    k = f"uplift@{round(top * 100)} %"
    rows = [{"ranking": f"model ({result.model})", "Qini": f"{result.qini:.3f}", k: f"{result.uplift_at_k:+.4f}"},
            {"ranking": "random", "Qini": f"{result.random['qini']:.3f}", k: f"{result.random['uplift_at_k']:+.4f}"}]
    if result.churn_risk:
        rows.append({"ranking": "churn risk", "Qini": f"{result.churn_risk['qini']:.3f}",
                     k: f"{result.churn_risk['uplift_at_k']:+.4f}"})
    print_table(rows, title=f"Uplift on {result.outcome}: {result.n_treated:,} treated, {result.n_control:,} control "
                            f"(out-of-fold, {folds} folds)")
    a = result.ate
    if a["estimate"] is not None:
        err.print(f"Average effect: {a['estimate']:+.4f} [{a['low']:+.4f}, {a['high']:+.4f}] (95 %, Welch)")
    if result.churn_risk_note:
        err.print(f"Churn-risk ranking: not compared ({result.churn_risk_note})")
    if result.out:
        err.print(f"Out-of-fold predictions: {result.out}")
    if result.version is not None:
        err.print(f"Saved as version {result.version} of {campaign}'s uplift model (playbooks: target = \"uplift\", "
                  f"uplift_model = \"{campaign}\")")
