"""Chernoff kernels (numbaflip/_kernels/binary.py, pairwise.py, common.py) against their slow
twins in tests/naive.py on small seeded random inputs.

- decide kernels: equal to the exact-rational decision wherever they do not flag ambiguity;
- objective evaluations: the float64 value within its own stated error bound of the
  60-digit value, derivatives to ~1e-9 relative;
- drivers: the reported log-bound is never below the true minimum of the objective (an upper
  bound), at the t it reports it is above the exact objective, and it is close to the minimum;
- shared helpers: the greedy start equals the sorted version, the one gain rule gives the
  binary gain, the argsort replica equals np.argsort.
"""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from numba import njit

import numbaflip._kernels.binary as kb
import numbaflip._kernels.common as kc
import numbaflip._kernels.pairwise as kp
from naive import (DEGEN_LIMIT, DEGEN_UNBOUNDED, binary_decide_naive, binary_eval_mp,
                   binary_gains_naive, binary_guess_naive, binary_limit_mp, binary_logB_naive,
                   greedy_start_naive, lse_mp, mc_decide_naive, mc_logB_naive, pair_eval_mp,
                   pair_gains_naive, pair_logB_scipy)

RTOL, MAXITER = 1e-10, 60


def _alpha(rng, m, n, scale=0.1):
    A = rng.standard_normal((m, n)) * scale
    A[0] = 0.0                                   # all-zero row (binary: score 0; K: all tied)
    A[1] = np.round(A[1] * 8) / 64               # dyadic values: exact sums
    return np.ascontiguousarray(A)


def _binary_case(seed, q, m=12, n=9, scale=0.1):
    rng = np.random.default_rng(seed)
    A = _alpha(rng, m, n, scale)
    y = rng.integers(0, 2, n).astype(np.int64)
    A[2] = 0.0
    A[2, :3] = [0.25, 0.25, -0.375]             # Σ_{α>0} α = 1/2 exactly: the limit case
    A[3] = -0.01                                 # Σ_{α>0} α = 0 < 1/2: unbounded
    return A, y


def _binary_kernels(A, y, q, want_guess=True):
    m = A.shape[0]
    side, degen = np.empty(m, np.int64), np.empty(m, np.int64)
    amb, guess = np.empty(m, np.bool_), np.empty(m)
    kb._binary_decide(A, y[None, :], q, want_guess, side, degen, amb, guess)
    out = dict(side=side, degen=degen, amb=amb, guess=guess)
    for name, dt in (("logb", float), ("err", float), ("t", float), ("status", np.int8),
                     ("iters", np.int64)):
        out[name] = np.empty(m, dt)
    kb._binary_driver(A, y[None, :], q, side, degen, guess, RTOL, MAXITER, out["logb"], out["err"],
                      out["t"], out["status"], out["iters"])
    return out


@pytest.mark.parametrize("q", [0.3, 0.02, 1e-3])
def test_binary_decide_matches_exact_decision(q):
    A, y = _binary_case(1, q)
    k = _binary_kernels(A, y, q)
    assert not k["amb"][0] and not k["amb"][3]
    seen = set()
    for j in range(A.shape[0]):
        if k["amb"][j]:
            continue
        side, degen = binary_decide_naive(A[j], y, q)
        assert (k["side"][j], k["degen"][j]) == (side, degen)
        seen.add(degen)
        assert k["guess"][j] == pytest.approx(binary_guess_naive(A[j], y, q, True), rel=1e-9)
    assert DEGEN_UNBOUNDED in seen


@pytest.mark.parametrize("q", [0.3, 0.02, 1e-4])
def test_binary_eval_within_its_error_bound(q):
    rng = np.random.default_rng(2)
    lq, l1q = math.log(q), math.log1p(-q)
    for _ in range(4):
        n = int(rng.integers(1, 12))
        a = rng.standard_normal(n) * rng.choice([1e-3, 0.1, 3.0])
        y = rng.integers(0, 2, n).astype(np.int64)
        for t in (-40.0, -1.3, -1e-3, 0.0, 2e-4, 0.7, 25.0, 900.0):
            f, fp, fpp, err = kb._binary_eval(a, y, t, q, lq, l1q)
            ft, gt, ht = binary_eval_mp(a, y, t, q)
            assert abs(mpmath.mpf(f) - ft) <= err
            assert fp == pytest.approx(float(gt), rel=1e-9, abs=1e-12 * np.abs(a).sum())
            assert fpp == pytest.approx(float(ht), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("q", [0.3, 0.02, 1e-3])
def test_binary_driver_is_an_upper_bound_on_the_minimum(q):
    A, y = _binary_case(3, q, scale=0.3)
    k = _binary_kernels(A, y, q)
    for j in range(A.shape[0]):
        if k["amb"][j] and k["degen"][j] != DEGEN_LIMIT:
            continue
        true_min = binary_logB_naive(A[j], y, q)
        lb = k["logb"][j]
        if true_min == -np.inf:
            assert lb == -np.inf
            continue
        tol = 1e-9 * (1.0 + abs(true_min))
        assert lb >= true_min - tol
        assert lb <= true_min + 1e-6 * (1.0 + abs(true_min))
        if k["degen"][j] == DEGEN_LIMIT:
            assert mpmath.mpf(lb) >= binary_limit_mp(A[j], y, q)
        elif lb < 0.0:                           # the value at the t reported is above f(t)
            assert mpmath.mpf(lb) >= binary_eval_mp(A[j], y, k["t"][j], q)[0]


def test_binary_limit_logb_bounds_the_limit_probability():
    q = 0.1
    a = np.array([0.25, 0.25, -0.375, 0.0, -1e-3])
    for y in ([1, 1, 0, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 0, 1]):
        y = np.array(y, np.int64)
        v, e = kb._binary_limit_logb(a, y, math.log(q), math.log1p(-q))
        exact = binary_limit_mp(a, y, q)
        assert exact <= mpmath.mpf(v) <= exact + 2 * e + 1e-15


def test_greedy_guesses_are_the_sorted_greedy_rule():
    rng = np.random.default_rng(4)
    hist, hbuf = np.empty(2048), np.empty(1)
    for _ in range(20):
        n = int(rng.integers(1, 30))
        a = rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 1, n)
        y2 = rng.integers(0, 2, n).astype(np.int64)
        q, drift = 1e-3, float(rng.uniform(0.0, np.abs(a).sum()))
        for side in (1, -1):
            want = greedy_start_naive(binary_gains_naive(a, y2, side), drift,
                                      math.log1p(-q) - math.log(q))
            assert kb._greedy_guess(a, y2, q, side, drift, hist, hbuf) == want
        K, Kn = 4, 5
        yk = rng.integers(0, K, n).astype(np.int64)
        pm = q / (Kn - 1)
        for c, r in ((0, 1), (2, 3), (3, 0)):
            want = greedy_start_naive(pair_gains_naive(a, yk, c, r), drift,
                                      math.log1p(-q) - math.log(pm))
            assert kp._greedy_guess_pair(a, yk, c, r, q, pm, drift, hist, hbuf) == want


def test_one_gain_rule_for_binary_and_pairs():
    rng = np.random.default_rng(5)
    a = np.concatenate([rng.standard_normal(40), [0.0, -0.0, 5e-324, -5e-324]])
    for aj in a:
        for lab in (0, 1):
            for side in (1, -1):
                c = 1 if side > 0 else 0
                b = side * aj * (2 * lab - 1)
                assert kc._gain(aj, lab, c, 1 - c, 1.0) == max(b, 0.0)
        for lab, want in ((0, max(2 * aj, 0.0)), (1, max(-2 * aj, 0.0)), (2, abs(aj))):
            assert kc._gain(aj, lab, 0, 1, 2.0) == want


def _pair_consts(q, Kn):
    pm = q / (Kn - 1)
    p0 = q * (Kn - 2) / (Kn - 1)
    return pm, math.log1p(-q), math.log(pm), math.log(p0) if p0 > 0 else -np.inf


@pytest.mark.parametrize("q,Kn", [(0.3, 3), (0.05, 5), (1e-3, 2), (1e-4, 7)])
def test_pair_and_joint_eval_within_their_error_bounds(q, Kn):
    rng = np.random.default_rng(6)
    K = min(Kn, 4)
    pm, lq1, lpm, lp0 = _pair_consts(q, Kn)
    scr = np.empty((8, K))
    for _ in range(3):
        n = int(rng.integers(1, 10))
        a = rng.standard_normal(n) * rng.choice([1e-3, 0.2, 4.0])
        y = rng.integers(0, K, n).astype(np.int64)
        c = int(y[0])
        for t in (1e-6, 0.01, 0.4, 3.0, 60.0, 2000.0):
            jf, jg, jh, je = (np.full(K, np.nan) for _ in range(4))
            kp._joint_eval(a, y, c, K, t, q, pm, lq1, lpm, lp0, scr, jf, jg, jh, je)
            for r in range(K):
                if r == c:
                    continue
                f, fp, fpp, err = kp._pair_eval(a, y, c, r, t, q, pm, lq1, lpm, lp0)
                ft, gt, ht = pair_eval_mp(a, y, c, r, t, q, Kn)
                assert abs(mpmath.mpf(f) - ft) <= err
                assert abs(mpmath.mpf(jf[r]) - ft) <= je[r]
                scale = 1e-12 * np.abs(a).sum()
                for got in (fp, jg[r]):
                    assert got == pytest.approx(float(gt), rel=1e-9, abs=scale)
                for got in (fpp, jh[r]):
                    assert got == pytest.approx(float(ht), rel=1e-8, abs=scale * np.abs(a).max())


def test_term_other_error_bound_for_negative_x():
    """A third-class point with x = tα < 0: the "other" term is even in x and is evaluated at
    |x| (with x itself, 1 + expm1(x) cancels and the error reached ~u·e^|x|, far above the
    stated bound — a bound could come out below the true probability)."""
    q, Kn = 0.05, 5
    pm, lq1, lpm, lp0 = _pair_consts(q, Kn)
    a = np.array([-1.0])                         # x = tα = −t
    y = np.array([2], np.int64)                  # a third class for the pair (0, 1)
    bad = 0
    for t in np.linspace(1.0, 19.5, 40):
        f, _, _, err = kp._pair_eval(a, y, 0, 1, t, q, pm, lq1, lpm, lp0)
        bad += abs(mpmath.mpf(f) - pair_eval_mp(a, y, 0, 1, t, q, Kn)[0]) > err
    assert bad == 0


def _mc_case(seed, K, m=10, n=8, scale=0.3):
    rng = np.random.default_rng(seed)
    A = _alpha(rng, m, n, scale)
    y = rng.integers(0, K - 1, n).astype(np.int64)      # class K−1 absent: sum exactly 0
    A[2, y == 0] = 0.0
    return A, y


@pytest.mark.parametrize("K", [2, 3, 5])
def test_mc_decide_matches_exact_decision(K):
    A, y = _mc_case(7, K)
    m = A.shape[0]
    pred, tied, amb = np.empty(m, np.int64), np.empty((m, K), np.bool_), np.empty(m, np.bool_)
    kp._mc_decide(A, y[None, :], K, pred, tied, amb)
    assert not amb.all()
    for j in range(m):
        if not amb[j]:
            c, t = mc_decide_naive(A[j], y, K)
            assert pred[j] == c
            assert (tied[j] == t).all()


@pytest.mark.parametrize("q,K,Kn", [(0.3, 3, 3), (0.05, 4, 6), (2e-3, 3, 3)])
def test_mc_driver_is_an_upper_bound_on_the_union_minimum(q, K, Kn):
    A, y = _mc_case(8, K)
    m = A.shape[0]
    pred, tied, amb = np.empty(m, np.int64), np.empty((m, K), np.bool_), np.empty(m, np.bool_)
    kp._mc_decide(A, y[None, :], K, pred, tied, amb)
    logw = np.zeros(K)
    logw[K - 1] = math.log(Kn - K + 1)                  # the absent slot stands for the rest
    logb, err, it = np.empty(m), np.empty(m), np.empty(m, np.int64)
    tt, pair, st = np.empty((m, K)), np.empty((m, K)), np.empty(m, np.int8)
    kp._mc_driver(A, y[None, :], K, Kn, q, logw, pred, tied, RTOL, MAXITER, 40.0, logb, err, tt, pair, st,
                  it)
    checked = 0
    for j in range(m):
        if amb[j]:
            continue
        c = pred[j]
        want, vals = mc_logB_naive(A[j], y, K, Kn, q, logw, c, tied[j])
        assert pair[j, c] == -np.inf
        for k in range(K):
            if k != c:
                assert pair[j, k] >= vals[k] - 1e-9 * (1 + abs(vals[k]))
                assert pair[j, k] <= vals[k] + 1e-6 * (1 + abs(vals[k]))
        assert logb[j] >= want - 1e-9 * (1 + abs(want))
        assert logb[j] <= want + 1e-6 * (1 + abs(want))
        assert mpmath.mpf(logb[j]) >= lse_mp(pair[j], logw, c)
        checked += 1
    assert checked >= m // 2


def test_pair_newton_value_bounds_the_objective_at_its_t():
    q, Kn = 0.01, 4
    pm, lq1, lpm, lp0 = _pair_consts(q, Kn)
    rng = np.random.default_rng(9)
    a = rng.standard_normal(7) * 0.5
    y = np.array([0, 0, 0, 1, 2, 0, 3], np.int64)
    a[y == 0] = np.abs(a[y == 0]) + 0.2                  # class 0 clearly ahead
    for r in (1, 2, 3):
        v, e, t, it, conv = kp._pair_newton(a, y, 0, r, 1.0, q, pm, lq1, lpm, lp0, RTOL,
                                            MAXITER, -np.inf)
        assert conv and t > 0
        assert mpmath.mpf(v) >= pair_eval_mp(a, y, 0, r, t, q, Kn)[0]
        want = pair_logB_scipy(a, y, 0, r, q, Kn)
        assert want - 1e-9 <= v <= want + 1e-6 * (1 + abs(want))


def test_lse_up_is_an_upper_bound():
    rng = np.random.default_rng(10)
    for K in (2, 3, 6):
        vals = rng.uniform(-50, 0, K)
        logw = np.log(rng.integers(1, 4, K).astype(float))
        vals[0] = -np.inf
        for skip in range(K):
            v = kp._lse_up(vals, logw, K, skip)
            exact = lse_mp(vals, logw, skip)
            if exact == -np.inf:
                assert v == -np.inf
                continue
            assert mpmath.mpf(v) >= exact
            assert v <= float(exact) + 1e-12 * (1 + abs(v))


def test_class_sums_and_argsort_replica():
    rng = np.random.default_rng(11)
    K = 5
    a = rng.standard_normal(30)
    y = rng.integers(0, K, 30).astype(np.int64)
    sums, sabs, sqs = np.empty(K), np.empty(K), np.empty(K)
    kp._class_sums(a, y, K, sums, sabs, sqs)
    for k in range(K):
        sel = a[y == k]
        assert sums[k] == pytest.approx(math.fsum(sel), abs=1e-14)
        assert sabs[k] == pytest.approx(math.fsum(np.abs(sel)), rel=1e-14)
        assert sqs[k] == pytest.approx(math.fsum(sel * sel), rel=1e-14)
    stack = np.empty((64, 2), np.int64)
    for n in (0, 1, 5, 15, 16, 17, 40, 200):
        for key in (rng.standard_normal(n), np.round(rng.standard_normal(n)),
                    np.where(rng.random(n) < 0.5, 0.0, -np.inf), np.zeros(n)):
            R = np.empty(n, np.int64)
            kc._argsort_into(np.ascontiguousarray(key), R, stack)
            np.testing.assert_array_equal(R, _numba_argsort(np.ascontiguousarray(key)))


@njit
def _numba_argsort(key):
    return np.argsort(key)               # numba's default quicksort: the order _mc_driver used
