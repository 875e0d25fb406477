"""Public import path for the CLV models: ``from retentio.clv import BetaGeoModel``.

``rfm_summary`` (frequency, recency, T and average spend per customer of a workspace) is
imported on first use, so the models alone do not pull in Ibis and pandas.
"""

from typing import Any

from retentio.analytics.clv import *  # noqa: F403
from retentio.analytics.clv import __all__ as _models

__all__ = [*_models, "rfm_summary"]


def __getattr__(name: str) -> Any:
    if name == "rfm_summary":
        from retentio.analytics.clv.from_orders import rfm_summary

        return rfm_summary
    raise AttributeError(f"module 'retentio.clv' has no attribute {name!r}")
