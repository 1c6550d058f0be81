"""Shared helpers for the reproduction scripts in this directory (not part of the package).

* :func:`read_idx` / :func:`load_mnist_dir` read MNIST-format IDX files (raw or gzipped).
* :func:`pca_features` fits PCA on unlabelled training data (numpy only).
* :func:`certify_grid` runs :func:`numbaflip.certify` over a grid of q and collects certified
  accuracy per bound.
* :func:`paper_table` formats a table in the layout of the paper's Tables 1–5: rows q,
  columns r (with the bounds side by side), the best value in each column in bold.
* :func:`save_plot` draws certified accuracy against r (PNG + SVG) with
  :func:`numbaflip.report.plot_certified_accuracy` when matplotlib is present.
"""
from __future__ import annotations

import gzip
import os
import struct
import sys
import time

import numpy as np

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


# --------------------------------------------------------------------------------------------
# IDX (MNIST format)
# --------------------------------------------------------------------------------------------
def read_idx(path):
    """Read one IDX file (``.gz`` or raw) into a numpy array of its stored shape."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number {data[:4]!r})")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX data type 0x{code:02x}")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[code])
    count = int(np.prod(dims, dtype=np.int64))
    offset = 4 + 4 * ndim
    if len(data) - offset != count * dtype.itemsize:
        raise ValueError(f"{path}: expected {count} values of {dtype} after the header, file "
                         f"has {len(data) - offset} bytes")
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))


def _find(directory, stem):
    cands = [stem, stem.replace("-idx", ".idx")]
    for c in cands:
        for name in (c, c + ".gz"):
            p = os.path.join(directory, name)
            if os.path.isfile(p):
                return p
    raise FileNotFoundError(
        f"no {stem}[.gz] in {directory!r}; expected the four MNIST-format files "
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte (raw or .gz)")


def load_mnist_dir(directory):
    """``(train_images (n, 784) uint8, train_labels int64, test_images, test_labels)``."""
    out = []
    for split in ("train", "t10k"):
        img = read_idx(_find(directory, f"{split}-images-idx3-ubyte"))
        lab = read_idx(_find(directory, f"{split}-labels-idx1-ubyte"))
        if img.ndim != 3 or lab.ndim != 1 or img.shape[0] != lab.shape[0]:
            raise ValueError(f"{directory}: {split} images {img.shape} / labels {lab.shape} "
                             "do not match")
        out += [img.reshape(img.shape[0], -1), lab.astype(np.int64)]
    return tuple(out)


# --------------------------------------------------------------------------------------------
# label-free features
# --------------------------------------------------------------------------------------------
def pca_basis(X, n_components):
    """``(mean, V)`` of a PCA fitted on the rows of ``X`` (no labels); V is d × n_components.

    Uses the eigendecomposition of the d × d scatter matrix (fast for n ≫ d); each
    component's sign is fixed (largest-magnitude entry positive) so runs are reproducible.
    """
    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=0)
    C = X - mean
    w, V = np.linalg.eigh(C.T @ C)
    V = V[:, np.argsort(w)[::-1][:n_components]]
    V *= np.sign(V[np.argmax(np.abs(V), axis=0), np.arange(V.shape[1])])
    return mean, np.ascontiguousarray(V)


def pca_project(X, mean, V):
    return np.ascontiguousarray((np.asarray(X, dtype=np.float64) - mean) @ V)


def pca_features(train, test, n_components):
    """PCA fitted on ``train`` only (no labels): returns (train_features, test_features)."""
    mean, V = pca_basis(train, n_components)
    return pca_project(train, mean, V), pca_project(test, mean, V)


def subsample(n, k, seed):
    """Sorted indices of a seeded random subset of size min(k, n) of range(n) (k=None: all)."""
    if k is None or k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


# --------------------------------------------------------------------------------------------
# certification over a q grid
# --------------------------------------------------------------------------------------------
def certify_grid(X_train, y_train, X_test, y_test, *, qs, radii, bounds, num_classes=None,
                 lam="auto", log=sys.stderr, label=""):
    """Certify at every q; returns a dict with per-(q, bound) certified accuracy.

    Result keys: ``acc[bound][q]`` → array over ``radii``; ``clean[q]``; ``seconds[q]``;
    ``bounds`` (those used); ``radius[bound][q]`` (per-test-point radii),
    ``prediction[q]`` and ``result[q]`` (the :class:`numbaflip.CertifyResult`).  ``exact``
    is additionally run at q = 0 (plain ridge) when requested.
    """
    import numbaflip
    from numbaflip.demo import available_bounds

    wanted = tuple(bounds)
    bounds = available_bounds(wanted, num_classes)
    missing = tuple(b for b in wanted if b not in bounds)
    if missing and log is not None:
        print(f"  {label}: bounds {missing} not available in this numbaflip; skipped",
              file=log)
    res = dict(acc={b: {} for b in bounds}, clean={}, seconds={}, bounds=bounds,
               radius={b: {} for b in bounds}, prediction={}, result={}, missing=missing,
               y_test=np.asarray(y_test), radii=tuple(radii), n_train=len(y_train))
    grid = [(q, bounds) for q in qs]
    if "exact" in bounds:
        grid = [(0.0, ("exact",))] + grid
    for q, bset in grid:
        t0 = time.perf_counter()
        r = numbaflip.certify(X_train, y_train, X_test, q=q, lam=lam, bounds=bset,
                              num_classes=num_classes)
        dt = time.perf_counter() - t0
        res["seconds"][q] = dt
        res["clean"][q] = float(np.mean(r.prediction == y_test))
        res["prediction"][q] = r.prediction
        res["result"][q] = r
        for b in bset:
            res["radius"][b][q] = np.asarray(r.radius[b])
            res["acc"][b][q] = r.certified_accuracy(y_test, radii, bound=b)
        if log is not None:
            med = {b: int(np.median(r.radius[b])) for b in bset}
            print(f"  {label} q={q:g}: {dt:.1f} s, clean {res['clean'][q]:.4f}, "
                  f"median radius {med}", file=log, flush=True)
    return res


# --------------------------------------------------------------------------------------------
# tables and plots
# --------------------------------------------------------------------------------------------
_BOUND_NAME = {"kl": "KL", "tight": "tight", "exact": "exact"}


def paper_table(res, radii, *, title, order=("exact", "tight", "kl"), qs=None,
                include_q0=True, row_header="q ↓", row_name=None, note=None):
    """Markdown table in the layout of the paper's Tables 1–5.

    Rows are q (plus ``0 (ridge)``: the exact certificate of the plain ridge classifier);
    columns are r, and each cell holds the bounds side by side (``exact / tight / KL``).  For
    each (r, bound) the best value over the rows is in bold (ties all bold; zeros never).
    A "clean" column gives the non-robust accuracy.  ``row_header``, ``row_name`` (key →
    first-cell text) and ``note`` (the closing paragraph) let other sweeps reuse the layout.
    """
    bounds = [b for b in order if b in res["bounds"]]
    if qs is None:
        qs = [q for q in res["clean"] if q > 0]
    rows_q = ([0.0] if include_q0 and 0.0 in res["clean"] else []) + list(qs)
    best = {}
    for i, _ in enumerate(radii):
        for b in bounds:
            vals = [res["acc"][b][q][i] for q in rows_q if q in res["acc"][b]]
            best[(i, b)] = max(vals) if vals else None
    names = " / ".join(_BOUND_NAME[b] for b in bounds)
    head = [row_header, "clean"] + [f"r = {r}" for r in radii]
    lines = [f"**{title}**", "", f"Each cell: {names}.", "",
             "| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for q in rows_q:
        name = row_name(q) if row_name else ("0 (ridge)" if q == 0 else f"{q:g}")
        cells = [name, f"{res['clean'][q]:.4f}"]
        for i, _ in enumerate(radii):
            parts = []
            for b in bounds:
                if q not in res["acc"][b]:
                    parts.append("–")
                    continue
                v = res["acc"][b][q][i]
                s = f"{v:.4f}"
                if v > 0 and v == best[(i, b)]:
                    s = f"**{s}**"
                parts.append(s)
            cells.append(" / ".join(parts))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(note if note is not None else
                 "Certified accuracy = fraction of test points classified correctly and "
                 "certified at ≥ r flips. KL/tight certify the smoothed classifier g; exact "
                 "certifies the deterministic rule (row 0: plain ridge). Bold = best q per "
                 "column and bound (a summary, not a classifier: choosing q per column voids "
                 "the guarantee).")
    return "\n".join(lines)


def save_plot(res, path_stem, *, title, r_max=None, log=sys.stderr):
    """Certified accuracy vs r as ``path_stem``.png and .svg, via numbaflip.report.

    One curve per q > 0 for the best smoothing bound available (tight, else KL; solid), the
    exact certificate of the plain ridge classifier (q = 0, dash-dot), and each q's clean
    accuracy (dashed).  KL and the exact certificate at q > 0 are in the tables only, to keep
    the plot readable.  Returns the written paths ([] if matplotlib is not installed).
    """
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        if log is not None:
            print("matplotlib is not installed (pip install 'numbaflip[plot]'): no plots",
                  file=log)
        return []
    from numbaflip.report import plot_certified_accuracy

    # x range: up to just past the largest radius of a correctly classified point
    top_r = 1
    for b in res["bounds"]:
        for q, rad in res["radius"][b].items():
            ok = res["prediction"][q] == res["y_test"]
            if ok.any():
                top_r = max(top_r, int(np.max(np.asarray(rad)[ok])))
    top_r = max(10, int(np.ceil(1.1 * top_r)))
    if r_max is not None:
        top_r = min(top_r, int(r_max))
    smooth = next((b for b in ("tight", "kl") if b in res["bounds"]), None)
    curves = []
    if "exact" in res["bounds"] and 0.0 in res["radius"]["exact"]:
        curves.append(dict(label="ridge (q = 0), exact", q=0.0, kind="exact",
                           radius=res["radius"]["exact"][0.0],
                           prediction=res["prediction"][0.0], y_true=res["y_test"]))
    if smooth is not None:
        for q in sorted(res["radius"][smooth]):
            curves.append(dict(label=f"q = {q:g}, {_BOUND_NAME[smooth]}", q=q,
                               kind="certified", radius=res["radius"][smooth][q],
                               prediction=res["prediction"][q], y_true=res["y_test"]))
    clean = {c["q"]: res["clean"][c["q"]] for c in curves}
    return plot_certified_accuracy(curves, path_stem, clean=clean, title=title, r_max=top_r,
                                   n_train=res.get("n_train"))


def write_text(path, text):
    """Write ``text`` to ``path`` atomically (temporary file + rename)."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
