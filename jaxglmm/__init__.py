"""jaxglmm: Bayesian linear and generalized linear mixed models sampled by BlackJAX NUTS."""
from .devices import use_cpu_devices

use_cpu_devices()  # first, before any JAX operation runs (jaxglmm.devices)

from . import datasets  # noqa: E402
from .families import (FAMILIES, BetaFamily, Bernoulli, Binomial, Family, GammaFamily,  # noqa: E402
                       Gaussian, NegBinomial, Poisson, make_family)
from .glmm import GLMM  # noqa: E402
from .model import Model  # noqa: E402
from .priors import Flat, Gamma, Normal, Priors, Wishart  # noqa: E402
from .problem import Problem  # noqa: E402
from .results import Fit, SamplingWarning  # noqa: E402
from .loading import load  # noqa: E402

from .version import __version__  # noqa: E402,F401

__all__ = [
    "GLMM", "Model", "Fit", "Priors", "Normal", "Flat", "Gamma", "Wishart", "Family", "Gaussian",
    "Bernoulli", "Binomial", "Poisson", "NegBinomial", "GammaFamily", "BetaFamily", "FAMILIES",
    "make_family", "SamplingWarning",
    "Problem", "datasets", "load",
]
