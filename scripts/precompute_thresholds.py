"""Precompute tight label-flip thresholds L_r = log(1 - p_r) and write them as .npz tables.

What: for each noise level q, class count K and training-set size n, the Neyman-Pearson
thresholds of Lee et al. (2019) as used by Rosenfeld et al. (ICML 2020, eq. 2) -- see
``numbaflip/thresholds.py`` and ``design/math.md`` section 4 -- for r = 0..r_max, rounded DOWN
(never over-certify), non-increasing, in the format of ``numbaflip/tables.py``.

r_max: by default min(n, the first r with L_r < -1e4) (``numbaflip.tables.default_r_max``):
a point is certified at r iff log(1 - p) < L_r, and the Chernoff bounds essentially never go
below -1e4; if one does, the library extends the table on demand.  ``--r-max`` overrides it
(always capped at n).

How long: the float64 path is O(r_max^2); on one core the --paper preset (15 tables, r_max up to
13007) takes about 10-20 s.  ``--exact`` uses exact rational arithmetic: fine up to r_max of a
few hundred (K = 10, r_max = 200: about a second), far too slow for the paper's r_max.

Where: ``--out DIR`` (default: the writable cache directory, numbaflip.config.table_dir /
$NUMBAFLIP_TABLE_DIR / ~/.cache/numbaflip/thresholds).  ``--out precomputed`` regenerates the
tables shipped with the package (run from the repository root).

Examples::

    python scripts/precompute_thresholds.py --paper --out precomputed
    python scripts/precompute_thresholds.py -q 0.1 0.2 -K 2 -n 1000 5000
"""
from __future__ import annotations

import argparse
import sys
import time

#: The paper's settings (Rosenfeld et al. 2020, section 5): (K, n, q values).
PAPER_SETTINGS = [
    (2, 13007, ["0.3", "0.4", "0.45", "0.475"]),      # binary MNIST 1/7
    (2, 1800, ["1e-4", "1e-3", "0.01", "0.05"]),      # Dogfish
    (2, 25000, ["0.01", "0.025", "0.05", "0.1"]),     # IMDB
    (10, 60000, ["0.0125", "0.025", "0.05"]),         # full MNIST
    (10, 50000, ["0.012", "0.025", "0.1"]),           # CIFAR-10
]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="precompute_thresholds",
        description="Precompute tight label-flip threshold tables (.npz).")
    p.add_argument("-q", "--q", nargs="+", default=[], metavar="Q",
                   help="noise levels as decimal strings, e.g. 0.1 1e-4")
    p.add_argument("-K", "--K", nargs="+", type=int, default=[2], metavar="K",
                   help="numbers of classes (default 2)")
    p.add_argument("-n", "--n", nargs="+", type=int, default=[], metavar="N",
                   help="training-set sizes (tables stop at r_max <= n)")
    p.add_argument("--r-max", type=int, default=None,
                   help="table length (default: min(n, first r with L_r < -1e4))")
    p.add_argument("--exact", action="store_true",
                   help="exact rational arithmetic instead of the float64 kernel (slow)")
    p.add_argument("--paper", action="store_true",
                   help="the paper's settings (MNIST 1/7, Dogfish, IMDB, MNIST, CIFAR-10)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output directory (default: the writable cache directory)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from numbaflip import tables
    from numbaflip.errors import NumbaflipInputError

    jobs = []
    if args.paper:
        jobs += [(qs, [K], [n]) for K, n, qs in PAPER_SETTINGS]
    if args.q or args.n:
        if not (args.q and args.n):
            print("error: give both -q and -n (or --paper)", file=sys.stderr)
            return 2
        jobs.append((args.q, args.K, args.n))
    if not jobs:
        print("error: nothing to do; give -q ... -n ... or --paper", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    paths = []
    try:
        for qs, Ks, ns in jobs:
            paths += tables.precompute(qs, Ks, ns, r_max=args.r_max, exact=args.exact,
                                       progress=not args.no_progress, out_dir=args.out)
    except NumbaflipInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    total = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} tables ({total / 1e6:.2f} MB) in "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
