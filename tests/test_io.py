"""Tests for numbaflip.io: round trips and one test per kind of bad input."""
import csv
import os
from types import SimpleNamespace

import numpy as np
import pytest

from numbaflip.errors import NumbaflipInputError, NumbaflipWarning
from numbaflip.io import load_table, open_table, write_results_csv


@pytest.fixture
def rng():
    return np.random.default_rng(20200712)


@pytest.fixture
def data(rng):
    X = rng.normal(size=(7, 3))
    y = rng.integers(0, 3, size=7).astype(np.int64)
    return X, y


def _write_csv(path, X, y=None, header=None, label_at=-1):
    with open(path, "w") as fh:
        if header:
            fh.write(",".join(header) + "\n")
        for i in range(len(X)):
            cells = [repr(float(v)) for v in X[i]]
            if y is not None:
                pos = label_at if label_at >= 0 else len(cells) + 1 + label_at
                cells.insert(pos, str(int(y[i])))
            fh.write(" , ".join(cells) + "\n")


def _assert_same(got, X, y):
    Xg, yg = got
    assert Xg.dtype == np.float64 and Xg.flags.c_contiguous
    np.testing.assert_array_equal(Xg, X)
    if y is None:
        assert yg is None
    else:
        assert yg.dtype == np.int64
        np.testing.assert_array_equal(yg, y)


# ---------------------------------------------------------------------------------- round trips
def test_csv_no_header_labels_last(tmp_path, data):
    X, y = data
    p = tmp_path / "t.csv"
    _write_csv(p, X, y)
    _assert_same(load_table(p, has_labels=True), X, y)
    # auto: a header-less file cannot mark labels, so every column is a feature
    Xa, ya = load_table(p)
    assert ya is None and Xa.shape == (7, 4)


def test_csv_header_by_name_and_auto(tmp_path, data):
    X, y = data
    p = tmp_path / "t.csv"
    _write_csv(p, X, y, header=["a", "label", "b", "c"], label_at=1)
    _assert_same(load_table(p, label_column="label"), X, y)
    _assert_same(load_table(p, label_column=1), X, y)          # auto: header cell is 'label'
    _assert_same(load_table(p, label_column=1, has_labels=True), X, y)
    Xa, ya = load_table(p, has_labels=False)
    assert ya is None and Xa.shape == (7, 4)


def test_csv_header_unlabelled_and_blank_lines(tmp_path, data):
    X, _ = data
    p = tmp_path / "t.csv"
    _write_csv(p, X, header=["f1", "f2", "f3"])
    with open(p, "a") as fh:
        fh.write("\n\n")
    _assert_same(load_table(p), X, None)


def test_csv_numeric_header_forced(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("0,1,label\n1.5,2,0\n3,4,1\n")
    with pytest.raises(NumbaflipInputError, match="header=True"):
        load_table(p)
    X, y = load_table(p, header=True)
    np.testing.assert_array_equal(X, [[1.5, 2], [3, 4]])
    np.testing.assert_array_equal(y, [0, 1])


def test_npy(tmp_path, data):
    X, y = data
    p = tmp_path / "t.npy"
    np.save(p, np.column_stack([X, y]))
    _assert_same(load_table(p, has_labels=True), X, y)
    _assert_same(load_table(p), np.column_stack([X, y]), None)
    np.save(p, np.column_stack([y, X]))
    _assert_same(load_table(p, has_labels=True, label_column=0), X, y)


def test_npz_keys_and_single(tmp_path, data):
    X, y = data
    p = tmp_path / "t.npz"
    np.savez(p, X=X, y=y)
    _assert_same(load_table(p), X, y)
    _assert_same(load_table(p, has_labels=False), X, None)
    np.savez(p, X=X.astype(np.float32).astype(np.float64))
    _assert_same(load_table(p), X.astype(np.float32).astype(np.float64), None)
    np.savez(p, table=np.column_stack([X, y]))
    _assert_same(load_table(p, has_labels=True), X, y)


def test_integer_arrays_and_float_labels(tmp_path):
    p = tmp_path / "t.npz"
    np.savez(p, X=np.arange(6, dtype=np.uint8).reshape(3, 2), y=np.array([1.0, 0.0, 2.0]))
    X, y = load_table(p)
    assert X.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(y, [1, 0, 2])


# ---------------------------------------------------------------------------------- bad inputs
def test_missing_file(tmp_path):
    p = tmp_path / "nope.csv"
    with pytest.raises(NumbaflipInputError, match="not found.*nope.csv"):
        load_table(p)


def test_directory_and_unreadable(tmp_path):
    d = tmp_path / "dir.csv"
    d.mkdir()
    with pytest.raises(NumbaflipInputError, match="directory"):
        load_table(d)
    bad = tmp_path / "corrupt.npy"
    bad.write_bytes(b"this is not an npy file")
    with pytest.raises(NumbaflipInputError, match="cannot read.*corrupt.npy"):
        load_table(bad)
    badz = tmp_path / "corrupt.npz"
    badz.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(NumbaflipInputError, match="cannot read.*corrupt.npz"):
        load_table(badz)


def test_not_utf8(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes(b"1,2\n\xff\xfe,3\n")
    with pytest.raises(NumbaflipInputError, match="UTF-8"):
        load_table(p)


def test_unknown_extension(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("1,2\n")
    with pytest.raises(NumbaflipInputError, match=r"extension '\.txt'.*\.csv"):
        load_table(p)


def test_non_numeric_cell(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("a,b,label\n1,2,0\n3, x7 ,1\n")
    with pytest.raises(NumbaflipInputError, match=r"line 3, column 2.*'x7'"):
        load_table(p)
    p.write_text("1,2,0\n3,,1\n")
    with pytest.raises(NumbaflipInputError, match=r"line 2, column 2.*empty cell"):
        load_table(p)


def test_ragged_rows(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("1,2,0\n3,4,1\n5,6\n")
    with pytest.raises(NumbaflipInputError, match=r"ragged.*line 3 has 2 cells.*3"):
        load_table(p)


def test_empty_inputs(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("\n  \n")
    with pytest.raises(NumbaflipInputError, match="empty"):
        load_table(p)
    p.write_text("a,b\n")
    with pytest.raises(NumbaflipInputError, match="no data rows"):
        load_table(p)
    q = tmp_path / "e.npy"
    np.save(q, np.zeros((0, 3)))
    with pytest.raises(NumbaflipInputError, match="empty"):
        load_table(q)
    z = tmp_path / "e.npz"
    np.savez(z, X=np.zeros((4, 0)))
    with pytest.raises(NumbaflipInputError, match="empty"):
        load_table(z)
    np.save(q, np.zeros((4, 1)))
    with pytest.raises(NumbaflipInputError, match="no features"):
        load_table(q, has_labels=True)


def test_wrong_shapes_and_dtypes(tmp_path):
    q = tmp_path / "t.npy"
    np.save(q, np.zeros(5))
    with pytest.raises(NumbaflipInputError, match="2-D"):
        load_table(q)
    np.save(q, np.array([["a", "b"]]))
    with pytest.raises(NumbaflipInputError, match="non-numeric dtype"):
        load_table(q)
    np.save(q, np.array([[1, None]], dtype=object))
    with pytest.raises(NumbaflipInputError, match="pickled"):
        load_table(q)
    z = tmp_path / "t.npz"
    np.savez(z, X=np.zeros((3, 2)), y=np.zeros(2))
    with pytest.raises(NumbaflipInputError, match="one label per row"):
        load_table(z)
    np.savez(z, A=np.zeros((3, 2)), B=np.zeros(3))
    with pytest.raises(NumbaflipInputError, match="no array named 'X'"):
        load_table(z)
    np.savez(z, X=np.zeros((3, 2)))
    with pytest.raises(NumbaflipInputError, match="no labels"):
        load_table(z, has_labels=True)


def test_label_column_errors(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("1,2,0\n3,4,1\n")
    with pytest.raises(NumbaflipInputError, match="out of range"):
        load_table(p, has_labels=True, label_column=3)
    with pytest.raises(NumbaflipInputError, match="no header"):
        load_table(p, label_column="label")
    p.write_text("a,b,c\n1,2,0\n")
    with pytest.raises(NumbaflipInputError, match="no column named 'label'.*'a', 'b', 'c'"):
        load_table(p, label_column="label")


def test_nan_inf_features(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("a,b,label\n1,2,0\n3,nan,1\ninf,4,1\n")
    with pytest.raises(NumbaflipInputError,
                       match=r"2 non-finite.*first is nan at line 3, column 2"):
        load_table(p)
    q = tmp_path / "t.npy"
    a = np.ones((4, 3))
    a[2, 2] = -np.inf
    np.save(q, a)
    with pytest.raises(NumbaflipInputError, match=r"1 non-finite.*row 3, column 3"):
        load_table(q, has_labels=True, label_column=0)


def test_non_integer_labels(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("1,2,0\n3,4,1.5\n5,6,1\n")
    with pytest.raises(NumbaflipInputError, match=r"must be integers.*1\.5 at line 2"):
        load_table(p, has_labels=True)
    z = tmp_path / "t.npz"
    np.savez(z, X=np.zeros((2, 2)), y=np.array([0.0, np.nan]))
    with pytest.raises(NumbaflipInputError, match="must be integers"):
        load_table(z)


def test_labels_returned_raw_not_required_nonnegative(tmp_path):
    """{-1,+1}, {1,2} and integral floats come back as int64 user labels (no mapping here)."""
    z = tmp_path / "t.npz"
    np.savez(z, X=np.zeros((3, 2)), y=np.array([1, -1, 1]))
    X, y = load_table(z)
    assert y.dtype == np.int64 and y.tolist() == [1, -1, 1]
    np.savez(z, X=np.zeros((3, 2)), y=np.array([2.0, 1.0, 2.0]))
    assert load_table(z)[1].tolist() == [2, 1, 2]
    p = tmp_path / "t.csv"
    p.write_text("1,2,-1\n3,4,+1\n5,6,1.0\n")
    y = load_table(p, has_labels=True)[1]
    assert y.dtype == np.int64 and y.tolist() == [-1, 1, 1]


def test_string_labels_csv_and_npz(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("a,b,label\n1,2,cat\n3,4, dog \n5,6,cat\n")
    X, y = load_table(p)
    assert y.dtype.kind == "U" and y.tolist() == ["cat", "dog", "cat"]
    np.testing.assert_array_equal(X, [[1, 2], [3, 4], [5, 6]])
    # no header: a first row whose only text cell recurs in its column is data, not a header
    p.write_text("1,2,cat\n3,4,dog\n5,6,cat\n")
    X, y = load_table(p, has_labels=True)
    assert X.shape == (3, 2) and y.tolist() == ["cat", "dog", "cat"]
    # ... but a text cell that never recurs is undecidable: the user must say
    p.write_text("1,2,label\n3,4,dog\n5,6,cat\n")
    with pytest.raises(NumbaflipInputError, match="--header yes.*--header no"):
        load_table(p, has_labels=True)
    assert load_table(p, has_labels=True, header=False)[1].tolist() == ["label", "dog", "cat"]
    z = tmp_path / "t.npz"
    np.savez(z, X=np.zeros((2, 2)), y=np.array(["yes", "no"]))
    assert load_table(z)[1].tolist() == ["yes", "no"]


def test_label_errors_empty_and_mixed_text_fraction(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("1,2,cat\n3,4, \n5,6,cat\n")
    with pytest.raises(NumbaflipInputError, match="line 2 is an empty cell"):
        load_table(p, has_labels=True)
    p.write_text("1,2,cat\n3,4,0.5\n5,6,cat\n")
    with pytest.raises(NumbaflipInputError, match="non-integral number '0.5' at line 2"):
        load_table(p, has_labels=True)
    # a text cell in a feature column is still an error, naming the cell
    p.write_text("1,cat,0\n3,cat,1\n")
    with pytest.raises(NumbaflipInputError, match=r"line 1, column 2.*'cat'"):
        load_table(p, has_labels=True)


def test_npz_y_column_vector_accepted_with_warning(tmp_path):
    z = tmp_path / "t.npz"
    np.savez(z, X=np.zeros((3, 2)), y=np.array([[0], [1], [1]]))
    with pytest.warns(NumbaflipWarning, match=r"shape \(3, 1\).*ravel"):
        X, y = load_table(z)
    assert y.tolist() == [0, 1, 1]


def test_select_matches_test_columns_by_header_name(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("c,label,a,b\n3,1,1,2\n6,0,4,5\n")
    t = open_table(p)
    X, y, found = t.select(["a", "b", "c"], "label")
    np.testing.assert_array_equal(X, [[1, 2, 3], [4, 5, 6]])
    assert found and y.tolist() == [1, 0]
    X, y, found = t.select(["a", "b", "c"], "label", has_labels=False)
    assert y is None and found and X.shape == (2, 3)
    with pytest.raises(NumbaflipInputError, match="lacks feature column.*'d'"):
        t.select(["a", "b", "c", "d"], "label")
    with pytest.raises(NumbaflipInputError, match="'c' that are not training features"):
        t.select(["a", "b"], "label")
    p.write_text("b,a\n1,2\n")
    X, y, found = open_table(p).select(["a", "b"], "label")
    assert X.tolist() == [[2, 1]] and y is None and not found
    with pytest.raises(NumbaflipInputError, match="no label column 'label'"):
        open_table(p).select(["a", "b"], "label", has_labels=True)
    p.write_text("a,a,label\n1,2,0\n")
    with pytest.raises(NumbaflipInputError, match="repeats the column name.*'a'"):
        open_table(p).select(["a", "b"], "label")


# ---------------------------------------------------------------------------------- results
def _result(m=4):
    return SimpleNamespace(
        prediction=np.array([0, 1, 1, 0][:m], dtype=np.int64),
        radius={"kl": np.array([3, -1, 0, 7][:m]), "tight": np.array([5, -1, 1, 12][:m])},
        log_p_wrong=np.array([-3.5, -0.1, -0.75, -1e-300][:m]))


def test_write_results_round_trip(tmp_path):
    res = _result()
    p = tmp_path / "out.csv"
    write_results_csv(p, res, y_true=[0, 0, 1, 1])
    with open(p) as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["index", "prediction", "label", "radius_kl", "radius_tight",
                       "log_p_wrong"]
    assert rows[1] == ["0", "0", "0", "3", "5", "-3.5"]
    assert rows[2][3] == "-1"
    assert float(rows[4][5]) == -1e-300
    write_results_csv(p, res, bounds=("tight",))
    with open(p) as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["index", "prediction", "radius_tight", "log_p_wrong"]
    assert len(rows) == 5
    assert [f for f in os.listdir(tmp_path)] == ["out.csv"]


def test_write_results_errors_leave_nothing(tmp_path):
    p = tmp_path / "out.csv"
    with pytest.raises(NumbaflipInputError, match="bound 'exact' is not in the result"):
        write_results_csv(p, _result(), bounds=["exact"])
    with pytest.raises(NumbaflipInputError, match="one test label per test point"):
        write_results_csv(p, _result(), y_true=[0, 1])
    with pytest.raises(NumbaflipInputError, match="does not exist"):
        write_results_csv(tmp_path / "no" / "out.csv", _result())
    assert os.listdir(tmp_path) == []


def test_write_results_atomic_on_midway_failure(tmp_path):
    p = tmp_path / "out.csv"
    p.write_text("old contents\n")

    class Boom:
        def __init__(self):
            self.calls = 0

        def __array__(self, dtype=None, copy=None):
            raise RuntimeError("disk on fire")

    res = _result()
    res.log_p_wrong = Boom()
    with pytest.raises(RuntimeError):
        write_results_csv(p, res)
    # a failure while the file is being written (here: fsync) leaves no temporary file behind
    res = _result()
    import numbaflip.io._atomic as A

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    orig = A.os.fsync
    A.os.fsync = broken_fsync
    try:
        with pytest.raises(NumbaflipInputError, match="No space left"):
            write_results_csv(p, res)
    finally:
        A.os.fsync = orig
    assert p.read_text() == "old contents\n"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_write_results_user_labels_are_quoted_csv(tmp_path):
    res = _result()
    res.prediction = np.array(["cat", "dog, big", "cat", "dog, big"])
    p = tmp_path / "out.csv"
    write_results_csv(p, res, y_true=np.array([-1, 1, 1, -1]))
    with open(p) as fh:
        rows = list(csv.reader(fh))
    assert [r[1] for r in rows[1:]] == ["cat", "dog, big", "cat", "dog, big"]
    assert [r[2] for r in rows[1:]] == ["-1", "1", "1", "-1"]
