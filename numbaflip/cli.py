"""Command line: ``numbaflip certify | demo | report | precompute`` (also ``python -m numbaflip``).

Bad input ends with one line ``numbaflip: error: ...`` on stderr and exit status 2, without a
traceback and without writing a partial output file.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from .errors import NumbaflipInputError

DEFAULT_RADII = (0, 1, 2, 5, 10, 20, 50, 100)


def _parse_radii(text: str):
    try:
        radii = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise NumbaflipInputError(
            f"--radii {text!r} is not a comma-separated list of integers; e.g. --radii 0,1,2,5.")
    if not radii or min(radii) < 0:
        raise NumbaflipInputError("--radii needs non-negative integers, e.g. --radii 0,1,2,5.")
    return radii


def _parse_bounds(text: str):
    return tuple(b.strip() for b in text.split(",") if b.strip())


def _label_column(text: str):
    try:
        return int(text)
    except ValueError:
        return text


def _lam(text: str):
    if text == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise NumbaflipInputError(f"--lam {text!r} is not a number; pass e.g. --lam 0.5 or "
                                  "--lam auto.")


def _build_parser() -> argparse.ArgumentParser:
    from ._version import __version__
    p = argparse.ArgumentParser(
        prog="numbaflip",
        description="Certified robustness of linear classifiers to training-label flips "
                    "(Rosenfeld et al., ICML 2020, and beyond).")
    p.add_argument("--version", action="version", version=f"numbaflip {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("certify", help="certify every test point of a CSV/NPY/NPZ test file")
    c.add_argument("--train", required=True, help="training features + labels (.csv/.npy/.npz)")
    c.add_argument("--test", required=True,
                   help="test features, optionally with labels in the same column as in --train")
    c.add_argument("--q", required=True, help="noise level, e.g. 0.1 or 1e-4")
    c.add_argument("--lam", default="auto", help="ridge parameter (float) or 'auto' (label-free)")
    c.add_argument("--bounds", default="kl", help="comma-separated: kl, tight, exact")
    c.add_argument("--num-classes", type=int, default=None,
                   help="K for the K-class formulation; omit for binary labels {0,1}")
    c.add_argument("--label-column", default="-1",
                   help="index or CSV header name of the label column (default: last)")
    c.add_argument("--header", choices=("auto", "yes", "no"), default="auto",
                   help="CSV header row: auto-detect (default), yes or no")
    c.add_argument("--no-intercept", action="store_true", help="do not append a ones column")
    c.add_argument("--precision", default="auto", choices=("auto", "float64", "mp"))
    c.add_argument("--radii", default=",".join(map(str, DEFAULT_RADII)),
                   help="radii for the certified-accuracy summary (needs test labels)")
    c.add_argument("--out", required=True, help="output CSV, one row per test point")
    c.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    d = sub.add_parser("demo", help="run the whole job on the shipped digits data")
    d.add_argument("--no-progress", action="store_true")

    r = sub.add_parser("report", help="certified accuracy from a CSV written by 'certify'")
    r.add_argument("results", help="CSV written by 'numbaflip certify' (with a label column)")
    r.add_argument("--radii", default=",".join(map(str, DEFAULT_RADII)))

    sub.add_parser("precompute", add_help=False,
                   help="precompute tight-threshold tables (see 'numbaflip precompute --help')")
    return p


def _summary(result, y_true, radii, out=None):
    out = out or sys.stdout
    print(f"certified accuracy at radius r ({len(y_true)} test points, q = {result.q}):",
          file=out)
    head = "bound   " + "".join(f"{'r=' + str(r):>9}" for r in radii)
    print(head, file=out)
    for b in result.radius:
        acc = result.certified_accuracy(y_true, radii, bound=b)
        print(f"{b:<8}" + "".join(f"{a:>9.4f}" for a in acc), file=out)
    clean = float(np.mean(result.prediction == y_true))
    print(f"clean accuracy of the reported prediction: {clean:.4f}", file=out)


def _cmd_certify(a) -> int:
    from . import io
    from .certify import certify
    label_col = _label_column(a.label_column)
    header = {"auto": None, "yes": True, "no": False}[a.header]
    X_train, y_train = io.load_table(a.train, label_column=label_col, has_labels=True,
                                     header=header)
    # Test labels are optional: present iff the test file has one more column than X_train.
    T, _ = io.load_table(a.test, has_labels=False, header=header)
    y_test = None
    if T.shape[1] == X_train.shape[1] + 1:
        X_test, y_test = io.load_table(a.test, label_column=label_col, has_labels=True,
                                       header=header)
    elif T.shape[1] == X_train.shape[1]:
        X_test = T
    else:
        raise NumbaflipInputError(
            f"{a.test} has {T.shape[1]} columns but the training features have "
            f"{X_train.shape[1]}; the test file needs the same feature columns (plus, "
            "optionally, the label column).")
    radii = _parse_radii(a.radii)
    t0 = time.perf_counter()
    res = certify(X_train, y_train, X_test, q=a.q, lam=_lam(a.lam),
                  bounds=_parse_bounds(a.bounds), num_classes=a.num_classes,
                  fit_intercept=not a.no_intercept, precision=a.precision,
                  progress=False if a.no_progress else True)
    elapsed = time.perf_counter() - t0
    if y_test is not None:
        K = 2 if a.num_classes is None else a.num_classes
        if y_test.min() < 0 or y_test.max() >= K:
            raise NumbaflipInputError(
                f"test labels in {a.test} must be in 0..{K - 1}; check --label-column and "
                "--num-classes.")
    io.write_results_csv(a.out, res, y_true=y_test)
    print(f"certified {len(res)} test points against n = {res.n} training labels in "
          f"{elapsed:.2f} s (λ = {res.lam:.6g}); wrote {a.out}", file=sys.stderr)
    if y_test is not None:
        _summary(res, y_test, radii)
    return 0


def _cmd_demo(a) -> int:
    from .demo import run_demo
    run_demo(progress=not a.no_progress)
    return 0


def _cmd_report(a) -> int:
    from .report import report_from_csv
    print(report_from_csv(a.results, _parse_radii(a.radii)))
    return 0


def main(argv=None) -> int:
    """Entry point of the ``numbaflip`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "precompute":
        # Its options belong to the precompute script; pass them through untouched.
        from .tables import precompute_main
        try:
            return int(precompute_main(argv[1:]) or 0)
        except NumbaflipInputError as e:
            print(f"numbaflip: error: {e}", file=sys.stderr)
            return 2
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    handler = {"certify": _cmd_certify, "demo": _cmd_demo, "report": _cmd_report}[args.command]
    try:
        return handler(args)
    except NumbaflipInputError as e:
        print(f"numbaflip: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("numbaflip: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
