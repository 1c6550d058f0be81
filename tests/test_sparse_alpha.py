"""Sparse α end to end (issue 13 item 2): kNN is certified from (indices, weights) per row,
O(k) per test point.  The compact path must agree with the dense path (certify_alpha on the
same α) in predictions, radii (kl, tight, exact), statuses and log_p_wrong, stay below brute
force, give the exact radius of an enumeration, and never build the dense block."""
from __future__ import annotations

import numpy as np
import pytest

import numbaflip as nf
from numbaflip.config import config
from numbaflip.learners import KNN, _FittedKNN
from naive import brute_force_binary, brute_force_multiclass
from naive_exact import brute_radius

BOUNDS = ("kl", "tight", "exact")


def _data(seed, n, m, d, labels, ints=False):
    rng = np.random.default_rng(seed)
    if ints:   # exact distance ties
        X = rng.integers(-2, 3, size=(n, d)).astype(float)
        T = rng.integers(-2, 3, size=(m, d)).astype(float)
    else:
        X = rng.normal(size=(n, d))
        T = rng.normal(size=(m, d))
    y = rng.choice(np.asarray(labels), size=n)
    y[:len(labels)] = labels
    return X, y, T


def _dense(lr, X, T):
    return lr.fit(X, 0.1).alpha(T)


def _same(a, b):
    """log_p_wrong agree to 1e-12 relative (exactly where infinite or zero)."""
    fin = np.isfinite(a) & np.isfinite(b)
    assert np.array_equal(np.isfinite(a), np.isfinite(b))
    assert np.array_equal(a[~fin], b[~fin])
    assert np.allclose(a[fin], b[fin], rtol=1e-12, atol=0.0)


def _compare(X, y, T, lr, q, num_classes, precision="auto"):
    sp = nf.certify(X, y, T, q=q, bounds=BOUNDS, learner=lr, num_classes=num_classes,
                    precision=precision)
    de = nf.certify_alpha(_dense(lr, X, T), y, q=q, bounds=BOUNDS, num_classes=num_classes,
                          precision=precision)
    assert np.array_equal(sp.prediction, de.prediction)
    for b in BOUNDS:
        assert np.array_equal(sp.radius[b], de.radius[b]), (b, lr, q)
    assert np.array_equal(sp.status, de.status)
    _same(sp.log_p_wrong, de.log_p_wrong)
    return sp


def test_sparse_alpha_is_the_dense_alpha():
    X, y, T = _data(0, 120, 30, 3, [0, 1], ints=True)
    for lr in (KNN(7), KNN(8, weights="distance")):
        f = lr.fit(X, 0.1)
        idx, w = f.sparse_alpha(T)
        assert idx.shape == w.shape == (30, lr.k)
        assert np.all(np.diff(idx, axis=1) > 0)
        A = np.zeros((30, 120))
        np.put_along_axis(A, idx, w, axis=1)
        assert np.array_equal(A, f.alpha(T))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_binary_sparse_equals_dense(seed, weights):
    X, y, T = _data(seed, 400, 60, 4, [0, 1], ints=seed == 2)
    for k in (1, 6, 25):
        for q in ("0.01", "0.1", "0.3"):
            _compare(X, y, T, KNN(k, weights), q, None)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("case", [(3, [0, 2]), (5, [0, 1, 3])])
def test_multiclass_sparse_equals_dense_with_absent_classes(seed, case):
    K, labels = case
    X, y, T = _data(10 + seed, 300, 50, 3, labels, ints=seed == 1)
    for k in (1, 5, 20):
        for q in ("0.02", "0.2"):
            _compare(X, y, T, KNN(k, "distance" if seed == 2 else "uniform"), q, K)


@pytest.mark.parametrize("num_classes,labels", [(None, [0, 1]), (3, [0, 1])])
def test_sparse_equals_dense_with_mp_refinement(num_classes, labels):
    X, y, T = _data(5, 150, 12, 3, labels)
    res = _compare(X, y, T, KNN(9), "0.05", num_classes, precision="mp")
    assert res.info["mp_refined"] > 0


def test_sparse_path_never_builds_the_dense_block(monkeypatch):
    X, y3, T = _data(3, 200, 20, 3, [0, 1, 2])
    cases = [(y3 % 2, None), (y3, 3)]
    want = [nf.certify(X, y, T, q="0.1", bounds=BOUNDS, learner=KNN(5), num_classes=nc)
            for y, nc in cases]

    def boom(*a, **k):
        raise AssertionError("dense α built")

    monkeypatch.setattr(_FittedKNN, "blocks", boom)
    monkeypatch.setattr(_FittedKNN, "alpha", boom)
    got = [nf.certify(X, y, T, q="0.1", bounds=BOUNDS, learner=KNN(5), num_classes=nc)
           for y, nc in cases]
    for g, w in zip(got, want):
        for b in BOUNDS:
            assert np.array_equal(g.radius[b], w.radius[b])


def test_sparse_rows_bounded_by_block_rows(monkeypatch):
    """Small blocks: several sparse blocks per call, same result as one."""
    X, y, T = _data(4, 100, 37, 3, [0, 1])
    one = nf.certify(X, y, T, q="0.1", bounds=BOUNDS, learner=KNN(5))
    monkeypatch.setattr(config, "block_size", 8)
    many = nf.certify(X, y, T, q="0.1", bounds=BOUNDS, learner=KNN(5))
    for b in BOUNDS:
        assert np.array_equal(one.radius[b], many.radius[b])


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("K", [2, 3])
def test_sparse_never_above_brute_force_and_exact_is_enumeration(seed, K):
    n = 7 if K == 2 else 5
    X, y, T = _data(200 + seed, n, 5, 2, list(range(K)), ints=seed % 2 == 0)
    num_classes = None if K == 2 else 3
    q = "0.05" if K == 2 else "0.02"
    for lr in (KNN(1), KNN(3), KNN(4), KNN(3, "distance")):
        res = nf.certify(X, y, T, q=q, bounds=BOUNDS, learner=lr, num_classes=num_classes)
        A = _dense(lr, X, T)
        for j in range(T.shape[0]):
            pred = int(res.prediction_index[j])
            if K == 2:
                _, r = brute_force_binary(A[j], y, float(q), pred)
            else:
                _, r = brute_force_multiclass(A[j], y, float(q), K, pred)
            assert res.radius["kl"][j] <= r and res.radius["tight"][j] <= r
            p0, re = brute_radius(A[j], y, q=float(q) if K == 2 else 0.0,
                                  num_classes=num_classes)
            assert p0 == pred
            assert res.radius["exact"][j] == re
