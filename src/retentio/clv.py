"""Public import path for the CLV models: ``from retentio.clv import BetaGeoModel``."""

from retentio.analytics.clv import *  # noqa: F403
from retentio.analytics.clv import __all__  # noqa: F401
