"""Rigorous high-precision evaluation of the Chernoff objectives, rounded UP.

The float64 kernels find t* and an error interval for log B; where that interval straddles a
threshold, the caller re-evaluates the objective at the same t with these functions.  Any t gives
a valid Chernoff bound (Rosenfeld et al., ICML 2020, eq. 6 and appendix B; ``docs/math.md``
§2–3), so soundness needs only an upward-rounded value of the objective at the t actually used.

Method: every term is evaluated with mpmath's multiprecision kernels (``mpmath.libmp``) at
:data:`PREC_BITS` = 113 bits (about 34 digits), the terms are summed exactly, and an explicit
bound on the per-term errors is added before the result is rounded UP to float64:
each term's error is at most 2^-(113-4)·(|tα| + |term| + 8), which covers the rounding of
t·α, of exp and log (mpmath's are accurate to a few ulp), of the rational constants from q, and of
the few additions inside a term.  The inputs α and t are float64 and used exactly; q is an exact
decimal string.  The margin is ~1e-30 relative, far below float64 resolution, so the result is
the float64 just above the true value.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from mpmath import libmp

from ._problem import check_num_classes, parse_q
from .errors import NumbaflipInputError

__all__ = ["mp_binary_log_objective", "mp_multiclass_log_bound", "mp_pair_log_objective",
           "PREC_BITS"]

PREC_BITS = 113
_RN = libmp.round_nearest
_FZERO = libmp.fzero
_FONE = libmp.fone


def _mpf_rat(fr: Fraction, prec):
    return libmp.from_rational(fr.numerator, fr.denominator, prec, _RN)


def _round_up_float(x) -> float:
    """Smallest float64 >= the libmp value x."""
    f = libmp.to_float(x, rnd=libmp.round_ceiling)
    while libmp.mpf_lt(libmp.from_float(f), x):
        f = math.nextafter(f, math.inf)
    return f


def _coerce(alpha, y, name_y="y"):
    a = np.ascontiguousarray(np.asarray(alpha, dtype=np.float64).ravel())
    lab = np.asarray(y)
    if lab.size != a.size:
        raise NumbaflipInputError(
            f"alpha has {a.size} entries but {name_y} has {lab.size}; pass one label per "
            f"training point")
    lab = np.ascontiguousarray(lab.ravel().astype(np.int64))
    if not np.all(np.isfinite(a)):
        raise NumbaflipInputError("alpha contains NaN or infinity; check the ridge solve")
    return a, lab


def _check_t(t, name="t"):
    t = float(t)
    if not math.isfinite(t):
        raise NumbaflipInputError(f"{name}={t!r} must be finite")
    return t


def _finish(total, margin_float):
    """Round total + margin up to float64 (total exact libmp value, margin a float bound)."""
    margin = libmp.from_float(margin_float * (1.0 + 2.0 ** -50))
    return _round_up_float(libmp.mpf_add(total, margin, PREC_BITS + 20, libmp.round_ceiling))


def _binary_terms_sum(a, lab, q: Fraction, t: float):
    """Σ_i log(g_i) with g_i = q + (1−q)e^{−tα_i} (y_i = 1) or (1−q) + q e^{−tα_i} (y_i = 0),
    evaluated as the log of the product of the g_i (one log instead of n; each product step
    adds a relative error 2^-113, i.e. an absolute error 2^-113 to the log).  Returns
    (value, magnitude for the error bound)."""
    prec = PREC_BITS
    mq = _mpf_rat(q, prec)
    m1q = _mpf_rat(1 - q, prec)
    mt = libmp.from_float(-t)
    coef = {1: (mq, m1q), 0: (m1q, mq)}
    prod = _FONE
    exp_, mul, add = libmp.mpf_exp, libmp.mpf_mul, libmp.mpf_add
    from_float = libmp.from_float
    for ai, yi in zip(a.tolist(), lab.tolist()):
        if ai == 0.0:
            continue  # g = q + (1 - q) = 1
        c0, c1 = coef[yi]
        e = exp_(mul(mt, from_float(ai), prec, _RN), prec, _RN)  # exp(-t alpha)
        prod = mul(prod, add(c0, mul(c1, e, prec, _RN), prec, _RN), prec, _RN)
    total = libmp.mpf_log(prod, prec + 20, _RN)
    # |log g_i| <= |t alpha_i| + |log q| (coefficients >= q, summing to 1)
    mag = float(np.sum(2.0 * np.abs(t * a) + abs(math.log(float(q))) + 8.0)) * (1 + 1e-10)
    return total, mag


def mp_binary_log_objective(alpha, y, q_str, t) -> float:
    """Upper bound (float64, rounded UP) on the binary Chernoff objective at t (math.md §2):

        f(t) = t/2 + Σ_{y_i=1} log(q + (1−q) e^{−t α_i}) + Σ_{y_i=0} log((1−q) + q e^{−t α_i}).

    ``alpha`` float64 (used exactly), ``y`` labels in {0, 1}, ``q_str`` an exact decimal
    string, ``t`` a float64 (any t: e^{f(t)} bounds P(αᵀY <= 1/2) for t > 0 and
    P(αᵀY >= 1/2) for t < 0).  n = 60000 takes about a second.
    """
    q = parse_q(q_str, 2).exact
    a, lab = _coerce(alpha, y)
    if lab.size and (lab.min() < 0 or lab.max() > 1):
        raise NumbaflipInputError("binary labels y must be 0 or 1")
    t = _check_t(t)
    total, mag = _binary_terms_sum(a, lab, q, t)
    half_t = libmp.mpf_shift(libmp.from_float(t), -1)  # t/2 exactly
    total = libmp.mpf_add(total, half_t, 0)
    return _finish(total, 2.0 ** -(PREC_BITS - 4) * (mag + abs(t) + 8.0))


def _pair_coeffs(c, c2, K, q: Fraction):
    """Per-label coefficients (of e^{-x}, 1, e^{x}) of the terms of f_{c c2}, as Fractions."""
    pm = q / (K - 1)
    p0 = q * (K - 2) / (K - 1)
    return {c: (1 - q, p0, pm), c2: (pm, p0, 1 - q), None: (pm, 1 - 2 * pm, pm)}


def _pair_sum(a, lab, c, c2, K, q: Fraction, t: float):
    """f_{c c2}(t) as an mpf, and the magnitude for the error bound.

    Every term is log(A e^{-x} + B + C e^{x}) = −x + log(A + e^{x}(B + C e^{x})) with x = tα and
    A, B, C >= 0 (the "other" term log(1 + 4p₋ sinh²(x/2)) is the case A = C = p₋,
    B = 1 − 2p₋: at 113 bits its absolute error, which is all that matters for a sum, stays a
    few 2^-113).  The second logs are summed as the log of one product, the x exactly.  Since
    min(A, C) e^{|x|} <= A e^{-x} + B + C e^{x} <= e^{|x|}, every partial log is at most
    2|x| + |log p₋| in absolute value.
    """
    prec = PREC_BITS
    coeffs = {k: tuple(_mpf_rat(f, prec) if f else _FZERO for f in v)
              for k, v in _pair_coeffs(c, c2, K, q).items()}
    other = coeffs[None]
    mt = libmp.from_float(t)
    sum_x = _FZERO
    prod = _FONE
    exp_, mul, add = libmp.mpf_exp, libmp.mpf_mul, libmp.mpf_add
    from_float = libmp.from_float
    for ai, yi in zip(a.tolist(), lab.tolist()):
        if ai == 0.0:
            continue  # log(A + B + C) = log 1 = 0
        ca, cb, cc = coeffs.get(yi, other)
        x = mul(mt, from_float(ai), prec, _RN)
        ep = exp_(x, prec, _RN)
        g = add(ca, mul(ep, add(cb, mul(cc, ep, prec, _RN), prec, _RN), prec, _RN), prec, _RN)
        prod = mul(prod, g, prec, _RN)
        sum_x = add(sum_x, x, 0)  # exact
    total = libmp.mpf_sub(libmp.mpf_log(prod, prec + 20, _RN), sum_x, prec + 20, _RN)
    ax = np.abs(t * a)
    mag = float(np.sum(3.0 * ax + abs(math.log(float(q / (K - 1)))) + 8.0)) * (1 + 1e-10)
    return total, mag


def _check_multiclass(alpha, y, K, q_str):
    K = check_num_classes(K)
    q = parse_q(q_str, K).exact
    a, lab = _coerce(alpha, y)
    if lab.size and (lab.min() < 0 or lab.max() >= K):
        raise NumbaflipInputError(f"labels y must be integers in 0..K-1 = 0..{K - 1}")
    return q, K, a, lab


def mp_pair_log_objective(alpha, y, c, c2, K, q_str, t) -> float:
    """Upper bound (float64, rounded UP) on f_{c c2}(t) of math.md §3 (requires t > 0):

        Σ_{y_j=c} log((1−q)e^{−tα_j} + p₀ + p₋e^{tα_j}) + Σ_{y_j=c2} log(p₋e^{−tα_j} + p₀
        + (1−q)e^{tα_j}) + Σ_{other} log(1 + 4p₋ sinh²(tα_j/2)).
    """
    q, K, a, lab = _check_multiclass(alpha, y, K, q_str)
    t = _check_t(t)
    if not t > 0:
        raise NumbaflipInputError(f"t={t!r}: the pairwise bound is only valid for t > 0")
    total, mag = _pair_sum(a, lab, int(c), int(c2), K, q, t)
    return _finish(total, 2.0 ** -(PREC_BITS - 4) * (mag + 8.0))


def mp_multiclass_log_bound(alpha, y, pred, K, q_str, ts, *, noise_K=None,
                            weights=None) -> float:
    """Upper bound (float64, rounded UP) on log Σ_{c'≠pred} exp(f_{pred,c'}(t_{c'})), the log of
    the union bound on 1 − p_pred (math.md §3; Rosenfeld et al. appendix B).

    ``ts``: length-K float array, ``ts[c']`` the t used for rival c' (``ts[pred]`` ignored);
    an entry <= 0 or NaN means B = 1 for that pair, i.e. f = 0 is used (valid: t → 0⁺).
    ``noise_K`` (default K): the number of classes of the noise, when the K label slots stand
    for more classes; ``weights`` (default all 1): how many rival classes each slot stands for.
    """
    q, K, a, lab = _check_multiclass(alpha, y, K, q_str)
    noise_K = K if noise_K is None else int(noise_K)
    if noise_K != K:
        q = parse_q(q_str, noise_K).exact
    w = [1] * K if weights is None else [int(v) for v in np.asarray(weights).ravel()]
    pred = int(pred)
    if not 0 <= pred < K:
        raise NumbaflipInputError(f"pred={pred} must be a class index in 0..{K - 1}")
    ts = np.asarray(ts, dtype=np.float64).ravel()
    if ts.size != K:
        raise NumbaflipInputError(f"ts must have K={K} entries (one t per rival class), "
                                  f"got {ts.size}")
    prec = PREC_BITS + 20
    # collect rigorous upper bounds u_c' >= f_{pred,c'} as exact libmp values, then
    # log-sum-exp with upward margins
    uppers = []
    for c2 in range(K):
        if c2 == pred:
            continue
        t = float(ts[c2])
        if not (t > 0) or not math.isfinite(t):
            up = _FZERO
        else:
            total, mag = _pair_sum(a, lab, pred, c2, noise_K, q, t)
            margin = libmp.from_float(2.0 ** -(PREC_BITS - 4) * (mag + 8.0) * (1 + 2.0 ** -50))
            up = libmp.mpf_add(total, margin, prec, libmp.round_ceiling)
        if w[c2] != 1:  # + log w, rounded up
            up = libmp.mpf_add(up, libmp.mpf_log(libmp.from_int(w[c2]), prec,
                                                 libmp.round_ceiling), prec, libmp.round_ceiling)
        uppers.append(up)
    # log Σ exp(u_i) = m + log Σ exp(u_i - m); evaluate at prec bits and add a margin of
    # 2^-(prec-8) (|log| of a sum of <= K terms in [e^-big, K])
    m = max(uppers, key=lambda v: libmp.to_float(v))
    acc = _FZERO
    for v in uppers:
        d = libmp.mpf_sub(v, m, prec, libmp.round_ceiling)
        acc = libmp.mpf_add(acc, libmp.mpf_exp(d, prec, libmp.round_ceiling), prec,
                            libmp.round_ceiling)
    lse = libmp.mpf_add(m, libmp.mpf_log(acc, prec, libmp.round_ceiling), prec,
                        libmp.round_ceiling)
    margin = 2.0 ** -(prec - 8) * (1.0 + abs(libmp.to_float(lse)) + math.log(sum(w)))
    return _finish(lse, margin)
