"""Shared pieces of the Chernoff kernels (math.md §2–§3): status codes, upward rounding,
the safeguarded Newton step and the greedy starting point.

Status codes (``status`` arrays):

====  =====================================================================================
 0    ``STATUS_INTERIOR``: Newton on the interior minimiser (converged).
 1    ``STATUS_ZERO``: t* = 0, B = 1 (binary: E[αᵀY] = 1/2 exactly; K classes: the top class
      sum is tied with a rival).  Nothing is certified.
 2    ``STATUS_UNBOUNDED``: binary, prediction 0 and Σ_{α>0} α < 1/2: the score can never reach
      1/2, B = 0, certified against every labelling.
 3    ``STATUS_LIMIT``: binary, prediction 0 and Σ_{α>0} α = 1/2 exactly: B = P(αᵀY = 1/2) > 0
      (the infimum is approached only as t → −∞).
 4    ``STATUS_MAXITER``: Newton hit the iteration cap.  The bound is valid, possibly loose.
====  =====================================================================================
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

STATUS_INTERIOR = 0
STATUS_ZERO = 1
STATUS_UNBOUNDED = 2
STATUS_LIMIT = 3
STATUS_MAXITER = 4

# Binary degenerate-case codes used between the decide kernel and the driver.
DEGEN_INTERIOR = 0
DEGEN_ZERO = 1
DEGEN_UNBOUNDED = 2
DEGEN_LIMIT = 3

_U = 2.0 ** -53  # unit roundoff
_INF = np.inf
#: Binary: use the greedy starting point of Newton below this q.
_SMALL_Q = 0.05
#: K classes: use the greedy starting point when log((1−q)/p₋) exceeds this.
_GREEDY_L = 3.0


@njit(cache=True)
def _up(x):
    """Next float64 above ``x`` (upward rounding after a bounded-error computation)."""
    return np.nextafter(x, _INF)


@njit(cache=True)
def _safe_step(u, gp, gpp, lo, hi, dx, dxold):
    """One safeguarded Newton step for a convex objective with bracket [lo, hi] on the root of
    g' (Numerical Recipes' rtsafe rule): take the Newton step when it stays inside the bracket
    and shrinks faster than bisection would; otherwise bisect (or double while hi = ∞).
    Returns (next u, dx, dxold)."""
    step = gp / gpp if gpp > 0.0 else _INF
    un = u - step
    if not (un > lo and un < hi) or abs(2.0 * step) > abs(dxold):
        dxold = dx
        if hi < _INF:
            dx = 0.5 * (hi - lo)
            un = lo + dx
        else:
            un = 2.0 * u if u > 0.0 else 1.0
            dx = un - u
    else:
        dxold = dx
        dx = step
    return un, dx, dxold


# --------------------------------------------------------------------------------------------
# Binary formulation (labels in {0, 1}, base rule 1{αᵀy ≥ 1/2})
# --------------------------------------------------------------------------------------------


@njit(cache=True)
def _walk_exponent_bins(sm, drift, L):
    """L / β_(k) from per-exponent sums of the gains, largest exponent first."""
    acc = 0.0
    for e in range(2047, -1, -1):
        acc += sm[e]
        if acc >= drift and sm[e] > 0.0:
            return L / math.ldexp(1.5, e - 1023)
    return -1.0


