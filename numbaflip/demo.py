"""A complete certification run on a small real dataset shipped with numbaflip.

``python -c "import numbaflip.demo as d; d.run_demo()"`` (or :func:`run_demo` from code)
certifies ridge classifiers on the UCI handwritten digits bundled in ``numbaflip/data/``
(see ``numbaflip/data/README.md`` for provenance and licence) and prints a certified-accuracy
table.  It takes about 10–30 s on two cores, most of it first-call compilation.

What it does
    * A fixed, seeded split of the 1797 images into 1200 training and 597 test images.
    * **Label-free features**: pixels scaled to [0, 1], centred, projected on the top
      ``n_components`` principal directions of the *training images* (numpy SVD; no labels).
    * A binary task (digit 1 → label 0 vs digit 7 → label 1) and the 10-class task.
    * :func:`numbaflip.certify` at ``q`` in :data:`BINARY_Q` / :data:`MULTI_Q` with
      ``lam="auto"`` (label-free) and the bounds ``kl``, ``tight`` and ``exact`` — those of
      them that the installed numbaflip supports (checked at run time).  ``exact`` is also
      reported at ``q = 0``: the exact robustness of the plain ridge classifier.
    * Certified accuracy at each radius ``r`` = the fraction of test points that are
      correctly classified *and* certified at radius ≥ r (paper §5).

The ``kl`` and ``tight`` radii certify the smoothed (randomised-label) classifier of the
paper; ``exact`` certifies the deterministic linear rule that numbaflip reports as the
prediction.  They are different classifiers, so ``exact`` need not dominate the others point
by point; ``tight`` is never below ``kl``.
"""
from __future__ import annotations

import sys
import time
from importlib import resources

import numpy as np

from .errors import NumbaflipInputError

__all__ = ["load_digits", "label_free_pca", "run_demo", "available_bounds",
           "BINARY_Q", "MULTI_Q", "RADII", "BOUNDS"]

#: Noise levels for the binary task (the paper's MNIST 1/7 grid starts at 0.3; the demo's
#: training set is 50 times smaller, so smaller q certify more).
BINARY_Q = (0.1, 0.2, 0.3)
#: Noise levels for the 10-class task (the paper's full-MNIST grid is 0.0125–0.05).
MULTI_Q = (0.01, 0.05)
#: Radii (numbers of label flips) at which certified accuracy is tabulated.
RADII = (0, 1, 2, 5, 10, 20, 50)
#: Bounds requested, in table order.
BOUNDS = ("kl", "tight", "exact")
#: The binary task: (digit mapped to label 0, digit mapped to label 1).
BINARY_DIGITS = (1, 7)

_SEED = 20200712
_N_TRAIN = 1200
_N_COMPONENTS = 20
_FORMAT_VERSION = 1


def load_digits():
    """The bundled digits: ``(images uint8 (1797, 64), labels int64 (1797,))``.

    8×8 images with pixel counts 0..16 and digit labels 0..9; see ``numbaflip/data/README.md``.
    """
    ref = resources.files("numbaflip").joinpath("data", "digits.npz")
    with resources.as_file(ref) as path, np.load(path, allow_pickle=False) as d:
        version = int(d["format_version"])
        if version != _FORMAT_VERSION:
            raise RuntimeError(
                f"numbaflip/data/digits.npz has format_version {version}, expected "
                f"{_FORMAT_VERSION}; regenerate it with scripts/make_demo_data.py")
        images = np.array(d["images"])
        labels = np.array(d["labels"]).astype(np.int64)
    return images, labels


def label_free_pca(train_images, test_images, n_components):
    """Project onto the top principal directions of ``train_images`` (no labels involved).

    Both inputs are (n, d) arrays; returns float64 ``(train_features, test_features)`` of
    shape (n, n_components), centred by the training mean.
    """
    Xtr = np.asarray(train_images, dtype=np.float64)
    Xte = np.asarray(test_images, dtype=np.float64)
    mean = Xtr.mean(axis=0)
    _, _, vt = np.linalg.svd(Xtr - mean, full_matrices=False)
    V = vt[:n_components].T
    return (np.ascontiguousarray((Xtr - mean) @ V), np.ascontiguousarray((Xte - mean) @ V))


_probe_cache: dict = {}


def available_bounds(wanted=BOUNDS, num_classes=None):
    """The subset of ``wanted`` that the installed :func:`numbaflip.certify` accepts.

    Each bound is tried once (per formulation) on a tiny fixed problem; a bound for which
    ``certify`` raises :class:`NumbaflipInputError`, :class:`NotImplementedError` or an
    ImportError of a numbaflip submodule is left out.  The result is cached for the process.
    """
    import numbaflip

    rng = np.random.default_rng(0)
    K = 2 if num_classes is None else int(num_classes)
    X = rng.normal(size=(3 * K, 2))
    y = np.arange(3 * K, dtype=np.int64) % K
    q = 0.1 if num_classes is None else 0.5 * (K - 1) / K / 4
    out = []
    for b in wanted:
        key = (b, num_classes)
        if key not in _probe_cache:
            try:
                numbaflip.certify(X, y, X[:2], q=q, bounds=(b,), num_classes=num_classes)
                _probe_cache[key] = True
            except (NumbaflipInputError, NotImplementedError):
                _probe_cache[key] = False
            except ImportError as exc:  # a numbaflip module for this bound is not installed
                if not (exc.name or "").startswith("numbaflip"):
                    raise
                _probe_cache[key] = False
        if _probe_cache[key]:
            out.append(b)
    return tuple(out)


def _split(labels):
    perm = np.random.default_rng(_SEED).permutation(labels.shape[0])
    return np.sort(perm[:_N_TRAIN]), np.sort(perm[_N_TRAIN:])


def _tasks(images, labels):
    tr, te = _split(labels)
    Ftr, Fte = label_free_pca(images[tr] / 16.0, images[te] / 16.0, _N_COMPONENTS)
    ytr, yte = labels[tr], labels[te]
    a, b = BINARY_DIGITS
    mtr = (ytr == a) | (ytr == b)
    mte = (yte == a) | (yte == b)
    return [
        dict(name=f"digits {a} vs {b}", num_classes=None, qs=BINARY_Q,
             X_train=Ftr[mtr], y_train=(ytr[mtr] == b).astype(np.int64),
             X_test=Fte[mte], y_test=(yte[mte] == b).astype(np.int64)),
        dict(name="digits 0-9", num_classes=10, qs=MULTI_Q,
             X_train=Ftr, y_train=ytr, X_test=Fte, y_test=yte),
    ]


def format_table(rows, radii=RADII):
    """Markdown table: one row per (task, q, bound); clean accuracy and one column per r."""
    head = ["task", "n", "q", "bound", "clean"] + [f"r={r}" for r in radii]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] * 4 + ["---:"] * (1 + len(radii))) + "|"]
    for row in rows:
        cells = [row["task"], str(row["n_train"]), f"{row['q']:g}", row["bound"],
                 f"{row['clean_accuracy']:.4f}"]
        cells += [f"{row['certified'][r]:.4f}" for r in radii]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_demo(out=sys.stdout, progress=True) -> dict:
    """Certify the bundled digits, print a certified-accuracy table to ``out``, return results.

    Returns a dict with

    ``rows``
        list of dicts with keys ``task``, ``num_classes``, ``n_train``, ``n_test``, ``q``,
        ``bound``, ``clean_accuracy`` and ``certified`` (dict r → certified accuracy at r),
        one per (task, q, bound), in table order;
    ``radii``, ``bounds`` (dict task → bounds used), ``table`` (the Markdown text printed),
    ``wall_time`` (seconds, including compilation).

    ``progress`` shows a progress bar on stderr.  Pass ``out=None`` to print nothing.
    """
    import numbaflip

    t0 = time.perf_counter()
    images, labels = load_digits()
    tasks = _tasks(images, labels)
    jobs = []
    bounds_used = {}
    for task in tasks:
        bset = available_bounds(BOUNDS, task["num_classes"])
        smooth = tuple(b for b in bset if b != "exact")
        if not smooth:
            raise RuntimeError(
                f"numbaflip.certify supports none of the smoothing bounds kl/tight for "
                f"{task['name']}; the installed numbaflip is incomplete")
        bounds_used[task["name"]] = bset
        if "exact" in bset:
            jobs.append((task, 0.0, ("exact",)))
        jobs.extend((task, q, bset) for q in task["qs"])

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="numbaflip demo", file=sys.stderr, leave=False)
    rows = []
    try:
        for task, q, bset in jobs:
            res = numbaflip.certify(task["X_train"], task["y_train"], task["X_test"], q=q,
                                    lam="auto", bounds=bset, num_classes=task["num_classes"])
            y_test = task["y_test"]
            clean = float(np.mean(res.prediction == y_test))
            for b in bset:
                acc = res.certified_accuracy(y_test, RADII, bound=b)
                rows.append(dict(task=task["name"], num_classes=task["num_classes"] or 2,
                                 n_train=int(task["y_train"].shape[0]),
                                 n_test=int(y_test.shape[0]), q=float(q), bound=b,
                                 clean_accuracy=clean,
                                 certified={r: float(a) for r, a in zip(RADII, acc)}))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - t0
    table = format_table(rows)
    if out is not None:
        print("Certified accuracy on the UCI handwritten digits bundled with numbaflip "
              "(label-free PCA features, lam='auto').", file=out)
        print("kl/tight certify the smoothed classifier; exact certifies the deterministic "
              "rule (q=0: plain ridge).", file=out)
        print(file=out)
        print(table, file=out)
        print(file=out)
        print(f"wall time: {wall:.1f} s (including first-call compilation)", file=out)
    return dict(rows=rows, radii=RADII, bounds=bounds_used, table=table, wall_time=wall)


if __name__ == "__main__":  # pragma: no cover
    run_demo()
