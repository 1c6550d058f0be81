"""CLI round trips on CSV and NPY, and bad input: exit 2, one line, no traceback, no file."""
import csv
import json
import os
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
    assert len(err.strip().splitlines()) == 1 and err.startswith("numbaflip: error:"), err


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
          "--q", "0.1", "--out", str(out)], capsys, "--num-classes K")
    np.save(d / "wide.npy", np.ones((3, 9)))
    _bad(["certify", "--train", str(d / "train.npy"), "--test", str(d / "wide.npy"),
          "--q", "0.1", "--out", str(out)], capsys, "columns")
    assert not out.exists()


def test_bad_option_fails_before_reading_data(problem, capsys, monkeypatch):
    import numbaflip.io as nio
    d, *_ = problem
    monkeypatch.setattr(nio, "open_table", lambda *a, **k: pytest.fail("data read"))
    args = ["certify", "--train", str(d / "train.csv"), "--test", str(d / "test.csv"),
            "--out", str(d / "o.csv")]
    _bad(args + ["--q", "0.7"], capsys, "outside (0, 1/2)")
    _bad(args + ["--q", "0.1", "--bounds", "kl,nope"], capsys, "unknown bound")
    _bad(args + ["--q", "0", "--bounds", "kl"], capsys, "--q 0 means no smoothing")


def test_errors_use_option_names_not_api_names(problem, capsys):
    """The CLI translates the public layer's wording (num_classes=, bounds=(...), q=) once."""
    d, *_ = problem
    args = ["certify", "--train", str(d / "train.csv"), "--test", str(d / "test.csv"),
            "--out", str(d / "o.csv")]
    cases = [(["--q", "0.1", "--num-classes", "1"], "--num-classes must be an integer"),
             (["--q", "abc"], "pass e.g. --q 0.1, --q 1e-4 or --q 1/3"),
             (["--q", "0.1", "--bounds", ","], "--bounds is empty; pass e.g. --bounds kl"),
             (["--q", "0.7"], "only with --bounds exact")]
    for extra, want in cases:
        rc = main(args + extra)
        err = capsys.readouterr().err
        assert rc == 2 and want in err, err
        for api in ("num_classes", "bounds=(", "q=", "lam="):
            assert api not in err, err


def test_python_dash_m_entry_point(problem):
    d, X, y, T, _ = problem
    np.save(d / "train.npy", np.column_stack([X, y]))
    np.save(d / "test.npy", T)
    p = subprocess.run([sys.executable, "-m", "numbaflip", "certify", "--train",
                        str(d / "train.npy"), "--test", str(d / "test.npy"), "--q", "0.7",
                        "--out", str(d / "o.csv")], capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.startswith("numbaflip: error:") and "Traceback" not in p.stderr


# ------------------------------------------------------------------ schema: headers and labels
def _hdr_csv(path, cols, names):
    np.savetxt(path, np.column_stack(cols), delimiter=",", header=",".join(names), comments="")


def _run(args, capsys):
    rc = main(args + ["--no-progress"])
    return rc, capsys.readouterr()


def test_header_reordered_test_columns_matched_by_name(problem, capsys):
    d, X, y, T, yt = problem
    _hdr_csv(d / "train.csv", [X, y], ["f1", "f2", "f3", "f4", "label"])
    _hdr_csv(d / "test.csv", [yt, T[:, 2], T[:, 0], T[:, 3], T[:, 1]],
             ["label", "f3", "f1", "f4", "f2"])
    rc, cap = _run(["certify", "--train", str(d / "train.csv"), "--test", str(d / "test.csv"),
                    "--q", "0.1", "--out", str(d / "o.csv")], capsys)
    assert rc == 0
    ref = numbaflip.certify(X, y, T, q=0.1)
    rows = _rows(d / "o.csv")
    assert [int(r["radius_kl"]) for r in rows] == ref.radius["kl"].tolist()
    assert [int(r["label"]) for r in rows] == yt.tolist()
    assert "matched to the training features by header name, reordered" in cap.err


def test_header_test_file_missing_a_feature_column_is_named(problem, capsys):
    d, X, y, T, yt = problem
    _hdr_csv(d / "train.csv", [X, y], ["f1", "f2", "f3", "f4", "label"])
    # 4 columns = as many as the training features: by position the label became a feature
    _hdr_csv(d / "test.csv", [T[:, [0, 1, 3]], yt], ["f1", "f2", "f4", "label"])
    rc, cap = _run(["certify", "--train", str(d / "train.csv"), "--test", str(d / "test.csv"),
                    "--q", "0.1", "--out", str(d / "o.csv")], capsys)
    assert rc == 2 and "'f3'" in cap.err and cap.err.startswith("numbaflip: error:")
    _hdr_csv(d / "test.csv", [T, yt, yt], ["f1", "f2", "f3", "f4", "label", "extra"])
    rc, cap = _run(["certify", "--train", str(d / "train.csv"), "--test", str(d / "test.csv"),
                    "--q", "0.1", "--out", str(d / "o.csv")], capsys)
    assert rc == 2 and "'extra'" in cap.err
    assert not (d / "o.csv").exists()


def test_test_labels_rule_without_headers_is_explicit(problem, capsys):
    d, X, y, T, yt = problem
    np.savetxt(d / "train.csv", np.column_stack([X, y]), delimiter=",")
    np.savetxt(d / "test5.csv", np.column_stack([T, yt]), delimiter=",")
    np.savetxt(d / "test4.csv", T, delimiter=",")
    base = ["certify", "--train", str(d / "train.csv"), "--q", "0.1", "--out", str(d / "o.csv")]
    rc, cap = _run(base + ["--test", str(d / "test5.csv")], capsys)
    assert rc == 0
    assert "test file: 5 columns = 4 features + label column 5 (--test-labels auto)" in cap.err
    assert [int(r["label"]) for r in _rows(d / "o.csv")] == yt.tolist()
    rc, cap = _run(base + ["--test", str(d / "test4.csv")], capsys)
    assert rc == 0 and "4 columns = 4 features, no label column (--test-labels auto)" in cap.err
    rc, cap = _run(base + ["--test", str(d / "test5.csv"), "--test-labels", "no"], capsys)
    assert rc == 2 and "--test-labels no needs 4" in cap.err
    rc, cap = _run(base + ["--test", str(d / "test4.csv"), "--test-labels", "yes"], capsys)
    assert rc == 2 and "--test-labels yes needs 5" in cap.err


def test_test_npz_y_is_used_as_labels(problem, capsys):
    d, X, y, T, yt = problem
    np.savez(d / "train.npz", X=X, y=y)
    np.savez(d / "test.npz", X=T, y=yt)
    base = ["certify", "--train", str(d / "train.npz"), "--test", str(d / "test.npz"),
            "--q", "0.1", "--out", str(d / "o.csv")]
    rc, cap = _run(base, capsys)
    assert rc == 0 and "certified accuracy" in cap.out
    assert [int(r["label"]) for r in _rows(d / "o.csv")] == yt.tolist()
    rc, cap = _run(base + ["--test-labels", "no"], capsys)
    assert rc == 0 and "label" not in _rows(d / "o.csv")[0]


def test_npz_y_column_vector_accepted_with_one_warning_line(problem, capsys):
    d, X, y, T, _ = problem
    np.savez(d / "train.npz", X=X, y=y[:, None])
    np.save(d / "test.npy", T)
    rc, cap = _run(["certify", "--train", str(d / "train.npz"), "--test", str(d / "test.npy"),
                    "--q", "0.1", "--out", str(d / "o.csv")], capsys)
    assert rc == 0
    warn = [ln for ln in cap.err.splitlines() if ln.startswith("numbaflip: warning:")]
    assert len(warn) == 1 and "(120, 1)" in warn[0] and "Traceback" not in cap.err


def test_test_label_that_is_not_a_training_class_is_refused(problem, capsys):
    d, X, y, T, yt = problem
    np.save(d / "train.npy", np.column_stack([X, y]))
    yt = yt.copy()
    yt[3] = 2
    np.save(d / "test.npy", np.column_stack([T, yt]))
    rc, cap = _run(["certify", "--train", str(d / "train.npy"), "--test", str(d / "test.npy"),
                    "--q", "0.1", "--out", str(d / "o.csv")], capsys)
    assert rc == 2 and "not classes of the training labels" in cap.err and "row 4" in cap.err
    assert not (d / "o.csv").exists()


# ------------------------------------------------------------------ JSON output
def _strict_json(text):
    def bad(name):
        raise AssertionError(f"invalid JSON token {name}")
    return json.loads(text, parse_constant=bad)


def test_json_output_is_valid_and_carries_provenance(problem, capsys):
    d, X, y, T, yt = problem
    np.save(d / "train.npy", np.column_stack([X, y]))
    np.save(d / "test.npy", np.column_stack([T, yt]))
    rc, _ = _run(["certify", "--train", str(d / "train.npy"), "--test", str(d / "test.npy"),
                  "--q", "0.1", "--bounds", "kl,exact", "--out", str(d / "o.json")], capsys)
    assert rc == 0
    doc = _strict_json((d / "o.json").read_text())
    meta = doc["metadata"]
    assert meta["train_file"].endswith("train.npy") and meta["test_file"].endswith("test.npy")
    assert meta["q"] == "0.1" and meta["n_train"] == 120 and "numbaflip_version" in meta
    ref = numbaflip.certify(X, y, T, q=0.1, bounds=("kl", "exact"))
    assert [p["radius_exact"] for p in doc["points"]] == ref.radius["exact"].tolist()
    assert [p["label"] for p in doc["points"]] == yt.tolist()
    # exact only: log_p_wrong is NaN, written as a string; JSON to stdout with --format json
    rc, cap = _run(["certify", "--train", str(d / "train.npy"), "--test", str(d / "test.npy"),
                    "--q", "0", "--bounds", "exact", "--out", "-", "--format", "json"], capsys)
    assert rc == 0
    doc = _strict_json(cap.out)
    assert {p["log_p_wrong"] for p in doc["points"]} == {"nan"}


# ------------------------------------------------------------------ labels as users have them
def test_plus_minus_one_labels_written_as_user_labels(problem, capsys):
    d, X, y, T, yt = problem
    np.save(d / "train.npy", np.column_stack([X, 2 * y - 1]))
    np.save(d / "test.npy", np.column_stack([T, 2 * yt - 1]))
    rc, cap = _run(["certify", "--train", str(d / "train.npy"), "--test", str(d / "test.npy"),
                    "--q", "0.1", "--out", str(d / "o.csv")], capsys)
    assert rc == 0
    ref = numbaflip.certify(X, y, T, q=0.1)
    rows = _rows(d / "o.csv")
    assert [int(r["prediction"]) for r in rows] == (2 * ref.prediction - 1).tolist()
    assert [int(r["label"]) for r in rows] == (2 * yt - 1).tolist()
    acc = ref.certified_accuracy(yt, (0, 1))
    assert f"{acc[0]:>9.4f}{acc[1]:>9.4f}" in cap.out


def test_string_labels_cat_dog_round_trip(problem, capsys):
    d, X, y, T, yt = problem
    names = np.array(["cat", "dog"])
    with open(d / "train.csv", "w") as f:
        f.write("a,b,c,e,label\n")
        for xi, yi in zip(X, y):
            f.write(",".join(str(float(v)) for v in xi) + f",{names[yi]}\n")
    with open(d / "test.csv", "w") as f:
        f.write("label,a,b,c,e\n")
        for ti, yi in zip(T, yt):
            f.write(f"{names[yi]}," + ",".join(str(float(v)) for v in ti) + "\n")
    rc, cap = _run(["certify", "--train", str(d / "train.csv"), "--test", str(d / "test.csv"),
                    "--q", "0.1", "--out", str(d / "o.json")], capsys)
    assert rc == 0
    ref = numbaflip.certify(X, y, T, q=0.1)
    doc = _strict_json((d / "o.json").read_text())
    assert [p["prediction"] for p in doc["points"]] == names[ref.prediction].tolist()
    assert [p["label"] for p in doc["points"]] == names[yt].tolist()
    assert doc["metadata"]["classes"] == ["cat", "dog"]
    # the CSV carries the same text labels, and 'numbaflip report' reads them back
    rc, cap = _run(["certify", "--train", str(d / "train.csv"), "--test", str(d / "test.csv"),
                    "--q", "0.1", "--out", str(d / "o.csv")], capsys)
    assert rc == 0
    assert [r["prediction"] for r in _rows(d / "o.csv")] == names[ref.prediction].tolist()
    rc = main(["report", str(d / "o.csv"), "--radii", "0,1"])
    cap = capsys.readouterr()
    assert rc == 0
    acc = ref.certified_accuracy(yt, (0, 1))
    assert f"clean accuracy {float(np.mean(ref.prediction == yt)):.4f}".replace(" 0.", " .") \
        in cap.out
    assert all(f"{v:.4f}".lstrip("0") in cap.out for v in acc)


# ------------------------------------------------------------------ compile notice, progress
def test_compile_notice_only_when_numba_will_compile(problem, capsys, monkeypatch):
    import numbaflip.cli as cli
    d, X, y, T, _ = problem
    np.save(d / "train.npy", np.column_stack([X, y]))
    np.save(d / "test.npy", T)
    args = ["certify", "--train", str(d / "train.npy"), "--test", str(d / "test.npy"),
            "--q", "0.1", "--out", str(d / "o.csv")]
    for cold in (True, False):
        monkeypatch.setattr(cli, "kernels_need_compiling", lambda *a, cold=cold: cold)
        rc, cap = _run(args, capsys)
        assert rc == 0 and (cli.COMPILE_NOTICE in cap.err) == cold


def test_kernels_need_compiling_detects_an_empty_numba_cache(tmp_path):
    from numbaflip.cli import kernels_need_compiling
    numbaflip.certify(np.eye(3), np.array([0, 1, 0]), np.eye(3), q=0.1)  # cache now written
    assert kernels_need_compiling(None, ("kl",)) is False
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "empty"))
    p = subprocess.run([sys.executable, "-c", "from numbaflip.cli import kernels_need_compiling"
                        " as k; print(k(None, ('kl',)), k(3, ('exact',)))"],
                       capture_output=True, text=True, env=env)
    assert p.stdout.split() == ["True", "True"], p.stderr


def test_progress_bar_only_on_a_terminal_unless_asked(problem, capsys, monkeypatch):
    import importlib
    cm = importlib.import_module("numbaflip.certify")
    seen = []
    orig = cm.certify

    def spy(*a, **k):
        seen.append(k["progress"])
        return orig(*a, **k)

    monkeypatch.setattr(cm, "certify", spy)
    d, X, y, T, _ = problem
    np.save(d / "train.npy", np.column_stack([X, y]))
    np.save(d / "test.npy", T)
    args = ["certify", "--train", str(d / "train.npy"), "--test", str(d / "test.npy"),
            "--q", "0.1", "--out", str(d / "o.csv")]
    for extra in ([], ["--progress"], ["--no-progress"]):
        assert main(args + extra) == 0
    assert seen == [False, True, False]  # stderr is captured, so not a terminal
    capsys.readouterr()
