"""Scale-out of :func:`numbaflip.certify` on a Dask cluster: test points in partitions.

The certificate of one test point needs alpha of that point (one row of H M, M the ridge
solve of the training features) and the training labels; it does not depend on any other test
point.  So the test rows are split into tasks, each task runs :func:`numbaflip.certify` on its
rows in a worker process, and the client concatenates the per-task results into one
:class:`~numbaflip.results.CertifyResult` that is identical to the in-process call (same
predictions, radii, log_p_wrong, statuses, t and per-rival bounds).

What is fixed on the client, once, so that every task solves the same problem:

* every input check of :func:`numbaflip.certify` (:func:`numbaflip._problem.problem`), before
  any task is submitted, plus the checks of the client and of dask arrays;
* λ: ``lam="auto"`` is resolved from the full training set and passed to every task as a float;
* the tight threshold table (``bounds`` with ``"tight"``): read or computed through
  :func:`numbaflip.tight.cache.get_log_thresholds` down to L_r < −10⁴ (or r = n) and shipped
  to the workers, which put it into their in-memory cache (no shared file system needed);
* the speed/tightness tunables of :data:`numbaflip.config.config` (not the paths
  ``table_dir``/``key_file``, which are per machine).

The training data and the table are scattered once to every worker; the test rows travel in
the task itself (a numpy ``X_test``) or are chunks of the dask array, so a task lost with its
worker is rerun elsewhere by the scheduler.  Inside a worker process the tasks of this module
run one at a time (a process-wide lock) with Numba using the worker's ``nthreads`` threads,
so a worker never runs more Numba threads than it has threads and the warnings of a task are
recorded without interference (they are re-emitted once on the client).

A ``learner=`` object (:mod:`numbaflip.learners`) is pickled into every task and fitted there
on the whole training set.

With ``partition="train"`` the training set is partitioned instead (its row chunks stay on
the workers; per test point the parts send group sums, histogram cells and candidate moves,
merged in trees of tasks): :mod:`numbaflip._partitioned`, docs/scaling.md §2.
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib
import math
import re
import threading
import warnings

import numpy as np

from .errors import NumbaflipInputError, NumbaflipWarning

__all__ = ["certify"]

#: Smallest number of test rows per task (unless the test set is smaller).
MIN_ROWS_PER_TASK = 256
#: Tasks per worker thread (more tasks: better balance and smaller losses on a dead worker).
TASKS_PER_THREAD = 4
#: config fields not shipped to the workers: paths of this machine.
_LOCAL_CONFIG = ("table_dir", "key_file")
#: info entries that are the same for every task (never concatenated).
_INFO_CONSTANT = ("pair_classes", "precision")

_TASK_LOCK = threading.Lock()


# --------------------------------------------------------------------------------------------
# client side
# --------------------------------------------------------------------------------------------

def _require_distributed():
    try:
        import distributed
    except ImportError:
        raise ImportError(
            "numbaflip.distributed needs dask.distributed, which is not installed; install it "
            "with `pip install \"numbaflip[dask]\"` (or `pip install \"dask[distributed]\"`).") \
            from None
    return distributed


def _check_client(client, distributed):
    if client is None:
        raise NumbaflipInputError(
            "numbaflip.distributed.certify needs a dask.distributed Client as first argument, "
            "got None; create one with `from dask.distributed import Client; client = "
            "Client()` (a local cluster) or Client('tcp://scheduler:8786').")
    if not isinstance(client, distributed.Client):
        raise NumbaflipInputError(
            f"numbaflip.distributed.certify needs a dask.distributed Client as first argument, "
            f"got {type(client).__name__}; create one with `from dask.distributed import "
            "Client; client = Client()`, or call numbaflip.certify to run in this process.")
    if getattr(client, "asynchronous", False):
        raise NumbaflipInputError(
            "the dask Client is asynchronous; numbaflip.distributed.certify blocks until the "
            "result is complete, so pass a synchronous Client (asynchronous=False).")
    status = getattr(client, "status", None)
    if status != "running":
        raise NumbaflipInputError(
            f"the dask Client is not running (status {status!r}); it was closed or lost its "
            "scheduler. Create a new Client (or reconnect) and certify again.")


def _is_dask(x) -> bool:
    try:
        import dask
    except ImportError:  # pragma: no cover - distributed depends on dask
        return False
    return dask.is_dask_collection(x)


def _unknown_chunks(x) -> bool:
    chunks = getattr(x, "chunks", None)
    if chunks is None:
        return False
    return any(isinstance(c, float) and math.isnan(c) for dim in chunks for c in dim)


def _local(x):
    """A dask collection computed on the client (training data must be whole on every worker
    anyway, and λ = "auto" needs all of it); anything else unchanged."""
    if not _is_dask(x):
        return x
    return np.asarray(x.compute())


def _check_dask_test(X_test, cols):
    """The checks of a dask ``X_test`` that need no values (type, known chunks, shape, dtype);
    the values (finite) are checked by the tasks."""
    from ._problem import check_matrix, check_shape_2d
    if not hasattr(X_test, "chunks") or not hasattr(X_test, "rechunk"):
        raise NumbaflipInputError(
            f"X_test is a dask collection of type {type(X_test).__name__}; pass a dask array "
            "(e.g. dataframe.to_dask_array(lengths=True)) or a numpy array.")
    if _unknown_chunks(X_test):
        raise NumbaflipInputError(
            f"X_test is a dask array with unknown chunk sizes (chunks {X_test.chunks}); the "
            "test rows are partitioned by position, so call X_test.compute_chunk_sizes() (or "
            "to_dask_array(lengths=True)) first.")
    check_shape_2d(tuple(int(v) for v in X_test.shape), "X_test")
    check_matrix(np.zeros((1, X_test.shape[1]), dtype=X_test.dtype), "X_test", cols=cols)


def _task_sizes(m, n, total_threads, rows_per_task, K, n_slots):
    """Row counts of the tasks, in test-row order.

    A row of alpha is one row of a matrix product, and BLAS may round a row differently in
    products of different shapes (observed with OpenBLAS: the last bits of alpha change with
    the number of rows).  certify computes alpha in blocks of ``config.block_rows(n)`` rows
    from row 0, so every task starts at a block boundary and holds whole blocks (the last
    task ends with the last, partial block): each task then makes exactly the products the
    in-process call makes, and the results are bit for bit the same.

    Within that: about TASKS_PER_THREAD tasks per worker thread, at least ``rows_per_task``
    rows each (None: MIN_ROWS_PER_TASK; rounded up to whole blocks), block counts differing
    by at most one.  certify keeps per-rival outputs per class slot instead of per class when
    m·K exceeds numbaflip.certify._MAX_PAIR_ENTRIES; every task must make the choice the whole
    call makes, so when the whole call keeps slots every task gets more than that limit / K
    rows.
    """
    from .config import block_rows
    _c = importlib.import_module("numbaflip.certify")
    if rows_per_task is None:
        target = max(MIN_ROWS_PER_TASK,
                     -(-m // max(1, TASKS_PER_THREAD * max(1, total_threads))))
    else:
        if isinstance(rows_per_task, bool) or not isinstance(rows_per_task, (int, np.integer)) \
                or rows_per_task < 1:
            raise NumbaflipInputError(
                f"rows_per_task must be a positive integer or None, got {rows_per_task!r}.")
        target = int(rows_per_task)
    limit = getattr(_c, "_MAX_PAIR_ENTRIES", 1 << 24)
    if n_slots is not None and n_slots < K and m * K > limit:
        target = max(target, limit // K + 1)
    bs = block_rows(n)
    nblocks = -(-m // bs)
    per_task = max(1, -(-target // bs))           # whole blocks per task, at least target rows
    ntasks = max(1, nblocks // per_task)
    base, extra = divmod(nblocks, ntasks)
    counts = [base + (1 if i < extra else 0) for i in range(ntasks)]
    sizes = [c * bs for c in counts]
    sizes[-1] -= nblocks * bs - m                  # the last block is partial
    if n_slots is not None and n_slots < K and m * K > limit:
        while len(sizes) > 1 and sizes[-1] * K <= limit:
            sizes[-2] += sizes.pop()
    return sizes


def _threshold_table(pb):
    """The tight threshold table the in-process call would use (same cache, same values),
    down to the first L_r < R_MAX_LOG_CAP or to r = n: what tight_radius fetches for every
    ℓ ≥ −10⁴.  A worker extends it itself in the (rare) case a point needs more."""
    from .tight import cache as _cache
    n, K, canon = pb.n, pb.K, pb.q.canonical
    r_req = min(n, 256)
    while True:
        table = _cache.get_log_thresholds(canon, K, r_req, n=n)
        top = min(n, table.shape[0] - 1)
        if top >= n or table[top] < _cache.R_MAX_LOG_CAP:
            return canon, K, np.asarray(table)
        r_req = min(n, 2 * top)


def _blas_threads():
    """The BLAS thread count of this process (threadpoolctl), or None when unknown."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    counts = [int(i["num_threads"]) for i in threadpool_info() if i.get("user_api") == "blas"]
    return max(counts) if counts else None


def _config_values():
    from .config import config
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
            if f.name not in _LOCAL_CONFIG}


def _concat(parts):
    return np.concatenate([np.asarray(p) for p in parts], axis=0)


def _merge_info(infos, sizes):
    """Per-point arrays concatenated, counts summed, nested dicts merged, the rest (strings,
    per-call constants such as ``pair_classes``) from the first task."""
    first = infos[0]
    out = {}
    for key, v0 in first.items():
        vals = [i.get(key) for i in infos]
        if key in _INFO_CONSTANT:
            out[key] = v0
        elif isinstance(v0, dict):
            out[key] = _merge_info(vals, sizes)
        elif isinstance(v0, np.ndarray) and v0.ndim >= 1 and \
                all(isinstance(v, np.ndarray) and v.shape[:1] == (s,)
                    for v, s in zip(vals, sizes)):
            out[key] = _concat(vals)
        elif isinstance(v0, (int, float, np.integer, np.floating)) and \
                not isinstance(v0, (bool, np.bool_)) and \
                all(isinstance(v, (int, float, np.integer, np.floating)) for v in vals):
            out[key] = type(v0)(sum(vals)) if isinstance(v0, (int, float)) else sum(vals)
        else:
            out[key] = v0
    return out


_PER_POINT = ("prediction", "prediction_index", "log_p_wrong", "log_p_wrong_err", "status",
              "t_star", "pair_log_b")


def _merge(results, sizes, classes):
    """One CertifyResult from the per-task results, in test-row order."""
    from .results import CertifyResult
    first = results[0]
    for r in results[1:]:
        if not np.array_equal(np.asarray(r.classes_), np.asarray(first.classes_)):
            raise RuntimeError("numbaflip.distributed: the tasks disagree on classes_ "
                               "(the workers run different numbaflip versions?)")
    kw = {}
    for f in dataclasses.fields(CertifyResult):
        vals = [getattr(r, f.name) for r in results]
        v0 = vals[0]
        if f.name in _PER_POINT:
            kw[f.name] = None if v0 is None else _concat(vals)
        elif f.name == "radius":
            kw[f.name] = {b: _concat([v[b] for v in vals]) for b in v0}
        elif f.name == "info":
            kw[f.name] = _merge_info(vals, sizes)
        elif f.name == "metadata":
            meta = dict(v0)
            if "n_test" in meta:
                meta["n_test"] = int(sum(sizes))
            kw[f.name] = meta
        elif f.name == "classes_":
            kw[f.name] = classes if classes is not None else v0
        else:
            kw[f.name] = v0
    return CertifyResult(**kw)


_MAXITER = re.compile(r"(iteration cap on )(\d+)( test point)")


def _reemit(records, seen):
    """Warnings recorded in the tasks, once each on the client (the Newton iteration-cap
    warning once, with the total count)."""
    maxiter_total, maxiter_msg = 0, None
    for cat, msg in records:
        m = _MAXITER.search(msg)
        if m:
            maxiter_total += int(m.group(2))
            maxiter_msg = msg
            continue
        if (cat, msg) in seen:
            continue
        seen.add((cat, msg))
        warnings.warn(msg, cat, stacklevel=3)
    if maxiter_msg is not None:
        warnings.warn(_MAXITER.sub(lambda m: f"{m.group(1)}{maxiter_total}{m.group(3)}",
                                   maxiter_msg, count=1), NumbaflipWarning, stacklevel=3)


def _check_picklable(learner):
    """The learner travels to the workers inside every task: it must pickle (cloudpickle, as
    Dask serialises tasks)."""
    try:
        import cloudpickle
        cloudpickle.dumps(learner)
    except Exception as e:  # noqa: BLE001 - any pickling failure means the same to the user
        raise NumbaflipInputError(
            f"learner={getattr(learner, 'name', type(learner).__name__)!r} "
            f"({type(learner).__name__}) cannot be pickled ({type(e).__name__}: {e}); "
            "numbaflip.distributed ships the learner to the workers with every task, so it "
            "must be picklable (the learners of numbaflip.learners are), or call "
            "numbaflip.certify to run in this process.") from None
    return learner


def _validated(X_train, y_train, X_test, q, p_lam, p_fi, bounds, num_classes, precision):
    """certify's checks on the client: (Problem, m, X_test is dask, warnings shown, y_train).
    A dask X_test is checked on a one-row stand-in, then through its metadata."""
    from ._problem import problem
    X_train = _local(X_train)
    y_train = _local(y_train)
    dask_test = _is_dask(X_test)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        if dask_test:
            # every check of certify on a one-row stand-in, then the dask array's metadata
            shp = np.shape(X_train)
            stand_in = np.zeros((1, shp[1] if len(shp) == 2 else 1))
            pb = problem(y_train, q=q, X_train=X_train, X_test=stand_in, lam=p_lam,
                         fit_intercept=p_fi, bounds=bounds, num_classes=num_classes,
                         precision=precision)
            _check_dask_test(X_test, pb.X_train.shape[1])
            m = int(X_test.shape[0])
        else:
            pb = problem(y_train, q=q, X_train=X_train, X_test=X_test, lam=p_lam,
                         fit_intercept=p_fi, bounds=bounds, num_classes=num_classes,
                         precision=precision)
            m = pb.m
    seen = set()
    for w in rec:   # the client's own validation warnings (labels), once
        seen.add((w.category, str(w.message)))
        warnings.warn(w.message, w.category, stacklevel=4)

    return pb, m, dask_test, seen, y_train


def _submit_and_collect(client, distributed, pb, X_test, y_send, dask_test, starts, sizes,
                        kwargs, conf, table, blas, retries, progress, m):
    """Scatter the training data (and the threshold table) once, submit one task per run of
    whole alpha blocks, collect in order with one progress bar; (results, warning records)."""
    futures = []
    try:
        # training data (and the table) once to every worker.  hash=False: keys of this
        # call only; content-hashed keys are shared with an earlier call on the same data,
        # whose release of them races with this call's tasks ("lost dependencies")
        X_fut = client.scatter(pb.X_train, broadcast=True, hash=False)
        y_fut = client.scatter(y_send, broadcast=True, hash=False)
        t_fut = None
        if table is not None:   # (canonical q, K, values): only the values are scattered
            t_fut = (table[0], table[1],
                     client.scatter(table[2], broadcast=True, hash=False))
        if dask_test:
            Xd = X_test.rechunk((tuple(sizes), (X_test.shape[1],)))
            blocks = client.compute(list(Xd.to_delayed().ravel()))
        else:
            blocks = [pb.X_test[s:s + b] for s, b in zip(starts, sizes)]
        for i, (s, blk) in enumerate(zip(starts, blocks)):
            futures.append(client.submit(_certify_rows, s, blk, X_fut, y_fut, kwargs, conf,
                                         t_fut, blas, retries=retries, pure=True))
        index = {f.key: i for i, f in enumerate(futures)}
        results = [None] * len(futures)
        records = []
        from tqdm.auto import tqdm
        disable = (not progress) if progress is not None else None
        with tqdm(total=m, unit="pt", desc="certify (dask)", disable=disable,
                  leave=False) as bar:
            for fut in distributed.as_completed(futures):
                i = index[fut.key]
                res, recs = fut.result()
                results[i] = res
                records.extend(recs)
                bar.update(sizes[i])
    finally:
        if any(not f.done() for f in futures):
            client.cancel(futures)
    return results, records


def certify(client, X_train, y_train, X_test, *, q, learner=None, lam="auto", bounds=("kl",),
            num_classes=None, fit_intercept=None, precision="auto", progress=None,
            rows_per_task=None, retries=0, match_blas_threads=True, partition="auto",
            exact_candidates=None):
    """:func:`numbaflip.certify` on a Dask cluster, the test points or the training set split
    into tasks.

    Same parameters, guarantee and result as :func:`numbaflip.certify` (predictions, radii,
    log_p_wrong, statuses, t and per-rival bounds are identical to the in-process call), plus:

    client : a running, synchronous ``dask.distributed.Client``.
    learner : as in :func:`numbaflip.certify` (None: ridge with ``lam``, ``fit_intercept``).
        The learner object is checked on the client and shipped, pickled, with every task;
        each task fits it on the whole training set (``learner.fit`` is label-free and
        deterministic, so every task gets the same α as the in-process call).  It must be
        picklable (cloudpickle); the learners of :mod:`numbaflip.learners` are.
    X_train, y_train : numpy (or array-like) or dask arrays; dask ones are computed on the
        client (every worker needs the whole training set).
    X_test : numpy (or array-like) or a dask array with known chunk sizes.  A numpy X_test is
        checked on the client like in certify; for a dask X_test the shape and dtype are
        checked on the client and the values (finite) by the tasks.
    rows_per_task : test rows per task (None: about 4 tasks per worker thread, at least 256
        rows each).
    retries : passed to ``Client.submit`` (a task lost with its worker is rerun by the
        scheduler anyway; the tasks are pure, so retrying is safe but only helps against
        transient failures).
    progress : one tqdm bar on the client over the completed test points (None: only on a
        terminal).
    match_blas_threads : run each task with as many BLAS threads as this process has
        (threadpoolctl, when installed here and on the workers).  OpenBLAS rounds the ridge
        solve and the products H M differently with different thread counts (the last bits
        of alpha), and Dask starts workers with one BLAS thread; matching makes the result
        bit-identical to the in-process call on the same machine.  False: the workers' own
        BLAS threads (the certificates are equally valid; log_p_wrong may differ in the last
        bits and, rarely, a radius at a boundary).

    partition : "test" (the test points in tasks, the training set on every worker: the
        results above are bit-identical to the in-process call), "train" (the training set
        stays in row partitions: the row chunks of a dask ``X_train``, or one row range per
        worker; see :mod:`numbaflip._partitioned` and docs/scaling.md §2) or "auto" ("train"
        for a dask ``X_train`` of several row chunks and at least 256 MB, else "test").
        Training partitions support the ridge learner (``lam`` a float or "auto") and every
        bound; the certificate is the in-process one for the α computed from the partitions,
        which differs from the in-process α by float reassociation only, so predictions agree
        and a radius can differ only where that moves a value across a radius boundary (never
        above the truth for the classifier that runs).  ``rows_per_task`` is then the number
        of test rows per block; ``match_blas_threads`` does not apply.
    exact_candidates : training partitions with "exact": how many of its largest helpful
        moves each part sends per test point at first (None: 256); a walk that needs more
        gets rounds of 4× as many.

    Every input error is raised on the client before any task is submitted
    (:class:`numbaflip.NumbaflipInputError`); with training partitions, the values of a dask
    ``X_train`` (finite) are checked by the tasks.  ``info["dask"]`` records the number of
    tasks (training partitions: parts, blocks, settled and fetched rows, bytes per point per
    part).
    """
    distributed = _require_distributed()
    _check_client(client, distributed)
    from . import _partitioned
    if _partitioned.wants_train(partition, X_train, _is_dask):
        return _partitioned.certify_train(
            client, X_train, y_train, X_test, q=q, learner=learner, lam=lam, bounds=bounds,
            num_classes=num_classes, fit_intercept=fit_intercept, precision=precision,
            progress=progress, rows_per_task=rows_per_task, retries=retries,
            exact_candidates=(_partitioned.EXACT_CANDIDATES if exact_candidates is None
                              else exact_candidates),
            is_dask=_is_dask, unknown=_unknown_chunks)

    if learner is None:
        p_lam, p_fi = lam, (True if fit_intercept is None else fit_intercept)
    else:   # as certify: λ and the intercept belong to the learner (lam=0.0 is not used)
        from ._problem import check_learner
        check_learner(learner, lam=lam, fit_intercept=fit_intercept)
        _check_picklable(learner)
        p_lam, p_fi = 0.0, True

    pb, m, dask_test, seen, y_train = _validated(X_train, y_train, X_test, q, p_lam, p_fi,
                                                 bounds, num_classes, precision)
    n_slots = None
    if pb.num_classes is not None:
        from ._problem import class_slots
        n_slots = class_slots(pb.y, pb.K).S
    nthreads = client.nthreads()
    total_threads = int(sum(nthreads.values())) if nthreads else 1
    sizes = _task_sizes(m, pb.n, total_threads, rows_per_task, pb.K, n_slots)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int).tolist()

    table = None
    if "tight" in pb.bounds:
        table = _threshold_table(pb)

    if learner is None:
        kwargs = dict(q=q, lam=pb.lam, bounds=pb.bounds,
                      num_classes=pb.num_classes, fit_intercept=pb.fit_intercept,
                      precision=pb.precision)
    else:
        kwargs = dict(q=q, learner=learner, bounds=pb.bounds, num_classes=pb.num_classes,
                      precision=pb.precision)
    conf = _config_values()
    blas = _blas_threads() if match_blas_threads else None
    y_send = np.asarray(y_train)

    results, records = _submit_and_collect(client, distributed, pb, X_test, y_send, dask_test,
                                           starts, sizes, kwargs, conf, table, blas, retries,
                                           progress, m)
    _reemit(records, seen)
    out = _merge(results, sizes, pb.classes)
    params = out.metadata.get("learner_params")
    if learner is None and isinstance(params, dict) and "lam_given" in params:
        # the tasks were given the λ resolved here; record what the user gave, as certify does
        out.metadata["learner_params"] = dict(params, lam_given=lam)
    out.info["dask"] = {"tasks": len(sizes), "rows_per_task": (min(sizes), max(sizes)),
                        "workers": len(nthreads), "blas_threads": blas}
    return out


# --------------------------------------------------------------------------------------------
# worker side
# --------------------------------------------------------------------------------------------

def _worker_threads() -> int:
    try:
        from distributed import get_worker
        w = get_worker()
    except (ImportError, ValueError):
        return 1
    state = getattr(w, "state", None)
    n = getattr(state, "nthreads", None) or getattr(w, "nthreads", None) or 1
    return int(n)


def _install_table(table) -> None:
    """Put the client's threshold table into this process's memory cache (unless a table with
    the same values up to its length already is there and is longer)."""
    if table is None:
        return
    from .tight import cache as _cache
    canon, K, values = table
    key = (canon, int(K), "auto")
    have = _cache._MEMORY.get(key)
    if have is not None and have.shape[0] >= values.shape[0] and \
            np.array_equal(have[:values.shape[0]], values):
        return
    arr = np.array(values, dtype=np.float64)
    arr.flags.writeable = False
    _cache._MEMORY[key] = arr


def _blas_limits(blas):
    """A context running BLAS with ``blas`` threads (None: unchanged) and the warning to give
    when that is not possible here."""
    if blas is None:
        return contextlib.nullcontext(), None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext(), (
            "numbaflip.distributed: threadpoolctl is not installed on the workers, so they "
            f"could not run BLAS with the client's {blas} thread(s); the certificates are valid "
            "but log_p_wrong may differ from the in-process call in the last bits (install "
            "threadpoolctl on the workers, or pass match_blas_threads=False).")
    return threadpool_limits(limits=int(blas), user_api="blas"), None


def _certify_rows(start, X_rows, X_train, y_train, kwargs, conf, table, blas=None):
    """One task: numbaflip.certify on test rows start.. with the client's λ, table, tunables
    and BLAS thread count.  Returns (CertifyResult, [(warning category, message)])."""
    import numba
    from .certify import certify as _certify
    from .config import config

    with _TASK_LOCK:
        numba.set_num_threads(max(1, min(_worker_threads(), numba.config.NUMBA_NUM_THREADS)))
        for name, value in conf.items():
            if hasattr(config, name):
                setattr(config, name, value)
        _install_table(table)
        limits, problem_msg = _blas_limits(blas)
        with warnings.catch_warnings(record=True) as rec, limits:
            warnings.simplefilter("always")
            if problem_msg:
                warnings.warn(problem_msg, NumbaflipWarning)
            try:
                res = _certify(X_train, y_train, X_rows, progress=False, **kwargs)
            except NumbaflipInputError as e:
                stop = start + np.shape(X_rows)[0] - 1
                raise NumbaflipInputError(f"X_test rows {start}..{stop}: {e}") from None
        return res, [(w.category, str(w.message)) for w in rec]
