"""jaxglmm: Bayesian linear and generalized linear mixed models sampled by BlackJAX NUTS."""
from .devices import use_cpu_devices

use_cpu_devices()  # first, before any JAX operation runs (jaxglmm.devices)

from . import datasets  # noqa: E402
from .extended_families import (Student, ZeroInflatedNegBinomial,  # noqa: E402
                                ZeroInflatedPoisson)
from .families import (BetaFamily, Bernoulli, Binomial, GammaFamily, Gaussian,  # noqa: E402
                       NegBinomial, Poisson)
from .family_base import Family  # noqa: E402
from .family_registry import FAMILIES, make_family  # noqa: E402
from .glmm import GLMM  # noqa: E402
from .many import FitBatch, batch_models  # noqa: E402
from .model import Model  # noqa: E402
from .priors import (LKJ, Beta, Flat, Gamma, HalfNormal, HalfStudentT, Normal,  # noqa: E402
                     Priors, Wishart)
from .problem import Problem  # noqa: E402
from .results import Fit, SamplingWarning  # noqa: E402
from .sbc import SBCResult, sbc  # noqa: E402
from .loading import load  # noqa: E402

from .version import __version__  # noqa: E402,F401

__all__ = [
    "GLMM", "Model", "Fit", "Priors", "Normal", "Flat", "Gamma", "Beta", "Wishart", "LKJ",
    "HalfStudentT", "HalfNormal", "Family",
    "Gaussian", "Bernoulli", "Binomial", "Poisson", "NegBinomial", "GammaFamily", "BetaFamily",
    "Student", "ZeroInflatedPoisson", "ZeroInflatedNegBinomial", "FAMILIES",
    "make_family", "SamplingWarning", "FitBatch", "batch_models",
    "sbc", "SBCResult",
    "Problem", "datasets", "load",
]
