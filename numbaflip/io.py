"""Reading feature/label tables and writing per-test-point results.

Supported inputs (chosen by the file extension, case-insensitive):

``.npy``
    One 2-D numeric array.  With labels, the column ``label_column`` holds them.
``.npz``
    Either arrays named ``X`` (2-D features) and, optionally, ``y`` (1-D labels), or a single
    2-D array of any name, read like ``.npy``.  Loaded with ``allow_pickle=False``.
``.csv``
    Comma-separated numbers, one row per point, whitespace around cells ignored, blank lines
    skipped.  An optional header is auto-detected: a first row in which *no* cell is a number is
    a header.  With a header the label column may be chosen by name.

This module only parses: labels come back as ``int64`` after checking that they are
non-negative integers, but whether they fit the number of classes is checked by
:func:`numbaflip.certify`.  Every problem raises :class:`~numbaflip.errors.NumbaflipInputError`
with a message that says what is wrong, where, and how to fix it.  Locations are 1-based
(``line`` is the line of the CSV file, counting the header; ``column`` counts every column,
the label column included).
"""
from __future__ import annotations

import math
import os
import zipfile
from typing import Sequence

import numpy as np

from ._atomic import atomic_write
from .errors import NumbaflipInputError

__all__ = ["load_table", "write_results_csv"]

_SUFFIXES = (".csv", ".npy", ".npz")
#: Header names that, with ``has_labels=None``, mark the label column of a CSV file.
_LABEL_NAMES = frozenset({"y", "label", "labels", "target", "class"})


# --------------------------------------------------------------------------------------------
# public functions
# --------------------------------------------------------------------------------------------
def load_table(path, *, label_column: int | str = -1, has_labels: bool | None = None,
               header: bool | None = None):
    """Read features and (optionally) labels from a ``.csv``, ``.npy`` or ``.npz`` file.

    Parameters
    ----------
    path : str or os.PathLike
        The file.  Its extension selects the format (see the module docstring).
    label_column : int or str, default -1
        Column holding the labels in a 2-D table (``.npy``, single-array ``.npz``, ``.csv``).
        Negative indices count from the end.  A string selects a CSV header name.  Ignored for
        an ``.npz`` file with ``X``/``y`` arrays.
    has_labels : bool or None, default None
        ``True``: the file must contain labels.  ``False``: every column is a feature (an
        ``.npz`` ``y`` array is ignored).  ``None`` (auto): labels are read from an ``.npz``
        ``y`` array if present; from a CSV column if ``label_column`` is a header name, or if
        the header cell of ``label_column`` is one of ``y``, ``label``, ``labels``, ``target``,
        ``class`` (any case).  A plain 2-D array or a CSV file without header has no way to
        mark a label column, so auto reads it as features only — pass ``has_labels=True``
        to read labels from such files.
    header : bool or None, default None
        CSV only.  ``None`` auto-detects (first row all non-numeric → header; a first row
        mixing numbers and text is an error that asks you to decide); ``True``/``False``
        forces it.

    Returns
    -------
    X : ndarray of float64, shape (n, k), C-contiguous, all finite
    y : ndarray of int64, shape (n,), all >= 0; or None when the file has no labels
    """
    fspath = _check_path(path)
    suffix = os.path.splitext(fspath)[1].lower()
    if suffix == ".csv":
        X, y = _load_csv(fspath, label_column, has_labels, header)
    elif suffix == ".npy":
        arr = _np_load(fspath)
        X, y = _split_2d(arr, fspath, "the array", label_column, bool(has_labels))
    else:  # .npz
        X, y = _load_npz(fspath, label_column, has_labels)
    return X, y


def write_results_csv(path, result, y_true=None, bounds: Sequence[str] | None = None) -> None:
    """Write one CSV row per test point, atomically.

    Columns: ``index, prediction[, label], radius_<bound> for each bound, log_p_wrong``.
    ``index`` is the 0-based position of the test point; ``label`` appears only when
    ``y_true`` is given; a radius of ``-1`` means *not certified*; ``log_p_wrong`` is written
    with 17 significant digits (round-trips exactly).

    Parameters
    ----------
    path : str or os.PathLike
        Output file.  It is written to a temporary file in the same directory and renamed
        into place, so on any error no partial or half-written output is left behind (an
        existing file at ``path`` is left untouched).
    result
        A certification result with ``.prediction`` (m,), ``.radius`` (dict bound → (m,))
        and ``.log_p_wrong`` (m,).
    y_true : array-like of int, shape (m,), optional
        True test labels.
    bounds : sequence of str, optional
        Which radius columns to write, in this order; default: every bound in
        ``result.radius`` in its order.
    """
    pred = np.asarray(result.prediction)
    m = pred.shape[0] if pred.ndim == 1 else -1
    if pred.ndim != 1:
        raise NumbaflipInputError(
            f"result.prediction must be 1-D, got shape {pred.shape}; pass the object returned "
            "by numbaflip.certify")
    radius = dict(result.radius)
    if bounds is None:
        bounds = list(radius)
    elif isinstance(bounds, str):
        bounds = [bounds]
    else:
        bounds = list(bounds)
    for b in bounds:
        if b not in radius:
            raise NumbaflipInputError(
                f"bound {b!r} is not in the result (it has {sorted(radius)}); write only the "
                "bounds that were certified, or certify with bounds including it")
    radii = []
    for b in bounds:
        r = np.asarray(radius[b])
        if r.shape != (m,):
            raise NumbaflipInputError(
                f"result.radius[{b!r}] has shape {r.shape} but there are {m} predictions; "
                "pass an unmodified certification result")
        radii.append(r.astype(np.int64))
    lpw = np.asarray(result.log_p_wrong, dtype=np.float64)
    if lpw.shape != (m,):
        raise NumbaflipInputError(
            f"result.log_p_wrong has shape {lpw.shape} but there are {m} predictions; pass an "
            "unmodified certification result")
    if y_true is not None:
        yt = np.asarray(y_true)
        if yt.shape != (m,):
            raise NumbaflipInputError(
                f"y_true has shape {yt.shape} but the result has {m} test points; pass one "
                "label per test point, in the same order")
        yt = _labels_to_int64(yt, "y_true")
    pred = pred.astype(np.int64)

    fspath = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(fspath))
    if not os.path.isdir(directory):
        raise NumbaflipInputError(
            f"cannot write {fspath!r}: directory {directory!r} does not exist; create it first")
    cols = ["index", "prediction"] + (["label"] if y_true is not None else [])
    cols += [f"radius_{b}" for b in bounds] + ["log_p_wrong"]
    with atomic_write(fspath, "w", newline="", encoding="utf-8") as fh:
        fh.write(",".join(cols) + "\n")
        for i in range(m):
            row = [str(i), str(int(pred[i]))]
            if y_true is not None:
                row.append(str(int(yt[i])))
            row.extend(str(int(r[i])) for r in radii)
            row.append(_fmt_float(lpw[i]))
            fh.write(",".join(row) + "\n")


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _fmt_float(v: float) -> str:
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "-inf" if v < 0 else "inf"
    return "%.17g" % v


def _check_path(path) -> str:
    try:
        fspath = os.fspath(path)
    except TypeError:
        raise NumbaflipInputError(
            f"path must be a string or os.PathLike, got {type(path).__name__}; pass the file "
            "name") from None
    suffix = os.path.splitext(fspath)[1].lower()
    if suffix not in _SUFFIXES:
        raise NumbaflipInputError(
            f"cannot read {fspath!r}: unknown file extension {suffix or '(none)'!r}; supported "
            "are .csv (comma-separated), .npy and .npz — convert the file or rename it")
    if not os.path.exists(fspath):
        raise NumbaflipInputError(f"file not found: {fspath!r}; check the path")
    if os.path.isdir(fspath):
        raise NumbaflipInputError(f"{fspath!r} is a directory, not a file; pass a file path")
    return fspath


def _unreadable(fspath: str, exc: BaseException) -> NumbaflipInputError:
    return NumbaflipInputError(
        f"cannot read {fspath!r}: {exc}; check that the file exists, is readable and is a "
        "valid file of its type")


def _np_load(fspath: str):
    try:
        return np.load(fspath, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise NumbaflipInputError(
                f"cannot read {fspath!r}: it holds Python objects (pickled data), which are "
                "not loaded for safety; save a plain numeric array with numpy.save") from None
        raise _unreadable(fspath, exc) from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise _unreadable(fspath, exc) from None


def _numeric_array(arr, fspath: str, what: str):
    arr = np.asarray(arr)
    if arr.dtype.kind not in "biuf":
        raise NumbaflipInputError(
            f"{what} in {fspath!r} has non-numeric dtype {arr.dtype}; store real numbers "
            "(integers or floats)")
    return arr


def _load_npz(fspath: str, label_column, has_labels):
    npz = _np_load(fspath)
    if not isinstance(npz, np.lib.npyio.NpzFile):  # pragma: no cover - np.load returned array
        return _split_2d(npz, fspath, "the array", label_column, bool(has_labels))
    try:
        with npz:
            keys = list(npz.files)
            if "X" in keys:
                X = npz["X"]
                y = npz["y"] if ("y" in keys and has_labels is not False) else None
                single = False
            elif len(keys) == 1:
                arr = npz[keys[0]]
                single = True
            else:
                raise NumbaflipInputError(
                    f"{fspath!r} holds arrays {keys} but no array named 'X'; save features as "
                    "X and labels as y (numpy.savez(path, X=X, y=y)), or save a single 2-D "
                    "array")
    except NumbaflipInputError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _unreadable(fspath, exc) from None
    if single:
        return _split_2d(arr, fspath, f"array {keys[0]!r}", label_column, bool(has_labels))
    if has_labels and y is None:
        raise NumbaflipInputError(
            f"{fspath!r} has no labels (no array named 'y'); add them with "
            "numpy.savez(path, X=X, y=y), or read it with has_labels=False")
    X = _numeric_array(X, fspath, "array 'X'")
    if X.ndim != 2:
        raise NumbaflipInputError(
            f"array 'X' in {fspath!r} must be 2-D (points × features), got shape {X.shape}; "
            "reshape it, e.g. X.reshape(len(X), -1)")
    X = _check_features(X, fspath)
    if y is not None:
        y = _numeric_array(y, fspath, "array 'y'")
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise NumbaflipInputError(
                f"array 'y' in {fspath!r} must be 1-D with one label per row of X "
                f"({X.shape[0]}), got shape {y.shape}; save matching X and y")
        y = _labels_to_int64(y, f"labels in {fspath!r}")
    return X, y


def _resolve_column(label_column, ncols: int, fspath: str, names=None) -> int:
    if isinstance(label_column, str):
        if names is None:
            raise NumbaflipInputError(
                f"label_column={label_column!r} is a column name but {fspath!r} has no header "
                "row; pass the column index instead (e.g. label_column=-1)")
        stripped = [n.strip() for n in names]
        if label_column.strip() not in stripped:
            shown = ", ".join(repr(n) for n in stripped[:20])
            more = " …" if len(stripped) > 20 else ""
            raise NumbaflipInputError(
                f"no column named {label_column!r} in the header of {fspath!r} (columns: "
                f"{shown}{more}); pass one of these names or a column index")
        return stripped.index(label_column.strip())
    if isinstance(label_column, (bool, np.bool_)) or not isinstance(
            label_column, (int, np.integer)):
        raise NumbaflipInputError(
            f"label_column must be an int index or a header name, got {label_column!r}; "
            "e.g. label_column=-1 for the last column")
    j = int(label_column)
    if not -ncols <= j < ncols:
        raise NumbaflipInputError(
            f"label_column={j} is out of range for {fspath!r}, which has {ncols} columns; "
            f"pass an index in [{-ncols}, {ncols - 1}]")
    return j % ncols


def _split_2d(arr, fspath, what, label_column, has_labels: bool, names=None,
              line_of_row=None):
    arr = _numeric_array(arr, fspath, what)
    if arr.ndim != 2:
        raise NumbaflipInputError(
            f"{what} in {fspath!r} must be 2-D (points × columns), got shape {arr.shape}; "
            "reshape it, e.g. a.reshape(len(a), -1), or save features and labels as X and y "
            "in an .npz file")
    n, ncols = arr.shape
    if n == 0 or ncols == 0:
        raise NumbaflipInputError(
            f"{what} in {fspath!r} is empty (shape {arr.shape}); it needs at least one row "
            "and one feature column")
    if not has_labels:
        return _check_features(arr, fspath, line_of_row=line_of_row), None
    j = _resolve_column(label_column, ncols, fspath, names)
    if ncols < 2:
        raise NumbaflipInputError(
            f"{what} in {fspath!r} has only one column, the labels, and no features; add "
            "feature columns, or read it with has_labels=False")
    feat_cols = np.r_[0:j, j + 1:ncols]
    X = _check_features(arr[:, feat_cols], fspath, col_map=feat_cols, line_of_row=line_of_row)
    y = _labels_to_int64(arr[:, j], f"labels (column {j + 1}) in {fspath!r}",
                         line_of_row=line_of_row)
    return X, y


def _where(row: int, col: int, line_of_row) -> str:
    if line_of_row is not None:
        return f"line {int(line_of_row[row])}, column {col + 1}"
    return f"row {row + 1}, column {col + 1}"


def _check_features(X, fspath: str, col_map=None, line_of_row=None):
    X = np.ascontiguousarray(X, dtype=np.float64)
    n, k = X.shape
    if n == 0 or k == 0:
        raise NumbaflipInputError(
            f"features in {fspath!r} are empty (shape {X.shape}); they need at least one row "
            "and one column")
    finite = np.isfinite(X)
    if not finite.all():
        bad = ~finite
        count = int(bad.sum())
        r, c = np.argwhere(bad)[0]
        col = int(col_map[c]) if col_map is not None else int(c)
        raise NumbaflipInputError(
            f"{fspath!r} has {count} non-finite feature value(s) (NaN or ±inf); the first is "
            f"{float(X[r, c])!r} at {_where(int(r), col, line_of_row)} (1-based); remove or impute "
            "them before certifying")
    return X


def _labels_to_int64(y, what: str, line_of_row=None):
    y = np.asarray(y)
    if y.dtype.kind == "b":
        return y.astype(np.int64)
    if y.dtype.kind not in "iuf":
        raise NumbaflipInputError(
            f"{what} have non-numeric dtype {y.dtype}; labels must be integers 0, 1, …")
    if y.size == 0:
        return y.astype(np.int64)
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y)) | (np.abs(y) > 2.0 ** 53)
        if bad.any():
            i = int(np.argmax(bad))
            loc = (f"line {int(line_of_row[i])}" if line_of_row is not None
                   else f"position {i + 1}")
            raise NumbaflipInputError(
                f"{what} must be integers, but {int(bad.sum())} are not; the first is "
                f"{float(y[i])!r} at {loc} (1-based); use class indices 0, 1, …, K-1 — or "
                "pick the right label column")
    if y.dtype.kind == "u" and y.dtype.itemsize == 8 and (y > np.iinfo(np.int64).max).any():
        raise NumbaflipInputError(f"{what} are too large for int64; use class indices 0…K-1")
    yi = y.astype(np.int64)
    neg = yi < 0
    if neg.any():
        i = int(np.argmax(neg))
        loc = f"line {int(line_of_row[i])}" if line_of_row is not None else f"position {i + 1}"
        raise NumbaflipInputError(
            f"{what} must be non-negative, but {int(neg.sum())} are negative; the first is "
            f"{int(yi[i])} at {loc} (1-based); map labels to 0, 1, …, K-1 (e.g. -1/+1 → 0/1)")
    return yi


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _load_csv(fspath: str, label_column, has_labels, header):
    try:
        with open(fspath, "r", encoding="utf-8-sig", newline=None) as fh:
            text = fh.read()
    except UnicodeDecodeError as exc:
        raise NumbaflipInputError(
            f"cannot read {fspath!r}: it is not UTF-8 text ({exc.reason} at byte "
            f"{exc.start}); save it as a UTF-8 comma-separated file") from None
    except OSError as exc:
        raise _unreadable(fspath, exc) from None

    lines = [(i + 1, ln) for i, ln in enumerate(text.split("\n")) if ln.strip()]
    if not lines:
        raise NumbaflipInputError(
            f"{fspath!r} is empty; it needs at least one row of comma-separated numbers")
    first_cells = [c.strip() for c in lines[0][1].split(",")]
    numeric = [_is_number(c) for c in first_cells]
    if header is None:
        if not any(numeric):
            header = True
        elif all(numeric):
            header = False
        else:
            j = numeric.index(False)
            raise NumbaflipInputError(
                f"cannot tell whether line {lines[0][0]} of {fspath!r} is a header: it mixes "
                f"numbers and text (column {j + 1} is {first_cells[j]!r}); pass header=True "
                "(CLI: --header yes) if it is a header, or fix that cell")
    names = None
    if header:
        names = first_cells
        lines = lines[1:]
        if not lines:
            raise NumbaflipInputError(
                f"{fspath!r} has a header but no data rows; add rows of comma-separated numbers")
    ncols = len(names) if names is not None else len(first_cells)

    rows = []
    line_of_row = np.empty(len(lines), dtype=np.int64)
    for r, (lineno, ln) in enumerate(lines):
        cells = ln.split(",")
        if len(cells) != ncols:
            ref = "the header" if names is not None else f"line {lines[0][0]}"
            raise NumbaflipInputError(
                f"ragged rows in {fspath!r}: line {lineno} has {len(cells)} cells but {ref} "
                f"has {ncols}; every row needs the same number of comma-separated cells")
        try:
            rows.append([float(c) for c in cells])
        except ValueError:
            for c, cell in enumerate(cells):
                if not _is_number(cell):
                    shown = repr(cell.strip()) if cell.strip() else "an empty cell"
                    raise NumbaflipInputError(
                        f"non-numeric value in {fspath!r} at line {lineno}, column {c + 1} "
                        f"(1-based): {shown}; every data cell must be a number — fix or "
                        "remove that row") from None
            raise  # pragma: no cover - unreachable
        line_of_row[r] = lineno
    arr = np.array(rows, dtype=np.float64).reshape(len(rows), ncols)

    if has_labels is None:
        if isinstance(label_column, str):
            has_labels = True
        elif names is not None and isinstance(label_column, (int, np.integer)) \
                and -ncols <= int(label_column) < ncols:
            has_labels = names[int(label_column)].strip().lower() in _LABEL_NAMES
        else:
            has_labels = False
    return _split_2d(arr, fspath, "the table", label_column, bool(has_labels), names=names,
                     line_of_row=line_of_row)
