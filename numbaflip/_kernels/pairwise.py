"""Chernoff kernels of the K-class formulation (labels 0..K−1): pairwise bounds per rival
class and the union bound over rivals (appendix B, math.md §3).  Same layout and soundness
argument as :mod:`numbaflip._kernels.binary`; status codes in :mod:`.common`.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .common import (_GREEDY_L, _INF, STATUS_INTERIOR, STATUS_MAXITER, STATUS_ZERO, _U, _safe_step,
                     _up, _walk_exponent_bins)


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
def _mc_decide(A, y, K, pred, tied, ambiguous):
    """Parallel over test points: argmax of class sums (lowest index on ties), which rivals are
    tied with it, and whether float64 cannot decide (then the caller decides exactly)."""
    m = A.shape[0]
    n = A.shape[1]
    gam = (n + 4) * _U / (1.0 - (n + 4) * _U)
    for j in prange(m):
        sums = np.empty(K)
        sabs = np.empty(K)
        sqs = np.empty(K)
        _class_sums(A[j], y, K, sums, sabs, sqs)
        c = 0
        for k in range(1, K):
            if sums[k] > sums[c]:
                c = k
        pred[j] = c
        amb = False
        for k in range(K):
            tied[j, k] = False
            if k == c:
                continue
            diff = sums[c] - sums[k]
            err = gam * (sabs[c] + sabs[k]) + 2.0 * _U * abs(diff)
            if diff <= err:
                if diff == 0.0 and sabs[c] == 0.0 and sabs[k] == 0.0:
                    tied[j, k] = True  # both sums are exactly zero (no terms or all zero)
                else:
                    amb = True
        ambiguous[j] = amb


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
    if abs(x) < 20.0:
        # 4 sinh²(x/2) = expm1(x)² / (1 + expm1(x)): one transcendental, no cancellation
        ep_ = math.expm1(x)
        ex = 1.0 + ep_
        s4 = ep_ * ep_ / ex
        zz = 1.0 + pm * s4
        term = math.log1p(pm * s4)
        pa = pm / (ex * zz)
        pc = pm * ex / zz
        return term, pa, pc, 6.0 * abs(term) + 2.0 * abs(x) * (pa + pc)
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
        tmp = s + term
        if abs(s) >= abs(term):
            comp += (s - tmp) + term
        else:
            comp += (term - tmp) + s
        s = tmp
        dm = pc - pa              # tilted E[−d]
        g += aj * dm
        h += aj * aj * (pa + pc - dm * dm)
    f = s + comp
    err = 3.0 * _U * mag + 4.0 * _U * abs(f) + 4.0 * n * n * _U * _U * mag + 1e-300
    return f, g, max(h, 0.0), err


@njit(cache=True)
def _joint_eval(a, y, c, K, t, q, pm, lq1, lpm, lp0, out_f, out_g, out_h, out_err):
    """f_cr(t) and derivatives for *every* rival r at one common t, in one pass.

    f_cr separates by class: the class-c terms are shared, a point of class k contributes its
    "r-role" term to f_ck and its "other" term to every other rival, so two term evaluations
    per point give all K − 1 objectives.  Plain summation with the bound γ_n Σ|terms| (this
    pass only screens far rivals, whose share of the union bound is negligible).
    """
    n = a.shape[0]
    hs = np.zeros(K)
    hg = np.zeros(K)
    hh = np.zeros(K)
    gs = np.zeros(K)
    gg = np.zeros(K)
    gh = np.zeros(K)
    mag = np.zeros(K)     # error magnitudes of the r-role terms per class
    gmag = np.zeros(K)    # ... of the other-role terms per class
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
def _greedy_guess_pair(a, y, c, r, q, pm, drift):
    """Starting t for the pair (c, r) at small q (see :func:`_greedy_guess`): every label
    move that lowers s_c − s_r costs log((1−q)/p₋) in log-probability and gains
    b_j = 2α_j (y_j = c, α_j > 0), 2|α_j| (y_j = r, α_j < 0) or |α_j| (other labels), so the
    minimiser is near L/b_(k) with b_(1) + … + b_(k) ≥ E-gap ``drift``."""
    sm = np.zeros(2048)
    buf = np.empty(1)
    bits = buf.view(np.int64)
    for j in range(a.shape[0]):
        b = _pair_gain(a[j], y[j], c, r)
        if b > 0.0:
            buf[0] = b
            sm[(bits[0] >> 52) & 0x7FF] += b
    return _walk_exponent_bins(sm, drift, math.log1p(-q) - math.log(pm))


@njit(cache=True)
def _pair_gain(aj, lab, c, r):
    if lab == c:
        return 2.0 * aj if aj > 0.0 else 0.0
    if lab == r:
        return -2.0 * aj if aj < 0.0 else 0.0
    return abs(aj)


@njit(cache=True)
def _pair_newton(a, y, c, r, u0, q, pm, lq1, lpm, lp0, rtol, maxiter, lead):
    """Safeguarded Newton for min_{t>0} f_cr(t), f_cr'(0) < 0.

    ``lead``: the largest pairwise value found so far (−inf for the first rival).  A rival
    whose value is far below the lead adds little to the union bound, so its tolerance is
    scaled by e^{lead − f}: stopping early is sound (any t > 0 gives a valid bound) and loosens
    the union bound by at most rtol relative.
    Returns (upper value, error bound, t, iterations, converged).
    """
    lo = 0.0
    hi = _INF
    u = u0
    best_val = _INF
    best_err = 0.0
    best_u = u0
    converged = False
    dx = _INF
    dxold = _INF
    it = 0
    while it < maxiter:
        it += 1
        f, fp, fpp, err = _pair_eval(a, y, c, r, u, q, pm, lq1, lpm, lp0)
        val = f + err
        if val < best_val:
            best_val = val
            best_err = err
            best_u = u
        if fp < 0.0:
            lo = u
        elif fp > 0.0:
            hi = u
        else:
            converged = True
            break
        dec = fp * fp / fpp if fpp > 0.0 else _INF
        atol = 0.0
        if lead > -_INF:
            atol = rtol * max(abs(lead), 1.0) * math.exp(min(lead - f, 700.0))
        if dec <= rtol * abs(f) + 0.1 * err + atol:
            converged = True
            break
        un, dx, dxold = _safe_step(u, fp, fpp, lo, hi, dx, dxold)
        if hi < _INF and hi - lo <= 4.0 * _U * hi:
            converged = True
            break
        u = un
    return _up(best_val), best_err, best_u, it, converged


@njit(cache=True)
def _lse_up(vals, logw, K, skip):
    """Upward-rounded log Σ_{k≠skip} w_k exp(vals[k]) (vals already upper bounds, logw[k] an
    upper bound on log w_k: the number of rival classes that class slot k stands for)."""
    mx = -_INF
    for k in range(K):
        if k != skip and vals[k] + logw[k] > mx:
            mx = vals[k] + logw[k]
    if mx == -_INF:
        return -_INF
    acc = 0.0
    cnt = 0
    for k in range(K):
        if k != skip:
            acc += math.exp(vals[k] + logw[k] - mx)
            cnt += 1
    v = mx + math.log(acc)
    return _up(v + 8.0 * _U * (abs(mx) + cnt + abs(v)))


@njit(parallel=True, cache=True)
def _mc_driver(A, y, K, Kn, q, logw, pred, tied, rtol, maxiter, far_gap,
               out_logb, out_err, out_t, out_pair, out_status, out_iters):
    """Parallel over test points: union bound over the K−1 rivals of the predicted class.

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
    pm = q / (Kn - 1)
    p0 = q * (Kn - 2) / (Kn - 1)
    lq1 = math.log1p(-q)
    lpm = math.log(pm)
    lp0 = math.log(p0) if p0 > 0.0 else -_INF
    k1 = 1.0 - q - pm                 # E[d] for a label of class c
    v1 = (1.0 - q + pm) - k1 * k1     # Var[d] for a label of class c or r
    v0 = 2.0 * pm                     # Var[d] for any other label
    for j in prange(m):
        a = A[j]
        c = pred[j]
        sums = np.empty(K)
        sabs = np.empty(K)
        sqs = np.empty(K)
        _class_sums(a, y, K, sums, sabs, sqs)
        sqtot = 0.0
        for k in range(K):
            sqtot += sqs[k]
        approx = np.empty(K)
        guess = np.empty(K)
        vals = np.empty(K)
        bern = np.empty(K)
        any_tied = False
        amax = 0.0
        sabtot = 0.0
        for i in range(a.shape[0]):
            if abs(a[i]) > amax:
                amax = abs(a[i])
        for k in range(K):
            sabtot += sabs[k]
        for k in range(K):
            bern[k] = 0.0
            out_t[j, k] = 0.0
            if k == c:
                approx[k] = -_INF
                vals[k] = -_INF
                guess[k] = 0.0
                continue
            if tied[j, k]:
                any_tied = True
                approx[k] = 0.0
                vals[k] = 0.0
                guess[k] = 0.0
                continue
            ed = k1 * (sums[c] - sums[k])
            vd = v1 * (sqs[c] + sqs[k]) + v0 * (sqtot - sqs[c] - sqs[k])
            if vd > 0.0 and ed > 0.0:
                guess[k] = ed / vd
                approx[k] = -0.5 * ed * ed / vd
                # Bernstein: D − E[D] = Σ α_j (d_j − E d_j), |terms| ≤ b = 2 max|α|, so
                # log P(D ≤ 0) ≤ −E[D]² / (2 (Var D + b E[D] / 3)).  A valid bound with no pass
                # over the data; E[D] rounded down and Var D up by rigorous summation bounds.
                gam = (a.shape[0] + 8) * _U
                ed_lo = ed - 4.0 * gam * k1 * (sabs[c] + sabs[k]) - 8.0 * _U * abs(ed)
                vd_hi = vd * (1.0 + 8.0 * gam) + 8.0 * gam * sqtot
                if ed_lo > 0.0:
                    bern[k] = -ed_lo * ed_lo / (2.0 * (vd_hi + 2.0 * amax * ed_lo / 3.0)) \
                        * (1.0 - 16.0 * _U)
            else:
                guess[k] = 1.0
                approx[k] = 0.0
            vals[k] = _INF
        iters = 0
        allconv = True
        maxerr = 0.0
        # Closest rival first (largest Gaussian estimate): full Newton.  Then one joint pass at
        # its t screens all other rivals; only those within far_gap of the lead get Newton.
        # Tied rivals have B = 1.
        order = np.argsort(-approx)
        lead_k = -1
        for idx in range(K):
            k = order[idx]
            if k != c and not tied[j, k]:
                lead_k = k
                break
        lead = -_INF
        t_lead = 0.0
        if lead_k >= 0:
            u0 = guess[lead_k]
            if lq1 - lpm > _GREEDY_L:
                g2 = _greedy_guess_pair(a, y, c, lead_k, q, pm, sums[c] - sums[lead_k])
                if g2 > 0.0 and g2 < u0:
                    u0 = g2
            v, e, t, it, conv = _pair_newton(a, y, c, lead_k, u0, q, pm, lq1, lpm,
                                             lp0, rtol, maxiter, -_INF)
            lead = v
            t_lead = t
            vals[lead_k] = min(v, 0.0)
            out_t[j, lead_k] = t
            iters += it
            maxerr = e
            if not conv:
                allconv = False
        need_joint = False
        for k in range(K):
            if k != c and k != lead_k and not tied[j, k] and bern[k] >= lead - far_gap:
                need_joint = True
        jf = np.full(K, _INF)
        jg = np.zeros(K)
        jh = np.zeros(K)
        je = np.zeros(K)
        if need_joint:
            _joint_eval(a, y, c, K, t_lead, q, pm, lq1, lpm, lp0, jf, jg, jh, je)
            iters += 2
        for idx in range(K):
            k = order[idx]
            if k == c or k == lead_k or tied[j, k]:
                continue
            if bern[k] < lead - far_gap:
                # Bernstein already makes this rival's share of the union bound negligible.
                v = _up(bern[k])
                e = 0.0
                t = guess[k]
                it = 0
                conv = True
            elif jf[k] + je[k] < lead - far_gap:
                v = _up(jf[k] + je[k])
                e = je[k]
                t = t_lead
                it = 0
                conv = True
            else:
                # Start from the Newton step off the joint evaluation.
                u0 = t_lead - jg[k] / jh[k] if jh[k] > 0.0 else guess[k]
                if not (u0 > 0.0 and u0 < _INF):
                    u0 = guess[k]
                v, e, t, it, conv = _pair_newton(a, y, c, k, u0, q, pm, lq1, lpm, lp0,
                                                 rtol, maxiter, lead)
                if v > lead:
                    lead = v
            vals[k] = min(v, 0.0)
            out_t[j, k] = t
            iters += it
            if e > maxerr:
                maxerr = e
            if not conv:
                allconv = False
        for k in range(K):
            out_pair[j, k] = vals[k]
        out_iters[j] = iters
        # The log-sum-exp of values each within maxerr of the truth is within maxerr too.
        out_logb[j] = _lse_up(vals, logw, K, c)
        out_err[j] = maxerr
        if any_tied:
            out_status[j] = STATUS_ZERO
        else:
            out_status[j] = STATUS_INTERIOR if allconv else STATUS_MAXITER
