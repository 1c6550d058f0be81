"""The bucketed selection of the exact certificate (numbaflip/_kernels/exact.py, math.md §5):
the a priori error bound against Fractions, and the fast rows (_binary_row_fast,
_mc_row_fast) against exact arithmetic (tests/naive_exact.py, the exact-rational rows of
numbaflip/exact.py) and against the sorted TwoSum walk they replace (_binary_row, _mc_row,
kept as their fallback and as the slow reference here).  A fast row that says "resolved" must
give exactly k (and, for K classes, the same rival as the sorted walk); rows it does not
resolve are allowed, but the fast path must settle most non-dyadic rows (else it is not used).
Inputs: ties, equal |α|, zeros, subnormals, huge |α|, sparse rows (2-D labels)."""
import math
import os
from fractions import Fraction

import numpy as np
import pytest
from numba import njit

from numbaflip._kernels import exact as E
from numbaflip.exact import _exact_binary_row, _exact_k, _exact_mc_row

import naive_exact as NE
from naive_exact import fr

NOCROSS = int(E.NOCROSS)
FULL = os.environ.get("NUMBAFLIP_FULL_TESTS") == "1"


# --------------------------------------------------------------------------------------------
# Slow references: the sorted TwoSum walk on every row (today's kernels before the selection)
# --------------------------------------------------------------------------------------------

@njit
def _sorted_binary(A, Y, pred, q_lo, q_hi):
    b, n = A.shape
    keys, tag, perm, sk, hs, hc, stack, buf = E._binary_scratch(n)
    out = np.empty((b, 2), np.int64)
    for r in range(b):
        klo, khi, _ = E._binary_row(A[r], Y[r % Y.shape[0]], pred[r], q_lo, q_hi, keys, tag,
                                    perm, sk, hs, stack, buf)
        out[r, 0], out[r, 1] = klo, khi
    return out


@njit
def _fast_binary(A, Y, pred, q_lo, q_hi):
    b, n = A.shape
    keys, tag, perm, sk, hs, hc, stack, buf = E._binary_scratch(n)
    out = np.empty((b, 3), np.int64)
    for r in range(b):
        klo, khi, ok, _ = E._binary_row_fast(A[r], Y[r % Y.shape[0]], pred[r], q_lo, q_hi,
                                             keys, perm, sk, hs, hc, stack, buf)
        out[r, 0], out[r, 1], out[r, 2] = klo, khi, ok
    return out


@njit
def _sorted_mc(A, Y, pred, K):
    b, n = A.shape
    s = E._mc_scratch(n, K)
    out = np.empty((b, 3), np.int64)
    for r in range(b):
        klo, khi, rv, _ = E._mc_row(A[r], Y[r % Y.shape[0]], pred[r], K, s[0], s[1], s[2], s[3],
                                    s[4], s[5], s[6], s[7], s[8], s[9], s[10], s[11], s[12],
                                    s[13], s[14], s[15])
        out[r, 0], out[r, 1], out[r, 2] = klo, khi, rv
    return out


@njit
def _fast_mc(A, Y, pred, K):
    b, n = A.shape
    s = E._mc_scratch(n, K)
    out = np.empty((b, 4), np.int64)
    for r in range(b):
        klo, khi, rv, ok, _ = E._mc_row_fast(A[r], Y[r % Y.shape[0]], pred[r], K, s[0], s[1],
                                             s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9],
                                             s[10], s[11], s[12], s[13], s[14], s[15], s[16],
                                             s[17], s[18], s[19], s[20])
        out[r, 0], out[r, 1], out[r, 2], out[r, 3] = klo, khi, rv, ok
    return out


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

KINDS = ("normal", "heavy", "ties", "dyadic", "zeros", "subnormal", "huge", "equal")


def _alpha(rng, kind, b, n):
    """b rows of α of one kind; a per-row offset moves the margins (and k) around."""
    shift = rng.choice([0.0, 0.5, 2.0], size=(b, 1)) / n
    if kind == "normal":
        A = rng.normal(size=(b, n)) / n + shift
    elif kind == "heavy":                  # many binades: the tail bucket is used
        A = rng.standard_cauchy(size=(b, n)) * np.exp(rng.normal(size=(b, n)) * 8) / n
    elif kind == "ties":                   # a few distinct magnitudes: big equal buckets
        A = rng.choice([-3.0, -1.0, 1.0, 2.0, 0.1, -0.1], size=(b, n)) / n + shift
    elif kind == "dyadic":                 # every operation exact: exact ties in the kernel
        A = rng.integers(-4, 5, size=(b, n)) / 8.0 + np.round(shift * n) / 4.0
    elif kind == "zeros":
        A = rng.normal(size=(b, n)) / n + shift
        A[rng.random((b, n)) < 0.6] = 0.0
    elif kind == "subnormal":
        A = (rng.normal(size=(b, n)) / n + shift) * 2.0 ** -1060
    elif kind == "huge":
        A = (rng.normal(size=(b, n)) / n + shift) * 2.0 ** 900
    else:                                  # equal |α| everywhere, random signs
        A = rng.choice([-1.0, 1.0], size=(b, n)) * (1.0 + 2.0 ** -40)
    return np.ascontiguousarray(A)


def _pred_binary(A, y, q):
    return np.array([NE.binary_rule(a, y, q) if r % 5 else 1 - NE.binary_rule(a, y, q)
                     for r, a in enumerate(A)], np.int64)


def _pred_mc(A, y, K, rng):
    return np.array([NE.multiclass_rule(a, y, K) if r % 5 else int(rng.integers(K))
                     for r, a in enumerate(A)], np.int64)


def _q_bounds(qf):
    x = float(qf)
    if Fraction(x) == qf:
        return x, x
    return (x, math.nextafter(x, 1.0)) if Fraction(x) < qf else (math.nextafter(x, 0.0), x)


# --------------------------------------------------------------------------------------------
# The a priori bound
# --------------------------------------------------------------------------------------------

@njit
def _float_sums(x):
    s = 0.0
    sa = 0.0
    for v in x:
        s += v
        sa += abs(v)
    return s, sa


@pytest.mark.parametrize("kind", ["normal", "positive", "cancel", "subnormal", "huge", "mixed"])
def test_sum_err_bounds_the_float_sum(kind):
    rng = np.random.default_rng(11)
    for trial in range(40):
        c = int(rng.integers(1, 400))
        x = rng.normal(size=c)
        if kind == "positive":
            x = np.abs(x) * np.exp(rng.normal(size=c) * 5)
        elif kind == "cancel":
            x = np.concatenate([x, -x[::-1] * (1 + 2.0 ** -30)])
        elif kind == "subnormal":
            x = x * 2.0 ** -1070
        elif kind == "huge":
            x = x * 2.0 ** 950
        elif kind == "mixed":
            x = x * np.exp2(rng.integers(-1074, 900, size=c).clip(-1070, 900))
        s, sa = _float_sums(x)
        exact = sum((fr(v) for v in x), Fraction(0))
        assert abs(fr(s) - exact) <= fr(E._sum_err(x.size, sa)), (kind, trial)
    assert E._sum_err(1, 5.0) == 0.0 and E._sum_err(0, 5.0) == 0.0


# --------------------------------------------------------------------------------------------
# Binary rows
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("q", ["0", "0.3", "1/3", "0.05"])
@pytest.mark.parametrize("kind", KINDS)
def test_binary_fast_rows_exact_where_resolved(kind, q):
    rng = np.random.default_rng(abs(hash((kind, q))) % 2 ** 32)
    qf = Fraction(q)
    q_lo, q_hi = _q_bounds(qf)
    for n in (1, 7, 60, 400):
        A = _alpha(rng, kind, 10, n)
        y = rng.integers(0, 2, size=n).astype(np.int64)
        pred = _pred_binary(A, y, qf)
        fast = _fast_binary(A, y[None, :], pred, q_lo, q_hi)
        slow = _sorted_binary(A, y[None, :], pred, q_lo, q_hi)
        for r in range(A.shape[0]):
            k_true, _ = _exact_binary_row(A[r], y, int(pred[r]), qf)
            assert slow[r, 0] <= k_true <= slow[r, 1]
            if fast[r, 2]:
                assert fast[r, 0] == fast[r, 1] == k_true, (kind, q, n, r)
            if n <= 7 and kind != "huge":
                k = NE.min_changes(A[r], y, int(pred[r]), q=qf)
                assert k_true == (NOCROSS if k is None else k)


def test_binary_fast_path_settles_ordinary_rows():
    """Without exact ties the a priori bounds almost never matter: the fast path must settle
    nearly every row (otherwise the selection would be dead code behind its fallback)."""
    rng = np.random.default_rng(12)
    n = 3000
    A = _alpha(rng, "normal", 60, n)
    y = rng.integers(0, 2, size=n).astype(np.int64)
    pred = _pred_binary(A, y, Fraction(3, 10))
    fast = _fast_binary(A, y[None, :], pred, 0.3, 0.3)
    slow = _sorted_binary(A, y[None, :], pred, 0.3, 0.3)
    ok = fast[:, 2].astype(bool)
    assert ok.mean() >= 0.9
    assert np.array_equal(fast[ok, 1], slow[ok, 1]) and np.all(slow[ok, 0] == slow[ok, 1])


@pytest.mark.parametrize("kind", KINDS)
def test_binary_driver_equals_sorted_walk_and_exact(kind):
    """The driver (fast path + fallbacks) through _exact_k: k identical to the sorted walk's
    exact k and to the exact-rational rows, dense and sparse (one label row per test row)."""
    rng = np.random.default_rng(13 + KINDS.index(kind))
    n = 1500 if FULL else 500
    A = _alpha(rng, kind, 24, n)
    y = rng.integers(0, 2, size=n).astype(np.int64)
    qf = Fraction(3, 10)
    pred = _pred_binary(A, y, qf)
    k, _, _ = _exact_k(A, y, pred, qf, None)
    slow = _sorted_binary(A, y[None, :], pred, 0.3, 0.3)
    for r in range(A.shape[0]):
        if slow[r, 0] == slow[r, 1]:
            assert k[r] == slow[r, 1]
        if r % 4 == 0 or slow[r, 0] != slow[r, 1]:
            assert k[r] == _exact_binary_row(A[r], y, int(pred[r]), qf)[0]
    # sparse rows: keep 100 random nonzero columns per row with their own labels
    idx = np.sort(np.stack([rng.choice(n, 100, replace=False) for _ in range(A.shape[0])]), 1)
    W = np.ascontiguousarray(np.take_along_axis(A, idx, 1))
    W[W == 0.0] = 1.0 / n
    Y = np.ascontiguousarray(y[idx])
    ps = np.array([NE.binary_rule(W[r], Y[r], qf) for r in range(W.shape[0])], np.int64)
    ks, _, _ = _exact_k(W, Y, ps, qf, None)
    for r in range(W.shape[0]):
        assert ks[r] == _exact_binary_row(W[r], Y[r], int(ps[r]), qf)[0]


# --------------------------------------------------------------------------------------------
# K-class rows
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("K", [3, 5, 10])
@pytest.mark.parametrize("kind", KINDS)
def test_mc_fast_rows_exact_where_resolved(kind, K):
    rng = np.random.default_rng(100 * K + KINDS.index(kind))
    for n in (1, 6, 50, 300):
        A = _alpha(rng, kind, 8, n)
        skew = np.array([0.6] + [0.4 / (K - 1)] * (K - 1))
        y = rng.choice(K, size=n, p=skew).astype(np.int64)
        pred = _pred_mc(A, y, K, rng)
        fast = _fast_mc(A, y[None, :], pred, K)
        slow = _sorted_mc(A, y[None, :], pred, K)
        for r in range(A.shape[0]):
            k_true, _ = _exact_mc_row(A[r], y, int(pred[r]), K)
            assert slow[r, 0] <= k_true <= slow[r, 1]
            if fast[r, 3]:
                assert fast[r, 0] == fast[r, 1] == k_true, (kind, K, n, r)
                if slow[r, 0] == slow[r, 1]:
                    assert fast[r, 2] == slow[r, 2]     # the same (first) minimal rival
            if n <= 6 and K == 3 and kind != "huge":
                k = NE.min_changes(A[r], y, int(pred[r]), num_classes=K)
                assert k_true == (NOCROSS if k is None else k)


def test_mc_fast_path_settles_ordinary_rows():
    rng = np.random.default_rng(14)
    n, K = 3000, 10
    A = _alpha(rng, "normal", 40, n)
    y = rng.integers(0, K, size=n).astype(np.int64)
    pred = _pred_mc(A, y, K, rng)
    pred[:] = [NE.multiclass_rule(a, y, K) for a in A]
    fast = _fast_mc(A, y[None, :], pred, K)
    slow = _sorted_mc(A, y[None, :], pred, K)
    ok = fast[:, 3].astype(bool)
    assert ok.mean() >= 0.9
    assert np.array_equal(fast[ok, 1], slow[ok, 1])
    assert np.array_equal(fast[ok, 2], slow[ok, 2])


@pytest.mark.parametrize("kind", ["normal", "ties", "zeros", "heavy", "dyadic"])
def test_mc_driver_equals_exact_dense_and_sparse(kind):
    rng = np.random.default_rng(15 + KINDS.index(kind))
    n, K = (1200 if FULL else 400), 4
    A = _alpha(rng, kind, 16, n)
    y = rng.integers(0, K, size=n).astype(np.int64)
    pred = np.array([NE.multiclass_rule(a, y, K) for a in A], np.int64)
    k, rival, _ = _exact_k(A, y, pred, Fraction(1, 10), K)
    for r in range(A.shape[0]):
        kt, _ = _exact_mc_row(A[r], y, int(pred[r]), K)
        assert k[r] == kt
    idx = np.sort(np.stack([rng.choice(n, 80, replace=False) for _ in range(A.shape[0])]), 1)
    W = np.ascontiguousarray(np.take_along_axis(A, idx, 1))
    W[W == 0.0] = 1.0 / n
    Y = np.ascontiguousarray(y[idx])
    ps = np.array([NE.multiclass_rule(W[r], Y[r], K) for r in range(W.shape[0])], np.int64)
    ks, _, _ = _exact_k(W, Y, ps, Fraction(1, 10), K)
    for r in range(W.shape[0]):
        assert ks[r] == _exact_mc_row(W[r], Y[r], int(ps[r]), K)[0]


# --------------------------------------------------------------------------------------------
# The exact-only path: prediction and certificate from one pass
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("q", ["0", "0.3", "1/3", "0.25"])
@pytest.mark.parametrize("kind", KINDS)
def test_exact_predict_k_equals_predict_then_k(kind, q):
    from numbaflip.exact import _exact_predict_k, exact_predict
    rng = np.random.default_rng(16 + KINDS.index(kind))
    qf = Fraction(q)
    for n in (1, 9, 300):
        A = _alpha(rng, kind, 12, n)
        if kind == "dyadic":        # exact ties s = τ in some rows: the unsure path
            A[:3] = 0.0
            A[:3, 0] = 0.5 if q == "0" else A[:3, 0]
        y = rng.integers(0, 2, size=n).astype(np.int64)
        pred, k, _ = _exact_predict_k(A, y, qf)
        want = exact_predict(A, y, q=qf)
        assert np.array_equal(pred, want), (kind, q, n)
        kk, _, _ = _exact_k(A, y, want, qf, None)
        assert np.array_equal(k, kk)
        for r in range(0, A.shape[0], 3):
            assert k[r] == _exact_binary_row(A[r], y, int(pred[r]), qf)[0]


def test_certify_exact_only_matches_full_call():
    """certify_alpha(bounds=("exact",)) (decide fused into the exact kernel) gives the same
    predictions and exact radii as a call with kl (decide kernel, then the exact kernel), and
    records its phases and exact-rational rows in res.info."""
    from numbaflip import certify_alpha
    from numbaflip.certify import PHASES
    rng = np.random.default_rng(17)
    for kind in ("normal", "dyadic", "ties", "zeros"):
        A = _alpha(rng, kind, 40, 200)
        y = rng.integers(0, 2, size=200).astype(np.int64)
        for q in ("0.3", "0.125"):
            a = certify_alpha(A, y, q=q, bounds=("exact",), progress=False)
            b = certify_alpha(A, y, q=q, bounds=("kl", "exact"), progress=False)
            assert np.array_equal(a.prediction, b.prediction), (kind, q)
            assert np.array_equal(a.radius["exact"], b.radius["exact"]), (kind, q)
            assert set(a.info["seconds"]) == set(PHASES) and a.info["seconds"]["exact"] > 0
            assert a.info["histogram"]["exact_rational"] >= 0
