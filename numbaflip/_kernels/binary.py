"""Chernoff bounds on the smoothed classifier's error probability (paper eq. 6, Algorithm 1,
appendix B; math.md §2–§3).

Layout (style.md): ``_*_decide`` kernels find, for each test point, the prediction and the
degenerate case from sums of alpha with a rigorous floating-point error bound, flagging the few
points where float64 cannot decide (exact ties); the public layer resolves those exactly
(:mod:`numbaflip.ties`).  ``_*_driver`` kernels then run safeguarded Newton per test
point (binary) or per (test point, rival class) pair, in parallel over test points.

Soundness does not depend on Newton converging: the Chernoff inequality holds at *every* t on
the correct side, so the value reported is ``f(t) + err`` at the t actually used, where ``err``
is a rigorous bound on the float64 evaluation error of ``f(t)`` (assuming libm's ``exp``,
``log`` and ``log1p`` are accurate to 1 ulp, which glibc and LLVM's libm are).  It is an upper
bound on the true log-probability, rounded up.

This module: the binary formulation (labels 0/1, eq. 6 and Algorithm 1).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .common import (DEGEN_INTERIOR, DEGEN_LIMIT, DEGEN_UNBOUNDED, DEGEN_ZERO, STATUS_INTERIOR,
                     STATUS_LIMIT, STATUS_MAXITER, STATUS_UNBOUNDED, STATUS_ZERO, _INF, _SMALL_Q, _U,
                     _chunk, _greedy_start, _nchunks, _neumaier, _newton_init, _newton_step, _up)


@njit(cache=True)
def _binary_decide_one(a, y, q):
    """Prediction side and degenerate case for one test point from exact-ish sums.

    Returns (side, degen, ambiguous, mean_minus_half, var) with side = +1 (prediction 1,
    search t > 0), −1 (prediction 0, search t < 0) or 0 (E[αᵀY] = 1/2: t* = 0).
    ``ambiguous`` is True when the float64 error bound cannot decide a sign or an equality that
    the result depends on; the caller must then decide with exact rationals.
    """
    n = a.shape[0]
    s = 0.0      # αᵀy
    tot = 0.0    # Σα
    sabs = 0.0   # Σ|α|
    spos = 0.0   # Σ_{α>0} α
    ss = 0.0     # Σα²
    for i in range(n):
        ai = a[i]
        if y[i] == 1:
            s += ai
        tot += ai
        sabs += abs(ai)
        if ai > 0.0:
            spos += ai
        ss += ai * ai
    mean = (1.0 - 2.0 * q) * s + q * tot
    d = mean - 0.5
    # |error| of d: summation γ_n Σ|α| for s and tot, then a few roundings and the rounding of q.
    gam = (n + 8) * _U / (1.0 - (n + 8) * _U)
    err_d = 2.0 * gam * sabs + 8.0 * _U * (abs(mean) + 0.5 + sabs)
    var = q * (1.0 - q) * ss
    ambiguous = False
    if abs(d) <= err_d:
        return 0, DEGEN_ZERO, True, d, var
    if d > 0.0:
        return 1, DEGEN_INTERIOR, False, d, var
    # prediction 0: t < 0 side; the infimum is finite iff Σ_{α>0} α > 1/2.
    err_p = gam * spos + 4.0 * _U
    if spos < 0.5 - err_p:
        return -1, DEGEN_UNBOUNDED, False, d, var
    if spos <= 0.5 + err_p:
        ambiguous = True
        return -1, DEGEN_LIMIT, ambiguous, d, var
    return -1, DEGEN_INTERIOR, False, d, var


@njit(parallel=True, cache=True)
def _binary_decide(A, Y, q, want_guess, side, degen, ambiguous, guess):
    """Parallel over contiguous chunks of rows of A: side, degenerate case, ambiguity flag,
    Newton starting |t|.  The greedy guess's histogram is allocated once per chunk.

    Labels ``Y`` (here and in every driver of :mod:`numbaflip._kernels`): shape (1, n), one
    label vector for every row (dense α), or (m, k), the labels of each row's k nonzeros
    (sparse α, :meth:`numbaflip.certify._Engine.run_sparse_block`)."""
    m = A.shape[0]
    nch = _nchunks(m)
    for ch in prange(nch):
        lo, hi = _chunk(ch, m, nch)
        hist = np.empty(2048)
        hbuf = np.empty(1)
        for j in range(lo, hi):
            yr = Y[j % Y.shape[0]]     # one label row for all (dense) or one per row (sparse)
            side[j], degen[j], ambiguous[j], guess[j] = _decide_row(A[j], yr, q, want_guess,
                                                                    hist, hbuf)


@njit(cache=True)
def _decide_row(a, y, q, want_guess, hist, hbuf):
    """(side, degen, ambiguous, Newton starting |t|) for one row; ``hist``, ``hbuf``: the
    greedy guess's scratch."""
    sd, dg, amb, d, var = _binary_decide_one(a, y, q)
    # Gaussian approximation of the minimiser: |t0| = |E − 1/2| / Var.
    g = abs(d) / var if var > 0.0 and d != 0.0 else 1.0
    if want_guess and sd != 0 and q < _SMALL_Q:
        g2 = _greedy_guess(a, y, q, sd, abs(d), hist, hbuf)
        if g2 > 0.0 and g2 < g:
            g = g2
    return sd, dg, amb, g


@njit(cache=True)
def _greedy_guess(a, y, q, side, drift, hist, hbuf):
    """Starting |t| for small q, where the Gaussian guess overshoots by orders of magnitude.

    Exactly, f(σu) = −u·D + Σ_i softplus(u·β_i − L) + const with β_i = σα_i(2y_i − 1) and
    L = log((1−q)/q).  For large L each softplus is nearly a hinge, so the minimiser is close to
    u = L/β_(k), β_(k) the k-th largest β with β_(1) + … + β_(k) ≥ D: the same greedy order as
    the exact certificate.  β_i is the K-class gain of the pair (c, r) = (1, 0) (σ = +1) or
    (0, 1) (σ = −1) with w = 1 (:func:`.common._gain`), located within a factor 2 by
    :func:`.common._greedy_start`.  Only a starting point: any u gives a valid bound.
    ``hist``, ``hbuf``: scratch (2048 and 1 floats).
    """
    c = 1 if side > 0 else 0
    return _greedy_start(a, y, c, 1 - c, 1.0, math.log1p(-q) - math.log(q), drift, hist, hbuf)


@njit(cache=True)
def _binary_eval(a, y, t, q, lq, l1q):
    """f(t), f'(t), f''(t) and a rigorous bound on the float64 error of f(t) (math.md §2).

    f(t) = t/2 + Σ_{y=1} log(q + (1−q)e^{−tα}) + Σ_{y=0} log((1−q) + q e^{−tα}).  Each term is
    max(a, b) + log1p(exp(−|a − b|)) with a the constant log-probability and b = const − tα, so
    nothing overflows for any t.  The sum is compensated (Neumaier), so the error bound is
    dominated by per-term rounding, not by n·ε·Σ|terms|.
    """
    n = a.shape[0]
    c1 = l1q - lq  # log((1−q)/q) > 0
    s = 0.0
    comp = 0.0
    g = 0.0
    h = 0.0
    mag = 0.0
    for i in range(n):
        ta = t * a[i]
        if y[i] == 1:
            base_a = lq
            base_b = l1q
            z = c1 - ta
            p_b = 1.0 - q
        else:
            base_a = l1q
            base_b = lq
            z = -c1 - ta
            p_b = q
        if abs(ta) < 0.5:
            # log(1 + p_b·expm1(−tα)): no cancellation when the term is near 0 (q ≈ 1/2, small t)
            em = math.expm1(-ta)
            arg = p_b * em
            term = math.log1p(arg)
            w = p_b * (1.0 + em) / (1.0 + arg)   # tilted P(Y_i = 1), both label values
            mag += 6.0 * abs(arg) + abs(term) + 2.0 * abs(ta)
        elif z > 0.0:
            e = math.exp(-z)
            l = math.log1p(e)
            term = (base_b - ta) + l
            w = 1.0 / (1.0 + e)
            mag += abs(base_a) + abs(base_b) + abs(c1) + abs(ta) + abs(z) + 2.0 * l + abs(term)
        else:
            e = math.exp(z)
            l = math.log1p(e)
            term = base_a + l
            w = e / (1.0 + e)
            mag += abs(base_a) + abs(base_b) + abs(c1) + abs(ta) + abs(z) + 2.0 * l + abs(term)
        s, comp = _neumaier(s, comp, term)    # compensated sum of the terms
        ai = a[i]
        g += ai * w
        h += ai * ai * w * (1.0 - w)
    total = s + comp
    f = 0.5 * t + total
    # per-term: ≤ 2u·M_i (libm 1 ulp each, a few roundings); summation: ≤ 2u|S| + 2n²u²Σ|terms|
    err = 3.0 * _U * mag + 4.0 * _U * (abs(total) + abs(f) + abs(t)) \
        + 4.0 * n * n * _U * _U * mag + 1e-300
    return f, 0.5 - g, h, err


@njit(cache=True)
def _binary_newton(a, y, side, u0, q, lq, l1q, rtol, maxiter):
    """Safeguarded Newton for min_{u>0} g(u) = f(side·u) (f convex, g'(0) < 0).

    Returns (upper value of f at the best t used, error bound, t, iterations, converged).
    """
    u, it, conv, st = u0, 0, False, _newton_init(u0)
    while not conv and it < maxiter:
        it += 1
        f, fp, fpp, err = _binary_eval(a, y, side * u, q, lq, l1q)
        conv, u, st = _newton_step(u, f, side * fp, fpp, err, rtol * abs(f) + 0.1 * err, st)
    return _up(st[4]), st[5], side * st[6], it, conv


@njit(cache=True)
def _binary_limit_logb(a, y, lq, l1q):
    """log P(αᵀY = 1/2) when Σ_{α>0} α = 1/2 exactly, rounded up (math.md §2, 'limit').

    The score reaches 1/2 only if every positive-α label is 1 and every negative-α label is 0.
    """
    s = 0.0
    mag = 0.0
    cnt = 0
    for i in range(a.shape[0]):
        ai = a[i]
        if ai > 0.0:
            v = l1q if y[i] == 1 else lq
        elif ai < 0.0:
            v = lq if y[i] == 1 else l1q
        else:
            continue
        s += v
        mag += abs(v)
        cnt += 1
    err = (cnt + 4) * 2.0 * _U * mag + 1e-300
    return _up(s + err), err


@njit(parallel=True, cache=True)
def _binary_driver(A, Y, q, side, degen, guess, rtol, maxiter,
                   out_logb, out_err, out_t, out_status, out_iters):
    """Parallel over test points: the certified upper bound on log(1 − p) (binary)."""
    m = A.shape[0]
    lq = math.log(q)
    l1q = math.log1p(-q)
    for j in prange(m):
        yr = Y[j % Y.shape[0]]     # one label row for all (dense) or one per row (sparse)
        (out_logb[j], out_err[j], out_t[j], out_status[j],
         out_iters[j]) = _bound_row(A[j], yr, q, lq, l1q, side[j], degen[j], guess[j], rtol,
                                    maxiter)


@njit(cache=True)
def _bound_row(a, y, q, lq, l1q, sd, dg, g, rtol, maxiter):
    """(log B bound, its error, t, status, iterations) for one row, the degenerate cases of
    math.md §2 analytic (shared by the dense and the sparse drivers)."""
    if dg == DEGEN_ZERO or sd == 0:
        return 0.0, 0.0, 0.0, STATUS_ZERO, 0
    if dg == DEGEN_UNBOUNDED:
        return -_INF, 0.0, -_INF, STATUS_UNBOUNDED, 0
    if dg == DEGEN_LIMIT:
        v, e = _binary_limit_logb(a, y, lq, l1q)
        return v, e, -_INF, STATUS_LIMIT, 0
    v, e, t, it, conv = _binary_newton(a, y, sd, g, q, lq, l1q, rtol, maxiter)
    # A bound above 0 is worthless (B ≤ 1 trivially); report log B = 0 then.
    return min(v, 0.0), e, t, STATUS_INTERIOR if conv else STATUS_MAXITER, it
