"""numbaflip: certified robustness of linear classifiers to training-label flipping.

Public API (documented in README.md):

- :func:`certify` — certificates from features (ridge regression, Rosenfeld et al. 2020).
- :func:`certify_alpha` — certificates for any classifier linear in the one-hot labels.
- :class:`CertifyResult` — the result object.
- :func:`default_lambda`, :func:`paper_lambda` — ridge parameters (label-free / paper's rule).
- :class:`NumbaflipInputError` — raised for bad input.
"""
from ._version import __version__
from .alpha import default_lambda, paper_lambda
from .certify import CertifyResult, certify, certify_alpha
from .errors import NumbaflipInputError, NumbaflipWarning

__all__ = [
    "__version__", "certify", "certify_alpha", "CertifyResult", "default_lambda",
    "paper_lambda", "NumbaflipInputError", "NumbaflipWarning",
]
