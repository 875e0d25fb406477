"""Retentio: customer retention analytics and retention marketing on your own data.

The public API::

    from retentio import Workspace
    ws = Workspace.init("shop")            # or Workspace.open("shop")
    ws.load("orders", "orders.csv")        # validated, atomic
    ws.summary()                           # what is loaded
"""

from retentio.data.errors import RetentioError, ValidationError
from retentio.data.workspace import Workspace

__version__ = "0.1.0"
__all__ = ["RetentioError", "ValidationError", "Workspace", "__version__"]
