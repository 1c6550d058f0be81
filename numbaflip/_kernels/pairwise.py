"""Chernoff kernels of the K-class formulation (labels 0..K−1): pairwise bounds per rival
class and the union bound over rivals (appendix B, math.md §3).  Same layout and soundness
argument as :mod:`numbaflip._kernels.binary`; status codes in :mod:`.common`.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .common import (_GREEDY_L, _INF, STATUS_INTERIOR, STATUS_MAXITER, STATUS_ZERO, _U,
                     _argmax, _argsort_into, _chunk, _greedy_start, _nchunks, _neumaier, _newton_init, _newton_step, _up)


@njit(cache=True)
def _class_sums(a, y, K, sums, sabs, sqs):
    for k in range(K):
        sums[k] = 0.0
        sabs[k] = 0.0
        sqs[k] = 0.0
    for i in range(a.shape[0]):
        c = y[i]
        ai = a[i]
        sums[c] += ai
        sabs[c] += abs(ai)
        sqs[c] += ai * ai


@njit(parallel=True, cache=True)
def _mc_decide(A, Y, K, pred, tied, ambiguous):
    """Parallel over contiguous chunks of test points: argmax of class sums (lowest index on
    ties), which rivals are tied with it, and whether float64 cannot decide (then the caller
    decides exactly).  The class-sum scratch is allocated once per chunk."""
    m = A.shape[0]
    n = A.shape[1]
    gam = (n + 4) * _U / (1.0 - (n + 4) * _U)
    nch = _nchunks(m)
    for ch in prange(nch):
        lo, hi = _chunk(ch, m, nch)
        sums = np.empty(K)
        sabs = np.empty(K)
        sqs = np.empty(K)
        for j in range(lo, hi):
            _class_sums(A[j], Y[j % Y.shape[0]], K, sums, sabs, sqs)
            pred[j], ambiguous[j] = _decide_one(sums, sabs, K, gam, tied[j])


@njit(cache=True)
def _decide_one(sums, sabs, K, gam, tied_row):
    """(prediction, ambiguous) from the class sums of one test point; fills ``tied_row``."""
    c = _argmax(sums, K)
    amb = False
    for k in range(K):
        tied_row[k] = False
        if k == c:
            continue
        diff = sums[c] - sums[k]
        err = gam * (sabs[c] + sabs[k]) + 2.0 * _U * abs(diff)
        if diff <= err:
            if diff == 0.0 and sabs[c] == 0.0 and sabs[k] == 0.0:
                tied_row[k] = True  # both sums are exactly zero (no terms or all zero)
            else:
                amb = True
    return c, amb


@njit(cache=True)
def _lse3(x, y, z):
    """log(e^x + e^y + e^z) and the normalised weights of x and z (two exps and one log)."""
    mx = max(x, max(y, z))
    ex = math.exp(x - mx)
    ey = math.exp(y - mx)
    ez = math.exp(z - mx)
    tot = ex + ey + ez
    return mx + math.log(tot), mx, ex / tot, ez / tot


@njit(cache=True)
def _term_cr(x, is_c, q, pm, lq1, lpm, lp0):
    """Log-MGF term of a training point labelled c (``is_c``) or r, at x = tα (math.md §3).

    y = c: log((1−q)e^{−x} + p₀ + p₋e^{x});  y = r: log(p₋e^{−x} + p₀ + (1−q)e^{x}).
    Returns (term, pa, pc, mag): the tilted probabilities of d = +1 and d = −1 and the
    magnitude whose multiple by 3u bounds the float64 error of ``term``.
    """
    if abs(x) < 0.5:
        # log(1 + P_c·expm1(−x) + P_r·expm1(x)): accurate near 0 (no cancellation)
        if is_c:
            wa = 1.0 - q
            wc = pm
        else:
            wa = pm
            wc = 1.0 - q
        ep_ = math.expm1(x)
        em_ = -ep_ / (1.0 + ep_)          # expm1(−x), no second transcendental
        arg = wa * em_ + wc * ep_
        term = math.log1p(arg)
        zz = 1.0 + arg
        pa = wa * (1.0 + em_) / zz
        pc = wc * (1.0 + ep_) / zz
        return term, pa, pc, 6.0 * (wa * abs(em_) + wc * abs(ep_)) + abs(term) + 2.0 * abs(x)
    if is_c:
        la = lq1   # weight of e^{−x} (Y = c, d = +1)
        lc = lpm   # weight of e^{+x} (Y = r, d = −1)
    else:
        la = lpm
        lc = lq1
    u1 = la - x
    u3 = lc + x
    term, mx, pa, pc = _lse3(u1, lp0, u3)
    mag = abs(la) + abs(lc) + abs(x) + abs(mx) + abs(term) + 2.0
    if lp0 > -_INF:
        mag += abs(lp0)
    return term, pa, pc, mag


@njit(cache=True)
def _term_other(x, pm, lpm):
    """Log-MGF term of a training point with any other label: log1p(4p₋ sinh²(x/2))."""
    ax = abs(x)
    if ax < 20.0:
        # 4 sinh²(x/2) = expm1(|x|)² / (1 + expm1(|x|)): the term is even in x, and with |x|
        # neither expm1 nor 1 + expm1 cancels (x < 0 directly would: error ~u·e^|x|)
        ep_ = math.expm1(ax)
        ex = 1.0 + ep_
        s4 = ep_ * ep_ / ex
        zz = 1.0 + pm * s4
        term = math.log1p(pm * s4)
        lo = pm / (ex * zz)        # tilted mass of the side e^{−|x|}
        hi = pm * ex / zz          # and of the side e^{+|x|}
        pa, pc = (lo, hi) if x >= 0.0 else (hi, lo)
        return term, pa, pc, 6.0 * abs(term) + 2.0 * ax * (pa + pc)
    l1m2 = math.log1p(-2.0 * pm)
    term, mx, pa, pc = _lse3(lpm - x, l1m2, lpm + x)
    return term, pa, pc, 2.0 * abs(lpm) + abs(x) + abs(l1m2) + abs(mx) + abs(term) + 2.0


@njit(cache=True)
def _pair_eval(a, y, c, r, t, q, pm, lq1, lpm, lp0):
    """f_cr(t), derivatives and a rigorous float64 error bound (math.md §3), t > 0.

    f_cr(t) = Σ_j log E[exp(−tα_j d_j)], d_j = 1{Y_j = c} − 1{Y_j = r}: the Chernoff
    exponent of P(s_c − s_r ≤ 0).  Compensated (Neumaier) summation.
    """
    n = a.shape[0]
    s = 0.0
    comp = 0.0
    g = 0.0
    h = 0.0
    mag = 0.0
    for j in range(n):
        aj = a[j]
        x = t * aj
        lab = y[j]
        if lab == c or lab == r:
            term, pa, pc, mg = _term_cr(x, lab == c, q, pm, lq1, lpm, lp0)
        else:
            term, pa, pc, mg = _term_other(x, pm, lpm)
        mag += mg
        s, comp = _neumaier(s, comp, term)
        dm = pc - pa              # tilted E[−d]
        g += aj * dm
        h += aj * aj * (pa + pc - dm * dm)
    f = s + comp
    err = 3.0 * _U * mag + 4.0 * _U * abs(f) + 4.0 * n * n * _U * _U * mag + 1e-300
    return f, g, max(h, 0.0), err


@njit(cache=True)
def _joint_eval(a, y, c, K, t, q, pm, lq1, lpm, lp0, scr, out_f, out_g, out_h, out_err):
    """f_cr(t) and derivatives for *every* rival r at one common t, in one pass.

    f_cr separates by class: the class-c terms are shared, a point of class k contributes its
    "r-role" term to f_ck and its "other" term to every other rival, so two term evaluations
    per point give all K − 1 objectives.  Plain summation with the bound γ_n Σ|terms| (this
    pass only screens far rivals, whose share of the union bound is negligible).
    ``scr``: (8, K) float scratch, overwritten.
    """
    n = a.shape[0]
    scr[:, :K] = 0.0
    hs = scr[0]
    hg = scr[1]
    hh = scr[2]
    gs = scr[3]
    gg = scr[4]
    gh = scr[5]
    mag = scr[6]     # error magnitudes of the r-role terms per class
    gmag = scr[7]    # ... of the other-role terms per class
    for j in range(n):
        aj = a[j]
        x = t * aj
        lab = y[j]
        term, pa, pc, mg = _term_cr(x, lab == c, q, pm, lq1, lpm, lp0)
        dm = pc - pa
        hs[lab] += term
        hg[lab] += aj * dm
        hh[lab] += aj * aj * (pa + pc - dm * dm)
        mag[lab] += mg + abs(term) * (n + 4)
        if lab != c:
            term, pa, pc, mg = _term_other(x, pm, lpm)
            dm = pc - pa
            gs[lab] += term
            gg[lab] += aj * dm
            gh[lab] += aj * aj * (pa + pc - dm * dm)
            gmag[lab] += mg + abs(term) * (n + 4)
    gtot = 0.0
    ggtot = 0.0
    ghtot = 0.0
    gmtot = 0.0
    gabs = 0.0
    for k in range(K):
        if k != c:
            gtot += gs[k]
            ggtot += gg[k]
            ghtot += gh[k]
            gmtot += gmag[k]
            gabs += abs(gs[k])
    for r in range(K):
        if r == c:
            continue
        f = hs[c] + hs[r] + (gtot - gs[r])
        out_f[r] = f
        out_g[r] = hg[c] + hg[r] + (ggtot - gg[r])
        out_h[r] = max(hh[c] + hh[r] + (ghtot - gh[r]), 0.0)
        out_err[r] = 3.0 * _U * (mag[c] + mag[r] + gmtot) \
            + 8.0 * _U * (gabs + abs(hs[c]) + abs(hs[r]) + abs(f)) + 1e-300


@njit(cache=True)
def _greedy_guess_pair(a, y, c, r, q, pm, drift, hist, hbuf):
    """Starting t for the pair (c, r) at small q (see :func:`.binary._greedy_guess`): every
    label move that lowers s_c − s_r costs log((1−q)/p₋) in log-probability and gains
    b_j = :func:`.common._gain` (α_j, y_j, c, r, 2) (2α_j for y_j = c, α_j > 0; 2|α_j| for
    y_j = r, α_j < 0; |α_j| for other labels), so the minimiser is near L/b_(k) with
    b_(1) + … + b_(k) ≥ E-gap ``drift``.  ``hist``, ``hbuf``: scratch (2048 and 1 floats)."""
    return _greedy_start(a, y, c, r, 2.0, math.log1p(-q) - math.log(pm), drift, hist, hbuf)


@njit(cache=True)
def _pair_newton(a, y, c, r, u0, q, pm, lq1, lpm, lp0, rtol, maxiter, lead):
    """Safeguarded Newton for min_{t>0} f_cr(t), f_cr'(0) < 0.

    ``lead``: the largest pairwise value found so far (−inf for the first rival).  A rival
    whose value is far below the lead adds little to the union bound, so its tolerance is
    scaled by e^{lead − f}: stopping early is sound (any t > 0 gives a valid bound) and loosens
    the union bound by at most rtol relative.
    Returns (upper value, error bound, t, iterations, converged).
    """
    u, it, conv, st = u0, 0, False, _newton_init(u0)
    while not conv and it < maxiter:
        it += 1
        f, fp, fpp, err = _pair_eval(a, y, c, r, u, q, pm, lq1, lpm, lp0)
        # tolerance of a rival far below the lead, scaled by its share of the union bound
        atol = rtol * max(abs(lead), 1.0) * math.exp(min(lead - f, 700.0)) \
            if lead > -_INF else 0.0
        conv, u, st = _newton_step(u, f, fp, fpp, err, rtol * abs(f) + 0.1 * err + atol, st)
    return _up(st[4]), st[5], st[6], it, conv


@njit(cache=True)
def _lse_up(vals, logw, K, skip):
    """Upward-rounded log Σ_{k≠skip} w_k exp(vals[k]) (vals already upper bounds, logw[k] an
    upper bound on log w_k: the number of rival classes that class slot k stands for)."""
    v, slack = _lse(vals, logw, K, skip)
    return v if v == -_INF else _up(v + slack)


@njit(cache=True)
def _lse(vals, logw, K, skip):
    """log Σ_{k≠skip} exp(vals[k] + logw[k]) in float64 and a bound on its rounding error
    (the callers round up or down); (−inf, 0) when every term is −inf."""
    mx = -_INF
    for k in range(K):
        if k != skip and vals[k] + logw[k] > mx:
            mx = vals[k] + logw[k]
    if mx == -_INF:
        return -_INF, 0.0
    acc = 0.0
    cnt = 0
    for k in range(K):
        if k != skip:
            acc += math.exp(vals[k] + logw[k] - mx)
            cnt += 1
    v = mx + math.log(acc)
    return v, 8.0 * _U * (abs(mx) + cnt + abs(v))




# --------------------------------------------------------------------------------------------
# The union-bound driver, in steps: screening of rivals, Newton on the lead rival, the other
# rivals (joint screening pass, then Newton only where it matters), the union bound.
#
# Per-chunk scratch ``W`` (12, K), one row per quantity indexed by class slot:
#   0 class sums, 1 class Σ|α|, 2 class Σα², 3 Gaussian estimate of log B_ck, 4 Newton start,
#   5 bound on log B_ck, 6 Bernstein bound, 7 sort key (−row 3),
#   8–11 joint pass at the lead's t: f, f', f'', error bound.
# --------------------------------------------------------------------------------------------


@njit(cache=True)
def _noise_consts(q, Kn):
    """(p₋, log(1−q), log p₋, log p₀, E[d | Y = c], Var[d] for labels c or r, Var[d] for any
    other label) of the K-class noise with Kn classes (p₋ = q/(Kn−1), p₀ = (Kn−2)p₋)."""
    pm = q / (Kn - 1)
    p0 = q * (Kn - 2) / (Kn - 1)
    lq1 = math.log1p(-q)
    lpm = math.log(pm)
    lp0 = math.log(p0) if p0 > 0.0 else -_INF
    k1 = 1.0 - q - pm
    v1 = (1.0 - q + pm) - k1 * k1
    v0 = 2.0 * pm
    return pm, lq1, lpm, lp0, k1, v1, v0


@njit(cache=True)
def _bernstein(ed, vd, n, k1, sabs_ck, sqtot, amax):
    """Bernstein: D − E[D] = Σ α_j (d_j − E d_j), |terms| ≤ b = 2 max|α|, so
    log P(D ≤ 0) ≤ −E[D]² / (2 (Var D + b E[D] / 3)).  A valid bound with no pass over the
    data; E[D] rounded down and Var D up by rigorous summation bounds.  0 when E[D] ≤ 0."""
    gam = (n + 8) * _U
    ed_lo = ed - 4.0 * gam * k1 * sabs_ck - 8.0 * _U * abs(ed)
    vd_hi = vd * (1.0 + 8.0 * gam) + 8.0 * gam * sqtot
    if ed_lo > 0.0:
        return -ed_lo * ed_lo / (2.0 * (vd_hi + 2.0 * amax * ed_lo / 3.0)) * (1.0 - 16.0 * _U)
    return 0.0


@njit(cache=True)
def _screen_rivals(a, y, c, tied_row, K, k1, v1, v0, W, t_row):
    """Class sums, then per rival the Gaussian estimate, the Newton start and the Bernstein
    bound (rows 0–6 of ``W``); value −inf for c itself, 0 for tied rivals, +inf (to solve)
    for the others; ``t_row`` zeroed.  Returns whether any rival is tied."""
    sums, sabs, sqs, approx, guess, vals, bern = W[0], W[1], W[2], W[3], W[4], W[5], W[6]
    _class_sums(a, y, K, sums, sabs, sqs)
    sqtot = 0.0
    for k in range(K):
        sqtot += sqs[k]
    amax = 0.0
    for i in range(a.shape[0]):
        if abs(a[i]) > amax:
            amax = abs(a[i])
    any_tied = False
    for k in range(K):
        bern[k] = 0.0
        t_row[k] = 0.0
        if k == c or tied_row[k]:
            any_tied = any_tied or k != c
            approx[k] = -_INF if k == c else 0.0
            vals[k] = approx[k]
            guess[k] = 0.0
            continue
        ed = k1 * (sums[c] - sums[k])
        vd = v1 * (sqs[c] + sqs[k]) + v0 * (sqtot - sqs[c] - sqs[k])
        if vd > 0.0 and ed > 0.0:
            guess[k] = ed / vd
            approx[k] = -0.5 * ed * ed / vd
            bern[k] = _bernstein(ed, vd, a.shape[0], k1, sabs[c] + sabs[k], sqtot, amax)
        else:
            guess[k] = 1.0
            approx[k] = 0.0
        vals[k] = _INF
    return any_tied


@njit(cache=True)
def _solve_lead(a, y, c, tied_row, K, nz, rtol, maxiter, W, order, stack, hist, hbuf, t_row):
    """Full Newton on the closest rival: the first of ``order`` = argsort(−Gaussian estimate)
    that is neither c nor tied, started from the greedy guess when that is closer.

    Returns (lead rival or −1, its upper value, its t, error bound, iterations, converged)."""
    q, pm, lq1, lpm, lp0 = nz
    key = W[7]
    for k in range(K):
        key[k] = -W[3, k]
    _argsort_into(key, order, stack)
    lead_k = -1
    for idx in range(K):
        k = order[idx]
        if k != c and not tied_row[k]:
            lead_k = k
            break
    if lead_k < 0:
        return -1, -_INF, 0.0, 0.0, 0, True
    u0 = W[4, lead_k]
    if lq1 - lpm > _GREEDY_L:
        g2 = _greedy_guess_pair(a, y, c, lead_k, q, pm, W[0, c] - W[0, lead_k], hist, hbuf)
        if g2 > 0.0 and g2 < u0:
            u0 = g2
    v, e, t, it, conv = _pair_newton(a, y, c, lead_k, u0, q, pm, lq1, lpm, lp0, rtol, maxiter,
                                     -_INF)
    W[5, lead_k] = min(v, 0.0)
    t_row[lead_k] = t
    return lead_k, v, t, e, it, conv


@njit(cache=True)
def _rival_bound(a, y, c, k, nz, rtol, maxiter, far_gap, W, lead, t_lead):
    """Bound on log B_ck for a rival other than the lead: its Bernstein bound or its value at
    the lead's t when either is ``far_gap`` below the lead (its share of the union bound is
    then below e^{−far_gap}), else Newton from the step off the joint evaluation with a
    tolerance weighted by its share.  Returns (value, error, t, iterations, converged,
    whether Newton ran)."""
    q, pm, lq1, lpm, lp0 = nz
    guess, bern, jf, jg, jh, je = W[4], W[6], W[8], W[9], W[10], W[11]
    if bern[k] < lead - far_gap:
        return _up(bern[k]), 0.0, guess[k], 0, True, False
    if jf[k] + je[k] < lead - far_gap:
        return _up(jf[k] + je[k]), je[k], t_lead, 0, True, False
    u0 = t_lead - jg[k] / jh[k] if jh[k] > 0.0 else guess[k]
    if not (u0 > 0.0 and u0 < _INF):
        u0 = guess[k]
    v, e, t, it, conv = _pair_newton(a, y, c, k, u0, q, pm, lq1, lpm, lp0, rtol, maxiter, lead)
    return v, e, t, it, conv, True


@njit(cache=True)
def _solve_rivals(a, y, c, tied_row, K, nz, rtol, maxiter, far_gap, W, JS, order, lead_k, lead,
                  t_lead, iters, maxerr, allconv, t_row):
    """Every rival but c, the lead and the tied ones, closest first: one joint pass at the
    lead's t (only if some Bernstein bound is not already far below the lead), then
    :func:`_rival_bound`.  Rows 5 and 8–11 of ``W``; ``JS``: (8, K) scratch of the joint pass.
    Returns the running (iterations, largest error bound, all converged)."""
    q, pm, lq1, lpm, lp0 = nz
    bern = W[6]
    need_joint = False
    for k in range(K):
        if k != c and k != lead_k and not tied_row[k] and bern[k] >= lead - far_gap:
            need_joint = True
    W[8, :] = _INF
    W[9:12, :] = 0.0
    if need_joint:
        _joint_eval(a, y, c, K, t_lead, q, pm, lq1, lpm, lp0, JS, W[8], W[9], W[10], W[11])
        iters += 2
    for idx in range(K):
        k = order[idx]
        if k == c or k == lead_k or tied_row[k]:
            continue
        v, e, t, it, conv, solved = _rival_bound(a, y, c, k, nz, rtol, maxiter, far_gap, W,
                                                 lead, t_lead)
        if solved and v > lead:
            lead = v
        W[5, k] = min(v, 0.0)
        t_row[k] = t
        iters += it
        if e > maxerr:
            maxerr = e
        if not conv:
            allconv = False
    return iters, maxerr, allconv


@njit(cache=True)
def _mc_point(a, y, c, tied_row, K, logw, nz, k1, v1, v0, rtol, maxiter, far_gap, W, JS, order,
              stack, hist, hbuf, t_row, pair_row):
    """Union bound for one test point with prediction c: (log B, error bound, status,
    iterations); fills ``t_row`` and ``pair_row``."""
    any_tied = _screen_rivals(a, y, c, tied_row, K, k1, v1, v0, W, t_row)
    lead_k, lead, t_lead, maxerr, iters, allconv = _solve_lead(a, y, c, tied_row, K, nz, rtol,
                                                               maxiter, W, order, stack, hist,
                                                               hbuf, t_row)
    iters, maxerr, allconv = _solve_rivals(a, y, c, tied_row, K, nz, rtol, maxiter, far_gap, W,
                                           JS, order, lead_k, lead, t_lead, iters, maxerr,
                                           allconv, t_row)
    for k in range(K):
        pair_row[k] = W[5, k]
    # The log-sum-exp of values each within maxerr of the truth is within maxerr too.
    logb = _lse_up(W[5], logw, K, c)
    if any_tied:
        return logb, maxerr, STATUS_ZERO, iters
    return logb, maxerr, STATUS_INTERIOR if allconv else STATUS_MAXITER, iters


@njit(cache=True)
def _mc_scratch(K):
    """Per-chunk scratch of the pairwise drivers: (W, JS, order, stack, hist, hbuf)."""
    return (np.empty((12, K)), np.empty((8, K)), np.empty(K, np.int64),
            np.empty((64, 2), np.int64), np.empty(2048), np.empty(1))


@njit(parallel=True, cache=True)
def _mc_driver(A, Y, K, Kn, q, logw, pred, tied, rtol, maxiter, far_gap,
               out_logb, out_err, out_t, out_pair, out_status, out_iters):
    """Parallel over contiguous chunks of test points: union bound over the K−1 rivals of the
    predicted class (:func:`_mc_point`); every scratch array is allocated once per chunk.

    ``K`` class slots are looped over (the classes present in the training set and at most two
    absent ones, see :func:`numbaflip.certify`); ``Kn`` is the number of classes of the noise
    (p₋ = q/(Kn−1)); slot k stands for ``exp(logw[k])`` rival classes with identical bounds.

    ``out_pair[j, k]``: upper bound on log B_{pred,k} (0 for tied rivals, −inf for pred itself);
    ``out_t[j, k]``: the t used (0 where B = 1).  The closest rival (by the Gaussian estimate)
    gets a full Newton solve; a rival whose Bernstein bound, or whose value at the lead's t
    (one joint pass for all rivals), is ``far_gap`` nats below the lead keeps that bound (its
    share of the union bound is below e^{−far_gap}); the others get Newton with a tolerance
    weighted by their share.  Any t > 0 gives a valid bound, so all of this is sound.
    """
    m = A.shape[0]
    pm, lq1, lpm, lp0, k1, v1, v0 = _noise_consts(q, Kn)
    nz = (q, pm, lq1, lpm, lp0)
    nch = _nchunks(m)
    for ch in prange(nch):
        lo, hi = _chunk(ch, m, nch)
        W, JS, order, stack, hist, hbuf = _mc_scratch(K)
        for j in range(lo, hi):
            yr = Y[j % Y.shape[0]]     # one label row for all, or one per row (sparse)
            logb, err, st, it = _mc_point(A[j], yr, pred[j], tied[j], K, logw, nz, k1, v1, v0,
                                          rtol, maxiter, far_gap, W, JS, order, stack, hist,
                                          hbuf, out_t[j], out_pair[j])
            out_logb[j] = logb
            out_err[j] = err
            out_status[j] = st
            out_iters[j] = it
