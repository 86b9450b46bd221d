"""Breslow Cox fit on counting-process ``(start, stop]`` rows with a clustered variance.

Provisional home of the experience study's fitter (time-varying covariates,
left truncation, strata, Lin-Wei robust variance by customer); phase 2 of the
restructure merges it into :mod:`analysis.stats.cox`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _risk_sum(v: np.ndarray, lo: np.ndarray, hi: np.ndarray, m: int) -> np.ndarray:
    """Sum ``v`` over the rows at risk at each event time (rows enter at ``lo``, leave at ``hi``)."""
    a = np.bincount(lo, weights=v, minlength=m) - np.bincount(hi, weights=v, minlength=m)
    return np.cumsum(a)[:-1]


#: Largest covariate-patterns x event-times matrix (cells) kept for the risk-set sums.
_MAX_PATTERN_CELLS = 20_000_000


def _risk_sets(
    x: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Compress rows for the risk-set sums, which depend on rows only through (x, lo, hi).

    With few distinct covariate rows (patterns) the sums are taken over a
    patterns x event-times matrix of rows at risk, built once: an iteration
    then costs O(patterns x event times x p) whatever the number of rows.
    Otherwise rows with the same covariates, entry and exit are merged and
    weighted by their count. Returns ``("patterns", x_g, at_risk, None,
    ones)`` or ``("rows", x_r, lo_r, hi_r, counts)``.
    """
    n = len(lo)
    m = int(hi.max()) + 1 if n else 1
    key = np.zeros(n, dtype=np.int64)
    card = 1
    for col in [*x.T, None, lo, hi]:
        if col is None:  # covariate pattern complete
            grp, uniq = pd.factorize(key)
            n_pat = len(uniq)
            if n_pat * m <= _MAX_PATTERN_CELLS:
                first = np.empty(n_pat, dtype=np.int64)
                first[grp[::-1]] = np.arange(n - 1, -1, -1)  # first row of each pattern
                cells = grp.astype(np.int64) * m
                at_risk = np.bincount(cells + lo, minlength=n_pat * m) - np.bincount(
                    cells + hi, minlength=n_pat * m
                )
                del cells
                at_risk = np.cumsum(at_risk.reshape(n_pat, m), axis=1)[:, :-1].astype(float)
                return "patterns", np.ascontiguousarray(x[first]), at_risk, None, np.ones(n_pat)
            continue
        code, uniq = pd.factorize(col)
        k = max(len(uniq), 1)
        if card * k >= 2**62:  # keep the mixed-radix key inside int64
            key, u2 = pd.factorize(key)
            card = max(len(u2), 1)
        key = key * k + code
        card *= k
    grp, uniq = pd.factorize(key)
    first = np.empty(len(uniq), dtype=np.int64)
    first[grp[::-1]] = np.arange(n - 1, -1, -1)  # first row of each combination
    cnt = np.bincount(grp, minlength=len(uniq)).astype(float)
    return "rows", np.ascontiguousarray(x[first]), lo[first], hi[first], cnt


def _cox_counting(
    start: np.ndarray,
    stop: np.ndarray,
    event: np.ndarray,
    x: np.ndarray,
    strata: np.ndarray,
    cluster: np.ndarray,
    *,
    max_iter: int = 50,
    tol: float = 1e-9,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Fit a Breslow Cox model on ``(start, stop]`` rows; return beta, robust cov, converged.

    Risk-set sums are built with one pass of cumulative sums over the sorted
    event times of each stratum (a row adds itself at the first event time
    after ``start`` and removes itself after ``stop``). The information
    matrix uses ``sum_t d_t S2_t / S0_t = sum_i w_i x_i x_i' (C[hi_i] -
    C[lo_i])`` with ``C`` the cumulative sum of ``d_t / S0_t``, so an
    iteration costs ``p + 1`` risk sums and one weighted cross-product
    instead of ``p^2 / 2`` risk sums.
    """
    n, p = x.shape
    # Rows of one stratum contiguous: per-stratum slices are views, not copies.
    order = np.argsort(strata, kind="stable")
    sorted_ = bool((order == np.arange(n)).all())
    if not sorted_:
        start, stop, event, x = start[order], stop[order], event[order], x[order]
        strata, cluster = strata[order], cluster[order]
    x = np.ascontiguousarray(x, dtype=float)
    bounds = np.flatnonzero(np.r_[True, strata[1:] != strata[:-1], True]) if n else np.r_[0]
    parts = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=False):
        ev = a + np.flatnonzero(event[a:b] == 1)
        if not len(ev):
            continue
        times, d = np.unique(stop[ev], return_counts=True)
        lo = np.searchsorted(times, start[a:b], side="right")  # first event time > start
        hi = np.searchsorted(times, stop[a:b], side="right")  # first event time > stop
        at = np.searchsorted(times, stop[ev])  # event time index of each churn
        parts.append((slice(a, b), ev, d.astype(float), lo, hi, at, _risk_sets(x[a:b], lo, hi)))

    def gram(xr: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Return xr' diag(v) xr in blocks (bounded memory)."""
        out = np.zeros((p, p))
        step = 1 << 18
        for i in range(0, len(v), step):
            xs = xr[i : i + step]
            out += (xs * v[i : i + step, None]).T @ xs
        return out

    def sums(beta: np.ndarray, hess: bool = True):
        ll, g, h = 0.0, np.zeros(p), np.zeros((p, p))
        aux = []
        for sl, ev, d, lo, hi, at, (kind, xa, r1, r2, cnt) in parts:
            m = len(d) + 1
            if kind == "patterns":
                # r1: G x T matrix of rows of each covariate pattern at risk at each event time
                w = cnt * np.exp(xa @ beta)  # cnt is all ones here
                s0 = r1.T @ w
                s1 = r1.T @ (w[:, None] * xa)
            else:
                # distinct (covariates, entry, exit) rows weighted by how many rows they stand for
                w = cnt * np.exp(xa @ beta)
                s0 = _risk_sum(w, r1, r2, m)
                s1 = np.column_stack([_risk_sum(w * xa[:, j], r1, r2, m) for j in range(p)])
            xbar = s1 / s0[:, None]
            xe = x[ev]
            ll += float((xe @ beta).sum())
            ll -= float((d * np.log(s0)).sum())
            g += xe.sum(axis=0) - (d[:, None] * xbar).sum(axis=0)
            if hess:
                c = d / s0
                if kind == "patterns":
                    v = w * (r1 @ c)
                else:
                    ca = np.r_[0.0, np.cumsum(c)]
                    v = w * (ca[r2] - ca[r1])
                h += gram(xa, v) - (xbar * d[:, None]).T @ xbar
            aux.append((sl, ev, s0, xbar, d, lo, hi, at))
        return ll, g, h, aux

    beta = np.zeros(p)
    ll, g, h, aux = sums(beta)
    converged = False
    for _ in range(max_iter):
        step = np.linalg.solve(h, g)
        new = beta + step
        ll_new, g_new, h_new, aux_new = sums(new)
        halvings = 0
        while (not np.isfinite(ll_new) or ll_new < ll - 1e-12) and halvings < 30:
            step = step / 2
            new = beta + step
            ll_new, g_new, h_new, aux_new = sums(new)
            halvings += 1
        done = abs(ll_new - ll) <= tol * (abs(ll) + tol) and np.max(np.abs(step)) < 1e-7
        beta, ll, g, h, aux = new, ll_new, g_new, h_new, aux_new
        if done:
            converged = True
            break
    info_inv = np.linalg.inv(h)
    # Score residuals (Lin & Wei 1989): dM-weighted deviations from the risk-set means,
    # summed per cluster.
    ng = int(cluster.max()) + 1
    u = np.zeros((ng, p))
    for sl, ev, s0, xbar, d, lo, hi, at in aux:
        ca = np.r_[0.0, np.cumsum(d / s0)]
        cb = np.vstack([np.zeros(p), np.cumsum(d[:, None] * xbar / s0[:, None], axis=0)])
        xr = x[sl]
        w = np.exp(xr @ beta)
        cr = cluster[sl]
        da = ca[hi] - ca[lo]
        for j in range(p):
            r = -w * (xr[:, j] * da - (cb[hi, j] - cb[lo, j]))
            u[:, j] += np.bincount(cr, weights=r, minlength=ng)
        re = x[ev] - xbar[at]
        for j in range(p):
            u[:, j] += np.bincount(cluster[ev], weights=re[:, j], minlength=ng)
    cov = info_inv @ (u.T @ u) @ info_inv
    return beta, cov, converged
