"""Shared helpers for the reproduction scripts in this directory (not part of the package).

* :func:`read_idx` / :func:`load_mnist_dir` read MNIST-format IDX files (raw or gzipped).
* :func:`pca_features` fits PCA on unlabelled training data (numpy only).
* :func:`certify_grid` runs :func:`numbaflip.certify` over a grid of q and collects certified
  accuracy per bound, plus the exact label-flipping attack on the plain ridge classifier
  (:func:`numbaflip.attack`, ``kind="exact"``, q = 0) as an empirical upper bound.
* :func:`paper_table` formats a table in the layout of the paper's Tables 1–5: rows q,
  columns r (with the bounds side by side), the best value in each column in bold, and an
  "attack (upper bound)" row for the undefended ridge classifier like the paper's
  "(undefended)" rows.
* :func:`save_plot` draws certified accuracy against r in the style of the paper's Figure 1
  (PNG, and SVG when small) with matplotlib, when it is installed.
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
                 lam="auto", attack=True, log=sys.stderr, label=""):
    """Certify at every q; returns a dict with per-(q, bound) certified accuracy.

    Result keys: ``acc[bound][q]`` → array over ``radii``; ``clean[q]``; ``seconds[q]``;
    ``bounds`` (those used); ``radius[bound][q]`` (per-test-point radii),
    ``prediction[q]`` and ``result[q]`` (the :class:`numbaflip.CertifyResult`).  ``exact``
    is additionally run at q = 0 (plain ridge) when requested.

    With ``attack=True`` the plain ridge classifier (q = 0) is also attacked with
    :func:`numbaflip.attack` (``kind="exact"``): ``attack`` holds ``size`` (minimal number of
    label changes that alter each prediction, −1 if none), ``prediction``, ``radius_ub``
    (size − 1, n where no attack exists: the prediction is *not* robust to ``size`` flips),
    ``acc`` (fraction of test points correct with ``radius_ub ≥ r``: an empirical upper bound
    on certified accuracy), ``seconds`` and ``matches_exact`` (whether ``radius_ub`` equals the
    exact radius at q = 0 for every point, as it must: the greedy attack is minimal).
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
    res["attack"] = None
    if attack:
        t0 = time.perf_counter()
        a = numbaflip.attack(X_train, y_train, X_test, q=0.0, lam=lam, num_classes=num_classes,
                             kind="exact")
        dt = time.perf_counter() - t0
        ub = a.radius_upper_bound()
        ok = np.asarray(a.prediction) == res["y_test"]
        acc = np.array([float(np.mean(ok & (ub >= int(r)))) for r in radii])
        ex = res["radius"].get("exact", {}).get(0.0)
        matches = None
        if ex is not None:
            matches = bool(np.array_equal(ub, np.asarray(ex))
                           and np.array_equal(a.prediction, res["prediction"][0.0]))
        res["attack"] = dict(size=np.asarray(a.size), prediction=np.asarray(a.prediction),
                             radius_ub=ub, acc=acc, seconds=dt, matches_exact=matches,
                             clean=float(np.mean(ok)))
        if log is not None:
            print(f"  {label} attack on ridge (q=0, kind='exact'): {dt:.1f} s, median size "
                  f"{int(np.median(a.size))}; size − 1 == exact radius for all points: "
                  f"{matches}", file=log, flush=True)
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
    A "clean" column gives the non-robust accuracy.  When ``res["attack"]`` is present (see
    :func:`certify_grid`) a row "attack on ridge (upper bound)" follows the ridge row, its
    values in parentheses like the paper's "(undefended)" rows, never bold: the accuracy of
    the undefended ridge classifier under the exact label-flipping attack.
    ``row_header``, ``row_name`` (key → first-cell text) and ``note`` (the closing paragraph)
    let other sweeps reuse the layout.
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
    att = res.get("attack") if include_q0 else None
    att_done = False

    def attack_row():
        cells = ["ridge (q = 0): attack (upper bound)", f"({att['clean']:.4f})"]
        cells += [f"({v:.4f})" for v in att["acc"]]
        return "| " + " | ".join(cells) + " |"

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
        if att is not None and q == 0:
            lines.append(attack_row())
            att_done = True
    if att is not None and not att_done:     # no ridge row (exact not requested): on top
        lines.insert(6, attack_row())
    lines.append("")
    lines.append(note if note is not None else
                 "Certified accuracy = fraction of test points classified correctly and "
                 "certified at ≥ r flips. KL/tight certify the smoothed classifier g; exact "
                 "certifies the deterministic rule (row 0: plain ridge). Bold = best q per "
                 "column and bound (a summary, not a classifier: choosing q per column voids "
                 "the guarantee).")
    if include_q0 and res.get("attack") is not None:
        a = res["attack"]
        check = {True: "it equals the exact row for every test point (checked: attack size "
                       "= exact radius + 1)",
                 False: "WARNING: it differs from the exact certificate of the ridge "
                        "classifier, which should not happen",
                 None: "(the exact bound was not run, so it was not compared)"}[
            a["matches_exact"]]
        lines += ["", "Parenthesised row (cf. the paper's \"(undefended)\" rows): accuracy "
                      "of the plain ridge classifier under the label-flipping attack "
                      "`numbaflip.attack(kind=\"exact\")` with r flips — the fraction of test "
                      "points classified correctly whose minimal attack needs more than r "
                      "flips. An attack is an empirical *upper* bound on robustness; for this "
                      "deterministic linear rule the greedy attack is provably minimal, so "
                      f"{check}: the certificate is tight. (The paper's undefended CNN was "
                      "attacked heuristically, so its row is only an upper bound.)"]
    return "\n".join(lines)


def _step_xy(radius, prediction, y_true, r_max):
    """Certified-accuracy step curve on r = 0..r_max, reduced to its change points."""
    from numbaflip.report import accuracy_curve

    r, acc = accuracy_curve(radius, prediction, y_true, r_max)
    keep = np.ones(r.size, bool)
    keep[1:] = acc[1:] != acc[:-1]
    keep[-1] = True
    return r[keep], acc[keep]


def _exact_curves_coincide(res, qs, r_max, tol=0.01):
    """Whether every q > 0 exact curve is within ``tol`` of the ridge (q = 0) one."""
    from numbaflip.report import accuracy_curve

    ex, y = res["radius"]["exact"], res["y_test"]
    _, base = accuracy_curve(ex[0.0], res["prediction"][0.0], y, r_max)
    for q in qs:
        if q in ex:
            _, acc = accuracy_curve(ex[q], res["prediction"][q], y, r_max)
            if np.max(np.abs(acc - base)) > tol:
                return False
    return True


def save_plot(res, path_stem, *, title, r_max=None, log=sys.stderr, svg_max_bytes=200_000):
    """Certified accuracy against r in the style of the paper's Figure 1.

    One colour per q > 0; black for the plain ridge classifier (q = 0, "undefended").
    Line styles: solid = tight bound and dotted (thinner) = KL bound, both certifying the
    smoothed classifier g; dash-dot = exact certificate of the deterministic rule (thin for the
    deployed rule at q > 0, thick black for ridge); dashed horizontal = clean accuracy of that
    q; black × = the exact label-flipping attack on ridge (numbaflip.attack, kind="exact"): an
    empirical *upper* bound, which for this deterministic rule coincides with the exact
    certificate (minimal attack size = exact radius + 1), so the × lie on the ridge line.
    When every q > 0 exact curve is within 1% of the ridge one the legend says so (their thin
    dash-dot lines are then hidden under it).  The x axis ends just past the largest radius of
    a correctly classified point (at most ``r_max``); y runs to 1.02 so that clean accuracy
    near 1 stays visible.
    Writes ``path_stem``.png and, if it is at most ``svg_max_bytes``, ``path_stem``.svg.
    Returns the written paths ([] if matplotlib is not installed).
    """
    import importlib.util
    import io

    if importlib.util.find_spec("matplotlib") is None:
        if log is not None:
            print("matplotlib is not installed (pip install 'numbaflip[plot]'): no plots",
                  file=log)
        return []
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    y = res["y_test"]
    att = res.get("attack")
    # x range: up to just past the largest radius of a correctly classified point
    top_r = 1
    radii_sets = [(res["prediction"][q], rad) for b in res["bounds"]
                  for q, rad in res["radius"][b].items()]
    if att is not None:
        radii_sets.append((att["prediction"], att["radius_ub"]))
    for pred, rad in radii_sets:
        rad = np.asarray(rad)
        ok = (pred == y) & (rad < res.get("n_train", np.inf))
        if ok.any():
            top_r = max(top_r, int(np.max(rad[ok])))
    top_r = max(10, int(np.ceil(1.05 * top_r)))
    if r_max is not None:
        top_r = min(top_r, int(r_max))

    qs = sorted(q for q in res["clean"] if q > 0)
    cmap = matplotlib.colormaps["tab10"]
    palette = [cmap(i) for i in (0, 1, 2, 3, 4, 5, 6, 8, 9)]     # skip grey (7)
    colour = {q: palette[i % len(palette)] for i, q in enumerate(qs)}
    colour[0.0] = "black"
    dashdot = (0, (6, 2, 1.5, 2))

    fig = Figure(figsize=(9.0, 4.6))
    ax = fig.add_subplot()
    for q in qs:
        c = colour[q]
        ax.axhline(res["clean"][q], linestyle="--", color=c, linewidth=0.9)
        if "exact" in res["radius"] and q in res["radius"]["exact"]:
            ax.step(*_step_xy(res["radius"]["exact"][q], res["prediction"][q], y, top_r),
                    where="post", linestyle=dashdot, color=c, linewidth=0.9, alpha=0.85)
        if "kl" in res["radius"] and q in res["radius"]["kl"]:
            ax.step(*_step_xy(res["radius"]["kl"][q], res["prediction"][q], y, top_r),
                    where="post", linestyle=":", color=c, linewidth=1.2)
        if "tight" in res["radius"] and q in res["radius"]["tight"]:
            ax.step(*_step_xy(res["radius"]["tight"][q], res["prediction"][q], y, top_r),
                    where="post", linestyle="-", color=c, linewidth=1.8)
    have_ridge = "exact" in res["radius"] and 0.0 in res["radius"]["exact"]
    if have_ridge:
        ax.axhline(res["clean"][0.0], linestyle="--", color="black", linewidth=0.9)
        ax.step(*_step_xy(res["radius"]["exact"][0.0], res["prediction"][0.0], y, top_r),
                where="post", linestyle=dashdot, color="black", linewidth=1.6, zorder=1.9)
    if att is not None:
        r_att, a_att = _step_xy(att["radius_ub"], att["prediction"], y, top_r)
        grid = np.unique(np.linspace(0, top_r, 25).astype(int))
        vals = a_att[np.searchsorted(r_att, grid, side="right") - 1]
        ax.plot(grid, vals, linestyle="none", marker="x", markersize=6, color="black",
                markeredgewidth=1.3, zorder=3)
    ax.set_xlim(0, top_r)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("Number of label flips r")
    ax.set_ylabel("Certified accuracy")
    n_train = res.get("n_train")
    if n_train:
        sec = ax.secondary_xaxis("top", functions=(lambda x: 100.0 * x / n_train,
                                                   lambda p: p * n_train / 100.0))
        sec.set_xlabel("% of training set", fontsize=9)
    if title:
        ax.set_title(title, fontsize=11)
    ax.grid(True, alpha=0.3)

    q_handles = [Line2D([], [], color=colour[q], linewidth=2.5, label=f"q = {q:g}")
                 for q in qs]
    if have_ridge or att is not None:
        q_handles.append(Line2D([], [], color="black", linewidth=2.5,
                                label="q = 0: plain ridge\n(undefended)"))
    st = []
    if "tight" in res["bounds"]:
        st.append(Line2D([], [], color="0.3", linewidth=1.8, label="tight bound (certified, g)"))
    if "kl" in res["bounds"]:
        st.append(Line2D([], [], color="0.3", linestyle=":", linewidth=1.2,
                         label="KL bound (certified, g)"))
    if "exact" in res["bounds"]:
        lab = "exact (certified,\ndeterministic rule)"
        if have_ridge and _exact_curves_coincide(res, qs, top_r):
            lab += "\n(q > 0: on the ridge\nline here, ±1%)"
        st.append(Line2D([], [], color="0.3", linestyle=dashdot, linewidth=1.2, label=lab))
    st.append(Line2D([], [], color="0.3", linestyle="--", linewidth=0.9,
                     label="clean accuracy"))
    if att is not None:
        same = " = exact\n(minimal attack:\nsize = radius + 1)" if att["matches_exact"] else ""
        st.append(Line2D([], [], color="black", linestyle="none", marker="x",
                         markeredgewidth=1.3, label=f"attack on ridge\n(upper bound){same}"))
    leg1 = ax.legend(handles=q_handles, title="colour", fontsize=8, title_fontsize=8,
                     loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.add_artist(leg1)
    ax.legend(handles=st, title="line style", fontsize=8, title_fontsize=8,
              loc="lower left", bbox_to_anchor=(1.01, 0.0), borderaxespad=0)
    fig.tight_layout()
    stem = os.fspath(path_stem)
    paths = [stem + ".png"]
    fig.savefig(paths[0], dpi=130, bbox_inches="tight")
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    if buf.tell() <= svg_max_bytes:
        with open(stem + ".svg", "wb") as fh:
            fh.write(buf.getvalue())
        paths.append(stem + ".svg")
    else:
        if log is not None:
            print(f"  {os.path.basename(stem)}.svg would be {buf.tell() / 1000:.0f} kB "
                  f"(> {svg_max_bytes / 1000:.0f} kB): PNG only", file=log)
        if os.path.exists(stem + ".svg"):
            os.remove(stem + ".svg")      # a stale SVG from an earlier run
    return paths


def write_text(path, text):
    """Write ``text`` to ``path`` atomically (temporary file + rename)."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# comparison per learner (ridge and kNN) over a small grid of λ and k
# --------------------------------------------------------------------------------------------
#: families of the learner comparison: (key, learner, bound at q > 0 or "exact" at q = 0)
LEARNER_FAMILIES = (("ridge exact", "ridge", "exact"), ("ridge tight", "ridge", "tight"),
                    ("kNN exact", "knn", "exact"), ("kNN tight", "knn", "tight"))


def _learner_runs(X_train, *, ks, lam_factors, qs):
    """(family, setting text, q, bound, learner) for every run of the comparison: each λ
    factor and each k once exactly at q = 0, and with the tight bound at every q > 0.  Ridge
    λ = factor × numbaflip.default_lambda(X_train, q) (label-free)."""
    import numbaflip
    from numbaflip.learners import KNN, Ridge

    runs = []
    for f in lam_factors:
        for q in (0.0,) + tuple(qs):
            lam = f * numbaflip.default_lambda(X_train, q)
            fam = "ridge exact" if q == 0 else "ridge tight"
            runs.append((fam, f"λ = {f:g}× default", q, "exact" if q == 0 else "tight",
                         Ridge(lam=lam)))
    for k in ks:
        for q in (0.0,) + tuple(qs):
            fam = "kNN exact" if q == 0 else "kNN tight"
            runs.append((fam, f"k = {k}", q, "exact" if q == 0 else "tight", KNN(k)))
    return runs


def learner_grid(X_train, y_train, X_test, y_test, *, ks, lam_factors, qs, radii,
                 num_classes=None, log=sys.stderr, label=""):
    """Certify every run of :func:`_learner_runs`; returns ``{"runs": [...], "radii",
    "y_test", "n_train"}``, each run a dict with family, setting, q, bound, the certified
    accuracy at ``radii`` (``acc``), clean accuracy, radius and prediction per test point and
    seconds.  Every run is one certified classifier; the summary in
    :func:`learner_best_table` is not."""
    import numbaflip

    out = {"runs": [], "radii": tuple(radii), "y_test": np.asarray(y_test),
           "n_train": len(y_train), "num_classes": num_classes}
    ks = tuple(k for k in ks if k <= len(y_train))
    for fam, setting, q, bound, learner in _learner_runs(X_train, ks=ks,
                                                         lam_factors=lam_factors, qs=qs):
        t0 = time.perf_counter()
        r = numbaflip.certify(X_train, y_train, X_test, q=q, learner=learner,
                              bounds=(bound,), num_classes=num_classes, progress=False)
        dt = time.perf_counter() - t0
        run = dict(family=fam, setting=setting, q=q, bound=bound, seconds=dt,
                   clean=float(np.mean(r.prediction == y_test)),
                   acc=r.certified_accuracy(y_test, radii, bound=bound),
                   radius=np.asarray(r.radius[bound]), prediction=np.asarray(r.prediction))
        out["runs"].append(run)
        if log is not None:
            print(f"  {label} {fam} {setting} q={q:g}: {dt:.1f} s, clean {run['clean']:.4f}, "
                  f"median radius {int(np.median(run['radius']))}", file=log, flush=True)
    return out


def _run_name(run):
    return run["setting"] + ("" if run["q"] == 0 else f", q = {run['q']:g}")


def learner_full_table(grid, *, title):
    """Markdown: one row per run (one certified classifier each), certified accuracy at r."""
    radii = grid["radii"]
    head = (["learner, bound", "setting", "clean", "top class"] + [f"r = {r}" for r in radii]
            + ["s"])
    lines = [f"**{title}**", "", "| " + " | ".join(head) + " |",
             "|" + "|".join(["---", "---"] + ["---:"] * (len(head) - 2)) + "|"]
    for run in grid["runs"]:
        pred = run["prediction"]
        top = np.bincount(pred).max() / pred.size if pred.size else 0.0
        cells = [run["family"], _run_name(run), f"{run['clean']:.4f}", f"{top:.2f}"]
        cells += [f"{v:.4f}" for v in run["acc"]] + [f"{run['seconds']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "*top class* = share of the test points predicted as the most predicted "
              "class: near 1, the classifier is almost constant, and its certified accuracy "
              "is about that class's share of the test set at every r (a constant classifier "
              "is trivially robust)."]
    return "\n".join(lines)


def learner_best_table(grid, *, title):
    """Markdown best-of summary: per radius and family, the largest certified accuracy over
    the grid and the setting that reached it; last row the best over all families."""
    radii = grid["radii"]
    head = ["best of"] + [f"r = {r}" for r in radii]
    lines = [f"**{title}**", "", "| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] + ["---:"] * len(radii)) + "|"]
    fams = [f for f, _, _ in LEARNER_FAMILIES if any(r["family"] == f for r in grid["runs"])]

    def best(runs, i):
        top = max(runs, key=lambda r: r["acc"][i])
        return top["acc"][i], top

    for fam in fams + ["all"]:
        runs = grid["runs"] if fam == "all" else [r for r in grid["runs"] if r["family"] == fam]
        cells = [f"**{fam}**" if fam == "all" else fam]
        for i in range(len(radii)):
            v, top = best(runs, i)
            where = _run_name(top) if fam != "all" else f"{top['family']}, {_run_name(top)}"
            cells.append(f"{v:.4f} ({where})" if v > 0 else "0")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "**Best-of summary, not a classifier**: each cell is the maximum over the "
              "grid of settings (λ or k, q), chosen per column after looking at the test "
              "set, as in the paper's tables. Each setting on its own is a certified "
              "classifier (full table above); picking the best per r is not."]
    return "\n".join(lines)


def save_learner_plot(grid, path_stem, *, title, r_max, log=sys.stderr):
    """Certified accuracy against r: left panel ridge runs (colour = λ), right panel kNN runs
    (colour = k); solid = exact (q = 0), dashed / dotted = tight at the first / second q; the
    thick grey line in both panels is the best-of envelope over all runs (a summary, not a
    classifier).  Writes ``path_stem``.png; returns the paths ([] without matplotlib)."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        if log is not None:
            print("matplotlib is not installed: no learner plot", file=log)
        return []
    import matplotlib
    from matplotlib.figure import Figure
    from numbaflip.report import accuracy_curve

    y = grid["y_test"]
    curves = []
    for run in grid["runs"]:
        r, acc = accuracy_curve(run["radius"], run["prediction"], y, r_max)
        curves.append((run, r, acc))
    envelope = np.max([acc for _, _, acc in curves], axis=0)
    qs = sorted({run["q"] for run in grid["runs"] if run["q"] > 0})
    style = {0.0: "-"}
    style.update({q: ls for q, ls in zip(qs, ("--", ":", "-."))})
    cmap = matplotlib.colormaps["viridis"]
    fig = Figure(figsize=(12.0, 6.0))
    for p, (learner, name) in enumerate((("ridge", "ridge"), ("kNN", "k nearest neighbours"))):
        ax = fig.add_subplot(1, 2, p + 1)
        mine = [c for c in curves if c[0]["family"].startswith(learner)]
        settings = list(dict.fromkeys(c[0]["setting"] for c in mine))
        for run, r, acc in mine:
            i = settings.index(run["setting"])
            c = cmap(0.85 * i / max(1, len(settings) - 1))
            lab = f"{run['setting']}, " + ("exact, q = 0" if run["q"] == 0 else
                                           f"tight, q = {run['q']:g}")
            ax.step(r, acc, where="post", color=c, linestyle=style[run["q"]],
                    linewidth=1.2, label=lab)
        ax.step(np.arange(r_max + 1), envelope, where="post", color="0.5", linewidth=3.0,
                alpha=0.45, label="best of all runs (summary)")
        ax.set_xlim(0, r_max)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("Number of label flips r")
        ax.set_ylabel("Certified accuracy")
        ax.set_title(name, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path = os.fspath(path_stem) + ".png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return [path]


def learner_section(grid, *, title, path_stem, r_max, plots=True, log=sys.stderr):
    """Markdown section (full table, best-of table, timings) and the plot for one task."""
    secs = sum(r["seconds"] for r in grid["runs"])
    text = "\n".join([
        f"## {title}", "",
        learner_full_table(grid, title=f"{title}: every run (each one certified classifier)"),
        "", learner_best_table(grid, title=f"{title}: best per radius"), "",
        f"{len(grid['runs'])} certification runs, {secs:.1f} s in total.", ""])
    paths = save_learner_plot(grid, path_stem, title=title, r_max=r_max, log=log) \
        if plots else []
    if paths:
        text += f"\n![{title}]({os.path.basename(paths[0])})\n"
    return text, paths
