"""The shared reference cases (exact arithmetic; copied to tests/data/cases): predictions, radii
and log B.

- ``pred`` and ``radius_kl`` reproduced exactly; ``radius_tight`` exactly (when the tight bound
  is available);
- log B: the float64 estimate (``log_p_wrong − log_p_wrong_err``) within 1e−9 relative (full-pass
  engine), and the reported upper bound ``log_p_wrong`` never below the exact value (it is an
  upper bound); with the histogram engine the same radii and an interval
  [log_p_wrong − 2·err, log_p_wrong] that holds the exact value;
- no radius ever above ``radius_tight`` (over-certification), nor above the brute-force true
  radius where the case has one;
- cases with features: certifying from X, T and λ gives the same predictions and radii;
- every case that INDEX.json lists is present and loaded (a missing file fails, never skips).
"""
import json

import mpmath
import numpy as np
import pytest

import numbaflip

import _data

FILES = _data.case_files()  # raises (collection error) when the data is missing


def _load(path):
    d = json.loads(path.read_text())
    nc = None if d["formulation"] == "binary" else int(d["K"])
    return d, np.array(d["alphas"], dtype=np.float64), np.array(d["labels"]), nc


def _ref_logb(o):
    return -np.inf if o["logB"] == "-inf" else mpmath.mpf(o["logB"])


def _bounds():
    return ("kl", "tight")


def _certify_all(engine):
    out = {}
    try:
        numbaflip.config.config.chernoff_engine = engine
        for p in FILES:
            d, A, y, nc = _load(p)
            out[p.name] = (d, numbaflip.certify_alpha(A, y, q=d["q"], num_classes=nc,
                                                      bounds=_bounds()))
    finally:
        numbaflip.config.reset()
    return out


@pytest.fixture(scope="module")
def results():
    """Full-pass engine: log B to 1e−9 (the histogram engine is checked separately)."""
    return _certify_all("passes")


def _checked_outputs(path, d, res):
    """Checks every output of a case that both engines must meet — prediction and radii
    exactly, B = 0 reproduced, log_p_wrong never below the exact log B — and yields
    (where, output, log_p_wrong, its error bound, exact log B) for the finite ones."""
    for j, o in enumerate(d["outputs"]):
        where = f"{path.stem}[{j}]"
        assert res.prediction[j] == o["pred"], where
        assert res.radius["kl"][j] == o["radius_kl"], where
        assert res.radius["kl"][j] <= o["radius_tight"], where
        assert res.radius["tight"][j] == o["radius_tight"], where
        ref = _ref_logb(o)
        got = res.log_p_wrong[j]
        if ref == -np.inf:
            assert got == -np.inf, where
            continue
        assert mpmath.mpf(float(got)) >= ref, f"{where}: upper bound below the exact value"
        yield where, o, got, res.log_p_wrong_err[j], ref


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_case(path, results):
    d, res = results[path.name]
    for where, o, got, err, ref in _checked_outputs(path, d, res):
        est = got - err
        assert abs(mpmath.mpf(float(est)) - ref) <= 1e-9 * abs(ref), (where, got, ref)


@pytest.fixture(scope="module")
def results_histogram():
    """The same cases with the histogram engine forced ("auto" uses it from n = 4096 on)."""
    return _certify_all("histogram")


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_case_histogram_engine(path, results_histogram):
    """Same predictions and radii; log_p_wrong a valid upper bound whose interval
    [log_p_wrong − 2·err, log_p_wrong] holds the exact value (the sandwich of math.md §2b)."""
    d, res = results_histogram[path.name]
    for where, o, got, err, ref in _checked_outputs(path, d, res):
        low = got - 2 * err
        assert mpmath.mpf(float(low)) <= ref + 1e-9 * abs(ref), (where, got, ref)


BRUTE_FORCE_FILES = [p for p in FILES if "bruteforce" in p.name]


@pytest.mark.parametrize("path", BRUTE_FORCE_FILES, ids=lambda p: p.stem)
def test_case_brute_force(path, results):
    d, res = results[path.name]
    for j, bf in enumerate(d["brute_force"] or []):
        true_r = bf.get("true_radius", bf.get("true_radius_strict"))
        for b, r in res.radius.items():
            assert r[j] <= true_r, (path.stem, j, b)


FEATURE_FILES = [p for p in FILES if json.loads(p.read_text()).get("features")]


@pytest.mark.parametrize("path", FEATURE_FILES, ids=lambda p: p.stem)
def test_case_from_features(path, results):
    d, res_alpha = results[path.name]
    f = d["features"]
    nc = None if d["formulation"] == "binary" else int(d["K"])
    X = np.array(f["X"])
    T = np.array(f["T"])
    res = numbaflip.certify(X, np.array(d["labels"]), T, q=d["q"], lam=float(f["lambda"]),
                            num_classes=nc, fit_intercept=False, bounds=_bounds())
    # Column 0 of X is already the constant 1, hence fit_intercept=False.
    np.testing.assert_array_equal(res.prediction, [o["pred"] for o in d["outputs"]])
    np.testing.assert_array_equal(res.radius["kl"], [o["radius_kl"] for o in d["outputs"]])
    if "tight" in res.radius:
        np.testing.assert_array_equal(res.radius["tight"],
                                      [o["radius_tight"] for o in d["outputs"]])


MP_FILES = [_data.case_file(stem) for stem in (
    "bin_ridge_q1e-4_n500", "bin_ridge_q1e-5_n50", "bin_tiny_bruteforce", "mc3_ridge_q1e-4_n60",
    "mc3_top_tie", "mc10_ridge_q1e-3_n300", "bin_limit_sumpos_half", "bin_unbounded_small")]


@pytest.mark.parametrize("path", MP_FILES, ids=lambda p: p.stem)
def test_case_precision_mp(path):
    """precision='mp' (every point re-evaluated in mpmath at the t used): same predictions and
    radii, and the upper bound is still never below the exact value."""
    d, A, y, nc = _load(path)
    res = numbaflip.certify_alpha(A, y, q=d["q"], num_classes=nc, bounds=_bounds(),
                                  precision="mp")
    for j, o in enumerate(d["outputs"]):
        assert res.prediction[j] == o["pred"]
        assert res.radius["kl"][j] == o["radius_kl"]
        assert res.radius["tight"][j] == o["radius_tight"]
        ref = _ref_logb(o)
        if ref != -np.inf:
            assert mpmath.mpf(float(res.log_p_wrong[j])) >= ref
            assert abs(mpmath.mpf(float(res.log_p_wrong[j])) - ref) <= 1e-9 * abs(ref)


def test_all_indexed_cases_loaded(results):
    """The copied data is complete: exactly the cases INDEX.json lists (56 files, 167 test
    points, as tests/data/cases/README.md says), each present and certified above."""
    index = _data.index()
    names = sorted(e["name"] for e in index)
    assert len(names) == 56 and sum(e["m"] for e in index) == 167
    assert sorted(p.stem for p in FILES) == names
    assert sorted(results) == sorted(f"{n}.json" for n in names)
    for e in index:
        d, res = results[f"{e['name']}.json"]
        assert len(d["outputs"]) == e["m"] == res.prediction.shape[0], e["name"]
        assert [o[0] for o in e["outputs"]] == [o["pred"] for o in d["outputs"]], e["name"]
    assert len(BRUTE_FORCE_FILES) >= 3 and len(FEATURE_FILES) >= 1


def test_all_threshold_tables_present():
    """The 11 reference threshold tables of tests/data/cases/README.md are all there."""
    want = {("0.4", 2), ("0.3", 2), ("0.1", 2), ("0.01", 2), ("1e-3", 2), ("1e-4", 2),
            ("1e-5", 2), ("0.3", 3), ("0.01", 3), ("0.05", 10), ("0.0125", 10)}
    got = set()
    for p in _data.threshold_files():
        d = json.loads(p.read_text())
        assert p.name == f"thresholds_q{d['q']}_K{d['K']}.json"
        assert len(d["rows"]) == d["r_max"] + 1
        got.add((d["q"], d["K"]))
    assert got == want
