"""Inputs that once broke a promise (issue: safety at the edges).  Each test is named after
what it broke; none may ever raise a radius above the truth."""
from fractions import Fraction

import numpy as np
import pytest

import numbaflip
from numbaflip import NumbaflipInputError, NumbaflipWarning
from numbaflip.tight import cache as _tables
from numbaflip._problem import class_slots, parse_q

from naive import brute_force_multiclass
from naive_exact import brute_radius


# -- q grammar and floors ------------------------------------------------------------------

LIMIT_ALPHA = np.array([[0.25, 0.25, -0.5, 0.0]])   # Σ_{α>0} α = 1/2 exactly: the limit case
LIMIT_Y = np.array([1, 1, 0, 0])


@pytest.mark.parametrize("q", ["7e-324", "5e-320", "1e-301", "1e-400", "1e-99999"])
def test_subnormal_or_tiny_q_refused_instead_of_over_certifying(q):
    with pytest.raises(NumbaflipInputError, match="below the supported floor"):
        numbaflip.certify_alpha(LIMIT_ALPHA, LIMIT_Y, q=q, bounds=("kl", "tight"))


def test_q_at_the_floor_limit_case_matches_exact_probability():
    # q = 1e-300 is a normal double; B = P(αᵀY = 1/2) = (1−q)^2 (1−q) · 1: log B ≈ −3q.
    res = numbaflip.certify_alpha(LIMIT_ALPHA, LIMIT_Y, q="1e-300", bounds=("kl", "tight"))
    assert res.status[0] == 3  # limit
    assert res.log_p_wrong[0] >= -3e-300 - 1e-310
    assert res.radius["tight"][0] == -1   # B ≈ 1: nothing certified


@pytest.mark.parametrize("q", ["0.49999999999999999999", "0.4999999999999", 0.5])
def test_q_that_rounds_to_one_half_is_a_clear_error(q):
    with pytest.raises(NumbaflipInputError, match="1/2"):
        numbaflip.certify_alpha(LIMIT_ALPHA, LIMIT_Y, q=q, bounds=("exact",))


def test_fraction_q_accepted_by_certify_and_attack_alike():
    A = np.array([[0.3, 0.3, -0.1, 0.2]])
    r1 = numbaflip.certify_alpha(A, LIMIT_Y, q="1/3", num_classes=3, bounds=("kl", "exact"))
    a1 = numbaflip.attack_alpha(A, LIMIT_Y, q="1/3", num_classes=3)
    assert r1.metadata["q_canonical"] == "1/3"
    assert np.array_equal(r1.prediction, a1.prediction)
    assert parse_q("1/3", 3).exact == Fraction(1, 3)
    for bad in ["1/0", "1/3/4", "0x1p-3", "nan", "1e5e5", "", "   "]:
        with pytest.raises(NumbaflipInputError):
            parse_q(bad)


def test_q_grammar_decimal_forms_are_exact():
    assert parse_q("1E-04").canonical == parse_q("0.0001").canonical == "0.0001"
    assert parse_q(".25").exact == Fraction(1, 4)
    assert parse_q(0.1).exact == Fraction(1, 10)          # float through its repr
    assert parse_q(0, allow_zero=True).exact == 0
    with pytest.raises(NumbaflipInputError, match="bounds=\\('exact',\\)"):
        parse_q(0)
    with pytest.raises(NumbaflipInputError):
        parse_q(True)


# -- overflow --------------------------------------------------------------------------------

@pytest.mark.parametrize("lam", ["auto", 1.0])
def test_overflowing_features_are_an_error_not_a_wrong_certified_prediction(lam):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 3)) * 1e154
    y = (X[:, 0] > 0).astype(np.int64)
    T = rng.normal(size=(4, 3)) * 1e154
    with pytest.raises(NumbaflipInputError, match="Scale the features"):
        numbaflip.certify(X, y, T, q=0.1, lam=lam, bounds=("kl", "exact"))
    with pytest.raises(NumbaflipInputError, match="Scale the features"):
        numbaflip.attack(X, y, T, q=0.1, lam=lam)


def test_complex_alpha_refused_instead_of_cast():
    with pytest.raises(NumbaflipInputError, match="complex"):
        numbaflip.certify_alpha(LIMIT_ALPHA + 1e-3j, LIMIT_Y, q=0.1)


def test_sparse_features_refused_clearly():
    sparse = pytest.importorskip("scipy.sparse")
    X = sparse.random(20, 4, density=0.5, random_state=0, format="csr")
    with pytest.raises(NumbaflipInputError, match="scipy.sparse"):
        numbaflip.certify(X, np.arange(20) % 2, np.ones((2, 4)), q=0.1)


def test_bounds_none_and_huge_num_classes_are_clear_errors():
    with pytest.raises(NumbaflipInputError, match="bounds must be"):
        numbaflip.certify_alpha(LIMIT_ALPHA, LIMIT_Y, q=0.1, bounds=None)
    for K in (2 ** 40, 10 ** 9):
        with pytest.raises(NumbaflipInputError, match="num_classes must be an integer from 2"):
            numbaflip.certify_alpha(LIMIT_ALPHA, LIMIT_Y, q=0.1, num_classes=K)


# -- work scales with what is needed ---------------------------------------------------------

def test_tight_near_one_half_large_n_needs_no_table_where_kl_certifies_n(monkeypatch):
    n = 200_000
    A = np.full((2, n), 1.0 / n)
    A[0, : n // 2] *= 1.5                  # score 1.25 against the threshold 1/2
    A[1, : n // 2] *= 2.0
    y = np.ones(n, dtype=np.int64)
    y[::1000] = 0
    asked = []
    real = _tables.get_log_thresholds

    def spy(q_str, K, r_needed, **kw):
        asked.append(r_needed)
        return real(q_str, K, r_needed, **kw)

    monkeypatch.setattr(_tables, "get_log_thresholds", spy)
    res = numbaflip.certify_alpha(A, y, q="0.4999", bounds=("kl", "tight"), precision="float64")
    assert np.all(res.radius["kl"] == n)
    assert np.all(res.radius["tight"] == n)
    assert asked == []                    # the O(n²) table up to r = n was the hang


def test_many_absent_classes_cost_what_the_present_ones_cost():
    rng = np.random.default_rng(5)
    A = rng.normal(size=(3, 4))
    y = np.array([0, 3, 0, 3])
    sl = class_slots(y, 100_000)
    assert sl.S == 4 and sl.weight.sum() == 100_000 - 1 + 1  # slots 0, 1, 2, 3
    res = numbaflip.certify_alpha(A, y, q=0.05, num_classes=100_000,
                                  bounds=("kl", "tight", "exact"))
    att = numbaflip.attack_alpha(A, y, q=0.05, num_classes=100_000)
    assert np.array_equal(res.prediction, att.prediction)
    assert np.array_equal(res.radius["exact"], att.radius_upper_bound())
    assert res.pair_log_b.shape == (3, 100_000)


@pytest.mark.parametrize("seed", range(6))
def test_absent_classes_never_over_certify_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    K, n = 5, 4
    y = rng.choice([1, 3], size=n)          # classes 0, 2, 4 absent
    A = rng.normal(size=(3, n)) * rng.choice([0.3, 1.0, 3.0])
    q = 0.05
    res = numbaflip.certify_alpha(A, y, q=q, num_classes=K, bounds=("kl", "tight", "exact"))
    for j in range(A.shape[0]):
        c = int(res.prediction[j])
        p_wrong, true_r = brute_force_multiclass(A[j], y, q, K, c)
        assert res.log_p_wrong[j] >= np.log(max(p_wrong, 1e-300)) - 1e-9
        assert res.radius["tight"][j] <= true_r
        assert res.radius["kl"][j] <= true_r
        pred_exact, r_exact = brute_radius(A[j], y, num_classes=K)
        assert int(pred_exact) == c
        assert res.radius["exact"][j] == r_exact


def test_slots_reproduce_the_full_class_computation():
    # Same problem with every class as its own slot (all present through tiny weights being
    # irrelevant is not possible), so compare K = 6 with 2 present against the mp union bound
    # over all 5 rivals at the t the kernel used.
    from numbaflip import precision as P

    rng = np.random.default_rng(11)
    y = np.array([1, 4, 1, 4, 1, 4, 4, 1])
    A = rng.normal(size=(2, 8)) * 0.4
    res = numbaflip.certify_alpha(A, y, q="0.2", num_classes=6, bounds=("kl",),
                                  precision="float64")
    for j in range(2):
        full = P.mp_multiclass_log_bound(A[j], y, int(res.prediction[j]), 6, "0.2",
                                         res.t_star[j])
        assert res.log_p_wrong[j] >= full - 1e-12
        assert res.log_p_wrong[j] <= full + 1e-6


# -- labels as users have them -----------------------------------------------------------------

@pytest.mark.parametrize("labels", [(-1, 1), (1, 2), ("cat", "dog")])
def test_user_labels_map_to_classes_like_scikit_learn(labels):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 3))
    y01 = (X[:, 0] > 0).astype(np.int64)
    T = rng.normal(size=(6, 3))
    y_user = np.asarray(labels)[y01]
    ref = numbaflip.certify(X, y01, T, q=0.1, bounds=("kl", "exact"))
    res = numbaflip.certify(X, y_user, T, q=0.1, bounds=("kl", "exact"))
    assert list(res.classes_) == sorted(labels)
    assert np.array_equal(res.prediction, np.asarray(labels)[ref.prediction])
    assert np.array_equal(res.prediction_index, ref.prediction)
    for b in ref.radius:
        assert np.array_equal(res.radius[b], ref.radius[b])
    acc = res.certified_accuracy(np.asarray(labels)[(T[:, 0] > 0).astype(int)], radii=(0,))
    acc_ref = ref.certified_accuracy((T[:, 0] > 0).astype(int), radii=(0,))
    assert np.array_equal(acc, acc_ref)
    att = numbaflip.attack(X, y_user, T, q=0.1)
    assert np.array_equal(att.prediction, res.prediction)
    for i in range(len(att)):
        if att.size[i] >= 1:
            y2 = att.attacked_labels(y_user, i)
            assert set(np.unique(y2)) <= set(labels)


def test_metadata_records_provenance():
    res = numbaflip.certify_alpha(LIMIT_ALPHA, LIMIT_Y, q="1e-1", bounds=("kl", "tight"))
    md = res.metadata
    assert md["q"] == "1e-1" and md["q_canonical"] == "0.1"
    assert md["n_train"] == 4 and md["n_test"] == 1 and md["K"] == 2
    assert md["bounds"] == ["kl", "tight"] and md["formulation"] == "binary"
    assert md["threshold_table"] == {"q": "0.1", "K": 2, "method": "auto"}
    assert md["numbaflip_version"] == numbaflip.__version__


def test_q_rounding_is_charged_to_the_float64_bound():
    # q = 0.1 is not a double: the float64 value is shifted up by at most n·u; q = 0.25 is.
    A = np.array([[0.3, 0.4, -0.1, 0.2]])
    r1 = numbaflip.certify_alpha(A, LIMIT_Y, q="0.1", precision="float64")
    r2 = numbaflip.certify_alpha(A, LIMIT_Y, q="0.1", precision="mp")
    assert r1.log_p_wrong[0] >= r2.log_p_wrong[0]
    with pytest.warns(NumbaflipWarning, match="single class"):
        numbaflip.certify_alpha(A, np.ones(4, int), q="0.25")
