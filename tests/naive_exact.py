"""Slow, obviously-correct references for the exact certificate and the attacks.

Everything here is exact: every double is converted with ``fractions.Fraction`` and brought to a
common denominator, so sums are Python integers and ties are decided exactly.  Brute force runs
over *all* label vectors (2^n binary, K^n for K classes), so keep n ≤ 10 (K = 3: n ≤ 8).
"""
from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np


def _as_ints(a):
    """Integers a_int and a common denominator D with a == a_int / D exactly."""
    fr = [Fraction(float(v)) for v in np.asarray(a).ravel()]
    D = 1
    for f in fr:
        D = max(D, f.denominator)  # all denominators are powers of two
    ints = [int(f * D) for f in fr]
    assert all(Fraction(i, D) == f for i, f in zip(ints, fr))
    return np.array(ints, dtype=object), D


def q_fraction(q):
    """The package's convention: a float q means the decimal of its repr."""
    if isinstance(q, Fraction):
        return q
    return Fraction(repr(float(q))) if not isinstance(q, str) else Fraction(q)


def binary_rule(a, y, q=0.0):
    """1{(1−2q) aᵀy + q Σa ≥ 1/2} exactly, for one row a and a label vector y (or a matrix of
    label vectors, one per row)."""
    qf = q_fraction(q)
    ai, D = _as_ints(a)
    Y = np.atleast_2d(np.asarray(y, dtype=np.int64)).astype(object)
    s = Y.dot(ai)
    tot = sum(ai)
    # (1−2q) s/D + q tot/D ≥ 1/2  ⇔  2 (b−2a') s + 2 a' tot ≥ b D   with q = a'/b
    num, den = qf.numerator, qf.denominator
    lhs = np.array([2 * (den - 2 * num) * v + 2 * num * tot for v in s], dtype=object)
    out = np.array([1 if v >= den * D else 0 for v in lhs], dtype=np.int64)
    return out if np.ndim(y) == 2 else int(out[0])


def multiclass_rule(a, y, K):
    """argmax of the class sums (lowest index on ties), exactly."""
    ai, _ = _as_ints(a)
    Y = np.atleast_2d(np.asarray(y, dtype=np.int64))
    out = np.empty(Y.shape[0], np.int64)
    for r in range(Y.shape[0]):
        sums = [0] * K
        for v, lab in zip(ai, Y[r]):
            sums[lab] += v
        out[r] = sums.index(max(sums))
    return out if np.ndim(y) == 2 else int(out[0])


def all_label_vectors(n, K):
    return np.array(list(itertools.product(range(K), repeat=n)), dtype=np.int64)


def brute_min_changes(a, y, *, q=0.0, num_classes=None):
    """(prediction, k): the rule's prediction on y and the true minimum number of label
    changes (Hamming distance) that alter it, over ALL label vectors; k = None if none does."""
    y = np.asarray(y, dtype=np.int64)
    n = y.shape[0]
    K = 2 if num_classes is None else num_classes
    Y = all_label_vectors(n, K)
    if num_classes is None:
        preds = binary_rule(a, Y, q)
        p0 = binary_rule(a, y, q)
    else:
        preds = multiclass_rule(a, Y, K)
        p0 = multiclass_rule(a, y, K)
    dist = (Y != y[None, :]).sum(axis=1)
    diff = preds != p0
    if not diff.any():
        return p0, None
    return p0, int(dist[diff].min())


def brute_radius(a, y, *, q=0.0, num_classes=None):
    """The exact radius by brute force: min changes − 1, or n when nothing alters it."""
    p0, k = brute_min_changes(a, y, q=q, num_classes=num_classes)
    n = len(y)
    return p0, (n if k is None else k - 1)


def rule(a, y, *, q=0.0, num_classes=None):
    if num_classes is None:
        return binary_rule(a, y, q)
    return multiclass_rule(a, y, num_classes)


# --------------------------------------------------------------------------------------------
# Twins of the kernels in numbaflip/_kernels/exact.py (exact Fractions, tiny inputs)
# --------------------------------------------------------------------------------------------

def fr(x):
    """The exact rational value of a double."""
    return Fraction(float(x))


def tau(a, q):
    """τ = (1/2 − q Σa) / (1 − 2q) exactly (twin of _tau_bounds)."""
    q = Fraction(q)
    tot = sum((fr(v) for v in a), Fraction(0))
    return (Fraction(1, 2) - q * tot) / (1 - 2 * q)


def binary_moves(a, y, pred):
    """Twin of _binary_moves: the score's part of Z exactly (pred 1: s = aᵀy, pred 0: −s; Z
    adds −τ or τ) and the helpful move sizes |a_i| (pred 1: y=1, a>0 or y=0, a<0; pred 0 the
    opposite signs)."""
    s = sum((fr(v) for v, lab in zip(a, y) if lab == 1), Fraction(0))
    moves = [abs(fr(v)) for v, lab in zip(a, y)
             if v != 0 and ((lab == 1) == (v > 0)) == (pred == 1)]
    return (s if pred == 1 else -s), moves


def mc_moves(a, y, c, K):
    """Twin of _mc_moves: exact class sums and the (size, tag) moves for prediction c
    (tag −1: every rival, t ≥ 0: rival t only, t ≤ −2: every rival but −(t+2))."""
    sums = [Fraction(0)] * K
    moves = []
    for v, lab in zip(a, y):
        f = fr(v)
        sums[lab] += f
        if lab == c:
            if f > 0:
                moves.append((2 * f, -1))
        else:
            if f != 0:
                moves.append((abs(f), -(2 + lab)))
            if f < 0:
                moves.append((2 * abs(f), lab))
    return sums, moves


def min_changes(a, y, pred, *, q=0, num_classes=None):
    """Twin of the exact drivers: the fewest label changes after which the rule no longer
    predicts ``pred`` (0 when ``pred`` is not the rule's prediction, None when no set of
    changes does), by the greedy argument in exact arithmetic: per rival, apply the best
    change of each point in decreasing order of gap reduction and recompute the rule."""
    y = [int(v) for v in y]
    if rule(a, y, q=q, num_classes=num_classes) != pred:
        return 0
    K = 2 if num_classes is None else num_classes
    best = None
    for cp in range(K):
        if cp == pred:
            continue
        red = []  # (reduction of the gap s_pred − s_cp, index, new label)
        for j, (v, lab) in enumerate(zip(a, y)):
            f = fr(v)
            if lab == pred and f > 0:
                red.append((2 * f if num_classes else f, j, cp))
            elif lab == cp and f < 0:
                red.append((2 * -f if num_classes else -f, j, pred))
            elif lab not in (pred, cp) and f != 0:
                red.append((abs(f), j, cp if f > 0 else pred))
        red.sort(key=lambda t: -t[0])
        yy = list(y)
        for k, (_, j, lab) in enumerate(red, start=1):
            yy[j] = lab
            if rule(a, yy, q=q, num_classes=num_classes) != pred:
                best = k if best is None else min(best, k)
                break
    return best


def walk(keys, tag, order, cp, S0, strict, limit):
    """Twin of _walk with exact S0 (no error terms): the first k at which Z = S0 − (the first
    k applicable keys in ``order``) crosses (Z < 0 strict, Z ≤ 0 otherwise); None if it
    never does or only at k ≥ limit."""
    Z = Fraction(S0)

    def crossed(z):
        return z < 0 if strict else z <= 0

    if crossed(Z):
        return 0
    k = 0
    for e in order:
        t = int(tag[e])
        if not (t == -1 or t == cp or (t <= -2 and -(t + 2) != cp)):
            continue
        k += 1
        if k >= limit:
            return None
        Z -= fr(keys[e])
        if crossed(Z):
            return k
    return None


def bucket(x, top_x, mb=3, nb=256):
    """Twin of _bucket/_top_bits: how many 2^-mb-binade steps x lies below top_x, from the
    floor of the exponent and the leading mb mantissa bits (capped at nb − 1)."""
    import struct

    def key(v):
        return struct.unpack("<q", struct.pack("<d", float(v)))[0] >> (52 - mb)

    return min(key(top_x) - key(x), nb - 1)
