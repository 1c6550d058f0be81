"""CLI round trips on CSV and NPY, and bad input: exit 2, one line, no traceback, no file."""
import csv
import subprocess
import sys

import numpy as np
import pytest

import numbaflip
from numbaflip.cli import main


@pytest.fixture
def problem(tmp_path):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] + 0.5 * rng.normal(size=120) > 0).astype(int)
    T = rng.normal(size=(15, 4))
    yt = (T[:, 0] > 0).astype(int)
    return tmp_path, X, y, T, yt


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_csv_round_trip_with_header_and_labels(problem, capsys):
    d, X, y, T, yt = problem
    hdr = "f1,f2,f3,f4,label"
    np.savetxt(d / "train.csv", np.column_stack([X, y]), delimiter=",", header=hdr, comments="")
    np.savetxt(d / "test.csv", np.column_stack([T, yt]), delimiter=",", header=hdr, comments="")
    rc = main(["certify", "--train", str(d / "train.csv"), "--test", str(d / "test.csv"),
               "--q", "0.1", "--bounds", "kl", "--out", str(d / "out.csv"), "--no-progress"])
    assert rc == 0
    rows = _rows(d / "out.csv")
    ref = numbaflip.certify(X, y, T, q=0.1)
    assert len(rows) == 15
    assert [int(r["prediction"]) for r in rows] == ref.prediction.tolist()
    assert [int(r["radius_kl"]) for r in rows] == ref.radius["kl"].tolist()
    assert [int(r["label"]) for r in rows] == yt.tolist()
    np.testing.assert_array_equal([float(r["log_p_wrong"]) for r in rows], ref.log_p_wrong)
    assert "certified accuracy" in capsys.readouterr().out


def test_npy_round_trip_without_test_labels(problem):
    d, X, y, T, _ = problem
    np.save(d / "train.npy", np.column_stack([X, y]))
    np.save(d / "test.npy", T)
    rc = main(["certify", "--train", str(d / "train.npy"), "--test", str(d / "test.npy"),
               "--q", "0.2", "--lam", "0.5", "--out", str(d / "out.csv"), "--no-progress"])
    assert rc == 0
    rows = _rows(d / "out.csv")
    ref = numbaflip.certify(X, y, T, q=0.2, lam=0.5)
    assert "label" not in rows[0]
    assert [int(r["radius_kl"]) for r in rows] == ref.radius["kl"].tolist()


def test_label_column_first(problem):
    d, X, y, T, _ = problem
    np.savetxt(d / "train.csv", np.column_stack([y, X]), delimiter=",")
    np.savetxt(d / "test.csv", T, delimiter=",")
    rc = main(["certify", "--train", str(d / "train.csv"), "--test", str(d / "test.csv"),
               "--q", "0.1", "--label-column", "0", "--out", str(d / "o.csv"), "--no-progress"])
    assert rc == 0
    ref = numbaflip.certify(X, y, T, q=0.1)
    assert [int(r["radius_kl"]) for r in _rows(d / "o.csv")] == ref.radius["kl"].tolist()


def _bad(args, capsys, match):
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2
    assert match in err
    assert "Traceback" not in err


def test_bad_inputs_exit_2_and_no_output(problem, capsys):
    d, X, y, T, yt = problem
    out = d / "out.csv"
    np.save(d / "train.npy", np.column_stack([X, y]))
    np.save(d / "test.npy", T)
    base = ["certify", "--train", str(d / "train.npy"), "--test", str(d / "test.npy"),
            "--out", str(out), "--no-progress"]
    _bad(base + ["--q", "0.6"], capsys, "outside (0, 1/2)")
    _bad(base + ["--q", "0.1", "--lam", "-1"], capsys, "≥ 0")
    _bad(base + ["--q", "0.1", "--bounds", "kl,nope"], capsys, "unknown bound")
    _bad(["certify", "--train", str(d / "missing.csv"), "--test", str(d / "test.npy"),
          "--q", "0.1", "--out", str(out)], capsys, "missing.csv")
    (d / "bad.csv").write_text("1,2,3,4,0\n1,x,3,4,1\n")
    _bad(["certify", "--train", str(d / "bad.csv"), "--test", str(d / "test.npy"),
          "--q", "0.1", "--out", str(out)], capsys, "'x'")
    Xn = np.column_stack([X, y]).astype(float)
    Xn[5, 2] = np.nan
    np.save(d / "nan.npy", Xn)
    _bad(["certify", "--train", str(d / "nan.npy"), "--test", str(d / "test.npy"),
          "--q", "0.1", "--out", str(out)], capsys, "NaN")
    np.save(d / "three.npy", np.column_stack([X, np.arange(120) % 3]))
    _bad(["certify", "--train", str(d / "three.npy"), "--test", str(d / "test.npy"),
          "--q", "0.1", "--out", str(out)], capsys, "num_classes=K")
    np.save(d / "wide.npy", np.ones((3, 9)))
    _bad(["certify", "--train", str(d / "train.npy"), "--test", str(d / "wide.npy"),
          "--q", "0.1", "--out", str(out)], capsys, "columns")
    assert not out.exists()


def test_python_dash_m_entry_point(problem):
    d, X, y, T, _ = problem
    np.save(d / "train.npy", np.column_stack([X, y]))
    np.save(d / "test.npy", T)
    p = subprocess.run([sys.executable, "-m", "numbaflip", "certify", "--train",
                        str(d / "train.npy"), "--test", str(d / "test.npy"), "--q", "0.7",
                        "--out", str(d / "o.csv")], capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.startswith("numbaflip: error:") and "Traceback" not in p.stderr
