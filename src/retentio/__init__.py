"""Retentio: customer retention analytics and retention marketing on your own data.

The public API::

    from retentio import Workspace
    ws = Workspace.init("shop")            # or Workspace.open("shop")
    ws.load("orders", "orders.csv")        # validated, atomic
    ws.summary()                           # what is loaded
    ws.metrics(period="month")             # CRR, churn, MRR movements, NPS per period
    ws.cohorts(); ws.segments()            # cohort retention, RFM segments
"""

from retentio.data.errors import RetentioError, ValidationError
from retentio.workspace import Workspace

__version__ = "0.1.0"
__all__ = ["RetentioError", "ValidationError", "Workspace", "__version__"]
