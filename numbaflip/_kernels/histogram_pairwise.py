"""K-class Chernoff bounds on histograms of α: per test point one pass, Newton per rival pair
on buckets, one certified evaluation per pair (math.md §2b, §3).

The binary engine of :mod:`.histogram`, generalised to the pairwise objective of math.md §3,
for t > 0 only:

    f_cc′(t) = Σ_{y=c} g_c(tα) + Σ_{y=c′} g_c′(tα) + Σ_{other} g_o(tα),
    g_c(u) = log((1−q)e^{−u} + p₀ + p₋e^{u}),  g_c′(u) = log(p₋e^{−u} + p₀ + (1−q)e^{u}),
    g_o(u) = log(p₋e^{−u} + (1−2p₋) + p₋e^{u})

(the terms :func:`.pairwise._term_cr` and :func:`.pairwise._term_other` evaluate, so the model
bounds the same f as :func:`.pairwise._pair_eval`).  Buckets per slot label come from the
float64 bit pattern exactly as in :mod:`.histogram`, plus one extra "all" histogram of |α|
over every training point: g_o is even, so

    Σ_{other} g_o = Σ_{all} g_o(t|α|) − Σ_{y=c} g_o(tα) − Σ_{y=c′} g_o(tα),

each sum with its own model and error bound (the bounds add), and no pair needs the K − 2
other label histograms.  Each term is a log-sum-exp of affine functions of u with slopes −1,
0, +1: g′ is the mean, g″ the variance and g‴ the third central moment of the slope under the
tilted law, so |g‴| ≤ M₃ = 8/(6√3) (a law on an interval of length 2), and per bucket

    Σ_i g(tα_i) = c·g(ta₀) + t·g′(ta₀)·S₁ + ½t²·g″(ta₀)·S₂ + R,   |R| ≤ M₃·|t|³·h·S₂/6.

Soundness needs only the upper side: U_cc′(t̂) = M(t̂) + E(t̂) with E the remainder and the
float64 error.  The lower bound on min_{t>0} f_cc′ (bracket from the slope model ± remainder,
convexity) only decides whether a full pass could do better.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .common import _INF, _U, _argsort_into, _neumaier, _up
from .histogram import (MANT_BITS, N_BUCKETS, N_COARSE, WINDOW, _bracket_step, _bucket_centre,
                        _bucket_of, _centre_bits, _coarse_slot, _gamma, _moments_about,
                        _top_exponent)
from .pairwise import _lse, _lse_up, _noise_consts, _screen_rivals, _term_cr, _term_other

#: sup |g‴| for a log-sum-exp of affine functions with slopes in [−1, 1]: the largest third
#: central moment of a law on an interval of length 2, 2³/(6√3).
M3_PAIR = 8.0 / (6.0 * math.sqrt(3.0))
#: Term roles: a point labelled c, labelled c′, or any other label.
ROLE_C = 0
ROLE_R = 1
ROLE_O = 2
_ABS = np.int64(0x7FFFFFFFFFFFFFFF)


@njit(cache=True)
def _add_point(k, d, acc, occ, nocc):
    """Adds a deviation d to bucket k (row of ``acc``: c, Σδ, Σδ²); returns the new number of
    occupied buckets."""
    if acc[k, 0] == 0.0:
        occ[nocc] = k
        nocc += 1
    acc[k, 0] += 1.0
    acc[k, 1] += d
    acc[k, 2] += d * d
    return nocc


@njit(cache=True)
def _merge_abs(acc, occ, nlab, S, nocc):
    """The |α| histogram ("label" S) from the signed per-label buckets: a bucket of negative
    values is the mirror of the positive one (centre −a₀ ↔ a₀, δ ↔ −δ), so its count, −Σδ and
    Σδ² add to it.  Sums of partial sums keep the γ_c bounds of §2b (any summation order).
    The centre bucket is not sign-split: it was accumulated directly.  Returns nocc."""
    half = WINDOW << MANT_BITS
    for j in range(nlab):
        k = occ[j]
        kb = k % N_BUCKETS
        if kb == N_BUCKETS - 1:
            continue
        neg = kb >= half
        ka = S * N_BUCKETS + (kb - half if neg else kb)
        if acc[ka, 0] == 0.0:
            occ[nocc] = ka
            nocc += 1
        acc[ka, 0] += acc[k, 0]
        acc[ka, 1] += -acc[k, 1] if neg else acc[k, 1]
        acc[ka, 2] += acc[k, 2]
    return nocc


@njit(cache=True)
def build_histogram_mc(a, y, S, acc, occ, H, keys, off, cb):
    """One pass over α: per (slot label, bucket) and per bucket of |α| ("label" S) the count,
    Σδ and Σδ² (math.md §2b).  Writes the occupied buckets to ``H`` rows (a₀, h, c, Ŝ₁, Ŝ₂)
    grouped by label (label L in rows off[L]:off[L+1]), their fine indices to ``keys``;
    returns the number of rows.

    Scratch ``acc`` ((S+1)·N_BUCKETS, 3) must be zero on entry and is zero on exit; ``occ``,
    ``keys`` ((S+1)·N_BUCKETS ints), ``H`` ((S+1)·N_BUCKETS, 5), ``off`` (S+2 ints) and ``cb``
    (1 int) are overwritten."""
    top = _top_exponent(a)
    bits = a.view(np.int64)
    cf = cb.view(np.float64)
    nocc = 0
    for i in range(a.shape[0]):
        b = bits[i]
        kb = _bucket_of(b, top)
        cb[0] = _centre_bits(b, kb)
        nocc = _add_point(y[i] * N_BUCKETS + kb, a[i] - cf[0], acc, occ, nocc)
        if kb == N_BUCKETS - 1:     # centre bucket (a₀ = 0): |α| accumulated directly
            nocc = _add_point(S * N_BUCKETS + kb, abs(a[i]), acc, occ, nocc)
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
    for L in range(S, 0, -1):     # off[L] now holds the end of label L: shift back
        off[L] = off[L - 1]
    off[0] = 0
    off[S + 1] = nocc
    return nocc


@njit(cache=True)
def coarsen_mc(H, off, keys, S, Ct, C, coff):
    """Merges the fine buckets per (label, sign, binade) into ``C`` (rows (a₀, h, c, S₁, S₂),
    re-centred), grouped by label in rows coff[L]:coff[L+1].  ``Ct``: scratch of the same
    shape.  For the search only: nothing certified is computed from ``C``."""
    for k in range((S + 1) * N_COARSE):
        Ct[k, 2] = 0.0
    for L in range(S + 1):
        for j in range(off[L], off[L + 1]):
            kf = keys[j]
            a0, h, c, s1, s2 = H[j, 0], H[j, 1], H[j, 2], H[j, 3], H[j, 4]
            kc, A0 = _coarse_slot(kf, a0)
            k = L * N_COARSE + kc
            if Ct[k, 2] == 0.0:
                Ct[k, 0], Ct[k, 1], Ct[k, 3], Ct[k, 4] = A0, h, 0.0, 0.0
            dc, d1, d2, hh = _moments_about(Ct[k, 0], a0, h, c, s1, s2)
            Ct[k, 2] += dc
            Ct[k, 3] += d1
            Ct[k, 4] += d2
            Ct[k, 1] = max(Ct[k, 1], hh)
    nc = 0
    for L in range(S + 1):
        coff[L] = nc
        for k in range(L * N_COARSE, (L + 1) * N_COARSE):
            if Ct[k, 2] != 0.0:
                for i in range(5):
                    C[nc, i] = Ct[k, i]
                nc += 1
    coff[S + 1] = nc
    return nc


@njit(cache=True)
def _tilt(u, la, lb, lc):
    """Tilted probabilities (pa, pb, pc) of the slopes −1, 0, +1 of log(A e^{−u} + B + C e^{u})
    from la = log A, lb = log B (may be −inf), lc = log C, and rho, a bound on their relative
    errors (the rounding of the logs and of the parameters, of the exponents, exp, the sum
    and the division; math.md §2b)."""
    sa = la - u
    sc = lc + u
    mx = max(sa, max(lb, sc))
    ea = math.exp(sa - mx)
    eb = math.exp(lb - mx)
    ec = math.exp(sc - mx)
    tot = ea + eb + ec
    lam = abs(la) + abs(lc) + 2.0 * abs(u) + abs(mx)
    if lb > -_INF:
        lam += abs(lb)
    return ea / tot, eb / tot, ec / tot, 10.0 * _U * lam + 16.0 * _U


@njit(cache=True)
def _slopes(u, role, nz):
    """g′, its absolute error bound, g″ and its absolute error bound at u (as :func:`_terms`,
    without g)."""
    q, pm, lq1, lpm, lp0, l1m2 = nz
    if role == ROLE_O:
        pa, pb, pc, rho = _tilt(u, lpm, l1m2, lpm)
    elif role == ROLE_C:
        pa, pb, pc, rho = _tilt(u, lq1, lp0, lpm)
    else:
        pa, pb, pc, rho = _tilt(u, lpm, lp0, lq1)
    if rho > 1e-6:    # first-order error bounds no longer hold: give up on this t
        return 0.0, _INF, 0.0, _INF
    gp = pc - pa
    g2 = pa * pb + pc * pb + 4.0 * pa * pc     # the variance, with no cancellation
    du = 1.01 * _U * abs(u)
    return gp, rho * (pa + pc) + du, g2, (2.0 * rho + 6.0 * _U) * g2 + M3_PAIR * du


@njit(cache=True)
def _terms(u, role, nz):
    """g(u) of the role, the magnitude with |Δg| ≤ 3u·mag (from :mod:`.pairwise`), g′, its
    absolute error bound, g″ and its absolute error bound (the rounding of u included:
    |g″| ≤ 1, |g‴| ≤ M₃)."""
    q, pm, lq1, lpm, lp0, l1m2 = nz
    if role == ROLE_O:
        g, _, _, mag = _term_other(u, pm, lpm)
    else:
        g, _, _, mag = _term_cr(u, role == ROLE_C, q, pm, lq1, lpm, lp0)
    gp, egp, g2, eg2 = _slopes(u, role, nz)
    return g, mag, gp, egp, g2, eg2


@njit(cache=True)
def _m3_local(g2, eg2, dt):
    """sup |g‴| over u ± dt: min(M₃, 2·e^{4·dt}·g″(u)) (|E(s − μ)³| ≤ 2·Var s for slopes in
    [−1, 1], and the tilted probabilities move by at most e^{±2·dt}, the variance by e^{±4·dt};
    math.md §2b), rounded up."""
    if dt > 8.0:
        return M3_PAIR
    return min(M3_PAIR, 2.0 * math.exp(4.0 * dt) * (g2 + eg2) * (1.0 + 16.0 * _U))


@njit(cache=True)
def _group_value(H, lo, hi, t, role, sign, nz, st):
    """Adds sign × the model of Σ g_role(tα) over buckets lo:hi to the running state ``st`` =
    [sum, compensation, Σ|terms|, error] (math.md §2b)."""
    at = abs(t)
    for j in range(lo, hi):
        a0, h, c, s1, s2 = H[j, 0], H[j, 1], H[j, 2], H[j, 3], H[j, 4]
        g, mag, gp, egp, g2, eg2 = _terms(t * a0, role, nz)
        v0 = c * g
        v1 = t * gp * s1
        v2 = 0.5 * t * t * g2 * s2
        e1 = _gamma(c) * c * h                      # |rounding of S₁|
        err = c * 3.0 * _U * mag + 2.0 * _U * abs(v0)
        err += at * (egp * abs(s1) + (abs(gp) + egp) * e1) + 3.0 * _U * abs(v1)
        err += 0.5 * t * t * s2 * (eg2 + (g2 + eg2) * _gamma(c + 1)) + 4.0 * _U * v2
        m3 = _m3_local(g2, eg2, at * h)
        err += m3 * at * at * at * h * s2 / 6.0 * (1.0 + _gamma(c + 8))   # Taylor
        st[3] += err
        for v in (v0, v1, v2):
            st[0], st[1] = _neumaier(st[0], st[1], sign * v)
            st[2] += abs(v)


@njit(cache=True)
def _group_slope(H, lo, hi, t, role, sign, nz, st):
    """Adds sign × the first-order model of d/dt Σ g_role(tα) (and of its derivative) over
    buckets lo:hi to ``st`` = [D, Hs, Rd, Σ magnitudes]; f′ ∈ [D − Rd, D + Rd] once the
    summation term is added (:func:`pair_slope`)."""
    at = abs(t)
    for j in range(lo, hi):
        a0, h, c, s1, s2 = H[j, 0], H[j, 1], H[j, 2], H[j, 3], H[j, 4]
        gp, egp, g2, eg2 = _slopes(t * a0, role, nz)
        st[0] += sign * (gp * (c * a0 + s1) + t * g2 * (a0 * s1 + s2))
        st[1] += sign * g2 * (c * a0 * a0 + 2.0 * a0 * s1 + s2)
        e1 = _gamma(c) * c * h
        lin = c * abs(a0) + abs(s1)
        quad = abs(a0 * s1) + s2
        mlin = (abs(gp) + egp) * lin
        mquad = at * (g2 + eg2) * quad
        st[3] += mlin + mquad
        m3 = _m3_local(g2, eg2, at * h)
        rd = 0.5 * t * t * m3 * (abs(a0) + h) * s2 * (1.0 + _gamma(c + 2))  # Taylor
        rd += egp * lin + at * eg2 * quad
        rd += (abs(gp) + egp) * e1 + at * (g2 + eg2) * (abs(a0) * e1 + s2 * _gamma(c + 1))
        rd += (8.0 * _U + 2.0 * _gamma(c + 2)) * (mlin + mquad)
        st[2] += rd


@njit(cache=True)
def _groups(off, S, c, r, use_o):
    """(lo, hi, role, sign) of the five bucket groups of the pair (c, r)."""
    return ((off[c], off[c + 1], ROLE_C, 1.0), (off[r], off[r + 1], ROLE_R, 1.0),
            (off[c], off[c + 1] if use_o else off[c], ROLE_O, -1.0),
            (off[r], off[r + 1] if use_o else off[r], ROLE_O, -1.0),
            (off[S], off[S + 1] if use_o else off[S], ROLE_O, 1.0))


@njit(cache=True)
def pair_value(H, off, S, c, r, use_o, t, nz, st):
    """(M(t), E(t)): f_cr(t) ∈ [M − E, M + E] for the exact f_cr of the bucketed α, the
    float64 error included (math.md §2b, §3).  ``use_o``: whether any point has a label other
    than c and r; ``st``: 4-float scratch."""
    st[:] = 0.0
    for lo, hi, role, sign in _groups(off, S, c, r, use_o):
        _group_value(H, lo, hi, t, role, sign, nz, st)
    total = st[0] + st[1]
    nterm = 3.0 * (off[S + 1] + off[c + 1] - off[c] + off[r + 1] - off[r])
    err = st[3] + 4.0 * _U * abs(total) + 4.0 * nterm * nterm * _U * _U * st[2]
    return total, (err + 1e-300) * (1.0 + 8.0 * _U)


@njit(cache=True)
def pair_slope(H, off, S, c, r, use_o, t, nz, st):
    """First-order models of f_cr′(t) and f_cr″(t) and a bound on |f_cr′ − D|: (D, Hs, Rd)
    with f_cr′(t) ∈ [D − Rd, D + Rd] (math.md §2b).  ``st``: 4-float scratch."""
    st[:] = 0.0
    for lo, hi, role, sign in _groups(off, S, c, r, use_o):
        _group_slope(H, lo, hi, t, role, sign, nz, st)
    nb = off[S + 1] + off[c + 1] - off[c] + off[r + 1] - off[r]
    rd = st[2] + _gamma(4 * nb + 8) * st[3] + 4.0 * _U * st[2] + 1e-300
    return st[0], st[1], rd


@njit(cache=True)
def _newton_pair(C, coff, S, c, r, use_o, u0, nz, maxiter, st):
    """Safeguarded Newton on the root of the model slope over t > 0 (coarse buckets)."""
    lo, hi, u, dx, dxold = 0.0, _INF, u0, _INF, _INF
    for _ in range(maxiter):
        d, hs, _ = pair_slope(C, coff, S, c, r, use_o, u, nz, st)
        stop, u, lo, hi, dx, dxold = _bracket_step(u, d, hs, lo, hi, dx, dxold, 1e-9, 1e-9)
        if stop:
            break
    return u


@njit(cache=True)
def _polish(H, off, S, c, r, use_o, u, nz, steps, st):
    """A few Newton steps on the fine model slope from a nearby u > 0 (each clamped to a
    factor of 2)."""
    for _ in range(steps):
        d, hs, _ = pair_slope(H, off, S, c, r, use_o, u, nz, st)
        if not hs > 0.0:
            break
        un = min(max(u - d / hs, 0.5 * u), 2.0 * u)
        done = abs(un - u) <= 1e-12 * u
        u = un
        if done:
            break
    return u


@njit(cache=True)
def _pair_lower(H, off, S, c, r, use_o, t, m, e, nz, st):
    """A rigorous lower bound on min_t f_cr ≤ min_{t>0} f_cr (math.md §2b: bracket of the
    minimiser from the slope model ± its remainder, then convexity), or −inf."""
    d, hs, rd = pair_slope(H, off, S, c, r, use_o, t, nz, st)
    delta = 4.0 * (abs(d) + rd) / hs if hs > 0.0 else 1e-6 * abs(t)
    delta = max(delta, 1e-9 * abs(t)) + 1e-300
    for _ in range(8):
        d1, _, r1 = pair_slope(H, off, S, c, r, use_o, t - delta, nz, st)
        if d1 + r1 <= 0.0:
            d2, _, r2 = pair_slope(H, off, S, c, r, use_o, t + delta, nz, st)
            if d2 - r2 >= 0.0:
                low = (m - e) - (abs(d) + rd) * delta
                return low - 4.0 * _U * abs(low)
        delta *= 4.0
    return -_INF


@njit(cache=True)
def solve_pair(H, off, C, coff, S, c, r, use_o, u0, nz, maxiter, st):
    """Newton on the coarse buckets from u0, polished on the fine ones, then the certified
    U_cr(t̂) = M + E (math.md §2b, §3).  Returns (U, E, t̂, lower bound on min_{t>0} f_cr);
    U = 0 (B = 1, valid) when the model is not finite, with lower bound −inf."""
    u = _newton_pair(C, coff, S, c, r, use_o, u0, nz, maxiter, st)
    u = _polish(H, off, S, c, r, use_o, u, nz, 3, st)
    if not (u > 0.0 and u < _INF):
        u = u0
    m, e = pair_value(H, off, S, c, r, use_o, u, nz, st)
    if not (math.isfinite(m) and math.isfinite(e)):
        return 0.0, 0.0, u, -_INF
    low = _pair_lower(H, off, S, c, r, use_o, u, m, e, nz, st)
    return _up(m + e), e, u, low


@njit(cache=True)
def _lse_down(vals, logw_lo, K, skip):
    """Downward-rounded log Σ_{k≠skip} w_k exp(vals[k]) (vals lower bounds, logw_lo[k] ≤
    log w_k); −inf when every value is −inf."""
    v, slack = _lse(vals, logw_lo, K, skip)
    return v if v == -_INF else np.nextafter(v - slack, -_INF)


@njit(cache=True)
def _rival(H, off, C, coff, S, c, k, use_o, nz, maxiter, far_gap, W, lead, t_lead, st):
    """Bound on log B_ck: its Bernstein bound or its value at the lead's t when either is
    ``far_gap`` below the lead (lower bound −inf: its share of the union bound is below
    e^{−far_gap}), else :func:`solve_pair` from the Gaussian guess (W row 4).
    Returns (value, error, t, lower bound, whether it was solved)."""
    if lead > -_INF:
        if W[6, k] < lead - far_gap:
            return _up(W[6, k]), 0.0, W[4, k], -_INF, False
        m, e = pair_value(H, off, S, c, k, use_o, t_lead, nz, st)
        if math.isfinite(m) and math.isfinite(e) and m + e < lead - far_gap:
            return _up(m + e), e, t_lead, -_INF, False
    v, e, t, low = solve_pair(H, off, C, coff, S, c, k, use_o, W[4, k], nz, maxiter, st)
    return v, e, t, low, True


@njit(cache=True)
def hist_mc_point(a, y, H, off, C, coff, S, c, tied_row, logw, logw_lo, nz, kv, maxiter,
                  far_gap, W, order, stack, st, t_row, pair_row, low_row):
    """Union bound for one interior test point (no tied rival) with prediction c, rivals
    closest first (Gaussian estimate, as :func:`.pairwise._mc_point`): (log B rounded up,
    largest pair error, lower bound on log Σ w·exp(min f), rounded down).  Fills ``t_row``,
    ``pair_row`` (−inf for c) and ``low_row``."""
    k1, v1, v0 = kv
    _screen_rivals(a, y, c, tied_row, S, k1, v1, v0, W, t_row)
    for k in range(S):
        W[7, k] = -W[3, k]
    _argsort_into(W[7], order, stack)
    lead = -_INF
    t_lead = 0.0
    maxerr = 0.0
    for idx in range(S):
        k = order[idx]
        if k == c:
            pair_row[k], low_row[k], t_row[k] = -_INF, -_INF, 0.0
            continue
        # any point labelled neither c nor k?  (else the "other" groups are empty)
        use_o = off[S + 1] - off[S] > 0 and _others(H, off, S, c, k)
        v, e, t, low, solved = _rival(H, off, C, coff, S, c, k, use_o, nz, maxiter, far_gap,
                                      W, lead, t_lead, st)
        pair_row[k] = min(v, 0.0)
        low_row[k] = min(low, 0.0)
        t_row[k] = t
        maxerr = max(maxerr, e)
        if solved and v > lead:
            lead, t_lead = v, t
    return _lse_up(pair_row, logw, S, c), maxerr, _lse_down(low_row, logw_lo, S, c)


@njit(cache=True)
def _others(H, off, S, c, k):
    """Whether some training point has a label other than c and k (bucket counts)."""
    n_all = 0.0
    for j in range(off[S], off[S + 1]):
        n_all += H[j, 2]
    n_ck = 0.0
    for L in (c, k):
        for j in range(off[L], off[L + 1]):
            n_ck += H[j, 2]
    return n_all > n_ck


@njit(parallel=True, cache=True)
def hist_mc_driver(A, y, S, Kn, q, logw, logw_lo, pred, tied, rows, maxiter, far_gap,
                   out_logb, out_err, out_t, out_pair, out_low, out_nb):
    """Parallel over chunks of the given ``rows`` (no tied rival): the certified union bound
    (math.md §3) from the histograms (§2b), its error part, t and the bound per slot, the
    lower bound on the best union bound a full pass could give, and the bucket count.
    Every scratch array is allocated once per chunk."""
    pm, lq1, lpm, lp0, k1, v1, v0 = _noise_consts(q, Kn)
    nz = (q, pm, lq1, lpm, lp0, math.log1p(-2.0 * pm))
    kv = (k1, v1, v0)
    nr = rows.shape[0]
    nch = min(nr, 64)
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
        cb = np.empty(1, np.int64)
        for r in range(ch * nr // nch, (ch + 1) * nr // nch):
            j = rows[r]
            nb = build_histogram_mc(A[j], y, S, acc, occ, H, keys, off, cb)
            coarsen_mc(H, off, keys, S, Ct, C, coff)
            logb, err, low = hist_mc_point(A[j], y, H, off, C, coff, S, pred[j], tied[j], logw,
                                           logw_lo, nz, kv, maxiter, far_gap, W, order, stack,
                                           st, out_t[j], out_pair[j], low_row)
            out_logb[j] = logb
            out_err[j] = err
            out_low[j] = low
            out_nb[j] = nb
