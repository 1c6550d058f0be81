"""numbaflip.features: the label-free contrastive encoder, the image reader and the CLI.

The encoder runs are tiny (a few dozen 12×12 images, one epoch): they check the contract —
no labels, determinism per seed, save/load, errors — not the quality of the features, which
scripts/repro_features.py measures on Fashion-MNIST.
"""
import gzip
import inspect
import os
import subprocess
import sys

import numpy as np
import pytest

from numbaflip import NumbaflipInputError
from numbaflip.cli import main
from numbaflip.features import ContrastiveEncoder, check_images
from numbaflip.features.contrastive import FORMAT, FORMAT_VERSION
from numbaflip.io.images import load_images, load_labels, read_idx

TINY = dict(dim=4, epochs=1, batch_size=16, width=4, n_threads=1, progress=False)


def _images(n=48, side=12, seed=0, channels=None):
    rng = np.random.default_rng(seed)
    shape = (n, side, side) if channels is None else (n, channels, side, side)
    return rng.integers(0, 256, size=shape).astype(np.uint8)


@pytest.fixture(scope="module")
def fitted():
    return ContrastiveEncoder(**TINY).fit(_images())


# --------------------------------------------------------------------------------------------
# the contract: no labels, deterministic, persistent
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["fit", "fit_transform", "transform"])
def test_encoder_methods_take_images_only_never_labels(method):
    params = list(inspect.signature(getattr(ContrastiveEncoder, method)).parameters)
    assert params == ["self", "images"]


def test_fit_refuses_a_second_argument_such_as_labels():
    with pytest.raises(TypeError):
        ContrastiveEncoder(**TINY).fit(_images(), np.zeros(48))


def test_features_shape_dtype_and_loss_history(fitted):
    F = fitted.transform(_images(n=5, seed=1))
    assert F.shape == (5, 4) and F.dtype == np.float64 and np.isfinite(F).all()
    assert len(fitted.loss_history_) == 1 and np.isfinite(fitted.loss_history_[0])
    assert fitted.input_shape_ == (1, 12, 12) and fitted.fit_seconds_ > 0


def test_same_seed_same_features_other_seed_other_features(fitted):
    x = _images()
    again = ContrastiveEncoder(**TINY).fit(x)
    np.testing.assert_array_equal(again.transform(x), fitted.transform(x))
    other = ContrastiveEncoder(**{**TINY, "seed": 1}).fit(x)
    assert not np.array_equal(other.transform(x), fitted.transform(x))


def test_fit_does_not_touch_the_global_torch_random_state():
    import torch
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ContrastiveEncoder(**TINY).fit(_images())
    assert torch.equal(torch.rand(3), expected)


def test_threads_restored_after_fit_and_transform(fitted):
    import torch
    before = torch.get_num_threads()
    fitted.transform(_images(n=3))
    assert torch.get_num_threads() == before


def test_save_load_round_trip_gives_identical_features(fitted, tmp_path):
    path = tmp_path / "enc.pt"
    fitted.save(path)
    loaded = ContrastiveEncoder.load(path, n_threads=1)
    x = _images(n=7, seed=3)
    np.testing.assert_array_equal(loaded.transform(x), fitted.transform(x))
    assert loaded.get_params()["dim"] == 4 and loaded.input_shape_ == (1, 12, 12)


def test_multichannel_images(tmp_path):
    x = _images(channels=3)
    enc = ContrastiveEncoder(**TINY).fit(x)
    assert enc.transform(x[:2]).shape == (2, 4) and enc.input_shape_ == (3, 12, 12)


def test_get_params_set_params_round_trip():
    enc = ContrastiveEncoder(**TINY)
    assert enc.get_params()["batch_size"] == 16
    enc.set_params(dim=8)
    assert enc.dim == 8 and enc.epochs == 1


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("images, match", [
    (np.zeros((4, 144)), "shape \\(n, H, W\\)"),
    (np.zeros((2, 2, 2, 12, 12)), "rank 5"),
    (np.zeros((0, 12, 12)), "empty"),
    (np.zeros((4, 5, 5)), "at least 8×8"),
    (np.full((4, 12, 12), np.nan), "non-finite"),
    (np.full((4, 12, 12), 1e300), "rescale"),
    (np.array([["a"] * 12] * 12)[None], "dtype"),
    ([[1, 2], [3, 4]], "numpy array|shape"),
])
def test_bad_images_are_clear_errors(images, match):
    with pytest.raises(NumbaflipInputError, match=match):
        check_images(images)


def test_fewer_images_than_a_batch_is_a_clear_error():
    with pytest.raises(NumbaflipInputError, match="fewer than one batch"):
        ContrastiveEncoder(**TINY).fit(_images(n=10))


def test_transform_before_fit_is_a_clear_error():
    with pytest.raises(NumbaflipInputError, match="not fitted"):
        ContrastiveEncoder(**TINY).transform(_images())


def test_transform_of_other_image_size_is_a_clear_error(fitted):
    with pytest.raises(NumbaflipInputError, match="fitted on \\(1, 12, 12\\)"):
        fitted.transform(_images(side=16))


@pytest.mark.parametrize("option", [dict(dim=0), dict(epochs=1.5), dict(batch_size=True),
                                    dict(lr=0), dict(temperature=-1), dict(scale=(1.2, 0.8)),
                                    dict(pixel_dropout=1.0), dict(seed=-1), dict(n_threads=0),
                                    dict(scale="big"), dict(flip="yes"), dict(jitter=2.0)])
def test_bad_options_are_clear_errors(option):
    with pytest.raises(NumbaflipInputError):
        ContrastiveEncoder(**{**TINY, **option})


def _resave(fitted, path, **changes):
    import torch
    fitted.save(path)
    blob = torch.load(path, weights_only=True)
    blob.update(changes)
    torch.save(blob, path)


def test_encoder_file_of_another_version_is_refused(fitted, tmp_path):
    path = tmp_path / "old.pt"
    _resave(fitted, path, format_version=FORMAT_VERSION + 1)
    with pytest.raises(NumbaflipInputError, match="format version .*refit"):
        ContrastiveEncoder.load(path)


def test_file_that_is_not_an_encoder_is_refused(fitted, tmp_path):
    path = tmp_path / "other.pt"
    _resave(fitted, path, format="something else")
    with pytest.raises(NumbaflipInputError, match="not a numbaflip encoder"):
        ContrastiveEncoder.load(path)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(NumbaflipInputError, match="cannot read"):
        ContrastiveEncoder.load(junk)


def test_encoder_file_with_wrong_tensors_is_refused(fitted, tmp_path):
    import torch
    path = tmp_path / "bad.pt"
    fitted.save(path)
    blob = torch.load(path, weights_only=True)
    key = next(iter(blob["state_dict"]))
    blob["state_dict"][key] = torch.zeros(1)
    torch.save(blob, path)
    with pytest.raises(NumbaflipInputError, match="not a valid numbaflip encoder"):
        ContrastiveEncoder.load(path)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_encoder_file_with_code_is_not_executed(tmp_path):
    """A pickle that would run code on load is refused by weights_only loading."""
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump({"format": FORMAT, "x": Evil()}, fh)
    with pytest.raises(NumbaflipInputError):
        ContrastiveEncoder.load(path)
    assert not (tmp_path / "pwned").exists()


def test_without_torch_import_works_and_the_encoder_says_how_to_install():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import numbaflip, numbaflip.features\n"
            "from numbaflip.features import ContrastiveEncoder\n"
            "try:\n    ContrastiveEncoder()\nexcept ImportError as e:\n    print('IMPORTERROR', e)\n"
            "from numbaflip.cli import main\n"
            "sys.exit(main(['features', '--images', sys.argv[1], '--out', sys.argv[2]]))\n")
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, "img.npy")
        np.save(img, _images())
        proc = subprocess.run([sys.executable, "-c", code, img, os.path.join(d, "f.npz")],
                              capture_output=True, text=True, timeout=120)
        assert "IMPORTERROR" in proc.stdout and "pip install 'numbaflip[features]'" in proc.stdout
        assert proc.returncode == 2 and "numbaflip[features]" in proc.stderr
        assert not os.path.exists(os.path.join(d, "f.npz"))


# --------------------------------------------------------------------------------------------
# IDX / npy image files
# --------------------------------------------------------------------------------------------
def _idx_bytes(arr, code=0x08, dims=None):
    dims = arr.shape if dims is None else dims
    head = bytes([0, 0, code, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims)
    return head + arr.astype({0x08: ">u1", 0x0D: ">f4"}[code]).tobytes()


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    x = _images(n=5)
    path = tmp_path / ("img-idx3-ubyte" + (".gz" if gz else ""))
    data = _idx_bytes(x)
    path.write_bytes(gzip.compress(data) if gz else data)
    np.testing.assert_array_equal(load_images(path), x)
    lab = tmp_path / "lab-idx1-ubyte"
    lab.write_bytes(_idx_bytes(np.arange(5, dtype=np.uint8)))
    np.testing.assert_array_equal(load_labels(lab), np.arange(5))


def test_idx_float_type(tmp_path):
    x = np.random.default_rng(0).random((3, 9, 9)).astype(np.float32)
    path = tmp_path / "f.idx"
    path.write_bytes(_idx_bytes(x, code=0x0D))
    np.testing.assert_array_equal(read_idx(path), x)


@pytest.mark.parametrize("mutate, match", [
    (lambda b: b[:-1], "truncated"),
    (lambda b: b + b"\x00", "more bytes"),
    (lambda b: b"\x01" + b[1:], "not an IDX file"),
    (lambda b: b[:2] + b"\x07" + b[3:], "not an IDX file"),
    (lambda b: b[:4] + (2**31).to_bytes(4, "big") * 3, "announces shape"),
    (lambda b: b[:3], "not an IDX file"),
])
def test_hostile_idx_files_are_refused_before_allocating(tmp_path, mutate, match):
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(mutate(_idx_bytes(_images(n=3))))
    with pytest.raises(NumbaflipInputError, match=match):
        load_images(path)


def test_gzip_bomb_stops_at_the_announced_size(tmp_path):
    head = bytes([0, 0, 8, 3]) + b"".join(int(d).to_bytes(4, "big") for d in (2, 10, 10))
    path = tmp_path / "bomb-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(head + bytes(200) + bytes(50_000_000)))
    with pytest.raises(NumbaflipInputError, match="more bytes"):
        load_images(path)


def test_image_files_of_the_wrong_kind(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros((4, 144)))
    with pytest.raises(NumbaflipInputError, match="shape \\(n, H, W\\)"):
        load_images(tmp_path / "flat.npy")
    np.save(tmp_path / "obj.npy", np.array([object()]), allow_pickle=True)
    with pytest.raises(NumbaflipInputError, match="pickled"):
        load_images(tmp_path / "obj.npy")
    (tmp_path / "x.png").write_bytes(b"png")
    with pytest.raises(NumbaflipInputError, match="unknown file type"):
        load_images(tmp_path / "x.png")
    np.save(tmp_path / "lab.npy", np.array([0.5, 1.0]))
    with pytest.raises(NumbaflipInputError, match="integers"):
        load_labels(tmp_path / "lab.npy")


# --------------------------------------------------------------------------------------------
# the CLI flow: features -> certify
# --------------------------------------------------------------------------------------------
def _cli_args(*args):
    return ["features", *map(str, args), "--dim", "4", "--epochs", "1", "--batch-size", "16",
            "--threads", "1", "--no-progress"]


def test_cli_features_then_certify(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x, xt = _images(n=48), _images(n=6, seed=5)
    np.save(tmp_path / "img.npy", x)
    np.save(tmp_path / "test.npy", xt)
    np.save(tmp_path / "y.npy", rng.integers(0, 2, 48))
    np.save(tmp_path / "yt.npy", rng.integers(0, 2, 6))
    assert main(_cli_args("--images", tmp_path / "img.npy", "--labels", tmp_path / "y.npy",
                          "--out", tmp_path / "train.npz", "--save-encoder",
                          tmp_path / "enc.pt")) == 0
    assert main(_cli_args("--encoder", tmp_path / "enc.pt", "--images", tmp_path / "test.npy",
                          "--labels", tmp_path / "yt.npy", "--out", tmp_path / "test.npz")) == 0
    with np.load(tmp_path / "train.npz") as z:
        assert z["X"].shape == (48, 4) and np.array_equal(z["y"], np.load(tmp_path / "y.npy"))
    enc = ContrastiveEncoder.load(tmp_path / "enc.pt", n_threads=1)
    with np.load(tmp_path / "test.npz") as z:
        np.testing.assert_array_equal(z["X"], enc.transform(xt))
    assert main(["certify", "--train", str(tmp_path / "train.npz"), "--test",
                 str(tmp_path / "test.npz"), "--q", "0", "--bounds", "exact",
                 "--out", str(tmp_path / "res.csv"), "--no-progress"]) == 0
    assert (tmp_path / "res.csv").read_text().count("\n") == 7


@pytest.mark.parametrize("extra, match", [
    (["--out", "{d}/f.txt"], "must end in .npz"),
    (["--out", "{d}/f.npy", "--labels", "{d}/y.npy"], "needs an .npz"),
    (["--out", "{d}/f.npz", "--labels", "{d}/short.npy"], "11 labels for 48 images"),
    (["--out", "{d}/f.npz", "--save-encoder", "{d}/f.npz"], "same file"),
    (["--out", "{d}/img.npy"], "same file as the input"),
    (["--out", "{d}/f.npz", "--fit-images", "{d}/big.npy"], "--fit-images have shape"),
    (["--out", "{d}/nodir/f.npz"], "does not exist"),
])
def test_cli_features_bad_input_writes_nothing(tmp_path, capsys, extra, match):
    np.save(tmp_path / "img.npy", _images())
    np.save(tmp_path / "big.npy", _images(side=16))
    np.save(tmp_path / "y.npy", np.zeros(48, dtype=int))
    np.save(tmp_path / "short.npy", np.zeros(11, dtype=int))
    before = sorted(os.listdir(tmp_path))
    args = _cli_args("--images", tmp_path / "img.npy", *[e.format(d=tmp_path) for e in extra])
    assert main(args) == 2
    assert match in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == before


def test_repro_features_script_runs_on_a_tiny_dataset(tmp_path):
    """scripts/repro_features.py end to end on a tiny MNIST-format directory."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
    import repro_features
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    for split, n in (("train", 300), ("t10k", 40)):
        (data / f"{split}-images-idx3-ubyte").write_bytes(
            _idx_bytes(rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)))
        (data / f"{split}-labels-idx1-ubyte").write_bytes(
            _idx_bytes(np.arange(n, dtype=np.uint8) % 10))
    out = tmp_path / "out"
    assert repro_features.main(["--data", str(data), "--m", "20", "--epochs", "1", "--k", "5",
                                "--threads", "1", "--out", str(out)]) == 0
    text = (out / "features_fashion-mnist.md").read_text()
    for needle in ("## ridge exact, q = 0", "## kNN exact, k = 5", "| PCA-50 |",
                   "| contrastive-256 |", "Encoder fit"):
        assert needle in text
