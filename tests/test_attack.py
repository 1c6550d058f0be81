"""Attacks really change the prediction (recomputed from scratch, exactly), and the exact attack
is minimal (size == exact radius + 1 == brute-force minimum)."""
import numpy as np
import pytest

from numbaflip.attack import AttackResult, attack, attack_alpha
from numbaflip.errors import NumbaflipInputError
from numbaflip.exact import exact_radius

from naive_exact import brute_min_changes, rule


def _check_exact_attack(res, A, y, q, K):
    rad = exact_radius(A, y, res.prediction, q=q, num_classes=K)
    n = A.shape[1]
    for i in range(A.shape[0]):
        assert res.prediction[i] == rule(A[i], y, q=q, num_classes=K)
        if res.size[i] == -1:
            assert rad[i] == n
            assert res.indices[i].size == 0 and res.new_labels[i].size == 0
            continue
        assert res.size[i] == rad[i] + 1
        idx, new = res.indices[i], res.new_labels[i]
        assert idx.size == res.size[i] == new.size
        assert np.unique(idx).size == idx.size          # each label changed once
        assert np.all(new != y[idx])                    # a real change
        y2 = res.attacked_labels(y, i)
        assert rule(A[i], y2, q=q, num_classes=K) != res.prediction[i]


@pytest.mark.parametrize("K", [None, 3])
def test_exact_attack_tiny_brute_force(K):
    rng = np.random.default_rng(11 if K is None else 12)
    for t in range(60):
        n = int(rng.integers(1, 8))
        A = (rng.integers(-4, 5, size=(3, n)) / 8.0) if t % 2 else rng.normal(size=(3, n)) * 0.4
        y = rng.integers(0, 2 if K is None else K, n)
        q = [0.0, 0.25, 0.1][t % 3] if K is None else 0.0
        res = attack_alpha(A, y, q=q, num_classes=K)
        _check_exact_attack(res, A, y, q, K)
        for i in range(3):
            _, kmin = brute_min_changes(A[i], y, q=q, num_classes=K)
            assert res.size[i] == (-1 if kmin is None else kmin)


@pytest.mark.parametrize("K", [None, 5])
def test_exact_attack_larger(K):
    rng = np.random.default_rng(21)
    n = 300
    A = rng.normal(size=(15, n)) * 0.01
    y = rng.integers(0, 2 if K is None else K, n)
    res = attack_alpha(A, y, q=0.2, num_classes=K)
    assert isinstance(res, AttackResult) and len(res) == 15
    _check_exact_attack(res, A, y, 0.2, K)


def test_attack_from_features():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 4))
    y = (X[:, 0] + 0.3 * rng.normal(size=80) > 0).astype(int)
    H = rng.normal(size=(10, 4))
    res = attack(X, y, H, lam=1.0)
    from numbaflip.alpha import RidgeAlpha
    A = RidgeAlpha(X, 1.0).alpha(H)
    _check_exact_attack(res, A, y, 0.0, None)
    assert res.info["lam"] == 1.0


def test_smoothed_attack_with_fake_oracle():
    """Search logic: the oracle 'certifies' the flipped class once the margin exceeds 0.05."""
    rng = np.random.default_rng(4)
    n = 200
    A = rng.normal(size=(8, n)) * 0.01
    y = rng.integers(0, 2, n)
    q = 0.2

    def margin(a, y2):
        return (1 - 2 * q) * float(a @ y2) + q * float(a.sum()) - 0.5

    def oracle(a, y2):
        d = margin(a, y2)
        return (1 if d >= 0 else 0), abs(d) > 0.05

    res = attack_alpha(A, y, q=q, kind="smoothed", _oracle=oracle)
    dep = res.info["deployed_size"]
    ex = attack_alpha(A, y, q=q)
    assert np.array_equal(dep, ex.size)
    for i in range(8):
        if res.size[i] == -1:
            continue
        assert res.size[i] >= dep[i]
        y2 = res.attacked_labels(y, i)
        p, cert = oracle(A[i], y2)
        assert p != res.prediction[i] and cert
        # minimal along the greedy order: one flip fewer is not certified the other way
        k = res.size[i] - 1
        y3 = y.copy()
        y3[res.indices[i][:k]] = res.new_labels[i][:k]
        p3, c3 = oracle(A[i], y3)
        assert not (p3 != res.prediction[i] and c3)


def test_smoothed_attack_with_certify():
    certify = pytest.importorskip("numbaflip.certify")
    rng = np.random.default_rng(8)
    n = 150
    A = rng.normal(size=(4, n)) * 0.02
    y = rng.integers(0, 2, n)
    res = attack_alpha(A, y, q=0.2, kind="smoothed")
    cert = certify.certify_alpha(A, y, q=0.2, bounds=("kl",))
    assert np.array_equal(res.prediction, cert.prediction)
    for i in range(4):
        if res.size[i] == -1:
            continue
        # sound upper bound: the certified radius is below the attack size
        assert cert.radius["kl"][i] < res.size[i]
        y2 = res.attacked_labels(y, i)
        c2 = certify.certify_alpha(A[i:i + 1], y2, q=0.2, bounds=("kl",))
        assert c2.prediction[0] != res.prediction[i] and c2.radius["kl"][0] >= 0


def test_attack_validation():
    A = np.ones((2, 3)) * 0.1
    y = np.array([0, 1, 1])
    with pytest.raises(NumbaflipInputError, match="kind"):
        attack_alpha(A, y, kind="bogus")
    with pytest.raises(NumbaflipInputError, match="q > 0"):
        attack_alpha(A, y, kind="smoothed", q=0.0)
    with pytest.raises(NumbaflipInputError, match="q"):
        attack_alpha(A, y, q=0.6)
    with pytest.raises(NumbaflipInputError, match="columns"):
        attack(np.ones((3, 2)), y, np.ones((1, 3)))
    with pytest.raises(NumbaflipInputError, match="NaN"):
        attack_alpha(np.array([[np.nan, 0, 0]]), y)
