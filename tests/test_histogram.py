"""The histogram engine (math.md §2b): the sandwich against mpmath, and the engine against the
full-pass engine and brute force.

* Buckets: exact membership (|α − a₀| ≤ h), counts, and the moments Σα, Σα² they imply.
* Bounds: M(t) − E ≤ f(t) ≤ M(t) + E and D − R ≤ f'(t) ≤ D + R at 50 digits, for α with
  zeros, subnormals, values below the window, one sign only, a single nonzero, |tα| up to 700,
  q from 1e−12 to 1/2 − 1e−9; the lower bound on min f never above any value of f.
* Engine: radii identical to or larger than the full-pass engine's on every point of random
  and real (UCI digits) problems, never above brute force on tiny ones; degenerate cases equal.
"""
import math

import mpmath
import numpy as np
import pytest

import numbaflip
from numbaflip import config
from numbaflip._kernels import histogram as HG

RNG = np.random.default_rng(2024)
N2 = 2 * HG.N_BUCKETS


def _hist(a, y):
    acc = np.zeros((N2, 3))
    H = np.empty((N2, HG.N_COLS))
    nb = HG.build_histogram(np.ascontiguousarray(a, dtype=np.float64),
                            np.ascontiguousarray(y, dtype=np.int64), acc,
                            np.empty(N2, np.int64), H, np.empty(1, np.int64))
    assert not acc.any(), "scratch must be left zero"
    return H, nb


def _alphas():
    n = 300
    yield "gaussian", RNG.normal(size=n) / n
    yield "one sign", np.abs(RNG.normal(size=n)) / n
    a = RNG.normal(size=n) / n
    a[::7] = 0.0
    a[1::11] = 5e-324 * RNG.integers(1, 1000, size=a[1::11].size)
    a[2::13] *= 1e-30            # far below the window: the centre bucket
    yield "zeros, subnormals, tiny", a
    a = np.zeros(n)
    a[17] = 0.3
    yield "single nonzero", a
    yield "wide range", RNG.normal(size=n) * np.exp(RNG.uniform(-40, 0, size=n))


def _f_mp(a, y, q, t, deriv=False):
    with mpmath.workdps(50):
        q, t = mpmath.mpf(q), mpmath.mpf(t)
        s = t / 2 if not deriv else mpmath.mpf(1) / 2
        for ai, yi in zip(a.tolist(), y.tolist()):
            ai = mpmath.mpf(ai)
            e = mpmath.exp(-t * ai)
            p1, p0 = (1 - q, q) if yi == 1 else (q, 1 - q)
            if deriv:
                s -= ai * p1 * e / (p0 + p1 * e)
            else:
                s += mpmath.log(p0 + p1 * e)
        return s


@pytest.mark.parametrize("name,a", list(_alphas()), ids=[n for n, _ in _alphas()])
def test_buckets_are_exact(name, a):
    y = RNG.integers(0, 2, size=a.size)
    H, nb = _hist(a, y)
    B = H[:nb]
    assert B[:, 3].sum() == a.size
    for lab in (0, 1):
        sel = B[B[:, 0] == lab]
        assert sel[:, 3].sum() == np.sum(y == lab)
        np.testing.assert_allclose((sel[:, 3] * sel[:, 1] + sel[:, 4]).sum(), a[y == lab].sum(),
                                   rtol=1e-12, atol=1e-300)
    # every α lies in some bucket of its label: |α − a₀| ≤ h
    for ai, yi in zip(a, y):
        sel = B[B[:, 0] == yi]
        assert np.any(np.abs(ai - sel[:, 1]) <= sel[:, 2])
    assert np.all(B[:, 5] <= B[:, 3] * B[:, 2] ** 2 * (1 + 1e-12))   # S₂ ≤ c·h²


QS = [1e-12, 1e-4, 0.1, 0.3, 0.5 - 1e-9]


@pytest.mark.parametrize("q", QS)
@pytest.mark.parametrize("name,a", list(_alphas()), ids=[n for n, _ in _alphas()])
def test_sandwich_holds_against_mpmath(name, a, q):
    y = RNG.integers(0, 2, size=a.size)
    H, nb = _hist(a, y)
    lq, l1q = math.log(q), math.log1p(-q)
    top = np.max(np.abs(a))
    for tu in (1e-3, 1.0, 30.0, 700.0):     # |tα| up to tu
        for sign in (1.0, -1.0):
            t = sign * tu / top
            m, e = HG.model_value(H, nb, t, q, lq, l1q)
            f = _f_mp(a, y, q, t)
            assert m - e <= f <= m + e, (t, m, e, float(f))
            d, _, rd = HG.model_slope(H, nb, t, q, lq, l1q)
            fp = _f_mp(a, y, q, t, deriv=True)
            assert d - rd <= fp <= d + rd, (t, d, rd, float(fp))


@pytest.mark.parametrize("q", [1e-4, 0.3, 0.45])
def test_lower_bound_is_below_every_value(q):
    for _ in range(5):
        n = 200
        a = RNG.normal(size=n) / n * 4
        y = (RNG.random(n) < 0.5).astype(np.int64)
        H, nb = _hist(a, y)
        lq, l1q = math.log(q), math.log1p(-q)
        # minimise the exact f on a grid + refinement in mpmath; the bound must sit below
        side = 1.0 if ((1 - 2 * q) * a[y == 1].sum() + q * a.sum()) > 0.5 else -1.0
        u = HG._newton_model(H, nb, side, 1.0, q, lq, l1q, 200)
        u, d, hs, rd = HG._polish(H, nb, side, u, q, lq, l1q, 3)
        t = side * u
        m, e = HG.model_value(H, nb, t, q, lq, l1q)
        low = HG._lower_bound(H, nb, t, m, e, d, hs, rd, q, lq, l1q)
        with mpmath.workdps(30):
            tmin = mpmath.findroot(lambda s: _f_mp(a, y, q, s, deriv=True), t)
            fmin = _f_mp(a, y, q, tmin)
        assert low <= fmin <= m + e
        assert low > -np.inf   # it does bracket on ordinary problems


def _both(X, y, H, q, bounds=("kl", "tight"), **kw):
    out = {}
    try:
        for eng in ("passes", "histogram"):
            config.config.chernoff_engine = eng
            out[eng] = numbaflip.certify(X, y, H, q=q, bounds=bounds, progress=False, **kw)
    finally:
        config.reset()
    return out["passes"], out["histogram"]


@pytest.mark.parametrize("q", ["0.3", "0.05", "1e-4", "0.49"])
def test_never_below_the_full_pass_engine_random(q):
    for seed in range(3):
        rng = np.random.default_rng(seed)
        n, k, m = 400, 6, 60
        X = rng.normal(size=(n, k))
        y = (X @ rng.normal(size=k) + rng.normal(size=n) > 0).astype(np.int64)
        H = rng.normal(size=(m, k))
        ref, got = _both(X, y, H, q, lam=1.0)
        np.testing.assert_array_equal(got.prediction, ref.prediction)
        for b in ref.radius:
            assert np.all(got.radius[b] >= ref.radius[b]), b
        assert np.all(got.log_p_wrong[np.isneginf(ref.log_p_wrong)] == -np.inf)


def test_never_below_the_full_pass_engine_real_digits():
    d = np.load(numbaflip.__file__.replace("__init__.py", "data/digits.npz"))
    X = d["images"].reshape(len(d["images"]), -1).astype(np.float64) / 16.0
    lab = d["labels"]
    keep = (lab == 1) | (lab == 7)
    X, y = X[keep], (lab[keep] == 7).astype(np.int64)
    Xc = X - X.mean(axis=0)                     # label-free features: PCA
    V = np.linalg.svd(Xc, full_matrices=False)[2][:20]
    Z = Xc @ V.T
    ref, got = _both(Z[:250], y[:250], Z[250:], "0.3")
    for b in ref.radius:
        assert np.all(got.radius[b] >= ref.radius[b])
    assert got.info["histogram"]["closed"] > 0.9 * len(got)


def test_degenerate_cases_equal_the_full_pass_engine():
    # all-zero alpha (E = 0 < 1/2, Σα₊ = 0: unbounded), one sign, a single nonzero, limit
    y = np.array([1, 0, 1, 1, 0, 0], np.int64)
    A = np.array([[0.0] * 6,
                  [0.25, 0.25, 0.0, 0.0, 0.0, 0.0],      # Σα₊ = 1/2: the limit case
                  [0.9, 0.0, 0.0, 0.0, 0.0, 0.0],
                  [0.1, 0.2, 0.3, 0.1, 0.2, 0.3],
                  [-0.1, -0.2, 0.4, 0.4, 0.1, 0.2],
                  [1e300, -1e300, 1e-300, 0.0, 0.0, 5e-324]])
    for q in ("0.1", "0.3", "1e-9"):
        res = {}
        try:
            for eng in ("passes", "histogram"):
                config.config.chernoff_engine = eng
                res[eng] = numbaflip.certify_alpha(A, y, q=q, bounds=("kl", "tight"))
        finally:
            config.reset()
        for b in ("kl", "tight"):
            assert np.all(res["histogram"].radius[b] >= res["passes"].radius[b])
        np.testing.assert_array_equal(res["histogram"].status, res["passes"].status)


def test_never_above_brute_force_tiny():
    from itertools import product
    rng = np.random.default_rng(5)
    for _ in range(40):
        n = int(rng.integers(2, 8))
        A = rng.normal(size=(1, n)) / n * rng.uniform(0.5, 4)
        y = rng.integers(0, 2, size=n)
        q = float(rng.choice([0.05, 0.2, 0.4]))
        res = numbaflip.certify_alpha(A, y, q=q, bounds=("kl", "tight"))
        r = int(res.radius["tight"][0])
        if r < 0:
            continue
        pred = int(res.prediction[0])
        # for every label vector within r flips, P(smoothed prediction = pred) > 1/2
        for flips in product([0, 1], repeat=n):
            if sum(flips) > r:
                continue
            y2 = np.where(np.array(flips) == 1, 1 - y, y)
            p = 0.0
            for z in product([0, 1], repeat=n):
                yz = np.where(np.array(z) == 1, 1 - y2, y2)
                w = np.prod(np.where(np.array(z) == 1, q, 1 - q))
                p += w * (int(A[0] @ yz >= 0.5) == pred)
            assert p > 0.5
