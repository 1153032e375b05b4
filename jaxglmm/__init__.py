"""jaxglmm: Bayesian linear and generalized linear mixed models sampled by BlackJAX NUTS."""
from . import datasets
from .families import FAMILIES, Bernoulli, Binomial, Family, Gaussian, Poisson, make_family
from .model import GLMM
from .priors import Flat, Gamma, Normal, Priors, Wishart
from .results import Fit, SamplingWarning
from .storage import load

__version__ = "0.1.0"

__all__ = [
    "GLMM", "Fit", "Priors", "Normal", "Flat", "Gamma", "Wishart", "Family", "Gaussian",
    "Bernoulli", "Binomial", "Poisson", "FAMILIES", "make_family", "SamplingWarning",
    "datasets", "load",
]
