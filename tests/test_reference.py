"""scripts/reference.py (plain NumPy/SciPy baseline) agrees with numbaflip on small problems.

Tolerance (see :func:`scripts/reference.py.compare`): predictions must be identical; radii must be
identical, except that they may differ by exactly 1 where the reference's *real-valued* radius x
(radius = ceil(x) − 1) is within 1e-6 of an integer.  Why that is the right allowance: the two
implementations compute the same real number ℓ = log(1 − p) with different roundings (numbaflip
rounds its bound up by a rigorous error bound, ~1e-13 relative; scipy's bounded Brent stops at
~1.5e-8 relative in t, which changes f by ~1e-16 relative because f is flat at its minimum; the
thresholds differ by ~1e-13 relative, checked below).  x moves by about Δℓ/(2κ) for KL and
Δℓ/(L_r − L_{r+1}) for the tight table, i.e. ≪ 1e-9 here, so only an x within 1e-6 of an
integer could legitimately flip the integer radius.  On these seeded problems no such x occurs
and the radii are in fact identical; the allowance only keeps the test from depending on luck.
"""
import importlib.util

import numpy as np
import pytest

import numbaflip
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import reference as R  # noqa: E402  (scripts/reference.py: a tool, not part of the install)
from numbaflip.tight import thresholds as T

QS = ("0.3", "0.01", "1e-4")
HAVE_TIGHT = importlib.util.find_spec("numbaflip.tight") is not None


def _problem(seed, K, n, k=6, m=20):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k)) @ np.diag(np.linspace(1.0, 0.2, k))
    H = rng.normal(size=(m, k)) @ np.diag(np.linspace(1.0, 0.2, k))
    if K is None:
        w = rng.normal(size=k)
        y = (X @ w + 0.5 * rng.normal(size=n) > 0).astype(np.int64)
    else:
        W = rng.normal(size=(k, K))
        y = np.argmax(X @ W + rng.gumbel(size=(n, K)), axis=1).astype(np.int64)
    return X, y, H


def _bounds():
    return ("kl", "tight", "exact") if HAVE_TIGHT else ("kl", "exact")


@pytest.mark.parametrize("K,n,seed", [(None, 200, 1), (None, 60, 2), (10, 300, 3)])
@pytest.mark.parametrize("q", QS)
def test_reference_matches_numbaflip(K, n, seed, q):
    X, y, H = _problem(seed, K, n)
    lam = 0.5
    bounds = _bounds()
    res = numbaflip.certify(X, y, H, q=q, lam=lam, bounds=bounds, num_classes=K)
    ref = R.certify_reference(X, y, H, q=q, lam=lam, bounds=("kl", "tight", "exact"),
                              num_classes=K)
    bad = R.compare(ref, res)
    for key, idx in bad.items():
        assert idx.size == 0, (key, idx, ref.radius.get(key), res.radius.get(key))
    # the log-bounds themselves: same real number up to rounding/optimisation (absolute,
    # relative to max(1, |ℓ|)); −inf (B = 0) on both sides where it occurs
    fin = np.isfinite(ref.log_p_wrong)
    np.testing.assert_array_equal(np.isfinite(res.log_p_wrong), fin)
    err = np.abs(ref.log_p_wrong[fin] - res.log_p_wrong[fin])
    assert np.all(err <= 1e-8 * np.maximum(1.0, np.abs(res.log_p_wrong[fin])))
    # the problems are not trivial: something certified, something not at every radius
    assert (ref.radius["kl"] >= 0).any()
    # the reference's tight radius is never below its KL radius (tight dominates KL)
    assert np.all(ref.radius["tight"] >= ref.radius["kl"])


@pytest.mark.parametrize("K", [2, 10])
@pytest.mark.parametrize("q", QS + ("0.45",))
def test_reference_thresholds_match_numbaflip_table(K, q):
    ref = R.log_thresholds(float(q), K, 600)
    lo, est, width = T.log_thresholds_float64(q, K, 600)
    lo = np.minimum.accumulate(lo)
    # both compute L_r = log(1 − p_r); numbaflip's is a rigorous lower bound within 1e-10
    # relative, the reference's plain float64 log-space recursion drifts by ~r·ε·|L_r|.
    np.testing.assert_allclose(ref, lo, rtol=1e-10, atol=1e-12)


def test_reference_binary_degenerate_cases():
    y = np.array([1, 0, 1, 0], dtype=np.int64)
    A = np.array([
        [0.1, 0.1, 0.1, -0.2],     # Σ_{α>0} = 0.3 < 1/2, prediction 0: log B = −inf, radius n
        [0.25, 0.25, 0.0, 0.0],    # Σ_{α>0} = 1/2 exactly: limit value P(αᵀY = 1/2)
        [0.5, 0.0, 0.5, 0.0],      # q = 0.25: E = 0.5·1 + 0.25·1 = 0.75 → interior, pred 1
    ])
    q = 0.25
    p, ell, _, _ = R.binary_log_b(A[0], y, q)
    assert (p, ell) == (0, -np.inf)
    p, ell, _, _ = R.binary_log_b(A[1], y, q)
    assert p == 0 and ell == pytest.approx(np.log(0.75) + np.log(0.25))
    # E[αᵀY] = 1/2 exactly: α = (1/2, 1/2, 0, 0), y = (1, 0): E = (1/2)(1/2) + (1/4)(1) = 1/2
    p, ell, t, _ = R.binary_log_b(np.array([0.5, 0.5, 0.0, 0.0]), y, q)
    assert (p, ell, t) == (1, 0.0, 0.0)
    res = numbaflip.certify_alpha(A, y, q=q, bounds=("kl",))
    ref = R.certify_alpha_reference(A, y, q=q, bounds=("kl",))
    np.testing.assert_array_equal(ref.prediction, res.prediction)
    np.testing.assert_array_equal(ref.radius["kl"], res.radius["kl"])
    assert ref.radius["kl"][0] == 4


def test_reference_exact_radius_by_brute_force():
    """The reference exact radius equals the brute-force minimal number of flips (tiny n)."""
    import itertools
    rng = np.random.default_rng(7)
    n, K = 7, 3
    for _ in range(20):
        a = rng.normal(size=n) * 0.3
        y = rng.integers(0, K, size=n)
        c = int(np.argmax(np.bincount(y, weights=a, minlength=K)))
        best = n + 1
        for v in itertools.product(range(K), repeat=n):
            v = np.array(v)
            if int(np.argmax(np.bincount(v, weights=a, minlength=K))) != c:
                best = min(best, int((v != y).sum()))
        expect = n if best == n + 1 else best - 1
        assert R.exact_radius(a[None], y, np.array([c]), num_classes=K)[0] == expect
