"""numba kernels: ``@njit`` functions that only compute.

No validation and no Python objects here: callers (the public layer, through
:mod:`numbaflip._problem`) pass contiguous arrays that are already typed and checked, and the
kernels report what they could not decide through status codes and flags.

* :mod:`.common` — status codes, upward rounding, safeguarded Newton step.
* :mod:`.binary` — binary Chernoff bound (paper eq. 6, Algorithm 1).
* :mod:`.pairwise` — K-class pairwise Chernoff bounds and the union bound (appendix B).
* :mod:`.exact` — the exact certificate of the deterministic rules (math.md §5).
* :mod:`.thresholds` — float64 tight thresholds (paper §4, Lee et al. 2019).
"""
