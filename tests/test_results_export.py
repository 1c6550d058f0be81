"""CertifyResult.to_dict / to_frame: provenance plus one JSON-safe record per test point."""
import json
import math
import sys

import numpy as np
import pytest

import numbaflip
from numbaflip.errors import NumbaflipInputError
from numbaflip.results import CertifyResult


def _strict_loads(text):
    def no_constants(name):
        raise AssertionError(f"invalid JSON token {name}")
    return json.loads(text, parse_constant=no_constants)


@pytest.fixture(scope="module")
def real():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(50, 3))
    y = (X[:, 0] > 0).astype(int)
    T = rng.normal(size=(5, 3))
    yt = (T[:, 0] > 0).astype(int)
    return numbaflip.certify(X, y, T, q=0.1, bounds=("kl", "exact")), yt


def _handmade():
    return CertifyResult(
        prediction=np.array([0, 1, 1]), radius={"kl": np.array([3, -1, 40])},
        log_p_wrong=np.array([-2.5, np.nan, -np.inf]), log_p_wrong_err=np.zeros(3),
        status=np.zeros(3, np.int8), t_star=np.zeros(3), pair_log_b=None, q="0.1",
        num_classes=None, n=40, bounds=("kl",), lam=0.5)


def test_to_dict_matches_the_result_and_is_strict_json(real):
    res, yt = real
    d = res.to_dict(yt)
    assert set(d) == {"metadata", "points"}
    back = _strict_loads(json.dumps(d, allow_nan=False))
    assert back == d
    assert [p["index"] for p in d["points"]] == list(range(5))
    assert [p["prediction"] for p in d["points"]] == np.asarray(res.prediction).tolist()
    assert [p["label"] for p in d["points"]] == yt.tolist()
    for b in ("kl", "exact"):
        assert [p[f"radius_{b}"] for p in d["points"]] == res.radius[b].tolist()
    for p, v in zip(d["points"], res.log_p_wrong):
        assert p["log_p_wrong"] == (v if math.isfinite(v) else str(v))
    meta = d["metadata"]
    for k in ("numbaflip_version", "q", "K", "n_train", "n_test", "bounds", "classes"):
        assert k in meta
    assert meta["n_train"] == 50 and meta["n_test"] == 5 and meta["q"] == "0.1"
    assert meta["numbaflip_version"] == numbaflip.__version__


def test_to_dict_non_finite_log_p_wrong_as_strings():
    d = _handmade().to_dict()
    assert [p["log_p_wrong"] for p in d["points"]] == [-2.5, "nan", "-inf"]
    assert "label" not in d["points"][0]
    _strict_loads(json.dumps(d, allow_nan=False))  # raises on NaN/Infinity tokens


def test_to_dict_rejects_wrong_number_of_labels():
    with pytest.raises(NumbaflipInputError, match="one test label per test point"):
        _handmade().to_dict([0, 1])


def test_to_frame_columns_and_metadata():
    import pandas as pd  # in the test extra, so this runs in CI
    f = _handmade().to_frame(np.array([0, 0, 1]))
    assert list(f.columns) == ["prediction", "label", "radius_kl", "log_p_wrong"]
    assert f.index.name == "index" and len(f) == 3
    assert f["radius_kl"].tolist() == [3, -1, 40]
    assert f["log_p_wrong"].iloc[2] == -np.inf and np.isnan(f["log_p_wrong"].iloc[1])
    assert f.attrs["metadata"]["n_train"] == 40
    assert isinstance(f, pd.DataFrame)


def test_to_frame_without_pandas_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas -> ImportError
    with pytest.raises(ImportError, match="pip install pandas"):
        _handmade().to_frame()
