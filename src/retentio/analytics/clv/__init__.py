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

__all__ = ["BetaGeoBetaBinomModel", "BetaGeoModel", "FitReport", "GammaGammaModel", "ModifiedBetaGeoModel",
           "ParetoNBDModel", "ShiftedBetaGeoModel", "compress"]
