"""The exact certificate of the deterministic linear rules (math.md §5; not in the paper).

For fixed alpha the scores are linear in the labels, so the smallest number of label changes
that changes the prediction can be computed exactly, without any smoothing.

Rules (``a`` = one row of alpha, ``y`` the training labels)
---------------------------------------------------------
* Binary (labels 0/1), score ``s = aᵀy``, prediction ``1{s ≥ τ}`` (a tie ``s = τ`` is class 1)
  with ``τ = (1/2 − q Σa) / (1 − 2q)``.  q = 0 gives the plain ridge rule ``1{s ≥ 1/2}``; for
  0 < q < 1/2 this is the smoothed classifier's deployed prediction
  ``1{t* ≥ 0} = 1{E[aᵀY] ≥ 1/2}``, ``E[aᵀY] = (1 − 2q) s + q Σa``.
* K classes (labels 0..K−1), class sums ``s_c = Σ_{y_i = c} a_i``, prediction
  ``argmax_c s_c`` with the lowest index winning ties.  ``E[s_c]`` under the smoothing noise is an
  increasing affine map of ``s_c``, so this is also the deployed prediction for every q.

Radius semantics (what :func:`exact_radius` returns)
----------------------------------------------------
``r ≥ 0``: the given prediction *is* the rule's prediction, and no set of at most ``r`` label
changes alters it, while some set of ``r + 1`` changes does -- the radius is exact, not a bound.
``r = n``: no set of label changes at all alters the prediction.  ``r = −1``: the given
prediction is not the rule's prediction (only possible when the caller computed it differently,
e.g. at an exact tie).  The q that defines τ is the exact rational of its decimal string
(a float q is read through ``repr``, the same convention as :func:`numbaflip.certify`).

Algorithm
---------
Flipping binary label i moves ``s`` by ``a_i (1 − 2 y_i)``; the fewest flips that cross τ take the
largest helpful moves first.  For K classes and a rival c′ the best reduction of the gap
``s_c − s_c′`` per training point is 2a_j (y_j = c, a_j > 0), 2|a_j| (y_j = c′, a_j < 0), |a_j|
(other class, a_j ≠ 0), else 0; greedy per rival, minimum over rivals.  A rival c′ < c beats c
at gap ≤ 0 (the tie goes to the lower index), a rival c′ > c only at gap < 0.

The kernels never sort all n moves.  The fast path (*bucketed selection*, _binary_row_fast,
_mc_row_fast; math.md §5) makes one pass with plain float sums and a priori error bounds
(_sum_err), buckets the helpful moves by their float64 bit pattern (count and float sum per
bucket), finds the bucket in which the running sum can first cross (_crossing_bucket,
_rival_crossing), and sorts and walks only that bucket's members.  Rows it cannot settle
exactly go to the sorted walk (_binary_row, _mc_row): TwoSum error sums throughout, the top
moves chosen by a histogram depth (enlarged when a rival is not resolved within them) sorted
and walked.  Rivals whose total possible reduction certainly cannot close the gap are
skipped, and a rival's walk stops as soon as it cannot beat the best rival found so far.

Floating point: radii can only come out smaller, never larger
------------------------------------------------------------
In the fast path every float sum carries the a priori bound γ_{c−1}·Σ|x| (_sum_err; bucket
sums and the steps between buckets add TwoSum errors on top), and it answers only where the
resulting k_lo = k_hi.  In the sorted walk every running quantity (score minus threshold,
or class-sum gap, minus the moves taken so far) is accumulated with the error-free
transformation TwoSum, so that the exact real value equals the
float accumulator plus the sum of the exactly known rounding errors e_j.  ``Σ|e_j|`` is summed in
float and multiplied by (1 + 2⁻²⁰), which bounds the true ``Σ|e_j|`` for fewer than 2²⁸ terms
(recursive summation of non-negative numbers errs by at most γ_N ≤ 2⁻²³ relatively); n is
limited accordingly.  τ is enclosed in an interval ``[τ_lo, τ_hi]`` by directed rounding
(TwoSum / Dekker's TwoProduct detect exact operations, otherwise one ulp outward; q itself is
enclosed if its rational is not a double).  When every operation is exact -- e.g. dyadic alpha
and q -- the error bound is exactly 0 and ties are decided exactly.

For each step k of the greedy walk the kernel records

* ``k_lo``: the first k at which crossing is *possible* within the error bound, and
* ``k_hi``: the first k at which crossing is *certain*,

so ``k_lo ≤ k_true ≤ k_hi``.  (Checking the prediction at k = 0 is the same test: k_lo = 0 means
the given prediction might not be the rule's.)  Where ``k_lo = k_hi`` the result is exact.  The
rare rows where they differ -- the score is within ~n·2⁻⁵³·Σ|a| of the threshold at the crossing
step -- are recomputed in exact rational arithmetic in Python (every double is an integer
multiple of 2⁻¹⁰⁷⁴).  So the reported radius is exactly ``k_true − 1``; and if the exact pass were
ever skipped, ``k_lo − 1`` would still be a sound (never larger) radius.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


#: "No crossing" sentinel for k (larger than any n).
NOCROSS = np.int64(1) << np.int64(62)
#: Multiplier turning a float sum of |rounding errors| into a rigorous bound (n < 2**27).
_ERRF = 1.0 + 2.0 ** -20
_MAX_N = 1 << 27
#: |alpha| above this could overflow a sum of 3n terms; rejected at the boundary.
_MAX_ABS = 2.0 ** 960
#: Histogram of move sizes used to choose how many moves to sort: _NB buckets, 2**_MB per
#: binade (bucket = leading exponent and mantissa bits relative to the largest move).
_MB = 3
_SH = 52 - _MB
_NB = 256
#: Relative slack when choosing the histogram depth (speed only, never soundness).
_SLACK = 1.0 + 2.0 ** -10

_STATUS_OK = 0
_STATUS_NONFINITE = 1


# ============================================================================================
# Error-free transformations and directed rounding (no FMA needed)
# ============================================================================================

@njit(cache=True)
def _two_sum(a, b):
    """s + e == a + b exactly (Knuth), s = fl(a + b)."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


@njit(cache=True)
def _add_up(a, b):
    s, e = _two_sum(a, b)
    if e > 0.0:
        return np.nextafter(s, np.inf)
    return s


@njit(cache=True)
def _add_down(a, b):
    s, e = _two_sum(a, b)
    if e < 0.0:
        return np.nextafter(s, -np.inf)
    return s


@njit(cache=True)
def _two_prod(a, b):
    """(p, e, ok): p = fl(a b) and, when ok, p + e == a b exactly (Dekker, no FMA)."""
    p = a * b
    if a == 0.0 or b == 0.0:
        return p, 0.0, True
    if not (abs(a) < 2.0 ** 995 and abs(b) < 2.0 ** 995 and abs(p) > 2.0 ** -969):
        return p, 0.0, False
    c = 134217729.0 * a
    ah = c - (c - a)
    al = a - ah
    c = 134217729.0 * b
    bh = c - (c - b)
    bl = b - bh
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e, True


@njit(cache=True)
def _mul_up(a, b):
    p, e, ok = _two_prod(a, b)
    if ok and e <= 0.0:
        return p
    return np.nextafter(p, np.inf)


@njit(cache=True)
def _mul_down(a, b):
    p, e, ok = _two_prod(a, b)
    if ok and e >= 0.0:
        return p
    return np.nextafter(p, -np.inf)


@njit(cache=True)
def _div_exact(a, b):
    """(r, exact): r = fl(a / b), exact iff r * b == a exactly (b > 0)."""
    r = a / b
    p, e, ok = _two_prod(r, b)
    return r, (ok and p == a and e == 0.0)


@njit(cache=True)
def _div_up(a, b):
    r, ex = _div_exact(a, b)
    return r if ex else np.nextafter(r, np.inf)


@njit(cache=True)
def _div_down(a, b):
    r, ex = _div_exact(a, b)
    return r if ex else np.nextafter(r, -np.inf)


@njit(cache=True)
def _tau_bounds(a, q_lo, q_hi):
    """Interval [τ_lo, τ_hi] containing τ = (1/2 − q Σa)/(1 − 2q) for every q in [q_lo, q_hi]
    (0 ≤ q_lo ≤ q_hi < 1/2).  Collapses to a point when every operation is exact."""
    if q_hi == 0.0:
        return 0.5, 0.5
    S = 0.0
    ea = 0.0
    for j in range(a.shape[0]):
        S, e = _two_sum(S, a[j])
        ea += abs(e)
    E = ea * _ERRF
    return _tau_from_sum(_add_down(S, -E), _add_up(S, E), q_lo, q_hi)


@njit(cache=True)
def _tau_from_sum(lo, hi, q_lo, q_hi):
    """[τ_lo, τ_hi] ∋ (1/2 − q σ)/(1 − 2q) for every σ in [lo, hi] and q in [q_lo, q_hi]
    (directed rounding throughout)."""
    if q_hi == 0.0:
        return 0.5, 0.5
    # P = q Σa over the box [q_lo, q_hi] × [lo, hi]
    p1 = _mul_down(q_lo, lo)
    p2 = _mul_down(q_lo, hi)
    p3 = _mul_down(q_hi, lo)
    p4 = _mul_down(q_hi, hi)
    P_lo = min(min(p1, p2), min(p3, p4))
    p1 = _mul_up(q_lo, lo)
    p2 = _mul_up(q_lo, hi)
    p3 = _mul_up(q_hi, lo)
    p4 = _mul_up(q_hi, hi)
    P_hi = max(max(p1, p2), max(p3, p4))
    N_lo = _add_down(0.5, -P_hi)
    N_hi = _add_up(0.5, -P_lo)
    D_lo = _add_down(1.0, -2.0 * q_hi)   # 2q is exact
    D_hi = _add_up(1.0, -2.0 * q_lo)
    if N_lo >= 0.0:
        t_lo = _div_down(N_lo, D_hi)
    else:
        t_lo = _div_down(N_lo, D_lo)
    if N_hi >= 0.0:
        t_hi = _div_up(N_hi, D_lo)
    else:
        t_hi = _div_up(N_hi, D_hi)
    return t_lo, t_hi


# ============================================================================================
# Selection of the top moves and the greedy walk
# ============================================================================================

#: Entries of the quicksort stack of _sort_desc (two per pending range; depth ≤ 2 log2 n).
_STACK = 128


@njit(cache=True)
def _sort_desc(sk, perm, lo, hi, stack):
    """Sort sk[lo:hi] descending, permuting perm[lo:hi] alongside (iterative quicksort with
    3-way partition, insertion sort below 16 elements; ``stack`` is int64 scratch of _STACK
    entries).  Hand-written instead of np.argsort: in place, contiguous, and cheaper to
    compile."""
    stack[0] = lo
    stack[1] = hi
    sp = 2
    while sp > 0:
        sp -= 2
        l = stack[sp]
        h = stack[sp + 1]
        while h - l > 16:
            mid = (l + h) >> 1
            x = sk[l]
            yv = sk[mid]
            z = sk[h - 1]
            if x > yv:
                x, yv = yv, x
            if yv > z:
                yv = z
            pivot = x if x > yv else yv      # median of three
            lt = l
            i = l
            gt = h - 1
            while i <= gt:
                v = sk[i]
                if v > pivot:
                    sk[i] = sk[lt]
                    sk[lt] = v
                    t = perm[lt]
                    perm[lt] = perm[i]
                    perm[i] = t
                    lt += 1
                    i += 1
                elif v < pivot:
                    sk[i] = sk[gt]
                    sk[gt] = v
                    t = perm[gt]
                    perm[gt] = perm[i]
                    perm[i] = t
                    gt -= 1
                else:
                    i += 1
            # push the larger side, loop on the smaller: stack depth ≤ 2 log2(n)
            if lt - l < h - (gt + 1):
                stack[sp] = gt + 1
                stack[sp + 1] = h
                sp += 2
                h = lt
            else:
                stack[sp] = l
                stack[sp + 1] = lt
                sp += 2
                l = gt + 1
        for i in range(l + 1, h):
            v = sk[i]
            t = perm[i]
            j = i - 1
            while j >= l and sk[j] < v:
                sk[j + 1] = sk[j]
                perm[j + 1] = perm[j]
                j -= 1
            sk[j + 1] = v
            perm[j + 1] = t


@njit(cache=True)
def _top_bits(kmax, buf):
    """Bucket reference of the largest key (kmax > 0); ``buf`` is float64 scratch of length 1
    (its int64 view gives the IEEE bits)."""
    buf[0] = kmax
    return buf.view(np.int64)[0] >> _SH


@njit(cache=True)
def _bucket(bits, top):
    """Histogram bucket of a positive key from its IEEE bits: 0 for the largest binade-eighth,
    growing downwards, everything 32 binades below the maximum in the last bucket."""
    d = top - (bits >> _SH)
    return d if d < _NB - 1 else _NB - 1


@njit(cache=True)
def _gather(keys, N, top, bmax, perm, sk, stack):
    """perm[:cnt] = entries whose bucket is ≤ bmax, sorted by descending key (sk[:cnt] holds
    their keys); returns cnt (0 when N = 0)."""
    kb = keys.view(np.int64)
    cnt = 0
    for t in range(N):
        if _bucket(kb[t], top) <= bmax:
            perm[cnt] = t
            sk[cnt] = keys[t]
            cnt += 1
    _sort_desc(sk, perm, 0, cnt, stack)
    return cnt


@njit(cache=True)
def _deeper(bmax):
    """The next histogram depth when the top moves did not resolve every walk."""
    return min(_NB - 1, bmax + 8)


@njit(cache=True)
def _applies(tg, cp):
    # tag -1: every rival; tag >= 0: only rival == tag; tag <= -2: every rival but -(tag+2)
    if tg == -1:
        return True
    if tg >= 0:
        return tg == cp
    return -(tg + 2) != cp


@njit(cache=True)
def _possible(S, E, strict):
    return S < E if strict else S <= E


@njit(cache=True)
def _certain(S, F, strict):
    return S < -F if strict else S <= -F


@njit(cache=True)
def _out_of_reach(S, E, tot, strict):
    """True when even all moves together (float sum ``tot``) certainly cannot cross from
    Z = S ± E; then k_true = ∞ and the k = 0 test certainly fails as well."""
    lhs = _add_down(_add_down(S, -E), -(tot * _ERRF))
    return (lhs >= 0.0) if strict else (lhs > 0.0)


@njit(cache=True)
def _walk(keys, tag, order, ntop, complete, cp, S0, ea0, W, strict, limit):
    """Greedy walk for one rival over the sorted top moves.

    The quantity Z (gap, or score minus threshold) starts at S0 (error sum ea0, threshold
    width W) and every applicable move subtracts its key.  Crossing means Z < 0 (strict) or
    Z ≤ 0.  Returns (k_lo, k_hi, depth, resolved): first k where crossing is possible / certain
    (NOCROSS if none), how many sorted entries were looked at, and whether the answer is final
    (False when the top list ran out before the walk could stop).
    """
    S = S0
    ea = ea0
    klo = NOCROSS
    E = ea * _ERRF
    F = _add_up(E, W)
    if _possible(S, E, strict):
        klo = 0
    if _certain(S, F, strict):
        return klo, np.int64(0), np.int64(0), True
    k = np.int64(0)
    for p in range(ntop):
        e = order[p]
        if not _applies(tag[e], cp):
            continue
        if k + 1 >= limit:
            return klo, NOCROSS, np.int64(p), True
        S, err = _two_sum(S, -keys[e])
        ea += abs(err)
        k += 1
        E = ea * _ERRF
        if klo == NOCROSS and _possible(S, E, strict):
            klo = k
        F = _add_up(E, W)
        if _certain(S, F, strict):
            return klo, k, np.int64(p + 1), True
    return klo, NOCROSS, np.int64(ntop), complete


@njit(cache=True)
def _chunk(ch, b, nch):
    """Rows [lo, hi) of chunk ch when b rows are split into nch near-equal chunks."""
    return (ch * b) // nch, ((ch + 1) * b) // nch


# ============================================================================================
# Binary rule
# ============================================================================================

@njit(cache=True)
def _binary_moves(a, y, strict, S, keys, tag):
    """Score pass of one binary row: Z = S + sg·s with its TwoSum error sum, and the helpful
    moves (keys[:N] = |a_i|, tag -1).  Returns (S, ea, N, tot, kmax, bad)."""
    sg = 1.0 if strict else -1.0
    flip = 0 if strict else 1
    ea = 0.0
    N = 0
    tot = 0.0
    kmax = 0.0
    bad = False
    for i in range(a.shape[0]):
        # branch-free: random labels and signs would defeat the branch predictor
        v = a[i]
        av = abs(v)
        bad |= not (av <= _MAX_ABS)
        yi = y[i]
        S, e = _two_sum(S, (sg * v) if yi == 1 else 0.0)   # adding 0.0 is exact
        ea += abs(e)
        # pred 1: helpful iff (y=1, a>0) or (y=0, a<0); pred 0: the opposite signs
        h = ((yi ^ (1 if v < 0.0 else 0) ^ flip) == 1) and v != 0.0
        keys[N] = av
        tag[N] = -1
        N += 1 if h else 0
        avh = av if h else 0.0
        tot += avh
        kmax = max(kmax, avh)
    return S, ea, N, tot, kmax, bad


@njit(cache=True)
def _binary_depth(keys, N, top, S, E, hs):
    """Histogram depth (speed only): the first bucket at which the cumulative sum of move
    sizes exceeds the gap, else the last bucket."""
    kb = keys.view(np.int64)
    for t in range(_NB):
        hs[t] = 0.0
    for t in range(N):
        hs[_bucket(kb[t], top)] += keys[t]
    cum = 0.0
    target = S * _SLACK + E
    for t in range(_NB):
        cum += hs[t]
        if cum > target:
            return t
    return _NB - 1


@njit(cache=True)
def _binary_row(a, y, pred, q_lo, q_hi, keys, tag, perm, sk, hs, stack, buf):
    """(k_lo, k_hi, status) for one binary test point."""
    t_lo, t_hi = _tau_bounds(a, q_lo, q_hi)
    W = _add_up(t_hi, -t_lo)
    # pred 1: Z = s − τ_hi, cross at Z < 0; pred 0: Z = τ_lo − s, cross at Z ≤ 0.
    strict = pred == 1
    S, ea, N, tot, kmax, bad = _binary_moves(a, y, strict, -t_hi if strict else t_lo,
                                             keys, tag)
    if bad:
        return NOCROSS, NOCROSS, _STATUS_NONFINITE
    E = ea * _ERRF
    if _out_of_reach(S, E, tot, strict):
        return NOCROSS, NOCROSS, _STATUS_OK
    bmax = _NB - 1
    top = np.int64(0)
    if N > 0:
        top = _top_bits(kmax, buf)
        bmax = _binary_depth(keys, N, top, S, E, hs)
    while True:
        ntop = _gather(keys, N, top, bmax, perm, sk, stack)
        klo, khi, _, resolved = _walk(keys, tag, perm, ntop, ntop == N, 0, S, ea, W, strict,
                                      NOCROSS)
        if resolved:
            return klo, khi, _STATUS_OK
        bmax = _deeper(bmax)


# --------------------------------------------------------------------------------------------
# Bucketed selection (the fast path; _binary_row above is its fallback)
# --------------------------------------------------------------------------------------------

#: u = 2⁻⁵³ and the factor that makes _sum_err rigorous after its own rounding.
_U = 2.0 ** -53
_SUMF = 1.0 + 2.0 ** -18
#: The smallest subnormal: covers an underflowing product in _sum_err.
_TINY = 5e-324


@njit(cache=True)
def _sum_err(c, sabs):
    """Rigorous bound on |fl(Σx) − Σx| for a recursive float sum of c terms whose float sum of
    |x| is ``sabs`` (c < 2²⁷): γ_{c−1} Σ|x| (Higham, Thm 4.4) with Σ|x| ≤ sabs (1 + γ), and
    γ_{c−1} ≤ (c − 1) u (1 + 2⁻²⁵); the factor 1 + 2⁻¹⁸ covers the two roundings below and
    _TINY an underflow.  Exact additions are not detected: the bound is 0 only for c ≤ 1."""
    if c <= 1:
        return 0.0
    return sabs * (c * _U) * _SUMF + _TINY


@njit(cache=True)
def _binary_pass(a, y, strict, keys):
    """One pass over a binary row: float sums σ = Σa, s = aᵀy and Σ|a| (error bounds from
    _sum_err), and the helpful moves keys[:N] = |a_i| (see _binary_moves).
    Returns (σ, s, Σ|a|, N, kmax, bad)."""
    flip = 0 if strict else 1
    sa = 0.0
    ss = 0.0
    sabs = 0.0
    N = 0
    kmax = 0.0
    bad = False
    for i in range(a.shape[0]):
        v = a[i]
        av = abs(v)
        bad |= not (av <= _MAX_ABS)
        yi = y[i]
        sa += v
        ss += v if yi == 1 else 0.0
        sabs += av
        h = ((yi ^ (1 if v < 0.0 else 0) ^ flip) == 1) and v != 0.0
        keys[N] = av
        N += 1 if h else 0
        kmax = max(kmax, av if h else 0.0)
    return sa, ss, sabs, N, kmax, bad


@njit(cache=True)
def _bucket_hist(keys, N, top, hs, hc):
    """Per bucket (of _bucket, relative to ``top``): the float sum hs and the count hc of the
    keys."""
    for t in range(_NB):
        hs[t] = 0.0
        hc[t] = 0
    kb = keys.view(np.int64)
    for t in range(N):
        bk = _bucket(kb[t], top)
        hs[bk] += keys[t]
        hc[bk] += 1


@njit(cache=True)
def _crossing_bucket(hs, hc, S, ea, strict):
    """The first bucket after which a crossing is possible, from the bucket sums alone.

    Subtracts the buckets' sums from Z = S (TwoSum, errors into ``ea``, plus each bucket
    sum's _sum_err bound: the keys are non-negative, so Σ|x| is the sum itself) and stops at
    the first bucket whose end state could have crossed.  Every bucket before it certainly did
    not, and the true Z only decreases along the greedy order, so no k up to their count can
    cross.  Returns (bucket or −1 if no crossing is possible at all, Z and ``ea`` before that
    bucket, moves before it)."""
    k = np.int64(0)
    for t in range(_NB):
        c = hc[t]
        if c == 0:
            continue
        S1, e = _two_sum(S, -hs[t])
        ea1 = ea + abs(e) + _sum_err(c, hs[t])
        if _possible(S1, ea1 * _ERRF, strict):
            return t, S, ea, k
        S = S1
        ea = ea1
        k += c
    return -1, S, ea, k


@njit(cache=True)
def _gather_bucket(keys, N, top, bk, sk, perm, stack):
    """sk[:cnt] = the keys of bucket ``bk`` in descending order, perm[:cnt] their positions in
    ``keys``; returns cnt."""
    kb = keys.view(np.int64)
    cnt = 0
    for t in range(N):
        if _bucket(kb[t], top) == bk:
            perm[cnt] = t
            sk[cnt] = keys[t]
            cnt += 1
    _sort_desc(sk, perm, 0, cnt, stack)
    return cnt


@njit(cache=True)
def _walk_segment(sk, perm, tag, lo, hi, cp, k0, S, ea, W, strict, limit):
    """_walk over the sorted keys sk[lo:hi] (descending), starting after k0 moves at Z = S with
    error sum ``ea``; only the entries whose tag (``tag[perm[p]]``) applies to rival cp count
    (cp < 0: every entry, ``tag`` unused).  Returns (k_lo, k_hi, resolved): NOCROSS where not
    reached; resolved is False when the segment ran out before a certain crossing or the
    ``limit`` (k ≥ limit needs no answer)."""
    klo = NOCROSS
    E = ea * _ERRF
    if _possible(S, E, strict):
        klo = k0
    if _certain(S, _add_up(E, W), strict):
        return klo, k0, True
    k = k0
    for p in range(lo, hi):
        if cp >= 0 and not _applies(tag[perm[p]], cp):
            continue
        if k + 1 >= limit:
            return klo, NOCROSS, True
        S, err = _two_sum(S, -sk[p])
        ea += abs(err)
        k += 1
        E = ea * _ERRF
        if klo == NOCROSS and _possible(S, E, strict):
            klo = k
        if _certain(S, _add_up(E, W), strict):
            return klo, k, True
    return klo, NOCROSS, False


@njit(cache=True)
def _binary_start(sa, ss, sabs, n, q_lo, q_hi, strict):
    """τ's enclosure from σ ± _sum_err(n, Σ|a|), its width W, and the walk's start
    Z = s − τ_hi (pred 1, cross at Z < 0) or τ_lo − s (pred 0, cross at Z ≤ 0) with its error
    sum (the a priori bound of s, which has at most n terms with Σ|·| ≤ Σ|a|, plus TwoSum's).
    Returns (S, ea, W, τ_lo, τ_hi)."""
    err = _sum_err(n, sabs)
    t_lo, t_hi = _tau_from_sum(_add_down(sa, -err), _add_up(sa, err), q_lo, q_hi)
    W = _add_up(t_hi, -t_lo)
    S, e = _two_sum(ss, -t_hi) if strict else _two_sum(t_lo, -ss)
    return S, err + abs(e), W, t_lo, t_hi


@njit(cache=True)
def _binary_select(keys, N, kmax, S, ea, W, strict, perm, sk, hs, hc, stack, buf):
    """The selection after the pass (k = 0 already known not to cross): bucket histogram,
    crossing bucket, sort and walk of its members only.  Returns (k_lo, k_hi, resolved)."""
    if N == 0:
        return NOCROSS, NOCROSS, True
    top = _top_bits(kmax, buf)
    _bucket_hist(keys, N, top, hs, hc)
    bk, S, ea, k0 = _crossing_bucket(hs, hc, S, ea, strict)
    if bk < 0:
        return NOCROSS, NOCROSS, True
    cnt = _gather_bucket(keys, N, top, bk, sk, perm, stack)
    klo, khi, done = _walk_segment(sk, perm, perm, 0, cnt, -1, k0, S, ea, W, strict, NOCROSS)
    return klo, khi, done and klo == khi


@njit(cache=True)
def _binary_row_fast(a, y, pred, q_lo, q_hi, keys, perm, sk, hs, hc, stack, buf):
    """(k_lo, k_hi, resolved, status) for one binary test point by bucketed selection.

    One pass gives σ, s and the moves with a priori error bounds; the bucket histogram of the
    moves locates the crossing bucket (_crossing_bucket), and only that bucket's members are
    sorted and walked.  ``resolved`` is False when the answer is not exact (k_lo ≠ k_hi, or
    no certain crossing inside the crossing bucket, or k = 0 possible but not certain): the
    caller then runs _binary_row, whose error sums are exact (TwoSum everywhere)."""
    strict = pred == 1
    sa, ss, sabs, N, kmax, bad = _binary_pass(a, y, strict, keys)
    if bad:
        return NOCROSS, NOCROSS, True, _STATUS_NONFINITE
    S, ea, W, _, _ = _binary_start(sa, ss, sabs, a.shape[0], q_lo, q_hi, strict)
    if _possible(S, ea * _ERRF, strict):
        if _certain(S, _add_up(ea * _ERRF, W), strict):
            return np.int64(0), np.int64(0), True, _STATUS_OK
        return NOCROSS, NOCROSS, False, _STATUS_OK
    klo, khi, ok = _binary_select(keys, N, kmax, S, ea, W, strict, perm, sk, hs, hc, stack,
                                  buf)
    return klo, khi, ok, _STATUS_OK


@njit(cache=True)
def _binary_pass_both(a, y, keys1, keys0):
    """:func:`_binary_pass` for both predictions at once (the prediction is not known yet):
    keys1[:N1] the helpful moves if the prediction is 1, keys0[:N0] if it is 0.
    Returns (σ, s, Σ|a|, N1, kmax1, N0, kmax0, bad)."""
    sa = 0.0
    ss = 0.0
    sabs = 0.0
    N1 = 0
    N0 = 0
    km1 = 0.0
    km0 = 0.0
    bad = False
    for i in range(a.shape[0]):
        v = a[i]
        av = abs(v)
        bad |= not (av <= _MAX_ABS)
        yi = y[i]
        sa += v
        ss += v if yi == 1 else 0.0
        sabs += av
        # integer 0/1 flags combined bitwise: `and` would compile to unpredictable branches
        g = yi ^ (1 if v < 0.0 else 0)          # 1: helpful if the prediction is 1
        nz = 1 if v != 0.0 else 0
        keys1[N1] = av
        keys0[N0] = av
        N1 += g & nz
        N0 += (1 - g) & nz
        km1 = max(km1, av if g == 1 else 0.0)
        km0 = max(km0, 0.0 if g == 1 else av)
    return sa, ss, sabs, N1, km1, N0, km0, bad


@njit(cache=True)
def _binary_decide_row_fast(a, y, q_lo, q_hi, keys, keys0, perm, sk, hs, hc, stack, buf):
    """(pred, k_lo, k_hi, resolved, status): the rule's prediction 1{s ≥ τ} decided from the
    same pass (pred −1 when the a priori bounds cannot decide it: the caller decides it
    exactly), then the selection of :func:`_binary_row_fast` for that prediction; the moves
    for prediction 1 are left in ``keys``, for 0 in ``keys0``."""
    sa, ss, sabs, N1, km1, N0, km0, bad = _binary_pass_both(a, y, keys, keys0)
    if bad:
        return np.int64(-1), NOCROSS, NOCROSS, True, _STATUS_NONFINITE
    S, ea, W, t_lo, t_hi = _binary_start(sa, ss, sabs, a.shape[0], q_lo, q_hi, True)
    E = ea * _ERRF
    if S >= E:                  # s − τ_hi ≥ 0 certainly: prediction 1, and k = 0 cannot cross
        klo, khi, ok = _binary_select(keys, N1, km1, S, ea, W, True, perm, sk, hs, hc, stack,
                                      buf)
        return np.int64(1), klo, khi, ok, _STATUS_OK
    S, ea, W, _, _ = _binary_start(sa, ss, sabs, a.shape[0], q_lo, q_hi, False)
    E = ea * _ERRF
    if S > E:                   # τ_lo − s > 0 certainly: prediction 0, k = 0 cannot cross
        klo, khi, ok = _binary_select(keys0, N0, km0, S, ea, W, False, perm, sk, hs, hc,
                                      stack, buf)
        return np.int64(0), klo, khi, ok, _STATUS_OK
    return np.int64(-1), NOCROSS, NOCROSS, False, _STATUS_OK


@njit(cache=True)
def _binary_scratch(n):
    """Per-chunk scratch of the binary exact drivers (dense and sparse rows of length n)."""
    return (np.empty(n), np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n),
            np.empty(_NB), np.empty(_NB, np.int64), np.empty(_STACK, np.int64), np.empty(1))


@njit(cache=True)
def _mc_scratch(n, K):
    """Per-chunk scratch of the K-class exact drivers (rows of length n, K class slots)."""
    return (np.empty(2 * n), np.empty(2 * n, np.int64), np.empty(2 * n, np.int64),
            np.empty(2 * n, np.int64), np.empty(2 * n), np.empty(K), np.empty(K), np.empty(K),
            np.empty(K), np.empty(K, np.int64), np.empty(K), np.empty(K),
            np.empty((1 + 2 * K, _NB), np.int64), np.empty((1 + 2 * K, _NB)),
            np.empty(_STACK, np.int64), np.empty(1), np.empty(K, np.int64), np.empty(K),
            np.empty(K), np.empty(K, np.int64), np.empty(_NB, np.int64))


@njit(parallel=True, cache=True)
def _binary_driver(A, Y, pred, q_lo, q_hi, nch, klo_out, khi_out, status_out):
    b, n = A.shape
    nch = min(b, nch)
    for ch in prange(nch):
        lo, hi = _chunk(ch, b, nch)
        # per-chunk scratch, reused by every row of the chunk
        keys, tag, perm, sk, hs, hc, stack, buf = _binary_scratch(n)
        for r in range(lo, hi):
            yr = Y[r % Y.shape[0]]     # one label row for all, or one per row (sparse)
            klo, khi, ok, st = _binary_row_fast(A[r], yr, pred[r], q_lo, q_hi, keys, perm, sk,
                                                hs, hc, stack, buf)
            if not ok:      # not exact from the a priori bounds: exact error sums
                klo, khi, st = _binary_row(A[r], yr, pred[r], q_lo, q_hi, keys, tag, perm, sk,
                                           hs, stack, buf)
            klo_out[r] = klo
            khi_out[r] = khi
            status_out[r] = st


@njit(parallel=True, cache=True)
def _binary_decide_driver(A, Y, q_lo, q_hi, nch, pred_out, klo_out, khi_out, status_out):
    """:func:`_binary_driver` without a given prediction (the exact-only path of certify):
    pred_out[r] = the rule's prediction, or −1 where the float pass cannot decide it (the
    caller decides it exactly and runs _binary_driver on those rows)."""
    b, n = A.shape
    nch = min(b, nch)
    for ch in prange(nch):
        lo, hi = _chunk(ch, b, nch)
        keys, tag, perm, sk, hs, hc, stack, buf = _binary_scratch(n)
        keys0 = np.empty(n)
        for r in range(lo, hi):
            yr = Y[r % Y.shape[0]]
            p, klo, khi, ok, st = _binary_decide_row_fast(A[r], yr, q_lo, q_hi, keys, keys0,
                                                          perm, sk, hs, hc, stack, buf)
            if p >= 0 and not ok:
                klo, khi, st = _binary_row(A[r], yr, p, q_lo, q_hi, keys, tag, perm, sk, hs,
                                           stack, buf)
            pred_out[r] = p
            klo_out[r] = klo
            khi_out[r] = khi
            status_out[r] = st


# ============================================================================================
# K-class rule
# ============================================================================================

@njit(cache=True)
def _mc_entries(v, av, yj, c, K, N, keys, tag, grp):
    """Write the two candidate move entries of one training point (a_j = v, |v| = av, class
    yj; prediction c) at keys[N], keys[N + 1] and advance N past the helpful ones.
    Entry 1: class c with a > 0 (2a, every rival, group 0) or another class with a ≠ 0 (|a|,
    every rival but y_j, group 1 + y_j); entry 2: another class with a < 0 (2|a|, rival y_j
    only, group 1 + K + y_j).  Branch-light: both are written, N advances conditionally.
    Returns (N, size of entry 1 or 0, size of entry 2 or 0)."""
    isc = yj == c
    h1 = (v > 0.0) if isc else (v != 0.0)
    k1 = 2.0 * av if isc else av
    keys[N] = k1
    tag[N] = -1 if isc else -(2 + yj)
    grp[N] = 0 if isc else 1 + yj
    N += 1 if h1 else 0
    h2 = (not isc) and v < 0.0
    keys[N] = 2.0 * av
    tag[N] = yj
    grp[N] = 1 + K + yj
    N += 1 if h2 else 0
    return N, (k1 if h1 else 0.0), (2.0 * av if h2 else 0.0)


@njit(cache=True)
def _mc_moves(a, y, c, K, keys, tag, grp, Sc, eac, G, P):
    """Class-sum pass of one K-class row with prediction c: Sc[k] = s_k with TwoSum error sums
    eac[k], and the moves keys[:N] with their tags and histogram groups (_mc_entries).
    Per-rival totals of the move sizes: ``tall`` (class-c moves, every rival), G[y] (|a_j|
    moves of class-y points, every rival but y), P[y] (2|a_j| moves of class-y points, rival
    y only).  Returns (N, tall, kmax, bad)."""
    for k in range(K):
        Sc[k] = 0.0
        eac[k] = 0.0
        G[k] = 0.0
        P[k] = 0.0
    tall = 0.0
    kmax = 0.0
    N = 0
    bad = False
    for j in range(a.shape[0]):
        v = a[j]
        av = abs(v)
        bad |= not (av <= _MAX_ABS)
        yj = y[j]
        s, e = _two_sum(Sc[yj], v)
        Sc[yj] = s
        eac[yj] += abs(e)
        N, k1h, k2h = _mc_entries(v, av, yj, c, K, N, keys, tag, grp)
        kmax = max(kmax, max(k1h, k2h))
        if yj == c:
            tall += k1h
        else:
            G[yj] += k1h
        P[yj] += k2h
    return N, tall, kmax, bad


@njit(cache=True)
def _mc_pass(a, y, c, K, keys, tag, grp, Sc, eac):
    """The lean pass of the fast path: plain float class sums Sc, every eac[k] the a priori
    bound _sum_err(n, Σ|a|) (valid for each class sum: its terms are among the n), and the
    moves as in _mc_moves; the per-rival totals come later from the histograms (_mc_totals).
    Returns (N, kmax, bad)."""
    for k in range(K):
        Sc[k] = 0.0
    sabs = 0.0
    kmax = 0.0
    N = 0
    bad = False
    for j in range(a.shape[0]):
        v = a[j]
        av = abs(v)
        bad |= not (av <= _MAX_ABS)
        yj = y[j]
        Sc[yj] += v
        sabs += av
        N, k1h, k2h = _mc_entries(v, av, yj, c, K, N, keys, tag, grp)
        kmax = max(kmax, max(k1h, k2h))
    err = _sum_err(a.shape[0], sabs)
    for k in range(K):
        eac[k] = err
    return N, kmax, bad


@njit(cache=True)
def _mc_totals(hs, K, G, P):
    """``tall``, G and P of _mc_moves from the group histograms (float sums of the bucket
    sums: only used through _out_of_reach, which allows 2⁻²⁰ relative error for < 2²⁷
    non-negative terms in any summation order)."""
    tall = 0.0
    for bk in range(_NB):
        tall += hs[0, bk]
    for k in range(K):
        g = 0.0
        p = 0.0
        for bk in range(_NB):
            g += hs[1 + k, bk]
            p += hs[1 + K + k, bk]
        G[k] = g
        P[k] = p
    return tall


@njit(cache=True)
def _mc_rivals(c, K, Sc, eac, G, P, tall, rivals, S0s, ea0s):
    """Rivals that can possibly cross, ordered by gap (insertion sort, stable): rivals[:nr]
    with their gaps S0s (s_c − s_c′ rounded) and error sums ea0s.  A rival is skipped only
    when its total possible reduction certainly cannot close the gap.  Returns nr."""
    nr = 0
    for cp in range(K):
        if cp == c:
            continue
        S0, e = _two_sum(Sc[c], -Sc[cp])
        ea0 = eac[c] + eac[cp] + abs(e)
        tsum = tall + P[cp]
        for k in range(K):
            if k != c and k != cp:
                tsum += G[k]
        if _out_of_reach(S0, ea0 * _ERRF, tsum, cp > c):
            continue
        pos = nr
        while pos > 0 and S0s[pos - 1] > S0:
            rivals[pos] = rivals[pos - 1]
            S0s[pos] = S0s[pos - 1]
            ea0s[pos] = ea0s[pos - 1]
            pos -= 1
        rivals[pos] = cp
        S0s[pos] = S0
        ea0s[pos] = ea0
        nr += 1
    return nr


@njit(cache=True)
def _rival_scan(hc, hs, K, cp, target, kcap):
    """Walk the histogram buckets of the moves that apply to rival cp, accumulating their
    sizes and counts.  Returns (bucket, count, hit): the first bucket where the size sum
    exceeds ``target`` or the count exceeds ``kcap`` (hit), else (_NB − 1, total, False)."""
    cs = 0.0
    cc = np.int64(0)
    for bk in range(_NB):
        ssum = hs[0, bk] + hs[1 + K + cp, bk]
        csum = hc[0, bk] + hc[1 + K + cp, bk]
        for g in range(K):
            if g != cp:
                ssum += hs[1 + g, bk]
                csum += hc[1 + g, bk]
        cs += ssum
        cc += csum
        if cs > target or cc > kcap:
            return bk, cc, True
    return _NB - 1, cc, False


@njit(cache=True)
def _mc_hist(keys, grp, N, K, top, hc, hs):
    """Per histogram group g and bucket: the count hc[g] and float sum hs[g] of the keys."""
    for g in range(1 + 2 * K):
        for t in range(_NB):
            hc[g, t] = 0
            hs[g, t] = 0.0
    kb = keys.view(np.int64)
    for t in range(N):
        bk = _bucket(kb[t], top)
        hc[grp[t], bk] += 1
        hs[grp[t], bk] += keys[t]


@njit(cache=True)
def _mc_depth(keys, grp, N, K, top, nr, rivals, S0s, ea0s, hc, hs):
    """Depth from per-group histograms (speed only): deep enough that every rival either
    reaches its gap or has more applicable moves than the best rival is estimated to need."""
    _mc_hist(keys, grp, N, K, top, hc, hs)
    # kbest: fewest moves any rival is estimated to need
    kbest = NOCROSS
    for t in range(nr):
        target = S0s[t] * _SLACK + ea0s[t] * _ERRF
        _, cc, hit = _rival_scan(hc, hs, K, rivals[t], target, NOCROSS)
        if hit:
            kbest = min(kbest, cc)
    deepest = 0
    for t in range(nr):
        target = S0s[t] * _SLACK + ea0s[t] * _ERRF
        bstop, _, _ = _rival_scan(hc, hs, K, rivals[t], target, kbest)
        deepest = max(deepest, bstop)
    return deepest


@njit(cache=True)
def _mc_walk_rivals(keys, tag, perm, ntop, complete, c, nr, rivals, S0s, ea0s):
    """Greedy walk of every candidate rival over the sorted top moves; a rival's walk stops
    once it cannot beat the best rival so far.  Returns (k_lo, k_hi, rival, resolved)."""
    best_lo = NOCROSS
    best_hi = NOCROSS
    best_r = np.int64(-1)
    for t in range(nr):
        cp = rivals[t]
        klo, khi, _, resolved = _walk(keys, tag, perm, ntop, complete, cp, S0s[t], ea0s[t],
                                      0.0, cp > c, best_hi)
        if not resolved:
            return best_lo, best_hi, best_r, False
        if klo < best_lo:
            best_lo = klo
        if khi < best_hi:
            best_hi = khi
            best_r = cp
    return best_lo, best_hi, best_r, True


@njit(cache=True)
def _mc_row(a, y, c, K, keys, tag, grp, perm, sk, Sc, eac, G, P, rivals, S0s, ea0s, hc, hs,
            stack, buf):
    """(k_lo, k_hi, rival, status) for one K-class test point with prediction c.

    Moves carry a tag (which rivals they apply to) and a histogram group: 0 for points of
    class c (every rival), 1 + y for the |a_j| move of a point of class y (every rival but y),
    1 + K + y for its 2|a_j| move (rival y only)."""
    N, tall, kmax, bad = _mc_moves(a, y, c, K, keys, tag, grp, Sc, eac, G, P)
    if bad:
        return NOCROSS, NOCROSS, np.int64(-1), _STATUS_NONFINITE
    nr = _mc_rivals(c, K, Sc, eac, G, P, tall, rivals, S0s, ea0s)
    if nr == 0:
        return NOCROSS, NOCROSS, np.int64(-1), _STATUS_OK
    bmax = _NB - 1
    top = np.int64(0)
    if N > 0:
        top = _top_bits(kmax, buf)
        bmax = _mc_depth(keys, grp, N, K, top, nr, rivals, S0s, ea0s, hc, hs)
    while True:
        ntop = _gather(keys, N, top, bmax, perm, sk, stack)
        klo, khi, rv, resolved = _mc_walk_rivals(keys, tag, perm, ntop, ntop == N, c, nr,
                                                 rivals, S0s, ea0s)
        if resolved:
            return klo, khi, rv, _STATUS_OK
        bmax = _deeper(bmax)


# --------------------------------------------------------------------------------------------
# Bucketed selection for K classes (the fast path; _mc_row above is its fallback)
# --------------------------------------------------------------------------------------------

@njit(cache=True)
def _rival_bucket(hc, hs, K, bk, cp):
    """(count, float sum, error bound) of the moves in bucket bk that apply to rival cp: the
    groups 0, 1 + g (g ≠ cp) and 1 + K + cp.  Each key passes through at most c_g − 1 + K
    roundings (its group's recursive sum, then K additions of group sums), so
    _sum_err(count + K + 1, sum) bounds the error (the keys are non-negative)."""
    ssum = hs[0, bk] + hs[1 + K + cp, bk]
    csum = hc[0, bk] + hc[1 + K + cp, bk]
    for g in range(K):
        if g != cp:
            ssum += hs[1 + g, bk]
            csum += hc[1 + g, bk]
    return csum, ssum, _sum_err(csum + K + 1, ssum)


@njit(cache=True)
def _rival_crossing(hc, hs, K, cp, S, ea, strict):
    """:func:`_crossing_bucket` for rival cp on the group histograms.  Returns (bucket or −1,
    Z and error sum before it, moves before it, k_cert): k_cert is an upper bound on the
    rival's k when the crossing is already certain at the end of that bucket, else NOCROSS."""
    k = np.int64(0)
    for bk in range(_NB):
        c, ssum, eb = _rival_bucket(hc, hs, K, bk, cp)
        if c == 0:
            continue
        S1, e = _two_sum(S, -ssum)
        ea1 = ea + abs(e) + eb
        E1 = ea1 * _ERRF
        if _possible(S1, E1, strict):
            kc = k + c if _certain(S1, E1, strict) else NOCROSS
            return bk, S, ea, k, kc
        S = S1
        ea = ea1
        k += c
    return -1, S, ea, k, NOCROSS


@njit(cache=True)
def _gather_buckets(keys, N, top, want, sk, perm, stack):
    """sk[:cnt] = the keys of every bucket with want[bk] ≥ 0, in descending order (so each
    bucket is one segment, starting at want[bk]), perm[:cnt] their positions; returns cnt."""
    kb = keys.view(np.int64)
    cnt = 0
    for t in range(N):
        if want[_bucket(kb[t], top)] >= 0:
            perm[cnt] = t
            sk[cnt] = keys[t]
            cnt += 1
    _sort_desc(sk, perm, 0, cnt, stack)
    return cnt


@njit(cache=True)
def _mc_crossings(c, K, hc, hs, nr, rivals, S0s, ea0s, rbk, rS, rea, rk0, want):
    """Each candidate rival's crossing bucket (rbk, −1 if none), the state before it (rS, rea)
    and the moves before it (rk0); want[bk] = start of bucket bk's segment in the gathered
    sorted list for the buckets some rival needs, −1 for the others.  A rival is not needed
    when k0 + 1 > k_best (an upper bound on the row's k): its k exceeds the minimum.
    Returns k_best."""
    kbest = NOCROSS
    for t in range(nr):
        bk, S, ea, k0, kc = _rival_crossing(hc, hs, K, rivals[t], S0s[t], ea0s[t], rivals[t] > c)
        rbk[t], rS[t], rea[t], rk0[t] = bk, S, ea, k0
        kbest = min(kbest, kc)
    for bk in range(_NB):
        want[bk] = -1
    for t in range(nr):
        if rbk[t] >= 0 and rk0[t] + 1 <= kbest:
            want[rbk[t]] = 0
    off = np.int64(0)
    for bk in range(_NB):
        if want[bk] >= 0:
            want[bk] = off
            for g in range(1 + 2 * K):
                off += hc[g, bk]
    return kbest


@njit(cache=True)
def _mc_walk_buckets(keys, tag, perm, sk, hc, K, c, nr, rivals, rbk, rS, rea, rk0, want,
                     kbest):
    """Walk every needed rival over its crossing bucket's segment, in gap order, a rival's
    walk stopping once it cannot beat the best so far (as _mc_walk_rivals).
    Returns (k_lo, k_hi, rival, resolved)."""
    best_lo = NOCROSS
    best_hi = NOCROSS
    best_r = np.int64(-1)
    for t in range(nr):
        if rbk[t] < 0 or rk0[t] + 1 > kbest or rk0[t] + 1 >= best_hi:
            continue        # never crosses / k above the minimum
        cp = rivals[t]
        bk = rbk[t]
        lo = want[bk]
        if lo < 0:          # not gathered (cannot happen: _mc_crossings marks every such bucket)
            return best_lo, best_hi, best_r, False
        hi = lo
        for g in range(1 + 2 * K):
            hi += hc[g, bk]
        klo, khi, done = _walk_segment(sk, perm, tag, lo, hi, cp, rk0[t], rS[t], rea[t], 0.0,
                                       cp > c, best_hi)
        if not done:
            return best_lo, best_hi, best_r, False
        best_lo = min(best_lo, klo)
        if khi < best_hi:
            best_hi = khi
            best_r = cp
    return best_lo, best_hi, best_r, True


@njit(cache=True)
def _mc_row_fast(a, y, c, K, keys, tag, grp, perm, sk, Sc, eac, G, P, rivals, S0s, ea0s, hc,
                 hs, stack, buf, rbk, rS, rea, rk0, want):
    """(k_lo, k_hi, rival, resolved, status) for one K-class test point by bucketed
    selection: plain class sums with a priori bounds (_mc_pass), the group histograms locate
    each rival's crossing bucket (_mc_crossings), one gather sorts the members of the needed
    buckets only, and each rival walks its own bucket.  ``resolved`` False (k_lo ≠ k_hi, a
    bucket ran out before a certain crossing, or k = 0 possible for some rival): the caller
    runs _mc_row (TwoSum error sums, sorted walk)."""
    N, kmax, bad = _mc_pass(a, y, c, K, keys, tag, grp, Sc, eac)
    if bad:
        return NOCROSS, NOCROSS, np.int64(-1), True, _STATUS_NONFINITE
    top = _top_bits(kmax, buf) if N > 0 else np.int64(0)
    _mc_hist(keys, grp, N, K, top, hc, hs)
    tall = _mc_totals(hs, K, G, P)
    nr = _mc_rivals(c, K, Sc, eac, G, P, tall, rivals, S0s, ea0s)
    for t in range(nr):     # the k = 0 test: settled by _mc_row
        if _possible(S0s[t], ea0s[t] * _ERRF, rivals[t] > c):
            return NOCROSS, NOCROSS, np.int64(-1), False, _STATUS_OK
    if nr == 0 or N == 0:
        return NOCROSS, NOCROSS, np.int64(-1), True, _STATUS_OK
    kbest = _mc_crossings(c, K, hc, hs, nr, rivals, S0s, ea0s, rbk, rS, rea, rk0, want)
    _gather_buckets(keys, N, top, want, sk, perm, stack)
    klo, khi, rv, done = _mc_walk_buckets(keys, tag, perm, sk, hc, K, c, nr, rivals, rbk, rS,
                                          rea, rk0, want, kbest)
    return klo, khi, rv, done and klo == khi, _STATUS_OK


@njit(parallel=True, cache=True)
def _mc_driver(A, Y, pred, K, nch, klo_out, khi_out, rival_out, status_out):
    b, n = A.shape
    nch = min(b, nch)
    for ch in prange(nch):
        lo, hi = _chunk(ch, b, nch)
        # per-chunk scratch, reused by every row of the chunk
        keys, tag, grp, perm, sk, Sc, eac, G, P, rivals, S0s, ea0s, hc, hs, stack, buf, rbk, \
            rS, rea, rk0, want = _mc_scratch(n, K)
        for r in range(lo, hi):
            yr = Y[r % Y.shape[0]]     # one label row for all, or one per row (sparse)
            klo, khi, rv, ok, st = _mc_row_fast(A[r], yr, pred[r], K, keys, tag, grp, perm, sk,
                                                Sc, eac, G, P, rivals, S0s, ea0s, hc, hs, stack,
                                                buf, rbk, rS, rea, rk0, want)
            if not ok:      # not exact from the a priori bounds: exact error sums
                klo, khi, rv, st = _mc_row(A[r], yr, pred[r], K, keys, tag, grp, perm, sk, Sc,
                                           eac, G, P, rivals, S0s, ea0s, hc, hs, stack, buf)
            klo_out[r] = klo
            khi_out[r] = khi
            rival_out[r] = rv
            status_out[r] = st


# ============================================================================================
# Predictions (a rigorous float test; the caller decides the unsure rows exactly)
# ============================================================================================

#: Rows per chunk of the predict drivers (each chunk owns its scratch).
_PRED_ROWS = 64


@njit(cache=True)
def _binary_predict_row(a, y, q_lo, q_hi):
    """(pred, sure, status) of the binary rule for one row."""
    t_lo, t_hi = _tau_bounds(a, q_lo, q_hi)
    W = _add_up(t_hi, -t_lo)
    S = -t_hi
    ea = 0.0
    bad = False
    for i in range(a.shape[0]):
        v = a[i]
        if not (abs(v) <= _MAX_ABS):
            bad = True
        if y[i] == 1:
            S, e = _two_sum(S, v)
            ea += abs(e)
    status = _STATUS_NONFINITE if bad else _STATUS_OK
    E = ea * _ERRF
    F = _add_up(E, W)
    if S >= E:            # s − τ_hi ≥ 0 certainly
        return 1, True, status
    if S < -F:            # s − τ_lo < 0 certainly
        return 0, True, status
    return (1 if S >= 0.0 else 0), False, status


@njit(parallel=True, cache=True)
def _binary_predict_driver(A, y, q_lo, q_hi, pred_out, sure_out, status_out):
    for r in prange(A.shape[0]):
        p, sure, st = _binary_predict_row(A[r], y, q_lo, q_hi)
        pred_out[r] = p
        sure_out[r] = sure
        status_out[r] = st


@njit(cache=True)
def _mc_predict_row(a, y, K, Sc, eac):
    """(pred, sure, status) of the K-class rule for one row (Sc, eac: scratch of length K)."""
    for k in range(K):
        Sc[k] = 0.0
        eac[k] = 0.0
    bad = False
    for j in range(a.shape[0]):
        v = a[j]
        if not (abs(v) <= _MAX_ABS):
            bad = True
        s, e = _two_sum(Sc[y[j]], v)
        Sc[y[j]] = s
        eac[y[j]] += abs(e)
    status = _STATUS_NONFINITE if bad else _STATUS_OK
    c = 0
    for k in range(1, K):
        if Sc[k] > Sc[c]:
            c = k
    sure = True
    for cp in range(K):
        if cp == c:
            continue
        S0, e = _two_sum(Sc[c], -Sc[cp])
        E = (eac[c] + eac[cp] + abs(e)) * _ERRF
        # c beats cp certainly: gap > 0 (cp < c) or gap ≥ 0 (cp > c)
        if not ((S0 > E) if cp < c else (S0 >= E)):
            sure = False
    return c, sure, status


@njit(parallel=True, cache=True)
def _mc_predict_driver(A, y, K, pred_out, sure_out, status_out):
    b = A.shape[0]
    nch = (b + _PRED_ROWS - 1) // _PRED_ROWS
    for ch in prange(nch):
        lo, hi = _chunk(ch, b, nch)
        Sc = np.empty(K)
        eac = np.empty(K)
        for r in range(lo, hi):
            c, sure, st = _mc_predict_row(A[r], y, K, Sc, eac)
            pred_out[r] = c
            sure_out[r] = sure
            status_out[r] = st
