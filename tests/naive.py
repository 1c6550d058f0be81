"""Slow, obviously-correct references for numbaflip's kernels (style.md: stumpy's naive.py).

- brute force over every label vector of tiny problems: the exact smoothed probability and the
  true radius of the smoothed classifier;
- the Chernoff objectives minimised with scipy.optimize in plain NumPy, and evaluated with
  their derivatives in 60-digit mpmath;
- exact rational comparisons for the decisions;
- the greedy starting points by sorting.
"""
from __future__ import annotations

import itertools
import math
from fractions import Fraction

import mpmath
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


# --------------------------------------------------------------------------------------------
# Twins of the Chernoff kernels (numbaflip/_kernels/binary.py and pairwise.py): exact
# rationals for the decisions, mpmath (60 digits) for the objectives, scipy for the minima.
# Degenerate-case codes as in numbaflip/_kernels/common.py.
# --------------------------------------------------------------------------------------------
DEGEN_INTERIOR, DEGEN_ZERO, DEGEN_UNBOUNDED, DEGEN_LIMIT = 0, 1, 2, 3


def binary_decide_naive(alpha, y, q):
    """(side, degen) of one test point in exact rationals: side = sign(E[αᵀY] − 1/2) (+1:
    prediction 1, −1: prediction 0, 0: exactly 1/2); for prediction 0 the infimum over t < 0 is
    −inf if Σ_{α>0} α < 1/2, reached only in the limit if it is exactly 1/2."""
    fa = [Fraction(float(a)) for a in alpha]
    fq = Fraction(float(q))
    s = sum((fa[i] for i in range(len(fa)) if y[i] == 1), Fraction(0))
    d = (1 - 2 * fq) * s + fq * sum(fa, Fraction(0)) - Fraction(1, 2)
    if d == 0:
        return 0, DEGEN_ZERO
    if d > 0:
        return 1, DEGEN_INTERIOR
    spos = sum((a for a in fa if a > 0), Fraction(0))
    if spos < Fraction(1, 2):
        return -1, DEGEN_UNBOUNDED
    if spos == Fraction(1, 2):
        return -1, DEGEN_LIMIT
    return -1, DEGEN_INTERIOR


def greedy_start_naive(gains, drift, L):
    """L / (1.5·2^(e−1)), 2^(e−1) ≤ b_(k) < 2^e, b_(k) the k-th largest positive gain with
    b_(1) + … + b_(k) ≥ drift (sorted, cumulative sum); −1 if the gains never reach drift."""
    b = np.sort(np.asarray([g for g in gains if g > 0.0], float))[::-1]
    cum = np.cumsum(b)
    hit = np.flatnonzero(cum >= drift)
    if len(hit) == 0:
        return -1.0
    _, e = np.frexp(b[hit[0]])
    return L / np.ldexp(1.5, int(e) - 1)


def binary_gains_naive(alpha, y, side):
    """β_i = side·α_i·(2y_i − 1): how much flipping label i moves αᵀy towards 1/2."""
    return [side * float(a) * (2 * int(t) - 1) for a, t in zip(alpha, y)]


def pair_gains_naive(alpha, y, c, r):
    """How much moving label j lowers s_c − s_r at most: 2α_j from class c (α_j > 0), 2|α_j|
    from class r (α_j < 0), |α_j| from any other class."""
    out = []
    for a, lab in zip(alpha, y):
        a = float(a)
        out.append(max(2 * a, 0.0) if lab == c else max(-2 * a, 0.0) if lab == r else abs(a))
    return out


def binary_guess_naive(alpha, y, q, want_guess, small_q=0.05):
    """Newton start of the binary decide kernel: |E − 1/2| / Var, replaced by the greedy
    start when q < small_q and that is smaller (both in plain float64)."""
    a = np.asarray(alpha, float)
    y = np.asarray(y)
    d = (1 - 2 * q) * math.fsum(a[y == 1]) + q * math.fsum(a) - 0.5
    var = q * (1 - q) * math.fsum(a * a)
    g = abs(d) / var if var > 0 and d != 0 else 1.0
    side = 1 if d > 0 else -1
    if want_guess and q < small_q:
        g2 = greedy_start_naive(binary_gains_naive(a, y, side), abs(d),
                                math.log1p(-q) - math.log(q))
        if 0 < g2 < g:
            g = g2
    return g


def binary_eval_mp(alpha, y, t, q):
    """(f, f', f'') of eq. (6) at t in 60-digit arithmetic, as mpf: f(t) = t/2 + Σ_i log
    E[e^{−tα_i Y_i}], Y_i = y_i with probability 1 − q."""
    with mpmath.workdps(60):
        q = mpmath.mpf(float(q))
        t = mpmath.mpf(float(t))
        f, g, h = t / 2, mpmath.mpf(1) / 2, mpmath.mpf(0)
        for a, yi in zip(alpha, y):
            a = mpmath.mpf(float(a))
            p1 = 1 - q if yi == 1 else q          # P(Y_i = 1)
            e = mpmath.exp(-t * a)
            Z = (1 - p1) + p1 * e
            w = p1 * e / Z                        # tilted P(Y_i = 1)
            f += mpmath.log(Z)
            g -= a * w
            h += a * a * w * (1 - w)
        return +f, +g, +h


def binary_limit_mp(alpha, y, q):
    """log P(αᵀY = 1/2) when Σ_{α>0} α = 1/2: every positive-α label 1, every negative-α 0."""
    with mpmath.workdps(60):
        q = mpmath.mpf(float(q))
        s = mpmath.mpf(0)
        for a, yi in zip(alpha, y):
            if a != 0:
                want = 1 if a > 0 else 0
                s += mpmath.log(1 - q if yi == want else q)
        return +s


def binary_logB_naive(alpha, y, q):
    """The value the binary driver bounds from above: min of f over the prediction's half-line
    (−inf, the limit value or 0 in the degenerate cases)."""
    side, degen = binary_decide_naive(alpha, y, q)
    if degen == DEGEN_ZERO:
        return 0.0
    if degen == DEGEN_UNBOUNDED:
        return -np.inf
    if degen == DEGEN_LIMIT:
        return float(binary_limit_mp(alpha, y, q))
    return binary_logB_scipy(alpha, y, q, 1 if side > 0 else 0)


def _noise_log_probs(yj, Kn, q):
    """log P(Y = k), k < Kn, of the K-class noise around label yj (p₋ = q/(Kn − 1))."""
    lp = np.full(Kn, np.log(q / (Kn - 1)))
    lp[yj] = np.log1p(-q)
    return lp


def pair_objective(t, alpha, y, c, r, q, Kn):
    """f_cr(t) = Σ_j log E[exp(−tα_j d_j)], d_j = 1{Y_j = c} − 1{Y_j = r}, by enumerating the
    Kn possible labels of every point (plain NumPy)."""
    d = np.zeros(Kn)
    d[c], d[r] = 1.0, -1.0
    tot = 0.0
    for a, yj in zip(alpha, y):
        tot += np.logaddexp.reduce(_noise_log_probs(int(yj), Kn, q) - t * float(a) * d)
    return tot


def pair_eval_mp(alpha, y, c, r, t, q, Kn):
    """(f_cr, f_cr', f_cr'') at t in 60-digit arithmetic, as mpf (labels enumerated)."""
    with mpmath.workdps(60):
        q = mpmath.mpf(float(q))
        t = mpmath.mpf(float(t))
        pm = q / (Kn - 1)
        f = g = h = mpmath.mpf(0)
        for a, yj in zip(alpha, y):
            a = mpmath.mpf(float(a))
            w = []
            for k in range(Kn):
                d = 1 if k == c else -1 if k == r else 0
                w.append((((1 - q) if k == yj else pm) * mpmath.exp(-t * a * d), d))
            Z = sum(x for x, _ in w)
            m1 = sum(x * d for x, d in w) / Z               # tilted E[d]
            m2 = sum(x * d * d for x, d in w) / Z
            f += mpmath.log(Z)
            g -= a * m1
            h += a * a * (m2 - m1 * m1)
        return +f, +g, +h


def pair_logB_scipy(alpha, y, c, r, q, Kn):
    """min over t > 0 of f_cr (scipy on t = e^s; f_cr is convex, so unimodal in s), capped at
    0 (B ≤ 1)."""
    res = scipy.optimize.minimize_scalar(
        lambda s: pair_objective(np.exp(s), alpha, y, c, r, q, Kn),
        bounds=(-30.0, 12.0), method="bounded", options={"xatol": 1e-10})
    return min(res.fun, 0.0)


def mc_decide_naive(alpha, y, K):
    """(prediction, tied) from the exact class sums: the lowest index of the largest sum, and
    which other classes have exactly that sum."""
    fa = [Fraction(float(a)) for a in alpha]
    sums = [Fraction(0)] * K
    for a, lab in zip(fa, y):
        sums[lab] += a
    c = max(range(K), key=lambda k: (sums[k], -k))
    return c, np.array([k != c and sums[k] == sums[c] for k in range(K)])


def mc_logB_naive(alpha, y, K, Kn, q, logw, c, tied):
    """(union bound log Σ_{k≠c} w_k B_ck with every B_ck at its Chernoff minimum, the per-rival
    minima): the values the K-class driver bounds from above (B = 1 for tied rivals)."""
    vals = np.full(K, -np.inf)
    for k in range(K):
        if k != c:
            vals[k] = 0.0 if tied[k] else pair_logB_scipy(alpha, y, c, k, q, Kn)
    keep = np.arange(K) != c
    return float(np.logaddexp.reduce(vals[keep] + np.asarray(logw)[keep])), vals


def lse_mp(vals, logw, skip):
    """log Σ_{k≠skip} exp(vals[k] + logw[k]) in 60 digits."""
    with mpmath.workdps(60):
        terms = [mpmath.exp(mpmath.mpf(float(v)) + mpmath.mpf(float(w)))
                 for k, (v, w) in enumerate(zip(vals, logw)) if k != skip and v > -np.inf]
        return mpmath.log(sum(terms)) if terms else mpmath.mpf("-inf")
