"""Fast tests of the helpers behind scripts/ (IDX reader, PCA, paper-layout tables with the
attack row, certify_grid with the ridge attack, the Figure-1-style plot)."""
import gzip
import os
import struct
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "scripts"))
import _common  # noqa: E402


def _write_idx(path, arr, code=0x08, gz=False):
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    payload = header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    with (gzip.open if gz else open)(path, "wb") as fh:
        fh.write(payload)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip_and_mnist_dir(tmp_path, gz):
    rng = np.random.default_rng(1)
    ext = ".gz" if gz else ""
    sets = {}
    for split, n in (("train", 12), ("t10k", 5)):
        img = rng.integers(0, 256, size=(n, 4, 3), dtype=np.uint8)
        lab = rng.integers(0, 10, size=n).astype(np.uint8)
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte{ext}", img, gz=gz)
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte{ext}", lab, gz=gz)
        sets[split] = (img, lab)
    tr_img, tr_lab, te_img, te_lab = _common.load_mnist_dir(tmp_path)
    np.testing.assert_array_equal(tr_img, sets["train"][0].reshape(12, 12))
    np.testing.assert_array_equal(te_lab, sets["t10k"][1])
    assert tr_lab.dtype == np.int64


def test_idx_float_and_errors(tmp_path):
    a = np.arange(6, dtype=np.float64).reshape(2, 3) / 7
    _write_idx(tmp_path / "f.idx", a, code=0x0E)
    np.testing.assert_array_equal(_common.read_idx(tmp_path / "f.idx"), a)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        _common.read_idx(tmp_path / "bad")
    with pytest.raises(FileNotFoundError, match="train-images"):
        _common.load_mnist_dir(tmp_path)


def test_pca_is_label_free_and_ordered():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 6)) * np.array([5, 4, 3, 2, 1, 0.5])
    Ftr, Fte = _common.pca_features(X, X[:3], 3)
    np.testing.assert_allclose(Ftr[:3], Fte)
    var = Ftr.var(axis=0)
    assert np.all(np.diff(var) < 0)


def test_paper_table_marks_best():
    res = dict(bounds=("kl", "tight"), clean={0.1: 0.9, 0.2: 0.8},
               acc={"kl": {0.1: np.array([0.8, 0.1]), 0.2: np.array([0.7, 0.3])},
                    "tight": {0.1: np.array([0.85, 0.2]), 0.2: np.array([0.85, 0.0])}})
    text = _common.paper_table(res, (1, 10), title="T")
    lines = [ln for ln in text.splitlines() if ln.startswith("| ")]
    assert "Each cell: tight / KL." in text
    assert lines[0] == "| q ↓ | clean | r = 1 | r = 10 |"
    assert lines[1] == "| 0.1 | 0.9000 | **0.8500** / **0.8000** | **0.2000** / 0.1000 |"
    assert lines[2] == "| 0.2 | 0.8000 | **0.8500** / 0.7000 | 0.0000 / **0.3000** |"


def test_paper_table_attack_row():
    res = dict(bounds=("exact", "tight"), clean={0.0: 0.9, 0.1: 0.8},
               acc={"exact": {0.0: np.array([0.9, 0.5]), 0.1: np.array([0.8, 0.6])},
                    "tight": {0.1: np.array([0.7, 0.2])}},
               attack=dict(acc=np.array([0.9, 0.5]), clean=0.9, matches_exact=True))
    text = _common.paper_table(res, (1, 10), title="T")
    lines = [ln for ln in text.splitlines() if ln.startswith("| ")]
    assert lines[1] == "| 0 (ridge) | 0.9000 | **0.9000** / – | 0.5000 / – |"
    assert lines[2] == "| ridge (q = 0): attack (upper bound) | (0.9000) | (0.9000) | (0.5000) |"
    assert lines[3] == "| 0.1 | 0.8000 | 0.8000 / **0.7000** | **0.6000** / **0.2000** |"
    assert "equals the exact row" in text


def _small_problem(seed=3, n=120, m=40):
    rng = np.random.default_rng(seed)
    Xtr = rng.normal(size=(n, 3))
    ytr = (Xtr[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(np.int64)
    Xte = rng.normal(size=(m, 3))
    yte = (Xte[:, 0] > 0).astype(np.int64)
    return Xtr, ytr, Xte, yte


def test_certify_grid_attack_matches_exact():
    Xtr, ytr, Xte, yte = _small_problem()
    res = _common.certify_grid(Xtr, ytr, Xte, yte, qs=(0.2,), radii=(0, 1, 5),
                               bounds=("exact", "kl"), log=None)
    att = res["attack"]
    assert att["matches_exact"] is True
    np.testing.assert_array_equal(att["acc"], res["acc"]["exact"][0.0])
    assert np.all(att["size"][att["size"] >= 1] == att["radius_ub"][att["size"] >= 1] + 1)


def test_save_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(4)
    m, n = 60, 500
    y = rng.integers(0, 2, size=m)
    pred = np.where(rng.random(m) < 0.9, y, 1 - y)
    rad = {q: rng.integers(-1, 80, size=m) for q in (0.0, 0.1, 0.2)}
    res = dict(bounds=("exact", "tight", "kl"), y_test=y, n_train=n,
               clean={q: float(np.mean(pred == y)) for q in rad},
               prediction={q: pred for q in rad},
               radius={"exact": {q: 2 * rad[q] + 1 for q in rad},
                       "tight": {q: rad[q] for q in (0.1, 0.2)},
                       "kl": {q: rad[q] // 2 for q in (0.1, 0.2)}},
               attack=dict(prediction=pred, radius_ub=2 * rad[0.0] + 1, matches_exact=True))
    paths = _common.save_plot(res, tmp_path / "plot", title="t", r_max=300, log=None)
    assert str(tmp_path / "plot.png") in paths
    for p in paths:
        assert os.path.getsize(p) > 1000
    with open(tmp_path / "plot.png", "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
