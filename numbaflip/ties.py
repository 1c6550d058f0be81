"""Exact decisions for the few test points where float64 sums cannot decide a sign or a tie.

The prediction and the degenerate cases of math.md §2–§3 depend on exact comparisons
(E[αᵀY] against 1/2, Σ_{α>0} α against 1/2, class sums against each other).  The kernels decide
them with a rigorous error bound and flag the rest; here the flagged ones are decided in exact
arithmetic.  Every double is a dyadic rational, so sums of alpha are computed exactly as integers
scaled by 2^1074; q is the exact rational of its decimal string.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from ._kernels.common import DEGEN_INTERIOR, DEGEN_LIMIT, DEGEN_UNBOUNDED, DEGEN_ZERO

_SCALE = 1074  # every finite double is an integer multiple of 2^-1074


def _scaled(x: float) -> int:
    num, den = float(x).as_integer_ratio()
    return num << (_SCALE - (den.bit_length() - 1))


def exact_sum(values) -> Fraction:
    """Exact sum of float64 values, as a Fraction."""
    return Fraction(sum(_scaled(v) for v in values), 1 << _SCALE)


def binary_decision(a: np.ndarray, y: np.ndarray, q: Fraction) -> tuple[int, int]:
    """(side, degen) for one test point of the binary formulation, decided exactly."""
    s = exact_sum(a[y == 1].tolist())
    tot = exact_sum(a.tolist())
    d = (1 - 2 * q) * s + q * tot - Fraction(1, 2)
    if d > 0:
        return 1, DEGEN_INTERIOR
    if d == 0:
        return 0, DEGEN_ZERO
    spos = exact_sum(a[a > 0].tolist())
    if spos < Fraction(1, 2):
        return -1, DEGEN_UNBOUNDED
    if spos == Fraction(1, 2):
        return -1, DEGEN_LIMIT
    return -1, DEGEN_INTERIOR


def multiclass_decision(a: np.ndarray, y: np.ndarray, K: int) -> tuple[int, np.ndarray]:
    """(pred, tied) decided exactly: argmax of class sums (lowest index on ties) and the rivals
    whose sum equals the maximum."""
    sums = [sum(_scaled(v) for v in a[y == k].tolist()) for k in range(K)]
    best = max(sums)
    pred = sums.index(best)
    tied = np.array([k != pred and sums[k] == best for k in range(K)], dtype=np.bool_)
    return pred, tied
