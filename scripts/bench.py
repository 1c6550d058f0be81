"""Benchmark of numbaflip against the plain NumPy/SciPy reference (scripts/reference.py).

What it measures
----------------
For each problem size (synthetic, seeded: Gaussian features with a decaying spectrum, labels
from a noisy linear teacher — binary: sign of a linear score plus Gaussian noise; K classes:
argmax of K linear scores plus Gumbel noise) and each q:

* numbaflip, warm JIT cache, one :func:`numbaflip.certify` call with all requested bounds,
  ``lam`` = :func:`numbaflip.default_lambda` (label-free), ``precision="auto"``.  The phases are
  timed **inside that call** by wrapping the internal functions certify itself calls (wrappers
  are installed for the duration of the call and then removed; times are exclusive, nested
  calls are subtracted from their caller):
  ``alpha`` (RidgeAlpha: Gram matrix + Cholesky, then per block the solve and the n × k × b
  product, whether through RidgeAlpha.alpha or inside the RidgeAlpha.blocks generator), ``decide``
  (prediction/degenerate-case kernels), ``chernoff`` (the Newton driver kernels), ``refine``
  (the mpmath re-evaluation of points whose error interval straddles a radius boundary),
  ``thresholds`` (numbaflip.tight.cache.get_log_thresholds: tight-threshold table load or
  computation; tables are cached on disk — a fresh cache directory is used per run, so only
  tables shipped in ``<repo>/precomputed`` are found without computing), ``radii``
  (kl_radius + tight_radius outside the table), ``exact`` (exact._exact_k: kernels plus the exact-rational rows).
  Derived totals: *kl+tight* = the call's wall time minus ``exact``; *exact alone* = alpha +
  decide + exact (what ``certify(bounds=("exact",))`` runs).  The Newton profile comes from
  ``res.info["newton_iterations"]`` (objective evaluations per test point, summed over rivals
  for K classes; each is one pass over the n training points): mean and max per point, and
  the cost per term = chernoff seconds × numba threads / (Σ evaluations × n).
* the reference (:mod:`scripts/reference.py`, NumPy vectorised over training points, Python loop
  over test points, scipy minimize_scalar) on a seeded random subsample of test points
  (``--ref-points``, default 50; all points when m is smaller).  Per-point phases (alpha,
  Chernoff, exact) are extrapolated linearly to all m points; the fixed costs (Gram matrix and
  Cholesky factorisation; the threshold table) are counted once as measured.  The reference's predictions and radii are
  compared with numbaflip's on the subsample (tolerance: :func:`scripts/reference.py.compare`).
* peak memory: ``ru_maxrss`` of a fresh subprocess per size, read after the numbaflip runs and
  before the reference runs (so it is numbaflip's peak, data included).
* first-call cost: a subprocess imports numbaflip and certifies two tiny problems (binary and
  K = 3, all bounds) with an empty temporary ``NUMBA_CACHE_DIR`` (cold: everything compiles),
  then a second subprocess with the same directory (warm: everything loads from cache).
* the machine: CPU model, cores, numba thread count, versions; ``os.getloadavg()`` before and
  after each size (the machine may be shared: timings under load are noisy).

How long it takes
-----------------
``--quick``: tiny sizes, ~15 s.  Full default run (sizes a, b, c; q ∈ {0.3, 0.01, 1e-4}; kl,
tight, exact) on a 2-core machine: roughly 15–30 min, dominated by size (b)'s Newton passes
and by the reference on (b) (~1 s per test point).

Where it writes
---------------
A Markdown report to ``--out`` (default ``out/bench.md``) and the raw numbers next to it as JSON
(same name, ``.json``).  Progress goes to stderr.

Usage::

    python scripts/bench.py                          # everything
    python scripts/bench.py --sizes a --qs 0.3,0.01 --bounds kl,tight
    python scripts/bench.py --quick --out /tmp/bench.md
    python scripts/bench.py --dask --data fashion --sizes b --qs 0.3   # distributed.certify
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager

import numpy as np

#: name → (K or None for binary, n, k, m)
SIZES = {
    "a": (None, 13007, 50, 2163),
    "b": (10, 60000, 30, 10000),
    "c": (None, 25000, 300, 25000),
}
QUICK_SIZES = {
    "a": (None, 400, 8, 60),
    "b": (10, 500, 6, 30),
    "c": (None, 300, 20, 40),
}
DEFAULT_QS = ("0.3", "0.01", "1e-4")
DEFAULT_BOUNDS = ("kl", "tight", "exact")
PHASES = ("alpha", "decide", "histogram", "chernoff", "refine", "thresholds", "radii",
          "exact")
#: Phases the engine times itself (res.info["seconds"], numbaflip.certify.PHASES), shown with
#: alpha and thresholds (wrapped) in the per-phase table, each also relative to alpha.
#: *histogram* is one fused kernel (decide for binary, bucket build, Newton on the buckets,
#: certified evaluation U(t̂) and the lower bound): _kernels/histogram*.py do not expose the
#: three steps separately, so they are one phase here.
ENGINE_PHASES = ("decide", "histogram", "passes", "sandwich", "full_pass", "refine", "radii",
                 "exact")
SEED = 20200712


def _log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
#: Real-data sizes (--data fashion): Fashion-MNIST with label-free PCA features (fitted on the
#: training images of all classes, no labels) plus the intercept column certify adds.
#: a: binary, Trouser (1) against Sneaker + Ankle boot (7, 9), n=13007 sampled from the
#: 18000 training images of those classes, m=2163 from their 3000 test images, 50 components;
#: b: all 10 classes, the full 60000 / 10000 split, 30 components.
FASHION_SIZES = {"a": (None, 13007, 50, 2163), "b": (10, 60000, 30, 10000)}


def fashion_problem(K, n, k, m, seed=SEED):
    """Fashion-MNIST (Debian package dataset-fashion-mnist) at the sizes of FASHION_SIZES."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _common import load_mnist_dir, pca_basis, pca_project
    Xtr, ytr, Xte, yte = load_mnist_dir(FASHION_DIR)
    mean, V = pca_basis(Xtr[::3] / 255.0, k)          # label-free: images only
    rng = np.random.default_rng(seed)
    if K is None:
        tr = np.flatnonzero(np.isin(ytr, (1, 7, 9)))
        te = np.flatnonzero(np.isin(yte, (1, 7, 9)))
        tr = np.sort(rng.choice(tr, size=n, replace=False))
        te = np.sort(rng.choice(te, size=m, replace=False))
        to01 = lambda v: (v != 1).astype(np.int64)    # noqa: E731
        return (pca_project(Xtr[tr] / 255.0, mean, V), to01(ytr[tr]),
                pca_project(Xte[te] / 255.0, mean, V), to01(yte[te]))
    return (pca_project(Xtr[:n] / 255.0, mean, V), ytr[:n],
            pca_project(Xte[:m] / 255.0, mean, V), yte[:m])


def make_problem(K, n, k, m, seed=SEED):
    """Seeded synthetic problem: (X_train, y_train, X_test, y_test)."""
    rng = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(1.0 + np.arange(k))          # decaying spectrum
    Q, _ = np.linalg.qr(rng.normal(size=(k, k)))
    mix = (Q * scale) @ Q.T
    X = rng.normal(size=(n + m, k)) @ mix
    if K is None:
        w = rng.normal(size=k)
        s = X @ w
        y = (s + 0.5 * s.std() * rng.normal(size=n + m) > 0).astype(np.int64)
    else:
        W = rng.normal(size=(k, K))
        S = X @ W
        y = np.argmax(S / S.std() * 3.0 + rng.gumbel(size=(n + m, K)), axis=1).astype(np.int64)
    return X[:n], y[:n], X[n:], y[n:]


# --------------------------------------------------------------------------------------------
# Phase instrumentation
# --------------------------------------------------------------------------------------------

class PhaseTimer:
    """Exclusive wall time per phase of wrapped functions (nested calls are subtracted)."""

    def __init__(self):
        self.seconds = defaultdict(float)
        self.calls = defaultdict(int)
        self._stack = []

    def wrap(self, name, fn):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            self._stack.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                el = time.perf_counter() - t0
                child = self._stack.pop()
                self.seconds[name] += el - child
                self.calls[name] += 1
                if self._stack:
                    self._stack[-1] += el
        wrapper.__wrapped__ = fn
        return wrapper

    def wrap_gen(self, name, fn):
        """Like :meth:`wrap` for a generator function: times each step of the generator
        (the work done to produce an item), not the consumer's work between items."""
        timer = self

        def wrapper(*args, **kwargs):
            gen = fn(*args, **kwargs)
            step = timer.wrap(name, lambda: next(gen, _DONE))
            while True:
                item = step()
                if item is _DONE:
                    return
                yield item
        wrapper.__wrapped__ = fn
        return wrapper


_DONE = object()


@contextmanager
def instrumented(timer):
    """Install timing wrappers on the internals certify calls; always restore them."""
    from importlib import import_module   # not `import numbaflip.certify as`: the package
    alpha_mod = import_module("numbaflip.alpha")   # re-exports a *function* named certify
    cert_mod = import_module("numbaflip.certify")
    kb = import_module("numbaflip._kernels.binary")
    kp = import_module("numbaflip._kernels.pairwise")
    kh = import_module("numbaflip._kernels.histogram")
    khp = import_module("numbaflip._kernels.histogram_pairwise")
    exact_mod = import_module("numbaflip.exact")
    cache_mod = import_module("numbaflip.tight.cache")
    radius_mod = import_module("numbaflip.tight.radius")
    tight_pkg = import_module("numbaflip.tight")          # certify imports tight_radius from here
    targets = [
        (alpha_mod.RidgeAlpha, "__init__", "alpha"),      # Gram matrix, Cholesky (fixed cost)
        (alpha_mod.RidgeAlpha, "alpha", "alpha"),
        (alpha_mod.RidgeAlpha, "blocks", "alpha"),        # generator: timed per block
        (kb, "_binary_decide", "decide"), (kp, "_mc_decide", "decide"),
        (kb, "_binary_driver", "chernoff"), (kp, "_mc_driver", "chernoff"),
        (kh, "hist_binary_driver", "histogram"), (kh, "full_pass_rows", "chernoff"),
        (khp, "hist_mc_driver", "histogram"),
        (cert_mod._Engine, "_refine_block", "refine"),
        (exact_mod, "_exact_k", "exact"),   # what certify calls for the exact bound
        (cert_mod, "kl_radius", "radii"), (tight_pkg, "tight_radius", "radii"),
        (cache_mod, "get_log_thresholds", "thresholds"),
        (radius_mod._tables, "get_log_thresholds", "thresholds"),
    ]
    saved = []
    try:
        for obj, attr, phase in targets:
            orig = obj.__dict__[attr] if isinstance(obj, type) else getattr(obj, attr)
            saved.append((obj, attr, orig))
            wrap = timer.wrap_gen if inspect.isgeneratorfunction(orig) else timer.wrap
            setattr(obj, attr, wrap(phase, orig))
        yield timer
    finally:
        for obj, attr, orig in reversed(saved):
            setattr(obj, attr, orig)


# --------------------------------------------------------------------------------------------
# One size (run in a fresh subprocess so that ru_maxrss is per size)
# --------------------------------------------------------------------------------------------

def _warm_up():
    """Compile / load every kernel once on tiny problems (different q: no table reuse)."""
    import numbaflip
    for K in (None, 3):
        X, y, H, _ = make_problem(K, 60, 4, 8, seed=1)
        numbaflip.certify(X, y, H, q="0.2", lam=1.0, bounds=DEFAULT_BOUNDS, num_classes=K,
                          progress=False)


def result_digest(res) -> str:
    """sha256 (first 16 hex digits) of the predictions and every bound's radii, in a fixed
    order: equal digests before and after a change mean identical certificates."""
    import hashlib
    h = hashlib.sha256(np.ascontiguousarray(res.prediction_index, dtype=np.int64).tobytes())
    for b in sorted(res.radius):
        h.update(b.encode())
        h.update(np.ascontiguousarray(res.radius[b], dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def run_size(name, spec, qs, bounds, ref_points, seed=SEED, data="synthetic",
             engines=("histogram", "passes")):
    """Benchmark one size for every q and Chernoff engine; returns a JSON-able dict."""
    import resource

    import numba

    import numbaflip
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import reference as R  # scripts/reference.py: the plain NumPy/SciPy implementation
    from numbaflip.tight import cache as tables_mod
    K, n, k, m = spec
    out = {"size": name, "K": K, "n": n, "k": k, "m": m, "load_before": os.getloadavg(),
           "threads": numba.get_num_threads(), "runs": [], "data": data}
    t0 = time.perf_counter()
    X, y, H, yt = (fashion_problem if data == "fashion" else make_problem)(K, n, k, m, seed)
    out["data_seconds"] = time.perf_counter() - t0
    _warm_up()
    results = {}
    exact_only = {}
    for q, eng in [(q, e) for q in qs for e in engines]:
        tables_mod.clear_memory_cache()
        lam = numbaflip.default_lambda(X, float(q))
        if "exact" in bounds and q not in exact_only:
            exact_only[q] = _exact_only_call(X, y, H, q, lam, K)
        timer = PhaseTimer()
        _log(f"size {name}: numbaflip q={q} engine={eng} ...")
        numbaflip.config.config.chernoff_engine = eng
        with instrumented(timer):
            t0 = time.perf_counter()
            res = numbaflip.certify(X, y, H, q=q, lam=lam, bounds=bounds, num_classes=K,
                                    progress=False)
            wall = time.perf_counter() - t0
        numbaflip.config.reset()
        ph = {p: timer.seconds.get(p, 0.0) for p in PHASES}
        it = np.asarray(res.info["newton_iterations"], dtype=np.int64)
        evals = int(it.sum())
        eo = exact_only.get(q)
        if eo is not None:
            eo = {key: v for key, v in eo.items() if key not in ("radius", "prediction")}
            eo["same_exact_radii"] = bool(
                np.array_equal(exact_only[q]["radius"], res.radius["exact"]) and
                np.array_equal(exact_only[q]["prediction"], res.prediction_index))
        run = {
            "q": q, "engine": eng, "lam": lam, "wall": wall, "phases": ph,
            "engine_phases": {p: float(res.info.get("seconds", {}).get(p, 0.0))
                              for p in ENGINE_PHASES},
            "histogram": res.info.get("histogram"),
            "kl_tight": wall - ph["exact"] if any(b in bounds for b in ("kl", "tight")) else None,
            "exact_alone": eo["wall"] if eo else None,
            "exact_only": dict(eo) if eo else None,
            "newton_mean": float(it.mean()), "newton_max": int(it.max()),
            "newton_p50": float(np.median(it)), "newton_total": evals,
            "ns_per_term": (ph["chernoff"] * out["threads"] / (evals * n) * 1e9) if evals else None,
            "mp_refined": int(res.info.get("mp_refined", 0)),
            "status_counts": {int(s): int(c) for s, c in zip(*np.unique(res.status,
                                                                         return_counts=True))},
            "accuracy": float(np.mean(res.prediction == yt)),
            "median_radius": {b: float(np.median(r)) for b, r in res.radius.items()},
            "digest": result_digest(res),
            "load_after": os.getloadavg(),
        }
        _log(f"size {name}: q={q} {eng} numbaflip {wall:.2f} s  {ph}")
        out["runs"].append(run)
        results[q, eng] = res
    out["maxrss_mb_numbaflip"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    rng = np.random.default_rng(seed + 1)
    npts = min(m, ref_points)
    rows = np.sort(rng.choice(m, size=npts, replace=False))
    scale = m / npts
    refs = {}
    for run in out["runs"]:
        q = run["q"]
        res = results[q, run["engine"]]
        if q not in refs:   # one reference run per q, compared with every engine
            _log(f"size {name}: reference q={q} on {npts} of {m} points ...")
            t0 = time.perf_counter()
            ref = R.certify_reference(X, y, H[rows], q=q, lam=run["lam"], bounds=bounds,
                                      num_classes=K)
            refs[q] = (ref, time.perf_counter() - t0)
        ref, wall = refs[q]
        tm = ref.timings
        smoothing = any(b in ("kl", "tight") for b in bounds)
        run["ref"] = {
            "points": npts, "scale": scale, "wall_subsample": wall, "timings": tm,
            "kl_tight": (tm["alpha_setup"] + (tm["alpha"] + tm["chernoff"]) * scale
                         + tm["thresholds"] + tm["radii"]) if smoothing else None,
            "exact_alone": (tm["alpha_setup"] + (tm["alpha"] + tm["exact"]) * scale)
            if "exact" in bounds else None,
            "evals_mean": float(ref.evaluations.mean()),
        }
        bad = R.compare(ref, res, rows)
        run["agree"] = {key: int(v.size) for key, v in bad.items()}
        run["agree_points"] = npts
        _log(f"size {name}: q={q} reference {wall:.1f} s on {npts} pts; disagreements "
             f"{run['agree']}")
    out["maxrss_mb_total"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    out["load_after"] = os.getloadavg()
    return out


def _exact_only_call(X, y, H, q, lam, K, repeats=2):
    """``certify(bounds=("exact",))`` alone, warm, best of ``repeats``: its wall time (α
    included), alpha seconds (wrapped) and the engine's decide / exact seconds, with the
    predictions and exact radii (compared with the full call's by the caller)."""
    import numbaflip
    best = None
    for _ in range(repeats):
        timer = PhaseTimer()
        with instrumented(timer):
            t0 = time.perf_counter()
            res = numbaflip.certify(X, y, H, q=q, lam=lam, bounds=("exact",), num_classes=K,
                                    progress=False)
            wall = time.perf_counter() - t0
        if best is None or wall < best["wall"]:
            sec = res.info.get("seconds", {})
            best = {"wall": wall, "alpha": timer.seconds.get("alpha", 0.0),
                    "decide": float(sec.get("decide", 0.0)),
                    "exact": float(sec.get("exact", 0.0)),
                    "exact_rational": int(res.info["histogram"].get("exact_rational", 0)),
                    "radius": res.radius["exact"], "prediction": res.prediction_index,
                    "load": os.getloadavg()}
    return best


def _worker_main(payload):
    args = json.loads(payload)
    out = run_size(args["name"], tuple(args["spec"]), args["qs"], tuple(args["bounds"]),
                   args["ref_points"], data=args["data"], engines=tuple(args["engines"]))
    print("BENCH-JSON " + json.dumps(out), flush=True)


def _run_size_subprocess(name, spec, qs, bounds, ref_points, data, engines):
    payload = json.dumps({"name": name, "spec": list(spec), "qs": list(qs),
                          "bounds": list(bounds), "ref_points": ref_points, "data": data,
                          "engines": list(engines)})
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="numbaflip-bench-tables-") as tdir:
        env["NUMBAFLIP_TABLE_DIR"] = tdir
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--_worker", payload],
                              stdout=subprocess.PIPE, stderr=None, env=env, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker for size {name} failed (exit {proc.returncode})")
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH-JSON "):
            return json.loads(line[len("BENCH-JSON "):])
    raise RuntimeError(f"benchmark worker for size {name} printed no result")


# --------------------------------------------------------------------------------------------
# First-call cost
# --------------------------------------------------------------------------------------------

_FIRST_CALL = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
t1 = time.perf_counter()
import numbaflip
t2 = time.perf_counter()
sys.path.insert(0, {scripts!r})
from bench import make_problem
out = {{"import_numpy": t1 - t0, "import_numbaflip": t2 - t1}}
for K, key in ((None, "binary"), (3, "k3")):
    X, y, H, _ = make_problem(K, 60, 4, 8, seed=1)
    t = time.perf_counter()
    numbaflip.certify(X, y, H, q="0.2", lam=1.0, bounds={bounds!r}, num_classes=K,
                      progress=False)
    out["first_" + key] = time.perf_counter() - t
out["total"] = time.perf_counter() - t0
print("BENCH-JSON " + json.dumps(out))
"""


def first_call_times(bounds, modes=("cold", "warm")):
    """{mode: {...seconds...}}.  cold: empty temporary NUMBA_CACHE_DIR; warm: the same directory
    again after the cold run.  With modes=("warm",) alone nothing is compiled: the warm run
    uses the default cache location (NUMBA_CACHE_DIR as in the environment)."""
    code = _FIRST_CALL.format(scripts=os.path.dirname(os.path.abspath(__file__)),
                              bounds=tuple(bounds))
    out = {}
    with tempfile.TemporaryDirectory(prefix="numbaflip-bench-numba-") as ndir, \
            tempfile.TemporaryDirectory(prefix="numbaflip-bench-tables-") as tdir:
        env = dict(os.environ, NUMBAFLIP_TABLE_DIR=tdir)
        if "cold" in modes:
            env["NUMBA_CACHE_DIR"] = ndir
        for mode in ("cold", "warm"):
            if mode not in modes:
                continue
            load = os.getloadavg()
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", code], env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                raise RuntimeError(f"first-call subprocess failed:\n{proc.stderr[-2000:]}")
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH-JSON ")][-1]
            rec = json.loads(line[len("BENCH-JSON "):])
            rec["process_wall"] = wall
            rec["load"] = load
            out[mode] = rec
            _log(f"first call ({mode} numba cache): {rec}")
    return out


# --------------------------------------------------------------------------------------------
# Environment and report
# --------------------------------------------------------------------------------------------

def machine_info():
    import llvmlite
    import numba
    import scipy
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import numbaflip
    here = os.path.dirname(os.path.abspath(numbaflip.__file__))
    try:
        head = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"], text=True,
                              capture_output=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--", "."],
                               text=True, capture_output=True).stdout.strip()
        git = f"{head}{' + local changes' if dirty else ''}" if head else "?"
    except OSError:
        git = "?"
    return {
        "git": git,
        "cpu": cpu, "cores": os.cpu_count(), "numba_threads": numba.get_num_threads(),
        "python": platform.python_version(), "numpy": np.__version__,
        "scipy": scipy.__version__, "numba": numba.__version__,
        "llvmlite": llvmlite.__version__, "numbaflip": numbaflip.__version__,
        "platform": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def _f(x, nd=2):
    if x is None:
        return "–"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.{nd}f}"


def _ratio(a, b):
    if a is None or b is None or b <= 0:
        return "–"
    return f"{a / b:.0f}×" if a / b >= 10 else f"{a / b:.1f}×"


def _load(t):
    return "/".join(f"{v:.1f}" for v in t[:1]) if t else "?"


def _qe(r):
    return f"{r['q']} {r.get('engine', '')}".strip()


def _shares(r):
    """Points closed by the sandwich / sent to one full pass (of those the histogram engine ran
    on), re-evaluated in mpmath, and exact-certificate rows settled in exact rationals (of m)."""
    h = r.get("histogram") or {}
    tot = h.get("closed", 0) + h.get("full_pass", 0)
    pct = (lambda a, b: f"{100.0 * a / b:.1f}%" if b else "–")   # noqa: E731
    return (f"{pct(h.get('closed', 0), tot)} / {pct(h.get('full_pass', 0), tot)} / "
            f"{r['mp_refined']} / {h.get('exact_rational', '–')}")


def _render_phases(L, report):
    """The per-phase table (engine timings, each also × alpha) and the Newton profile."""
    L.append("## numbaflip phases (seconds; × alpha) and Newton profile\n")
    L.append("One `certify(..., bounds=all)` call.  *alpha*: RidgeAlpha (Gram matrix, Cholesky, "
             "per block the n × k × b product), wrapped.  The other phases are timed by the "
             "engine itself (`res.info['seconds']`, perf_counter around the kernel calls): "
             "*decide* (prediction / degenerate-case kernels; the binary histogram kernel "
             "decides inside *histogram*), *histogram* (one fused kernel: bucket build, Newton "
             "on the buckets and the certified evaluation U(t̂) with the lower bound — the "
             "histogram kernels do not split these steps, so they are reported as one phase), "
             "*passes* (full-pass Newton engine; with the histogram engine only the degenerate "
             "binary cases and tied K-class rivals), *sandwich* (radius of U and of the lower "
             "bound per point), *full pass* (one full-pass Newton from t̂ where the sandwich did "
             "not close), *mp* (mpmath refinement), *radii* (final kl/tight radii), "
             "*thresholds* (tight-threshold table lookup, wrapped; it runs inside sandwich and "
             "radii), *exact* (exact certificate: bucketed selection, sorted-walk fallback, "
             "exact-rational rows).  *Shares*: sandwich closed / sent to a full pass (% of the "
             "points the histogram engine ran on) / mp-refined points / exact-rational rows.  "
             "*evals/pt*: full-pass objective evaluations per test point "
             "(`res.info['newton_iterations']`; summed over rivals for K classes).\n")
    cols = ("alpha",) + ENGINE_PHASES[:-2] + ("radii", "thresholds", "exact")
    L.append("| size | q engine | " + " | ".join(c.replace("_", " ") for c in cols) +
             " | certify wall | wall × alpha | shares | evals/pt mean/med/max | mp | accuracy | "
             "median radius (kl/tight/exact) |")
    L.append("|---|---|" + "---|" * len(cols) + "---|---|---|---|---|---|---|")
    for s in report["sizes"]:
        for r in s["runs"]:
            ph = dict(r.get("engine_phases") or {}, alpha=r["phases"]["alpha"],
                      thresholds=r["phases"]["thresholds"])
            a = ph["alpha"]
            med = "/".join(_f(r["median_radius"].get(b), 0) if b in r["median_radius"] else "–"
                           for b in ("kl", "tight", "exact"))
            cells = [f"{_f(ph.get(c, 0.0), 3)} ({_ratio(ph.get(c, 0.0), a)})" if c != "alpha"
                     else _f(a, 3) for c in cols]
            L.append(f"| {s['size']} | {_qe(r)} | " + " | ".join(cells)
                     + f" | {_f(r['wall'])} | {_ratio(r['wall'], a)} | {_shares(r)} | "
                     f"{r['newton_mean']:.1f}/{r['newton_p50']:.0f}/"
                     f"{r['newton_max']} | {r['mp_refined']} | "
                     f"{r['accuracy']:.3f} | {med} |")
    L.append("")
    L.append("### exact alone: `certify(bounds=(\"exact\",))`, best of 2 warm calls\n")
    L.append("| size | q | wall (α included) | alpha | decide | exact | exact-rational rows | "
             "predictions and exact radii equal to the full call's | load |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for s in report["sizes"]:
        seen = set()
        for r in s["runs"]:
            eo = r.get("exact_only")
            if not eo or r["q"] in seen:
                continue
            seen.add(r["q"])
            L.append(f"| {s['size']} | {r['q']} | {_f(eo['wall'], 3)} | {_f(eo['alpha'], 3)} | "
                     f"{_f(eo['decide'], 3)} | {_f(eo['exact'], 3)} | {eo['exact_rational']} | "
                     f"{eo.get('same_exact_radii', '–')} | {_load(eo['load'])} |")
    L.append("")


def render(report):
    """The Markdown report (main table first: numbaflip vs reference, with the ratio)."""
    mi = report["machine"]
    L = []
    L.append("# numbaflip benchmark\n")
    L.append(f"Machine: {mi['cpu']}, {mi['cores']} cores, numba threads {mi['numba_threads']}; "
             f"Python {mi['python']}, NumPy {mi['numpy']}, SciPy {mi['scipy']}, "
             f"Numba {mi['numba']}, llvmlite {mi['llvmlite']}; numbaflip {mi['numbaflip']} "
             f"(git {mi.get('git', '?')}); "
             f"{mi['date']}.  Generated by `scripts/bench.py {' '.join(report['argv'])}`"
             f"{' (quick: tiny sizes, smoke test only)' if report['quick'] else ''}.\n")
    fashion = any(sz.get("data") == "fashion" for sz in report["sizes"])
    L.append(("Fashion-MNIST, label-free PCA features (FASHION_SIZES: a = binary Trouser vs "
              "Sneaker+Ankle boot, b = 10 classes, full split).  " if fashion else
              "Synthetic seeded data (Gaussian features, noisy linear teacher).  ") +
             "Warm JIT cache. "
             "Seconds of wall time.  *Reference* = `scripts/reference.py` (NumPy/SciPy), timed "
             "on a random subsample of test points and extrapolated linearly to all m "
             "(fixed costs — Gram matrix + Cholesky, threshold table — counted once).  *Agree* = disagreements with numbaflip on that "
             "subsample (predictions / radii beyond the tolerance of "
             "`scripts/reference.py.compare`), out of the points checked.  *Load* = 1-min load "
             "average before the size → after the run (2 cores; other jobs make timings "
             "noisy).\n")
    L.append("| size | K | n | k | m | q | kl+tight | ref kl+tight | × | exact alone | "
             "ref exact | × | agree (pred/kl/tight/exact of pts) | load |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for s in report["sizes"]:
        for r in s["runs"]:
            ref = r.get("ref", {})
            ag = r.get("agree", {})
            agree = "/".join(str(ag.get(b, "–")) for b in ("prediction", "kl", "tight",
                                                             "exact"))
            L.append(
                f"| {s['size']} | {s['K'] or 2} | {s['n']} | {s['k']} | {s['m']} | {_qe(r)} | "
                f"{_f(r['kl_tight'])} | {_f(ref.get('kl_tight'))} | "
                f"{_ratio(ref.get('kl_tight'), r['kl_tight'])} | {_f(r['exact_alone'])} | "
                f"{_f(ref.get('exact_alone'))} | {_ratio(ref.get('exact_alone'), r['exact_alone'])}"
                f" | {agree} of {r.get('agree_points', 0)} | {_load(s['load_before'])}→"
                f"{_load(r['load_after'])} |")
    L.append("")
    L.append("## Certificates digest\n")
    L.append("sha256 of the predictions and every bound's radii (`result_digest`): compare two "
             "runs of the same settings to check that a change left every certificate "
             "identical.\n")
    L.append("| size | q | bounds | digest |")
    L.append("|---|---|---|---|")
    for s in report["sizes"]:
        for r in s["runs"]:
            L.append(f"| {s['size']} | {_qe(r)} | {','.join(sorted(r['median_radius']))} | "
                     f"`{r.get('digest', '–')}` |")
    L.append("")
    _render_phases(L, report)
    L.append("## Reference phases (seconds on the subsample, not extrapolated)\n")
    L.append("| size | q | points | alpha setup | alpha | chernoff | thresholds | radii | exact | "
             "evals/pt mean |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for s in report["sizes"]:
        for r in s["runs"]:
            ref = r.get("ref")
            if not ref:
                continue
            tm = ref["timings"]
            L.append(f"| {s['size']} | {_qe(r)} | {ref['points']} | "
                     f"{_f(tm.get('alpha_setup'), 3)} | {_f(tm['alpha'], 3)} | "
                     f"{_f(tm['chernoff'], 3)} | {_f(tm['thresholds'], 3)} | "
                     f"{_f(tm['radii'], 3)} | {_f(tm['exact'], 3)} | {ref['evals_mean']:.1f} |")
    L.append("")
    L.append("## Peak memory (ru_maxrss of one subprocess per size)\n")
    L.append("| size | n | m | numbaflip runs (MB) | incl. reference (MB) |")
    L.append("|---|---|---|---|---|")
    for s in report["sizes"]:
        L.append(f"| {s['size']} | {s['n']} | {s['m']} | {s['maxrss_mb_numbaflip']:.0f} | "
                 f"{s['maxrss_mb_total']:.0f} |")
    L.append("")
    fc = report.get("first_call") or {}
    if fc:
        L.append("## Import and first call (fresh subprocess, tiny binary + K = 3 problems, "
                 "all bounds)\n")
        L.append("| numba cache | import numbaflip | first certify (binary) | first certify "
                 "(K=3) | import + first calls | process wall | load |")
        L.append("|---|---|---|---|---|---|---|")
        for mode, rec in fc.items():
            L.append(f"| {mode} | {_f(rec['import_numbaflip'])} | {_f(rec['first_binary'])} | "
                     f"{_f(rec['first_k3'])} | {_f(rec['total'])} | {_f(rec['process_wall'])} "
                     f"| {_load(rec['load'])} |")
        L.append("")
    return "\n".join(L) + "\n"


# --------------------------------------------------------------------------------------------
# --dask: numbaflip.distributed.certify on LocalClusters of 1 and 2 single-thread workers
# --------------------------------------------------------------------------------------------

#: (workers, threads per worker) of the LocalClusters timed by --dask.
DASK_CLUSTERS = ((1, 1), (2, 1))


def _pickled_size(obj) -> int:
    import cloudpickle
    return len(cloudpickle.dumps(obj, protocol=5))


@contextmanager
def _message_meter(client, nd):
    """Sizes (pickled, as Dask ships them) of what numbaflip.distributed.certify sends: the
    scattered objects, each task's own arguments (futures of scattered data replaced by
    None: they are references, not data) and each task's result."""
    from distributed import Future
    meter = {"scatter": [], "task_in": [], "task_rows": [], "task_out": []}
    orig_scatter, orig_submit, orig_merge = client.scatter, client.submit, nd._merge

    def scatter(data, *a, **k):
        meter["scatter"].append(_pickled_size(data))
        return orig_scatter(data, *a, **k)

    def strip(x):
        if isinstance(x, Future):
            return None
        if isinstance(x, tuple):
            return tuple(strip(v) for v in x)
        return x

    def submit(fn, *args, **k):
        meter["task_in"].append(_pickled_size((fn, strip(args))))
        meter["task_rows"].append(int(np.shape(args[1])[0]))
        return orig_submit(fn, *args, **k)

    def merge(results, sizes, classes):
        meter["task_out"] = [_pickled_size(r) for r in results]
        return orig_merge(results, sizes, classes)

    client.scatter, client.submit, nd._merge = scatter, submit, merge
    try:
        yield meter
    finally:
        client.scatter, client.submit, nd._merge = orig_scatter, orig_submit, orig_merge


def _dask_warm_up(client, bounds):
    """Load every kernel in every worker (tiny problems, histogram engine forced for one)."""
    import numbaflip
    import numbaflip.distributed as nd
    for K in (None, 3):
        X, y, H, _ = make_problem(K, 60, 4, 8, seed=1)
        for hist_min in (None, 1):
            if hist_min is not None:
                numbaflip.config.config.histogram_min_n = hist_min
            try:
                nd.certify(client, X, y, H, q="0.2", lam=1.0, bounds=bounds, num_classes=K,
                           progress=False)
            finally:
                numbaflip.config.reset()
    client.run(lambda: None)


def run_dask_size(name, spec, qs, bounds, data="synthetic", seed=SEED,
                  clusters=DASK_CLUSTERS):
    """Time numbaflip.distributed.certify on LocalClusters of ``clusters`` for one size."""
    import distributed

    import numbaflip
    import numbaflip.distributed as nd
    K, n, k, m = spec
    X, y, H, yt = (fashion_problem if data == "fashion" else make_problem)(K, n, k, m, seed)
    out = {"size": name, "K": K, "n": n, "k": k, "m": m, "data": data, "runs": []}
    for q in qs:
        lam = numbaflip.default_lambda(X, float(q))
        for nw, tpw in clusters:
            with distributed.LocalCluster(n_workers=nw, threads_per_worker=tpw,
                                          processes=True, dashboard_address=None) as cl, \
                    distributed.Client(cl) as client:
                _dask_warm_up(client, bounds)
                load = os.getloadavg()
                _log(f"dask size {name}: q={q} {nw} worker(s) × {tpw} thread(s) ...")
                with _message_meter(client, nd) as meter:
                    t0 = time.perf_counter()
                    res = nd.certify(client, X, y, H, q=q, lam=lam, bounds=bounds,
                                     num_classes=K, progress=False)
                    wall = time.perf_counter() - t0
            h = res.info.get("histogram") or {}
            hrows = h.get("closed", 0) + h.get("full_pass", 0)
            rows = meter["task_rows"]
            run = {
                "q": q, "workers": nw, "threads_per_worker": tpw, "wall": wall,
                "tasks": res.info["dask"]["tasks"],
                "rows_per_task": list(res.info["dask"]["rows_per_task"]),
                "blas_threads": res.info["dask"]["blas_threads"],
                "scatter_bytes": meter["scatter"],
                "task_in_bytes": meter["task_in"], "task_out_bytes": meter["task_out"],
                "in_per_point": sum(meter["task_in"]) / m,
                "out_per_point": sum(meter["task_out"]) / m,
                "alpha_row_bytes": 8 * n,
                "histogram": h, "buckets_per_point": h.get("buckets", 0) / hrows if hrows
                else None,
                "accuracy": float(np.mean(res.prediction == yt)),
                "digest": result_digest(res), "load_before": load,
                "load_after": os.getloadavg(),
            }
            assert sum(rows) == m
            _log(f"dask size {name}: q={q} {nw}×{tpw}: {wall:.2f} s, {run['tasks']} tasks, "
                 f"in {run['in_per_point']:.0f} B/pt, out {run['out_per_point']:.0f} B/pt")
            out["runs"].append(run)
    return out


def render_dask(report):
    mi = report["machine"]
    L = ["# numbaflip.distributed benchmark\n"]
    L.append(f"Machine: {mi['cpu']}, {mi['cores']} cores, numba threads {mi['numba_threads']}; "
             f"Python {mi['python']}, NumPy {mi['numpy']}, SciPy {mi['scipy']}, "
             f"Numba {mi['numba']}, llvmlite {mi['llvmlite']}, dask {mi.get('dask', '?')}, "
             f"distributed {mi.get('distributed', '?')}; numbaflip {mi['numbaflip']} "
             f"(git {mi.get('git', '?')}); {mi['date']}.  Generated by "
             f"`scripts/bench.py {' '.join(report['argv'])}`.\n")
    L.append("One `numbaflip.distributed.certify` call per row on a fresh `LocalCluster` "
             "(worker processes, no dashboard), kernels loaded in the workers beforehand "
             "(warm-up on tiny problems); seconds of wall time on the client.  *in/pt*: the "
             "tasks' own arguments (test rows, options, tunables; pickled) per test point; "
             "*out/pt*: the pickled per-task results per test point; *scatter*: the "
             "training data and threshold table sent once to every worker; *α row*: n·8 "
             "bytes, what one test point's α row weighs.  *Buckets/pt*: "
             "`info['histogram']['buckets']` over the points the histogram engine ran on.\n")
    L.append("| size | K | n | k | m | q | workers × threads | wall | speed-up | tasks | "
             "in/pt (B) | out/pt (B) | scatter (B) | α row (B) | buckets/pt | digest | load |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for s in report["sizes"]:
        base = {}
        for r in s["runs"]:
            key = r["q"]
            if r["workers"] == 1 and r["threads_per_worker"] == 1:
                base[key] = r["wall"]
            bp = r["buckets_per_point"]
            L.append(f"| {s['size']} | {s['K'] or 2} | {s['n']} | {s['k']} | {s['m']} | "
                     f"{r['q']} | {r['workers']} × {r['threads_per_worker']} | "
                     f"{_f(r['wall'])} | {_ratio(base.get(key), r['wall'])} | {r['tasks']} | "
                     f"{r['in_per_point']:.0f} | {r['out_per_point']:.0f} | "
                     f"{'+'.join(str(b) for b in r['scatter_bytes'])} | "
                     f"{r['alpha_row_bytes']} | {'–' if bp is None else f'{bp:.0f}'} | "
                     f"`{r['digest']}` | {_load(r['load_before'])}→{_load(r['load_after'])} |")
    L.append("")
    return "\n".join(L) + "\n"


def dask_main(args, sizes, table, qs, bounds, argv):
    try:
        import dask
        import distributed
    except ImportError:
        raise SystemExit('--dask needs dask.distributed: pip install "numbaflip[dask]"')
    mi = machine_info()
    mi.update(dask=dask.__version__, distributed=distributed.__version__)
    report = {"argv": argv, "machine": mi, "sizes": [], "dask": True}
    for s in sizes:
        _log(f"dask size {s}: {table[s]}")
        report["sizes"].append(run_dask_size(s, table[s], qs, bounds, data=args.data))
    text = render_dask(report)
    return _write_report(text, report, args.out)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

def _write_report(text, report, out):
    """The Markdown report to ``out``, the raw numbers as JSON beside it, the text to stdout."""
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as fh:
        fh.write(text)
    with open(os.path.splitext(out)[0] + ".json", "w") as fh:
        json.dump(report, fh, indent=1)
    _log(f"wrote {out}")
    print(text)
    return 0


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="a,b,c", help="comma-separated subset of a,b,c")
    p.add_argument("--qs", default=",".join(DEFAULT_QS), help="comma-separated q values")
    p.add_argument("--bounds", default=",".join(DEFAULT_BOUNDS), help="subset of kl,tight,exact")
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    p.add_argument("--data", choices=("synthetic", "fashion"), default="synthetic",
                   help="synthetic seeded data, or Fashion-MNIST at the sizes of FASHION_SIZES "
                        "(needs the Debian package dataset-fashion-mnist)")
    p.add_argument("--engines", default="histogram,passes",
                   help="Chernoff engines to time (config.chernoff_engine), comma-separated")
    p.add_argument("--ref-points", type=int, default=50,
                   help="test points the reference is timed on (extrapolated to m)")
    p.add_argument("--first-call", default="cold,warm",
                   help="which first-call measurements to run: cold,warm | warm | none")
    p.add_argument("--out", default=None,
                   help="Markdown report (default out/bench.md; with --dask out/bench_dask.md)")
    p.add_argument("--dask", action="store_true",
                   help="time numbaflip.distributed.certify on LocalClusters of 1 worker × 1 "
                        "thread and 2 workers × 1 thread instead (speed-up, bytes per test "
                        "point); e.g. --dask --data fashion --sizes b --qs 0.3")
    p.add_argument("--_worker", help=argparse.SUPPRESS)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args._worker:
        _worker_main(args._worker)
        return 0
    table = QUICK_SIZES if args.quick else FASHION_SIZES if args.data == "fashion" else SIZES
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    for s in sizes:
        if s not in table:
            raise SystemExit(f"unknown size {s!r}; choose from {', '.join(table)}")
    qs = [q.strip() for q in args.qs.split(",") if q.strip()]
    bounds = tuple(b.strip() for b in args.bounds.split(",") if b.strip())
    if args.out is None:
        args.out = os.path.join("out", "bench_dask.md" if args.dask else "bench.md")
    if args.dask:
        return dask_main(args, sizes, table, qs, bounds,
                         list(argv) if argv is not None else sys.argv[1:])
    report = {"argv": list(argv) if argv is not None else sys.argv[1:], "quick": args.quick,
              "machine": machine_info(), "sizes": [], "first_call": {}}
    modes = tuple(x for x in args.first_call.split(",") if x in ("cold", "warm"))
    if modes:
        report["first_call"] = first_call_times(bounds, modes)
    for s in sizes:
        _log(f"size {s}: {table[s]}")
        report["sizes"].append(_run_size_subprocess(
            s, table[s], qs, bounds, args.ref_points, args.data,
            [e.strip() for e in args.engines.split(",") if e.strip()]))
    text = render(report)
    return _write_report(text, report, args.out)


if __name__ == "__main__":
    sys.exit(main())
