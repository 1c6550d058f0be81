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
