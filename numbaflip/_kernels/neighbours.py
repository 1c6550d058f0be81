"""k nearest neighbours for :class:`numbaflip.learners.KNN`: screening of a blocked distance
product, then an exact selection by (direct squared distance, training index).

Per test row h the caller passes G = H Xᵀ (one BLAS product per block of test rows) and the
squared norms.  For training point i the kernel forms the expansion
D_i = (−2·G_i + ‖h‖²) + ‖x_i‖² and the allowance E_i = ((‖h‖ + ‖x_i‖)²)·c, c = 4(d + 4)u,
which covers (with slack for the rounding of D ± E itself) the sum of the γ-bounds of the
expansion and of the direct sum, any summation order.  So the direct squared distance

    dd_i = Σ_l (h_l − x_il)²,  summed in order l = 0, 1, …, d−1

(one rounding per subtraction, product and addition: no fused multiply-add, no reassociation;
the value of the NumPy loop ``dd += (X[:, l] − h[l])**2``) lies in [lo_i, up_i] =
[D_i − E_i, D_i + E_i].  The neighbours are the k smallest by (dd, index).  With T the k-th
smallest up and L the k-th smallest lo (L ≤ the k-th smallest dd ≤ T):

* a point with lo_i > T is not a neighbour (dd_i > the k-th smallest dd);
* a point with up_i < L is a neighbour, whatever the ties (dd_i < the k-th smallest dd);
* the remaining *boundary* points (lo_i ≤ T, up_i ≥ L: a handful, since E is ~d·u relative)
  get their direct sum dd_i, and the k − #sure smallest of them by (dd, index) complete the set.

Two ways to T and L, the same neighbours either way:

* k ≪ n (8k ≤ n, n > 4096; :func:`_knn_row`): a sample of the row gives a bracket
  P1 ≤ P2, one pass over the row keeps the "low" points (up < P1) and the "mid" points
  (up ≥ P1, lo ≤ P2), and T and a lower bound V ≤ L come from the short mid list; a bracket
  that misses (rare: data ordered against the sample) redoes the row in full;
* otherwise (:func:`_knn_row_full`): lo and up stored for the row, T and L by a selection
  without sort (:func:`_select_value`: a strided sample brackets the rank, one pass keeps
  the values in the bracket, a quickselect finishes).  The output row
is in increasing training index.  Nothing here validates: a non-finite D or E sets ``status[j]``
(the caller raises) and the row's output is then unspecified.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .common import _chunk

KNN_OK = 0
KNN_NOT_FINITE = 1
KNN_INCONSISTENT = 2


@njit(cache=True)
def _median3(a, b, c):
    if a < b:
        if b < c:
            return b
        return c if a < c else a
    if a < c:
        return a
    return c if b < c else b


@njit(cache=True)
def _kth_smallest(a, m, kk):
    """The kk-th smallest (0-based) of a[0:m], reordering a[0:m] in place.

    Three-way quickselect (median-of-three pivot), expected O(m) also with many equal values;
    after 2·log2(m) + 8 rounds the remaining range is sorted (O(m log m) worst case).  The
    values must not be NaN."""
    lo = 0
    hi = m - 1
    rounds = 0
    limit = 2 * int(math.log2(m + 1)) + 8
    while lo < hi:
        if rounds >= limit:
            a[lo:hi + 1] = np.sort(a[lo:hi + 1])
            return a[kk]
        rounds += 1
        p = _median3(a[lo], a[(lo + hi) // 2], a[hi])
        lt = lo
        i = lo
        gt = hi
        while i <= gt:
            v = a[i]
            if v < p:
                a[i] = a[lt]
                a[lt] = v
                lt += 1
                i += 1
            elif v > p:
                a[i] = a[gt]
                a[gt] = v
                gt -= 1
            else:
                i += 1
        if kk < lt:
            hi = lt - 1
        elif kk > gt:
            lo = gt + 1
        else:
            return p
    return a[kk]


#: Chunks of test rows per driver call, each allocating its scratch (12 arrays of n) once:
#: few enough that the scratch of a call stays small (first-touch page faults), enough for
#: load balance on a few threads (a constant: a cached kernel cannot ask for the threads).
_CHUNKS = 32
#: Below this many values, :func:`_select_value` copies and quickselects directly.
_SMALL = 1024


@njit(cache=True)
def _select_value(a, m, kk, work):
    """The kk-th smallest (0-based) of a[0:m], a unchanged; ``work``: scratch of length ≥ m.

    Floyd–Rivest style: the values at a strided sample of about m^(2/3) positions are sorted,
    two of them bracket rank kk by ±(3σ + 4) sample ranks, one branch-free pass counts the
    values below the bracket and keeps those inside it, and a quickselect finishes on those.
    When the bracket misses rank kk (rare; data ordered adversarially) the whole array is
    quickselected.  Exact either way: the result is the order statistic itself."""
    if m <= _SMALL:
        for i in range(m):
            work[i] = a[i]
        return _kth_smallest(work, m, kk)
    s = min(max(int(m ** (2.0 / 3.0)), 256), m // 4)
    for t in range(s):
        work[t] = a[(t * m) // s]
    smp = np.sort(work[:s])
    p = (kk + 0.5) / m
    r = p * s
    delta = 3.0 * math.sqrt(s * p * (1.0 - p)) + 4.0
    ilo = int(math.floor(r - delta))
    ihi = int(math.ceil(r + delta))
    plo = smp[ilo] if ilo >= 0 else -np.inf
    phi = smp[ihi] if ihi < s else np.inf
    below = 0
    mid = 0
    for i in range(m):
        v = a[i]
        work[mid] = v
        below += 1 if v < plo else 0
        mid += 1 if (v >= plo and v <= phi) else 0
    if below <= kk < below + mid:
        return _kth_smallest(work, mid, kk - below)
    for i in range(m):
        work[i] = a[i]
    return _kth_smallest(work, m, kk)


@njit(cache=True)
def _bounds_row(g, hsq, hn, sq, norm, c, lo, up):
    """lo[i], up[i] = D_i ∓ E_i for one row; False when some D or E is not finite."""
    n = g.shape[0]
    ok = True
    for i in range(n):
        d = (g[i] * -2.0 + hsq) + sq[i]
        s = hn + norm[i]
        e = (s * s) * c
        ok = ok & (math.isfinite(d) & math.isfinite(e))
        lo[i] = d - e
        up[i] = d + e
    return ok


@njit(cache=True)
def _split_row(lo, up, T, L, sure, bnd):
    """Sure neighbours (up < L) into sure[0:ns], boundary points (lo ≤ T, up ≥ L) into
    bnd[0:nb], both in increasing index; returns (ns, nb)."""
    ns = 0
    nb = 0
    for i in range(lo.shape[0]):
        u = up[i]
        sure[ns] = i
        bnd[nb] = i
        ns += 1 if u < L else 0
        nb += 1 if (lo[i] <= T and u >= L) else 0
    return ns, nb


@njit(cache=True)
def _direct_sq(h, X, cand, nc, dd):
    """dd[t] = Σ_l (h_l − X[cand[t], l])², summed in order l = 0..d−1.  Four candidates at a
    time in independent accumulators (each sum is still in order: the grouping does not
    change any value)."""
    d = h.shape[0]
    t = 0
    while t + 4 <= nc:
        i0, i1, i2, i3 = cand[t], cand[t + 1], cand[t + 2], cand[t + 3]
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for ll in range(d):
            hl = h[ll]
            e0 = hl - X[i0, ll]
            e1 = hl - X[i1, ll]
            e2 = hl - X[i2, ll]
            e3 = hl - X[i3, ll]
            s0 += e0 * e0
            s1 += e1 * e1
            s2 += e2 * e2
            s3 += e3 * e3
        dd[t] = s0
        dd[t + 1] = s1
        dd[t + 2] = s2
        dd[t + 3] = s3
        t += 4
    while t < nc:
        i0 = cand[t]
        s0 = 0.0
        for ll in range(d):
            e0 = h[ll] - X[i0, ll]
            s0 += e0 * e0
        dd[t] = s0
        t += 1


@njit(cache=True)
def _take_smallest(bnd, nb, dd, need, work, keep):
    """keep[t] = True for the ``need`` smallest of bnd[0:nb] by (dd[t], index) (bnd is in
    increasing index, so among equal dd the first ones win)."""
    if need >= nb:
        for t in range(nb):
            keep[t] = True
        return
    kth = _select_value(dd, nb, need - 1, work) if need > 0 else -np.inf
    below = 0
    for t in range(nb):
        if dd[t] < kth:
            below += 1
    ties = need - below
    for t in range(nb):
        v = dd[t]
        keep[t] = v < kth or (v == kth and ties > 0)
        if v == kth and ties > 0:
            ties -= 1


@njit(cache=True)
def _knn_row_full(g, h, X, hsq, hn, sq, norm, k, c, want_dist, s, idx_out, dist_out):
    """One test row, every bound lo/up stored (the fallback of :func:`_knn_row`):
    idx_out (k,) in increasing index; dist_out the direct squared distances
    when ``want_dist`` (else those of the boundary points, 0 for the sure ones).  ``s``: the
    per-chunk scratch (lo, up, work, dd, sure, bnd, keep).  Returns KNN_OK, KNN_NOT_FINITE,
    or KNN_INCONSISTENT (the enclosure dd ∈ [lo, up] failed: a bug, never silently used)."""
    lo, up, work, dd, sure, bnd, keep = s[0], s[1], s[2], s[3], s[4], s[5], s[6]
    n = g.shape[0]
    if not _bounds_row(g, hsq, hn, sq, norm, c, lo, up):
        return KNN_NOT_FINITE
    if k >= n:
        ns, nb = n, 0
        for i in range(n):
            sure[i] = i
    else:
        T = _select_value(up, n, k - 1, work)
        L = _select_value(lo, n, k - 1, work)
        ns, nb = _split_row(lo, up, T, L, sure, bnd)
        if ns > k or ns + nb < k:
            return KNN_INCONSISTENT
    return _finish_row(h, X, k, want_dist, sure, ns, bnd, nb, dd, work, keep, idx_out,
                       dist_out)


@njit(cache=True)
def _finish_row(h, X, k, want_dist, sure, ns, bnd, nb, dd, work, keep, idx_out, dist_out):
    """Direct sums of the boundary points, the k − ns smallest of them by (dd, index), merged
    with the sure points into idx_out (increasing index)."""
    _direct_sq(h, X, bnd, nb, dd)
    _take_smallest(bnd, nb, dd, k - ns, work, keep)
    # merge the sure points and the kept boundary points, both in increasing index
    a = 0
    o = 0
    for t in range(nb):
        if not keep[t]:
            continue
        while a < ns and sure[a] < bnd[t]:
            idx_out[o] = sure[a]
            dist_out[o] = 0.0
            a += 1
            o += 1
        idx_out[o] = bnd[t]
        dist_out[o] = dd[t]
        o += 1
    while a < ns:
        idx_out[o] = sure[a]
        dist_out[o] = 0.0
        a += 1
        o += 1
    if want_dist:     # every selected point (boundary ones again: the same values)
        _direct_sq(h, X, idx_out, k, dist_out)
    return KNN_OK


#: The bracket sample of :func:`_sample_bracket`: _LINES runs of _RUN consecutive training
#: points (one cache line of the product row each), spread evenly over the row.
_LINES = 128
_RUN = 8


@njit(cache=True)
def _sample_bracket(g, hsq, hn, sq, norm, c, k, slo, sup):
    """(P1, P2) with P1 ≤ P2 that likely bracket the k-th smallest lo and up: the values of
    lo at sample rank ilo and of up at sample rank ihi = ilo + 2(3σ + 4) over a sample of
    _LINES · _RUN training points in evenly spaced runs (slo, sup: scratch).  Any P1 ≤ P2
    gives the same neighbours; the sample only decides how short the mid list is."""
    n = g.shape[0]
    s = 0
    for t in range(_LINES):
        i0 = ((t * n) // _LINES) & ~(_RUN - 1)
        for i in range(i0, min(i0 + _RUN, n)):
            d = (g[i] * -2.0 + hsq) + sq[i]
            r = hn + norm[i]
            e = (r * r) * c
            slo[s] = d - e
            sup[s] = d + e
            s += 1
    p = (k - 0.5) / n
    delta = 3.0 * math.sqrt(s * p * (1.0 - p)) + 4.0
    ilo = int(math.floor(p * s - delta))
    ihi = int(math.ceil(p * s + delta))
    P1 = _kth_smallest(slo, s, ilo) if ilo >= 0 else -np.inf
    P2 = _kth_smallest(sup, s, ihi) if ihi < s else np.inf
    return P1, P2


@njit(cache=True)
def _one_pass(g, hsq, hn, sq, norm, c, P1, P2, s):
    """One pass over the row: points with up < P1 ("low": index and up) and points with
    up ≥ P1, lo ≤ P2 ("mid": index, lo, up); the others have lo > P2.  Returns (nl, nm, ok),
    ok False when some D or E is not finite."""
    low_i, low_up, mid_i, mid_lo, mid_up = s[7], s[8], s[9], s[10], s[11]
    n = g.shape[0]
    nl = 0
    nm = 0
    ok = True
    for i in range(n):
        d = (g[i] * -2.0 + hsq) + sq[i]
        r = hn + norm[i]
        e = (r * r) * c
        ok = ok & (math.isfinite(d) & math.isfinite(e))
        lo = d - e
        up = d + e
        low_i[nl] = i
        low_up[nl] = up
        mid_i[nm] = i
        mid_lo[nm] = lo
        mid_up[nm] = up
        is_low = up < P1
        nl += 1 if is_low else 0
        nm += 1 if (not is_low and lo <= P2) else 0
    return nl, nm, ok


@njit(cache=True)
def _split_lists(nl, nm, T, V, s):
    """Sure points (up < V) and boundary points (up ≥ V, lo ≤ T) of the low and mid lists,
    merged in increasing index into s[4] / s[5]; returns (ns, nb).  Low points all have
    lo < P1 ≤ T."""
    sure, bnd = s[4], s[5]
    low_i, low_up, mid_i, mid_lo, mid_up = s[7], s[8], s[9], s[10], s[11]
    a = 0
    b = 0
    ns = 0
    nb = 0
    while a < nl or b < nm:
        if b >= nm or (a < nl and low_i[a] < mid_i[b]):
            i = low_i[a]
            up = low_up[a]
            cand = True
            a += 1
        else:
            i = mid_i[b]
            up = mid_up[b]
            cand = mid_lo[b] <= T
            b += 1
        if up < V:
            sure[ns] = i
            ns += 1
        elif cand:
            bnd[nb] = i
            nb += 1
    return ns, nb


@njit(cache=True)
def _knn_row(g, h, X, hsq, hn, sq, norm, k, c, want_dist, s, idx_out, dist_out):
    """One test row in one pass over the training points (:func:`_one_pass`): with P1, P2
    from a sample, T = the k-th smallest up and V = a lower bound on the k-th smallest lo
    come from the short mid list (see the module docstring; V ≤ the k-th smallest lo
    because at most k − 1 lo values lie below it).  When the bracket misses (rare), the row
    is redone by :func:`_knn_row_full`.  Returns a KNN_* code."""
    n = g.shape[0]
    if k >= n or n <= 4 * _SMALL or 8 * k > n:     # one pass pays off for k ≪ n
        return _knn_row_full(g, h, X, hsq, hn, sq, norm, k, c, want_dist, s, idx_out,
                             dist_out)
    P1, P2 = _sample_bracket(g, hsq, hn, sq, norm, c, k, s[0], s[1])
    nl, nm, ok = _one_pass(g, hsq, hn, sq, norm, c, P1, P2, s)
    if not ok:
        return KNN_NOT_FINITE
    rank = k - 1 - nl
    if rank < 0 or rank >= nm:
        return _knn_row_full(g, h, X, hsq, hn, sq, norm, k, c, want_dist, s, idx_out,
                             dist_out)
    T = _select_value(s[11], nm, rank, s[2])
    V = _select_value(s[10], nm, rank, s[2])
    if T > P2 or V > P2:
        return _knn_row_full(g, h, X, hsq, hn, sq, norm, k, c, want_dist, s, idx_out,
                             dist_out)
    ns, nb = _split_lists(nl, nm, T, V, s)
    if ns > k or ns + nb < k:
        return KNN_INCONSISTENT
    return _finish_row(h, X, k, want_dist, s[4], ns, s[5], nb, s[3], s[2], s[6], idx_out,
                       dist_out)


@njit(parallel=True, cache=True)
def _knn_driver(G, H, X, hsq, hn, sq, norm, k, c, want_dist, idx, dist, status):
    """Rows j of G (= H Xᵀ): idx[j] (k,) the k nearest training points by (direct squared
    distance, index) in increasing index, dist[j] their direct squared distances when
    ``want_dist``; status[j] a KNN_* code (:func:`_knn_row`)."""
    b, n = G.shape
    nch = min(b, _CHUNKS)
    for ch in prange(nch):
        lo, hi = _chunk(ch, b, nch)
        s = (np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n, np.int64),
             np.empty(n, np.int64), np.empty(n, np.bool_), np.empty(n, np.int64),
             np.empty(n), np.empty(n, np.int64), np.empty(n), np.empty(n))
        for j in range(lo, hi):
            status[j] = _knn_row(G[j], H[j], X, hsq[j], hn[j], sq, norm, k, c, want_dist,
                                 s, idx[j], dist[j])
