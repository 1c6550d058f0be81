"""float64 kernel of the tight thresholds (paper §4, after Lee et al. 2019; math.md §4):
masses as a float64 mantissa times 2^(200·E) with an int64 coarse exponent, a rigorous
lower bound and enclosure width per r.  Construction, rounding argument and the exact path:
:mod:`numbaflip.tight.thresholds`."""
from __future__ import annotations

import math

import numpy as np
from numba import njit

_U = 2.0 ** -53  # unit roundoff
_ZERO_E = -(1 << 40)  # coarse exponent of an exact zero (mass = mant * 2**(200*E))


@njit(cache=True)
def _coarse_scale(d):
    """2**(200*d) for d in {1, 0, -1, ..., -5}; 0.0 below (used only where that is harmless)."""
    if d == 0:
        return 1.0
    if d == -1:
        return 2.0 ** -200
    if d == -2:
        return 2.0 ** -400
    if d == -3:
        return 2.0 ** -600
    if d == -4:
        return 2.0 ** -800
    if d == -5:
        return 2.0 ** -1000
    if d == 1:
        return 2.0 ** 200
    return 0.0


@njit(cache=True)
def _ext_add(acc, eacc, m, e):
    """(acc, eacc) + (m, e) in the mantissa/coarse-exponent format; terms more than 3 coarse
    units smaller than the larger operand are dropped (relative effect < 2^-390)."""
    if m == 0.0:
        return acc, eacc
    if acc == 0.0:
        return m, e
    if e > eacc:
        d = eacc - e
        acc = m + (acc * _coarse_scale(d) if d >= -3 else 0.0)
        eacc = e
    else:
        d = e - eacc
        if d >= -3:
            acc = acc + m * _coarse_scale(d)
    if acc >= 2.0 ** 200:
        acc *= 2.0 ** -200
        eacc += 1
    return acc, eacc


@njit(cache=True)
def _log_ext(m, e, ln2):
    """log(m * 2**(200 e)) for m > 0."""
    return math.log(m) + (200.0 * e) * ln2


@njit(cache=True)
def _logaddexp(a, b):
    if a == -np.inf:
        return b
    if b == -np.inf:
        return a
    if a > b:
        return a + math.log1p(math.exp(b - a))
    return b + math.log1p(math.exp(a - b))


@njit(cache=True)
def _ext_value(m, e):
    """m * 2**(200 e) as a plain float (0.0 when below 2^-1000: absolute error < 2^-799)."""
    if e >= -5:
        return m * _coarse_scale(e)
    return 0.0


@njit(cache=True)
def _renormalise(acc, e):
    """(mantissa, coarse exponent) of acc·2^(200e) with the mantissa in [2^-200, 2^200).

    Scaling by powers of two is exact, so this adds no rounding error.  Requires acc > 0.
    """
    if acc >= 2.0 ** 200:
        acc *= 2.0 ** -200
        e += 1
    while acc < 2.0 ** -200:
        acc *= 2.0 ** 200
        e -= 1
    return acc, e


@njit(cache=True)
def _term(c, m, d):
    """c · m · 2^(200 d), or 0.0 when the term is more than 3 coarse units below the largest
    (d < -3: dropped).  Adding the 0.0 of a dropped term to a sum is exact."""
    if d >= -3:
        return c * (m * _coarse_scale(d))
    return 0.0


@njit(cache=True)
def _mix(c_plus, m1, e1, c_zero, m2, e2, c_minus, m3, e3):
    """(mantissa, coarse exponent) of c_plus·m1 + c_zero·m2 + c_minus·m3 (masses in the
    extended format; an exact zero has exponent _ZERO_E and contributes nothing)."""
    emax = max(e1, max(e2, e3))
    if emax == _ZERO_E:
        return 0.0, _ZERO_E
    acc = _term(c_plus, m1, e1 - emax) + _term(c_zero, m2, e2 - emax) \
        + _term(c_minus, m3, e3 - emax)
    # acc > 0: the term with exponent emax has a coefficient > 0
    return _renormalise(acc, emax)


@njit(cache=True)
def _convolve_step(mant, ex, off, r, c_plus, c_zero, c_minus, binary):
    """In place: row r-1 -> row r (convolution with {+1: c_plus, 0: c_zero, -1: c_minus}).

    Each new mass has relative error <= (1 + old error)(1 + u)^4 (1 + 2^-240) - 1: the three
    constants and the products are rounded once, the sum of <= 3 positive terms twice, and
    terms more than 3 coarse units below the largest kept term are dropped.
    """
    if binary:
        # K = 2: row r lives on s = r (mod 2); new[s] = c_plus old[s-1] + c_minus old[s+1].
        # Cells of parity r-1 are read and then cleared.
        for i in range(off - r, off + r + 1, 2):
            m1, e1 = mant[i - 1], ex[i - 1]
            mant[i - 1] = 0.0
            ex[i - 1] = _ZERO_E
            mant[i], ex[i] = _mix(c_plus, m1, e1, 0.0, 0.0, _ZERO_E, c_minus, mant[i + 1],
                                  ex[i + 1])
        mant[off + r + 1] = 0.0
        ex[off + r + 1] = _ZERO_E
        return
    pm = 0.0
    pe = _ZERO_E
    for i in range(off - r, off + r + 1):
        m1, e1 = pm, pe  # old value at i - 1 (already overwritten in the array)
        m2, e2 = mant[i], ex[i]
        pm, pe = m2, e2
        mant[i], ex[i] = _mix(c_plus, m1, e1, c_zero, m2, e2, c_minus, mant[i + 1], ex[i + 1])


@njit(cache=True)
def _median_region(mant, ex, off, r, step):
    """k: the smallest j = -k with sum_{s<=j} m_s >= 1/2 (an estimate; any j gives a lower
    bound)."""
    cum = 0.0
    for i in range(off - r, off + r + 1, step):
        cum += _ext_value(mant[i], ex[i])
        if cum >= 0.5:
            return off - i
    return -r


@njit(cache=True)
def _region_sums(mant, ex, off, r, jlo, jhi, step, a_m, a_e, c_vals):
    """For j = jlo..jhi (at most 3): A_j = sum_{s<j} m_s in the extended format (a_m, a_e)
    and C_j = sum_{s > -j} m_s as a float (c_vals), index j - jlo."""
    acc = 0.0
    eacc = _ZERO_E
    for i in range(off - r, off + jlo, step):
        acc, eacc = _ext_add(acc, eacc, mant[i], ex[i])
    for jj in range(jlo, jhi + 1):
        a_m[jj - jlo] = acc
        a_e[jj - jlo] = eacc
        acc, eacc = _ext_add(acc, eacc, mant[off + jj], ex[off + jj])
    # C_j: one scan from the top
    csum = 0.0
    for i in range(off + r, off - jlo, -step):  # s = r .. -jlo + 1
        csum += _ext_value(mant[i], ex[i])
    c_vals[0] = csum
    for jj in range(jlo + 1, jhi + 1):
        csum += _ext_value(mant[off - jj + 1], ex[off - jj + 1])  # C_jj = C_(jj-1) + m_(1-jj)
        c_vals[jj - jlo] = csum


@njit(cache=True)
def _region_bound(jj, am, ae, ch, gsum, tiny, nent, log_r, ln2):
    """Bounds on F(j) = log(A_j + R^j (1/2 - C_j)) for j = jj from the float sums (relative
    error <= gsum, plus ``tiny`` absolute).  Returns (lo, est, hi, ok); ok is False when
    1/2 - C_j is not certainly positive (then F(j) gives nothing)."""
    h = 0.5 - ch
    err_h = ch * gsum * 1.01 + tiny + _U
    h_lo = h - err_h
    if h_lo <= 0.0:
        return -np.inf, -np.inf, -np.inf, False
    h_hi = h + err_h
    jl = jj * log_r
    lb_lo = jl + math.log(h_lo)
    lb_hi = jl + math.log(h_hi)
    lb_est = jl + math.log(h)
    if am > 0.0:
        la = _log_ext(am, ae, ln2)
        ga = gsum + 2.0 * nent * _U
        la_lo = la + math.log1p(-ga)
        la_hi = la + math.log1p(ga)
        mag = abs(la) + abs(200.0 * ae * ln2)
    else:
        la = -np.inf
        la_lo = -np.inf
        la_hi = -np.inf
        mag = 0.0
    x_lo = _logaddexp(la_lo, lb_lo)
    x_hi = _logaddexp(la_hi, lb_hi)
    x_est = _logaddexp(la, lb_est)
    # evaluation error of the float formulas (log R, ln 2, libm, additions): generous
    ev = 8.0 * _U * (mag + abs(jl) + abs(math.log(h_lo)) + abs(x_lo) + 4.0)
    v_lo = x_lo - ev
    v_lo = v_lo - 2.0 * _U * abs(v_lo)
    return v_lo, x_est, x_hi + ev + 2.0 * _U * abs(x_hi), True


@njit(cache=True)
def _finish_row(mant, ex, off, r, gam, log_r, ln2, step, a_m, a_e, c_vals):
    """Bounds on L_r from row r (masses with relative error <= gam).

    Returns (lo, est, hi): lo a rigorous lower bound on L_r (the best of F(j) for the three
    candidate regions j = k-1, k, k+1 and the trivial F(-r)), est the nominal float64 value,
    hi an upper bound valid if the true region is a candidate (used only as a quality check).
    ``step`` is 2 for K = 2 (odd cells are zero) and 1 otherwise; a_m, a_e, c_vals are
    scratch of length 3.
    """
    nent = 2 * r + 1
    # float sums of masses: relative error <= gsum, plus flushed tiny terms (absolute)
    gsum = gam * (1.0 + 2.0 * nent * _U) + 2.0 * nent * _U
    tiny = nent * 2.0 ** -790
    k = _median_region(mant, ex, off, r, step)
    jlo = max(k - 1, -r)
    jhi = min(k + 1, r)
    _region_sums(mant, ex, off, r, jlo, jhi, step, a_m, a_e, c_vals)
    # trivial bound F(-r) = R^-r / 2
    t = -ln2 - r * log_r
    best_lo = t - 8.0 * _U * (abs(t) + 1.0)
    best_est = t
    best_hi = -np.inf
    for jj in range(jlo, jhi + 1):
        v_lo, x_est, x_hi, ok = _region_bound(jj, a_m[jj - jlo], a_e[jj - jlo],
                                              c_vals[jj - jlo], gsum, tiny, nent, log_r, ln2)
        if not ok:
            continue
        best_hi = max(best_hi, x_hi)
        if v_lo > best_lo:
            best_lo = v_lo
            best_est = x_est
    return best_lo, best_est, best_hi


@njit(cache=True)
def _float_thresholds_kernel(c_plus, c_zero, c_minus, log_r, ln2, r_max, lo, est, width):
    """Fill lo[r] (rigorous lower bound on L_r), est[r] (nominal value) and width[r] (width of
    an enclosure, inf when unknown) for r = 0..r_max.  O(r_max²) total, O(r_max) memory.

    Masses m_s = mant[i] * 2**(200*ex[i]), i = s + r_max + 1 (one zero of padding each side);
    ``gam`` bounds the relative error of every stored mass.
    """
    off = r_max + 1
    size = 2 * r_max + 3
    mant = np.zeros(size)
    ex = np.full(size, _ZERO_E, dtype=np.int64)
    mant[off] = 1.0
    ex[off] = 0
    binary = c_zero == 0.0
    step = 2 if binary else 1
    a_m = np.zeros(3)
    a_e = np.zeros(3, dtype=np.int64)
    c_vals = np.zeros(3)
    gam = 0.0
    for r in range(r_max + 1):
        if r > 0:
            _convolve_step(mant, ex, off, r, c_plus, c_zero, c_minus, binary)
            gam = gam + 6.0 * _U * (1.0 + gam) + 2.0 ** -200
        b_lo, b_est, b_hi = _finish_row(mant, ex, off, r, gam, log_r, ln2, step, a_m, a_e,
                                        c_vals)
        lo[r] = b_lo
        est[r] = b_est
        width[r] = b_hi - b_lo if b_hi > -np.inf else np.inf
