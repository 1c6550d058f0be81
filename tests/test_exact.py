"""The exact certificate against brute force over all label vectors (tests/naive_exact.py)."""
import os
from fractions import Fraction

import numpy as np
import pytest

from numbaflip.errors import NumbaflipInputError
from numbaflip._problem import parse_q
from numbaflip.exact import exact_predict, exact_radius

from naive_exact import brute_radius, rule

FULL = os.environ.get("NUMBAFLIP_FULL_TESTS") == "1"


def _alpha(rng, kind, m, n):
    if kind == "dyadic":      # multiples of 1/8: exact ties, zeros, equal magnitudes
        return rng.integers(-4, 5, size=(m, n)) / 8.0
    if kind == "sparse":
        A = rng.normal(size=(m, n)) * 0.4
        A[rng.random((m, n)) < 0.4] = 0.0
        return A
    return rng.normal(size=(m, n)) * rng.choice([0.05, 0.3, 1.0])


def _problems(seed, count, num_classes, qs):
    rng = np.random.default_rng(seed)
    K = 2 if num_classes is None else num_classes
    nmax = 9 if num_classes is None else 7
    for t in range(count):
        n = int(rng.integers(1, nmax + 1))
        kind = ("dyadic", "sparse", "normal")[t % 3]
        A = _alpha(rng, kind, 4, n)
        y = rng.integers(0, K, size=n)
        yield A, y, qs[t % len(qs)]


BINARY_QS = [0.0, 0.25, 0.125, "0.375", 0.1, 0.3]


@pytest.mark.parametrize("seed", [0, 1])
def test_binary_matches_brute_force(seed):
    count = 600 if FULL else 120
    for A, y, q in _problems(seed, count, None, BINARY_QS):
        pred = exact_predict(A, y, q=q)
        rad = exact_radius(A, y, pred, q=q)
        for i in range(A.shape[0]):
            p0, rb = brute_radius(A[i], y, q=q)
            assert pred[i] == p0, (A[i], y, q)
            assert rad[i] <= rb, ("OVER-CERTIFIED", A[i], y, q, rad[i], rb)
            assert rad[i] == rb, (A[i], y, q, rad[i], rb)


@pytest.mark.parametrize("seed", [2, 3])
def test_three_classes_match_brute_force(seed):
    count = 300 if FULL else 60
    for A, y, q in _problems(seed, count, 3, [0.0, 0.2]):
        pred = exact_predict(A, y, q=q, num_classes=3)
        rad = exact_radius(A, y, pred, q=q, num_classes=3)
        for i in range(A.shape[0]):
            p0, rb = brute_radius(A[i], y, num_classes=3)
            assert pred[i] == p0, (A[i], y)
            assert rad[i] <= rb, ("OVER-CERTIFIED", A[i], y, rad[i], rb)
            assert rad[i] == rb, (A[i], y, rad[i], rb)


def test_exact_ties_binary():
    # s = 1/2 exactly: prediction 1, and one flip of the smallest helpful alpha breaks it.
    A = np.array([[0.25, 0.25, 0.125, -0.125, 0.0]])
    y = np.array([1, 1, 0, 1, 0])            # s = 0.25 + 0.25 - 0.125 = 0.375
    assert exact_predict(A, y)[0] == 0
    y2 = np.array([1, 1, 0, 0, 0])           # s = 0.5: tie, class 1
    assert exact_predict(A, y2)[0] == 1
    assert exact_radius(A, y2, [1])[0] == 0  # one flip (either 0.25) crosses
    _, rb = brute_radius(A[0], y2)
    assert rb == 0
    # q = 1/4: τ = (1/2 − Σα/4)/(1/2) = 1 − Σα/2 = 1 − 0.25 = 0.75
    y3 = np.array([1, 1, 1, 0, 1])           # s = 0.625 < 0.75
    assert exact_predict(A, y3, q=0.25)[0] == 0
    A4 = np.array([[0.5, 0.25, 0.0, 0.0, 0.0]])   # Σα = 0.75, τ = 1 − 0.375 = 0.625
    y4 = np.array([1, 0, 0, 0, 0])
    assert exact_predict(A4, np.array([0, 1, 1, 0, 0]), q=0.25)[0] == 0   # s = 0.25
    p = exact_predict(A4, np.array([1, 1, 0, 0, 0]), q=0.25)[0]           # s = 0.75 ≥ τ
    assert p == 1
    p0, rb = brute_radius(A4[0], y4, q=0.25)
    assert exact_predict(A4, y4, q=0.25)[0] == p0
    assert exact_radius(A4, y4, [p0], q=0.25)[0] == rb


def test_exact_ties_multiclass():
    # classes 0 and 1 tie: argmax is 0 (lowest index); any move that favours 1 changes it.
    A = np.array([[0.25, 0.25, 0.125, 0.0]])
    y = np.array([0, 1, 2, 2])
    assert exact_predict(A, y, num_classes=3)[0] == 0
    r = exact_radius(A, y, [0], num_classes=3)[0]
    _, rb = brute_radius(A[0], y, num_classes=3)
    assert r == rb == 0
    # a tie against a *higher*-index rival does not change the prediction
    y2 = np.array([1, 0, 2, 2])              # s0 = 0.25, s1 = 0.25 (c = 0 wins the tie)
    assert exact_radius(A, y2, [0], num_classes=3)[0] == brute_radius(A[0], y2, num_classes=3)[1]


def test_wrong_prediction_gives_minus_one():
    rng = np.random.default_rng(5)
    A = rng.normal(size=(20, 8))
    y = rng.integers(0, 2, 8)
    pred = exact_predict(A, y, q=0.1)
    r = exact_radius(A, y, 1 - pred, q=0.1)
    assert np.all(r == -1)
    y3 = rng.integers(0, 3, 8)
    p3 = exact_predict(A, y3, num_classes=3)
    r3 = exact_radius(A, y3, (p3 + 1) % 3, num_classes=3)
    assert np.all(r3 == -1)


def test_no_crossing_gives_n():
    A = np.array([[0.1, 0.1, 0.1]])          # Σ_{α>0} α = 0.3 < 1/2: always class 0
    y = np.array([1, 0, 1])
    assert exact_predict(A, y)[0] == 0
    assert exact_radius(A, y, [0])[0] == 3
    assert brute_radius(A[0], y)[1] == 3
    Z = np.zeros((1, 4))                     # all-zero alpha, K classes: class 0 forever
    assert exact_radius(Z, np.array([0, 1, 2, 1]), [0], num_classes=3)[0] == 4


def test_near_tie_uses_exact_fallback():
    # s − τ of the order of one ulp: the float interval cannot decide, the exact path must.
    a = np.array([0.1, 0.2, 0.2, -1e-17, 1e-17, 0.3])
    y = np.array([1, 1, 1, 1, 1, 0])        # s = 0.5 − 1e-17 + 1e-17 in exact arithmetic
    A = a.reshape(1, -1)
    for q in (0.0, 0.1, "0.3"):
        p = exact_predict(A, y, q=q)
        assert p[0] == rule(a, y, q=q)
        p0, rb = brute_radius(a, y, q=q)
        assert exact_radius(A, y, p, q=q)[0] == rb


def test_larger_random_against_sorted_reference():
    """n in the hundreds: compare with a plain sort-and-cumsum reference (exact rationals)."""
    rng = np.random.default_rng(7)
    for K in (None, 4):
        n = 700
        A = rng.normal(size=(12, n)) * 0.01
        A[:, :50] = np.round(A[:, :50] * 64) / 64
        y = rng.integers(0, 2 if K is None else K, n)
        p = exact_predict(A, y, q=0.2, num_classes=K)
        r = exact_radius(A, y, p, q=0.2, num_classes=K)
        from numbaflip.exact import _exact_binary_row, _exact_mc_row, NOCROSS
        for i in range(A.shape[0]):
            if K is None:
                k, _ = _exact_binary_row(A[i], y, int(p[i]), Fraction(1, 5))
            else:
                k, _ = _exact_mc_row(A[i], y, int(p[i]), K)
            expect = n if k >= NOCROSS else k - 1
            assert r[i] == expect


def test_input_validation():
    A = np.ones((2, 3)) * 0.1
    y = np.array([0, 1, 1])
    with pytest.raises(NumbaflipInputError, match="q"):
        exact_radius(A, y, [0, 0], q=0.5)
    with pytest.raises(NumbaflipInputError, match="q"):
        exact_radius(A, y, [0, 0], q=0.7, num_classes=3)
    with pytest.raises(NumbaflipInputError, match="shape"):
        exact_radius(A, y[:2], [0, 0])
    with pytest.raises(NumbaflipInputError, match="out of range"):
        exact_radius(A, np.array([0, 2, 1]), [0, 0])
    with pytest.raises(NumbaflipInputError, match="pred"):
        exact_radius(A, y, [0, 0, 0])
    with pytest.raises(NumbaflipInputError, match="non-finite"):
        exact_radius(np.array([[np.nan, 0, 0]]), y, [0])
    assert parse_q(0.1).exact == Fraction(1, 10)
    assert parse_q("1e-4").exact == Fraction(1, 10000)
