"""Customer lifetime value: buy-till-you-die models fitted by maximum likelihood.

Names follow PyMC-Marketing: :class:`BetaGeoModel` (BG/NBD), :class:`ModifiedBetaGeoModel`
(MBG/NBD), :class:`ParetoNBDModel`, :class:`BetaGeoBetaBinomModel` (BG/BB),
:class:`GammaGammaModel` and :class:`ShiftedBetaGeoModel` (sBG).

Each model's module is imported on first use (PEP 562): fitting BG/NBD then imports
neither SciPy nor the other models, which matters for a command that runs once.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retentio.analytics.clv.base import FitReport, compress
    from retentio.analytics.clv.bgbb import BetaGeoBetaBinomModel
    from retentio.analytics.clv.bgnbd import BetaGeoModel, ModifiedBetaGeoModel
    from retentio.analytics.clv.gamma_gamma import GammaGammaModel
    from retentio.analytics.clv.pareto_nbd import ParetoNBDModel
    from retentio.analytics.clv.sbg import ShiftedBetaGeoModel

#: where each public name lives
_WHERE = {
    "FitReport": "base", "compress": "base", "BetaGeoBetaBinomModel": "bgbb", "BetaGeoModel": "bgnbd",
    "ModifiedBetaGeoModel": "bgnbd", "GammaGammaModel": "gamma_gamma", "ParetoNBDModel": "pareto_nbd",
    "ShiftedBetaGeoModel": "sbg",
}
#: CLI / config names of the models, and their classes
_MODEL_CLASSES = {
    "bgnbd": "BetaGeoModel", "mbgnbd": "ModifiedBetaGeoModel", "pareto_nbd": "ParetoNBDModel",
    "bgbb": "BetaGeoBetaBinomModel", "gamma_gamma": "GammaGammaModel", "sbg": "ShiftedBetaGeoModel",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    elif name == "MODELS":  # CLI / config names of the models → classes
        value = {short: __getattr__(cls) for short, cls in _MODEL_CLASSES.items()}
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def make_model(name: str):
    """A new, unfitted model by its short name (bgnbd, mbgnbd, pareto_nbd, bgbb, gamma_gamma, sbg)."""
    from retentio.data.errors import RetentioError

    if name not in _MODEL_CLASSES:
        raise RetentioError(f"unknown model {name!r}; use one of {', '.join(_MODEL_CLASSES)}")
    return __getattr__(_MODEL_CLASSES[name])()


__all__ = ["MODELS", "make_model", "BetaGeoBetaBinomModel", "BetaGeoModel", "FitReport", "GammaGammaModel", "ModifiedBetaGeoModel",
           "ParetoNBDModel", "ShiftedBetaGeoModel", "compress"]
