"""Retention actions: playbooks, campaigns, channels — and the same from Python.

::

    import os
    from retentio import Workspace, actions

    ws = Workspace.open("shop")
    p = actions.plan(ws, "winback")            # a dry run: p.counts(), p.frame (one row per customer)
    runs = actions.run(ws, ["winback"])        # record, then send exactly once: one row per run
    actions.assignments(ws, "winback")         # every decision: arm, reason, code, message status
    actions.suppressions(ws)                   # the suppression lists

Everything a command does is here (the command line calls the same code through
:mod:`retentio.services.campaigns`). See ``docs/campaigns.md``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from retentio.actions.campaigns import Plan
    from retentio.data.workspace import Workspace


def plan(ws: Workspace, name: str, as_of: dt.date | None = None) -> Plan:
    """What a run of playbook ``name`` would do as of ``as_of``, writing nothing."""
    from retentio.actions.campaigns import plan as make_plan
    from retentio.actions.playbooks import read_playbook

    return make_plan(ws, read_playbook(ws.path, name), as_of)


def run(ws: Workspace, names: list[str], as_of: dt.date | None = None, *,
        env: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Run playbooks together (they share the frequency cap): one row per run with
    treatment, control, sent, failed, retry, deferred and suppressed."""
    import pandas as pd

    from retentio.actions.runs import run_playbooks

    results = run_playbooks(ws, names, as_of, env=os.environ if env is None else env)
    return pd.DataFrame([r.as_dict() | {"suppressed": sum(r.suppressed.values())} for r in results])


def assignments(ws: Workspace, campaign: str | None = None) -> pd.DataFrame:
    """Every assignment (treatment and control) with its reason and message status."""
    from retentio.actions.ledger import assignments_frame

    return assignments_frame(ws.store, campaign)


def suppressions(ws: Workspace) -> pd.DataFrame:
    """Every entry of the suppression lists."""
    from retentio.actions.ledger import suppression_list

    return suppression_list(ws.store)


__all__ = ["assignments", "plan", "run", "suppressions"]
