"""Tight thresholds L_r = log(1 − p_r): reference tables, naive enumeration, rounding direction."""
import json
import math
import os
import subprocess
import sys
from fractions import Fraction

import mpmath
import numpy as np
import pytest

from numbaflip import _backend
from numbaflip.tight import thresholds as T
from numbaflip.errors import NumbaflipInputError

import _data
from naive_thresholds import naive_one_minus_p

TABLE_FILES = _data.threshold_files()  # raises (collection error) when the data is missing
FULL = os.environ.get("NUMBAFLIP_FULL_TESTS", "") not in ("", "0")


@pytest.fixture(params=["gmpy2", "python"])
def backend(request):
    if request.param == "gmpy2" and not _backend.GMPY2_AVAILABLE:
        pytest.skip("gmpy2 not installed")
    previous = _backend.select_backend(request.param)
    yield request.param
    _backend.select_backend(previous)


def _load(path):
    with open(path) as fh:
        d = json.load(fh)
    return d["q"], d["K"], d["r_max"], [row["log_one_minus_p"] for row in d["rows"]]


def _reference_params():
    return [pytest.param(p, id=p.stem) for p in TABLE_FILES]


@pytest.mark.parametrize("path", _reference_params())
@pytest.mark.parametrize("method", ["float64", "auto"])
def test_reference_float(path, method):
    q, K, r_max, ref_str = _load(path)
    got = T.log_thresholds(q, K, r_max, method=method)
    assert got.shape == (r_max + 1,)
    with mpmath.workdps(50):
        for r, s in enumerate(ref_str):
            ref = mpmath.mpf(s)
            assert got[r] <= ref, (q, K, r)  # never above the reference
            assert abs((got[r] - ref) / ref) <= 1e-12, (q, K, r, got[r], s)


@pytest.mark.parametrize("path", _reference_params())
def test_reference_exact(path, backend):
    q, K, r_max, ref_str = _load(path)
    mp = T.log_thresholds_mp(q, K, r_max, digits=30)
    assert mp == ref_str
    ex = T.log_thresholds_exact(q, K, r_max)
    with mpmath.workdps(50):
        for r, s in enumerate(ref_str):
            ref = mpmath.mpf(s)
            assert ex[r] <= ref
            assert abs((ex[r] - ref) / ref) <= 4e-16


@pytest.mark.parametrize("q,K,r_top", [("0.3", 2, 8), ("0.1", 2, 8), ("0.45", 2, 7),
                                       ("0.3", 3, 5), ("0.05", 3, 5), ("0.5", 4, 4),
                                       ("0.2", 4, 4), ("1/3", 3, 4)])
def test_naive_enumeration(q, K, r_top, backend):
    flo = T.log_thresholds(q, K, r_top, method="float64")
    for r in range(r_top + 1):
        ref = naive_one_minus_p(q, K, r)
        assert T.exact_one_minus_p(q, K, r) == ref
        with mpmath.workdps(50):
            lref = mpmath.log(mpmath.mpf(ref.numerator) / ref.denominator)
            assert flo[r] <= lref
            assert abs(flo[r] - lref) <= 1e-13 * max(1.0, abs(float(lref)))


def test_binary_closed_forms():
    # L_0 = log(1/2); q = 0.01: 1 - p_1 = 1/198; small q: L_r = -log 2 - r log R while
    # (1-q)^r >= 1/2
    L = T.log_thresholds("0.01", 2, 3)
    assert L[0] <= math.log(0.5) and L[0] == math.nextafter(math.log(0.5), -math.inf)
    assert T.exact_one_minus_p("0.01", 2, 1) == Fraction(1, 198)
    assert L[1] <= math.log(1 / 198) + 1e-15 and abs(L[1] - math.log(1 / 198)) < 1e-14
    ex = T.log_thresholds_exact("1e-4", 2, 5)
    for r in range(6):
        with mpmath.workdps(40):
            v = -mpmath.log(2) - r * mpmath.log(mpmath.mpf(9999) / 1)
        assert ex[r] <= v and abs(ex[r] - v) < 1e-13 * max(1, abs(float(v)))


def test_non_increasing_and_trivial_bound():
    for q, K in [("0.3", 2), ("0.01", 2), ("0.0125", 10), ("0.3", 3)]:
        L = T.log_thresholds(q, K, 600)
        assert np.all(np.diff(L) <= 0)
        triv = T.trivial_log_threshold_lower(q, K, np.arange(601))
        assert np.all(L >= triv)


def test_float_matches_exact_beyond_reference():
    # r up to 300 (400 with NUMBAFLIP_FULL_TESTS): float64 never above exact, close to it
    r_max = 400 if FULL else 150
    for q, K in [("0.4", 2), ("0.05", 2), ("0.2", 5)] + ([("0.475", 2), ("0.0125", 10)]
                                                      if FULL else []):
        lo, est, width = T.log_thresholds_float64(q, K, r_max)
        ex = T.log_thresholds_exact(q, K, r_max)
        # ex is rounded down by at most one ulp; the truth is within [ex, nextafter(ex, +inf)]
        up = np.nextafter(ex, np.inf)
        assert np.all(lo <= up)
        assert np.all(np.abs(lo - ex) <= 1e-12 * np.maximum(1, np.abs(ex)))
        assert np.all(lo + width >= ex - 1e-300)  # the enclosure contains the truth


def test_auto_falls_back_to_exact(monkeypatch):
    monkeypatch.setattr(T, "AUTO_REL_WIDTH", 0.0)  # every r "too wide": all recomputed
    for q, K in [("0.3", 2), ("0.3", 3)]:
        auto = T.log_thresholds(q, K, 40, method="auto")
        ex = np.minimum.accumulate(T.log_thresholds_exact(q, K, 40))
        assert np.array_equal(auto, ex)


def test_exact_path_small_q():
    # the exact path handles q far below float64 comfort; float64 refuses tiny q, auto switches
    L = T.log_thresholds("1e-60", 2, 3, method="auto")
    assert L[1] < -135 and np.all(np.diff(L) <= 0)
    with pytest.raises(NumbaflipInputError):
        T.log_thresholds("1e-60", 2, 3, method="float64")


@pytest.mark.parametrize("bad", [("0.5", 2), ("0", 2), ("-0.1", 2), ("0.9", 10), ("abc", 2),
                                 ("0.1", 1), ("0.1", 2.5), (None, 2)])
def test_invalid_inputs(bad):
    with pytest.raises(NumbaflipInputError):
        T.log_thresholds(bad[0], bad[1], 3)


def test_invalid_method_and_rmax():
    with pytest.raises(NumbaflipInputError):
        T.log_thresholds("0.1", 2, 3, method="fast")
    with pytest.raises(NumbaflipInputError):
        T.log_thresholds("0.1", 2, -1)


def test_canonical_q():
    assert T.canonical_q_str("1e-4") == T.canonical_q_str("0.0001") == "0.0001"
    assert T.canonical_q_str("0.30") == "0.3"
    assert T.canonical_q_str("1E-04") == "0.0001"
    assert T.canonical_q_str(0.1) == "0.1"
    assert T.canonical_q_str("2/6", 3) == "1/3"
    assert T.canonical_q_str("0.0125", 10) == "0.0125"


def test_backend_env_var_forces_fallback():
    code = ("import numbaflip._backend as b; print(b.BACKEND, b.mpq.__name__, b.mpz.__name__)")
    env = dict(os.environ, NUMBAFLIP_NO_GMPY2="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["python", "Fraction", "int"]


def test_select_backend_roundtrip():
    prev = _backend.select_backend("python")
    try:
        assert _backend.mpq is Fraction and _backend.mpz is int and not _backend.HAVE_GMPY2
        with pytest.raises(ValueError):
            _backend.select_backend("nope")
    finally:
        _backend.select_backend(prev)
