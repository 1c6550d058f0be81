"""numbaflip: certified robustness of linear classifiers to training-label flipping."""
from ._version import __version__
