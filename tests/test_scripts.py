"""Fast tests of the helpers behind scripts/ (IDX reader, PCA, paper-layout tables)."""
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
