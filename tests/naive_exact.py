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
