"""Certified accuracy, paper-style tables and plots (math.md §6; paper §5, Tables 1–2, Fig. 1).

Certified accuracy at radius r is the fraction of test points that are correctly classified
*and* certified at radius ≥ r.  A radius of −1 (not certified) never counts, not even at r = 0.
A table that marks the best q per column (as the paper's tables do) is a summary, not a
classifier: choosing q per test point after looking at the radii voids the guarantee.
"""
from __future__ import annotations

import csv
import os

import numpy as np

from ..errors import NumbaflipInputError

__all__ = ["certified_accuracy", "clean_accuracy", "accuracy_table", "read_results_csv",
           "report_from_csv", "accuracy_curve"]


def _as_1d_int(x, name):
    a = np.asarray(x)
    if a.ndim != 1:
        raise NumbaflipInputError(f"{name} must be one-dimensional, got shape {a.shape}.")
    if a.size and not np.all(np.asarray(a, dtype=np.float64) == np.round(a)):
        raise NumbaflipInputError(f"{name} must hold integers.")
    return a.astype(np.int64)


def _as_1d_labels(x, name):
    """Labels as the user has them (ints, strings, ...): only equality is used."""
    a = np.asarray(x)
    if a.ndim != 1:
        raise NumbaflipInputError(f"{name} must be one-dimensional, got shape {a.shape}.")
    return a


def _correct(prediction, y_true):
    p = _as_1d_labels(prediction, "prediction")
    t = _as_1d_labels(y_true, "y_true")
    _check_same(p.shape[0], y_true=t)
    if p.dtype.kind != t.dtype.kind and {p.dtype.kind, t.dtype.kind} & {"U", "S", "O"}:
        raise NumbaflipInputError(
            f"prediction holds {p.dtype.kind!r}-kind labels but y_true holds "
            f"{t.dtype.kind!r}-kind labels; pass both in the same labels (e.g. both strings).")
    return p == t


def _check_same(m, **arrays):
    for k, v in arrays.items():
        if v.shape[0] != m:
            raise NumbaflipInputError(
                f"{k} has {v.shape[0]} entries but there are {m} test points; pass one value per "
                "test point, in the same order.")


def clean_accuracy(prediction, y_true) -> float:
    """Fraction of test points whose prediction equals the true label (any label type)."""
    correct = _correct(prediction, y_true)
    if correct.size == 0:
        raise NumbaflipInputError("prediction is empty; pass at least one test point.")
    return float(np.mean(correct))


def certified_accuracy(radius, prediction, y_true, radii) -> np.ndarray:
    """Certified accuracy at each r in ``radii``: mean(prediction == y_true and radius ≥ r).

    ``radius`` uses numbaflip's convention (−1 = not certified), so at r = 0 only certified
    points count.  Returns a float array with one value per entry of ``radii``.
    """
    r = _as_1d_int(radius, "radius")
    correct = _correct(prediction, y_true)
    _check_same(r.shape[0], prediction=correct)
    if r.size == 0:
        raise NumbaflipInputError("radius is empty; pass at least one test point.")
    rr = np.atleast_1d(np.asarray(radii))
    if rr.ndim != 1 or (rr.size and np.any(rr < 0)):
        raise NumbaflipInputError("radii must be a sequence of non-negative integers.")
    return np.array([float(np.mean(correct & (r >= int(x)))) for x in rr])


def accuracy_curve(radius, prediction, y_true, r_max=None):
    """(r, acc) with acc[r] the certified accuracy at every integer r = 0..r_max."""
    r = _as_1d_int(radius, "radius")
    correct = _correct(prediction, y_true)
    _check_same(r.shape[0], prediction=correct)
    ok = r[correct & (r >= 0)]
    if r_max is None:
        r_max = int(ok.max()) + 1 if ok.size else 1
    counts = np.bincount(np.minimum(ok, r_max + 1), minlength=r_max + 2)
    # number of correct points with radius ≥ r = suffix sums
    ge = np.cumsum(counts[::-1])[::-1][: r_max + 1]
    return np.arange(r_max + 1), ge / float(r.shape[0])


def _fmt(v: float) -> str:
    s = f"{v:.4f}"
    return s[1:] if s.startswith("0.") else s


def accuracy_table(rows, radii, *, title: str | None = None, q_label: str = "Noise q ↓") -> str:
    """Markdown table in the layout of the paper's Tables 1–2.

    Each row is a dict with ``"q"`` (shown in the first column), optional ``"bound"`` (a second
    column appears when any row has one), and either ``"accuracy"`` (one value per radius) or
    ``"radius"``, ``"prediction"``, ``"y_true"`` to compute it.  ``"upper": True`` marks an
    empirical upper bound (e.g. an attack or the undefended classifier): it is printed in
    parentheses, as in the paper, and never marked best.  The best certified value of each
    column is in bold (every row that attains it).
    """
    radii = [int(r) for r in radii]
    if not rows:
        raise NumbaflipInputError("accuracy_table needs at least one row.")
    table = []
    for i, row in enumerate(rows):
        if "accuracy" in row:
            acc = np.asarray(row["accuracy"], dtype=np.float64)
        elif all(k in row for k in ("radius", "prediction", "y_true")):
            acc = certified_accuracy(row["radius"], row["prediction"], row["y_true"], radii)
        else:
            raise NumbaflipInputError(
                f"row {i} needs 'accuracy' or all of 'radius', 'prediction', 'y_true'.")
        if acc.shape != (len(radii),):
            raise NumbaflipInputError(
                f"row {i} has {acc.shape[0] if acc.ndim else 1} accuracies for {len(radii)} radii.")
        table.append((row, acc))
    with_bound = any("bound" in row for row, _ in table)
    certified = [acc for row, acc in table if not row.get("upper")]
    best = np.max(np.vstack(certified), axis=0) if certified else None
    head = [q_label] + (["Bound"] if with_bound else []) + [str(r) for r in radii]
    lines = []
    if title:
        lines += [f"**{title}**", ""]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join([":--"] * (2 if with_bound else 1) + ["--:"] * len(radii)) + "|")
    for row, acc in table:
        cells = [str(row.get("q", ""))] + ([str(row.get("bound", ""))] if with_bound else [])
        for j, v in enumerate(acc):
            s = _fmt(v)
            if row.get("upper"):
                s = f"({s})"
            elif best is not None and v == best[j]:
                s = f"**{s}**"
            cells.append(s)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Columns: number of label flips r. Entries: fraction of test points correctly "
                 "classified and certified at radius ≥ r" +
                 ("; in parentheses: empirical upper bounds (attacks)." if any(
                     row.get("upper") for row, _ in table) else "."))
    return "\n".join(lines) + "\n"


def read_results_csv(path) -> dict:
    """Read the per-test-point CSV written by ``numbaflip certify`` (:func:`io.write_results_csv`).

    Returns a dict with ``"index"``, ``"prediction"``, ``"label"`` (None if the column is
    absent; integers when every prediction and label cell is an integer, strings otherwise, as
    ``certify`` writes the user's labels), ``"radius"`` (dict bound → int64 array, in column order) and ``"log_p_wrong"``.
    """
    fspath = os.fspath(path)
    try:
        with open(fspath, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise NumbaflipInputError(f"cannot read {fspath!r}: {exc.strerror or exc}.")
    rows = [r for r in rows if r and any(c.strip() for c in r)]
    if not rows:
        raise NumbaflipInputError(f"{fspath!r} is empty; expected a header and one row per point.")
    head = [c.strip() for c in rows[0]]
    need = ("index", "prediction")
    for k in need:
        if k not in head:
            raise NumbaflipInputError(
                f"{fspath!r} has no {k!r} column (header: {', '.join(head)}); pass a file written "
                "by 'numbaflip certify'.")
    bounds = [h[len("radius_"):] for h in head if h.startswith("radius_")]
    if not bounds:
        raise NumbaflipInputError(f"{fspath!r} has no radius_<bound> column.")
    cols = {h: [] for h in head}
    for ln, r in enumerate(rows[1:], start=2):
        if len(r) != len(head):
            raise NumbaflipInputError(
                f"{fspath!r} line {ln}: {len(r)} cells but the header has {len(head)}.")
        for h, c in zip(head, r):
            cols[h].append(c.strip())

    def ints(h):
        try:
            return np.array([int(v) for v in cols[h]], dtype=np.int64)
        except ValueError:
            raise NumbaflipInputError(f"{fspath!r}: column {h!r} must hold integers.")

    # labels as written: integers when every prediction and label cell is one, else strings
    label_cols = ["prediction"] + (["label"] if "label" in cols else [])
    try:
        labels = {h: np.array([int(v) for v in cols[h]], dtype=np.int64) for h in label_cols}
    except ValueError:
        labels = {h: np.array(cols[h], dtype=str) for h in label_cols}
    out = {"index": ints("index"), "prediction": labels["prediction"],
           "label": labels.get("label"),
           "radius": {b: ints("radius_" + b) for b in bounds}}
    if "log_p_wrong" in cols:
        try:
            out["log_p_wrong"] = np.array([float(v) for v in cols["log_p_wrong"]])
        except ValueError:
            raise NumbaflipInputError(f"{fspath!r}: column 'log_p_wrong' must hold numbers.")
    else:
        out["log_p_wrong"] = None
    return out


def report_from_csv(path, radii, *, q: str | None = None, title: str | None = None) -> str:
    """Clean accuracy and a certified-accuracy table (one row per bound) from a results CSV.
    The CSV must have the ``label`` column (certify with test labels)."""
    d = read_results_csv(path)
    if d["label"] is None:
        raise NumbaflipInputError(
            f"{os.fspath(path)!r} has no 'label' column, so accuracy cannot be computed; "
            "certify with test labels (they are written as the 'label' column).")
    rows = [{"q": q if q is not None else "", "bound": b, "radius": r,
             "prediction": d["prediction"], "y_true": d["label"]} for b, r in d["radius"].items()]
    clean = clean_accuracy(d["prediction"], d["label"])
    text = accuracy_table(rows, radii, title=title, q_label="q" if q is not None else "")
    return (f"{len(d['prediction'])} test points, clean accuracy {_fmt(clean)}\n\n" + text)


