"""Histograms of α built on training-set partitions and merged (math.md §2b; docs/scaling.md §2).

A part of the training set holds rows i ∈ p of α for a block of test points.  It never sends
α: per test point it sends

* its **group sums** (:func:`part_stats`): per (label, sign) Σα over the α of that sign, per
  label Σα², max |α| and the largest biased exponent of α;
* after the coordinator has merged the exponents (the global ``top``), its **histogram cells**
  (:func:`part_cells`): per occupied (label, bucket) the count c and Ŝ₁ = Σδ, Ŝ₂ = Σδ², with
  the bucket key and centre of :mod:`.histogram` computed from the *global* top, so the key of
  a training point is the one the in-process histogram gives it;
* for the exact certificate (§5), its largest helpful moves, keyed by the largest gain
  multiplier × |α| with their (label, sign) group (:func:`part_moves`), and a bound on the
  keys it did not send.

**Why the merged sums keep the error bounds.**  Cells with the same key add (:func:`merge_cells`
in a tree of tasks, :func:`load_binary` / :func:`load_mc` on the coordinator).  Counts add
exactly.  Ŝ₁ and Ŝ₂ of a merged cell are float64 sums of its c deviations (squares), computed
along *some* binary tree: the part's running sum, then the merge tree.  Any binary tree with c
leaves has c − 1 additions and height at most c − 1, so the rounding error is at most
γ_{c−1}·Σ|δ| ≤ γ_c·c·h for Ŝ₁ and γ_c·Ŝ₂ (plus one rounding per square) for Ŝ₂: exactly the
bounds :mod:`.histogram` and :mod:`.histogram_pairwise` already charge with c the merged count
(``_fill_factors`` column 6, ``_group_value``'s e1, the γ_{c+1} terms).  The merge adds no
rounding those bounds do not cover; the extra additions are among the c − 1 a sum of c terms
has in any order.  The same argument covers the group sums: a group holds values of one sign,
so any summation order errs by at most γ_{n}·|sum|, and a class sum or Σα formed from group
sums is a sum of n terms along one more tree (error ≤ γ_n·Σ|α|).  The coordinator's decisions
use a band of twice those bounds; everything inside the band (possible ties, the degenerate
cases of math.md §2) is settled exactly on the assembled α rows, never here.

Layout of a cell set for b test points: ``ptr`` (b+1) int64, row j's cells at
``ptr[j]:ptr[j+1]`` of ``key`` (int32, label·N_BUCKETS + bucket), ``cnt`` (int32), ``s1``,
``s2`` (float64): 24 bytes per cell.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .common import _INF, _U, _argsort_into, _up
from .exact import (NOCROSS, _ERRF, _add_down, _add_up, _div_down, _div_up, _mul_down,
                    _mul_up, _out_of_reach, _sort_desc, _STACK, _two_sum, _walk)
from .histogram import (N_BUCKETS, N_COARSE, N_COLS, _bucket_centre, _bucket_of, _centre_bits,
                        _fill_factors, _lower_bound, _newton_model, _polish, coarsen,
                        model_value, _top_exponent)
from .histogram_pairwise import _merge_abs, _others, _rival, coarsen_mc
from .pairwise import _bernstein, _lse_up, _noise_consts
from .histogram_pairwise import _lse_down

_ABS = np.int64(0x7FFFFFFFFFFFFFFF)


@njit(cache=True)
def gamma(k):
    """γ_k = k·u/(1 − k·u)."""
    return k * _U / (1.0 - k * _U)


# ============================================================================================
# part side
# ============================================================================================

@njit(parallel=True, cache=True)
def part_stats(A, y, nlab, sums, sq, amax, top):
    """Per row of the part's α block: sums[j, 2L] = Σ_{y=L, α>0} α, sums[j, 2L+1] =
    Σ_{y=L, α<0} α, sq[j, L] = Σ_{y=L} α², amax[j] = max |α|, top[j] = largest biased
    exponent (:func:`.histogram._top_exponent`)."""
    for j in prange(A.shape[0]):
        a = A[j]
        loc = np.zeros(3 * nlab)         # branch-free: the sign picks the slot (0 adds 0)
        mx = 0.0
        for i in range(a.shape[0]):
            v = a[i]
            L = y[i]
            loc[2 * L + (1 if v < 0.0 else 0)] += v
            loc[2 * nlab + L] += v * v
            mx = max(mx, abs(v))
        for g in range(2 * nlab):
            sums[j, g] = loc[g]
        for L in range(nlab):
            sq[j, L] = loc[2 * nlab + L]
        amax[j] = mx
        top[j] = _top_exponent(a)


@njit(cache=True)
def _accumulate(a, y, top, mc, S, acc, occ):
    """The bucketing pass of :func:`.histogram.build_histogram` (binary, ``mc`` False) or
    :func:`.histogram_pairwise.build_histogram_mc` (``mc`` True: signed buckets per slot label
    and the centre bucket of |α| as label S) with the given (global) ``top``; returns nocc."""
    bits = a.view(np.int64)
    cb = np.empty(1, np.int64)
    cf = cb.view(np.float64)
    nocc = 0
    for i in range(a.shape[0]):
        b = bits[i]
        kb = _bucket_of(b, top)
        cb[0] = _centre_bits(b, kb)
        d = a[i] - cf[0]                  # exact (Sterbenz; centre 0 in the centre bucket)
        for rep in range(2):
            if rep == 0:
                k = y[i] * N_BUCKETS + kb
            elif mc and kb == N_BUCKETS - 1:
                k = S * N_BUCKETS + kb
                d = abs(a[i])
            else:
                break
            if acc[k, 0] == 0.0:
                occ[nocc] = k
                nocc += 1
            acc[k, 0] += 1.0
            acc[k, 1] += d
            acc[k, 2] += d * d
    return nocc


@njit(parallel=True, cache=True)
def part_count_cells(A, y, top, need, mc, S, counts):
    """Pass 1 of :func:`part_cells`: the number of occupied cells of each needed row."""
    b = A.shape[0]
    nch = max(1, min(b, 64))
    nk = (S + 1) * N_BUCKETS
    for ch in prange(nch):
        acc = np.zeros((nk, 3))
        occ = np.empty(nk, np.int64)
        for j in range(ch * b // nch, (ch + 1) * b // nch):
            counts[j] = 0
            if not need[j]:
                continue
            nocc = _accumulate(A[j], y, top[j], mc, S, acc, occ)
            counts[j] = nocc
            for t in range(nocc):
                acc[occ[t], 0] = 0.0
                acc[occ[t], 1] = 0.0
                acc[occ[t], 2] = 0.0


@njit(parallel=True, cache=True)
def part_cells(A, y, top, need, mc, S, ptr, key, cnt, s1, s2):
    """Pass 2: the cells of each needed row (``ptr`` from the counts of pass 1)."""
    b = A.shape[0]
    nch = max(1, min(b, 64))
    nk = (S + 1) * N_BUCKETS
    for ch in prange(nch):
        acc = np.zeros((nk, 3))
        occ = np.empty(nk, np.int64)
        for j in range(ch * b // nch, (ch + 1) * b // nch):
            if not need[j]:
                continue
            nocc = _accumulate(A[j], y, top[j], mc, S, acc, occ)
            p = ptr[j]
            for t in range(nocc):
                k = occ[t]
                key[p + t] = k
                cnt[p + t] = np.int32(acc[k, 0])
                s1[p + t] = acc[k, 1]
                s2[p + t] = acc[k, 2]
                acc[k, 0] = 0.0
                acc[k, 1] = 0.0
                acc[k, 2] = 0.0


@njit(cache=True)
def _group_of(v, lab):
    """Candidate group of a training point: 2·label (α > 0) or 2·label + 1 (α < 0); −1 for 0."""
    if v > 0.0:
        return 2 * lab
    if v < 0.0:
        return 2 * lab + 1
    return -1


@njit(cache=True)
def _mult(g, c, mc):
    """Largest gain multiplier of a training point of group g against any rival when the
    prediction is c (0: never a helpful move; math.md §5).  Binary: |α| for the groups
    (y=1, α>0), (y=0, α<0) (prediction 1) or the other two (prediction 0).  K classes: 2|α|
    for (c, α>0) and for every (y, α<0), y ≠ c (against rival y), |α| for (y, α>0), y ≠ c;
    (c, α<0) never helps."""
    if g < 0:
        return 0.0
    if not mc:
        if c == 1:
            return 1.0 if (g == 2 or g == 1) else 0.0
        return 1.0 if (g == 0 or g == 3) else 0.0
    if g == 2 * c + 1:
        return 0.0
    if g == 2 * c or g % 2 == 1:
        return 2.0
    return 1.0


@njit(parallel=True, cache=True)
def part_count_moves(A, y, pred, rows, mc, L, counts):
    """min(L, number of helpful moves) of each of ``rows`` (0 elsewhere)."""
    for r in prange(rows.shape[0]):
        j = rows[r]
        cnt = 0
        for i in range(A.shape[1]):
            if _mult(_group_of(A[j, i], y[i]), pred[j], mc) > 0.0:
                cnt += 1
        counts[j] = min(cnt, L)


@njit(parallel=True, cache=True)
def part_moves(A, y, pred, rows, mc, L, ptr, mkey, grp, bound):
    """Per row of ``rows`` one list of its largest helpful moves: the L largest keys
    mkey = (largest multiplier of the group) · |α|, descending, with their groups, at
    ptr[j]:ptr[j+1]; bound[j] ≥ the key of every helpful move not sent (0: all sent).  The
    key of a move against a given rival is at most its mkey, so the sent list holds every
    move whose key against any rival exceeds bound[j]."""
    n = A.shape[1]
    for r in prange(rows.shape[0]):
        j = rows[r]
        c = pred[j]
        kb = np.empty(n)
        gb = np.empty(n, np.int64)
        cnt = 0
        for i in range(n):
            g = _group_of(A[j, i], y[i])
            mu = _mult(g, c, mc)
            if mu > 0.0:
                kb[cnt] = mu * abs(A[j, i])
                gb[cnt] = g
                cnt += 1
        bound[j] = 0.0
        keep = min(cnt, L)
        sel = np.empty(keep, np.int64)
        if cnt > L:
            B = np.partition(kb[:cnt], cnt - L - 1)[cnt - L - 1]   # the (L+1)-th largest
            bound[j] = B
            m = 0
            for i in range(cnt):                 # keys above B, then keys equal to B
                if kb[i] > B:
                    sel[m] = i
                    m += 1
            for i in range(cnt):
                if m >= keep:
                    break
                if kb[i] == B:
                    sel[m] = i
                    m += 1
        else:
            for i in range(cnt):
                sel[i] = i
        sk = np.empty(keep)
        perm = np.empty(keep, np.int64)
        for t in range(keep):
            sk[t] = kb[sel[t]]
            perm[t] = sel[t]
        _sort_desc(sk, perm, 0, keep, np.empty(_STACK, np.int64))
        p = ptr[j]
        for t in range(keep):
            mkey[p + t] = sk[t]
            grp[p + t] = gb[perm[t]]


# ============================================================================================
# merging (tree of tasks)
# ============================================================================================

@njit(parallel=True, cache=True)
def merge_cells(S, pa, ka, ca, s1a, s2a, pb, kb, cb, s1b, s2b, pout, kout, cout, s1o, s2o,
                nout):
    """Cells of two sets added key by key, row by row; row j of the result at
    pout[j]:pout[j]+nout[j] (pout[j+1] − pout[j] is the capacity, na + nb)."""
    b = pa.shape[0] - 1
    nch = max(1, min(b, 64))
    nk = (S + 1) * N_BUCKETS
    for ch in prange(nch):
        slot = np.full(nk, -1, np.int64)
        for j in range(ch * b // nch, (ch + 1) * b // nch):
            p = pout[j]
            m = 0
            for src in range(2):
                lo = pa[j] if src == 0 else pb[j]
                hi = pa[j + 1] if src == 0 else pb[j + 1]
                for t in range(lo, hi):
                    k = ka[t] if src == 0 else kb[t]
                    c = ca[t] if src == 0 else cb[t]
                    v1 = s1a[t] if src == 0 else s1b[t]
                    v2 = s2a[t] if src == 0 else s2b[t]
                    if slot[k] < 0:
                        slot[k] = p + m
                        kout[p + m] = k
                        cout[p + m] = c
                        s1o[p + m] = v1
                        s2o[p + m] = v2
                        m += 1
                    else:
                        r = slot[k]
                        cout[r] += c
                        s1o[r] += v1
                        s2o[r] += v2
            for t in range(p, p + m):
                slot[kout[t]] = -1
            nout[j] = m


@njit(parallel=True, cache=True)
def merge_moves(L, pa, ka, ga, ba, pb, kb, gb, bb, pout, kout, gout, bout):
    """Per row: the L largest of two descending move lists (by key), and the bound on the moves
    not kept, max(both bounds, largest key dropped); output at pout[j]:pout[j+1] (which holds
    exactly min(len_a + len_b, L) entries)."""
    for j in prange(pa.shape[0] - 1):
        i, k = pa[j], pb[j]
        ie, ke = pa[j + 1], pb[j + 1]
        o = pout[j]
        m = 0
        bnd = max(ba[j], bb[j])
        while i < ie or k < ke:
            if k >= ke or (i < ie and ka[i] >= kb[k]):
                v, g = ka[i], ga[i]
                i += 1
            else:
                v, g = kb[k], gb[k]
                k += 1
            if m < L:
                kout[o + m] = v
                gout[o + m] = g
                m += 1
            else:
                bnd = max(bnd, v)
                break
        bout[j] = bnd


# ============================================================================================
# coordinator: decisions from the merged group sums
# ============================================================================================

@njit(cache=True)
def _sum_err(n, sabs):
    """Bound on the float64 error of a sum of n terms along any binary tree, Σ|terms| = sabs
    (sabs itself computed in float64: its own relative error γ_n is covered by the 2n)."""
    return gamma(2 * n + 16) * sabs


@njit(cache=True)
def binary_decide(sums, sq, n, q, smoothing, pred, ok, guess):
    """Binary decisions from merged group sums (labels 0/1; math.md §2): E = (1−2q)αᵀy + qΣα −
    1/2 and Σ_{α>0} α.  ok[j] only where the sign of E is certain and the point is interior
    (prediction 1, or prediction 0 with Σ_{α>0}α certainly above 1/2); the rest (possible zero,
    unbounded or limit case; only with ``smoothing``) is settled exactly on the α rows.
    guess: |E|/Var[αᵀY] (Newton start only)."""
    for j in range(sums.shape[0]):
        p0, n0, p1, n1 = sums[j, 0], sums[j, 1], sums[j, 2], sums[j, 3]
        s = p1 + n1
        tot = (p0 + n0) + s
        pos = p0 + p1
        e = _sum_err(n, (p0 - n0) + (p1 - n1))
        E = (1.0 - 2.0 * q) * s + q * tot - 0.5
        band = 2.0 * (e + _U * (2.0 * abs(s) + abs(tot)) +
                      8.0 * _U * (abs(s) + abs(tot) + 1.0 + abs(E)))
        ok[j] = abs(E) > band
        pred[j] = 1 if E > 0.0 else 0
        if ok[j] and pred[j] == 0 and smoothing:
            ok[j] = pos - 0.5 > 2.0 * (e + 4.0 * _U * (abs(pos) + 1.0))
        var = q * (1.0 - q) * (sq[j, 0] + sq[j, 1])
        guess[j] = abs(E) / var if var > 0.0 else 1.0
        if not (guess[j] > 0.0 and guess[j] < _INF):
            guess[j] = 1.0


@njit(cache=True)
def mc_decide(sums, n, S, pred, ok):
    """K-class decisions from merged group sums (math.md §3): argmax of the class sums; ok[j]
    only where every rival is certainly below it (no tie within twice the error bound); the
    rest is settled exactly on the α rows."""
    for j in range(sums.shape[0]):
        c = 0
        best = -_INF
        for L in range(S):
            v = sums[j, 2 * L] + sums[j, 2 * L + 1]
            if v > best:
                best, c = v, L
        pred[j] = c
        ec = _sum_err(n, sums[j, 2 * c] - sums[j, 2 * c + 1])
        good = True
        for L in range(S):
            if L == c:
                continue
            v = sums[j, 2 * L] + sums[j, 2 * L + 1]
            er = _sum_err(n, sums[j, 2 * L] - sums[j, 2 * L + 1])
            if best - v <= 2.0 * (ec + er + 2.0 * _U * (abs(best) + abs(v))):
                good = False
        ok[j] = good


# ============================================================================================
# coordinator: histogram engine on merged cells
# ============================================================================================

@njit(cache=True)
def _load(lo, hi, key, cnt, s1, s2, acc, occ):
    """Cells lo:hi into the zeroed dense scratch ``acc``; returns nocc (``occ`` their keys)."""
    nocc = 0
    for t in range(lo, hi):
        k = key[t]
        if acc[k, 0] == 0.0:
            occ[nocc] = k
            nocc += 1
        acc[k, 0] += cnt[t]
        acc[k, 1] += s1[t]
        acc[k, 2] += s2[t]
    return nocc


@njit(cache=True)
def load_binary(lo, hi, key, cnt, s1, s2, top, acc, occ, H):
    """Rows (label, a₀, h, c, Ŝ₁, Ŝ₂, factors) of :func:`.histogram.build_histogram` from
    merged cells lo:hi; returns nb (``occ`` the fine keys, ``acc`` zeroed again)."""
    nocc = _load(lo, hi, key, cnt, s1, s2, acc, occ)
    for j in range(nocc):
        k = occ[j]
        a0, h = _bucket_centre(k % N_BUCKETS, top)
        H[j, 0] = 1.0 if k >= N_BUCKETS else 0.0
        H[j, 1] = a0
        H[j, 2] = h
        H[j, 3] = acc[k, 0]
        H[j, 4] = acc[k, 1]
        H[j, 5] = acc[k, 2]
        _fill_factors(H, j)
        acc[k, 0] = 0.0
        acc[k, 1] = 0.0
        acc[k, 2] = 0.0
    return nocc


@njit(cache=True)
def load_mc(lo, hi, key, cnt, s1, s2, top, S, acc, occ, H, keys, off):
    """H, keys, off of :func:`.histogram_pairwise.build_histogram_mc` from merged cells
    (signed per slot label, plus the |α| centre bucket as label S): the |α| histogram is
    completed from the mirrored signed buckets (``_merge_abs``); returns the number of rows."""
    nocc = _load(lo, hi, key, cnt, s1, s2, acc, occ)
    nocc = _merge_abs(acc, occ, nocc, S, nocc)
    for L in range(S + 2):
        off[L] = 0
    for j in range(nocc):
        off[occ[j] // N_BUCKETS + 1] += 1
    for L in range(S + 1):
        off[L + 1] += off[L]
    for j in range(nocc):
        k = occ[j]
        L = k // N_BUCKETS
        p = off[L]
        off[L] += 1
        a0, h = _bucket_centre(k % N_BUCKETS, top)
        H[p, 0], H[p, 1], H[p, 2], H[p, 3], H[p, 4] = a0, h, acc[k, 0], acc[k, 1], acc[k, 2]
        keys[p] = k % N_BUCKETS
        acc[k, 0] = 0.0
        acc[k, 1] = 0.0
        acc[k, 2] = 0.0
    for L in range(S, 0, -1):
        off[L] = off[L - 1]
    off[0] = 0
    off[S + 1] = nocc
    return nocc


@njit(parallel=True, cache=True)
def eval_binary(ptr, key, cnt, s1, s2, top, rows, pred, guess, q, maxiter,
                out_logb, out_err, out_t, out_low, out_nb):
    """The binary histogram bound (:func:`.histogram._hist_row` after its bucketing pass) on
    the merged cells of each of ``rows``: U(t̂) rounded up, its error part, t̂, the lower bound
    on min f, the number of buckets."""
    lq = math.log(q)
    l1q = math.log1p(-q)
    nr = rows.shape[0]
    nch = max(1, min(nr, 64))
    for ch in prange(nch):
        acc = np.zeros((2 * N_BUCKETS, 3))
        occ = np.empty(2 * N_BUCKETS, np.int64)
        H = np.empty((2 * N_BUCKETS, N_COLS))
        C = np.empty((2 * N_COARSE, N_COLS))
        for r in range(ch * nr // nch, (ch + 1) * nr // nch):
            j = rows[r]
            nb = load_binary(ptr[j], ptr[j + 1], key, cnt, s1, s2, top[j], acc, occ, H)
            sd = 1.0 if pred[j] == 1 else -1.0
            u0 = guess[j]
            nc = coarsen(H, nb, occ, C)
            u = _newton_model(C, nc, sd, u0, q, lq, l1q, maxiter)
            u, d, hs, rd = _polish(H, nb, sd, u, q, lq, l1q, 3)
            t = sd * u
            m, e = model_value(H, nb, t, q, lq, l1q)
            out_nb[j] = nb
            if not (math.isfinite(m) and math.isfinite(e) and math.isfinite(t)):
                out_logb[j], out_err[j], out_t[j], out_low[j] = 0.0, 0.0, sd * u0, -_INF
                continue
            out_low[j] = _lower_bound(H, nb, t, m, e, d, hs, rd, q, lq, l1q)
            out_logb[j] = min(np.nextafter(m + e, _INF), 0.0)
            out_err[j] = e
            out_t[j] = t


@njit(cache=True)
def _screen_sums(sums, sq, amax, n, c, S, k1, v1, v0, W, t_row):
    """Rows 0–6 of ``W`` as :func:`.pairwise._screen_rivals` fills them, from the merged group
    sums instead of a pass over α (no rival is tied here).  The class sums and Σ|α| are sums
    of n terms along some tree, so the (n + 8)·u error allowance of ``_bernstein`` holds."""
    for L in range(S):
        W[0, L] = sums[2 * L] + sums[2 * L + 1]
        W[1, L] = sums[2 * L] - sums[2 * L + 1]
        W[2, L] = sq[L]
    sqtot = 0.0
    for L in range(S):
        sqtot += W[2, L]
    for k in range(S):
        W[6, k] = 0.0
        t_row[k] = 0.0
        if k == c:
            W[3, k] = -_INF
            W[5, k] = -_INF
            W[4, k] = 0.0
            continue
        ed = k1 * (W[0, c] - W[0, k])
        vd = v1 * (W[2, c] + W[2, k]) + v0 * (sqtot - W[2, c] - W[2, k])
        if vd > 0.0 and ed > 0.0:
            W[4, k] = ed / vd
            W[3, k] = -0.5 * ed * ed / vd
            W[6, k] = _bernstein(ed, vd, n, k1, W[1, c] + W[1, k], sqtot, amax)
        else:
            W[4, k] = 1.0
            W[3, k] = 0.0
        W[5, k] = _INF


@njit(parallel=True, cache=True)
def eval_mc(ptr, key, cnt, s1, s2, top, sums, sq, amax, n, rows, pred, S, Kn, q, logw,
            logw_lo, maxiter, far_gap, out_logb, out_err, out_t, out_pair, out_low, out_nb):
    """The K-class histogram union bound (:func:`.histogram_pairwise.hist_mc_point` after its
    pass over α) on the merged cells of each of ``rows``; outputs as ``hist_mc_driver``."""
    pm, lq1, lpm, lp0, k1, v1, v0 = _noise_consts(q, Kn)
    nz = (q, pm, lq1, lpm, lp0, math.log1p(-2.0 * pm))
    nr = rows.shape[0]
    nch = max(1, min(nr, 64))
    nbk = (S + 1) * N_BUCKETS
    for ch in prange(nch):
        acc = np.zeros((nbk, 3))
        occ = np.empty(nbk, np.int64)
        keys = np.empty(nbk, np.int64)
        H = np.empty((nbk, 5))
        off = np.empty(S + 2, np.int64)
        Ct = np.empty(((S + 1) * N_COARSE, 5))
        C = np.empty(((S + 1) * N_COARSE, 5))
        coff = np.empty(S + 2, np.int64)
        W = np.empty((12, S))
        order = np.empty(S, np.int64)
        stack = np.empty((64, 2), np.int64)
        st = np.empty(4)
        low_row = np.empty(S)
        for r in range(ch * nr // nch, (ch + 1) * nr // nch):
            j = rows[r]
            c = pred[j]
            nb = load_mc(ptr[j], ptr[j + 1], key, cnt, s1, s2, top[j], S, acc, occ, H, keys,
                         off)
            coarsen_mc(H, off, keys, S, Ct, C, coff)
            _screen_sums(sums[j], sq[j], amax[j], n, c, S, k1, v1, v0, W, out_t[j])
            for k in range(S):
                W[7, k] = -W[3, k]
            _argsort_into(W[7], order, stack)
            lead = -_INF
            t_lead = 0.0
            maxerr = 0.0
            for idx in range(S):
                k = order[idx]
                if k == c:
                    out_pair[j, k], low_row[k], out_t[j, k] = -_INF, -_INF, 0.0
                    continue
                use_o = off[S + 1] - off[S] > 0 and _others(H, off, S, c, k)
                v, e, t, low, solved = _rival(H, off, C, coff, S, c, k, use_o, nz, maxiter,
                                              far_gap, W, lead, t_lead, st)
                out_pair[j, k] = min(v, 0.0)
                low_row[k] = min(low, 0.0)
                out_t[j, k] = t
                maxerr = max(maxerr, e)
                if solved and v > lead:
                    lead, t_lead = v, t
            out_logb[j] = _lse_up(out_pair[j], logw, S, c)
            out_err[j] = maxerr
            out_low[j] = _lse_down(low_row, logw_lo, S, c)
            out_nb[j] = nb


# ============================================================================================
# coordinator: the exact certificate (§5) from merged candidates
# ============================================================================================

@njit(cache=True)
def _tau_from(lo, hi, q_lo, q_hi):
    """[τ_lo, τ_hi] ∋ (1/2 − qΣα)/(1 − 2q) for Σα ∈ [lo, hi] and q ∈ [q_lo, q_hi]: the tail of
    :func:`.exact._tau_bounds` with the enclosure of Σα given."""
    if q_hi == 0.0:
        return 0.5, 0.5
    P_lo = min(min(_mul_down(q_lo, lo), _mul_down(q_lo, hi)),
               min(_mul_down(q_hi, lo), _mul_down(q_hi, hi)))
    P_hi = max(max(_mul_up(q_lo, lo), _mul_up(q_lo, hi)),
               max(_mul_up(q_hi, lo), _mul_up(q_hi, hi)))
    N_lo = _add_down(0.5, -P_hi)
    N_hi = _add_up(0.5, -P_lo)
    D_lo = _add_down(1.0, -2.0 * q_hi)
    D_hi = _add_up(1.0, -2.0 * q_lo)
    t_lo = _div_down(N_lo, D_hi) if N_lo >= 0.0 else _div_down(N_lo, D_lo)
    t_hi = _div_up(N_hi, D_lo) if N_hi >= 0.0 else _div_up(N_hi, D_hi)
    return t_lo, t_hi


@njit(cache=True)
def _moves(j, c, mc, ptr, mkey, grp, keys, tag, perm, sk, stack):
    """The walk's moves of row j from its sent list: binary, |α| for every rival (tag −1);
    K classes (prediction c): (c, α>0) 2α (tag −1), (y, α>0) |α| (every rival but y), (y, α<0)
    |α| (every rival but y) and 2|α| (rival y only).  keys[:N], tag[:N], perm[:N] (order by
    descending key, sk the sorted keys).  Returns N."""
    N = 0
    for p in range(ptr[j], ptr[j + 1]):
        g = grp[p]
        if not mc:
            keys[N] = mkey[p]
            tag[N] = -1
            N += 1
            continue
        lab = g // 2
        if lab == c:
            keys[N] = mkey[p]
            tag[N] = -1
            N += 1
        elif g % 2 == 0:
            keys[N] = mkey[p]
            tag[N] = -(2 + lab)
            N += 1
        else:
            keys[N] = 0.5 * mkey[p]              # exact: mkey = 2|α|
            tag[N] = -(2 + lab)
            keys[N + 1] = mkey[p]
            tag[N + 1] = lab
            N += 2
    for t in range(N):
        perm[t] = t
        sk[t] = keys[t]
    _sort_desc(sk, perm, 0, N, stack)
    return N


@njit(cache=True)
def _prefix(sk, N, T):
    """How many of the sorted keys sk[:N] are ≥ T (all when T = 0): the entries that are
    certainly the true largest moves (every move not sent is ≤ T; equal keys are
    interchangeable)."""
    if T <= 0.0:
        return N
    c = 0
    while c < N and sk[c] >= T:
        c += 1
    return c


@njit(cache=True)
def _rival_k(keys, tag, perm, sk, N, T, cp, S0, ea0, W, strict, tot):
    """(lo, hi, resolved) for one rival: lo ≤ k_true ≤ hi.  resolved False: the sent moves
    ran out before the walk could stop (hi = NOCROSS, lo = the first possible crossing or one
    more than the applicable moves walked); more moves would decide it."""
    if _out_of_reach(S0, ea0 * _ERRF, tot, strict):
        return NOCROSS, NOCROSS, True
    ntop = _prefix(sk, N, T)
    klo, khi, _, resolved = _walk(keys, tag, perm, ntop, ntop == N and T <= 0.0, cp, S0, ea0,
                                  W, strict, NOCROSS)
    if resolved:
        return klo, khi, True
    a = 0
    for p in range(ntop):
        tg = tag[perm[p]]
        if tg == -1 or tg == cp or (tg <= -2 and -(tg + 2) != cp):
            a += 1
    return min(klo, np.int64(a + 1)), NOCROSS, False


@njit(cache=True)
def _walk_scratch(M):
    return (np.empty(M), np.empty(M, np.int64), np.empty(M, np.int64), np.empty(M),
            np.empty(_STACK, np.int64))


@njit(parallel=True, cache=True)
def exact_binary(sums, n, pred, rows, q_lo, q_hi, ptr, mkey, grp, bound, klo_out, khi_out,
                 more_out):
    """k_lo ≤ k_true ≤ k_hi (math.md §5) for the binary rule from the merged group sums and
    move lists: the walk of :func:`.exact._walk` started from the enclosed score minus τ.
    Where they differ: more_out (more moves would decide it), else the caller recomputes the
    row exactly."""
    for r in prange(rows.shape[0]):
        j = rows[r]
        keys, tag, perm, sk, stack = _walk_scratch(ptr[j + 1] - ptr[j] + 1)
        p0, n0, p1, n1 = sums[j, 0], sums[j, 1], sums[j, 2], sums[j, 3]
        s = p1 + n1
        es = _sum_err(n, p1 - n1)
        tot = (p0 + n0) + s
        et = _sum_err(n, (p0 - n0) + (p1 - n1))
        t_lo, t_hi = _tau_from(_add_down(tot, -et), _add_up(tot, et), q_lo, q_hi)
        W = _add_up(t_hi, -t_lo)
        strict = pred[j] == 1
        if strict:     # Z = s − τ_hi, moves (y=1, α>0) and (y=0, α<0)
            S0, e = _two_sum(s, -t_hi)
            mv = p1 - n0
        else:          # Z = τ_lo − s, moves (y=0, α>0) and (y=1, α<0)
            S0, e = _two_sum(t_lo, -s)
            mv = p0 - n1
        N = _moves(j, pred[j], False, ptr, mkey, grp, keys, tag, perm, sk, stack)
        lo, hi, res = _rival_k(keys, tag, perm, sk, N, bound[j], 0, S0, abs(e) + es, W,
                               strict, mv)
        klo_out[j], khi_out[j], more_out[j] = lo, hi, not res


@njit(parallel=True, cache=True)
def exact_mc(sums, n, S, pred, rows, ptr, mkey, grp, bound, klo_out, khi_out, more_out):
    """k_lo ≤ k_true ≤ k_hi for the K-class rule (greedy gains of math.md §5, minimum over the
    rivals) from the merged group sums and move lists; more_out where a rival whose walk ran
    out of sent moves could still be the minimum."""
    for r in prange(rows.shape[0]):
        j = rows[r]
        c = pred[j]
        keys, tag, perm, sk, stack = _walk_scratch(2 * (ptr[j + 1] - ptr[j]) + 1)
        N = _moves(j, c, True, ptr, mkey, grp, keys, tag, perm, sk, stack)
        sc = sums[j, 2 * c] + sums[j, 2 * c + 1]
        ec = _sum_err(n, sums[j, 2 * c] - sums[j, 2 * c + 1])
        lo_best = NOCROSS
        hi_best = NOCROSS
        lo_open = NOCROSS        # smallest lo of an unresolved rival
        for cp in range(S):
            if cp == c:
                continue
            sr = sums[j, 2 * cp] + sums[j, 2 * cp + 1]
            er = _sum_err(n, sums[j, 2 * cp] - sums[j, 2 * cp + 1])
            S0, e = _two_sum(sc, -sr)
            tot = 2.0 * sums[j, 2 * c] - 2.0 * sums[j, 2 * cp + 1]
            for y in range(S):
                if y != c and y != cp:
                    tot += sums[j, 2 * y] - sums[j, 2 * y + 1]
            lo, hi, res = _rival_k(keys, tag, perm, sk, N, bound[j], cp, S0, abs(e) + ec + er,
                                   0.0, cp > c, tot)
            lo_best = min(lo_best, lo)
            hi_best = min(hi_best, hi)
            if not res:
                lo_open = min(lo_open, lo)
        klo_out[j] = lo_best
        khi_out[j] = hi_best
        more_out[j] = lo_open < hi_best
