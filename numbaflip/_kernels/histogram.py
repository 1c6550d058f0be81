"""Binary Chernoff bound on a histogram of α: one cheap pass, Newton on buckets, one certified
evaluation (math.md §2b).

Per test point the training points are put into buckets by label and by the float64 bit pattern
of α (sign, exponent, top ``MANT_BITS`` mantissa bits), so membership, edges and centres are
exact.  A bucket holds c values α_i = a₀ + δ_i around its centre a₀ with |δ_i| ≤ h (half the
bucket width) and keeps c, S₁ = Σδ_i and S₂ = Σδ_i² (δ_i is exact: α_i and a₀ lie in the same
binade, Sterbenz).  Values more than ``WINDOW`` binades below the largest |α| (zeros and
subnormals included) share one bucket per label centred at 0.

For each label the term is g(u) = log(q + (1−q)e^{−u}) (y = 1) or log((1−q) + q e^{−u}) (y = 0),
a log-sum-exp of two affine functions of u with slopes 0 and −1: g' = −w, g'' = w(1−w),
|g'''| ≤ M₃ = 1/(6√3) for every u.  Taylor's theorem with the Lagrange remainder gives, per bucket,

    Σ_i g(tα_i) = c·g(ta₀) + t·g'(ta₀)·S₁ + ½t²·g''(ta₀)·S₂ + R,   |R| ≤ M₃·|t|³·h·S₂/6,

so f(t) = t/2 + Σ_buckets(...) lies in [M(t) − R̄(t), M(t) + R̄(t)] with the model M and the
remainder bound R̄ computed from the buckets alone.  Soundness needs only the upper side:
``U(t̂) = M(t̂) + R̄(t̂) + err`` (err a rigorous bound on the float64 error, the rounding of S₁
and S₂ included) bounds log P(wrong side) at the t̂ actually used, whatever t̂ is.

t̂ comes from safeguarded Newton on the model of f' (D below), with O(buckets) work per step.
A rigorous lower bound on min f decides whether the histogram answer is as good as a full pass:
if the first-order model of f', widened by its remainder, changes sign on [t̂ − Δ, t̂ + Δ], the
minimiser t* lies there and, f being convex, f(t*) ≥ f(t̂) − |f'(t̂)|·Δ ≥ L(t̂) − |f'(t̂)|·Δ.
That value (``low``) never produces a radius; the caller compares radius(U) with radius(low)
and sends the points where they differ to one full pass at t̂.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .binary import _binary_newton, _decide_row
from .common import DEGEN_INTERIOR
from .common import _neumaier, _safe_step

#: Mantissa bits per bucket key: 2**MANT_BITS buckets per binade (relative width ≤ 2**-MANT_BITS).
MANT_BITS = 4
#: Binades below the largest |α| that get their own buckets.
WINDOW = 48
#: Buckets per label: both signs × WINDOW binades × 2**MANT_BITS, plus the centre bucket.
N_BUCKETS = 2 * WINDOW * (1 << MANT_BITS) + 1
#: Coarse buckets per label for the Newton search: one per (sign, binade), plus the centre.
N_COARSE = 2 * WINDOW + 1
#: sup |g'''| for g(u) = log(a + b e^{−u}): the third central moment of a two-point law on {0, 1}.
M3_BINARY = 1.0 / (6.0 * math.sqrt(3.0))

_U = 2.0 ** -53
_INF = np.inf
#: Columns of a histogram row: label, a₀, h, c, S₁, S₂, then t-independent factors of the
#: model and of its error bounds, computed once per bucket (:func:`_fill_factors`).
N_COLS = 15


@njit(cache=True)
def _gamma(k):
    """γ_k = k·u/(1 − k·u), the relative error bound of a k-term float64 sum."""
    return k * _U / (1.0 - k * _U)


@njit(cache=True)
def _top_exponent(a):
    """Largest biased exponent among the α (0 when all are zero or subnormal)."""
    bits = a.view(np.int64)
    top = 0
    for i in range(a.shape[0]):
        e = (bits[i] >> 52) & 0x7FF
        if e > top:
            top = e
    return top


@njit(cache=True)
def _bucket_of(b, top):
    """Bucket index of the float64 with bit pattern ``b`` (``N_BUCKETS − 1`` = the centre)."""
    e = (b >> 52) & 0x7FF
    if e == 0 or e <= top - WINDOW:
        return N_BUCKETS - 1
    sign = (b >> 63) & 1
    mant = (b >> (52 - MANT_BITS)) & ((1 << MANT_BITS) - 1)
    return ((sign * WINDOW + (top - e)) << MANT_BITS) + mant


@njit(cache=True)
def _bucket_centre(k, top):
    """(centre a₀, half-width h) of bucket k, both exact doubles."""
    if k == N_BUCKETS - 1:
        return 0.0, math.ldexp(1.0, max(top - WINDOW + 1, 1) - 1023)
    mant = k & ((1 << MANT_BITS) - 1)
    rest = k >> MANT_BITS
    sign = rest // WINDOW
    e = top - (rest - sign * WINDOW)
    h = math.ldexp(1.0, e - 1023 - MANT_BITS - 1)
    a0 = math.ldexp(1.0 + mant / (1 << MANT_BITS), e - 1023) + h
    return (-a0 if sign else a0), h


@njit(cache=True)
def _centre_bits(b, k):
    """Centre of the bucket of the (non-centre-bucket) double with bits ``b``: the kept sign,
    exponent and mantissa bits, then a 1 (half a bucket width), then zeros."""
    if k == N_BUCKETS - 1:
        return np.int64(0)
    keep = ~((np.int64(1) << (52 - MANT_BITS)) - 1)
    return (b & keep) | (np.int64(1) << (51 - MANT_BITS))


@njit(cache=True)
def _fill_factors(H, j):
    """Columns 6.. of row j from (a₀, h, c, S₁, S₂): the parts of :func:`model_slope` and
    :func:`model_value` that do not depend on t (the same float64 expressions as before, so
    the error analysis is unchanged)."""
    a0, h, c, s1, s2 = H[j, 1], H[j, 2], H[j, 3], H[j, 4], H[j, 5]
    H[j, 6] = _gamma(c) * c * h                                  # |rounding of S₁|
    H[j, 7] = c * a0 + s1                                        # Σα
    H[j, 8] = c * abs(a0) + abs(s1)
    H[j, 9] = a0 * s1 + s2
    H[j, 10] = abs(a0 * s1) + s2
    H[j, 11] = c * a0 * a0 + 2.0 * a0 * s1 + s2                  # Σα²
    H[j, 12] = 0.5 * M3_BINARY * (abs(a0) + h) * s2 * (1.0 + _gamma(c + 2))
    H[j, 13] = 2.0 * _gamma(c + 2)
    H[j, 14] = M3_BINARY * h * s2 / 6.0 * (1.0 + _gamma(c + 8))


@njit(cache=True)
def build_histogram(a, y, acc, occ, out, cb):
    """One pass over α: per (label, bucket) the count, Σδ and Σδ²; returns the number of
    occupied buckets, written to ``out`` rows (label, a₀, h, c, Ŝ₁, Ŝ₂).

    Scratch ``acc`` (2·N_BUCKETS, 3: count, Σδ, Σδ²) must be zero on entry and is zero on exit;
    ``occ`` (2·N_BUCKETS), ``out`` (2·N_BUCKETS, N_COLS) and ``cb`` (1 int64) are overwritten.
    """
    top = _top_exponent(a)
    bits = a.view(np.int64)
    cf = cb.view(np.float64)
    nocc = 0
    for i in range(a.shape[0]):
        kb = _bucket_of(bits[i], top)
        k = kb + (N_BUCKETS if y[i] == 1 else 0)
        if acc[k, 0] == 0.0:
            occ[nocc] = k
            nocc += 1
        cb[0] = _centre_bits(bits[i], kb)
        d = a[i] - cf[0]       # exact (Sterbenz; a₀ = 0 in the centre bucket)
        acc[k, 0] += 1.0
        acc[k, 1] += d
        acc[k, 2] += d * d
    for j in range(nocc):
        k = occ[j]
        a0, h = _bucket_centre(k % N_BUCKETS, top)
        out[j, 0] = 1.0 if k >= N_BUCKETS else 0.0
        out[j, 1] = a0
        out[j, 2] = h
        out[j, 3] = acc[k, 0]
        out[j, 4] = acc[k, 1]
        out[j, 5] = acc[k, 2]
        _fill_factors(out, j)
        acc[k, 0] = 0.0
        acc[k, 1] = 0.0
        acc[k, 2] = 0.0
    return nocc


@njit(cache=True)
def _term(u, lab, q, lq, l1q):
    """g(u), w = −g'(u), 1 − w, and the magnitudes that bound their float64 errors:
    (g, w, wc, mag, rho) with |Δg| ≤ 3u·mag and relative errors of w, wc ≤ rho (math.md §2)."""
    c1 = l1q - lq
    if lab == 1:
        base_a, base_b, z, p_b = lq, l1q, c1 - u, 1.0 - q
    else:
        base_a, base_b, z, p_b = l1q, lq, -c1 - u, q
    if abs(u) < 0.5:
        em = math.expm1(-u)
        arg = p_b * em
        g = math.log1p(arg)
        w = p_b * (1.0 + em) / (1.0 + arg)
        wc = (1.0 - p_b) / (1.0 + arg)
        mag = 6.0 * abs(arg) + abs(g) + 2.0 * abs(u)
        rho = 16.0 * _U
    elif z > 0.0:
        e = math.exp(-z)
        l = math.log1p(e)
        g = (base_b - u) + l
        w = 1.0 / (1.0 + e)
        wc = e / (1.0 + e)
        mag = abs(base_a) + abs(base_b) + abs(c1) + abs(u) + abs(z) + 2.0 * l + abs(g)
        rho = 16.0 * _U + 4.0 * _U * (abs(c1) + abs(u) + abs(z))
    else:
        e = math.exp(z)
        l = math.log1p(e)
        g = base_a + l
        w = e / (1.0 + e)
        wc = 1.0 / (1.0 + e)
        mag = abs(base_a) + abs(base_b) + abs(c1) + abs(u) + abs(z) + 2.0 * l + abs(g)
        rho = 16.0 * _U + 4.0 * _U * (abs(c1) + abs(u) + abs(z))
    return g, w, wc, mag, rho


@njit(cache=True)
def _weights(u, lab, q, lq, l1q):
    """w = −g'(u), 1 − w and their relative error bound rho, as in :func:`_term` without g."""
    c1 = l1q - lq
    if lab == 1:
        z, p_b = c1 - u, 1.0 - q
    else:
        z, p_b = -c1 - u, q
    if abs(u) < 0.5:
        em = math.expm1(-u)
        arg = p_b * em
        return p_b * (1.0 + em) / (1.0 + arg), (1.0 - p_b) / (1.0 + arg), 16.0 * _U
    rho = 16.0 * _U + 4.0 * _U * (abs(c1) + abs(u) + abs(z))
    if z > 0.0:
        e = math.exp(-z)
        return 1.0 / (1.0 + e), e / (1.0 + e), rho
    e = math.exp(z)
    return e / (1.0 + e), 1.0 / (1.0 + e), rho


@njit(cache=True)
def _bucket(H, j):
    """Row j of a histogram: (label, a₀, h, c, S₁, S₂)."""
    return 1 if H[j, 0] == 1.0 else 0, H[j, 1], H[j, 2], H[j, 3], H[j, 4], H[j, 5]


@njit(cache=True)
def model_slope(H, nb, t, q, lq, l1q):
    """First-order models of f'(t) and f''(t) from the buckets, and a bound on |f' − D|:
    (D, Hs, Rd) with f'(t) ∈ [D − Rd, D + Rd] (Rd includes float64 error)."""
    d, hs, rd, tot, at = 0.5, 0.0, 0.0, 0.5, abs(t)
    for j in range(nb):
        lab = 1 if H[j, 0] == 1.0 else 0
        a0 = H[j, 1]
        w, wc, rho = _weights(t * a0, lab, q, lq, l1q)
        g2 = w * wc
        lin = w * H[j, 7]
        quad = t * g2 * H[j, 9]
        d += quad - lin
        hs += g2 * H[j, 11]
        # magnitudes before any cancellation inside the two products' sums
        mlin = w * H[j, 8]
        mquad = at * g2 * H[j, 10]
        tot += mlin + mquad
        e1 = H[j, 6]
        rd += t * t * H[j, 12]                                   # Taylor
        rd += (2.0 * rho + 16.0 * _U + H[j, 13]) * (mlin + mquad)
        rd += w * e1 * (1.0 + at * wc * abs(a0)) + at * g2 * abs(a0) * e1
    rd += _gamma(2 * nb + 4) * tot + 4.0 * _U * rd + 1e-300
    return d, hs, rd


@njit(cache=True)
def model_value(H, nb, t, q, lq, l1q):
    """(M(t), R̄(t) + err): f(t) ∈ [M − E, M + E] for the exact f of the bucketed α."""
    s, comp, tot_abs, err, at = 0.0, 0.0, 0.0, 0.0, abs(t)
    for j in range(nb):
        lab, a0, h, c, s1, s2 = _bucket(H, j)
        g, w, wc, mag, rho = _term(t * a0, lab, q, lq, l1q)
        g2 = w * wc
        v0 = c * g
        v1 = -t * w * s1
        v2 = 0.5 * t * t * g2 * s2
        e1 = H[j, 6]
        err += c * 3.0 * _U * mag + 2.0 * _U * abs(v0)
        err += at * w * e1 + (rho + 4.0 * _U) * abs(v1)
        err += (2.0 * rho + 8.0 * _U + 2.0 * _gamma(c + 1)) * v2
        err += at * at * at * H[j, 14]                                # Taylor
        for v in (v0, v1, v2):
            s, comp = _neumaier(s, comp, v)
            tot_abs += abs(v)
    total = s + comp
    m = 0.5 * t + total
    nterm = 3.0 * nb
    err += 4.0 * _U * (abs(total) + abs(m) + at) + 4.0 * nterm * nterm * _U * _U * tot_abs
    return m, (err + 1e-300) * (1.0 + 8.0 * _U)


@njit(cache=True)
def _bracket_step(u, gp, hs, lo, hi, dx, dxold, tol, btol):
    """One safeguarded Newton step on a root of the model slope ``gp`` (curvature ``hs``) for
    u > 0, shared by the binary and the pairwise searches: (stop, next u, lo, hi, dx, dxold);
    stop when the step is below ``tol``·u or the bracket below ``btol``·hi."""
    if gp < 0.0:
        lo = u
    elif gp > 0.0:
        hi = u
    else:
        return True, u, lo, hi, dx, dxold
    un, dx, dxold = _safe_step(u, gp, hs, lo, hi, dx, dxold)
    stop = abs(un - u) <= tol * u or (hi < _INF and hi - lo <= btol * hi)
    return stop, un, lo, hi, dx, dxold


@njit(cache=True)
def _newton_model(H, nb, side, u0, q, lq, l1q, maxiter):
    """Safeguarded Newton on the root of the model slope, u = side·t > 0; returns u."""
    lo, hi, u, dx, dxold = 0.0, _INF, u0, _INF, _INF
    for _ in range(maxiter):
        d, hs, _ = model_slope(H, nb, side * u, q, lq, l1q)
        stop, u, lo, hi, dx, dxold = _bracket_step(u, side * d, hs, lo, hi, dx, dxold, 1e-12,
                                                       4.0 * _U)
        if stop:
            break
    return u


@njit(cache=True)
def _coarse_slot(kf, a0):
    """(index within its label of the coarse bucket of fine bucket ``kf``, the coarse centre):
    one coarse bucket per (sign, binade), centred at the middle of the binade (the fine centre
    a₀ with its kept mantissa bits cleared), and the centre bucket kept as it is."""
    if kf == N_BUCKETS - 1:
        return N_COARSE - 1, 0.0
    return kf >> MANT_BITS, a0 / (1.0 + ((kf & ((1 << MANT_BITS) - 1)) + 0.5)
                                  / (1 << MANT_BITS)) * 1.5


@njit(cache=True)
def _moments_about(A0, a0, h, c, s1, s2):
    """A fine bucket's (c, Σ(α − A₀), Σ(α − A₀)², max |α − A₀|) about a new centre A₀."""
    sh = a0 - A0
    return c, c * sh + s1, s2 + 2.0 * sh * s1 + c * sh * sh, abs(sh) + h


@njit(cache=True)
def coarsen(H, nb, keys, C):
    """Merge the fine buckets per (label, sign, binade) into ``C`` (2·N_COARSE, N_COLS), re-centred
    (S₁, S₂ about the new centre); returns the number of coarse buckets.  ``keys``: the fine
    bucket indices (``occ`` of :func:`build_histogram`).  For the search only: nothing
    certified is computed from ``C``."""
    for k in range(2 * N_COARSE):
        C[k, 3] = 0.0
    for j in range(nb):
        kf = keys[j] % N_BUCKETS
        lab = 1 if keys[j] >= N_BUCKETS else 0
        a0, h, c, s1, s2 = H[j, 1], H[j, 2], H[j, 3], H[j, 4], H[j, 5]
        kc, A0 = _coarse_slot(kf, a0)
        k = lab * N_COARSE + kc
        if C[k, 3] == 0.0:
            C[k, 0], C[k, 1], C[k, 2], C[k, 4], C[k, 5] = lab, A0, h, 0.0, 0.0
        dc, d1, d2, hh = _moments_about(C[k, 1], a0, h, c, s1, s2)
        C[k, 3] += dc
        C[k, 4] += d1
        C[k, 5] += d2
        C[k, 2] = max(C[k, 2], hh)
    nc = 0
    for k in range(2 * N_COARSE):
        if C[k, 3] != 0.0:
            for i in range(6):
                C[nc, i] = C[k, i]
            _fill_factors(C, nc)
            nc += 1
    return nc


@njit(cache=True)
def _polish(H, nb, side, u, q, lq, l1q, steps):
    """A few plain Newton steps on the model slope from a nearby u (each clamped to a factor
    of 2), for the fine buckets after the coarse search.  Returns u and the slope model
    (D, Hs, Rd) evaluated at t = side·u (the lower bound reuses it)."""
    for _ in range(steps):
        d, hs, rd = model_slope(H, nb, side * u, q, lq, l1q)
        if not hs > 0.0:
            return u, d, hs, rd
        un = min(max(u - side * d / hs, 0.5 * u), 2.0 * u)
        if abs(un - u) <= 1e-10 * u:
            return u, d, hs, rd
        u = un
    d, hs, rd = model_slope(H, nb, side * u, q, lq, l1q)
    return u, d, hs, rd


@njit(cache=True)
def _lower_bound(H, nb, t, m, e, d, hs, rd, q, lq, l1q):
    """A rigorous lower bound on min f, or −inf when the minimiser is not bracketed near t;
    (m, e) from :func:`model_value` and (d, hs, rd) from :func:`model_slope` at t."""
    # the slope model moves by about hs·Δ: start where that clears |d| + rd with room
    delta = 4.0 * (abs(d) + rd) / hs if hs > 0.0 else 1e-6 * abs(t)
    delta = max(delta, 1e-9 * abs(t)) + 1e-300
    for _ in range(8):
        d1, _, r1 = model_slope(H, nb, t - delta, q, lq, l1q)
        d2, _, r2 = model_slope(H, nb, t + delta, q, lq, l1q)
        if d1 + r1 <= 0.0 and d2 - r2 >= 0.0:
            low = (m - e) - (abs(d) + rd) * delta
            return low - 4.0 * _U * abs(low)
        delta *= 4.0
    return -_INF


@njit(cache=True)
def _hist_row(a, y, q, lq, l1q, sd, u0, maxiter, acc, occ, H, C, cb):
    """The histogram bound for one interior row: (U rounded up, its error part, t̂, lower
    bound on min f, occupied buckets).  A non-finite model (|α| near overflow) gives the
    trivial log B ≤ 0 and an open sandwich."""
    nb = build_histogram(a, y, acc, occ, H, cb)
    # search approximately on the coarse buckets, polish on the fine ones
    nc = coarsen(H, nb, occ, C)
    u = _newton_model(C, nc, sd, u0, q, lq, l1q, maxiter)
    u, d, hs, rd = _polish(H, nb, sd, u, q, lq, l1q, 3)
    t = sd * u
    m, e = model_value(H, nb, t, q, lq, l1q)
    if not (math.isfinite(m) and math.isfinite(e) and math.isfinite(t)):
        return 0.0, 0.0, sd * u0, -_INF, nb
    low = _lower_bound(H, nb, t, m, e, d, hs, rd, q, lq, l1q)
    return min(np.nextafter(m + e, _INF), 0.0), e, t, low, nb


@njit(cache=True)
def _scratch():
    """Per-chunk scratch of the binary histogram drivers: (acc, occ, H, C, cb)."""
    return (np.zeros((2 * N_BUCKETS, 3)), np.empty(2 * N_BUCKETS, np.int64),
            np.empty((2 * N_BUCKETS, N_COLS)), np.empty((2 * N_COARSE, N_COLS)),
            np.empty(1, np.int64))


@njit(parallel=True, cache=True)
def hist_binary_driver(A, y, q, maxiter, rows, decide, side, degen, ambiguous, guess, done,
                       out_logb, out_err, out_t, out_low, out_nb):
    """Parallel over ``rows``: the certified U(t̂), its error part, t̂, the lower bound on
    min f and the number of occupied buckets.

    ``decide=True``: the decide kernel fused in (side, degen, ambiguous, guess written, one
    read of each row of α from memory — the histogram pass then finds it in cache); rows that
    are interior and not ambiguous get their bound (``done``), the caller settles the others
    exactly and runs them afterwards with ``decide=False`` (side and guess then given)."""
    lq = math.log(q)
    l1q = math.log1p(-q)
    nr = rows.shape[0]
    nch = min(nr, 64)
    for ch in prange(nch):
        acc, occ, H, C, cb = _scratch()
        hist = np.empty(2048)
        hbuf = np.empty(1)
        for r in range(ch * nr // nch, (ch + 1) * nr // nch):
            j = rows[r]
            if decide:
                sd, dg, amb, g = _decide_row(A[j], y, q, True, hist, hbuf)
                side[j], degen[j], ambiguous[j], guess[j] = sd, dg, amb, g
                done[j] = (not amb) and dg == DEGEN_INTERIOR and sd != 0
            else:
                done[j] = True
            if done[j]:
                out_logb[j], out_err[j], out_t[j], out_low[j], out_nb[j] = _hist_row(
                    A[j], y, q, lq, l1q, side[j], guess[j], maxiter, acc, occ, H, C, cb)


@njit(parallel=True, cache=True)
def full_pass_rows(A, y, q, side, u0, rows, rtol, maxiter, out_logb, out_err, out_t,
                   out_iters, out_conv):
    """The full-pass safeguarded Newton of :mod:`.binary` on the given rows, started at u0
    (the histogram's t̂): for the points whose histogram sandwich did not close."""
    lq = math.log(q)
    l1q = math.log1p(-q)
    for r in prange(rows.shape[0]):
        j = rows[r]
        v, e, t, it, conv = _binary_newton(A[j], y, side[j], u0[j], q, lq, l1q, rtol, maxiter)
        out_logb[j] = min(v, 0.0)
        out_err[j] = e
        out_t[j] = t
        out_iters[j] = it
        out_conv[j] = conv
