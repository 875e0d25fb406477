"""Retentio: customer retention analytics and retention marketing on your own data.

The public API::

    from retentio import Workspace
    ws = Workspace.init("shop")            # or Workspace.open("shop")
    ws.load("orders", "orders.csv")        # validated, atomic
    ws.summary()                           # what is loaded
    ws.metrics(period="month")             # CRR, churn, MRR movements, NPS per period
    ws.cohorts(); ws.segments()            # cohort retention, RFM segments

``Workspace`` is imported on first use (PEP 562), so ``import retentio`` and the
command line's ``--help`` do not pay for pandas, Ibis and DuckDB.
"""

from typing import TYPE_CHECKING, Any

from retentio.data.errors import RetentioError, ValidationError

if TYPE_CHECKING:
    from retentio.workspace import Workspace

__version__ = "0.1.0"
__all__ = ["RetentioError", "ValidationError", "Workspace", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Workspace":
        from retentio.workspace import Workspace

        return Workspace
    raise AttributeError(f"module 'retentio' has no attribute {name!r}")
