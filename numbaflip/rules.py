"""The decision rules in exact arithmetic, one definition each (math.md §2, §3, §5).

Every other place that needs a rule calls these: the float64 kernels decide the same rules with
a rigorous error bound and hand the few points they cannot decide to :func:`binary_decision` /
:func:`multiclass_decision`; the exact certificate (:mod:`numbaflip.exact`) and the attacks
(:mod:`numbaflip.attack`) take their flips from :func:`greedy_moves`.

* Binary (labels 0/1): the smoothed classifier predicts 1 iff E[αᵀY] ≥ 1/2 with
  E[αᵀY] = (1 − 2q)·αᵀy + q·Σα (q = 0: the plain rule αᵀy ≥ 1/2); :func:`binary_margin`.
* K classes: argmax of the class sums s_c = Σ_{y_i = c} α_i, lowest index on ties
  (:func:`multiclass_decision`).
* Greedy gain per training point against a rival r of the prediction c (math.md §5): a point of
  class c with α > 0 or of class r with α < 0 closes the gap s_c − s_r by 2|α| when relabelled
  (to r, resp. c); a point of any other class by |α|.  Binary is the pair (c, 1 − c).

Exactness: every finite double is an integer multiple of 2⁻¹⁰⁷⁴, so sums of α are computed
exactly as integers scaled by 2¹⁰⁷⁴ (:func:`scaled_ints`); q is the exact rational of its
decimal string.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from ._kernels.common import DEGEN_INTERIOR, DEGEN_LIMIT, DEGEN_UNBOUNDED, DEGEN_ZERO

__all__ = ["scaled_ints", "exact_sum", "binary_margin", "binary_decision",
           "multiclass_decision", "greedy_moves"]

#: Every finite double is an integer multiple of 2**-DYADIC_SCALE.
DYADIC_SCALE = 1074


def scaled_ints(values) -> list:
    """The float64 ``values`` as exact integers, each scaled by 2**DYADIC_SCALE."""
    out = []
    for v in values:
        num, den = float(v).as_integer_ratio()
        out.append(num << (DYADIC_SCALE - (den.bit_length() - 1)))
    return out


def exact_sum(values) -> Fraction:
    """Exact sum of float64 values, as a Fraction."""
    return Fraction(sum(scaled_ints(values)), 1 << DYADIC_SCALE)


def binary_margin(q: Fraction):
    """The binary rule as an integer function Z(s, tot) of the scaled sums s = αᵀy and
    tot = Σα (:func:`scaled_ints`): sign Z = sign(E[αᵀY] − 1/2), so the prediction is
    ``1 if Z >= 0 else 0``."""
    a, b = q.numerator, q.denominator
    half = b << (DYADIC_SCALE - 1)
    return lambda s, tot: (b - 2 * a) * s + a * tot - half


def binary_decision(a: np.ndarray, y: np.ndarray, q: Fraction) -> tuple[int, int]:
    """(side, degen) for one test point of the binary formulation, decided exactly:
    side +1 (prediction 1, E[αᵀY] > 1/2), 0 (E[αᵀY] = 1/2: t* = 0) or −1 (prediction 0), and
    for side −1 whether Σ_{α>0} α is below, at or above 1/2 (math.md §2 degenerate cases)."""
    ai = scaled_ints(a.tolist())
    tot = sum(ai)
    s = sum(v for v, lab in zip(ai, y.tolist()) if lab == 1)
    z = binary_margin(q)(s, tot)
    if z > 0:
        return 1, DEGEN_INTERIOR
    if z == 0:
        return 0, DEGEN_ZERO
    spos = sum(v for v in ai if v > 0)
    half = 1 << (DYADIC_SCALE - 1)
    if spos < half:
        return -1, DEGEN_UNBOUNDED
    if spos == half:
        return -1, DEGEN_LIMIT
    return -1, DEGEN_INTERIOR


def multiclass_decision(a: np.ndarray, y: np.ndarray, K: int) -> tuple[int, np.ndarray]:
    """(pred, tied) decided exactly: argmax of class sums (lowest index on ties) and the rivals
    whose sum equals the maximum."""
    sums = [0] * K
    for v, lab in zip(scaled_ints(a.tolist()), y.tolist()):
        sums[lab] += v
    best = max(sums)
    pred = sums.index(best)
    tied = np.array([k != pred and sums[k] == best for k in range(K)], dtype=np.bool_)
    return pred, tied


def greedy_moves(a: np.ndarray, y: np.ndarray, c: int, rival: int):
    """(gain, new_label) per training point: how much relabelling the point closes the gap
    s_c − s_rival, and the label that does it (gain 0: no relabelling helps; new_label is then
    the old one).  Binary labels: ``rival = 1 − c``, and the new label is the flipped one."""
    gain = np.zeros(a.shape[0])
    new = y.copy()
    own = (y == c) & (a > 0)
    gain[own] = 2 * a[own]
    new[own] = rival
    riv = (y == rival) & (a < 0)
    gain[riv] = -2 * a[riv]
    new[riv] = c
    other = (y != c) & (y != rival)
    up = other & (a > 0)
    gain[up] = a[up]
    new[up] = rival
    down = other & (a < 0)
    gain[down] = -a[down]
    new[down] = c
    return gain, new
