"""High-precision Chernoff objectives (numbaflip.precision): rounded UP, close to float64."""
import math
import os
import subprocess
import sys
from fractions import Fraction

import mpmath
import numpy as np
import pytest

from numbaflip import precision as P
from numbaflip.errors import NumbaflipInputError


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def f_binary_float(alpha, y, q, t):
    x = -t * alpha
    a = np.where(y == 1, math.log(q), math.log1p(-q))
    b = np.where(y == 1, math.log1p(-q), math.log(q))
    return t / 2 + math.fsum(np.logaddexp(a, b + x))


def f_pair_float(alpha, y, c, c2, K, q, t):
    pm = q / (K - 1)
    p0 = q * (K - 2) / (K - 1)
    x = t * alpha
    out = []
    for xi, yi in zip(x, y):
        if yi == c:
            out.append(math.log((1 - q) * math.exp(-xi) + p0 + pm * math.exp(xi)))
        elif yi == c2:
            out.append(math.log(pm * math.exp(-xi) + p0 + (1 - q) * math.exp(xi)))
        else:
            out.append(math.log1p(4 * pm * math.sinh(xi / 2) ** 2))
    return math.fsum(out)


def f_binary_mp(alpha, y, q_str, t, dps=60):
    """Independent reference at 60 digits (mpmath high-level API)."""
    with mpmath.workdps(dps):
        q = mpmath.mpf(Fraction(q_str).numerator) / Fraction(q_str).denominator
        s = mpmath.mpf(t) / 2
        for a, yy in zip(alpha, y):
            e = mpmath.exp(-mpmath.mpf(t) * mpmath.mpf(float(a)))
            s += mpmath.log(q + (1 - q) * e) if yy == 1 else mpmath.log((1 - q) + q * e)
        return s


def f_pair_mp(alpha, y, c, c2, K, q_str, t, dps=60):
    with mpmath.workdps(dps):
        q = mpmath.mpf(Fraction(q_str).numerator) / Fraction(q_str).denominator
        pm = q / (K - 1)
        p0 = q * (K - 2) / (K - 1)
        s = mpmath.mpf(0)
        for a, yy in zip(alpha, y):
            x = mpmath.mpf(t) * mpmath.mpf(float(a))
            if yy == c:
                s += mpmath.log((1 - q) * mpmath.exp(-x) + p0 + pm * mpmath.exp(x))
            elif yy == c2:
                s += mpmath.log(pm * mpmath.exp(-x) + p0 + (1 - q) * mpmath.exp(x))
            else:
                s += mpmath.log1p(4 * pm * mpmath.sinh(x / 2) ** 2)
        return s


@pytest.mark.parametrize("q_str", ["0.3", "0.01", "0.45", "1e-4"])
def test_binary_random(rng, q_str):
    q = float(q_str)
    for _ in range(5):
        n = int(rng.integers(1, 60))
        alpha = rng.normal(size=n) * rng.choice([1e-3, 0.1, 3.0])
        y = rng.integers(0, 2, n)
        t = float(rng.normal() * 5)
        up = P.mp_binary_log_objective(alpha, y, q_str, t)
        ref = f_binary_mp(alpha, y, q_str, t)
        fl = f_binary_float(alpha, y, q, t)
        with mpmath.workdps(60):
            assert up >= ref  # a rigorous upper bound
            assert up - ref <= 4 * np.spacing(abs(up)) + 1e-300  # and the next float up
        assert up >= fl - 1e-13 * max(1, abs(fl))
        assert abs(up - fl) <= 1e-12 * max(1, abs(fl))


@pytest.mark.parametrize("K,q_str", [(3, "0.3"), (10, "0.0125"), (10, "0.5"), (4, "0.05")])
def test_multiclass_random(rng, K, q_str):
    q = float(q_str)
    for _ in range(3):
        n = int(rng.integers(2, 40))
        alpha = rng.normal(size=n) * rng.choice([1e-3, 0.1, 2.0])
        y = rng.integers(0, K, n)
        pred = int(rng.integers(0, K))
        ts = rng.uniform(0.01, 4.0, K)
        ts[(pred + 1) % K] = -1.0  # B = 1 for that rival
        if K > 3:
            ts[(pred + 2) % K] = np.nan
        up = P.mp_multiclass_log_bound(alpha, y, pred, K, q_str, ts)
        pairs_fl, pairs_mp = [], []
        for c2 in range(K):
            if c2 == pred:
                continue
            t = ts[c2]
            if not t > 0:
                pairs_fl.append(0.0)
                pairs_mp.append(mpmath.mpf(0))
                continue
            pairs_fl.append(f_pair_float(alpha, y, pred, c2, K, q, t))
            pairs_mp.append(f_pair_mp(alpha, y, pred, c2, K, q_str, t))
            single = P.mp_pair_log_objective(alpha, y, pred, c2, K, q_str, t)
            with mpmath.workdps(60):
                assert single >= pairs_mp[-1]
                assert single - pairs_mp[-1] <= 4 * np.spacing(abs(single)) + 1e-300
        fl = float(np.logaddexp.reduce(pairs_fl))
        with mpmath.workdps(60):
            ref = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in pairs_mp))
            assert up >= ref
            assert up - ref <= 4 * np.spacing(abs(up)) + 1e-300
        assert up >= fl - 1e-13 * max(1, abs(fl))
        assert abs(up - fl) <= 1e-12 * max(1, abs(fl))


def test_zero_alpha_and_t_zero():
    alpha = np.zeros(5)
    y = np.array([0, 1, 0, 1, 1])
    assert 0.0 <= P.mp_binary_log_objective(alpha, y, "0.2", 0.0) <= 1e-30
    assert P.mp_binary_log_objective(alpha, y, "0.2", 2.0) >= 1.0
    ts = np.full(3, -1.0)
    assert P.mp_multiclass_log_bound(alpha, y, 0, 3, "0.2", ts) >= math.log(2)


def test_large_n_is_fast_enough():
    rng = np.random.default_rng(7)
    n = 20000
    alpha = rng.normal(size=n) * 1e-3
    y = rng.integers(0, 2, n)
    up = P.mp_binary_log_objective(alpha, y, "0.3", 3.0)
    assert abs(up - f_binary_float(alpha, y, 0.3, 3.0)) <= 1e-9


def test_invalid_inputs():
    a = np.array([0.1, 0.2])
    with pytest.raises(NumbaflipInputError):
        P.mp_binary_log_objective(a, [0, 2], "0.1", 1.0)
    with pytest.raises(NumbaflipInputError):
        P.mp_binary_log_objective(a, [0], "0.1", 1.0)
    with pytest.raises(NumbaflipInputError):
        P.mp_binary_log_objective(a, [0, 1], "0.1", float("nan"))
    with pytest.raises(NumbaflipInputError):
        P.mp_binary_log_objective([np.inf, 0.0], [0, 1], "0.1", 1.0)
    with pytest.raises(NumbaflipInputError):
        P.mp_multiclass_log_bound(a, [0, 1], 0, 3, "0.1", [1.0, 1.0])
    with pytest.raises(NumbaflipInputError):
        P.mp_multiclass_log_bound(a, [0, 5], 0, 3, "0.1", [1.0, 1.0, 1.0])
    with pytest.raises(NumbaflipInputError):
        P.mp_pair_log_objective(a, [0, 1], 0, 1, 3, "0.1", -1.0)


def test_without_gmpy_in_mpmath():
    # mpmath's own pure-Python integer backend (MPMATH_NOGMPY) must give the same value
    code = ("import numpy as np; from numbaflip import precision as P; "
            "a = np.linspace(-1, 1, 11); y = np.arange(11) % 3; "
            "print(repr(P.mp_multiclass_log_bound(a, y, 0, 3, '0.3', [0, 1.5, 0.7])), "
            "repr(P.mp_binary_log_objective(a, y % 2, '0.3', -0.8)))")
    outs = []
    for extra in ({"MPMATH_NOGMPY": "1", "NUMBAFLIP_NO_GMPY2": "1"}, {}):
        env = dict(os.environ, **extra)
        outs.append(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                   text=True, check=True).stdout)
    assert outs[0] == outs[1]
