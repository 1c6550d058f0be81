"""numbaflip.distributed.certify(partition="train"): the training set in row partitions, the
histograms merged (docs/scaling.md §2, numbaflip/_partitioned.py).

What is asserted:

* predictions identical to the in-process numbaflip.certify;
* radii compared with the in-process ones: where they differ, the in-process ℓ lies within
  float reassociation of a radius boundary (``_boundary_only``), and the number of such rows
  is reported; the exact radius is identical (it is exact for both α);
* radii never above the truth: brute force over every label vector on tiny problems;
* the merge kernels: merged cells have the in-process keys and counts, Ŝ₁ and Ŝ₂ within the
  γ_c bounds the engine charges (exact rationals), and U(t̂) from merged cells bounds f(t̂)
  at 50 digits, for adversarial splits (one training point per part);
* degenerate points (α ≡ 0, exact ties) and ambiguous decisions go to the exact in-process
  path; a tiny ``exact_candidates`` forces the fetched-row path and changes nothing;
* every input error on the client before anything is submitted.
"""
import os
from fractions import Fraction

import numpy as np
import pytest

import dask.array as da
import distributed

import numbaflip
import numbaflip.config
import numbaflip.distributed as nd
from numbaflip import NumbaflipInputError
from numbaflip._kernels import histogram as kh
from numbaflip._kernels import histogram_merge as hm
from numbaflip.radius import kl_radius

from naive import binary_eval_mp, brute_force_binary, brute_force_multiclass
from test_distributed import _data, no_submit  # noqa: F401  (fixture)

FULL = os.environ.get("NUMBAFLIP_FULL_TESTS") == "1"
BOUNDS = ("kl", "tight", "exact")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as c:
        yield c


@pytest.fixture(scope="module")
def client(cluster):
    with distributed.Client(cluster) as cl:
        yield cl


def _train(client, X, y, T, chunk, **kw):
    return nd.certify(client, da.from_array(X, chunks=(chunk, X.shape[1])),
                      da.from_array(y, chunks=chunk), T, partition="train", **kw)


def _boundary_only(ref, res, bound, rel=1e-9):
    """Rows where the radii differ; asserts each is a boundary row: the radius of the
    in-process ℓ moved by a reassociation-sized amount reaches the other radius."""
    diff = np.flatnonzero(ref.radius[bound] != res.radius[bound])
    if diff.size == 0:
        return diff
    ell = ref.log_p_wrong[diff]
    d = rel * (1.0 + np.abs(ell))
    K = 2 if ref.num_classes is None else ref.num_classes
    canon = ref.metadata["q_canonical"]

    def radius(v):   # as the engine: kl, or max(tight, kl)
        r = kl_radius(v, Fraction(canon), K, ref.n)
        if bound == "tight":
            from numbaflip.tight import tight_radius
            r = np.maximum(r, tight_radius(v, canon, K, ref.n))
        return r
    lo, hi = radius(ell + d), radius(ell - d)
    r = res.radius[bound][diff]
    assert np.all((lo <= r) & (r <= hi) & (lo != hi)), (bound, diff)
    return diff


@pytest.fixture(autouse=True)
def histogram_engine():
    """The in-process references run the histogram engine (math.md §2b) as the training
    partitions do, so log_p_wrong differs by reassociation only (below n = 4096 "auto" would
    pick the full-pass engine; test_default_engine compares with that)."""
    numbaflip.config.config.chernoff_engine = "histogram"
    yield
    numbaflip.config.reset()


def _compare(ref, res, same_engine=True):
    """Predictions identical, smoothing radii equal up to boundary rows (reported), the exact
    radius identical; returns the number of boundary rows per bound."""
    np.testing.assert_array_equal(ref.prediction, res.prediction)
    np.testing.assert_array_equal(ref.status, res.status)
    out = {}
    for b in ref.radius:
        if b == "exact":
            np.testing.assert_array_equal(ref.radius[b], res.radius[b])
        else:
            out[b] = int(_boundary_only(ref, res, b).size)
    fin = np.isfinite(ref.log_p_wrong)
    if same_engine:
        np.testing.assert_allclose(res.log_p_wrong[fin], ref.log_p_wrong[fin], rtol=1e-9,
                                   atol=1e-9)
    return out


# --------------------------------------------------------------------------------------------
# against the in-process call
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("K", [None, 3])
def test_same_as_in_process(client, K):
    X, y, T = _data(11, n=600, m=150, K=K)
    kw = dict(q=0.1, bounds=BOUNDS, num_classes=K)
    ref = numbaflip.certify(X, y, T, **kw)
    res = _train(client, X, y, T, 200, **kw)          # 3 parts: an odd merge tree
    moved = _compare(ref, res)
    print(f"K={K}: radii on a boundary moved by reassociation: {moved}")
    info = res.info["dask"]
    assert info["partition"] == "train" and info["parts"] == 3
    assert info["settled"] + sum(info["fallback"].values()) == 150
    assert info["bytes_per_point_per_part"]["cells"] > 0
    assert res.metadata["lam"] == pytest.approx(ref.metadata["lam"], rel=1e-10)
    assert res.info["histogram"]["closed"] > 0


def test_default_engine(client):
    """Against the in-process default (full-pass engine at this n): the same radii except at
    boundaries (the histogram bound is settled only where its sandwich closes)."""
    numbaflip.config.reset()
    X, y, T = _data(17, n=400, m=80)
    kw = dict(q=0.15, bounds=BOUNDS)
    ref = numbaflip.certify(X, y, T, **kw)
    res = _train(client, X, y, T, 150, **kw)
    _compare(ref, res, same_engine=False)


def test_absent_class_lam_float_and_numpy_parts(client):
    """K = 5 with classes 1 and 3 absent (slots), a float λ, numpy X_train split per worker."""
    X, y, T = _data(12, n=300, m=60, K=3)
    y = np.array([0, 2, 4])[y]
    kw = dict(q="0.2", bounds=BOUNDS, num_classes=5, lam=0.5)
    ref = numbaflip.certify(X, y, T, **kw)
    res = nd.certify(client, X, y, T, partition="train", **kw)
    assert res.info["dask"]["parts"] == 2
    _compare(ref, res)
    np.testing.assert_array_equal(ref.pair_log_b.shape, res.pair_log_b.shape)
    assert res.lam == 0.5


def test_degenerate_and_ties_go_exact(client):
    """α ≡ 0 (zero test rows without intercept): binary unbounded, K classes all tied; and a
    tiny exact_candidates (walks run out of sent moves): the fetched-row path, same answers."""
    X, y, T = _data(13, n=240, m=40)
    T[:5] = 0.0
    kw = dict(q=0.2, bounds=BOUNDS, fit_intercept=False)
    ref = numbaflip.certify(X, y, T, **kw)
    res = _train(client, X, y, T, 80, exact_candidates=2, **kw)
    _compare(ref, res)
    fb = res.info["dask"]["fallback"]
    assert fb["decision"] >= 5 and res.info["dask"]["exact_rounds"] > 0
    assert np.all(res.radius["kl"][:5] == ref.radius["kl"][:5])
    X, y, T = _data(14, n=240, m=30, K=3)
    T[:4] = 0.0
    kw = dict(q=0.2, bounds=BOUNDS, fit_intercept=False, num_classes=3)
    ref = numbaflip.certify(X, y, T, **kw)
    res = _train(client, X, y, T, 100, **kw)
    _compare(ref, res)
    assert res.info["dask"]["fallback"]["decision"] >= 4
    assert np.all(res.status[:4] == ref.status[:4])


def test_precision_mp_and_exact_only(client):
    X, y, T = _data(15, n=200, m=20)
    kw = dict(q="0.3", bounds=("kl", "tight"), precision="mp")
    ref = numbaflip.certify(X, y, T, **kw)
    res = _train(client, X, y, T, 70, **kw)
    _compare(ref, res)
    assert res.info["dask"]["fallback"]["precision_mp"] + \
        res.info["dask"]["fallback"]["decision"] == 20
    kw = dict(q=0.0, bounds=("exact",))
    ref = numbaflip.certify(X, y, T, **kw)
    res = _train(client, X, y, T, 70, **kw)
    _compare(ref, res)


# --------------------------------------------------------------------------------------------
# never above the truth (brute force over all label vectors)
# --------------------------------------------------------------------------------------------

def _alpha(X, T, lam):
    from numbaflip.alpha import RidgeAlpha
    return RidgeAlpha(X, lam).alpha(T)


@pytest.mark.parametrize("seed", range(4 if not FULL else 12))
def test_bruteforce_binary(client, seed):
    rng = np.random.default_rng(100 + seed)
    n = 10
    X = rng.normal(size=(n, 2))
    y = rng.integers(0, 2, size=n)
    y[:2] = [0, 1]
    T = rng.normal(size=(12, 2)) * 0.5
    q = ["0.1", "0.25", "0.05", "0.4"][seed % 4]
    res = _train(client, X, y, T, 3, q=q, lam=0.3, bounds=BOUNDS)
    A = _alpha(X, T, 0.3)
    from naive_exact import brute_radius
    for j in range(T.shape[0]):
        p_wrong, r_true = brute_force_binary(A[j], y, float(q), int(res.prediction[j]))
        assert res.radius["kl"][j] <= r_true and res.radius["tight"][j] <= r_true
        assert np.exp(res.log_p_wrong[j]) >= p_wrong * (1 - 1e-9)
    for j in range(T.shape[0]):
        p0, r = brute_radius(A[j], y, q=q)
        assert res.prediction[j] == p0 and res.radius["exact"][j] == r


@pytest.mark.parametrize("seed", range(2 if not FULL else 8))
def test_bruteforce_multiclass(client, seed):
    rng = np.random.default_rng(200 + seed)
    n, K = 6, 3
    X = rng.normal(size=(n, 2))
    y = np.arange(n) % K
    T = rng.normal(size=(8, 2)) * 0.5
    q = "0.2"
    res = _train(client, X, y, T, 2, q=q, lam=0.2, bounds=("kl", "tight"), num_classes=K)
    A = _alpha(X, T, 0.2)
    for j in range(T.shape[0]):
        p_wrong, r_true = brute_force_multiclass(A[j], y, 0.2, K, int(res.prediction[j]))
        assert res.radius["kl"][j] <= r_true and res.radius["tight"][j] <= r_true
        assert np.exp(res.log_p_wrong[j]) >= p_wrong * (1 - 1e-9)


# --------------------------------------------------------------------------------------------
# the merge kernels (no cluster)
# --------------------------------------------------------------------------------------------

def _cells(a, y, top, mc, S, need=True):
    """One part's cells for a single α row (the part-side kernels)."""
    A = np.ascontiguousarray(a[None, :])
    nd_ = np.array([need])
    cnt = np.zeros(1, np.int64)
    hm.part_count_cells(A, y, np.array([top]), nd_, mc, S, cnt)
    ptr = np.array([0, cnt[0]], np.int64)
    out = (np.empty(cnt[0], np.int32), np.empty(cnt[0], np.int32), np.empty(cnt[0]),
           np.empty(cnt[0]))
    hm.part_cells(A, y, np.array([top]), nd_, mc, S, ptr, *out)
    return (ptr,) + out


def _merge_tree(sets, S):
    while len(sets) > 1:
        nxt = []
        for i in range(0, len(sets) - 1, 2):
            a, b = sets[i], sets[i + 1]
            cap = np.diff(a[0]) + np.diff(b[0])
            pout = np.array([0, cap[0]], np.int64)
            o = (np.empty(cap[0], np.int32), np.empty(cap[0], np.int32), np.empty(cap[0]),
                 np.empty(cap[0]))
            nout = np.zeros(1, np.int64)
            hm.merge_cells(S, *a, *b, pout, *o, nout)
            k = int(nout[0])
            nxt.append((np.array([0, k], np.int64),) + tuple(x[:k] for x in o))
        if len(sets) % 2:
            nxt.append(sets[-1])
        sets = nxt
    return sets[0]


def _exact_sums(a, y, top, keys):
    """Exact (c, S₁, S₂) per fine key (label·N_BUCKETS + bucket) from Fractions."""
    out = {}
    bits = a.view(np.int64)
    for i in range(a.size):
        kb = int(kh._bucket_of(bits[i], top))
        k = int(y[i]) * kh.N_BUCKETS + kb
        a0, _ = kh._bucket_centre(kb, top)
        d = Fraction(float(a[i])) - Fraction(float(a0))
        c, s1, s2 = out.get(k, (0, Fraction(0), Fraction(0)))
        out[k] = (c + 1, s1 + d, s2 + d * d)
    assert set(out) == set(int(k) for k in keys)
    return out


@pytest.mark.parametrize("split", ["singletons", "random"])
def test_merged_cells_within_gamma_bounds(split):
    """Adversarial merge orders: the merged cells have the in-process keys and counts, and
    Ŝ₁, Ŝ₂ are within the γ_c bounds that model_value / model_slope charge."""
    rng = np.random.default_rng(7)
    n = 400
    a = rng.normal(size=n) * 1e-3 + 2e-4 * rng.standard_cauchy(size=n)
    a[:7] = 0.0
    a[7:12] = 1e-300                                   # centre bucket (48 binades below)
    y = rng.integers(0, 2, size=n).astype(np.int64)
    top = int(kh._top_exponent(a))
    if split == "singletons":
        bounds = np.arange(n + 1)
    else:
        bounds = np.unique(np.concatenate([[0, n], rng.integers(0, n, size=30)]))
    sets = [_cells(a[lo:hi], y[lo:hi], top, False, 1) for lo, hi in zip(bounds[:-1],
                                                                         bounds[1:])]
    ptr, key, cnt, s1, s2 = _merge_tree(sets, 1)
    acc = np.zeros((2 * kh.N_BUCKETS, 3))
    occ = np.empty(2 * kh.N_BUCKETS, np.int64)
    H = np.empty((2 * kh.N_BUCKETS, kh.N_COLS))
    nb = hm.load_binary(0, ptr[1], key, cnt, s1, s2, top, acc, occ, H)
    # the in-process histogram of the whole row: same cells and counts
    acc2 = np.zeros((2 * kh.N_BUCKETS, 3))
    occ2 = np.empty(2 * kh.N_BUCKETS, np.int64)
    H2 = np.empty((2 * kh.N_BUCKETS, kh.N_COLS))
    nb2 = kh.build_histogram(a, y, acc2, occ2, H2, np.empty(1, np.int64))
    assert nb == nb2
    assert sorted(occ[:nb].tolist()) == sorted(occ2[:nb2].tolist())
    ex = _exact_sums(a, y, top, occ[:nb])
    for j in range(nb):
        c, S1, S2 = ex[int(occ[j])]
        assert H[j, 3] == c
        assert abs(Fraction(float(H[j, 4])) - S1) <= Fraction(float(H[j, 6]))   # γ_c·c·h
        g = Fraction(float(hm.gamma(c + 1)))
        assert abs(Fraction(float(H[j, 5])) - S2) <= g * S2 + Fraction(1, 2 ** 1074)


def test_merged_bound_is_an_upper_bound():
    """U(t̂) from merged cells (one training point per part) bounds f(t̂) at 50 digits, and
    agrees with the in-process histogram bound up to reassociation."""
    rng = np.random.default_rng(8)
    n, q = 300, 0.2
    a = rng.normal(size=n) / n + 1.2 / n
    y = (rng.random(n) < 0.6).astype(np.int64)
    top = int(kh._top_exponent(a))
    sets = [_cells(a[i:i + 1], y[i:i + 1], top, False, 1) for i in range(n)]
    ptr, key, cnt, s1, s2 = _merge_tree(sets, 1)
    sums = np.zeros((1, 4))
    sq = np.zeros((1, 2))
    hm.part_stats(a[None, :], y, 2, sums, sq, np.empty(1), np.empty(1, np.int64))
    pred, ok, guess = np.empty(1, np.int64), np.empty(1, np.bool_), np.empty(1)
    hm.binary_decide(sums, sq, n, q, True, pred, ok, guess)
    assert ok[0]
    o = [np.empty(1), np.empty(1), np.empty(1), np.empty(1), np.empty(1, np.int64)]
    hm.eval_binary(ptr, key, cnt, s1, s2, np.array([top]), np.array([0]), pred, guess, q,
                   50, *o)
    U, _, t, low, _ = (v[0] for v in o)
    truth = binary_eval_mp(a, y, t, q)[0]
    assert U >= truth
    assert low <= truth
    ref = [np.empty(1), np.empty(1), np.empty(1), np.empty(1), np.empty(1, np.int64)]
    side, degen, amb, g2, done = (np.empty(1, np.int64), np.empty(1, np.int64),
                                  np.empty(1, np.bool_), np.empty(1), np.zeros(1, np.bool_))
    kh.hist_binary_driver(a[None, :], y, q, 50, np.array([0]), True, side, degen, amb, g2, done,
                          *ref)
    assert side[0] == (1 if pred[0] == 1 else -1)
    assert U == pytest.approx(ref[0][0], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("K", [None, 3])
@pytest.mark.parametrize("L", [1, 4, 1000])
def test_exact_walk_on_merged_candidates(K, L):
    """k_lo ≤ k_true ≤ k_hi from three parts' candidates (L per group) merged in a tree, for
    random and dyadic (exact-tie) rows; with every move sent (L = 1000) the walk is complete
    and exact except at ties, and "more" only where a longer list could change the answer."""
    from numbaflip import _partitioned as P
    from numbaflip.exact import _exact_k, _q_float_bounds
    from fractions import Fraction as F
    rng = np.random.default_rng(20 + L)
    n, m = 60, 12
    nlab = 2 if K is None else K
    y = rng.integers(0, nlab, size=n).astype(np.int64)
    A = rng.normal(size=(m, n)) / n + (0.6 if K is None else 0.0) / n
    A[:3] = rng.integers(-4, 5, size=(3, n)) / 64.0           # dyadic: exact ties possible
    q = "0.1"
    cuts = [0, 17, 40, n]
    sums = np.zeros((m, 2 * nlab))
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        part = np.zeros((m, 2 * nlab))
        hm.part_stats(np.ascontiguousarray(A[:, lo:hi]), y[lo:hi], nlab, part,
                      np.zeros((m, nlab)), np.empty(m), np.empty(m, np.int64))
        sums += part
    pred = np.empty(m, np.int64)
    ok = np.empty(m, np.bool_)
    if K is None:
        hm.binary_decide(sums, np.ones((m, 2)), n, 0.1, False, pred, ok, np.empty(m))
    else:
        hm.mc_decide(sums, n, K, pred, ok)
    rows = np.flatnonzero(ok)
    cands = [P._candidates(np.ascontiguousarray(A[:, lo:hi]), y[lo:hi], pred, ok,
                           K is not None, L) for lo, hi in zip(cuts[:-1], cuts[1:])]
    cand = P._merge_cand(P._merge_cand(cands[0], cands[1], L), cands[2], L)
    klo, khi = np.zeros(m, np.int64), np.zeros(m, np.int64)
    more = np.zeros(m, np.bool_)
    q_lo, q_hi = _q_float_bounds(F(q))
    P._exact_walk(sums, n, K is not None, nlab, pred, rows, q_lo, q_hi, cand, klo, khi, more)
    k_true, _, _ = _exact_k(A[rows], y, pred[rows], F(q) if K is None else F(0), K)
    assert rows.size >= m - 3
    assert np.all(klo[rows] <= k_true) and np.all(k_true <= khi[rows])
    decided = klo[rows] == khi[rows]
    assert np.all(~more[rows][decided])
    if L == 1000:
        assert not more[rows].any()
        assert decided[3:].all()          # random rows: no tie within the enclosure


def test_decisions_inside_the_band_are_not_settled():
    """Zero case (E = 0), limit (Σα₊ = 1/2 exactly), unbounded (Σα₊ < 1/2) and K-class ties
    are never settled by the merged sums."""
    y = np.array([0, 1, 0, 1], np.int64)
    rows = np.array([[0.25, 0.25, -0.5, 0.0],       # pred 0 with Σα₊ = 1/2: limit
                     [0.1, 0.1, -0.3, 0.0],          # Σα₊ < 1/2: unbounded
                     [0.0, 0.5, 0.0, 0.0],           # E = (1-2q)/2 + q/2 - 1/2 = 0 at any q
                     [0.5, 1.0, 0.3, 0.2]])          # clearly interior, prediction 1
    sums = np.zeros((4, 4))
    sq = np.zeros((4, 2))
    hm.part_stats(rows, y, 2, sums, sq, np.empty(4), np.empty(4, np.int64))
    pred, ok, guess = np.empty(4, np.int64), np.empty(4, np.bool_), np.empty(4)
    hm.binary_decide(sums, sq, 4, 0.25, True, pred, ok, guess)
    assert ok.tolist() == [False, False, False, True] and pred[3] == 1
    ys = np.array([0, 1, 2, 0], np.int64)
    A = np.array([[0.5, 0.5, 0.1, 0.0], [0.5, 0.3, 0.1, 0.1]])
    sums = np.zeros((2, 6))
    hm.part_stats(A, ys, 3, sums, np.zeros((2, 3)), np.empty(2), np.empty(2, np.int64))
    pred, ok = np.empty(2, np.int64), np.empty(2, np.bool_)
    hm.mc_decide(sums, 4, 3, pred, ok)
    assert ok.tolist() == [False, True] and pred[1] == 0


# --------------------------------------------------------------------------------------------
# input errors, before anything is submitted
# --------------------------------------------------------------------------------------------

def test_bad_inputs_before_submission(no_submit):  # noqa: F811
    X, y, T = _data(16, n=120, m=10)
    Xd = da.from_array(X, chunks=(40, 5))
    with pytest.raises(NumbaflipInputError, match="chunked by rows as .* but y_train.*rechunk"):
        nd.certify(no_submit, Xd, da.from_array(y, chunks=60), T, q=0.1, partition="train")
    unknown = Xd[da.from_array(X[:, 0]) > -10]
    with pytest.raises(NumbaflipInputError, match="X_train is a dask array with unknown chunk"):
        nd.certify(no_submit, unknown, y, T, q=0.1, partition="train")
    yu = da.from_array(y, chunks=40)
    yu = yu[yu >= 0]
    with pytest.raises(NumbaflipInputError, match="y_train is a dask array with unknown chunk"):
        nd.certify(no_submit, Xd, yu, T, q=0.1, partition="train")
    with pytest.raises(NumbaflipInputError, match="partition must be"):
        nd.certify(no_submit, Xd, y, T, q=0.1, partition="rows")
    with pytest.raises(NumbaflipInputError, match="ridge learner only.*partition='test'"):
        nd.certify(no_submit, Xd, y, T, q=0.1, partition="train",
                   learner=numbaflip.learners.KNN(k=3))
    with pytest.raises(NumbaflipInputError, match="exact_candidates"):
        nd.certify(no_submit, Xd, y, T, q=0.1, partition="train", exact_candidates=0)
    with pytest.raises(NumbaflipInputError, match="y_train has 119 labels"):
        nd.certify(no_submit, X, y[:-1], T, q=0.1, partition="train")
    with pytest.raises(NumbaflipInputError, match="X_test has 4 columns"):
        nd.certify(no_submit, Xd, y, T[:, :4], q=0.1, partition="train")
    with pytest.raises(NumbaflipInputError, match="q"):
        nd.certify(no_submit, Xd, y, T, q=0.7, partition="train")
    with pytest.raises(NumbaflipInputError, match="lam"):
        nd.certify(no_submit, Xd, y, T, q=0.1, lam=-1.0, partition="train")
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(NumbaflipInputError, match="non-finite"):
        nd.certify(no_submit, bad, y, T, q=0.1, partition="train")


def test_auto_keeps_small_dask_training_sets_on_test_partitions():
    from numbaflip._partitioned import wants_train
    from numbaflip.distributed import _is_dask
    X = da.zeros((1000, 4), chunks=(100, 4))
    assert not wants_train("auto", X, _is_dask)          # 32 kB: test partitions
    assert wants_train("train", np.zeros((3, 2)), _is_dask)
    big = da.zeros((1 << 24, 4), chunks=(1 << 22, 4))     # 512 MB in 4 row chunks
    assert wants_train("auto", big, _is_dask)
    assert not wants_train("auto", da.zeros((1 << 24, 4), chunks=(-1, 4)), _is_dask)


def test_lost_worker(client, cluster):
    """A worker killed while the parts' tasks run: the parts live in the graph (computed, not
    scattered), so the scheduler recomputes what was lost and the result is complete and the
    same as without the loss."""
    import threading
    import time
    X, y, T = _data(18, n=900, m=400)
    kw = dict(q=0.1, bounds=("kl", "exact"))
    ref = _train(client, X, y, T, 300, rows_per_task=40, **kw)
    killed = {}

    def killer():
        sched = cluster.scheduler
        deadline = time.time() + 60
        while time.time() < deadline:
            done = [ts for k, ts in list(sched.tasks.items())
                    if "_part_alpha" in str(k) and ts.state == "memory"]
            busy = [ws.address for ws in list(sched.workers.values()) if ws.processing]
            if len(done) >= 4 and busy:
                killed["addr"] = busy[0]
                try:
                    client.run(os._exit, 1, workers=[busy[0]])
                except Exception:
                    pass
                return
            time.sleep(0.005)

    th = threading.Thread(target=killer, daemon=True)
    th.start()
    res = _train(client, X, y, T, 300, rows_per_task=40, **kw)
    th.join(5)
    assert "addr" in killed, "no worker was killed mid-run"
    for f in ("prediction", "log_p_wrong", "status"):
        np.testing.assert_array_equal(getattr(ref, f), getattr(res, f))
    for b in ref.radius:
        np.testing.assert_array_equal(ref.radius[b], res.radius[b])
    client.wait_for_workers(2, timeout=60)


def test_boundary_check_can_fail():
    """_boundary_only rejects a radius that differs away from a boundary (the comparison used
    above is not vacuous)."""
    import copy
    X, y, T = _data(19, n=200, m=30)
    ref = numbaflip.certify(X, y, T, q=0.1, bounds=("kl",))
    bad = copy.deepcopy(ref)
    j = int(np.argmax(ref.radius["kl"] >= 0))
    bad.radius["kl"][j] += 1
    with pytest.raises(AssertionError):
        _boundary_only(ref, bad, "kl")
    assert _boundary_only(ref, copy.deepcopy(ref), "kl").size == 0
    ref = numbaflip.certify(X, y, T, q=0.1, bounds=("tight",))
    bad = copy.deepcopy(ref)
    bad.radius["tight"][j] += 1
    with pytest.raises(AssertionError):
        _boundary_only(ref, bad, "tight")
