"""The ``feedback`` command group: surveys and their answers (``cli_surveys``), follow-up
tasks (``cli_feedback_tasks``) and what customers are saying (``cli_feedback_themes``)."""

from __future__ import annotations

import typer

from retentio.faces.cli import HELP, app

feedback_app = typer.Typer(help="The feedback loop: surveys, follow-up tasks for unhappy customers, themes of "
                                "comments and exit reasons.", no_args_is_help=True, **HELP)
app.add_typer(feedback_app, name="feedback")
