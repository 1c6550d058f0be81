"""Tight (Neyman–Pearson) thresholds for the label-flip certificate, rounded DOWN.

Reference: Rosenfeld et al., "Certified Robustness to Label-Flipping Attacks via Randomized
Smoothing", ICML 2020, §4 "Computing a tight bound" (their eq. 2), which uses the combinatorial
construction of Lee et al., "Tight certificates of adversarial robustness for randomly smoothed
classifiers", NeurIPS 2019.  Notation and derivation: ``docs/math.md`` §4.

What is computed
----------------
For noise level ``q`` and ``K`` classes (``K = 2``: binary), with p₋ = q/(K−1),
p₀ = q(K−2)/(K−1) and R = (1−q)(K−1)/q > 1: for r flipped positions, m_s = μ(a − b = s) is the
r-fold convolution of the three-point law {+1: 1−q, 0: p₀, −1: p₋}; the likelihood ratio
μ/ρ on {a − b = s} is R^s and ρ_s = m_s R^{−s} = m_{−s}.  With
``F(j) = Σ_{s<j} m_s + R^j (1/2 − Σ_{s<j} ρ_s)``, the threshold is

    1 − p_r = F(k) = max_j F(j),

where k is the region at which the Neyman–Pearson fill from s = r downwards reaches ρ-mass 1/2
(the worst-case ρ-mass is a convex piecewise-linear function of the μ-mass, so its inverse is
the minimum of the inverses of its pieces).  Hence **F(j) is a lower bound on 1 − p_r for every
j** — the float64 path relies on this: choosing a wrong j can only lower the threshold.
Radius r is certified iff ℓ = log(1 − p) < L_r := log(1 − p_r) for every r' ≤ r
(strict).  L_0 = log(1/2).

Rounding direction
------------------
Every value returned here is a rigorous LOWER bound on the true L_r (a smaller L_r certifies
less), and :func:`log_thresholds` also applies the running minimum, so the table is
non-increasing.  Never over-certify.

Two paths
---------
* float64 (``method="float64"``): a numba kernel, O(r_max²) in total.  Masses are stored as a
  float64 mantissa times 2^(200·E) with an int64 coarse exponent E per entry, so nothing
  underflows (m_s reaches 10^-10000 and below for large r) and the relative error of every
  mass grows only by about 6 units of roundoff per convolution step (independent of the
  magnitude, unlike a log-space recursion).  The kernel returns for each r a rigorous lower
  bound and the width of a rigorous enclosure.
* exact (``method="exact"``): q = Fraction(q_str) exactly; the masses are exact rationals with
  the common denominator D^r (integer numerators, gmpy2 ``mpz`` or Python ``int`` through
  :mod:`numbaflip._backend`), 1 − p_r is an exact rational and its log is evaluated with mpmath
  at 60 significant digits, lowered by a 10^-50 relative margin (far above mpmath's error) and
  converted to float64 rounding towards −∞.

``method="auto"`` (the default) runs the float64 kernel and recomputes exactly every r whose
float64 enclosure is wider than ``AUTO_REL_WIDTH = 1e-10`` relative (relative to max(1, |L_r|)),
as long as that r is within the exact-fallback caps (:data:`EXACT_FALLBACK_MAX_R_BINARY`,
:data:`EXACT_FALLBACK_MAX_R_MULTICLASS`); beyond the caps the (always sound) float64 lower bound
is kept.  If q is so small that a per-position probability is below 2^-150 (q ≲ 1e-45) the
float64 kernel's exponent handling is not guaranteed and the exact path is used for all r.
"""
from __future__ import annotations

import math
import numbers
from fractions import Fraction

import mpmath
import numpy as np
from .. import _backend, _problem
from .._kernels.thresholds import _float_thresholds_kernel
from ..errors import NumbaflipInputError

__all__ = [
    "parse_q",
    "canonical_q_str",
    "log_thresholds",
    "log_thresholds_float64",
    "log_thresholds_exact",
    "log_thresholds_mp",
    "trivial_log_threshold_lower",
    "AUTO_REL_WIDTH",
]

#: "auto" recomputes exactly every r whose float64 enclosure width exceeds this, relative to
#: max(1, |L_r|).
AUTO_REL_WIDTH = 1e-10
#: Largest r recomputed exactly by "auto" for K = 2 (direct binomial row, O(r) big-int ops).
EXACT_FALLBACK_MAX_R_BINARY = 20000
#: Largest r recomputed exactly by "auto" for K >= 3 (integer convolution, O(r²) big-int ops).
EXACT_FALLBACK_MAX_R_MULTICLASS = 1500
#: Decimal digits of the mpmath evaluation in the exact path, and the relative safety margin.
_EXACT_DPS = 60
_U = 2.0 ** -53  # unit roundoff
_EXACT_MARGIN = mpmath.mpf(10) ** -50

# ---------------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------------


def parse_q(q_str, K) -> Fraction:
    """q as an exact rational, through the one q parser (:func:`numbaflip._problem.parse_q`:
    grammar, range 0 < q < (K−1)/K and floors documented there)."""
    if isinstance(K, bool) or not isinstance(K, numbers.Integral) or int(K) < 2:
        raise NumbaflipInputError(
            f"K must be an integer >= 2 (number of classes), got {K!r}; use K=2 for binary")
    return _problem.parse_q(q_str, int(K)).exact


def canonical_q_str(q_str, K: int = 2) -> str:
    """One canonical string per exact value of q (:func:`numbaflip._problem.canonical_q_str`):
    ``"1e-4"``, ``"0.0001"``, ``"1E-04"`` all give ``"0.0001"``; other rationals ``"p/q"``."""
    return _problem.parse_q(q_str, int(K)).canonical


def _integer_law(q: Fraction, K: int):
    """Integer numerators (N₊, N₀, N₋) over the common denominator D of the per-position law
    {+1: 1−q, 0: p₀, −1: p₋}, reduced by their gcd."""
    u, v = q.numerator, q.denominator
    n_plus, n_zero, n_minus, d = (v - u) * (K - 1), u * (K - 2), u, v * (K - 1)
    g = math.gcd(math.gcd(n_plus, n_zero), math.gcd(n_minus, d))
    return n_plus // g, n_zero // g, n_minus // g, d // g


def trivial_log_threshold_lower(q_str, K: int, r) -> np.ndarray:
    """Cheap valid lower bound L_r >= log(1/2) − r·log R (this is F(−r), see module docstring),
    rounded down; ``r`` may be an array.  Used to certify without a table when ℓ is tiny."""
    q = parse_q(q_str, K)
    n_plus, _, n_minus, _ = _integer_law(q, K)
    with mpmath.workdps(40):
        log_r = float(mpmath.log(mpmath.mpf(n_plus) / n_minus))
        ln2 = float(mpmath.log(2))
    r = np.asarray(r, dtype=np.float64)
    t = -ln2 - r * log_r
    return t - 8 * _U * (np.abs(t) + 1.0) - 1e-300


def _float_constants(q: Fraction, K: int):
    n_plus, n_zero, n_minus, d = _integer_law(q, K)
    c_plus = float(Fraction(n_plus, d))  # Fraction -> float is correctly rounded
    c_zero = float(Fraction(n_zero, d))
    c_minus = float(Fraction(n_minus, d))
    with mpmath.workdps(40):
        log_r = float(mpmath.log(mpmath.mpf(n_plus) / n_minus))
        ln2 = float(mpmath.log(2))
    return c_plus, c_zero, c_minus, log_r, ln2


def _float_kernel_ok(q: Fraction, K: int) -> bool:
    c_plus, c_zero, c_minus, _, _ = _float_constants(q, K)
    cmin = min(c for c in (c_plus, c_zero, c_minus) if c > 0)
    return cmin >= 2.0 ** -150


def log_thresholds_float64(q_str, K: int, r_max: int, *, _raw: bool = False):
    """float64 lower bounds on L_r, r = 0..r_max (no running minimum, no fallback).

    Returns ``(lo, est, width)``: ``lo`` rigorous lower bounds (rounded down), ``est`` the
    nominal float64 values, ``width`` the width of a rigorous enclosure (inf where the kernel
    could not bound the error; ``lo`` is then the trivial bound log(1/2) − r log R).
    """
    q = parse_q(q_str, K)
    r_max = _check_r_max(r_max)
    c_plus, c_zero, c_minus, log_r, ln2 = _float_constants(q, K)
    lo = np.empty(r_max + 1)
    est = np.empty(r_max + 1)
    width = np.empty(r_max + 1)
    _float_thresholds_kernel(c_plus, c_zero, c_minus, log_r, ln2, r_max, lo, est, width)
    lo[0] = _log_half_down()  # p_0 = 1/2 exactly: use the best rounded-down value
    return lo, est, width


# ---------------------------------------------------------------------------------------------
# exact path
# ---------------------------------------------------------------------------------------------


def _check_r_max(r_max) -> int:
    if isinstance(r_max, bool) or not isinstance(r_max, numbers.Integral) or r_max < 0:
        raise NumbaflipInputError(
            f"r_max must be a non-negative integer (largest number of flips), got {r_max!r}")
    return int(r_max)


def _exact_one_minus_p(row, r, law):
    """Exact 1 − p_r as (numerator, denominator) integers from the integer row
    (M_s for s = −r..r, sum D^r)."""
    n_plus, _, n_minus, d = law
    mpz = _backend.mpz
    total = mpz(d) ** r
    # k: smallest j with 2 * sum_{s<=j} M_s >= total
    cum = mpz(0)
    istar = 2 * r
    for i, m in enumerate(row):
        cum += m
        if 2 * cum >= total:
            istar = i
            break
    k = -(istar - r)
    h_num = 2 * cum - total  # = total - 2 C_k >= 0
    a = mpz(0)
    for i in range(0, k + r):  # s < k  <=>  i = s + r < k + r
        a += row[i]
    if k >= 0:
        pm, pp = mpz(n_minus) ** k, mpz(n_plus) ** k
        return 2 * pm * a + pp * h_num, 2 * pm * total
    pm, pp = mpz(n_minus) ** (-k), mpz(n_plus) ** (-k)
    return 2 * pp * a + pm * h_num, 2 * pp * total


def _exact_rows_convolution(law, rs):
    """Yield (r, row) for r in the sorted set ``rs`` by exact integer convolution."""
    n_plus, n_zero, n_minus, _ = law
    mpz = _backend.mpz
    want = sorted(set(rs))
    if not want:
        return
    r_top = want[-1]
    row = np.array([mpz(1)], dtype=object)
    wi = 0
    a, b, c = mpz(n_plus), mpz(n_zero), mpz(n_minus)
    for r in range(r_top + 1):
        if r > 0:
            new = np.empty(2 * r + 1, dtype=object)
            new[:] = mpz(0)
            new[2:] += a * row  # s - 1 -> s
            if n_zero:
                new[1:-1] += b * row
            new[:-2] += c * row  # s + 1 -> s
            row = new
        if r == want[wi]:
            yield r, list(row)
            wi += 1
            if wi == len(want):
                return


def _exact_row_binary(law, r):
    """Row M_s (s = −r..r) for K = 2 directly: M_{2a−r} = C(r, a) N₊^a N₋^(r−a)."""
    n_plus, _, n_minus, _ = law
    mpz = _backend.mpz
    row = [mpz(0)] * (2 * r + 1)
    binom = mpz(1)
    pp = [mpz(1)]
    for _ in range(r):
        pp.append(pp[-1] * n_plus)
    pmv = mpz(1)
    vals = [None] * (r + 1)
    for a in range(r, -1, -1):  # N₋ power grows as a decreases
        vals[a] = pmv
        pmv = pmv * n_minus
    for a in range(r + 1):
        row[2 * a] = binom * pp[a] * vals[a]
        binom = binom * (r - a) // (a + 1)
    return row


def _exact_rows(law, K, rs):
    if K == 2:
        for r in sorted(set(rs)):
            yield r, _exact_row_binary(law, r)
    else:
        yield from _exact_rows_convolution(law, rs)


def _mp_log_ratio(num, den):
    """log(num/den) as an mpf at the current precision (caller sets workdps)."""
    return mpmath.log(mpmath.mpf(int(num))) - mpmath.log(mpmath.mpf(int(den)))


def _round_down_to_float(x) -> float:
    """Largest float64 <= x (x an mpf)."""
    f = float(x)
    while mpmath.mpf(f) > x:
        f = math.nextafter(f, -math.inf)
    return f


def _log_half_down() -> float:
    """The largest float64 <= log(1/2)."""
    with mpmath.workdps(40):
        return _round_down_to_float(mpmath.log(mpmath.mpf(1) / 2))


def _exact_values(q: Fraction, K: int, rs):
    """{r: (mp value of L_r at _EXACT_DPS digits, rigorous rounded-down float)} for r in rs."""
    law = _integer_law(q, K)
    out = {}
    with mpmath.workdps(_EXACT_DPS):
        for r, row in _exact_rows(law, K, rs):
            num, den = _exact_one_minus_p(row, r, law)
            x = _mp_log_ratio(num, den)
            x_lo = x - _EXACT_MARGIN * (1 + abs(x))
            out[r] = (x, _round_down_to_float(x_lo))
    return out


def log_thresholds_exact(q_str, K: int, r_max: int) -> np.ndarray:
    """Exact-arithmetic L_r for r = 0..r_max, each rounded DOWN rigorously to float64 (no running
    minimum).  Cost: O(r_max²) big-integer operations (K = 10, r_max = 200: about a second)."""
    q = parse_q(q_str, K)
    r_max = _check_r_max(r_max)
    law = _integer_law(q, K)
    out = np.empty(r_max + 1)
    with mpmath.workdps(_EXACT_DPS):
        for r, row in _exact_rows_convolution(law, range(r_max + 1)):
            num, den = _exact_one_minus_p(row, r, law)
            x = _mp_log_ratio(num, den)
            out[r] = _round_down_to_float(x - _EXACT_MARGIN * (1 + abs(x)))
    return out


def log_thresholds_mp(q_str, K: int, r_max: int, digits: int = 30) -> list[str]:
    """High-precision L_r (exact rational, log at 60 digits) as strings with ``digits``
    significant digits, r = 0..r_max — for comparison with reference tables.  These strings are
    rounded to nearest (informative); use :func:`log_thresholds_exact` for certified floats."""
    q = parse_q(q_str, K)
    r_max = _check_r_max(r_max)
    law = _integer_law(q, K)
    out = []
    with mpmath.workdps(_EXACT_DPS):
        for r, row in _exact_rows_convolution(law, range(r_max + 1)):
            num, den = _exact_one_minus_p(row, r, law)
            out.append(mpmath.nstr(_mp_log_ratio(num, den), digits))
    return out


def exact_one_minus_p(q_str, K: int, r: int) -> Fraction:
    """1 − p_r as an exact :class:`fractions.Fraction` (for tests and small r)."""
    q = parse_q(q_str, K)
    law = _integer_law(q, K)
    for _, row in _exact_rows(law, K, [_check_r_max(r)]):
        num, den = _exact_one_minus_p(row, r, law)
        return Fraction(int(num), int(den))


# ---------------------------------------------------------------------------------------------
# public entry point
# ---------------------------------------------------------------------------------------------


def log_thresholds(q_str, K: int, r_max: int, method: str = "auto") -> np.ndarray:
    """Tight thresholds L_r = log(1 − p_r), r = 0..r_max, float64, rounded DOWN, non-increasing.

    Lee et al. (2019) / Rosenfeld et al. (2020) eq. 2; ``docs/math.md`` §4.  Radius r is
    certified iff ``log(1 − p) < L[r']`` for every r' <= r; since the running minimum is already
    applied this is ``log(1 − p) < L[r]``.

    ``method``: ``"float64"`` (numba kernel, rigorous lower bounds), ``"exact"`` (exact
    rationals + mpmath, rounded down; O(r_max²) big-integer work, for r_max up to a few hundred)
    or ``"auto"`` (float64, with exact recomputation of each r whose float64 enclosure is wider
    than ``AUTO_REL_WIDTH`` relative, within the fallback caps; see the module docstring).
    Every method returns lower bounds on the true thresholds; they differ only in tightness.
    """
    q = parse_q(q_str, K)
    K = int(K)
    r_max = _check_r_max(r_max)
    if method not in ("auto", "float64", "exact"):
        raise NumbaflipInputError(
            f"method={method!r} is not known; use 'auto', 'float64' or 'exact'")
    if method == "exact" or (method == "auto" and not _float_kernel_ok(q, K)):
        out = log_thresholds_exact(q, K, r_max)
    elif not _float_kernel_ok(q, K):
        raise NumbaflipInputError(
            f"q={q_str!r} is too small for the float64 threshold kernel (a per-position "
            f"probability is below 2^-150); use method='exact' or 'auto'")
    else:
        out, est, width = log_thresholds_float64(q, K, r_max)
        if method == "auto":
            bad = np.flatnonzero(~(width <= AUTO_REL_WIDTH * np.maximum(1.0, np.abs(est))))
            cap = EXACT_FALLBACK_MAX_R_BINARY if K == 2 else EXACT_FALLBACK_MAX_R_MULTICLASS
            bad = [int(r) for r in bad if r <= cap]
            if bad:
                for r, (_, f) in _exact_values(q, K, bad).items():
                    out[r] = max(out[r], f)  # both are valid lower bounds
    return np.minimum.accumulate(out)
