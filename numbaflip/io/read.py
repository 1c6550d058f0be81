"""Reading feature/label tables and writing per-test-point results.

Supported inputs (chosen by the file extension, case-insensitive):

``.npy``
    One 2-D numeric array.  With labels, the column ``label_column`` holds them.
``.npz``
    Either arrays named ``X`` (2-D features) and, optionally, ``y`` (labels, shape (n,); shape
    (n, 1) is accepted with a warning), or a single 2-D array of any name, read like ``.npy``.
    Loaded with ``allow_pickle=False``.
``.csv``
    Comma-separated values, one row per point, whitespace around cells ignored, blank lines
    skipped.  Feature cells must be numbers; label cells may be numbers or text.  An optional
    header is auto-detected: a first row in which *no* cell is a number is a header; a first
    row whose only text cell is in one column, with that value recurring in the same column
    further down, is data with text labels.  With a header the label column may be chosen by
    name, and :meth:`Table.select` matches columns to feature names.

**Labels are returned as the user has them**: ``int64`` when every label is an integer
(integral floats such as ``1.0`` included; {−1, +1}, {1, 2} are fine), a numpy ``str`` array
when any label is text (``"cat"``/``"dog"``).  Non-integral numbers are an error.  Mapping
labels to class indices is done by :func:`numbaflip.certify`.  Every problem raises
:class:`~numbaflip.errors.NumbaflipInputError` with a message that says what is wrong, where,
and how to fix it.  Locations are 1-based (``line`` is the line of the CSV file, counting the
header; ``column`` counts every column, the label column included).
"""
from __future__ import annotations

import math
import os
import warnings
import zipfile

import numpy as np

from ..errors import NumbaflipInputError, NumbaflipWarning

__all__ = ["load_table", "open_table", "Table"]

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
        CSV only.  ``None`` auto-detects (see the module docstring; an undecidable first row
        is an error that asks you to decide); ``True``/``False`` forces it.

    Returns
    -------
    X : ndarray of float64, shape (n, k), C-contiguous, all finite
    y : ndarray, shape (n,) — int64 when every label is an integer, else str — or None when
        the file has no labels.  Labels are not mapped to class indices.
    """
    return open_table(path, header=header).split(label_column, has_labels)


def open_table(path, *, header: bool | None = None) -> "Table":
    """Read a file once, without deciding yet which column holds the labels."""
    fspath = _check_path(path)
    suffix = os.path.splitext(fspath)[1].lower()
    if suffix == ".csv":
        return _open_csv(fspath, header)
    if suffix == ".npy":
        return Table(fspath, "array", arr=_check_2d(_np_load(fspath), fspath, "the array"))
    return _open_npz(fspath)


class Table:
    """One input file, read but not yet split into features and labels.

    ``kind`` is ``"csv"``, ``"array"`` (a 2-D ``.npy`` or single-array ``.npz``) or ``"xy"``
    (an ``.npz`` with ``X`` and optionally ``y``).  ``names`` are the CSV header names
    (stripped) or None; ``ncols`` the number of columns (``"xy"``: of ``X``); ``has_y`` whether
    an ``"xy"`` file has a ``y`` array.
    """

    def __init__(self, path, kind, *, names=None, lines=None, ncols=None, arr=None, X=None,
                 y=None, y_what="array 'y'"):
        self.path = path
        self.kind = kind
        self.names = names
        self._lines = lines
        self._arr = arr
        self._X = X
        self._y = y
        self._y_what = y_what
        if kind == "array":
            ncols = arr.shape[1]
        elif kind == "xy":
            ncols = X.shape[1]
        self.ncols = int(ncols)

    @property
    def has_y(self) -> bool:
        return self.kind == "xy" and self._y is not None

    def __repr__(self) -> str:
        return f"Table({self.path!r}, kind={self.kind!r}, ncols={self.ncols})"

    # -- which column is the label column -----------------------------------------------------
    def label_index(self, label_column=-1) -> int:
        """The 0-based index of ``label_column`` (an index or a header name) in this file."""
        if self.kind == "xy":
            raise NumbaflipInputError(
                f"{self.path!r} stores X and y arrays, so it has no label column; drop "
                "--label-column for it")
        return _resolve_column(label_column, self.ncols, self.path, self.names)

    def feature_names(self, label_column=-1):
        """Header names of the feature columns (label column removed), or None."""
        if self.names is None:
            return None
        j = self.label_index(label_column)
        return [n for i, n in enumerate(self.names) if i != j]

    def _auto_has_labels(self, label_column) -> bool:
        if self.kind == "xy":
            return self._y is not None
        if self.kind != "csv":
            return False
        if isinstance(label_column, str):
            return True
        if self.names is not None and isinstance(label_column, (int, np.integer)) \
                and not isinstance(label_column, (bool, np.bool_)) \
                and -self.ncols <= int(label_column) < self.ncols:
            return self.names[int(label_column)].lower() in _LABEL_NAMES
        return False

    # -- reading --------------------------------------------------------------------------------
    def split(self, label_column=-1, has_labels=None):
        """``(X, y)`` with the labels in ``label_column`` (see :func:`load_table`)."""
        if has_labels is None:
            has_labels = self._auto_has_labels(label_column)
        has_labels = bool(has_labels)
        if self.kind == "xy":
            return self._split_xy(has_labels)
        if not has_labels:
            return self._read(list(range(self.ncols)), None)
        j = self.label_index(label_column)
        if self.ncols < 2:
            raise NumbaflipInputError(
                f"the table in {self.path!r} has only one column, the labels, and no features; "
                "add feature columns, or read it with has_labels=False")
        return self._read([i for i in range(self.ncols) if i != j], j)

    def select(self, feature_names, label_name=None, has_labels=None):
        """Features in the order of ``feature_names``, matched by CSV header name.

        ``label_name``: the header name of the label column.  ``has_labels``: True (it must be
        present), False (it is ignored if present), None (read it if present).  A missing
        feature name, an unknown name or a repeated name is an error that names it.
        Returns ``(X, y, label_found)``.
        """
        if self.names is None:
            raise NumbaflipInputError(
                f"{self.path!r} has no header row, so its columns cannot be matched by name; "
                "add the header, or pass --header no for both files to match by position")
        feature_names = list(feature_names)
        _no_duplicates(feature_names, "the training file")
        _no_duplicates(self.names, repr(self.path))
        missing = [f for f in feature_names if f not in self.names]
        if missing:
            raise NumbaflipInputError(
                f"{self.path!r} lacks feature column(s) {_names(missing)} of the training "
                "file; the test file needs every training feature column (matched by header "
                "name, in any order)")
        known = set(feature_names) | ({label_name} if label_name is not None else set())
        unknown = [n for n in self.names if n not in known]
        if unknown:
            lab = f" nor the label column {label_name!r}" if label_name is not None else ""
            raise NumbaflipInputError(
                f"{self.path!r} has column(s) {_names(unknown)} that are not training features"
                f"{lab}; remove or rename them (columns are matched by header name)")
        label_found = label_name is not None and label_name in self.names
        if has_labels and not label_found:
            raise NumbaflipInputError(
                f"{self.path!r} has no label column {label_name!r} (--test-labels yes); add it, "
                "or use --test-labels auto/no")
        use_label = label_found and has_labels is not False
        feat_idx = [self.names.index(f) for f in feature_names]
        X, y = self._read(feat_idx, self.names.index(label_name) if use_label else None)
        return X, y, label_found

    def _read(self, feat_idx, label_idx):
        if self.kind == "csv":
            return _read_csv_rows(self.path, self._lines, feat_idx, label_idx)
        arr = _numeric_array(self._arr, self.path, "the array")
        feat = np.asarray(feat_idx, dtype=np.intp)
        X = _check_features(arr[:, feat], self.path, col_map=feat)
        y = None
        if label_idx is not None:
            y = _labels_raw(arr[:, label_idx],
                            f"labels (column {label_idx + 1}) in {self.path!r}")
        return X, y

    def _split_xy(self, has_labels):
        if has_labels and self._y is None:
            raise NumbaflipInputError(
                f"{self.path!r} has no labels (no array named 'y'); add them with "
                "numpy.savez(path, X=X, y=y), or read it with has_labels=False")
        X = _check_features(self._X, self.path)
        y = self._y if has_labels else None
        if y is not None:
            y = _labels_raw(y, f"labels in {self.path!r}")
        return X, y


def _names(names) -> str:
    shown = ", ".join(repr(n) for n in names[:10])
    return shown + (f" and {len(names) - 10} more" if len(names) > 10 else "")


def _no_duplicates(names, where):
    seen, dup = set(), []
    for n in names:
        if n in seen and n not in dup:
            dup.append(n)
        seen.add(n)
    if dup:
        raise NumbaflipInputError(
            f"the header of {where} repeats the column name(s) {_names(dup)}, so columns "
            "cannot be matched by name; give every column a distinct name")


# --------------------------------------------------------------------------------------------
# writing results
# --------------------------------------------------------------------------------------------
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


def _check_2d(arr, fspath, what):
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
    return arr


def _open_npz(fspath: str) -> Table:
    npz = _np_load(fspath)
    if not isinstance(npz, np.lib.npyio.NpzFile):  # pragma: no cover - np.load returned array
        return Table(fspath, "array", arr=_check_2d(npz, fspath, "the array"))
    try:
        with npz:
            keys = list(npz.files)
            if "X" in keys:
                X = npz["X"]
                y = npz["y"] if "y" in keys else None
                single = None
            elif len(keys) == 1:
                single = npz[keys[0]]
            else:
                raise NumbaflipInputError(
                    f"{fspath!r} holds arrays {keys} but no array named 'X'; save features as "
                    "X and labels as y (numpy.savez(path, X=X, y=y)), or save a single 2-D "
                    "array")
    except NumbaflipInputError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _unreadable(fspath, exc) from None
    if single is not None:
        return Table(fspath, "array", arr=_check_2d(single, fspath, f"array {keys[0]!r}"))
    X = _numeric_array(X, fspath, "array 'X'")
    if X.ndim != 2:
        raise NumbaflipInputError(
            f"array 'X' in {fspath!r} must be 2-D (points × features), got shape {X.shape}; "
            "reshape it, e.g. X.reshape(len(X), -1)")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise NumbaflipInputError(
            f"features in {fspath!r} are empty (shape {X.shape}); they need at least one row "
            "and one column")
    if y is not None:
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1 and y.shape[0] == X.shape[0]:
            warnings.warn(
                f"array 'y' in {fspath!r} has shape {y.shape}; read as {y.shape[0]} labels "
                "(one per row of X) — save it 1-D (y.ravel()) to silence this warning",
                NumbaflipWarning, stacklevel=3)
            y = y[:, 0]
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise NumbaflipInputError(
                f"array 'y' in {fspath!r} must be 1-D with one label per row of X "
                f"({X.shape[0]}), got shape {y.shape}; save matching X and y")
    return Table(fspath, "xy", X=X, y=y)


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


def _where(row: int, col: int, line_of_row) -> str:
    if line_of_row is not None:
        return f"line {int(line_of_row[row])}, column {col + 1}"
    return f"row {row + 1}, column {col + 1}"


def _check_features(X, fspath: str, col_map=None, line_of_row=None):
    X = np.ascontiguousarray(_numeric_array(X, fspath, "features"), dtype=np.float64)
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


def _loc(i, line_of_row) -> str:
    return f"line {int(line_of_row[i])}" if line_of_row is not None else f"position {i + 1}"


def _labels_raw(y, what: str, line_of_row=None):
    """Labels as the user has them: int64 if all integers, else a str array (see module doc)."""
    y = np.asarray(y)
    if y.dtype.kind == "b":
        return y.astype(np.int64)
    if y.dtype.kind in "US":
        return y.astype(str)
    if y.dtype.kind not in "iuf":
        raise NumbaflipInputError(
            f"{what} have unsupported dtype {y.dtype}; store labels as integers or strings")
    if y.size == 0:
        return y.astype(np.int64)
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y)) | (np.abs(y) > 2.0 ** 53)
        if bad.any():
            i = int(np.argmax(bad))
            raise NumbaflipInputError(
                f"{what} must be integers or text, but {int(bad.sum())} are non-integral "
                f"numbers; the first is {float(y[i])!r} at {_loc(i, line_of_row)} (1-based); "
                "use class labels such as 0/1, -1/+1 or names — or pick the right label column")
    if y.dtype.kind == "u" and y.dtype.itemsize == 8 and (y > np.iinfo(np.int64).max).any():
        raise NumbaflipInputError(f"{what} are too large for int64; use smaller class labels")
    return y.astype(np.int64)


def _labels_from_cells(cells, what: str, line_of_row):
    """Label cells (stripped strings) of a CSV file → int64 or str array (see module doc)."""
    for i, c in enumerate(cells):
        if not c:
            raise NumbaflipInputError(
                f"{what}: the label at {_loc(i, line_of_row)} is an empty cell; every row "
                "needs a label — fill it in or remove the row")
    try:
        ints = [int(c) for c in cells]
    except ValueError:
        pass
    else:
        if any(v < -2 ** 63 or v >= 2 ** 63 for v in ints):
            raise NumbaflipInputError(f"{what} are too large for int64; use smaller labels")
        return np.array(ints, dtype=np.int64)
    floats = []
    text_at = None
    for i, c in enumerate(cells):
        try:
            floats.append(float(c))
        except ValueError:
            floats.append(None)
            if text_at is None:
                text_at = i
    if text_at is None:
        return _labels_raw(np.array(floats, dtype=np.float64), what, line_of_row)
    # Text labels; a number in the same column must still be an integer.
    for i, v in enumerate(floats):
        if v is not None and not (math.isfinite(v) and v == round(v)):
            raise NumbaflipInputError(
                f"{what} mix text ({cells[text_at]!r} at {_loc(text_at, line_of_row)}) and "
                f"the non-integral number {cells[i]!r} at {_loc(i, line_of_row)} (1-based); "
                "labels must be integers or names — check the label column")
    return np.array(cells, dtype=str)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _open_csv(fspath: str, header) -> Table:
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
    del text
    if not lines:
        raise NumbaflipInputError(
            f"{fspath!r} is empty; it needs at least one row of comma-separated numbers")
    first_cells = [c.strip() for c in lines[0][1].split(",")]
    ncols = len(first_cells)
    numeric = [_is_number(c) for c in first_cells]
    if header is None:
        if not any(numeric):
            header = True
        elif all(numeric):
            header = False
        else:
            text_cols = [j for j, ok in enumerate(numeric) if not ok]
            header = None
            if len(text_cols) == 1:
                # Data with text labels if the text value recurs in its column further down.
                c = text_cols[0]
                v = first_cells[c]
                for _, ln in lines[1:]:
                    cells = ln.split(",")
                    if len(cells) == ncols and cells[c].strip() == v:
                        header = False
                        break
            if header is None:
                j = text_cols[0]
                raise NumbaflipInputError(
                    f"cannot tell whether line {lines[0][0]} of {fspath!r} is a header: it "
                    f"mixes numbers and text (column {j + 1} is {first_cells[j]!r}); pass "
                    "header=True (CLI: --header yes) if it is a header, header=False "
                    "(--header no) if it is data, or fix that cell")
    names = None
    if header:
        names = first_cells
        lines = lines[1:]
        if not lines:
            raise NumbaflipInputError(
                f"{fspath!r} has a header but no data rows; add rows of comma-separated numbers")
    for lineno, ln in lines:
        cnt = ln.count(",") + 1
        if cnt != ncols:
            ref = "the header" if names is not None else f"line {lines[0][0]}"
            raise NumbaflipInputError(
                f"ragged rows in {fspath!r}: line {lineno} has {cnt} cells but {ref} "
                f"has {ncols}; every row needs the same number of comma-separated cells")
    return Table(fspath, "csv", names=names, lines=lines, ncols=ncols)


def _read_csv_rows(fspath, lines, feat_idx, label_idx):
    n = len(lines)
    k = len(feat_idx)
    X = np.empty((n, k), dtype=np.float64)
    line_of_row = np.fromiter((ln for ln, _ in lines), dtype=np.int64, count=n)
    labels = [] if label_idx is not None else None
    identity = label_idx is None and feat_idx == list(range(k))
    for r, (lineno, ln) in enumerate(lines):
        cells = ln.split(",")
        try:
            if identity:
                X[r] = [float(c) for c in cells]
            else:
                X[r] = [float(cells[i]) for i in feat_idx]
        except ValueError:
            for c in feat_idx:
                cell = cells[c]
                if not _is_number(cell):
                    shown = repr(cell.strip()) if cell.strip() else "an empty cell"
                    hint = ("every feature cell must be a number — fix or remove that row, or "
                            "check the label column")
                    raise NumbaflipInputError(
                        f"non-numeric value in {fspath!r} at line {lineno}, column {c + 1} "
                        f"(1-based): {shown}; {hint}") from None
            raise  # pragma: no cover - unreachable
        if labels is not None:
            labels.append(cells[label_idx].strip())
    X = _check_features(X, fspath, col_map=np.asarray(feat_idx), line_of_row=line_of_row)
    y = None
    if labels is not None:
        y = _labels_from_cells(labels, f"labels (column {label_idx + 1}) in {fspath!r}",
                               line_of_row)
    return X, y
