"""Slow, obviously-correct references for numbaflip's kernels (style.md: stumpy's naive.py).

- brute force over every label vector of tiny problems: the exact smoothed probability and the
  true radius of the smoothed classifier;
- the Chernoff objectives minimised with scipy.optimize in plain NumPy;
- exact rational comparisons for the decisions.
"""
from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import scipy.optimize


def exact_scores(alpha, V):
    """Exact αᵀv for every row v of V (Fractions of the doubles in alpha)."""
    fa = [Fraction(float(a)) for a in alpha]
    return [sum((fa[i] for i in range(len(fa)) if v[i] == 1), Fraction(0)) for v in V]


def all_labelings(n, K):
    return np.array(list(itertools.product(range(K), repeat=n)), dtype=np.int64)


def transition_matrix(V, q, K):
    """P[a, b] = probability that noise turns labels V[a] into V[b] (math.md §3 noise)."""
    diff = (V[:, None, :] != V[None, :, :]).sum(axis=2)
    n = V.shape[1]
    stay = 1.0 - q
    move = q / (K - 1)
    return stay ** (n - diff) * move ** diff


def base_rule_binary(alpha, V):
    """1{αᵀv ≥ 1/2} evaluated exactly."""
    half = Fraction(1, 2)
    return np.array([1 if s >= half else 0 for s in exact_scores(alpha, V)], dtype=np.int64)


def strict_win_multiclass(alpha, V, K, c):
    """1{s_c(v) > s_c′(v) for every c′ ≠ c}, class sums evaluated exactly."""
    fa = [Fraction(float(a)) for a in alpha]
    out = np.zeros(len(V), dtype=np.int64)
    for idx, v in enumerate(V):
        sums = [Fraction(0)] * K
        for i, lab in enumerate(v):
            sums[lab] += fa[i]
        out[idx] = all(sums[c] > sums[k] for k in range(K) if k != c)
    return out


def brute_force_binary(alpha, y, q, pred):
    """(exact P(base rule ≠ pred) under noise around y, true radius of the smoothed classifier
    keeping ``pred`` with probability > 1/2).  Radius −1 if not even y itself."""
    n = len(y)
    V = all_labelings(n, 2)
    good = (base_rule_binary(alpha, V) == pred).astype(float)
    P = transition_matrix(V, q, 2)
    p = P @ good                       # p[a]: smoothed prob of pred around labels V[a]
    idx_y = int(np.flatnonzero((V == np.asarray(y)).all(axis=1))[0])
    dist = (V != np.asarray(y)).sum(axis=1)
    bad = p <= 0.5 + 1e-12             # conservative: near-ties count as not kept
    radius = n if not bad.any() else int(dist[bad].min()) - 1
    return 1.0 - p[idx_y], radius


def brute_force_multiclass(alpha, y, q, K, pred):
    """Same for K classes with the strict-win event (ties count against ``pred``)."""
    n = len(y)
    V = all_labelings(n, K)
    good = strict_win_multiclass(alpha, V, K, pred).astype(float)
    P = transition_matrix(V, q, K)
    p = P @ good
    idx_y = int(np.flatnonzero((V == np.asarray(y)).all(axis=1))[0])
    dist = (V != np.asarray(y)).sum(axis=1)
    bad = p <= 0.5 + 1e-12
    radius = n if not bad.any() else int(dist[bad].min()) - 1
    return 1.0 - p[idx_y], radius


def binary_objective(t, alpha, y, q):
    """f(t) of eq. (6) in plain NumPy (math.md §2)."""
    a = np.asarray(alpha, float)
    y = np.asarray(y)
    l1 = np.logaddexp(np.log(q), np.log1p(-q) - t * a)
    l0 = np.logaddexp(np.log1p(-q), np.log(q) - t * a)
    return t / 2 + np.sum(np.where(y == 1, l1, l0))


def binary_logB_scipy(alpha, y, q, pred):
    """min of f over the prediction's half-line with scipy (bounded search)."""
    sign = 1.0 if pred == 1 else -1.0
    res = scipy.optimize.minimize_scalar(lambda u: binary_objective(sign * u, alpha, y, q),
                                         bounds=(0.0, 1e4), method="bounded",
                                         options={"xatol": 1e-12})
    return min(res.fun, 0.0)
