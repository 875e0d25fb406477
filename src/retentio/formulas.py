"""Public import path for the retention formulas of docs/definitions.md: ``from retentio.formulas import crr``."""

from retentio.analytics.formulas import *  # noqa: F403
from retentio.analytics.formulas import __all__  # noqa: F401
