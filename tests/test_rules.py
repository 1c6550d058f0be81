"""numbaflip.rules: each decision rule against its definition, written out with Fractions."""
from fractions import Fraction

import numpy as np
import pytest

from numbaflip._kernels.common import DEGEN_INTERIOR, DEGEN_LIMIT, DEGEN_UNBOUNDED, DEGEN_ZERO
from numbaflip.rules import (binary_decision, binary_margin, exact_sum, greedy_moves,
                             multiclass_decision, scaled_ints)

RNG = np.random.default_rng(11)


def _dyadic(n, scale=1 / 8):
    """α with few bits, so that exact ties and Σα₊ = 1/2 happen."""
    return RNG.integers(-4, 5, size=n) * scale


def test_scaled_ints_and_exact_sum_are_exact():
    v = np.array([0.1, 5e-324, -3.0, 1e300, 2.0 ** -1074 * 3])
    assert exact_sum(v) == sum(Fraction(x) for x in v.tolist())
    ints = scaled_ints(v)
    assert [Fraction(i, 1 << 1074) for i in ints] == [Fraction(x) for x in v.tolist()]


@pytest.mark.parametrize("q", [Fraction(0), Fraction(1, 10), Fraction(1, 3), Fraction(49, 100)])
def test_binary_margin_has_the_sign_of_mean_minus_half(q):
    for _ in range(200):
        n = int(RNG.integers(1, 7))
        a, y = _dyadic(n), RNG.integers(0, 2, size=n)
        s = sum(Fraction(x) for x, lab in zip(a.tolist(), y.tolist()) if lab == 1)
        tot = sum(Fraction(x) for x in a.tolist())
        d = (1 - 2 * q) * s + q * tot - Fraction(1, 2)
        ai = scaled_ints(a)
        z = binary_margin(q)(sum(v for v, lab in zip(ai, y.tolist()) if lab == 1), sum(ai))
        assert (z > 0) == (d > 0) and (z == 0) == (d == 0)


def test_binary_decision_degenerate_cases():
    q = Fraction(1, 10)
    seen = set()
    for _ in range(2000):
        n = int(RNG.integers(1, 6))
        a, y = _dyadic(n, 1 / 4), RNG.integers(0, 2, size=n)
        side, degen = binary_decision(a, y, q)
        s = sum(Fraction(x) for x, lab in zip(a.tolist(), y.tolist()) if lab == 1)
        d = (1 - 2 * q) * s + q * sum(Fraction(x) for x in a.tolist()) - Fraction(1, 2)
        spos = sum(Fraction(x) for x in a.tolist() if x > 0)
        if d > 0:
            want = (1, DEGEN_INTERIOR)
        elif d == 0:
            want = (0, DEGEN_ZERO)
        else:
            want = (-1, DEGEN_UNBOUNDED if spos < Fraction(1, 2) else
                    DEGEN_LIMIT if spos == Fraction(1, 2) else DEGEN_INTERIOR)
        assert (side, degen) == want
        seen.add(want)
    assert len(seen) == 5  # every case occurred


def test_multiclass_decision_lowest_index_wins_ties():
    for _ in range(300):
        K, n = int(RNG.integers(2, 5)), int(RNG.integers(1, 7))
        a, y = _dyadic(n), RNG.integers(0, K, size=n)
        sums = [sum(Fraction(x) for x, lab in zip(a.tolist(), y.tolist()) if lab == k)
                for k in range(K)]
        pred, tied = multiclass_decision(a, y, K)
        assert pred == min(k for k in range(K) if sums[k] == max(sums))
        assert tied.tolist() == [k != pred and sums[k] == sums[pred] for k in range(K)]


def test_greedy_moves_is_the_best_single_relabelling():
    """gain = max over new labels of the reduction of s_c − s_r; new_label attains it."""
    for _ in range(200):
        K, n = int(RNG.integers(2, 5)), int(RNG.integers(1, 8))
        a, y = RNG.normal(size=n), RNG.integers(0, K, size=n)
        c, r = (int(v) for v in RNG.choice(K, size=2, replace=False))
        gain, new = greedy_moves(a, y, c, r)

        def gap(lab):
            return sum(a[i] * (int(lab[i] == c) - int(lab[i] == r)) for i in range(n))
        for i in range(n):
            best, arg = 0.0, y[i]
            for k in range(K):
                y2 = y.copy()
                y2[i] = k
                red = gap(y) - gap(y2)
                if red > best + 1e-12:
                    best, arg = red, k
            assert gain[i] == pytest.approx(best, abs=1e-12)
            if best > 0:
                y2 = y.copy()
                y2[i] = new[i]
                assert gap(y) - gap(y2) == pytest.approx(best, abs=1e-12)
            else:
                assert new[i] == y[i]
