"""Which label-free feature map gives the largest certified radii? Fashion-MNIST, 10 classes.

What it does
    Reads Fashion-MNIST (Debian: ``apt-get install dataset-fashion-mnist`` puts the IDX files in
    /usr/share/datasets/fashion-mnist/; any MNIST-format directory works with ``--data``), builds
    label-free feature maps fitted on the 60 000 training *images* only, and certifies the
    whole 10-class task (n = 60 000 training labels, ``--m`` test points, default all 10 000):

    * maps: PCA-30 and PCA-50 of the pixels / 255 (numpy), FastICA-30 (the paper's choice for
      full MNIST; only if scikit-learn is installed), and ``numbaflip.features.
      ContrastiveEncoder`` (dim 256, ``--epochs`` epochs, seed 0), whose features are
      standardised per coordinate with training-feature statistics (label-free);
    * certificates: ridge ``exact`` at q = 0 (the plain ridge classifier, λ = "auto"), ridge
      ``tight`` at q = ``--q`` (the paper's smoothed classifier) and kNN ``exact``
      (``--k`` nearest neighbours, Euclidean, on the same features);
    * per map and certificate: clean accuracy, certified accuracy at r ∈ ``RADII`` and the
      **median certified radius** — the largest r at which at least half of the test points
      are certified correct (misclassified points count as not certified);
    * the time to fit the encoder on this machine, with the thread count.

Outputs (``--out DIR``, default docs/results)
    ``features_fashion-mnist.md``   the tables, timings, machine and versions
    ``features_fashion-mnist.png``  certified accuracy against r, ridge exact, one curve per
                                    map (if matplotlib is installed)

How long it takes (2 cores): encoder fit 12 epochs ≈ 6–9 min with 1–2 threads (the table
reports the measured time), PCA/ICA seconds, each certification 10–60 s; about 15 minutes in
all.  ``--encoder PATH`` reuses a saved encoder (``--save-encoder`` writes one).

    python scripts/repro_features.py                       # writes docs/results/features_*
    python scripts/repro_features.py --m 2000 --epochs 2   # a quick look
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import load_mnist_dir, pca_features, subsample, write_text  # noqa: E402

import numbaflip  # noqa: E402
from numbaflip.report.accuracy import certified_accuracy  # noqa: E402

RADII = (0, 50, 100, 200, 300, 500, 750, 1000)
DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"
NAME = "features_fashion-mnist"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=DEFAULT_DATA, help="MNIST-format IDX directory")
    p.add_argument("--m", type=int, default=10_000, help="test points (seeded subset)")
    p.add_argument("--epochs", type=int, default=12, help="encoder epochs (default 12)")
    p.add_argument("--threads", type=int, default=None,
                   help="PyTorch threads for the encoder (default: PyTorch's choice)")
    p.add_argument("--encoder", default=None, help="reuse this saved encoder (no fit)")
    p.add_argument("--save-encoder", default=None, help="save the fitted encoder here")
    p.add_argument("--q", type=float, default=0.05, help="noise of the tight certificate")
    p.add_argument("--k", type=int, default=201, help="neighbours of the kNN certificate")
    p.add_argument("--out", default="docs/results", help="output directory")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


# --------------------------------------------------------------------------------------------
# feature maps (all fitted on training images only)
# --------------------------------------------------------------------------------------------
def _standardise(train, test):
    mu, sd = train.mean(axis=0), train.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return (train - mu) / sd, (test - mu) / sd


def feature_maps(tr_img, te_img, args, log):
    """Yield (name, train features, test features, seconds to fit and transform)."""
    x, xt = tr_img.reshape(len(tr_img), -1) / 255.0, te_img.reshape(len(te_img), -1) / 255.0
    for c in (30, 50):
        t = time.perf_counter()
        a, b = pca_features(x, xt, c)
        yield f"PCA-{c}", a, b, time.perf_counter() - t
    try:
        from sklearn.decomposition import FastICA
    except ImportError:
        print("scikit-learn not installed: FastICA-30 skipped", file=log)
    else:
        t = time.perf_counter()
        ica = FastICA(n_components=30, random_state=0, max_iter=400, whiten="unit-variance")
        a = ica.fit_transform(x)
        yield "FastICA-30", a, ica.transform(xt), time.perf_counter() - t
    yield ("contrastive-256",) + _encoder_features(tr_img, te_img, args, log)


def _encoder_features(tr_img, te_img, args, log):
    from numbaflip.features import ContrastiveEncoder
    t = time.perf_counter()
    if args.encoder:
        enc = ContrastiveEncoder.load(args.encoder, n_threads=args.threads)
        print(f"loaded {args.encoder}", file=log)
    else:
        enc = ContrastiveEncoder(dim=256, epochs=args.epochs, seed=0, n_threads=args.threads,
                                 progress=True).fit(tr_img)
        print(f"encoder fitted in {enc.fit_seconds_:.0f} s, losses "
              f"{[round(v, 3) for v in enc.loss_history_]}", file=log, flush=True)
        if args.save_encoder:
            enc.save(args.save_encoder)
    a, b = _standardise(enc.transform(tr_img), enc.transform(te_img))
    _encoder_features.fit = (enc.fit_seconds_, enc.fit_threads_, bool(args.encoder), enc.epochs,
                             os.getloadavg())
    return a, b, time.perf_counter() - t


# --------------------------------------------------------------------------------------------
# certificates
# --------------------------------------------------------------------------------------------
def median_certified_radius(radius, prediction, y_true) -> int:
    """Largest r with certified accuracy ≥ 1/2 (misclassified points count as −1)."""
    r = np.sort(np.where(prediction == y_true, radius, -1))[::-1]
    return int(r[(len(r) - 1) // 2])


def certificates(F, y, Ft, yt, args):
    """Yield (certificate name, CertifyResult radius, prediction, seconds)."""
    jobs = [("ridge exact, q = 0", dict(q=0, bounds=("exact",)), "exact"),
            (f"ridge tight, q = {args.q:g}", dict(q=args.q, bounds=("tight",)), "tight"),
            (f"kNN exact, k = {args.k}", dict(q=0, bounds=("exact",),
                                              learner=numbaflip.KNN(args.k)), "exact")]
    for name, kw, bound in jobs:
        t = time.perf_counter()
        res = numbaflip.certify(F, y, Ft, num_classes=10, progress=False, **kw)
        yield name, res.radius[bound], res.prediction, time.perf_counter() - t


def run(args, log=sys.stderr):
    tr, ytr, te, yte = load_mnist_dir(args.data)
    tr, te = tr.reshape(-1, 28, 28), te.reshape(-1, 28, 28)
    sel = subsample(len(yte), args.m, args.seed)
    rows = []
    for fname, F, Ft, secs in feature_maps(tr, te, args, log):
        print(f"{fname}: {F.shape[1]} features in {secs:.1f} s", file=log, flush=True)
        for cname, rad, pred, csecs in certificates(F, ytr, Ft[sel], yte[sel], args):
            acc = certified_accuracy(rad, pred, yte[sel], RADII)
            med = median_certified_radius(rad, pred, yte[sel])
            rows.append(dict(features=fname, certificate=cname, acc=acc, median=med,
                             seconds=csecs, radius=rad, prediction=pred))
            print(f"  {cname}: clean {acc[0]:.3f}, median certified radius {med} "
                  f"({csecs:.1f} s)", file=log, flush=True)
    args.n_train = len(ytr)
    return rows, yte[sel]


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
def _machine():
    import numba
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(l.split(":", 1)[1].strip() for l in fh if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, NumPy "
            f"{np.__version__}, Numba {numba.__version__}, PyTorch {torch.__version__}, "
            f"numbaflip {numbaflip.__version__}")


def report(rows, args) -> str:
    fit_s, threads, loaded, epochs, load = getattr(_encoder_features, "fit",
                                                   (None, None, False, None, None))
    L = ["# Label-free feature maps and certified radii — Fashion-MNIST, 10 classes", "",
         f"n = {args.n_train} training labels, m = {len(rows[0]['radius'])} test points, λ = \"auto\" "
         "(label-free). Every map is fitted on the training images without labels. Median "
         "certified radius = the largest r at which at least half of the test points are "
         "certified correct. Command: `python scripts/repro_features.py` "
         f"(`--epochs {args.epochs} --q {args.q:g} --k {args.k}"
         + (f" --threads {args.threads}" if args.threads else "") + "`).", "",
         f"Machine: {_machine()}.", ""]
    if fit_s is not None and np.isfinite(fit_s):
        how = (f" (fit in an earlier run and loaded from `{args.encoder}`; the time is the one "
               "recorded in that file)") if loaded else ""
        after = ("" if loaded else " Load average (1, 5, 15 min) right after the fit: "
                 + ", ".join(f"{v:.1f}" for v in load) + " (above 2 means other work shared "
                 "the 2 cores).")
        L += [f"Encoder fit (ContrastiveEncoder, dim 256, {epochs} epoch(s), {args.n_train} images): "
              f"**{fit_s:.0f} s** ({fit_s / 60:.1f} min) with {threads} PyTorch thread(s)"
              f"{how}.{after}", ""]
    for cert in dict.fromkeys(r["certificate"] for r in rows):
        L += [f"## {cert}", "", "| features | median certified radius | " +
              " | ".join(f"r = {r}" for r in RADII) + " | seconds |",
              "|---|---|" + "---|" * len(RADII) + "---|"]
        for r in (r for r in rows if r["certificate"] == cert):
            med = r["median"] if r["median"] >= 0 else "— (clean accuracy < ½)"
            L.append(f"| {r['features']} | {med} | " +
                     " | ".join(f"{a:.3f}" for a in r["acc"]) + f" | {r['seconds']:.1f} |")
        L.append("")
    base = {r["certificate"]: r["median"] for r in rows if r["features"] == "PCA-50"}
    enc = {r["certificate"]: r["median"] for r in rows if r["features"] == "contrastive-256"}
    if base and enc:
        L += ["Median certified radius, contrastive-256 ÷ PCA-50: " + ", ".join(
            f"{c}: {enc[c] / base[c]:.2f}×" if base[c] > 0 else f"{c}: —" for c in base), ""]
    return "\n".join(L)


def plot(rows, y_true, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    r = np.arange(0, 1501, 10)
    for row in (x for x in rows if x["certificate"].startswith("ridge exact")):
        ax.plot(r, certified_accuracy(row["radius"], row["prediction"], y_true, r),
                label=f"{row['features']} (median {row['median']})")
    ax.set_xlabel("label flips r")
    ax.set_ylabel("certified accuracy")
    ax.set_title("Fashion-MNIST, 10 classes: ridge, exact certificate")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    args = parse_args(argv)
    rows, y_true = run(args)
    os.makedirs(args.out, exist_ok=True)
    write_text(os.path.join(args.out, NAME + ".md"), report(rows, args) + "\n")
    png = plot(rows, y_true, os.path.join(args.out, NAME + ".png"))
    print(f"wrote {os.path.join(args.out, NAME + '.md')}" + (f" and {png}" if png else ""),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
