"""Soundness against brute force over all label vectors (tiny n), binary, K = 3 and K = 4.

For every instance: exp(log_p_wrong) ≥ the exact probability that the base rule disagrees
with the prediction, and every certified radius ≤ the true radius of the smoothed classifier.
Instances include the degenerate kinds: α ≡ 0, Σα₊ < 1/2, Σα₊ = 1/2 exactly, dyadic ties.
Set NUMBAFLIP_FULL_TESTS=1 for a larger sweep.
"""
import os

import numpy as np
import pytest

import numbaflip
from naive import brute_force_binary, brute_force_multiclass

FULL = os.environ.get("NUMBAFLIP_FULL_TESTS") == "1"
N_SEEDS = 250 if FULL else 80


def _binary_alpha_rows(rng, n):
    """A mix of alpha rows for one label vector: random, dyadic, degenerate."""
    rows = []
    for _ in range(3):
        a = rng.normal(size=n) / n * rng.uniform(0.5, 4.0)
        a += rng.uniform(-0.2, 0.6) / n
        rows.append(a)
    rows.append(rng.integers(-4, 5, size=n) / 8.0)                  # dyadic: exact ties
    rows.append(np.zeros(n))                                       # α ≡ 0
    a = -np.abs(rng.normal(size=n)) / n
    a[rng.integers(n)] = 0.25                                     # Σα₊ < 1/2
    rows.append(a)
    a = -rng.integers(0, 3, size=n) / 8.0                          # Σα₊ = 1/2 exactly
    a[:2] = [0.25, 0.25]
    rows.append(a)
    rows.append(rng.integers(-2, 3, size=n) / 4.0 + 0.0625)
    return np.array(rows)


BINARY_QS = ["0.05", "0.1", "0.25", "0.3", "0.45", "0.125"]


def _stats():
    return {"instances": 0, "certified": 0}


def _binary_instance(seed, n_max):
    """Seeded labels, q, alpha rows and their certificates."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, n_max))
    y = rng.integers(0, 2, size=n)
    y[0], y[1] = 0, 1
    q = BINARY_QS[seed % len(BINARY_QS)]
    A = _binary_alpha_rows(rng, n)
    return n, y, q, A, numbaflip.certify_alpha(A, y, q=q, bounds=("kl", "tight"))


@pytest.mark.parametrize("seed", range(N_SEEDS))
def test_binary_bruteforce(seed):
    n, y, q, A, res = _binary_instance(seed, 9 if not FULL else 11)
    for j in range(A.shape[0]):
        p_wrong, true_r = brute_force_binary(A[j], y, float(q), res.prediction[j])
        assert np.exp(res.log_p_wrong[j]) >= p_wrong - 1e-12, (seed, j)
        for b in ("kl", "tight"):
            assert res.radius[b][j] <= true_r, (seed, j, b, res.radius[b][j], true_r)
        assert res.radius["tight"][j] >= res.radius["kl"][j]


@pytest.mark.parametrize("K", [3, 4])
@pytest.mark.parametrize("seed", range(N_SEEDS // 2))
def test_multiclass_bruteforce(K, seed):
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(3, 7 if K == 3 else 6))
    y = rng.integers(0, K, size=n)
    y[0], y[1] = 0, 1
    q = ["0.05", "0.1", "0.3", "0.5", "0.02"][seed % 5]
    rows = [rng.normal(size=n) * rng.uniform(0.1, 3.0) for _ in range(3)]
    rows.append(rng.integers(-3, 4, size=n) / 8.0)   # dyadic: tied class sums happen
    rows.append(np.zeros(n))                           # α ≡ 0: all classes tied
    A = np.array(rows)
    res = numbaflip.certify_alpha(A, y, q=q, num_classes=K, bounds=("kl", "tight"))
    for j in range(A.shape[0]):
        p_wrong, true_r = brute_force_multiclass(A[j], y, float(q), K, res.prediction[j])
        assert np.exp(res.log_p_wrong[j]) >= p_wrong - 1e-12, (seed, j)
        for b in ("kl", "tight"):
            assert res.radius[b][j] <= true_r, (K, seed, j, b, res.radius[b][j], true_r)
        assert res.radius["tight"][j] >= res.radius["kl"][j]


def test_degenerate_binary_exact_values():
    """α ≡ 0 and Σα₊ < 1/2: B = 0, radius n; Σα₊ = 1/2: the limit value P(αᵀY = 1/2)."""
    y = np.array([0, 1, 1, 0, 1])
    q = 0.1
    A = np.array([np.zeros(5), [0.25, 0.125, 0, 0, 0], [0.25, 0.25, -0.5, 0, 0]])
    res = numbaflip.certify_alpha(A, y, q=q, bounds=("kl",))
    assert list(res.prediction) == [0, 0, 0]
    assert res.log_p_wrong[0] == -np.inf and res.radius["kl"][0] == 5
    assert res.log_p_wrong[1] == -np.inf and res.radius["kl"][1] == 5
    # limit: P(Y_0 = 1) P(Y_1 = 1) P(Y_2 = 0) with y = (0, 1, 1): q (1−q) q
    expected = np.log(q * (1 - q) * q)
    assert res.status[2] == 3
    assert expected <= res.log_p_wrong[2] <= expected + 1e-12


def test_bruteforce_instances_are_not_vacuous():
    """The instances above must exercise certified radii, not only −1 (else the comparison
    with the true radius could never fail)."""
    kl_pos = tight_gain = true_pos = 0
    for seed in range(20):
        n, y, q, A, res = _binary_instance(seed, 9)
        for j in range(A.shape[0]):
            _, true_r = brute_force_binary(A[j], y, float(q), res.prediction[j])
            kl_pos += 1 <= res.radius["kl"][j] < n
            tight_gain += res.radius["tight"][j] > res.radius["kl"][j]
            true_pos += 1 <= true_r < n
    assert kl_pos >= 5 and tight_gain >= 3 and true_pos >= 10, (kl_pos, tight_gain, true_pos)
