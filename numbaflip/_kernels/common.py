"""Shared pieces of the Chernoff kernels (math.md §2–§3): status codes, upward rounding,
compensated summation, the safeguarded Newton update, the greedy gain of a label move and the
greedy starting point built from it, chunking of test points and an allocation-free argsort.

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
#: Parallel kernels split the test points into at most this many contiguous chunks, each
#: allocating its scratch once (a constant, not the thread count: numba cannot cache a
#: kernel that calls get_num_threads(); 256 is several chunks per thread on usual machines).
_MAX_CHUNKS = 256


@njit(cache=True)
def _up(x):
    """Next float64 above ``x`` (upward rounding after a bounded-error computation)."""
    return np.nextafter(x, _INF)


@njit(cache=True)
def _neumaier(s, comp, term):
    """One step of Neumaier's compensated summation: returns the new (sum, compensation)."""
    tmp = s + term
    if abs(s) >= abs(term):
        comp += (s - tmp) + term
    else:
        comp += (term - tmp) + s
    return tmp, comp


@njit(cache=True)
def _nchunks(m):
    """Contiguous chunks of the m test points per parallel kernel; each chunk allocates its
    scratch once.  Results do not depend on the chunking."""
    return min(m, _MAX_CHUNKS)


@njit(cache=True)
def _argmax(v, K):
    """First index of the largest of v[0:K] (the lowest index wins ties)."""
    c = 0
    for k in range(1, K):
        if v[k] > v[c]:
            c = k
    return c


@njit(cache=True)
def _chunk(ch, m, nch):
    """[lo, hi) of chunk ``ch`` out of ``nch`` over m test points."""
    return (ch * m) // nch, ((ch + 1) * m) // nch


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


@njit(cache=True)
def _newton_init(u0):
    """State of the safeguarded Newton loops before the first evaluation at u0:
    (lo, hi, dx, dxold, best value, its error bound, its u)."""
    return 0.0, _INF, _INF, _INF, _INF, 0.0, u0


@njit(cache=True)
def _newton_step(u, f, gp, gpp, err, tol, st):
    """One iteration of safeguarded Newton for min_{u>0} g(u), g convex with g'(0) < 0: the
    loop body shared by the binary and the pairwise solves (the callers only evaluate).

    ``f``, ``gp``, ``gpp``, ``err``: g(u), g'(u), g''(u) and the error bound on g(u); ``tol``:
    the stopping tolerance on the Newton decrement g'²/g''; ``st``: :func:`_newton_init`'s
    state.  The value kept is the smallest g + err seen, so stopping anywhere is sound (every
    u > 0 gives a valid bound).  Returns (converged, next u, state).
    """
    lo, hi, dx, dxold, best_val, best_err, best_u = st
    val = f + err
    if val < best_val:
        best_val, best_err, best_u = val, err, u
    if gp < 0.0:
        lo = u
    elif gp > 0.0:
        hi = u
    else:
        return True, u, (lo, hi, dx, dxold, best_val, best_err, best_u)
    dec = gp * gp / gpp if gpp > 0.0 else _INF
    if dec <= tol:
        return True, u, (lo, hi, dx, dxold, best_val, best_err, best_u)
    un, dx, dxold = _safe_step(u, gp, gpp, lo, hi, dx, dxold)
    if hi < _INF and hi - lo <= 4.0 * _U * hi:
        return True, u, (lo, hi, dx, dxold, best_val, best_err, best_u)
    return False, un, (lo, hi, dx, dxold, best_val, best_err, best_u)


# --------------------------------------------------------------------------------------------
# Greedy starting point (small q): the gain of one label move and a histogram over exponents
# --------------------------------------------------------------------------------------------


@njit(cache=True)
def _gain(aj, lab, c, r, w):
    """How much moving training point j's label lowers the margin s_c − s_r (the one greedy
    rule of the binary and K-class kernels, and the order of the exact certificate).

    A point of class c with α_j > 0 moving away gains w·α_j, a point of class r with α_j < 0
    moving away gains w·|α_j| (w = 2 for the K-class margin: the label leaves c and joins r,
    or leaves r), and a point of any other class gains |α_j| by moving to r (α_j > 0) or to c
    (α_j < 0).  The binary score αᵀy − 1/2 is the pair (c, r) = (1, 0) for prediction 1 and
    (0, 1) for prediction 0 with w = 1 (a flip changes αᵀy by α_j, not 2α_j): there
    ``_gain(α_i, y_i, c, 1 − c, 1.0)`` is exactly side·α_i·(2y_i − 1) where that is positive.
    """
    if lab == c:
        return w * aj if aj > 0.0 else 0.0
    if lab == r:
        return -w * aj if aj < 0.0 else 0.0
    return abs(aj)


@njit(cache=True)
def _greedy_start(a, y, c, r, w, L, drift, hist, hbuf):
    """L / b_(k), b_(k) the k-th largest gain (:func:`_gain`) with b_(1) + … + b_(k) ≥ drift,
    located within a factor 2 by a histogram over the binary exponents of the gains (one
    pass, no sort, no logarithms); −1 when the gains never reach ``drift``.

    ``hist`` (2048 floats) and ``hbuf`` (1 float) are caller's scratch, overwritten.
    """
    for e in range(2048):
        hist[e] = 0.0
    bits = hbuf.view(np.int64)
    for i in range(a.shape[0]):
        b = _gain(a[i], y[i], c, r, w)
        if b > 0.0:
            hbuf[0] = b
            hist[(bits[0] >> 52) & 0x7FF] += b
    return _walk_exponent_bins(hist, drift, L)


@njit(cache=True)
def _walk_exponent_bins(sm, drift, L):
    """L / β_(k) from per-exponent sums of the gains, largest exponent first."""
    acc = 0.0
    for e in range(2047, -1, -1):
        acc += sm[e]
        if acc >= drift and sm[e] > 0.0:
            return L / math.ldexp(1.5, e - 1023)
    return -1.0




# --------------------------------------------------------------------------------------------
# argsort into caller's scratch
# --------------------------------------------------------------------------------------------


@njit(cache=True)
def _lt(a, b):
    """NumPy's float order (NaN last), as numba's sorts use it."""
    return a < b or (np.isnan(b) and not np.isnan(a))


@njit(cache=True)
def _insertion_argsort(A, R, low, high):
    for i in range(low + 1, high + 1):
        k = R[i]
        v = A[k]
        j = i
        while j > low and _lt(v, A[R[j - 1]]):
            R[j] = R[j - 1]
            j -= 1
        R[j] = k


@njit(cache=True)
def _partition_argsort(A, R, low, high):
    mid = (low + high) >> 1
    if _lt(A[R[mid]], A[R[low]]):
        R[low], R[mid] = R[mid], R[low]
    if _lt(A[R[high]], A[R[mid]]):
        R[high], R[mid] = R[mid], R[high]
    if _lt(A[R[mid]], A[R[low]]):
        R[low], R[mid] = R[mid], R[low]
    pivot = A[R[mid]]
    R[high], R[mid] = R[mid], R[high]
    i = low
    j = high - 1
    while True:
        while i < high and _lt(A[R[i]], pivot):
            i += 1
        while j >= low and _lt(pivot, A[R[j]]):
            j -= 1
        if i >= j:
            break
        R[i], R[j] = R[j], R[i]
        i += 1
        j -= 1
    R[i], R[high] = R[high], R[i]
    return i


@njit(cache=True)
def _argsort_into(A, R, stack):
    """R ← np.argsort(A) (1-D float64) without allocating: the same algorithm as numba's
    default (quicksort) ``np.argsort``, step for step, so ties come out in the same order.
    ``stack`` is an int64 (64, 2) scratch (depth ≤ log₂ len(A): the smaller side is looped)."""
    n = A.shape[0]
    for i in range(n):
        R[i] = i
    if n < 2:
        return
    stack[0, 0] = 0
    stack[0, 1] = n - 1
    top = 1
    while top > 0:
        top -= 1
        low = stack[top, 0]
        high = stack[top, 1]
        while high - low >= 15:   # numba's SMALL_QUICKSORT
            i = _partition_argsort(A, R, low, high)
            if high - i > i - low:
                if high > i:
                    stack[top, 0] = i + 1
                    stack[top, 1] = high
                    top += 1
                high = i - 1
            else:
                if i > low:
                    stack[top, 0] = low
                    stack[top, 1] = i - 1
                    top += 1
                low = i + 1
        _insertion_argsort(A, R, low, high)
