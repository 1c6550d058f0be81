"""Command line: ``numbaflip certify | demo | report | features | precompute`` (also ``python -m numbaflip``).

Bad input ends with one line ``numbaflip: error: ...`` on stderr and exit status 2, without a
traceback and without writing a partial output file.
"""
from __future__ import annotations

import argparse
import io
import os
import re
import sys
import time
import warnings

import numpy as np

from .errors import NumbaflipInputError

DEFAULT_RADII = (0, 1, 2, 5, 10, 20, 50, 100)
LEARNERS = ("ridge", "knn", "rbf")
DEFAULT_K = 5
DEFAULT_COMPONENTS = 1000


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


def _number_or_word(option: str, word: str):
    """argparse type for options that take a float or one keyword (``--lam auto``)."""
    def parse(text: str):
        if text == word:
            return word
        try:
            return float(text)
        except ValueError:
            raise NumbaflipInputError(f"{option} {text!r} is not a number; pass e.g. "
                                      f"{option} 0.5 or {option} {word}.") from None
    return parse


_lam = _number_or_word("--lam", "auto")
_gamma = _number_or_word("--gamma", "scale")


def _learner_from_options(a):
    """(learner object or None for the ridge shorthand, λ for the shorthand), checked before
    any data is read; options that do not apply to the chosen learner are refused."""
    from . import learners as ln
    given = {"--lam": a.lam is not None, "--k": a.k is not None,
             "--weights": a.weights is not None, "--gamma": a.gamma is not None,
             "--components": a.components is not None, "--seed": a.seed is not None,
             "--no-intercept": a.no_intercept}
    applies = {"ridge": ("--lam", "--no-intercept"), "knn": ("--k", "--weights"),
               "rbf": ("--lam", "--gamma", "--components", "--seed", "--no-intercept")}
    extra = [o for o, g in given.items() if g and o not in applies[a.learner]]
    if extra:
        users = {o: [name for name, opts in applies.items() if o in opts] for o in extra}
        o = extra[0]
        raise NumbaflipInputError(
            f"{o} does not apply to --learner {a.learner}; it is an option of --learner "
            f"{' and '.join(users[o])}.")
    lam = _lam(a.lam if a.lam is not None else "auto")
    if a.learner == "ridge":
        return None, lam
    if a.learner == "knn":
        return ln.KNN(DEFAULT_K if a.k is None else a.k,
                      weights=a.weights or "uniform"), "auto"
    return ln.RBFRidge(gamma=_gamma(a.gamma) if a.gamma is not None else "scale", lam=lam,
                       n_components=(DEFAULT_COMPONENTS if a.components is None
                                     else a.components),
                       seed=0 if a.seed is None else a.seed,
                       fit_intercept=not a.no_intercept), "auto"


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
                   help="test features, optionally with labels (see --test-labels)")
    c.add_argument("--q", required=True, help="noise level, e.g. 0.1 or 1e-4")
    c.add_argument("--learner", choices=LEARNERS, default="ridge",
                   help="ridge (default), knn (k nearest neighbours vote) or rbf (RBF kernel "
                        "ridge through random Fourier features); see numbaflip.learners")
    c.add_argument("--lam", default=None,
                   help="ridge parameter (float) or 'auto' (label-free, the default); "
                        "--learner ridge and rbf")
    c.add_argument("--k", type=int, default=None,
                   help=f"number of neighbours for --learner knn (default {DEFAULT_K}; an "
                        "even k in a binary vote sends ties to class 1)")
    c.add_argument("--weights", choices=("uniform", "distance"), default=None,
                   help="neighbour weights for --learner knn (default uniform)")
    c.add_argument("--gamma", default=None,
                   help="RBF width γ of exp(−γ‖x − x′‖²) for --learner rbf: a float > 0 or "
                        "'scale' = 1/(d·Var(X_train)) (default)")
    c.add_argument("--components", type=int, default=None,
                   help=f"random Fourier features for --learner rbf (default {DEFAULT_COMPONENTS})")
    c.add_argument("--seed", type=int, default=None,
                   help="seed of the random Fourier features for --learner rbf (default 0)")
    c.add_argument("--bounds", default="kl", help="comma-separated: kl, tight, exact")
    c.add_argument("--num-classes", type=int, default=None,
                   help="K for the K-class formulation; omit for the binary formulation")
    c.add_argument("--label-column", default="-1",
                   help="index or CSV header name of the label column (default: last)")
    c.add_argument("--test-labels", choices=("auto", "yes", "no"), default="auto",
                   help="does the test file carry labels? auto (default): with headers, iff it "
                        "has the training label column's name; without, iff it has exactly one "
                        "column more than the training features; .npz: iff it has y")
    c.add_argument("--header", choices=("auto", "yes", "no"), default="auto",
                   help="CSV header row: auto-detect (default), yes or no")
    c.add_argument("--no-intercept", action="store_true", help="do not append a ones column")
    c.add_argument("--precision", default="auto", choices=("auto", "float64", "mp"))
    c.add_argument("--radii", default=",".join(map(str, DEFAULT_RADII)),
                   help="radii for the certified-accuracy summary (needs test labels)")
    c.add_argument("--out", required=True,
                   help="output file, one record per test point; - for stdout")
    c.add_argument("--format", choices=("csv", "json"), default=None,
                   help="csv (default) or json (default when --out ends with .json; carries "
                        "the provenance)")
    g = c.add_mutually_exclusive_group()
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on a running Dask cluster, e.g. tcp://host:8786 "
                        "(numbaflip.distributed.certify; needs numbaflip[dask])")
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="run on a local Dask cluster of N worker processes started for this "
                        "run and closed after it (needs numbaflip[dask])")
    c.add_argument("--threads-per-worker", type=int, default=None, metavar="T",
                   help="threads per worker process with --workers (default: cores / N, at "
                        "least 1)")
    _progress_options(c)

    d = sub.add_parser("demo", help="run the whole job on the shipped digits data")
    _progress_options(d)

    r = sub.add_parser("report", help="certified accuracy from a CSV written by 'certify'")
    r.add_argument("results", help="CSV written by 'numbaflip certify' (with a label column)")
    r.add_argument("--radii", default=",".join(map(str, DEFAULT_RADII)))

    _features_parser(sub)

    sub.add_parser("precompute", add_help=False,
                   help="precompute tight-threshold tables (see 'numbaflip precompute --help')")
    return p


def _features_parser(sub):
    f = sub.add_parser(
        "features", help="label-free image features (contrastive encoder; needs "
                         "numbaflip[features])",
        description="Fit a contrastive image encoder on images alone (no labels) and write "
                    "their features, or apply a saved encoder. --labels are only copied to "
                    "the output for 'numbaflip certify'; the encoder never sees them.")
    f.add_argument("--images", required=True,
                   help="images to transform (.npy of shape (n, H, W) or (n, C, H, W), or an "
                        "IDX file such as train-images-idx3-ubyte.gz)")
    f.add_argument("--labels", default=None,
                   help="labels of those images (.npy or IDX), stored as y in the output .npz "
                        "(not used by the encoder)")
    f.add_argument("--out", required=True,
                   help="output .npz (features X, labels y if given) or .npy (features only)")
    src = f.add_mutually_exclusive_group()
    src.add_argument("--encoder", default=None, metavar="PATH",
                     help="apply this saved encoder instead of fitting one")
    src.add_argument("--fit-images", default=None, metavar="FILE",
                     help="fit on these images instead of --images (e.g. the training images, "
                          "to transform test images with the same encoder)")
    f.add_argument("--save-encoder", default=None, metavar="PATH",
                   help="save the fitted encoder (reuse with --encoder)")
    f.add_argument("--dim", type=int, default=64, help="number of features (default 64)")
    f.add_argument("--epochs", type=int, default=12, help="training epochs (default 12)")
    f.add_argument("--batch-size", type=int, default=256, help="images per step (default 256)")
    f.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    f.add_argument("--threads", type=int, default=None,
                   help="PyTorch threads (default: PyTorch's choice)")
    _progress_options(f)


def _progress_options(parser):
    g = parser.add_mutually_exclusive_group()
    g.add_argument("--progress", dest="progress", action="store_const", const=True,
                   default=None, help="show the progress bar even when stderr is not a terminal")
    g.add_argument("--no-progress", dest="progress", action="store_const", const=False,
                   help="hide the progress bar")


def _want_progress(a) -> bool:
    if a.progress is not None:
        return a.progress
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


# --------------------------------------------------------------------------------------------
# first-run compilation notice
# --------------------------------------------------------------------------------------------
COMPILE_NOTICE = "numbaflip: compiling kernels (first run only, about 20 s)…"


def _kernel_names(num_classes, bounds):
    """(module, function) of the Numba entry points a certify call will run."""
    binary = num_classes is None
    smoothing = any(b in ("kl", "tight") for b in bounds)
    chernoff = "_kernels.binary" if binary else "_kernels.pairwise"
    names = [(chernoff, "_binary_decide" if binary else "_mc_decide")]
    if smoothing:
        names.append((chernoff, "_binary_driver" if binary else "_mc_driver"))
    if "exact" in bounds:
        names.append(("_kernels.exact", "_binary_driver" if binary else "_mc_driver"))
    return names


def _has_cached_code(dispatcher, modname: str) -> bool:
    """Whether Numba's on-disk cache holds code of ``dispatcher`` for this machine."""
    cache = getattr(dispatcher, "_cache", None)
    if cache is None:
        return True  # not a caching dispatcher (e.g. NUMBA_DISABLE_JIT): nothing to compile
    try:
        index = cache._cache_file._load_index()  # {} when absent, of another version or stale
        magic = dispatcher.targetctx.codegen().magic_tuple()
        return any(isinstance(k, tuple) and len(k) > 1 and k[1] == magic for k in index)
    except Exception:  # private Numba API changed: fall back to looking for index files
        import glob
        path = getattr(cache, "_cache_path", None)
        if path is None:
            return False
        name = dispatcher.py_func.__name__
        stem = modname.rsplit(".", 1)[-1]
        return bool(glob.glob(os.path.join(path, f"{stem}.{name}-*.nbi")))


def kernels_need_compiling(num_classes=None, bounds=("kl",)) -> bool:
    """True when Numba will compile (not load from its cache) a kernel certify is about to run."""
    import importlib
    try:
        for modname, fname in _kernel_names(num_classes, tuple(bounds)):
            mod = importlib.import_module(f"numbaflip.{modname}")
            disp = getattr(mod, fname, None)
            if disp is not None and not _has_cached_code(disp, modname):
                return True
    except Exception:
        return False
    return False


# --------------------------------------------------------------------------------------------
# certify
# --------------------------------------------------------------------------------------------
def _summary(result, y_true, radii, out=None):
    out = out or sys.stdout
    print(f"certified accuracy at radius r ({len(y_true)} test points, q = {result.q}):",
          file=out)
    head = "bound   " + "".join(f"{'r=' + str(r):>9}" for r in radii)
    print(head, file=out)
    for b in result.radius:
        acc = result.certified_accuracy(y_true, radii, bound=b)
        print(f"{b:<8}" + "".join(f"{a:>9.4f}" for a in acc), file=out)
    clean = float(np.mean(result.correct(y_true)))
    print(f"clean accuracy of the reported prediction: {clean:.4f}", file=out)


def _read_test(train, test, label_col, X_train, mode):
    """Test features and labels following --test-labels; returns (X_test, y_test, rule line)."""
    k = X_train.shape[1]
    flag = f"(--test-labels {mode})"
    want = {"auto": None, "yes": True, "no": False}[mode]
    if test.kind == "xy":
        if test.ncols != k:
            raise NumbaflipInputError(
                f"array X in {test.path} has {test.ncols} columns but the training features "
                f"have {k}; the test features need the same columns as the training ones.")
        use = test.has_y if want is None else want
        X_test, y_test = test.split(has_labels=use)
        what = "array y read as test labels" if use else (
            "array y ignored" if test.has_y else "no array y, no test labels")
        return X_test, y_test, f"test file: array X with {k} features; {what} {flag}"
    train_features = train.feature_names(label_col) if train.kind != "xy" else None
    if train_features is not None and test.names is not None:
        label_name = train.names[train.label_index(label_col)]
        X_test, y_test, found = test.select(train_features, label_name, want)
        order = "" if [n for n in test.names if n in train_features] == train_features \
            else ", reordered"
        if y_test is not None:
            what = f"label column {label_name!r} read as test labels"
        elif found:
            what = f"label column {label_name!r} ignored"
        else:
            what = f"no label column {label_name!r}, no test labels"
        return X_test, y_test, (f"test file: {k} feature columns matched to the training "
                                f"features by header name{order}; {what} {flag}")
    c = test.ncols
    why = ""
    if (train.names is None) != (test.names is None):
        which = "training" if test.names is not None else "test"
        why = f"; columns matched by position (the {which} file has no header)"
    if want is None:
        if c == k + 1:
            use = True
        elif c == k:
            use = False
        else:
            raise NumbaflipInputError(
                f"{test.path} has {c} columns but the training features have {k}; the test "
                f"file needs the same {k} feature columns (plus, optionally, the label "
                "column).")
    else:
        use = want
        need = k + 1 if use else k
        if c != need:
            raise NumbaflipInputError(
                f"{test.path} has {c} columns but --test-labels {mode} needs {need} = {k} "
                f"features{' + label column' if use else ''}; fix the file or --test-labels.")
    if use:
        j = (train if train.kind != "xy" else test).label_index(label_col)
        X_test, y_test = test.split(label_column=j, has_labels=True)
        return X_test, y_test, (f"test file: {c} columns = {k} features + label column "
                                f"{j + 1} {flag}{why}")
    X_test, _ = test.split(has_labels=False)
    return X_test, None, f"test file: {c} columns = {k} features, no label column {flag}{why}"


def _check_test_labels(y_train, y_test, num_classes, test_path):
    """Every test label must be a class of the training labels (same encoding)."""
    allowed = set(np.unique(y_train).tolist())
    if y_train.dtype.kind == "i":
        K = 2 if num_classes is None else num_classes
        if y_train.min() >= 0 and y_train.max() < K:
            allowed |= set(range(K))
    vals = y_test.tolist()
    bad = [i for i, v in enumerate(vals) if v not in allowed]
    if bad:
        shown = ", ".join(repr(v) for v in sorted(allowed, key=str)[:10])
        raise NumbaflipInputError(
            f"{len(bad)} test label(s) in {test_path} are not classes of the training labels "
            f"({shown}{' …' if len(allowed) > 10 else ''}); the first is {vals[bad[0]]!r} at "
            f"test row {bad[0] + 1}; check --label-column and --test-labels, and that both "
            "files use the same label encoding.")


def _same_as_stdout(path) -> bool:
    if path == "-":
        return True
    try:
        return os.path.samestat(os.stat(path), os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False


def _check_options(num_classes, bounds, q):
    """--num-classes, --bounds and --q, checked as certify checks them, before any data is read."""
    from ._problem import SMOOTHING_BOUNDS, check_bounds, check_num_classes, parse_q
    num_classes = check_num_classes(num_classes)
    bounds = check_bounds(bounds)
    parse_q(q, num_classes, allow_zero=not any(b in SMOOTHING_BOUNDS for b in bounds))


DASK_MISSING = ("{opt} needs dask.distributed, which is not installed; install it with "
                "pip install \"numbaflip[dask]\"")


def _check_dask_options(a):
    """--scheduler / --workers / --threads-per-worker, checked before any data is read;
    returns the ``distributed`` module (None: run in this process)."""
    if a.threads_per_worker is not None and a.workers is None:
        raise NumbaflipInputError("--threads-per-worker applies to --workers only (a cluster "
                                  "given by --scheduler has its own threads).")
    if a.scheduler is None and a.workers is None:
        return None
    if a.workers is not None and a.workers < 1:
        raise NumbaflipInputError(f"--workers {a.workers} is invalid; pass N ≥ 1 worker "
                                  "processes.")
    if a.threads_per_worker is not None and a.threads_per_worker < 1:
        raise NumbaflipInputError(f"--threads-per-worker {a.threads_per_worker} is invalid; "
                                  "pass T ≥ 1.")
    try:
        import distributed
    except ImportError:
        opt = "--scheduler" if a.scheduler is not None else "--workers"
        raise NumbaflipInputError(DASK_MISSING.format(opt=opt)) from None
    return distributed


class _DaskRun:
    """The Dask client of a certify run: connected to --scheduler, or on a LocalCluster of
    --workers processes started here and closed on exit."""

    def __init__(self, distributed, a):
        self.distributed, self.a = distributed, a
        self.cluster = self.client = None

    def __enter__(self):
        d, a = self.distributed, self.a
        try:
            if a.workers is not None:
                tpw = a.threads_per_worker or max(1, (os.cpu_count() or 1) // a.workers)
                # the scheduler's HTTP endpoints (metrics, health) start even without a
                # dashboard and move to a free port when 8787 is taken: not worth a warning
                warnings.filterwarnings("ignore", message=r"(?s)Port \d+ is already in use")
                self.cluster = d.LocalCluster(n_workers=a.workers, threads_per_worker=tpw,
                                              processes=True, dashboard_address=None)
                self.client = d.Client(self.cluster)
            else:
                self.client = d.Client(a.scheduler, timeout="30s")
        except (OSError, TimeoutError, ValueError) as e:
            self.__exit__(None, None, None)
            where = f"--scheduler {a.scheduler}" if a.scheduler is not None else \
                f"--workers {a.workers}"
            raise NumbaflipInputError(f"{where}: could not start or connect to the Dask "
                                      f"cluster ({type(e).__name__}: {e}).") from None
        return self.client

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        return False


def _cmd_certify(a) -> int:
    from . import io as nio
    from .io._atomic import plan_output
    fmt = a.format or ("json" if a.out.lower().endswith(".json") else "csv")
    # Everything that can be checked without the data comes first: no computation is wasted
    # on an output that cannot be written or that would destroy an input.
    plan_output(a.out, protect=(a.train, a.test))
    radii = _parse_radii(a.radii)
    learner, lam = _learner_from_options(a)
    bounds = _parse_bounds(a.bounds)
    _check_options(a.num_classes, bounds, a.q)
    distributed = _check_dask_options(a)
    label_col = _label_column(a.label_column)
    header = {"auto": None, "yes": True, "no": False}[a.header]
    train = nio.open_table(a.train, header=header)
    X_train, y_train = train.split(label_column=label_col, has_labels=True)
    test = nio.open_table(a.test, header=header)
    X_test, y_test, rule = _read_test(train, test, label_col, X_train, a.test_labels)
    if y_test is not None:
        _check_test_labels(y_train, y_test, a.num_classes, a.test)
    from .certify import certify
    if kernels_need_compiling(a.num_classes, bounds):
        print(COMPILE_NOTICE, file=sys.stderr, flush=True)
    if learner is None:
        kw = dict(q=a.q, lam=lam, bounds=bounds, num_classes=a.num_classes,
                  fit_intercept=not a.no_intercept, precision=a.precision,
                  progress=_want_progress(a))
    else:
        kw = dict(q=a.q, learner=learner, bounds=bounds, num_classes=a.num_classes,
                  precision=a.precision, progress=_want_progress(a))
    t0 = time.perf_counter()
    if distributed is None:
        res = certify(X_train, y_train, X_test, **kw)
    else:
        from . import distributed as ndist
        with _DaskRun(distributed, a) as client:
            res = ndist.certify(client, X_train, y_train, X_test, **kw)
    elapsed = time.perf_counter() - t0
    to_stdout = _same_as_stdout(a.out)
    if fmt == "json":
        extra = {"train_file": os.path.abspath(a.train), "test_file": os.path.abspath(a.test),
                 "test_labels": rule}
        nio.write_results_json(a.out, res, y_true=y_test, extra_metadata=extra,
                               protect=(a.train, a.test))
    else:
        nio.write_results_csv(a.out, res, y_true=y_test, protect=(a.train, a.test))
    where = "stdout" if a.out == "-" else a.out
    print(rule, file=sys.stderr)
    print(f"certified {len(res)} test points against n = {res.n} training labels in "
          f"{elapsed:.2f} s ({_learner_line(res)}); wrote {where} ({fmt})", file=sys.stderr)
    if y_test is not None:
        _summary(res, y_test, radii, out=sys.stderr if to_stdout else None)
    return 0


def _cmd_features(a) -> int:
    from .io._atomic import plan_output
    from .io.images import load_images, load_labels
    suffix = os.path.splitext(a.out)[1].lower()
    if suffix not in (".npz", ".npy"):
        raise NumbaflipInputError(
            f"--out {a.out!r} must end in .npz (features and labels) or .npy (features only)")
    if suffix == ".npy" and a.labels is not None:
        raise NumbaflipInputError(
            "--labels needs an .npz output (X and y); use --out FILE.npz or drop --labels")
    if a.encoder is not None and a.save_encoder is not None:
        raise NumbaflipInputError("--save-encoder saves a fitted encoder; with --encoder "
                                  "nothing is fitted: drop one of them")
    inputs = tuple(p for p in (a.images, a.labels, a.encoder, a.fit_images) if p)
    plans = [_binary_plan(plan_output, a.out, inputs, "--out")]
    if a.save_encoder is not None:
        plans.append(_binary_plan(plan_output, a.save_encoder, inputs + (a.out,),
                                  "--save-encoder"))
    if a.save_encoder is not None and plans[1].target == plans[0].target:
        raise NumbaflipInputError("--out and --save-encoder name the same file; choose two "
                                  "different files")
    from .features import ContrastiveEncoder, check_images
    images = check_images(load_images(a.images), what=f"images in {a.images!r}")
    fit_on = None
    if a.fit_images is not None:
        fit_on = check_images(load_images(a.fit_images), what=f"images in {a.fit_images!r}")
        if fit_on.shape[1:] != images.shape[1:]:
            raise NumbaflipInputError(
                f"--fit-images have shape (C, H, W) = {fit_on.shape[1:]} but --images have "
                f"{images.shape[1:]}; the encoder transforms images of the size it was fitted on")
    labels = None if a.labels is None else load_labels(a.labels)
    if labels is not None and labels.shape[0] != images.shape[0]:
        raise NumbaflipInputError(
            f"--labels has {labels.shape[0]} labels for {images.shape[0]} images; pass the "
            "labels of exactly these images")
    progress = _want_progress(a)
    try:
        if a.encoder is not None:
            enc = ContrastiveEncoder.load(a.encoder, n_threads=a.threads, progress=progress)
        else:
            enc = ContrastiveEncoder(a.dim, a.epochs, batch_size=a.batch_size, seed=a.seed,
                                     n_threads=a.threads, progress=progress)
    except ImportError as exc:
        raise NumbaflipInputError(str(exc)) from None
    if a.encoder is None:
        fit_on = images if fit_on is None else fit_on
        enc.fit(fit_on)
        print(f"fitted {enc!r} on {fit_on.shape[0]} images in {enc.fit_seconds_:.1f} s "
              f"(final loss {enc.loss_history_[-1]:.3f})", file=sys.stderr)
    X = enc.transform(images)
    _write_npy_or_npz(plans[0], suffix, X, labels)
    if a.save_encoder is not None:
        enc.save(plans[1].target)
    print(f"wrote {X.shape[0]} × {X.shape[1]} features to {a.out}"
          + (f" and the encoder to {a.save_encoder}" if a.save_encoder else ""), file=sys.stderr)
    return 0


def _binary_plan(plan_output, path, protect, option):
    plan = plan_output(path, protect=protect)
    if plan.mode != "atomic":
        raise NumbaflipInputError(f"{option} {path!r}: pass a regular file path (binary output "
                                  "is not written to stdout, a FIFO or a device)")
    return plan


def _write_npy_or_npz(plan, suffix, X, labels):
    from .io._atomic import atomic_write
    with atomic_write(plan.target, "wb", file_mode=plan.file_mode) as fh:
        if suffix == ".npy":
            np.save(fh, X)
        elif labels is None:
            np.savez(fh, X=X)
        else:
            np.savez(fh, X=X, y=labels)


def _learner_line(res) -> str:
    meta = res.metadata or {}
    name = meta.get("learner", "ridge")
    if name == "ridge":
        return f"λ = {res.lam:.6g}"
    p = meta.get("learner_params") or {}
    if name == "knn":
        return f"kNN, k = {p.get('k')}, {p.get('weights')} weights"
    if name == "rbf_ridge":
        return (f"RBF random-feature ridge, γ = {p.get('gamma'):.6g}, λ = {res.lam:.6g}, "
                f"{p.get('n_components')} features, seed {p.get('seed')}")
    return f"learner {name}"


def _cmd_demo(a) -> int:
    from .demo import run_demo
    if kernels_need_compiling(None, ("kl", "exact")) or \
            kernels_need_compiling(10, ("kl", "exact")):
        print(COMPILE_NOTICE, file=sys.stderr, flush=True)
    run_demo(progress=_want_progress(a))
    return 0


def _cmd_report(a) -> int:
    from .report import report_from_csv
    print(report_from_csv(a.results, _parse_radii(a.radii)))
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"numbaflip: warning: {message}", file=sys.stderr)


# --------------------------------------------------------------------------------------------
# messages in command-line spelling
# --------------------------------------------------------------------------------------------
def _cli_bounds(match) -> str:
    names = [t.strip(" '\"") for t in match.group(1).split(",")]
    return "--bounds " + ",".join(n for n in names if n)


#: API spelling → option spelling, applied to every error the public layer raises (one place:
#: _problem and io keep one wording, the CLI translates it).  Order matters.
_CLI_SPELLING = (
    (re.compile(r"\(or None for the binary formulation\)"),
     "(or leave --num-classes out for the binary formulation)"),
    (re.compile(r"\bpass num_classes=K for K classes"), "pass --num-classes K for K classes"),
    (re.compile(r"\bnum_classes=(\w+)"), r"--num-classes \1"),
    (re.compile(r"\bnum_classes\b"), "--num-classes"),
    (re.compile(r"\bbounds=\(([^)]*)\)"), _cli_bounds),
    (re.compile(r"\(('[a-z]+'(?:, '[a-z]+')*),?\)"), _cli_bounds),
    (re.compile(r"\bbounds\b(?= must| is empty)"), "--bounds"),
    (re.compile(r"\bq=(['\"]?)([^\s'\",;)]+)\1"), r"--q \2"),
    (re.compile(r"^q = "), "--q "),
    (re.compile(r"\bKNN\(k=([^)]*)\)"), r"--k \1"),
    (re.compile(r"\bKNN\(weights=([^)]*)\)"), r"--weights \1"),
    (re.compile(r"\bRBFRidge\(gamma=([^)]*)\)"), r"--gamma \1"),
    (re.compile(r"\bRBFRidge\(n_components=([^)]*)\)"), r"--components \1"),
    (re.compile(r"\bRBFRidge\(seed=([^)]*)\)"), r"--seed \1"),
    (re.compile(r"\bthe number of neighbours k must\b"), "the number of neighbours --k must"),
    (re.compile(r"\buse k ≤ "), "use --k ≤ "),
    (re.compile(r"\bgamma must be\b"), "--gamma must be"),
    (re.compile(r"\bor 'scale'"), "or scale"),
    (re.compile(r"^(Ridge|RBFRidge): "), ""),
    (re.compile(r"\blam='auto'"), "--lam auto"),
    (re.compile(r"\blam = "), "--lam "),
    (re.compile(r"^lam\b"), "--lam"),
    (re.compile(r"\bprecision must\b"), "--precision must"),
    (re.compile(r"\bfit_intercept=False"), "--no-intercept"),
)


def cli_spelling(message: str) -> str:
    """``message`` with the API's argument names in the spelling of the command line
    (``num_classes=3`` → ``--num-classes 3``, ``bounds=('exact',)`` → ``--bounds exact``, …)."""
    for pattern, repl in _CLI_SPELLING:
        message = pattern.sub(repl, message)
    return message


def main(argv=None) -> int:
    """Entry point of the ``numbaflip`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "precompute":
        # Its options belong to the precompute script; pass them through untouched.
        from .tight.precompute import precompute_main
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
    handler = {"certify": _cmd_certify, "demo": _cmd_demo, "report": _cmd_report,
               "features": _cmd_features}[args.command]
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return handler(args)
    except NumbaflipInputError as e:
        print(f"numbaflip: error: {cli_spelling(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("numbaflip: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
