"""Certified accuracy against the ridge parameter λ (cf. the paper's Figure E.1).

What it does
    λ trades clean accuracy for robustness: a larger λ spreads alpha over more training
    points, which lowers clean accuracy and raises radii (math.md §1).  This script shows the
    trade-off for **label-free** λ values only — multiples of numbaflip's label-free default
    ``numbaflip.default_lambda(X_train, q)`` (the paper's rule with σ̂² replaced by 1/4), since
    a λ chosen from the training labels would void the certificate.

    Data (``--data``):
      ``digits`` (default)  the UCI digits bundled with numbaflip, as in numbaflip.demo
                            (seeded split, PCA to 20 dimensions fitted on training images);
      an IDX directory      MNIST-format files (e.g. /usr/share/datasets/fashion-mnist), PCA
                            to 30 dimensions fitted on unlabelled training images.
    Task: binary ``--classes A B`` (default 1 7) or ``--task multi`` (10 classes).  For each λ
    factor in ``--factors`` it certifies at one q (``--q``) with the bounds exact, tight, KL.

Outputs (in ``--out DIR``, default ``out/``)
    ``lambda_sweep_<data>_<task>.md``  one table: rows λ (value and factor), columns clean
                                       accuracy and certified accuracy at each r (cells
                                       exact / tight / KL), best per column in bold.

How long it takes (2 cores)
    digits: about 3 s.  Fashion-MNIST binary with ``--n-train 4000 --n-test 1000``: about
    11 s; Fashion-MNIST 1/7 in full (n = 12 000, m = 2 000, 7 values of λ): about 30 s
    (measured).

Usage
    python scripts/lambda_sweep.py
    python scripts/lambda_sweep.py --data /usr/share/datasets/fashion-mnist --q 0.3 \\
        --r 0,1,10,50,100,200,500 --out docs/results
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

FACTORS = (1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4)


def _load(args):
    """(Xtr, ytr, Xte, yte, num_classes, description) with label-free features."""
    if args.data == "digits":
        from numbaflip import demo

        images, labels = demo.load_digits()
        tr, te = demo._split(labels)
        Ftr, Fte = demo.label_free_pca(images[tr] / 16.0, images[te] / 16.0, 20)
        ytr_all, yte_all = labels[tr], labels[te]
        desc = ("UCI digits bundled with numbaflip (numbaflip.demo split), PCA to 20 "
                "dimensions fitted on the training images without labels")
    else:
        tr_img, ytr_all, te_img, yte_all = _common.load_mnist_dir(args.data)
        fit = _common.subsample(tr_img.shape[0], 20000, args.seed + 1)
        mean, V = _common.pca_basis(tr_img[fit] / 255.0, 30)
        Ftr = _common.pca_project(tr_img / 255.0, mean, V)
        Fte = _common.pca_project(te_img / 255.0, mean, V)
        desc = (f"{os.path.basename(os.path.normpath(args.data))}, PCA to 30 dimensions "
                f"fitted on {fit.size} training images without labels")
    if args.task == "binary":
        a, b = args.classes
        itr = np.flatnonzero((ytr_all == a) | (ytr_all == b))
        ite = np.flatnonzero((yte_all == a) | (yte_all == b))
        ytr_all = (ytr_all == b).astype(np.int64)
        yte_all = (yte_all == b).astype(np.int64)
        num_classes = None
        desc += f"; binary task {a} (label 0) vs {b} (label 1)"
    else:
        itr, ite = np.arange(ytr_all.size), np.arange(yte_all.size)
        num_classes = 10
        desc += "; 10-class task"
    itr = itr[_common.subsample(itr.size, args.n_train, args.seed + 2)]
    ite = ite[_common.subsample(ite.size, args.n_test, args.seed + 3)]
    return Ftr[itr], ytr_all[itr], Fte[ite], yte_all[ite], num_classes, desc


def parse_args(argv):
    ap = argparse.ArgumentParser(description="Certified accuracy against label-free λ.")
    ap.add_argument("--data", default="digits",
                    help="'digits' (bundled) or an MNIST-format IDX directory")
    ap.add_argument("--task", choices=("binary", "multi"), default="binary")
    ap.add_argument("--classes", nargs=2, type=int, default=(1, 7), metavar=("A", "B"))
    ap.add_argument("--q", type=float, default=None,
                    help="noise level (default 0.1 binary, 0.01 10-class)")
    ap.add_argument("--factors", type=lambda s: tuple(float(v) for v in s.split(",")),
                    default=FACTORS, help="multiples of default_lambda(X_train, q)")
    ap.add_argument("--r", type=lambda s: tuple(int(v) for v in s.split(",")),
                    default=None, help="radii (default 0,1,2,5,10,20,50 on digits, else "
                                       "0,1,10,50,100,200,500)")
    ap.add_argument("--bounds", default="exact,tight,kl")
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--n-test", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="out", help="output directory (default: %(default)s)")
    args = ap.parse_args(argv)
    args.bounds = tuple(b.strip() for b in args.bounds.split(",") if b.strip())
    if args.q is None:
        args.q = 0.1 if args.task == "binary" else 0.01
    if args.r is None:
        args.r = ((0, 1, 2, 5, 10, 20, 50) if args.data == "digits"
                  else (0, 1, 10, 50, 100, 200, 500))
    return args


def main(argv=None) -> int:
    import numbaflip
    from numbaflip.demo import available_bounds

    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    log = sys.stderr
    t_start = time.perf_counter()
    Xtr, ytr, Xte, yte, num_classes, desc = _load(args)
    bounds = available_bounds(args.bounds, num_classes)
    lam0 = numbaflip.default_lambda(Xtr, args.q)
    rows = []
    for f in args.factors:
        lam = f * lam0
        t0 = time.perf_counter()
        res = numbaflip.certify(Xtr, ytr, Xte, q=args.q, lam=lam, bounds=bounds,
                                num_classes=num_classes)
        dt = time.perf_counter() - t0
        clean = float(np.mean(res.prediction == yte))
        acc = {b: res.certified_accuracy(yte, args.r, bound=b) for b in bounds}
        rows.append((f, lam, clean, acc, dt))
        print(f"  λ = {f:g} × {lam0:.4g}: clean {clean:.4f}, {dt:.1f} s", file=log, flush=True)

    table = dict(bounds=bounds, clean={row[0]: row[2] for row in rows},
                 acc={b: {row[0]: row[3][b] for row in rows} for b in bounds})
    lam_of = {row[0]: row[1] for row in rows}
    text_table = _common.paper_table(
        table, args.r, title=f"q = {args.q:g}", qs=[row[0] for row in rows], include_q0=False,
        row_header="λ (× default)", row_name=lambda f: f"{lam_of[f]:.4g} (× {f:g})",
        note="Bold = best λ per column and bound (a summary: choosing λ after looking at the "
             "test radii voids the guarantee).")
    total = time.perf_counter() - t_start
    name = "digits" if args.data == "digits" else os.path.basename(os.path.normpath(args.data))
    task = (f"{args.classes[0]}v{args.classes[1]}" if args.task == "binary" else "10class")
    text = "\n".join([
        f"# Certified accuracy against label-free λ ({name}, {task}, q = {args.q:g})", "",
        f"Data: {desc}; n = {ytr.size}, m = {yte.size}. λ = factor × "
        f"default_lambda(X_train, q) = factor × {lam0:.6g} (label-free). KL/tight certify "
        "the smoothed classifier, exact the deterministic rule.", "",
        text_table, "",
        f"Wall time: {total:.1f} s ({', '.join(f'{r[0]:g}: {r[4]:.1f} s' for r in rows)}).",
        ""])
    path = os.path.join(args.out, f"lambda_sweep_{name}_{task}.md")
    _common.write_text(path, text)
    print(text)
    print(f"wrote {path}", file=log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
