"""Drivers for sparse α (issue 13 item 2): each test row j arrives compacted to its nonzero
weights ``W[j]`` (length k) and the labels ``Y[j]`` of those training points, and is handed
to the SAME per-row functions as the dense drivers (:mod:`.binary`, :mod:`.pairwise`,
:mod:`.exact`), so a row costs O(k), not O(n).  Compact rows always take the full-pass
Chernoff engine (the reference), never the histogram engine of math.md §2b.

Why the compact row certifies the same thing (math.md §2, §3, §5): every Chernoff term
vanishes at α_i = 0 (binary log(q + (1−q)) = 0, K classes log 1 = 0 at u = 0), the decision,
degenerate-case and greedy sums only involve nonzeros, and a zero α is never a helpful move
of the exact certificate.  In float64 a zero term leaves every accumulator unchanged (it adds
an exact 0 to a compensated sum), so with the nonzeros in index order the compact row goes
through the same sequence of floating-point states as the dense one; only the error
allowances that grow with the row length (γ_n, n²u² terms) are computed with k instead of n,
which is what the rigorous analysis of the row functions gives for the k terms actually
summed.  The radius cap and the q-rounding shift stay at the true n (caller's side).

Each driver here has the signature of its dense twin with the label vector ``y`` (n,)
replaced by the per-row label array ``Y`` (b, k), C-contiguous like ``W``.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .binary import _bound_row, _decide_row
from .common import _U, _chunk, _nchunks
from .exact import _binary_row, _binary_scratch, _mc_row
from .exact import _chunk as _ex_chunk
from .exact import _mc_scratch as _mc_scratch_exact
from .pairwise import _class_sums, _decide_one, _mc_point, _mc_scratch, _noise_consts


# --------------------------------------------------------------------------------------------
# binary Chernoff (twins of binary._binary_decide, binary._binary_driver)
# --------------------------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def binary_decide_rows(W, Y, q, want_guess, side, degen, ambiguous, guess):
    m = W.shape[0]
    nch = _nchunks(m)
    for ch in prange(nch):
        lo, hi = _chunk(ch, m, nch)
        hist = np.empty(2048)
        hbuf = np.empty(1)
        for j in range(lo, hi):
            side[j], degen[j], ambiguous[j], guess[j] = _decide_row(W[j], Y[j], q, want_guess,
                                                                    hist, hbuf)


@njit(parallel=True, cache=True)
def binary_driver_rows(W, Y, q, side, degen, guess, rtol, maxiter,
                       out_logb, out_err, out_t, out_status, out_iters):
    m = W.shape[0]
    lq = math.log(q)
    l1q = math.log1p(-q)
    for j in prange(m):
        (out_logb[j], out_err[j], out_t[j], out_status[j],
         out_iters[j]) = _bound_row(W[j], Y[j], q, lq, l1q, side[j], degen[j], guess[j], rtol,
                                    maxiter)


# --------------------------------------------------------------------------------------------
# K classes (twins of pairwise._mc_decide, pairwise._mc_driver)
# --------------------------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def mc_decide_rows(W, Y, K, pred, tied, ambiguous):
    m = W.shape[0]
    n = W.shape[1]
    gam = (n + 4) * _U / (1.0 - (n + 4) * _U)
    nch = _nchunks(m)
    for ch in prange(nch):
        lo, hi = _chunk(ch, m, nch)
        sums = np.empty(K)
        sabs = np.empty(K)
        sqs = np.empty(K)
        for j in range(lo, hi):
            _class_sums(W[j], Y[j], K, sums, sabs, sqs)
            pred[j], ambiguous[j] = _decide_one(sums, sabs, K, gam, tied[j])


@njit(parallel=True, cache=True)
def mc_driver_rows(W, Y, K, Kn, q, logw, pred, tied, rtol, maxiter, far_gap,
                   out_logb, out_err, out_t, out_pair, out_status, out_iters):
    m = W.shape[0]
    pm, lq1, lpm, lp0, k1, v1, v0 = _noise_consts(q, Kn)
    nz = (q, pm, lq1, lpm, lp0)
    nch = _nchunks(m)
    for ch in prange(nch):
        lo, hi = _chunk(ch, m, nch)
        Ws, JS, order, stack, hist, hbuf = _mc_scratch(K)
        for j in range(lo, hi):
            logb, err, st, it = _mc_point(W[j], Y[j], pred[j], tied[j], K, logw, nz, k1, v1, v0,
                                          rtol, maxiter, far_gap, Ws, JS, order, stack, hist,
                                          hbuf, out_t[j], out_pair[j])
            out_logb[j] = logb
            out_err[j] = err
            out_status[j] = st
            out_iters[j] = it


# --------------------------------------------------------------------------------------------
# exact certificate (twins of exact._binary_driver, exact._mc_driver)
# --------------------------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def exact_binary_rows(W, Y, pred, q_lo, q_hi, nch, klo_out, khi_out, status_out):
    b, n = W.shape
    nch = min(b, nch)
    for ch in prange(nch):
        lo, hi = _ex_chunk(ch, b, nch)
        keys, tag, perm, sk, hs, stack, buf = _binary_scratch(n)
        for r in range(lo, hi):
            klo, khi, st = _binary_row(W[r], Y[r], pred[r], q_lo, q_hi, keys, tag, perm, sk, hs,
                                       stack, buf)
            klo_out[r] = klo
            khi_out[r] = khi
            status_out[r] = st


@njit(parallel=True, cache=True)
def exact_mc_rows(W, Y, pred, K, nch, klo_out, khi_out, rival_out, status_out):
    b, n = W.shape
    nch = min(b, nch)
    for ch in prange(nch):
        lo, hi = _ex_chunk(ch, b, nch)
        keys, tag, grp, perm, sk, Sc, eac, G, P, rivals, S0s, ea0s, hc, hs, stack, buf = \
            _mc_scratch_exact(n, K)
        for r in range(lo, hi):
            klo, khi, rv, st = _mc_row(W[r], Y[r], pred[r], K, keys, tag, grp, perm, sk, Sc,
                                       eac, G, P, rivals, S0s, ea0s, hc, hs, stack, buf)
            klo_out[r] = klo
            khi_out[r] = khi
            rival_out[r] = rv
            status_out[r] = st
