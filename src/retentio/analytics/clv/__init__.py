"""Customer lifetime value: buy-till-you-die models fitted by maximum likelihood.

Names follow PyMC-Marketing: :class:`BetaGeoModel` (BG/NBD), :class:`ModifiedBetaGeoModel`
(MBG/NBD), :class:`ParetoNBDModel`, :class:`BetaGeoBetaBinomModel` (BG/BB),
:class:`GammaGammaModel` and :class:`ShiftedBetaGeoModel` (sBG).
"""

from retentio.analytics.clv.base import FitReport, compress
from retentio.analytics.clv.bgbb import BetaGeoBetaBinomModel
from retentio.analytics.clv.bgnbd import BetaGeoModel, ModifiedBetaGeoModel
from retentio.analytics.clv.gamma_gamma import GammaGammaModel
from retentio.analytics.clv.pareto_nbd import ParetoNBDModel
from retentio.analytics.clv.sbg import ShiftedBetaGeoModel

#: CLI / config names of the models
MODELS = {
    "bgnbd": BetaGeoModel, "mbgnbd": ModifiedBetaGeoModel, "pareto_nbd": ParetoNBDModel,
    "bgbb": BetaGeoBetaBinomModel, "gamma_gamma": GammaGammaModel, "sbg": ShiftedBetaGeoModel,
}


def make_model(name: str):
    """A new, unfitted model by its short name (bgnbd, mbgnbd, pareto_nbd, bgbb, gamma_gamma, sbg)."""
    from retentio.data.errors import RetentioError

    if name not in MODELS:
        raise RetentioError(f"unknown model {name!r}; use one of {', '.join(MODELS)}")
    return MODELS[name]()


__all__ = ["MODELS", "make_model", "BetaGeoBetaBinomModel", "BetaGeoModel", "FitReport", "GammaGammaModel", "ModifiedBetaGeoModel",
           "ParetoNBDModel", "ShiftedBetaGeoModel", "compress"]
