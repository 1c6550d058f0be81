"""Precompute threshold tables into the cache: :func:`precompute` and the
``numbaflip precompute`` command (paper settings, manifests of shipped tables)."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .. import config as _config
from ..errors import NumbaflipInputError
from . import thresholds as _thr
from .cache import _cache_key, _check_int, _write_table, default_r_max, write_manifest

def precompute(q_strs, Ks, ns, r_max: int | None = None, exact: bool = False,
               progress: bool = True, out_dir=None) -> list[Path]:
    """Compute and write threshold tables for every valid combination of ``q_strs`` × ``Ks`` ×
    ``ns`` (combinations with q >= (K−1)/K are skipped).

    ``r_max``: table length; None means :func:`default_r_max` (min(n, first r with
    L_r < −10⁴)); always capped at n.  ``exact``: use the exact-arithmetic path (slow:
    O(r_max²) big-integer work; sensible for r_max up to a few hundred) instead of "auto".
    ``out_dir``: where to write (default: the writable cache directory); use the repository's
    ``precomputed/`` to regenerate shipped tables.  ``progress``: tqdm bar on stderr.
    Tables carry an HMAC under the cache key (:func:`key_path`); when the key is unusable they
    are written without one (a warning says why) and are then trusted only if listed in the
    manifest (:func:`write_manifest`).  Returns the paths written.
    """
    method = "exact" if exact else "auto"
    out_dir = Path(out_dir) if out_dir is not None else Path(_config.table_dir())
    jobs = []
    for q in q_strs:
        for K in Ks:
            try:
                canon = _thr.canonical_q_str(q, K)
            except NumbaflipInputError:
                continue
            for n in ns:
                jobs.append((canon, int(K), _check_int("n", n, 1)))
    paths = []
    key = _cache_key() if jobs else None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="threshold tables", unit="table", file=sys.stderr)
    try:
        for canon, K, n in jobs:
            if bar is not None:
                bar.set_postfix_str(f"K={K} q={canon} n={n}")
            if r_max is None and not exact:
                _, table = default_r_max(canon, K, n, method=method)
            else:
                rm = min(n, r_max) if r_max is not None else default_r_max(canon, K, n)[0]
                table = _thr.log_thresholds(canon, K, rm, method=method)
            path = _write_table(out_dir, canon, K, n, table, method, key)
            if path is not None:
                paths.append(path)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return paths


# ---------------------------------------------------------------------------------------------
# command line (scripts/precompute_thresholds.py and `numbaflip precompute`)
# ---------------------------------------------------------------------------------------------

#: The paper's settings (Rosenfeld et al. 2020, section 5): (K, n, q values).
PAPER_SETTINGS = [
    (2, 13007, ["0.3", "0.4", "0.45", "0.475"]),      # binary MNIST 1/7
    (2, 1800, ["1e-4", "1e-3", "0.01", "0.05"]),      # Dogfish
    (2, 25000, ["0.01", "0.025", "0.05", "0.1"]),     # IMDB
    (10, 60000, ["0.0125", "0.025", "0.05"]),         # full MNIST
    (10, 50000, ["0.012", "0.025", "0.1"]),           # CIFAR-10
]


def build_precompute_parser() -> argparse.ArgumentParser:
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
    p.add_argument("--manifest", default=None, metavar="PATH",
                   help="also write the manifest of shipped tables to PATH, listing the tables "
                        "written by this run, each first checked against a fresh "
                        "recomputation (a table above it is refused). Shipped tables are "
                        "trusted only through this manifest: after `--paper --out "
                        "precomputed` use --manifest numbaflip/precomputed_manifest.json")
    p.add_argument("--manifest-only", action="store_true",
                   help="with --manifest and --out DIR: compute no tables, list the "
                        "thresholds_*.npz already in DIR (each checked against a fresh "
                        "recomputation)")
    return p


def precompute_main(argv=None) -> int:
    """Command line of ``scripts/precompute_thresholds.py`` and ``numbaflip precompute``:
    ``-q Q.. -K K.. -n N..`` (all combinations), ``--paper``, ``--r-max``, ``--exact``,
    ``--out DIR``, ``--no-progress``, ``--manifest PATH`` (write the manifest of shipped tables
    listing the tables written, see :func:`write_manifest`), ``--manifest-only`` (list the
    tables already in ``--out``).  Prints the files written; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:  # `numbaflip precompute -- ...`
        argv = argv[1:]
    args = build_precompute_parser().parse_args(argv)
    if args.manifest_only:
        if not (args.manifest and args.out):
            print("error: --manifest-only needs --manifest PATH and --out DIR (the directory "
                  "holding the tables to list)", file=sys.stderr)
            return 2
        paths = sorted(Path(args.out).glob("thresholds_*.npz"))
        if not paths:
            print(f"error: no thresholds_*.npz in {args.out}; generate them first "
                  f"(--paper --out {args.out})", file=sys.stderr)
            return 2
        return _manifest_cli(paths, args.manifest)
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
            paths += precompute(qs, Ks, ns, r_max=args.r_max, exact=args.exact,
                                progress=not args.no_progress, out_dir=args.out)
    except NumbaflipInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    total = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} tables ({total / 1e6:.2f} MB) in "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    for p in paths:
        print(p)
    if args.manifest:
        return _manifest_cli(paths, args.manifest)
    return 0


def _manifest_cli(paths, manifest) -> int:
    try:
        got = write_manifest(paths, manifest)
    except NumbaflipInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"manifest {manifest}: {got['tables']} tables, {got['identical']} identical to a "
          f"fresh recomputation, none above it", file=sys.stderr)
    return 0
