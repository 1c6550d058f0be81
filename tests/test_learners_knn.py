"""The kNN neighbour search (numbaflip._kernels.neighbours through learners.KNN) against a
brute-force NumPy twin: every direct squared distance of every training point, summed in
feature order, then a full sort by (distance, index).  Indices and distances must agree bit
for bit, including exact ties (integer features, duplicated points) and every k from 1 to n."""
from __future__ import annotations

import numpy as np
import pytest

from numbaflip import NumbaflipInputError
from numbaflip._kernels import neighbours as _kn
from numbaflip.learners import KNN


def _brute(X, H, k):
    """(idx, dist): rows by (direct squared distance, index), the first k."""
    n = X.shape[0]
    idx = np.empty((H.shape[0], k), np.int64)
    dist = np.empty((H.shape[0], k))
    for j, h in enumerate(H):
        dd = np.zeros(n)
        for col in range(X.shape[1]):
            t = h[col] - X[:, col]
            dd += t * t
        order = np.lexsort((np.arange(n), dd))[:k]
        idx[j], dist[j] = order, dd[order]
    return idx, dist


def _data(kind, n, d, m, seed):
    rng = np.random.default_rng(seed)
    if kind == "gauss":
        X = rng.normal(size=(n, d)) * rng.uniform(0.1, 3.0, size=d)
        H = rng.normal(size=(m, d))
    elif kind == "integer":          # many exactly tied distances, exact sums
        X = rng.integers(-2, 3, size=(n, d)).astype(np.float64)
        H = rng.integers(-2, 3, size=(m, d)).astype(np.float64)
    else:                            # duplicated training points, test points among them
        base = rng.normal(size=(n // 4 + 1, d))
        X = base[rng.integers(0, base.shape[0], size=n)]
        H = np.vstack([X[rng.integers(0, n, size=m // 2)], rng.normal(size=(m - m // 2, d))])
    return np.ascontiguousarray(X), np.ascontiguousarray(H)


@pytest.mark.parametrize("kind", ["gauss", "integer", "duplicates"])
@pytest.mark.parametrize("n,d", [(37, 3), (1500, 7), (4500, 3)])
def test_neighbours_equal_brute_force_bit_for_bit(kind, n, d):
    X, H = _data(kind, n, d, 9, seed=n + d)
    for k in sorted({1, 2, 5, min(40, n), n // 3, n // 2, n - 1, n}):
        f = KNN(k).fit(X)
        ref_idx, ref_dist = _brute(X, H, k)
        idx, dist = f.neighbours(H)
        assert np.array_equal(idx, ref_idx), (kind, n, k)
        assert np.array_equal(dist, ref_dist), (kind, n, k)     # bit for bit
        sp_idx, w = f.sparse_alpha(H)
        assert np.array_equal(sp_idx, np.sort(ref_idx, axis=1))
        assert np.all(w == f.w)


def test_distance_weights_from_the_same_distances():
    X, H = _data("duplicates", 300, 4, 8, seed=3)
    f = KNN(7, weights="distance").fit(X)
    idx, dist = _brute(X, H, 7)
    sp_idx, w = f.sparse_alpha(H)
    for j in range(H.shape[0]):
        r = np.sqrt(dist[j])
        inv = (r == 0).astype(float) if (r == 0).any() else 1.0 / r
        want = inv / inv.sum()
        order = np.argsort(idx[j], kind="stable")
        assert np.array_equal(sp_idx[j], idx[j][order])
        assert np.array_equal(w[j], want[order])


def _select_cases(rng):
    m = 5000
    yield rng.normal(size=m)
    yield rng.integers(0, 4, size=m).astype(np.float64)          # heavy ties
    yield np.sort(rng.normal(size=m))
    yield np.sort(rng.normal(size=m))[::-1].copy()
    a = rng.normal(size=m)
    a[[0, 7, 100]] = [-np.inf, np.inf, -np.inf]
    yield a
    # the strided sample sees only huge values: its bracket misses, the fallback decides
    s = min(max(int(m ** (2.0 / 3.0)), 256), m // 4)
    a = rng.uniform(0.0, 1.0, size=m)
    a[(np.arange(s) * m) // s] = 1e6 + rng.uniform(size=s)
    yield a
    yield rng.normal(size=300)                                    # small: direct quickselect


def test_select_value_is_the_order_statistic():
    rng = np.random.default_rng(11)
    for a in _select_cases(rng):
        a = np.ascontiguousarray(a)
        before = a.copy()
        work = np.empty(a.size)
        srt = np.sort(a)
        for kk in {0, 1, a.size // 3, a.size // 2, a.size - 2, a.size - 1,
                   int(rng.integers(0, a.size))}:
            assert _kn._select_value(a, a.size, kk, work) == srt[kk]
        assert np.array_equal(a, before)        # the input is left unchanged


def test_neighbours_of_far_test_points_and_bounded_blocks(monkeypatch):
    """Test points far outside the training cloud (large ‖h‖: the allowance is widest) and
    blocks of a few rows give the same neighbours as the brute force."""
    from numbaflip import config as cfg
    X, H = _data("gauss", 800, 5, 6, seed=5)
    H = H * np.array([1.0, 1e3, 1e-3, 1e6, 1.0, 0.0])[:, None]
    monkeypatch.setattr(cfg.config, "block_size", 2)
    f = KNN(33).fit(X)
    ref, _ = _brute(X, H, 33)
    got = np.vstack([i for _, i, _ in f.sparse_blocks(H)])
    assert np.array_equal(got, np.sort(ref, axis=1))


def test_overflowing_distances_are_a_clear_error():
    X = np.array([[1.2e154, 0.0], [0.0, 1.0], [1.0, 1.0]])   # ‖x‖² finite, distances not
    for H in (np.array([[-1.2e154, 0.0]]), np.array([[1e200, 0.0]])):
        for k in (1, 3):
            with pytest.raises(NumbaflipInputError, match="squared distances.*Scale the"):
                KNN(k).fit(X).sparse_alpha(H)


@pytest.mark.parametrize("K", [3, 5])
def test_uniform_knn_exact_sparse_equals_dense_with_tied_counts(K):
    """The sparse K-class exact path scales uniform rows to 1.0 (certify._Engine
    ._sparse_exact_rows); the dense path certifies the rounded 1/k weights themselves, with
    exact rationals at ties.  Small k and few classes make tied class counts common."""
    import numbaflip
    rng = np.random.default_rng(K)
    X, H = _data("integer", 120, 3, 40, seed=K)
    y = rng.integers(0, K, size=120)
    for k in (2, 3, 6, 9, 20):
        f = KNN(k).fit(X)
        A = f.alpha(H)
        for q in (0.0, 0.1):
            b = ("exact",) if q == 0 else ("kl", "exact")
            sp = numbaflip.certify(X, y, H, q=q, learner=KNN(k), num_classes=K, bounds=b,
                                   progress=False)
            de = numbaflip.certify_alpha(A, y, q=q, num_classes=K, bounds=b, progress=False)
            assert np.array_equal(sp.prediction, de.prediction)
            assert np.array_equal(sp.radius["exact"], de.radius["exact"]), (k, q)


def test_bracket_missed_by_the_sample_falls_back_exactly():
    """Training points at the strided sample positions far away (and one test point among
    them): the sampled bracket misses the k-th distance and the row is redone in full."""
    rng = np.random.default_rng(8)
    n = 4500
    X = rng.normal(size=(n, 3))
    starts = ((np.arange(_kn._LINES) * n) // _kn._LINES) & ~(_kn._RUN - 1)
    pos = (starts[:, None] + np.arange(_kn._RUN)).ravel()
    X[pos] += 100.0
    H = np.vstack([rng.normal(size=(3, 3)), X[pos[:2]] + 1e-3])
    for k in (1, 7, 300, 560):     # 8k ≤ n: the one-pass rows
        ref, dist = _brute(X, H, k)
        idx, got = KNN(k).fit(X).neighbours(H)
        assert np.array_equal(idx, ref) and np.array_equal(got, dist)
