"""Each kernel of numbaflip/_kernels/exact.py and numbaflip/_kernels/thresholds.py against its
slow twin (tests/naive_exact.py, tests/naive_thresholds.py) on small seeded random inputs:
directed rounding against Fraction arithmetic, the drivers' [k_lo, k_hi] around the exact k,
the predictions where the kernel is sure, the threshold bounds around the enumerated value."""
import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest

from numbaflip._kernels import exact as E
from numbaflip._kernels import thresholds as T
from numbaflip.tight.thresholds import _float_constants

import naive_exact as NE
import naive_thresholds as NT
from naive_exact import fr

NOCROSS = int(E.NOCROSS)


def _doubles(rng, m):
    """Doubles of mixed magnitudes and signs, with exact-operation cases (small dyadics,
    zeros, powers of two) mixed in."""
    out = []
    for _ in range(m):
        kind = rng.integers(4)
        if kind == 0:
            out.append(float(rng.normal()))
        elif kind == 1:
            out.append(float(rng.integers(-8, 9)) / 4.0)
        elif kind == 2:
            out.append(float(rng.normal() * 2.0 ** int(rng.integers(-60, 60))))
        else:
            out.append(float(rng.choice([0.0, 1.0, -0.5, 2.0 ** -30, 3.0, 0.1, 1.0 / 3.0])))
    return out


def _rows(rng, b, n, dyadic):
    """b rows of alpha; a per-row offset and scale make the margins (and k) vary."""
    shift = rng.choice([0.0, 1.0, 3.0], size=(b, 1))
    scale = rng.choice([1.0, 1.0 / n, 4.0 / n], size=(b, 1))
    if dyadic:
        return (rng.integers(-4, 5, size=(b, n)) / 8.0 + shift) * 2.0 ** np.round(np.log2(scale))
    return (rng.normal(size=(b, n)) * np.exp(rng.normal(size=(b, n))) + shift) * scale


def _preds(rng, A, y, q, K):
    """The rule's prediction for most rows (so k > 0), a random class for the others."""
    kk = 2 if K is None else K
    p = rng.integers(0, kk, size=A.shape[0]).astype(np.int64)
    for r in range(A.shape[0]):
        if r % 4:
            p[r] = NE.rule(A[r], y, q=q, num_classes=K)
    return p


def _q_bounds(qf):
    x = float(qf)
    if Fraction(x) == qf:
        return x, x
    return (x, math.nextafter(x, 1.0)) if Fraction(x) < qf else (math.nextafter(x, 0.0), x)


# ============================================================================================
# Directed rounding
# ============================================================================================

def test_directed_rounding_against_fractions():
    rng = np.random.default_rng(0)
    xs = _doubles(rng, 120)
    for a, b in zip(xs, xs[1:] + xs[:1]):
        A, B = fr(a), fr(b)
        s, e = E._two_sum(a, b)
        assert s == a + b and fr(s) + fr(e) == A + B
        assert fr(E._add_up(a, b)) >= A + B >= fr(E._add_down(a, b))
        assert E._add_up(a, b) <= math.nextafter(a + b, math.inf)
        assert E._add_down(a, b) >= math.nextafter(a + b, -math.inf)
        if fr(a + b) == A + B:
            assert E._add_up(a, b) == E._add_down(a, b) == a + b
        assert fr(E._mul_up(a, b)) >= A * B >= fr(E._mul_down(a, b))
        if fr(a * b) == A * B:
            assert E._mul_up(a, b) == E._mul_down(a, b) == a * b
        p, pe, ok = E._two_prod(a, b)
        if ok:
            assert fr(p) + fr(pe) == A * B
        d = abs(b) if b != 0.0 else 1.0
        D = fr(d)
        assert fr(E._div_up(a, d)) >= A / D >= fr(E._div_down(a, d))
        if fr(a / d) == A / D:
            assert E._div_up(a, d) == E._div_down(a, d) == a / d


@pytest.mark.parametrize("q", ["0", "0.25", "0.3", "1e-5", "1/3", "0.49"])
def test_tau_bounds_enclose_tau(q):
    rng = np.random.default_rng(1)
    qf = Fraction(q)
    q_lo, q_hi = _q_bounds(qf)
    for trial in range(12):
        a = _rows(rng, 1, int(rng.integers(1, 30)), trial % 2 == 0)[0]
        t_lo, t_hi = E._tau_bounds(a, q_lo, q_hi)
        t = NE.tau(a, qf)
        assert fr(t_lo) <= t <= fr(t_hi)
        if q_lo == q_hi and trial % 2 == 0 and qf.denominator & (qf.denominator - 1) == 0:
            assert t_lo == t_hi  # every operation exact for dyadic alpha and q


# ============================================================================================
# Selection and the greedy walk
# ============================================================================================

def test_sort_gather_and_buckets():
    rng = np.random.default_rng(2)
    stack = np.empty(E._STACK, np.int64)
    buf = np.empty(1)
    for n in (0, 1, 5, 17, 40, 300):
        keys = np.abs(rng.normal(size=n)) * np.exp(rng.normal(size=n) * 6)
        keys[: n // 4] = 1.5  # ties
        sk = keys.copy()
        perm = np.arange(n, dtype=np.int64)
        E._sort_desc(sk, perm, 0, n, stack)
        assert list(sk) == sorted(keys, reverse=True) and np.array_equal(keys[perm], sk)
        if n == 0:
            continue
        top = E._top_bits(keys.max(), buf)
        kb = keys.view(np.int64)
        buckets = [E._bucket(kb[t], top) for t in range(n)]
        assert buckets == [NE.bucket(x, keys.max()) for x in keys]
        for bmax in (0, 3, 40, E._NB - 1):
            perm = np.empty(n, np.int64)
            sk = np.empty(n)
            cnt = E._gather(keys, n, top, bmax, perm, sk, stack)
            want = sorted((x for x, bk in zip(keys, buckets) if bk <= bmax), reverse=True)
            assert list(sk[:cnt]) == want and np.array_equal(keys[perm[:cnt]], sk[:cnt])


def test_walk_against_exact_walk():
    rng = np.random.default_rng(3)
    for trial in range(200):
        n = int(rng.integers(0, 12))
        keys = rng.integers(1, 6, size=n) / 4.0 if trial % 2 else np.abs(rng.normal(size=n))
        tag = rng.choice([-1, 0, 1, 2, -2, -3, -4], size=n).astype(np.int64)
        order = np.argsort(-keys, kind="stable").astype(np.int64)
        cp = int(rng.integers(0, 3))
        S0 = float(rng.integers(-2, 12)) / 4.0 if trial % 2 else float(rng.normal() * 2)
        strict = bool(rng.integers(2))
        limit = NOCROSS if trial % 3 else int(rng.integers(1, 6))
        klo, khi, depth, resolved = E._walk(keys, tag, order, n, True, cp, S0, 0.0, 0.0,
                                            strict, limit)
        k = NE.walk(keys, tag, order, cp, S0, strict, limit)
        assert resolved and 0 <= depth <= n
        assert klo <= (NOCROSS if k is None else k) <= khi
        if trial % 2:  # dyadic: every operation exact, so the walk is exact
            assert klo == khi == (NOCROSS if k is None else k)


def test_moves_against_exact_sums():
    rng = np.random.default_rng(4)
    errf = E._ERRF
    for trial in range(30):
        n = int(rng.integers(1, 25))
        a = _rows(rng, 1, n, trial % 2 == 0)[0]
        # binary
        y = rng.integers(0, 2, size=n).astype(np.int64)
        for pred in (0, 1):
            keys = np.empty(n)
            tag = np.empty(n, np.int64)
            S, ea, N, tot, kmax, bad = E._binary_moves(a, y, pred == 1, 0.0, keys, tag)
            z, moves = NE.binary_moves(a, y, pred)
            assert not bad and abs(fr(S) - z) <= fr(ea * errf)
            assert sorted(fr(x) for x in keys[:N]) == sorted(moves) and np.all(tag[:N] == -1)
            assert kmax == (float(max(moves)) if moves else 0.0)
            assert abs(fr(tot) - sum(moves, Fraction(0))) <= fr(2 * n * 2.0 ** -53 * tot)
        # K classes
        K = int(rng.integers(3, 6))
        y = rng.integers(0, K, size=n).astype(np.int64)
        c = int(rng.integers(0, K))
        keys, tag, grp = np.empty(2 * n), np.empty(2 * n, np.int64), np.empty(2 * n, np.int64)
        Sc, eac, G, P = (np.empty(K) for _ in range(4))
        N, tall, kmax, bad = E._mc_moves(a, y, c, K, keys, tag, grp, Sc, eac, G, P)
        sums, moves = NE.mc_moves(a, y, c, K)
        assert not bad
        for k in range(K):
            assert abs(fr(Sc[k]) - sums[k]) <= fr(eac[k] * errf)
        assert sorted((fr(keys[t]), int(tag[t])) for t in range(N)) == sorted(moves)
        # the rivals kept: every rival that can cross in exact arithmetic, ordered by gap
        rivals, S0s, ea0s = np.empty(K, np.int64), np.empty(K), np.empty(K)
        nr = E._mc_rivals(c, K, Sc, eac, G, P, tall, rivals, S0s, ea0s)
        assert list(S0s[:nr]) == sorted(S0s[:nr])
        for cp in range(K):
            if cp == c:
                continue
            reach = sum((m for m, t in moves
                         if t == -1 or t == cp or (t <= -2 and -(t + 2) != cp)), Fraction(0))
            gap = sums[c] - sums[cp] - reach
            if (gap < 0) if cp > c else (gap <= 0):
                assert cp in rivals[:nr]


def _scan_twin(keys, grp, N, K, top, cp, target, kcap):
    """Twin of _rival_scan over the moves directly (no histogram array)."""
    kb = keys.view(np.int64)
    groups = {0, 1 + K + cp} | {1 + g for g in range(K) if g != cp}
    cs, cc = 0.0, 0
    for bk in range(E._NB):
        sel = [t for t in range(N) if grp[t] in groups and E._bucket(kb[t], top) == bk]
        cs += sum(keys[t] for t in sel) if sel else 0.0
        cc += len(sel)
        if cs > target or cc > kcap:
            return bk, cc, True
    return E._NB - 1, cc, False


def test_depth_histograms():
    rng = np.random.default_rng(5)
    buf = np.empty(1)
    for trial in range(6):
        n, K = 40, 3
        a = rng.integers(-4, 5, size=n) / 8.0
        y = rng.integers(0, K, size=n).astype(np.int64)
        keys, tag, grp = np.empty(2 * n), np.empty(2 * n, np.int64), np.empty(2 * n, np.int64)
        Sc, eac, G, P = (np.empty(K) for _ in range(4))
        N, tall, kmax, _ = E._mc_moves(a, y, 0, K, keys, tag, grp, Sc, eac, G, P)
        top = E._top_bits(kmax, buf)
        hc = np.empty((1 + 2 * K, E._NB), np.int64)
        hs = np.empty((1 + 2 * K, E._NB))
        rivals = np.array([1, 2], np.int64)
        S0s = np.array([0.5, 1.0])
        ea0s = np.zeros(2)
        bmax = E._mc_depth(keys, grp, N, K, top, 2, rivals, S0s, ea0s, hc, hs)
        assert 0 <= bmax <= E._NB - 1
        for cp, target, kcap in ((1, 0.5, NOCROSS), (2, 1.0, 3), (1, 1e9, NOCROSS)):
            assert E._rival_scan(hc, hs, K, cp, target, kcap) == \
                _scan_twin(keys, grp, N, K, top, cp, target, kcap)
        hb = np.empty(E._NB)
        bb = E._binary_depth(keys, N, top, 1.0, 0.0, hb)
        csum = np.cumsum([sum(keys[t] for t in range(N) if E._bucket(keys.view(np.int64)[t],
                                                                     top) == bk)
                          for bk in range(E._NB)])
        hit = np.flatnonzero(csum > 1.0 * E._SLACK)
        assert bb == (hit[0] if hit.size else E._NB - 1)


# ============================================================================================
# Drivers
# ============================================================================================

def _check_twin_itself(a, y, pred, q, K):
    """The greedy twin equals brute force over all label vectors (tiny n only)."""
    p0, k = NE.brute_min_changes(a, y, q=q, num_classes=K)
    want = 0 if p0 != pred else k
    assert NE.min_changes(a, y, pred, q=q, num_classes=K) == want


@pytest.mark.parametrize("q", ["0", "0.25", "0.3", "1/3", "1e-5"])
def test_binary_driver_contains_exact_k(q):
    rng = np.random.default_rng(6)
    qf = Fraction(q)
    q_lo, q_hi = _q_bounds(qf)
    for trial in range(4):
        n = int(rng.integers(1, 7)) if trial == 0 else int(rng.integers(1, 30))
        b = 8
        A = _rows(rng, b, n, trial % 2 == 0)
        y = rng.integers(0, 2, size=n).astype(np.int64)
        pred = _preds(rng, A, y, qf, None)
        klo, khi, st = (np.empty(b, np.int64) for _ in range(3))
        E._binary_driver(A, y[None, :], pred, q_lo, q_hi, 3, klo, khi, st)
        assert np.all(st == 0)
        for r in range(b):
            k = NE.min_changes(A[r], y, int(pred[r]), q=qf)
            assert klo[r] <= (NOCROSS if k is None else k) <= khi[r], (r, q)
            if trial == 0:
                _check_twin_itself(A[r], y, int(pred[r]), qf, None)


@pytest.mark.parametrize("K", [3, 4])
def test_mc_driver_contains_exact_k(K):
    rng = np.random.default_rng(7 + K)
    for trial in range(6):
        n = int(rng.integers(1, 6)) if trial == 0 else int(rng.integers(1, 30))
        b = 8
        A = _rows(rng, b, n, trial % 2 == 0)
        skew = np.array([0.7] + [0.3 / (K - 1)] * (K - 1)) if trial % 3 else np.ones(K) / K
        y = rng.choice(K, size=n, p=skew).astype(np.int64)  # skewed: larger k
        pred = _preds(rng, A, y, 0, K)
        klo, khi, rv, st = (np.empty(b, np.int64) for _ in range(4))
        E._mc_driver(A, y[None, :], pred, K, 3, klo, khi, rv, st)
        assert np.all(st == 0)
        for r in range(b):
            k = NE.min_changes(A[r], y, int(pred[r]), num_classes=K)
            assert klo[r] <= (NOCROSS if k is None else k) <= khi[r], r
            if trial % 2 == 0:  # dyadic: exact, and the rival reaches k
                assert klo[r] == khi[r]
            if trial == 0 and K == 3:
                _check_twin_itself(A[r], y, int(pred[r]), 0, K)


def test_predict_drivers_agree_where_sure():
    rng = np.random.default_rng(8)
    b, n = 150, 12  # more rows than one predict chunk
    for dyadic in (True, False):
        A = _rows(rng, b, n, dyadic)
        pred, sure, st = np.empty(b, np.int64), np.empty(b, np.bool_), np.empty(b, np.int64)
        y = rng.integers(0, 2, size=n).astype(np.int64)
        for q in ("0", "0.3", "0.25"):
            q_lo, q_hi = _q_bounds(Fraction(q))
            E._binary_predict_driver(A, y, q_lo, q_hi, pred, sure, st)
            assert np.all(st == 0)
            for r in np.flatnonzero(sure):
                assert pred[r] == NE.binary_rule(A[r], y, Fraction(q))
            assert sure.mean() > 0.3
        K = 4
        y = rng.integers(0, K, size=n).astype(np.int64)
        E._mc_predict_driver(A, y, K, pred, sure, st)
        assert np.all(st == 0)
        for r in np.flatnonzero(sure):
            assert pred[r] == NE.multiclass_rule(A[r], y, K)
        assert sure.mean() > 0.3


def test_drivers_flag_nonfinite_alpha():
    A = np.array([[1.0, np.inf, 0.5], [0.25, -1.0, 2.0 ** 1000], [0.5, 0.5, 0.5]])
    y = np.array([1, 0, 1], np.int64)
    pred = np.array([1, 1, 1], np.int64)
    klo, khi, rv, st = (np.empty(3, np.int64) for _ in range(4))
    E._binary_driver(A, y[None, :], pred, 0.0, 0.0, 2, klo, khi, st)
    assert list(st) == [E._STATUS_NONFINITE, E._STATUS_NONFINITE, 0]
    E._mc_driver(A, y[None, :], pred, 3, 2, klo, khi, rv, st)
    assert list(st) == [E._STATUS_NONFINITE, E._STATUS_NONFINITE, 0]
    p, s = np.empty(3, np.int64), np.empty(3, np.bool_)
    E._binary_predict_driver(A, y, 0.0, 0.0, p, s, st)
    assert list(st) == [E._STATUS_NONFINITE, E._STATUS_NONFINITE, 0]
    E._mc_predict_driver(A, y, 3, p, s, st)
    assert list(st) == [E._STATUS_NONFINITE, E._STATUS_NONFINITE, 0]


# ============================================================================================
# Tight thresholds
# ============================================================================================

def _mp_log(f):
    return mpmath.log(mpmath.mpf(f.numerator) / f.denominator)


CASES = [("0.3", 2, 9), ("0.05", 2, 8), ("0.45", 2, 7), ("0.3", 3, 5), ("1/3", 3, 5),
         ("0.5", 4, 4), ("0.05", 4, 4)]


@pytest.mark.parametrize("q,K,r_max", CASES)
def test_threshold_kernel_against_enumeration(q, K, r_max):
    c = _float_constants(Fraction(q), K)
    lo, est, width = (np.empty(r_max + 1) for _ in range(3))
    T._float_thresholds_kernel(*c, r_max, lo, est, width)
    with mpmath.workdps(60):
        for r in range(r_max + 1):
            L = _mp_log(NT.naive_one_minus_p(q, K, r))
            assert mpmath.mpf(lo[r]) <= L <= mpmath.mpf(lo[r]) + mpmath.mpf(width[r]), r
            assert width[r] < 1e-12 * max(1.0, abs(lo[r]))


@pytest.mark.parametrize("q,K,r_max", CASES)
def test_convolution_and_finish_row_against_exact_rows(q, K, r_max):
    c_plus, c_zero, c_minus, log_r, ln2 = _float_constants(Fraction(q), K)
    rows = NT.convolve_rows(c_plus, c_zero, c_minus, r_max)
    off = r_max + 1
    mant = np.zeros(2 * r_max + 3)
    ex = np.full(2 * r_max + 3, T._ZERO_E, np.int64)
    mant[off], ex[off] = 1.0, 0
    binary = c_zero == 0.0
    step = 2 if binary else 1
    a_m, a_e, c_vals = np.zeros(3), np.zeros(3, np.int64), np.zeros(3)
    gam = 0.0
    for r in range(r_max + 1):
        if r > 0:
            T._convolve_step(mant, ex, off, r, c_plus, c_zero, c_minus, binary)
            gam = gam + 6.0 * T._U * (1.0 + gam) + 2.0 ** -200
        row = rows[r]
        for s in range(-r - 1, r + 2):
            got, want = NT.ext_value(mant[off + s], ex[off + s]), row.get(s, Fraction(0))
            assert abs(got - want) <= Fraction(gam) * want, (r, s)
        k = T._median_region(mant, ex, off, r, step)
        jlo, jhi = max(k - 1, -r), min(k + 1, r)
        T._region_sums(mant, ex, off, r, jlo, jhi, step, a_m, a_e, c_vals)
        for jj in range(jlo, jhi + 1):
            A, C = NT.region_sums(row, r, jj)
            assert abs(NT.ext_value(a_m[jj - jlo], a_e[jj - jlo]) - A) <= A * Fraction(1, 10 ** 12)
            assert abs(Fraction(c_vals[jj - jlo]) - C) <= C * Fraction(1, 10 ** 12)
        b_lo, _, b_hi = T._finish_row(mant, ex, off, r, gam, log_r, ln2, step, a_m, a_e, c_vals)
        with mpmath.workdps(60):
            L = _mp_log(NT.naive_one_minus_p(q, K, r))
            assert mpmath.mpf(b_lo) <= L <= mpmath.mpf(b_hi)


def test_extended_format_helpers():
    rng = np.random.default_rng(9)
    for _ in range(200):
        m1, m2 = (float(abs(rng.normal())) + 1e-3 for _ in range(2))
        e1, e2 = (int(rng.integers(-4, 2)) for _ in range(2))
        am, ae = T._ext_add(m1, e1, m2, e2)
        exact = NT.ext_value(m1, e1) + NT.ext_value(m2, e2)
        assert abs(NT.ext_value(am, ae) - exact) <= exact * Fraction(2) ** -50
        rm, re_ = T._renormalise(m1 * 2.0 ** int(rng.integers(-400, 400)), e1)
        assert 2.0 ** -200 <= rm < 2.0 ** 200
        v = float(m1 * 2.0 ** int(rng.integers(-300, 300)))
        rm, re_ = T._renormalise(v, e1)
        assert NT.ext_value(rm, re_) == NT.ext_value(v, e1)  # powers of two: exact
        assert T._ext_value(m1, e1) == float(NT.ext_value(m1, e1)) or e1 < -5
        assert abs(T._log_ext(m1, e1, math.log(2)) - float(mpmath.log(m1) + 200 * e1 *
                                                           mpmath.log(2))) < 1e-12 * 800
        x, y = float(rng.normal() * 50), float(rng.normal() * 50)
        assert T._logaddexp(x, y) == pytest.approx(float(mpmath.log(mpmath.exp(x) +
                                                                    mpmath.exp(y))), rel=1e-14)
        # _mix: c1 m1 + c2 m2 + c3 m3 with the dropped-term rule
        cs = [float(abs(rng.normal())) for _ in range(3)]
        ms = [float(abs(rng.normal())) + 1e-3 for _ in range(3)]
        es = [int(rng.integers(-3, 2)) for _ in range(3)]
        mm, me = T._mix(cs[0], ms[0], es[0], cs[1], ms[1], es[1], cs[2], ms[2], es[2])
        want = sum(Fraction(c) * NT.ext_value(m, e) for c, m, e in zip(cs, ms, es))
        assert abs(NT.ext_value(mm, me) - want) <= want * Fraction(2) ** -50
    assert T._mix(1.0, 0.0, T._ZERO_E, 1.0, 0.0, T._ZERO_E, 1.0, 0.0, T._ZERO_E) == \
        (0.0, T._ZERO_E)
    assert T._logaddexp(-np.inf, 1.5) == 1.5 and T._logaddexp(2.0, -np.inf) == 2.0
    for d in range(-7, 3):
        assert T._coarse_scale(d) == (2.0 ** (200 * d) if -5 <= d <= 1 else 0.0)


def test_boundary_limit_within_the_kernels_error_argument():
    # the float error bound (1 + 2^-20) holds for n < 2^27 terms: the boundary check must not
    # let larger problems through
    from numbaflip._problem import MAX_N
    assert MAX_N <= E._MAX_N
