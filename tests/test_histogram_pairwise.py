"""The K-class histogram engine (math.md §2b, §3): the pair sandwich against mpmath, the
third-moment constant, and the engine against the full-pass engine and brute force.

* Bounds: M(t) − E ≤ f_cc′(t) ≤ M(t) + E and D − R ≤ f_cc′′(t) ≤ D + R at 50+ digits, for α
  with zeros, subnormals, tiny values, one sign, |tα| up to 700, q from ~1e−12 to
  (K−1)/K − 1e−9, K ∈ {3, 5, 10}, labels with absent classes.  The kernels evaluate at
  float(q), float(p₋), float(p₀); the engine adds 4n·u (``q_shift``) for that, and so does the
  comparison here.
* M₃ = 8/(6√3) bounds the third central moment of any law on [−1, 1].
* Engine: same predictions and radii never below the full-pass engine (random problems with
  an absent class, UCI digits with 10 classes), never above brute force, degenerate and tied
  cases equal.
"""
import math

import mpmath
import numpy as np
import pytest

import numbaflip
from numbaflip import config
from numbaflip._kernels import histogram as HG
from numbaflip._kernels import histogram_pairwise as HP
from numbaflip._kernels import pairwise as PW
from naive import brute_force_multiclass, pair_eval_mp

RNG = np.random.default_rng(77)
_U = 2.0 ** -53


def _hist(a, y, S):
    nbk = (S + 1) * HG.N_BUCKETS
    scratch = (np.zeros((nbk, 3)),)
    H = np.empty((nbk, 5))
    off = np.empty(S + 2, np.int64)
    nb = HP.build_histogram_mc(np.ascontiguousarray(a, dtype=np.float64),
                               np.ascontiguousarray(y, dtype=np.int64), S, *scratch,
                               np.empty(nbk, np.int64), H, np.empty(nbk, np.int64), off,
                               np.empty(1, np.int64))
    assert all(not s.any() for s in scratch), "scratch must be left zero"
    return H, off, nb


def _nz(q, K):
    pm, lq1, lpm, lp0, *_ = PW._noise_consts(q, K)
    return (q, pm, lq1, lpm, lp0, math.log1p(-2.0 * pm))


def _alphas(n=120):
    yield "gaussian", RNG.normal(size=n) / n
    yield "one sign", np.abs(RNG.normal(size=n)) / n
    a = RNG.normal(size=n) / n
    a[::7] = 0.0
    a[1::11] = 5e-324 * RNG.integers(1, 1000, size=a[1::11].size)
    a[2::13] *= 1e-30
    yield "zeros, subnormals, tiny", a
    yield "wide range", RNG.normal(size=n) * np.exp(RNG.uniform(-40, 0, size=n))


def _labels(n, K):
    """Slot labels 0..S−1 with S = min(K, 4) slots, one of them (slot S−1) absent when K > 4."""
    S = min(K, 4)
    y = RNG.integers(0, S - 1 if K > 4 else S, size=n)
    return y, S


@pytest.mark.parametrize("K", [3, 5, 10])
@pytest.mark.parametrize("name,a", list(_alphas()), ids=[n for n, _ in _alphas()])
def test_buckets_are_exact(name, a, K):
    y, S = _labels(a.size, K)
    H, off, nb = _hist(a, y, S)
    assert off[S + 1] == nb
    for L in range(S + 1):
        B = H[off[L]:off[L + 1]]
        sel = a[y == L] if L < S else np.abs(a)
        assert B[:, 2].sum() == sel.size
        np.testing.assert_allclose((B[:, 2] * B[:, 0] + B[:, 3]).sum(), sel.sum(), rtol=1e-12,
                                   atol=1e-300)
        for ai in sel:
            assert np.any(np.abs(ai - B[:, 0]) <= B[:, 1])
        assert np.all(B[:, 4] <= B[:, 2] * B[:, 1] ** 2 * (1 + 1e-12))


def _qs(K):
    top = (K - 1) / K
    return [1e-12 * top, 1e-4, 0.3, top - 1e-9]


@pytest.mark.parametrize("K", [3, 5, 10])
@pytest.mark.parametrize("name,a", list(_alphas(60)), ids=[n for n, _ in _alphas(60)])
def test_pair_sandwich_against_mpmath(name, a, K):
    y, S = _labels(a.size, K)
    H, off, _ = _hist(a, y, S)
    st = np.empty(4)
    top = np.max(np.abs(a))
    shift = 4.0 * a.size * _U
    for q in _qs(K):
        nz = _nz(q, K)
        for c, r in ((0, 1), (1, S - 1)):
            use_o = bool(np.any((y != c) & (y != r)))
            for tu in (1e-3, 1.0, 30.0, 700.0):
                t = tu / top
                m, e = HP.pair_value(H, off, S, c, r, use_o, t, nz, st)
                f, fp, _ = pair_eval_mp(a, y, c, r, t, q, K)
                assert m - e - shift <= f <= m + e + shift, (q, c, r, t, m, e, float(f))
                d, _, rd = HP.pair_slope(H, off, S, c, r, use_o, t, nz, st)
                # d/dt of the float-parameter objective: slack u·Σ|α| per relative rounding
                sl = 4.0 * _U * float(np.abs(a).sum())
                assert d - rd - sl <= fp <= d + rd + sl, (q, c, r, t, d, rd, float(fp))


def test_third_moment_constant():
    """sup |E(s − μ)³| over laws on [−1, 1] is 8/(6√3): the two-point extremes attain it and
    no random three-point law exceeds it (50 digits)."""
    with mpmath.workdps(50):
        m3 = mpmath.mpf(8) / (6 * mpmath.sqrt(3))
        assert abs(m3 - mpmath.mpf(HP.M3_PAIR)) < 1e-15

        def third(ps, xs):
            mu = sum(p * x for p, x in zip(ps, xs))
            return sum(p * (x - mu) ** 3 for p, x in zip(ps, xs))

        p = (3 - mpmath.sqrt(3)) / 6
        best = abs(third([p, 1 - p], [mpmath.mpf(1), mpmath.mpf(-1)]))
        assert abs(best - m3) < mpmath.mpf(10) ** -40
        rng = np.random.default_rng(3)
        for _ in range(3000):
            w = [mpmath.mpf(float(v)) for v in rng.random(3)]
            xs = [mpmath.mpf(float(v)) for v in rng.uniform(-1, 1, 3)]
            if rng.random() < 0.3:
                xs = [mpmath.mpf(-1), mpmath.mpf(0), mpmath.mpf(1)]   # the slopes of the terms
            ps = [v / sum(w) for v in w]
            assert abs(third(ps, xs)) <= m3 * (1 + mpmath.mpf(10) ** -30)
        # on a fine grid of two-point laws {−1, 1} the maximum is at p = (3 − √3)/6
        grid = [abs(third([mpmath.mpf(k) / 2000, 1 - mpmath.mpf(k) / 2000], [1, -1]))
                for k in range(2001)]
        assert max(grid) <= m3


def _both(fn, *args, **kw):
    out = {}
    try:
        for eng in ("passes", "histogram"):
            config.config.chernoff_engine = eng
            out[eng] = fn(*args, progress=False, **kw)
    finally:
        config.reset()
    return out["passes"], out["histogram"]


def _check(ref, got):
    np.testing.assert_array_equal(got.prediction, ref.prediction)
    for b in ref.radius:
        assert np.all(got.radius[b] >= ref.radius[b]), b
    assert np.all(got.log_p_wrong[np.isneginf(ref.log_p_wrong)] == -np.inf)


@pytest.mark.parametrize("K,n,q", [(3, 500, "0.1"), (4, 1500, "0.3"), (10, 3000, "0.05"),
                                   (3, 800, "1e-4"), (4, 600, "0.7")])
def test_never_below_the_full_pass_engine_random(K, n, q):
    rng = np.random.default_rng(K * 1000 + n)
    k, m = 8, 60
    X = rng.normal(size=(n, k))
    y = np.argmax(X @ rng.normal(size=(k, K)) + rng.normal(size=(n, K)), axis=1)
    y[y == K - 1] = 0                   # class K−1 absent
    H = rng.normal(size=(m, k))
    ref, got = _both(numbaflip.certify, X, y, H, q=q, num_classes=K, bounds=("kl", "tight"),
                     lam=1.0)
    _check(ref, got)
    h = got.info["histogram"]
    assert h["engine"] == "histogram" and h["closed"] + h["full_pass"] > 0


def test_never_below_the_full_pass_engine_real_digits():
    d = np.load(numbaflip.__file__.replace("__init__.py", "data/digits.npz"))
    X = d["images"].reshape(len(d["images"]), -1).astype(np.float64) / 16.0
    y = d["labels"].astype(np.int64)
    Xc = X - X.mean(axis=0)                     # label-free features: PCA
    V = np.linalg.svd(Xc, full_matrices=False)[2][:30]
    Z = Xc @ V.T
    ref, got = _both(numbaflip.certify, Z[:1400], y[:1400], Z[1400:1600], q="0.05",
                     num_classes=10, bounds=("kl", "tight"))
    _check(ref, got)
    assert got.info["histogram"]["closed"] > 0.8 * len(got)


def test_degenerate_and_tied_cases_equal_the_full_pass_engine():
    y = np.array([0, 1, 2, 0, 1, 2, 0], np.int64)
    A = np.array([[0.0] * 7,                                   # every class tied
                  [0.25, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0],       # classes 0 and 1 tied
                  [0.9, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],         # a single nonzero
                  [0.1, 0.2, 0.3, 0.1, 0.2, 0.3, 0.4],
                  [-0.1, -0.2, 0.4, 0.4, 0.1, 0.2, 0.0],
                  [1e300, -1e300, 1e-300, 0.0, 0.0, 5e-324, 0.0],
                  [5e-324, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    for K in (3, 5):
        for q in ("0.1", "0.3", "1e-9"):
            ref, got = _both(numbaflip.certify_alpha, A, y, q=q, num_classes=K,
                             bounds=("kl", "tight"))
            _check(ref, got)
            np.testing.assert_array_equal(got.status, ref.status)
            tied = ref.status == 1
            np.testing.assert_array_equal(got.log_p_wrong[tied], ref.log_p_wrong[tied])


def test_never_above_brute_force_tiny():
    rng = np.random.default_rng(11)
    try:
        config.config.chernoff_engine = "histogram"
        for _ in range(25):
            n = int(rng.integers(3, 7))
            y = rng.integers(0, 3, size=n)
            A = rng.normal(size=(2, n)) * rng.uniform(0.1, 3.0)
            q = float(rng.choice([0.05, 0.2, 0.5]))
            res = numbaflip.certify_alpha(A, y, q=q, num_classes=3, bounds=("kl", "tight"))
            assert res.info["histogram"]["engine"] == "histogram"
            for j in range(A.shape[0]):
                p_wrong, true_r = brute_force_multiclass(A[j], y, q, 3, res.prediction[j])
                assert np.exp(res.log_p_wrong[j]) >= p_wrong - 1e-12
                for b in ("kl", "tight"):
                    assert res.radius[b][j] <= true_r
    finally:
        config.reset()


def test_local_third_moment_bound():
    """|g‴| on u ± dt never exceeds _m3_local(g″(u), its error, dt) (50 digits, every role)."""
    rng = np.random.default_rng(9)
    for _ in range(300):
        K = int(rng.choice([3, 5, 10]))
        q = float(rng.choice([1e-9, 1e-3, 0.1, 0.5])) * (K - 1) / K
        nz = _nz(q, K)
        role = int(rng.integers(0, 3))
        u = float(rng.uniform(-30, 30))
        dt = float(10.0 ** rng.uniform(-6, 0.5))
        _, _, g2, eg2 = HP._slopes(u, role, nz)
        bound = HP._m3_local(g2, eg2, dt)
        pm = q / (K - 1)
        w = {HP.ROLE_C: (1 - q, q - pm, pm), HP.ROLE_R: (pm, q - pm, 1 - q),
             HP.ROLE_O: (pm, 1 - 2 * pm, pm)}[role]
        with mpmath.workdps(50):
            for v in np.linspace(u - dt, u + dt, 7):
                v = mpmath.mpf(float(v))
                ps = [mpmath.mpf(wi) * mpmath.exp(s * v) for wi, s in zip(w, (-1, 0, 1))]
                Z = sum(ps)
                mu = sum(p * s for p, s in zip(ps, (-1, 0, 1))) / Z
                m3 = sum(p * (s - mu) ** 3 for p, s in zip(ps, (-1, 0, 1))) / Z
                assert abs(m3) <= bound, (role, q, u, dt, float(m3), bound)
