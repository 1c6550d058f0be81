"""numbaflip: certified robustness of linear classifiers to training-label flipping.

Public API (documented in README.md):

- :func:`certify` — certificates from features (ridge regression, Rosenfeld et al. 2020).
- :func:`certify_alpha` — certificates for any classifier linear in the one-hot labels.
- :class:`CertifyResult` — the result object.
- :func:`default_lambda`, :func:`paper_lambda` — ridge parameters (label-free / paper's rule).
- :func:`attack`, :func:`attack_alpha`, :class:`AttackResult` — explicit minimal label-flip
  attacks (upper bounds next to the certified lower bounds).
- :mod:`numbaflip.learners` — label-free learners for ``certify(..., learner=...)``:
  :class:`Ridge`, :class:`KNN`, :class:`RBFRidge` (random Fourier features).
- :class:`NumbaflipInputError` — raised for bad input.
- :mod:`numbaflip.config` — tunables (speed and tightness only, never soundness).
"""
from . import config, learners
from ._version import __version__
from .alpha import default_lambda, paper_lambda
from .attack import AttackResult, attack, attack_alpha
from .certify import CertifyResult, certify, certify_alpha
from .errors import NumbaflipInputError, NumbaflipWarning
from .learners import KNN, RBFRidge, Ridge

__all__ = [
    "__version__", "certify", "certify_alpha", "CertifyResult", "default_lambda",
    "paper_lambda", "attack", "attack_alpha", "AttackResult", "NumbaflipInputError",
    "NumbaflipWarning", "config", "learners", "Ridge", "KNN", "RBFRidge",
]
