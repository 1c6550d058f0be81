"""The tight (Neyman–Pearson) certificate (paper §4, Lee et al. 2019; math.md §4).

One way through: :func:`tight_radius` canonicalises q once, then for each chunk of radii asks
:func:`cache.get_log_thresholds` (memory → shipped or MAC-checked disk table → build with
:mod:`.thresholds` → store).

* :mod:`.thresholds` — the thresholds L_r, rounded down (float64 kernel + exact path).
* :mod:`.cache` — the `.npz` table cache keyed by (q, K, n) and its integrity rules.
* :mod:`.precompute` — ``numbaflip precompute``.
* :mod:`.radius` — :func:`tight_radius` from a bound on log(1 − p).
"""
from .radius import tight_radius

__all__ = ["tight_radius"]
