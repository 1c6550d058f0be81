"""numbaflip.learners: Ridge, KNN, RBFRidge through certify(learner=...) and attack(learner=...).

kNN α against a brute-force neighbour search (ties by index), the exact kNN radius against an
enumeration of all label changes, kl/tight never above brute force, Ridge(lam) bit-identical to
certify(lam=...), RBFRidge reproducible and label-free, the CLI round trip, bad input.
"""
import json

import numpy as np
import pytest

import numbaflip as nf
from numbaflip import config
from numbaflip.cli import main
from numbaflip.learners import KNN, RBFRidge, Ridge
from naive import brute_force_binary, brute_force_multiclass
from naive_exact import brute_radius


def _alpha(learner, X, T, q=0.1):
    fitted = learner.fit(X, q)
    parts = list(fitted.blocks(T))
    assert [s for s, _ in parts] == list(np.cumsum([0] + [a.shape[0] for _, a in parts])[:-1])
    return np.vstack([a for _, a in parts])


def _brute_neighbours(X, h, k):
    d = ((X - h) ** 2).sum(axis=1)
    return np.lexsort((np.arange(X.shape[0]), d))[:k]


# ------------------------------------------------------------------------------ kNN weights
@pytest.mark.parametrize("ties", [False, True])
def test_knn_alpha_rows_match_brute_force_neighbours(ties):
    rng = np.random.default_rng(3 + ties)
    if ties:   # small integer grid with duplicates: many exactly tied distances
        X = rng.integers(-2, 3, size=(40, 2)).astype(float)
        T = rng.integers(-2, 3, size=(25, 2)).astype(float)
    else:
        X = rng.normal(size=(60, 5))
        T = rng.normal(size=(25, 5))
    config.config.block_size = 7     # several blocks, the last one short
    try:
        for k in (1, 2, 3, 8, X.shape[0]):
            A = _alpha(KNN(k), X, T)
            assert A.shape == (T.shape[0], X.shape[0])
            w = A[A != 0]
            assert np.all(w == w[0]) and w[0] >= 1.0 / k
            for j in range(T.shape[0]):
                nz = np.flatnonzero(A[j])
                assert nz.size == k
                assert sorted(nz.tolist()) == sorted(_brute_neighbours(X, T[j], k).tolist())
                assert abs(A[j].sum() - 1.0) <= 4 * k * 2.0 ** -53
    finally:
        config.reset()


def test_knn_uniform_weight_reaches_one_exactly():
    from fractions import Fraction
    from numbaflip.learners import _uniform_weight
    for k in range(1, 200):
        w = _uniform_weight(k)
        assert Fraction(w) * k >= 1 and Fraction(w) < Fraction(1, k) + Fraction(1, 2 ** 50)


def test_knn_distance_weights():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(30, 3))
    T = np.vstack([rng.normal(size=(6, 3)), X[4:5]])   # last test point equals X[4]
    A = _alpha(KNN(4, weights="distance"), X, T)
    assert np.allclose(A.sum(axis=1), 1.0, atol=1e-14)
    for j in range(6):
        nb = _brute_neighbours(X, T[j], 4)
        assert np.count_nonzero(A[j]) == 4
        inv = 1.0 / np.sqrt(((X[nb] - T[j]) ** 2).sum(axis=1))
        assert np.allclose(A[j, nb], inv / inv.sum(), rtol=1e-12)
    assert A[6, 4] == 1.0 and np.count_nonzero(A[6]) == 1   # distance 0 takes all the weight


def test_knn_votes_and_tie_rules():
    X = np.array([[0.0], [1.0], [10.0], [11.0], [12.0]])
    T = np.array([[0.4], [11.4]])
    res = nf.certify(X, [0, 1, 0, 1, 2], T, q=0, bounds=("exact",), learner=KNN(2),
                     num_classes=3)
    assert res.prediction.tolist() == [0, 1]   # K classes: a tie goes to the lowest class
    res = nf.certify(X, [0, 1, 0, 1, 1], T, q=0, bounds=("exact",), learner=KNN(2))
    assert res.prediction.tolist() == [1, 1]   # binary, even k: a 1–1 tie goes to class 1
    res = nf.certify(X, [0, 1, 0, 1, 1], T, q="0.2", bounds=("exact", "kl"), learner=KNN(2))
    assert res.prediction.tolist() == [1, 1]   # the deployed rule with q > 0: same vote
    # tie in distance at the k-th neighbour: the lower training index wins
    A = _alpha(KNN(1), np.array([[1.0], [-1.0]]), np.array([[0.0]]))
    assert A.tolist() == [[1.0, 0.0]]


# -------------------------------------------------------------- soundness against brute force
def _tiny(seed, n, K, d=2, m=4, ints=False):
    rng = np.random.default_rng(seed)
    if ints:
        X = rng.integers(-2, 3, size=(n, d)).astype(float)
        T = rng.integers(-2, 3, size=(m, d)).astype(float)
    else:
        X = rng.normal(size=(n, d))
        T = rng.normal(size=(m, d))
    y = rng.integers(0, K, size=n)
    y[:K] = np.arange(K)
    return X, y, T


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("K", [2, 3])
def test_knn_exact_radius_equals_brute_force(seed, K):
    n = 8 if K == 2 else 6
    X, y, T = _tiny(seed, n, K, ints=seed % 2 == 1)
    num_classes = None if K == 2 else 3
    for q in (["0", "0.1"] if K == 2 else ["0"]):
        for k in range(1, n + 1):
            res = nf.certify(X, y, T, q=q, bounds=("exact",), learner=KNN(k),
                             num_classes=num_classes)
            A = _alpha(KNN(k), X, T)
            for j in range(T.shape[0]):
                p0, r = brute_radius(A[j], y, q=float(q), num_classes=num_classes)
                assert res.prediction_index[j] == p0, (seed, k, j)
                assert res.radius["exact"][j] == r, (seed, q, k, j)
                if K == 2:   # the rule is the majority vote, ties to class 1
                    votes = y[np.flatnonzero(A[j])].sum()
                    assert p0 == int(2 * votes >= k)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("K", [2, 3])
def test_knn_and_rbf_smoothed_certificates_never_above_brute_force(seed, K):
    n = 7 if K == 2 else 5
    X, y, T = _tiny(100 + seed, n, K, ints=seed % 2 == 0)
    num_classes = None if K == 2 else 3
    q = (["0.05", "0.02"] if K == 2 else ["0.01", "0.02"])[seed % 2]
    learners = [KNN(k) for k in (1, 2, 3, n)] + [
        KNN(3, weights="distance"), RBFRidge(gamma=0.5, lam=0.05, n_components=64, seed=seed)]
    certified = 0
    for lr in learners:
        res = nf.certify(X, y, T, q=q, bounds=("kl", "tight"), learner=lr,
                         num_classes=num_classes)
        A = _alpha(lr, X, T, float(q))
        for j in range(T.shape[0]):
            pred = int(res.prediction_index[j])
            if K == 2:
                _, r = brute_force_binary(A[j], y, float(q), pred)
            else:
                _, r = brute_force_multiclass(A[j], y, float(q), K, pred)
            for b in ("kl", "tight"):
                assert res.radius[b][j] <= r, (lr, j, b)
            certified += res.radius["tight"][j] >= 0
    assert certified > 0


# -------------------------------------------------------------------------------- Ridge
@pytest.mark.parametrize("lam", ["auto", 0.3])
@pytest.mark.parametrize("num_classes", [None, 3])
def test_ridge_learner_is_bit_identical_to_lam(lam, num_classes):
    rng = np.random.default_rng(11)
    X = rng.normal(size=(80, 4))
    y = rng.integers(0, 2 if num_classes is None else 3, size=80)
    T = rng.normal(size=(12, 4))
    kw = dict(q="0.1", bounds=("kl", "tight", "exact"), num_classes=num_classes)
    a = nf.certify(X, y, T, lam=lam, **kw)
    b = nf.certify(X, y, T, learner=Ridge(lam=lam), **kw)
    for bound in a.radius:
        assert np.array_equal(a.radius[bound], b.radius[bound])
    assert np.array_equal(a.log_p_wrong, b.log_p_wrong)
    assert np.array_equal(a.prediction, b.prediction)
    assert a.lam == b.lam and a.metadata == b.metadata
    assert a.metadata["learner"] == "ridge"
    c = nf.certify(X, y, T, lam=lam, fit_intercept=False, **kw)
    d = nf.certify(X, y, T, learner=Ridge(lam=lam, fit_intercept=False), **kw)
    assert np.array_equal(c.log_p_wrong, d.log_p_wrong) and c.metadata == d.metadata
    e = nf.attack(X, y, T, q="0.1", lam=lam, num_classes=num_classes)
    f = nf.attack(X, y, T, q="0.1", learner=Ridge(lam=lam), num_classes=num_classes)
    assert np.array_equal(e.size, f.size) and e.info["lam"] == f.info["lam"]


# -------------------------------------------------------------------------------- RBFRidge
def test_rbf_reproducible_and_label_free():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 3))
    y = (X[:, 0] > 0).astype(int)
    T = rng.normal(size=(9, 3))
    lr = RBFRidge(gamma=0.7, lam=0.1, n_components=128, seed=4)
    A1 = _alpha(lr, X, T)
    A2 = _alpha(RBFRidge(gamma=0.7, lam=0.1, n_components=128, seed=4), X, T)
    assert np.array_equal(A1, A2)
    assert not np.array_equal(A1, _alpha(RBFRidge(0.7, 0.1, 128, seed=5), X, T))
    # certify with any labels runs on the same α: permuting the labels changes nothing but y
    yp = rng.permutation(y)
    for labels in (y, yp):
        r1 = nf.certify(X, labels, T, q="0.1", bounds=("kl", "exact"), learner=lr)
        r2 = nf.certify_alpha(A1, labels, q="0.1", bounds=("kl", "exact"))
        assert np.array_equal(r1.log_p_wrong, r2.log_p_wrong)
        assert np.array_equal(r1.radius["exact"], r2.radius["exact"])
    meta = r1.metadata
    assert meta["learner"] == "rbf_ridge" and meta["lam"] == 0.1
    assert meta["learner_params"]["seed"] == 4 and meta["learner_params"]["n_components"] == 128
    # "auto" λ and "scale" γ resolve label-free and are recorded
    r = nf.certify(X, y, T, q="0.1", learner=RBFRidge(n_components=32))
    assert r.metadata["learner_params"]["gamma"] == pytest.approx(1.0 / (3 * X.var()))
    assert r.metadata["lam"] == r.metadata["learner_params"]["lam"] > 0


def test_rbf_approximates_the_rbf_kernel():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, 2))
    gamma, feat = RBFRidge(gamma=0.5, lam=1.0, n_components=20000, seed=1).feature_map(X)
    Z = feat(X)
    assert gamma == 0.5
    K = np.exp(-0.5 * ((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=2))
    assert np.abs(Z @ Z.T - K).max() < 0.05


# -------------------------------------------------------------------------------- attack
def test_attack_with_knn_is_minimal():
    X, y, T = _tiny(7, 8, 2)
    res = nf.attack(X, y, T, q=0, learner=KNN(3))
    cert = nf.certify(X, y, T, q=0, bounds=("exact",), learner=KNN(3))
    assert np.array_equal(res.radius_upper_bound(), cert.radius["exact"])
    assert res.info["learner"] == "knn" and res.info["lam"] is None
    for i in range(len(res)):
        if res.size[i] > 0:
            y2 = res.attacked_labels(y, i)
            p2 = nf.certify(X, y2, T[i:i + 1], q=0, bounds=("exact",), learner=KNN(3))
            assert p2.prediction[0] != res.prediction[i]


# -------------------------------------------------------------------------------- custom
class _Custom:
    name = "custom"
    params = {}

    def __init__(self, make):
        self.make = make

    def fit(self, X_train, q):
        outer = self

        class F:
            def blocks(self, H):
                yield from outer.make(X_train.shape[0], H.shape[0])
        return F()


def test_custom_learner_object_is_accepted():
    X, y, T = _tiny(1, 6, 2, m=3)
    A = np.full((3, 6), 1.0 / 6)
    res = nf.certify(X, y, T, q="0.1", bounds=("kl", "exact"),
                     learner=_Custom(lambda n, m: [(0, A[:2]), (2, A[2:].astype(np.float32))]))
    ref = nf.certify_alpha(A, y, q="0.1", bounds=("kl", "exact"))
    assert np.array_equal(res.radius["exact"], ref.radius["exact"])
    assert res.metadata["learner"] == "custom"


@pytest.mark.parametrize("make, words", [
    (lambda n, m: [(0, np.zeros((m, n + 1)))], "shape"),
    (lambda n, m: [(0, np.zeros((m, n, 1)))], "shape"),
    (lambda n, m: [(0, np.full((m, n), np.nan))], "non-finite"),
    (lambda n, m: [(0, np.full((m, n), np.inf))], "non-finite"),
    (lambda n, m: [(1, np.zeros((m, n)))], "starts at test row 1"),
    (lambda n, m: [(0, np.zeros((m - 1, n)))], "covered 2 of the 3"),
    (lambda n, m: [np.zeros((m, n))], "pairs"),
    (lambda n, m: [(0, np.zeros((m, n), dtype=complex))], "dtype complex"),
])
def test_bad_learner_blocks(make, words):
    X, y, T = _tiny(1, 6, 2, m=3)
    with pytest.raises(nf.NumbaflipInputError, match=words):
        nf.certify(X, y, T, q="0.1", learner=_Custom(make))
    with pytest.raises(nf.NumbaflipInputError, match=words):
        nf.attack(X, y, T, learner=_Custom(make))


# -------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("make, words", [
    (lambda: KNN(0), r"KNN\(k=0\).*≥ 1"),
    (lambda: KNN(-3), r"KNN\(k=-3\)"),
    (lambda: KNN(2.5), r"KNN\(k=2.5\)"),
    (lambda: KNN("3"), r"KNN\(k='3'\)"),
    (lambda: KNN(True), r"KNN\(k=True\)"),
    (lambda: KNN(3, weights="gauss"), r"weights"),
    (lambda: RBFRidge(gamma=0), r"RBFRidge\(gamma=0\).*> 0"),
    (lambda: RBFRidge(gamma=-1.0), r"gamma=-1.0"),
    (lambda: RBFRidge(gamma=float("nan")), r"gamma=nan"),
    (lambda: RBFRidge(gamma="wide"), r"gamma='wide'"),
    (lambda: RBFRidge(1.0, n_components=0), r"n_components=0.*≥ 1"),
    (lambda: RBFRidge(1.0, n_components=2.0), r"n_components=2.0"),
    (lambda: RBFRidge(1.0, seed=-1), r"seed=-1"),
    (lambda: RBFRidge(1.0, lam=-1.0), r"RBFRidge: lam = -1.0"),
    (lambda: Ridge(lam=-1.0), r"Ridge: lam = -1.0"),
    (lambda: Ridge(lam="big"), r"Ridge: lam must be"),
])
def test_bad_learner_parameters(make, words):
    with pytest.raises(nf.NumbaflipInputError, match=words):
        make()


def test_bad_learner_use():
    X, y, T = _tiny(1, 6, 2, m=3)
    with pytest.raises(nf.NumbaflipInputError, match=r"KNN\(k=7\) needs at least k training "
                                                     r"points, but there are n = 6; use k ≤ 6"):
        nf.certify(X, y, T, q="0.1", learner=KNN(7))
    with pytest.raises(nf.NumbaflipInputError, match=r"KNN\(k=7\)"):
        nf.attack(X, y, T, learner=KNN(7))
    for bad in ("knn", KNN, object(), 3, None.__class__):
        with pytest.raises(nf.NumbaflipInputError, match="is not a learner"):
            nf.certify(X, y, T, q="0.1", learner=bad)
    with pytest.raises(nf.NumbaflipInputError, match=r"lam=0.5 and learner='knn' were both"):
        nf.certify(X, y, T, q="0.1", lam=0.5, learner=KNN(3))
    with pytest.raises(nf.NumbaflipInputError, match=r"lam=0.5 and learner='rbf_ridge'"):
        nf.attack(X, y, T, lam=0.5, learner=RBFRidge(1.0))
    with pytest.raises(nf.NumbaflipInputError, match=r"fit_intercept=False and learner="):
        nf.certify(X, y, T, q="0.1", fit_intercept=False, learner=Ridge())


# -------------------------------------------------------------------------------- CLI
@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(8)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    T = rng.normal(size=(10, 3))
    yt = (T[:, 0] > 0).astype(int)
    np.save(tmp_path / "train.npy", np.column_stack([X, y]))
    np.save(tmp_path / "test.npy", np.column_stack([T, yt]))
    return tmp_path, X, y, T


def _cli(d, *extra):
    return main(["certify", "--train", str(d / "train.npy"), "--test", str(d / "test.npy"),
                 "--q", "0.1", "--bounds", "kl,exact", "--no-progress", *extra])


def test_cli_knn_round_trip(files, capsys):
    d, X, y, T = files
    assert _cli(d, "--learner", "knn", "--k", "3", "--out", str(d / "o.json")) == 0
    err = capsys.readouterr().err
    assert "kNN, k = 3" in err
    doc = json.loads((d / "o.json").read_text())
    assert doc["metadata"]["learner"] == "knn"
    assert doc["metadata"]["learner_params"] == {"k": 3, "weights": "uniform"}
    ref = nf.certify(X, y, T, q="0.1", bounds=("kl", "exact"), learner=KNN(3))
    assert [p["radius_exact"] for p in doc["points"]] == ref.radius["exact"].tolist()
    assert [p["radius_kl"] for p in doc["points"]] == ref.radius["kl"].tolist()


def test_cli_rbf_and_ridge(files, capsys):
    d, X, y, T = files
    assert _cli(d, "--learner", "rbf", "--gamma", "0.5", "--components", "40", "--lam", "0.2",
                "--seed", "3", "--out", str(d / "r.json")) == 0
    doc = json.loads((d / "r.json").read_text())
    p = doc["metadata"]["learner_params"]
    assert doc["metadata"]["learner"] == "rbf_ridge" and doc["metadata"]["lam"] == 0.2
    assert (p["gamma"], p["n_components"], p["seed"]) == (0.5, 40, 3)
    ref = nf.certify(X, y, T, q="0.1", bounds=("kl", "exact"),
                     learner=RBFRidge(0.5, 0.2, 40, seed=3))
    assert [q["radius_kl"] for q in doc["points"]] == ref.radius["kl"].tolist()
    assert _cli(d, "--lam", "0.3", "--out", str(d / "g.json")) == 0
    doc = json.loads((d / "g.json").read_text())
    assert doc["metadata"]["learner"] == "ridge" and doc["metadata"]["lam"] == 0.3


@pytest.mark.parametrize("extra, words", [
    (["--learner", "knn", "--k", "0"], "--k 0 is invalid"),
    (["--learner", "knn", "--k", "41"], "--k 41 needs at least k training points, but there "
                                        "are n = 40; use --k ≤ 40"),
    (["--learner", "rbf", "--gamma", "0"], "--gamma 0.0 is invalid"),
    (["--learner", "rbf", "--gamma", "abc"], "--gamma 'abc' is not a number"),
    (["--learner", "rbf", "--components", "0"], "--components 0 is invalid"),
    (["--learner", "knn", "--lam", "0.5"], "--lam does not apply to --learner knn"),
    (["--learner", "knn", "--no-intercept"], "--no-intercept does not apply"),
    (["--k", "3"], "--k does not apply to --learner ridge; it is an option of --learner knn"),
    (["--learner", "knn", "--gamma", "1"], "--gamma does not apply to --learner knn"),
])
def test_cli_bad_learner_options(files, capsys, extra, words):
    d, *_ = files
    assert _cli(d, *extra, "--out", str(d / "bad.csv")) == 2
    err = capsys.readouterr().err
    assert err.startswith("numbaflip: error: ") and words in err, err
    assert err.count("\n") == 1 and not (d / "bad.csv").exists()
