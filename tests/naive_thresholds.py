"""Slow, obviously-correct reference for the tight thresholds (exact Fractions, tiny r).

Direct Neyman–Pearson construction of Lee et al. (2019) / Rosenfeld et al. (2020) eq. 2
(design/math.md §4), by enumerating every label vector on the r flipped positions:
each position has an original label 0 and an adversarial label 1 (K classes: labels 0..K-1).
μ keeps label 0 w.p. 1−q and moves it to each other label w.p. q/(K−1); ρ is the same centred at
label 1.  The set of μ-mass p with the least ρ-mass takes outcomes by decreasing μ/ρ (ties in
any order), the last one fractionally; p_r is the μ-mass at which that least ρ-mass is 1/2.
"""
from fractions import Fraction
from itertools import product


def naive_one_minus_p(q, K, r):
    q = Fraction(q)
    pm = q / (K - 1)

    def prob(centre, lab):
        return (1 - q) if lab == centre else pm

    outcomes = []
    for labels in product(range(K), repeat=r):
        mu = Fraction(1)
        rho = Fraction(1)
        for lab in labels:
            mu *= prob(0, lab)
            rho *= prob(1, lab)
        outcomes.append((mu, rho))
    outcomes.sort(key=lambda o: o[0] / o[1], reverse=True)
    mu_acc = Fraction(0)
    rho_acc = Fraction(0)
    half = Fraction(1, 2)
    for mu, rho in outcomes:
        if rho_acc + rho >= half:
            frac = (half - rho_acc) / rho
            return 1 - (mu_acc + frac * mu)
        mu_acc += mu
        rho_acc += rho
    raise AssertionError("rho-mass never reached 1/2")


# --------------------------------------------------------------------------------------------
# Twins of the kernels in numbaflip/_kernels/thresholds.py
# --------------------------------------------------------------------------------------------

def convolve_rows(c_plus, c_zero, c_minus, r_max):
    """Rows 0..r_max of the r-fold convolution of {+1: c_plus, 0: c_zero, -1: c_minus} with
    the constants taken as exact Fractions: rows[r][s] for s = -r..r (twin of
    _convolve_step)."""
    cp, cz, cm = Fraction(c_plus), Fraction(c_zero), Fraction(c_minus)
    rows = [{0: Fraction(1)}]
    for _ in range(r_max):
        new = {}
        for s, m in rows[-1].items():
            for d, c in ((1, cp), (0, cz), (-1, cm)):
                if c:
                    new[s + d] = new.get(s + d, Fraction(0)) + c * m
        rows.append(new)
    return rows


def region_sums(row, r, j):
    """(A_j, C_j) = (Σ_{s<j} m_s, Σ_{s>−j} m_s) exactly (twin of _region_sums)."""
    return (sum((m for s, m in row.items() if s < j), Fraction(0)),
            sum((m for s, m in row.items() if s > -j), Fraction(0)))


def ext_value(m, e):
    """m · 2^(200 e) exactly (an exact zero whatever e: zeros carry a huge negative e)."""
    if m == 0.0:
        return Fraction(0)
    return Fraction(float(m)) * Fraction(2) ** (200 * int(e))
