"""Certified radii from an upper bound ℓ on log(1 − p) (math.md §4; paper eq. 3–5, B.3).

Radius semantics, used everywhere in numbaflip: r ≥ 0 means the smoothed classifier keeps its
prediction, with probability strictly above 1/2, for every training-label vector within r flips;
**−1 means not certified, not even at r = 0** (ℓ ≥ log(1/2)); radii are capped at n, and ℓ = −∞
(B = 0) gives n.  Every floating-point step below rounds towards a smaller radius.
"""
from __future__ import annotations

import math
from fractions import Fraction

import mpmath

import numpy as np

_U = 2.0 ** -53


def kl_kappa(q, K: int) -> float:
    """κ = (1 − Kq/(K−1)) · log((1−q)(K−1)/q), rounded up (eq. 5 for K = 2, B.3 for K > 2).

    With q a :class:`fractions.Fraction` (what :func:`numbaflip.certify` passes) κ is computed
    from the exact q at 40 digits, so the cancellation in 1 − Kq/(K−1) near the upper end of q
    cannot make κ too small; a float q is taken as exact.
    """
    if isinstance(q, Fraction):
        with mpmath.workdps(40):
            qm = mpmath.mpf(q.numerator) / q.denominator
            kappa = (1 - mpmath.mpf(K) * qm / (K - 1)) * mpmath.log((1 - qm) * (K - 1) / qm)
            return float(kappa) * (1.0 + 4 * _U)
    kappa = (1.0 - K * q / (K - 1)) * math.log((1.0 - q) * (K - 1) / q)
    return kappa * (1.0 + 16 * _U)


def kl_radius(log_p_wrong: np.ndarray, q: float, K: int, n: int) -> np.ndarray:
    """KL radius: the largest integer r ≥ 0 with r·κ < −½ log(4p(1−p)), p = 1 − e^ℓ.

    The inequality is strict (equality allows ρ-mass exactly 1/2, a tie).  Returns int64, −1
    where ℓ ≥ log(1/2), n where ℓ = −∞, never above n.
    """
    ell = np.asarray(log_p_wrong, dtype=np.float64)
    out = np.full(ell.shape, -1, dtype=np.int64)
    out[np.isneginf(ell)] = n
    fin = np.isfinite(ell) & (ell < -math.log(2.0))
    if np.any(fin):
        e = ell[fin]
        # −½ log(4 p (1−p)) with log(1−p) = ℓ and log p = log1p(−e^ℓ); rounded down.
        rhs = -0.5 * (math.log(4.0) + e + np.log1p(-np.exp(e)))
        rhs = rhs - 16 * _U * (np.abs(e) + 2.0)
        x = rhs / kl_kappa(q, K) * (1.0 - 8 * _U)
        r = np.where(x > 0, np.ceil(x) - 1, -1)
        out[fin] = np.minimum(r, n).astype(np.int64)
    return out
