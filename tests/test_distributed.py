"""numbaflip.distributed.certify on a local Dask cluster: results identical to the in-process
numbaflip.certify (binary and K = 3, kl + tight + exact, numpy and dask X_test), a worker
killed mid-run, and every input error raised on the client before anything is submitted."""
import os
import threading
import time
import warnings

import numpy as np
import pytest

import numbaflip
import numbaflip.config
import numbaflip.distributed as nd
from numbaflip import NumbaflipInputError, NumbaflipWarning

import dask.array as da   # dask[distributed] is in the test extra: never skipped
import distributed

FIELDS = ("prediction", "prediction_index", "log_p_wrong", "log_p_wrong_err", "status",
          "t_star", "pair_log_b", "classes_")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as c:
        yield c


@pytest.fixture(scope="module")
def client(cluster):
    with distributed.Client(cluster) as cl:
        yield cl


@pytest.fixture
def small_blocks():
    """alpha blocks of 40 rows, so a small test set makes several tasks (the block size is
    shipped to the workers; the in-process call uses it too)."""
    numbaflip.config.config.block_size = 40
    yield 40
    numbaflip.config.reset()


def _data(seed=0, n=240, m=200, k=5, K=None):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k))
    if K is None:
        y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(np.int64)
    else:
        y = np.argmax(X[:, :K] + 0.7 * rng.normal(size=(n, K)), axis=1)
    T = rng.normal(size=(m, k))
    return X, y, T


def assert_same(a, b):
    for f in FIELDS:
        va, vb = getattr(a, f), getattr(b, f)
        if va is None:
            assert vb is None, f
        else:
            np.testing.assert_array_equal(np.asarray(va), np.asarray(vb), err_msg=f)
    assert a.radius.keys() == b.radius.keys()
    for k in a.radius:
        np.testing.assert_array_equal(a.radius[k], b.radius[k], err_msg=k)
    assert (a.q, a.num_classes, a.n, tuple(a.bounds), a.lam) == \
        (b.q, b.num_classes, b.n, tuple(b.bounds), b.lam)
    assert a.metadata == b.metadata
    np.testing.assert_array_equal(a.info["newton_iterations"], b.info["newton_iterations"])
    assert a.info["mp_refined"] == b.info["mp_refined"]
    assert a.info["histogram"] == b.info["histogram"]
    pa, pb = a.info.get("pair_classes"), b.info.get("pair_classes")
    assert (pa is None) == (pb is None)
    if pa is not None:
        np.testing.assert_array_equal(pa, pb)


BOUNDS = ("kl", "tight", "exact")


def test_binary_identical(client, small_blocks):
    X, y, T = _data(0)
    kw = dict(q=0.1, bounds=BOUNDS)
    ref = numbaflip.certify(X, y, T, **kw)
    res = nd.certify(client, X, y, T, rows_per_task=40, **kw)
    assert res.info["dask"]["tasks"] == 5
    assert_same(ref, res)
    assert (res.radius["tight"] >= 0).any()


def test_multiclass_identical_string_labels_histogram(client, small_blocks):
    """K = 3 with string labels (classes_ mapping), lam given as a float, and the histogram
    engine forced through the (shipped) tunables."""
    X, y, T = _data(1, K=3)
    labels = np.array(["ant", "bee", "cat"])[y]
    numbaflip.config.config.histogram_min_n = 1
    kw = dict(q="0.2", num_classes=3, bounds=BOUNDS, lam=0.5)
    ref = numbaflip.certify(X, labels, T, **kw)
    res = nd.certify(client, X, labels, T, rows_per_task=80, **kw)
    assert ref.info["histogram"]["engine"] == "histogram"
    assert res.info["dask"]["tasks"] == 2
    assert_same(ref, res)
    assert res.prediction.dtype.kind == "U"


def test_default_partition_and_lam_auto(client):
    """Default task sizes: whole alpha blocks (here the whole test set is one block);
    lam='auto' resolved once on the client and recorded as certify records it."""
    X, y, T = _data(2, K=3)
    kw = dict(q=0.3, num_classes=3, bounds=("kl", "tight"))
    ref = numbaflip.certify(X, y, T, **kw)
    res = nd.certify(client, X, y, T, **kw)
    assert res.info["dask"]["tasks"] == 1
    assert_same(ref, res)


def test_blas_threads_matched(client):
    """At this size OpenBLAS rounds alpha differently with 1 and 2 threads; the tasks run
    with the client's BLAS thread count (Dask starts workers with one), so the result is
    still bit-identical."""
    X, y, T = _data(10, n=3000, m=300, k=30)
    kw = dict(q=0.1, bounds=("kl", "tight"))
    ref = numbaflip.certify(X, y, T, **kw)
    res = nd.certify(client, X, y, T, **kw)
    assert res.info["dask"]["blas_threads"] == nd._blas_threads() >= 1
    assert_same(ref, res)


def test_blas_limits_without_threadpoolctl(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    assert nd._blas_threads() is None
    _, msg = nd._blas_limits(2)
    assert "threadpoolctl is not installed" in msg
    assert nd._blas_limits(None)[1] is None


def test_dask_inputs(client, small_blocks):
    X, y, T = _data(3)
    kw = dict(q=0.05, bounds=BOUNDS)
    ref = numbaflip.certify(X, y, T, **kw)
    Td = da.from_array(T, chunks=(37, 3))
    res = nd.certify(client, da.from_array(X, chunks=100), da.from_array(y, chunks=100), Td,
                     rows_per_task=80, **kw)
    assert res.info["dask"]["tasks"] == 2
    assert_same(ref, res)


def test_task_sizes_follow_alpha_blocks():
    from numbaflip.distributed import _task_sizes
    numbaflip.config.config.block_size = 40
    try:
        assert _task_sizes(200, 10, 2, 40, 2, None) == [40] * 5
        assert _task_sizes(200, 10, 2, 50, 2, None) == [120, 80]   # whole blocks
        sizes = _task_sizes(201, 10, 2, 40, 2, None)
        assert sum(sizes) == 201 and all(s % 40 == 0 for s in sizes[:-1])
    finally:
        numbaflip.config.reset()
    # default: at least 256 rows, about 4 tasks per thread, whole blocks of block_rows(n)
    sizes = _task_sizes(10 ** 6, 60000, 8, None, 2, None)
    bs = numbaflip.config.block_rows(60000)
    assert sum(sizes) == 10 ** 6 and all(s % bs == 0 for s in sizes[:-1])
    assert 28 <= len(sizes) <= 32
    # K-class outputs per slot: every task keeps slots when the whole call does
    K = 2 ** 16
    sizes = _task_sizes(1000, 100, 4, None, K, 5)
    assert all(s * K > (1 << 24) for s in sizes)
    with pytest.raises(NumbaflipInputError, match="rows_per_task"):
        _task_sizes(10, 10, 1, 0, 2, None)


def test_warnings_once_with_total_count(client, small_blocks):
    """Tunables reach the workers (newton_maxiter = 1); the iteration-cap warning is given
    once on the client with the total count."""
    X, y, T = _data(4)
    numbaflip.config.config.newton_maxiter = 1
    numbaflip.config.config.chernoff_engine = "passes"
    with pytest.warns(NumbaflipWarning, match="iteration cap") as w_ref:
        ref = numbaflip.certify(X, y, T, q=0.1)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        res = nd.certify(client, X, y, T, q=0.1, rows_per_task=40)
    caps = [x for x in w if "iteration cap" in str(x.message)]
    assert len(caps) == 1
    assert str(caps[0].message) == str(
        [x for x in w_ref if "iteration cap" in str(x.message)][0].message)
    assert_same(ref, res)


def test_progress_bar(client, small_blocks, capsys):
    X, y, T = _data(5, m=80)
    nd.certify(client, X, y, T, q=0.1, progress=True, rows_per_task=40)
    assert "certify (dask)" in capsys.readouterr().err


def test_lost_worker(client, cluster, small_blocks):
    """A worker killed while tasks run: the scheduler reruns its tasks, the result is complete
    and identical."""
    X, y, T = _data(6, m=600)
    kw = dict(q=0.1, bounds=("kl", "tight"), precision="mp")   # mp: ~2 ms per row
    ref = numbaflip.certify(X, y, T, **kw)
    killed = {}

    def killer():
        sched = cluster.scheduler
        deadline = time.time() + 30
        while time.time() < deadline:
            done = [ts for k, ts in list(sched.tasks.items())
                    if "_certify_rows" in str(k) and ts.state == "memory"]
            busy = [ws.address for ws in list(sched.workers.values()) if ws.processing]
            if done and busy:
                killed["addr"] = busy[0]
                try:   # the worker dies before it can answer
                    client.run(os._exit, 1, workers=[busy[0]])
                except Exception:
                    pass
                return
            time.sleep(0.01)

    th = threading.Thread(target=killer, daemon=True)
    th.start()
    res = nd.certify(client, X, y, T, rows_per_task=40, **kw)
    th.join(5)
    assert "addr" in killed, "no worker was killed mid-run"
    assert res.info["dask"]["tasks"] == 15
    assert_same(ref, res)
    assert killed["addr"] not in client.nthreads()   # the scheduler saw it die


# --------------------------------------------------------------------------------------------
# bad input: raised on the client, nothing submitted
# --------------------------------------------------------------------------------------------

@pytest.fixture
def no_submit(client, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("something was submitted to the cluster")
    for name in ("submit", "scatter", "compute", "map"):
        monkeypatch.setattr(client, name, boom)
    return client


def test_bad_client():
    X, y, T = _data(7, m=5)
    with pytest.raises(NumbaflipInputError, match="needs a dask.distributed Client.*None"):
        nd.certify(None, X, y, T, q=0.1)
    with pytest.raises(NumbaflipInputError, match="got str"):
        nd.certify("tcp://127.0.0.1:8786", X, y, T, q=0.1)


def test_closed_client(cluster):
    X, y, T = _data(7, m=5)
    cl = distributed.Client(cluster)
    cl.close()
    with pytest.raises(NumbaflipInputError, match="not running"):
        nd.certify(cl, X, y, T, q=0.1)


def test_bad_inputs_before_submission(no_submit):
    X, y, T = _data(8, m=20)
    with pytest.raises(NumbaflipInputError, match="y_train has 239 labels but there are 240"):
        nd.certify(no_submit, X, y[:-1], T, q=0.1)
    with pytest.raises(NumbaflipInputError, match="y_train has 239 labels"):
        nd.certify(no_submit, X, da.from_array(y[:-1]), da.from_array(T), q=0.1)
    with pytest.raises(NumbaflipInputError, match="q"):
        nd.certify(no_submit, X, y, T, q=0.7)
    with pytest.raises(NumbaflipInputError, match="bounds|bound"):
        nd.certify(no_submit, X, y, T, q=0.1, bounds=("nope",))
    with pytest.raises(NumbaflipInputError, match="X_test has 4 columns but X_train has 5"):
        nd.certify(no_submit, X, y, T[:, :4], q=0.1)
    with pytest.raises(NumbaflipInputError, match="X_test has 4 columns but X_train has 5"):
        nd.certify(no_submit, X, y, da.from_array(T[:, :4]), q=0.1)
    bad = T.copy()
    bad[3, 1] = np.nan
    with pytest.raises(NumbaflipInputError, match="non-finite"):
        nd.certify(no_submit, X, y, bad, q=0.1)
    Td = da.from_array(T, chunks=(7, 5))
    unknown = Td[da.from_array(T[:, 0]) > 0]
    assert np.isnan(unknown.shape[0])
    with pytest.raises(NumbaflipInputError, match="unknown chunk sizes.*compute_chunk_sizes"):
        nd.certify(no_submit, X, y, unknown, q=0.1)
    with pytest.raises(NumbaflipInputError, match="2-D"):
        nd.certify(no_submit, X, y, Td[:, 0], q=0.1)
    with pytest.raises(NumbaflipInputError, match="complex"):
        nd.certify(no_submit, X, y, Td.astype(np.complex128), q=0.1)
    with pytest.raises(NumbaflipInputError, match="rows_per_task"):
        nd.certify(no_submit, X, y, T, q=0.1, rows_per_task=0)


def test_non_finite_dask_test_rows(client, small_blocks):
    """Values of a dask X_test are checked by the tasks; the error names the rows."""
    X, y, T = _data(9, m=120)
    T[85, 2] = np.inf
    with pytest.raises(NumbaflipInputError, match=r"X_test rows 80\.\.119: .*non-finite"):
        nd.certify(client, X, y, da.from_array(T, chunks=(50, 5)), q=0.1, rows_per_task=40)


# --------------------------------------------------------------------------------------------
# learner= through the tasks
# --------------------------------------------------------------------------------------------

def test_learners_identical(client, small_blocks):
    """KNN, Ridge(lam=...) and RBFRidge objects are shipped to the tasks and fitted there: the
    result (and metadata: learner name, resolved parameters, lam_given) equals the in-process
    call."""
    from numbaflip.learners import KNN, RBFRidge, Ridge
    X, y, T = _data(11, K=3)
    for learner, kw in ((KNN(5), dict(q=0.2, bounds=("kl", "exact"))),
                        (KNN(4, weights="distance"), dict(q=0.1, num_classes=3)),
                        (Ridge(lam=0.5), dict(q=0.1, num_classes=3, bounds=BOUNDS)),
                        (RBFRidge(n_components=40, seed=3), dict(q=0.1))):
        yy = y if "num_classes" in kw else (y > 0).astype(np.int64)
        ref = numbaflip.certify(X, yy, T, learner=learner, **kw)
        res = nd.certify(client, X, yy, T, learner=learner, rows_per_task=80, **kw)
        assert res.info["dask"]["tasks"] == 2
        assert res.metadata["learner"] == learner.name
        assert_same(ref, res)


class _LockedLearner:
    name = "locked"
    params = {}

    def __init__(self):
        self.lock = threading.Lock()   # not picklable

    def fit(self, X, q):   # pragma: no cover - never reached
        raise AssertionError


def test_learner_errors_before_submission(no_submit):
    from numbaflip.learners import KNN
    X, y, T = _data(12, m=20)
    with pytest.raises(NumbaflipInputError, match="cannot be pickled"):
        nd.certify(no_submit, X, y, T, q=0.1, learner=_LockedLearner())
    with pytest.raises(NumbaflipInputError, match="lam=0.5 and learner='knn'"):
        nd.certify(no_submit, X, y, T, q=0.1, learner=KNN(3), lam=0.5)
    with pytest.raises(NumbaflipInputError, match="fit_intercept=False and learner"):
        nd.certify(no_submit, X, y, T, q=0.1, learner=KNN(3), fit_intercept=False)
    with pytest.raises(NumbaflipInputError, match="not a learner"):
        nd.certify(no_submit, X, y, T, q=0.1, learner=object())


# --------------------------------------------------------------------------------------------
# numbaflip certify --workers / --scheduler
# --------------------------------------------------------------------------------------------

def _cli_files(tmp_path, K=None):
    X, y, T = _data(13, n=200, m=90, K=K)
    yt = np.arange(90) % (K or 2)
    np.save(tmp_path / "train.npy", np.column_stack([X, y]))
    np.save(tmp_path / "test.npy", np.column_stack([T, yt]))
    return ["certify", f"--train={tmp_path / 'train.npy'}", f"--test={tmp_path / 'test.npy'}"]


def test_cli_workers_same_output(tmp_path, capsys):
    from numbaflip.cli import main
    files = _cli_files(tmp_path, K=3)
    opts = files + ["--q", "0.1", "--num-classes", "3", "--bounds", "kl,tight,exact"]
    assert main(opts + ["--out", str(tmp_path / "local.csv")]) == 0
    assert main(opts + ["--out", str(tmp_path / "dask.csv"), "--workers", "2",
                        "--threads-per-worker", "1"]) == 0
    assert (tmp_path / "local.csv").read_bytes() == (tmp_path / "dask.csv").read_bytes()
    knn = files + ["--q", "0.2", "--num-classes", "3", "--learner", "knn", "--k", "3",
                   "--bounds", "kl,exact"]
    assert main(knn + ["--out", str(tmp_path / "local.json")]) == 0
    assert main(knn + ["--out", str(tmp_path / "dask.json"), "--workers", "1"]) == 0
    assert (tmp_path / "local.json").read_bytes() == (tmp_path / "dask.json").read_bytes()
    assert "warning" not in capsys.readouterr().err


def test_cli_scheduler_address(tmp_path, cluster, capsys):
    from numbaflip.cli import main
    files = _cli_files(tmp_path)
    opts = files + ["--q", "0.1", "--bounds", "kl,tight"]
    assert main(opts + ["--out", str(tmp_path / "local.csv")]) == 0
    assert main(opts + ["--out", str(tmp_path / "dask.csv"),
                        "--scheduler", cluster.scheduler_address]) == 0
    assert (tmp_path / "local.csv").read_bytes() == (tmp_path / "dask.csv").read_bytes()


def test_cli_dask_option_errors(tmp_path, capsys, monkeypatch):
    import sys
    from numbaflip.cli import main
    out = str(tmp_path / "o.csv")
    base = ["certify", "--train", str(tmp_path / "missing.npy"), "--test", str(tmp_path / "missing.npy"),
            "--q", "0.1", "--out", out]
    with pytest.raises(SystemExit) as e:   # argparse: mutually exclusive
        main(base + ["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"])
    assert e.value.code == 2
    assert "not allowed with" in capsys.readouterr().err
    for extra, msg in ((["--workers", "0"], "--workers 0 is invalid"),
                       (["--threads-per-worker", "2"], "applies to --workers only")):
        assert main(base + extra) == 2
        assert msg in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "distributed", None)   # dask not installed
    for opt in (["--workers", "2"], ["--scheduler", "tcp://127.0.0.1:8786"]):
        assert main(base + opt) == 2   # before any data is read (the files do not exist)
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"numbaflip: error: {opt[0]} needs dask.distributed, which is not "
                       "installed; install it with pip install \"numbaflip[dask]\""]
    assert not os.path.exists(out)


def test_repeated_calls_same_data(client):
    """Scattered data gets keys of its own call: the same training data certified again right
    after (content-hashed keys would be shared and released under the new tasks: "lost
    dependencies")."""
    X, y, T = _data(14, m=30)
    kw = dict(q=0.2, lam=1.0, bounds=("kl", "tight"))
    ref = numbaflip.certify(X, y, T, **kw)
    for _ in range(4):
        assert_same(ref, nd.certify(client, X, y, T, **kw))


def test_bench_dask_quick(tmp_path, capsys):
    """scripts/bench.py --dask on a tiny size: both clusters timed, bytes per point measured
    (a task carries the k·8 bytes of each test row), identical certificates."""
    import json
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "scripts"))
    import bench
    out = tmp_path / "bd.md"
    assert bench.main(["--dask", "--quick", "--sizes", "a", "--qs", "0.3", "--bounds", "kl",
                       "--out", str(out)]) == 0
    assert out.read_text().startswith("# numbaflip.distributed benchmark")
    runs = json.loads((tmp_path / "bd.json").read_text())["sizes"][0]["runs"]
    assert [(r["workers"], r["threads_per_worker"]) for r in runs] == [(1, 1), (2, 1)]
    k = bench.QUICK_SIZES["a"][2]
    for r in runs:
        assert r["in_per_point"] >= 8 * k and r["out_per_point"] > 0
    assert runs[0]["digest"] == runs[1]["digest"]
