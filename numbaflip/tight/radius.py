"""Tight (Neyman–Pearson) certified radius from a bound on log(1 − p).

Rosenfeld et al. (ICML 2020), §4 "Computing a tight bound" (eq. 2, after Lee et al. 2019);
``docs/math.md`` §4.  Radius semantics (math.md §4): r >= 0 means the smoothed classifier
keeps its prediction with probability strictly above 1/2 for every label vector within r flips;
−1 means not certified, not even at r = 0; radii are capped at n.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import cache as _tables
from . import thresholds as _thr
from ..errors import NumbaflipInputError

__all__ = ["tight_radius"]

_FIRST_CHUNK = 256


def tight_radius(log_p_wrong, q_str, K: int, n: int, method: str = "auto") -> np.ndarray:
    """Largest certified radius per point under the tight bound, int64.

    ``log_p_wrong`` holds ℓ, an UPPER bound on log(1 − p) for each point (log B from the
    Chernoff bound; for K classes the log of the union bound).  The radius is the largest
    r <= n with ℓ < L_r' for every r' <= r (strict inequality; L_r = log(1 − p_r) are the
    thresholds of :mod:`numbaflip.tight.thresholds`, rounded down and non-increasing, so a rounding
    error can only lower a radius).  −1 when ℓ >= L_0 = log(1/2) (not certified);
    n when ℓ = −inf (B = 0: certified against every labelling).

    Only as many thresholds as the batch needs are fetched: the table is extended (in chunks,
    through :func:`numbaflip.tight.cache.get_log_thresholds`) until it falls below the smallest
    finite ℓ, or reaches n.  Points with ℓ below the cheap lower bound
    log(1/2) − n log R <= L_n get n without any table.
    """
    ell = np.asarray(log_p_wrong, dtype=np.float64)
    shape = ell.shape
    ell = np.ascontiguousarray(ell.ravel())
    if np.isnan(ell).any():
        raise NumbaflipInputError(
            "log_p_wrong contains NaN; pass an upper bound on log(1 - p) for every point "
            "(use -inf for B = 0 and 0.0 when nothing is known)")
    if isinstance(n, bool) or not isinstance(n, (numbers.Integral, np.integer)) or n < 0:
        raise NumbaflipInputError(f"n must be a non-negative integer (training set size), "
                                  f"got {n!r}")
    n = int(n)
    canon = _thr.canonical_q_str(q_str, K)
    out = np.full(ell.shape, -1, dtype=np.int64)
    out[ell == -np.inf] = n
    # cheap: L_n >= log(1/2) - n log R, so a smaller ell is certified at every r <= n
    triv_n = float(_thr.trivial_log_threshold_lower(canon, K, n))
    out[ell < triv_n] = n
    todo = np.flatnonzero((ell > triv_n) | ((ell == triv_n) & np.isfinite(ell)))
    todo = todo[ell[todo] < np.log(0.5)]  # >= log(1/2) > L_0: not certified (stays -1)
    if todo.size and n > 0:
        target = float(ell[todo].min())
        r_req = min(n, _FIRST_CHUNK)
        while True:
            table = _tables.get_log_thresholds(canon, K, r_req, n=n, method=method)
            top = min(n, table.shape[0] - 1)
            if top >= n or table[top] < target:
                break
            r_req = min(n, 2 * top)
        neg = -table[: top + 1]  # non-decreasing
        count = np.searchsorted(neg, -ell[todo], side="left")  # #r with L_r > ell
        out[todo] = np.minimum(count - 1, n)
    elif todo.size:  # n == 0: only r = 0 can be certified
        table = _tables.get_log_thresholds(canon, K, 0, n=0, method=method)
        out[todo] = np.where(ell[todo] < table[0], 0, -1)
    return out.reshape(shape)
