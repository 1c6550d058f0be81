"""Every bad input gets one NumbaflipInputError naming the problem and the fix."""
import numpy as np
import pytest

import numbaflip
from numbaflip import NumbaflipInputError


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    T = rng.normal(size=(5, 3))
    return X, y, T


def _err(match, fn, *args, **kw):
    with pytest.raises(NumbaflipInputError, match=match):
        fn(*args, **kw)


def test_nan_and_inf_features(data):
    X, y, T = data
    Xb = X.copy()
    Xb[3, 1] = np.nan
    _err("non-finite.*row 3, column 1", numbaflip.certify, Xb, y, T, q=0.1)
    Tb = T.copy()
    Tb[0, 0] = np.inf
    _err("X_test has 1 non-finite", numbaflip.certify, X, y, Tb, q=0.1)


def test_labels_not_integer_or_too_many(data):
    X, y, T = data
    _err("not a class label", numbaflip.certify, X, y + 0.5, T, q=0.1)
    y2 = y.copy()
    y2[0] = 2
    _err("3 distinct labels.*num_classes=K", numbaflip.certify, X, y2, T, q=0.1)
    y5 = np.arange(40) % 5 + 1                              # {1..5}: not 0..K-1, 5 > 3
    _err("5 distinct labels.*num_classes=3", numbaflip.certify, X, y5, T, q=0.1, num_classes=3)
    _err("3 distinct labels.*num_classes=5", numbaflip.certify, X, y5 % 3 + 7, T, q=0.1,
         num_classes=5)
    _err("mixes label types", numbaflip.certify, X, np.array([1, "a"] * 20, dtype=object), T,
         q=0.1)


def test_single_class_accepted_with_warning_by_certify_and_attack(data):
    X, y, T = data
    ones = np.ones_like(y)
    with pytest.warns(numbaflip.NumbaflipWarning, match="single class"):
        res = numbaflip.certify(X, ones, T, q=0.1, bounds=("kl", "exact"))
    with pytest.warns(numbaflip.NumbaflipWarning, match="single class"):
        att = numbaflip.attack(X, ones, T, q=0.1)
    assert np.array_equal(res.prediction, att.prediction)
    assert np.array_equal(res.radius["exact"], att.radius_upper_bound())
    _err("single label 'cat'", numbaflip.certify, X, np.array(["cat"] * 40), T, q=0.1)


@pytest.mark.parametrize("q", [0.0, -0.1, 0.5, 0.7, "abc", float("nan")])
def test_q_outside_binary(data, q):
    X, y, T = data
    with pytest.raises(NumbaflipInputError):
        numbaflip.certify(X, y, T, q=q)


def test_q_multiclass_range(data):
    X, y, T = data
    y3 = np.arange(40) % 3
    numbaflip.certify(X, y3, T, q=0.6, num_classes=3)        # allowed: < 2/3
    _err(r"outside \(0, 2/3\)", numbaflip.certify, X, y3, T, q=2 / 3 + 1e-9, num_classes=3)


def test_q_zero_needs_exact(data):
    X, y, T = data
    _err("bounds=\\('exact',\\)", numbaflip.certify, X, y, T, q=0, bounds=("kl",))


def test_shapes_and_empty(data):
    X, y, T = data
    _err("4 columns but X_train has 3", numbaflip.certify, X, y, np.ones((2, 4)), q=0.1)
    _err("39 labels but there are 40", numbaflip.certify, X, y[:-1], T, q=0.1)
    _err("empty", numbaflip.certify, X, y, np.ones((0, 3)), q=0.1)
    _err("empty", numbaflip.certify, np.ones((0, 3)), y[:0], T, q=0.1)
    _err("must be 2-D", numbaflip.certify, X, y, T[0], q=0.1)
    _err("one-dimensional", numbaflip.certify, X, np.stack([y, y], 1), T, q=0.1)
    with pytest.warns(numbaflip.NumbaflipWarning, match="column vector"):
        col = numbaflip.certify(X, y[:, None], T, q=0.1)
    assert np.array_equal(col.prediction, numbaflip.certify(X, y, T, q=0.1).prediction)
    _err("must be 2-D", numbaflip.certify_alpha, np.ones(3), y[:3], q=0.1)


def test_lambda(data):
    X, y, T = data
    _err("finite number ≥ 0", numbaflip.certify, X, y, T, q=0.1, lam=-1.0)
    _err("non-negative float or 'auto'", numbaflip.certify, X, y, T, q=0.1, lam="big")
    Xc = np.column_stack([X, X[:, 0]])                        # collinear, λ = 0
    _err("positive definite", numbaflip.certify, Xc, y, np.column_stack([T, T[:, 0]]),
         q=0.1, lam=0.0)


def test_bounds_and_options(data):
    X, y, T = data
    _err("unknown bound 'foo'", numbaflip.certify, X, y, T, q=0.1, bounds=("foo",))
    _err("bounds is empty", numbaflip.certify, X, y, T, q=0.1, bounds=())
    _err("num_classes must be an integer", numbaflip.certify, X, y, T, q=0.1, num_classes=1)
    _err("precision must be", numbaflip.certify, X, y, T, q=0.1, precision="quad")


def test_valid_call_result_types(data):
    X, y, T = data
    res = numbaflip.certify(X, y, T, q="0.1")
    assert res.prediction.dtype == np.int64 and res.prediction.shape == (5,)
    assert res.radius["kl"].dtype == np.int64
    assert res.log_p_wrong.dtype == np.float64
    assert np.all(res.radius["kl"] <= 40) and np.all(res.radius["kl"] >= -1)
    assert res.q == "0.1" and res.n == 40 and res.lam > 0
