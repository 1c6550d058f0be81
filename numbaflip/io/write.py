"""Writing per-test-point results: CSV (plain) and JSON (provenance + one record per point).

Files are written through :func:`numbaflip.io._atomic.write_output`: regular files atomically at
their resolved target (symlinks stay symlinks), FIFOs and devices streamed to, ``-`` to stdout,
inputs never overwritten.
"""
from __future__ import annotations

import csv
import io as _stdio
import json
import math
from typing import Sequence

import numpy as np

from ..errors import NumbaflipInputError
from ..results import check_test_labels
from ._atomic import write_output

__all__ = ["write_results_csv", "write_results_json", "results_csv_text", "results_json_text",
           "jsonable"]


def _label_cell(v) -> str:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        v = int(v)
    return str(v)


def jsonable(v):
    """``v`` with numpy scalars/arrays, tuples and non-finite floats made JSON-safe.

    Non-finite floats become the strings ``"nan"``, ``"inf"``, ``"-inf"``; unknown objects
    (e.g. a :class:`fractions.Fraction`) their ``str``.  Used by
    :meth:`numbaflip.results.CertifyResult.to_dict`.
    """
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [jsonable(x) for x in (v.tolist() if isinstance(v, np.ndarray) else v)]
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else _fmt_float(v)
    return str(v)


def results_csv_text(result, y_true=None, bounds: Sequence[str] | None = None) -> str:
    """The CSV text :func:`write_results_csv` writes."""
    pred = np.asarray(result.prediction)
    if pred.ndim != 1:
        raise NumbaflipInputError(
            f"result.prediction must be 1-D, got shape {pred.shape}; pass the object returned "
            "by numbaflip.certify")
    m = pred.shape[0]
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
    yt = None if y_true is None else check_test_labels(y_true, m)
    cols = ["index", "prediction"] + (["label"] if yt is not None else [])
    cols += [f"radius_{b}" for b in bounds] + ["log_p_wrong"]
    buf = _stdio.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    pred_cells = [_label_cell(v) for v in pred.tolist()]
    label_cells = [_label_cell(v) for v in yt.tolist()] if yt is not None else None
    radius_cells = [r.tolist() for r in radii]
    for i in range(m):
        row = [str(i), pred_cells[i]]
        if label_cells is not None:
            row.append(label_cells[i])
        row.extend(str(r[i]) for r in radius_cells)
        row.append(_fmt_float(lpw[i]))
        w.writerow(row)
    return buf.getvalue()


def write_results_csv(path, result, y_true=None, bounds: Sequence[str] | None = None, *,
                      protect=()) -> None:
    """Write one CSV row per test point without clobbering anything.

    Columns: ``index, prediction[, label], radius_<bound> for each bound, log_p_wrong``.
    ``index`` is the 0-based position of the test point; ``prediction`` and ``label`` are in
    the user's labels; ``label`` appears only when ``y_true`` is given; a radius of ``-1``
    means *not certified*; ``log_p_wrong`` is written with 17 significant digits (round-trips
    exactly; ``-inf`` when the bound is 0, ``nan`` when not computed).

    Parameters
    ----------
    path : str or os.PathLike
        Output file, or ``-`` for stdout.  The whole text is rendered first; a regular file is
        written to a temporary file next to its resolved target and renamed into place, so on
        any error no partial output is left behind (an existing file is left untouched); a
        symlink stays a symlink; a FIFO or device is streamed to, never replaced.
    result
        A certification result with ``.prediction`` (m,), ``.radius`` (dict bound → (m,))
        and ``.log_p_wrong`` (m,).
    y_true : array-like, shape (m,), optional
        True test labels (the user's labels).
    bounds : sequence of str, optional
        Which radius columns to write, in this order; default: every bound in
        ``result.radius`` in its order.
    protect : sequence of paths
        Files that must not be overwritten (the inputs): writing to one of them is refused.
    """
    text = results_csv_text(result, y_true, bounds)
    write_output(path, text, protect=protect)


def results_json_text(result, y_true=None, extra_metadata=None) -> str:
    """The JSON text :func:`write_results_json` writes (valid JSON: no NaN/Infinity tokens)."""
    d = result.to_dict(y_true)
    meta = dict(d["metadata"])
    if extra_metadata:
        meta.update(jsonable(dict(extra_metadata)))
    head = json.dumps(meta, indent=2, allow_nan=False, ensure_ascii=False)
    points = ",\n".join("  " + json.dumps(p, allow_nan=False, ensure_ascii=False)
                        for p in d["points"])
    return '{\n"metadata": ' + head + ',\n"points": [\n' + points + ("\n" if points else "") \
        + "]\n}\n"


def write_results_json(path, result, y_true=None, *, extra_metadata=None, protect=()) -> None:
    """Write ``result.to_dict(y_true)`` as JSON: provenance plus one record per test point.

    ``extra_metadata`` (e.g. the input file names) is merged into ``metadata``.  Non-finite
    floats are written as the strings ``"-inf"``, ``"inf"``, ``"nan"``.  Same safety rules as
    :func:`write_results_csv`.
    """
    text = results_json_text(result, y_true, extra_metadata)
    write_output(path, text, protect=protect)


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
