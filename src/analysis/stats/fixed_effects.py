"""Two-way (and more-way) fixed-effects least squares with cluster-robust standard errors.

The engine behind the experience study's revenue link: regress an outcome on
regressors with the effects of one or more grouping columns (customers,
periods) absorbed -- never built as dummy columns -- and customer-clustered
(CRV1) standard errors with the small-sample factor of Stata ``reghdfe`` and
R fixest. Two effects one of which has few levels (periods) are removed
exactly (:func:`_demean_two_way`); anything else goes to pyfixest's compiled
alternating-projections kernel.

:func:`fit_fe` is the public entry; the experience study's
``revenue_link`` adds the lag lookup on top of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import AnalysisError, DataError, Problem

__all__ = ["FEResult", "fit_fe"]


def _require(df: pd.DataFrame, table: str, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            f"The {table} table lacks columns the experience study needs.",
            [
                Problem(
                    table,
                    c,
                    "missing_column",
                    f"column {c!r} is missing",
                    fix=f"add {c!r} (see docs/data-contract.md) or map it in params",
                )
                for c in missing
            ],
        )


@dataclass
class FEResult:
    """A fixed-effects regression with cluster-robust standard errors.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per term: coef, se, ci_lower, ci_upper, p_value, n_obs, n_customers.
    vcov : pandas.DataFrame
        Cluster-robust covariance (CRV1) with the small-sample factor applied.
    n_obs, n_clusters, n_customers : int
    df_k : int
        Parameters counted in the small-sample factor ``(N-1)/(N-K)``.
    ssc : float
        The full factor ``G/(G-1) * (N-1)/(N-K)``.
    singletons_dropped : int
        Rows dropped because their fixed-effect group has one row.
    converged : bool
        Whether the alternating projections converged.
    outcome_mean : float
        Mean outcome in the estimation sample (currency for revenue).
    """

    summary: pd.DataFrame
    vcov: pd.DataFrame
    n_obs: int
    n_clusters: int
    n_customers: int
    df_k: int
    ssc: float
    singletons_dropped: int
    converged: bool
    outcome_mean: float
    fixed_effects: tuple[str, ...] = ()
    r2_within: float = float("nan")


def _codes(values: Any) -> np.ndarray:
    """Return integer codes ``0..k-1`` of ``values`` (-1 for missing), like ``pd.factorize``.

    Integer keys and whole-day dates in a compact range are coded by a
    lookup table (in sorted order) without hashing; anything else goes to
    ``pd.factorize`` (order of appearance). Codes only label groups, so the
    order does not change any estimate.
    """
    v = np.asarray(values)
    if len(v) and v.dtype.kind == "M":
        unit, count = np.datetime_data(v.dtype)
        per_day = np.timedelta64(1, "D") // np.timedelta64(count, unit) if unit != "generic" else 0
        iv = v.view(np.int64)
        if per_day >= 1 and not np.isnat(v).any() and not (iv % per_day).any():
            v = iv // per_day  # whole days (integer maths: datetime casts are slow)
    if len(v) and v.dtype.kind in "iu":
        lo, hi = int(v.min()), int(v.max())
        if hi - lo < max(4 * len(v), 1 << 16):
            present = np.zeros(hi - lo + 1, dtype=bool)
            present[v - lo] = True
            lookup = np.cumsum(present, dtype=np.int64) - 1
            return lookup.astype(np.int32 if len(lookup) < 2**31 else np.int64)[v - lo]
    return pd.factorize(v)[0].astype(np.int64)


def _drop_singletons(fe_codes: np.ndarray) -> np.ndarray:
    """Return a keep-mask after iteratively dropping rows alone in a fixed-effect group."""
    keep = np.ones(fe_codes.shape[0], dtype=bool)
    while True:
        changed = False
        for j in range(fe_codes.shape[1]):
            c = fe_codes[:, j]
            cnt = np.bincount(c[keep], minlength=int(c.max()) + 1 if len(c) else 0)
            single = keep & (cnt[c] == 1)
            if single.any():
                keep &= ~single
                changed = True
        if not changed:
            return keep


def _nested_in(fe: np.ndarray, cl: np.ndarray) -> bool:
    """Whether every level of ``fe`` lies inside one cluster (codes ``0..k-1``; no sorting)."""
    if not len(fe):
        return True
    seen = np.full(int(fe.max()) + 1, -1, dtype=np.int64)
    seen[fe] = cl  # the cluster of some row of each level
    return bool((seen[fe] == cl).all())


def _check_fe_args(
    panel: pd.DataFrame,
    *,
    outcome: str,
    exposures: Sequence[str],
    lags: Sequence[int],
    fixed_effects: Sequence[str],
    cluster: str,
    customer: str,
    period: str,
    k_fixef: str,
) -> None:
    if k_fixef not in ("nonnested", "full"):
        raise AnalysisError(f"k_fixef must be 'nonnested' or 'full', not {k_fixef!r}")
    needed = {outcome, *exposures, *fixed_effects, cluster, customer, period}
    _require(panel, "panel", sorted(needed))
    if any(lag < 0 for lag in lags) or not lags:
        raise AnalysisError(f"lags must be non-negative integers, got {lags}")


#: Largest number of levels of the smaller of two fixed effects solved directly.
_DIRECT_FE_LEVELS = 2_000


def _demean_two_way(
    v: Sequence[np.ndarray], fe: np.ndarray, *, inplace: bool = False
) -> list[np.ndarray] | None:
    """Remove two fixed effects exactly when one of them has few levels (e.g. periods).

    With ``A`` the large effect (customers) and ``D`` the dummies of the small
    one, the residual of ``v`` on both is ``M_A v - M_A D g`` with ``g``
    solving ``(D' M_A D) g = D' M_A v`` (Frisch-Waugh-Lovell); ``D' M_A D`` is
    a small ``T x T`` matrix built from customer-period counts. This is the
    limit the alternating projections converge to, reached in a few passes
    over the rows instead of many. Returns None when the shape does not fit
    (not two effects, or both large), so the caller falls back to pyfixest.
    With ``inplace`` the columns of ``v`` are overwritten (no second copy).
    """
    if fe.shape[1] != 2 or not len(fe):
        return None
    sizes = [int(fe[:, j].max()) + 1 for j in range(2)]
    b_col = int(np.argmin(sizes))
    a, b = fe[:, 1 - b_col], fe[:, b_col]
    na, nb = sizes[1 - b_col], sizes[b_col]
    if nb > _DIRECT_FE_LEVELS:
        return None
    from scipy import sparse

    n_a = np.bincount(a, minlength=na).astype(float)
    n_b = np.bincount(b, minlength=nb).astype(float)
    # D' P_A D = sum over customers of (rows by period)(rows by period)' / rows, in blocks of
    # customers (small blocks: BLAS is fast on them single-threaded)
    dpd = np.zeros((nb, nb))
    step = 8192
    grouped = bool((a[1:] >= a[:-1]).all())
    if grouped:  # rows grouped by customer (a panel): slice, no index
        cuts = np.searchsorted(a, np.arange(0, na + step, step))
        for k, i in enumerate(range(0, na, step)):
            r0, r1 = cuts[k], cuts[k + 1]
            c = min(step, na - i)
            blk = (
                np.bincount((a[r0:r1] - i).astype(np.int64) * nb + b[r0:r1], minlength=c * nb)
                .reshape(c, nb)
                .astype(float)
            )
            dpd += blk.T @ (blk / n_a[i : i + c, None])
    else:
        counts = sparse.csr_matrix((np.ones(len(a)), (a, b)), shape=(na, nb))
        for i in range(0, na, step):
            blk = counts[i : i + step].toarray()
            dpd += blk.T @ (blk / n_a[i : i + step, None])
    dmd = np.diag(n_b) - dpd
    pinv = np.linalg.pinv(dmd, rcond=1e-12, hermitian=True)
    if grouped:  # sums and spreads over contiguous runs: sequential passes only
        starts = np.flatnonzero(np.r_[True, a[1:] != a[:-1]])
        reps = n_a.astype(np.int64)

        def a_mean(col: np.ndarray) -> np.ndarray:
            return np.repeat(np.add.reduceat(col, starts) / n_a, reps)
    else:

        def a_mean(col: np.ndarray) -> np.ndarray:
            return (np.bincount(a, weights=col, minlength=na) / n_a)[a]

    out = []
    for col in v:
        ma = col if inplace else col.copy()
        ma -= a_mean(ma)
        gb = (pinv @ np.bincount(b, weights=ma, minlength=nb))[b]
        ma -= gb
        ma += a_mean(gb)
        del gb
        out.append(ma)
    return out


def _fe_fits(
    df: pd.DataFrame,
    y: np.ndarray,
    x: Sequence[np.ndarray],
    terms: Sequence[str],
    models: Sequence[Sequence[int]],
    *,
    codes: Mapping[str, np.ndarray] | None = None,
    given_rows: np.ndarray | None = None,
    outcome: str,
    fixed_effects: Sequence[str],
    cluster: str,
    customer: str,
    k_fixef: str,
    alpha: float,
    tol: float,
    maxiter: int,
) -> list[FEResult | AnalysisError]:
    """Fit ``y`` on column subsets of ``x`` that share one estimation sample.

    The sample (rows with ``y`` and every column of ``x`` observed, then
    singletons dropped) is built and demeaned once; each model in ``models``
    (column indices into ``x``) then costs one small least-squares solve.
    Demeaning works column by column, so this equals fitting each model on
    its own. ``x`` is a list of columns (of all rows of ``df``, or of
    ``given_rows`` only); ``codes`` may hold integer codes of
    the fixed-effect and cluster columns over all rows of ``df`` (computed once
    by the caller). Returns one FEResult (or the AnalysisError it raised) per
    model.
    """
    ok = ~np.isnan(y)
    for col in x:
        ok &= ~np.isnan(col)
    rows = np.flatnonzero(ok)  # factorize keys on usable rows only: the panel can be huge
    del ok
    y, x = y[rows], [col[rows] for col in x]
    if given_rows is not None:  # y and x were given on these rows of df only
        rows = given_rows[rows]
    codes = codes or {}

    def coded(f: str, rows: np.ndarray) -> np.ndarray:
        if f in codes:
            c = codes[f][rows]
            return np.where(c >= 0, _codes(np.maximum(c, 0)), -1) if (c < 0).any() else _codes(c)
        return _codes(df[f].to_numpy()[rows])

    fe_codes = (
        np.column_stack([coded(f, rows) for f in fixed_effects])
        if fixed_effects
        else np.empty((len(rows), 0), dtype=np.int64)
    )
    ok = np.ones(len(rows), dtype=bool)
    for j in range(fe_codes.shape[1]):
        ok &= fe_codes[:, j] >= 0
    if cluster in fixed_effects:  # usually: customers are both an effect and the cluster
        cl = fe_codes[:, list(fixed_effects).index(cluster)]
    else:
        cl = coded(cluster, rows)
    ok &= cl >= 0
    n_singletons = 0
    all_ok = bool(ok.all())
    if fixed_effects:
        keep = _drop_singletons(fe_codes if all_ok else fe_codes[ok])
        n_singletons = int((~keep).sum())
        idx = np.flatnonzero(keep) if all_ok else np.flatnonzero(ok)[keep]
    else:
        idx = np.flatnonzero(ok)
    del ok
    whole = len(idx) == len(rows)  # idx is then 0..n-1: no copies needed
    out: list[FEResult | AnalysisError] = []
    fit_models = []
    for cols in models:
        names = [terms[c] for c in cols]
        if len(idx) <= len(cols) + 1:
            out.append(
                AnalysisError(
                    f"Only {len(idx)} usable panel rows for {names}: too few to estimate.",
                    [
                        Problem(
                            "panel",
                            outcome,
                            "too_few_rows",
                            "rows with outcome and lagged exposures",
                            n_rows=len(idx),
                            fix="use shorter lags or check missing exposures",
                        )
                    ],
                )
            )
        else:
            out.append(None)
            fit_models.append(len(out) - 1)
    if not fit_models:
        return out
    if not whole:
        y, x = y[idx], [col[idx] for col in x]
    cl = cl if whole and cluster in fixed_effects else _codes(cl[idx])
    cust_n = (
        int(cl.max()) + 1
        if customer == cluster
        else int(pd.unique(df[customer].to_numpy()[rows[idx]]).size)
    )
    del rows
    fe = (
        (
            fe_codes
            if whole
            else np.column_stack([_codes(fe_codes[idx, j]) for j in range(fe_codes.shape[1])])
        )
        if fixed_effects
        else np.empty((len(idx), 0), dtype=np.int64)
    )
    del fe_codes, idx
    used = sorted({c for m in fit_models for c in models[m]})
    converged = True
    if fixed_effects:
        y_mean = float(y.mean())
        yx = [y, *(x[c] for c in used)]
        del x
        res = _demean_two_way(yx, fe, inplace=True)  # y and x are this function's copies
        if res is None:
            from pyfixest.core.demean import demean

            mat, converged = demean(
                np.ascontiguousarray(np.column_stack(yx)),
                fe.astype(np.uint64),
                np.ones(len(y)),
                tol=tol,
                maxiter=maxiter,
            )
            res = [mat[:, i] for i in range(mat.shape[1])]
            del mat
        del yx
        yd = res[0]
        xcols = {c: res[1 + i] for i, c in enumerate(used)}
    else:
        yd = y
        y_mean = float(y.mean())
        xcols = {c: x[c] for c in used}
    n_obs = len(y)
    g = int(cl.max()) + 1
    levels = [int(fe[:, j].max()) + 1 for j in range(fe.shape[1])]
    k_fe = 0
    if fixed_effects:
        k_fe = sum(levels) - (len(levels) - 1)  # one redundant level per extra fixed effect
        if k_fixef == "nonnested":
            for j, lv in enumerate(levels):
                if _nested_in(fe[:, j], cl):
                    k_fe -= lv - 1  # a nested effect costs one parameter, not lv
    tq = stats.t.ppf(1 - alpha / 2, g - 1)
    for m in fit_models:
        cols = list(models[m])
        names = [terms[c] for c in cols]
        if fixed_effects:
            xd = np.column_stack([xcols[c] for c in cols])
            k = len(cols)
        else:
            xd = np.column_stack([*(xcols[c] for c in cols), np.ones(len(y))])
            k = len(cols) + 1
        xtx = xd.T @ xd
        if np.linalg.matrix_rank(xtx) < xtx.shape[0]:
            out[m] = AnalysisError(
                f"The exposures {names} are collinear with each other or the fixed effects.",
                [
                    Problem(
                        "panel",
                        None,
                        "collinear",
                        "design matrix is rank deficient",
                        examples=tuple(names),
                        fix="drop an exposure or a lag",
                    )
                ],
            )
            continue
        bread = np.linalg.inv(xtx)
        beta = bread @ (xd.T @ yd)
        e = yd - xd @ beta
        # CRV1 meat: sum over clusters of (X_g' e_g)(X_g' e_g)'
        scores = np.column_stack(
            [np.bincount(cl, weights=xd[:, j] * e) for j in range(xd.shape[1])]
        )
        meat = scores.T @ scores
        df_k = k + k_fe if fixed_effects else k
        ssc = (g / (g - 1)) * ((n_obs - 1) / (n_obs - df_k))
        vcov = ssc * bread @ meat @ bread
        se = np.sqrt(np.diag(vcov))
        if not fixed_effects:
            beta, se, vcov = beta[:-1], se[:-1], vcov[:-1, :-1]
        tstat = beta / se
        summary = pd.DataFrame(
            {
                "coef": beta,
                "se": se,
                "ci_lower": beta - tq * se,
                "ci_upper": beta + tq * se,
                "p_value": 2 * stats.t.sf(np.abs(tstat), g - 1),
                "n_obs": n_obs,
                "n_customers": cust_n,
            },
            index=pd.Index(names, name="term"),
        )
        dev = yd - yd.mean()
        r2w = 1 - float(e @ e) / float(dev @ dev) if n_obs else float("nan")
        del dev
        out[m] = FEResult(
            summary=summary,
            vcov=pd.DataFrame(vcov, index=names, columns=names),
            n_obs=n_obs,
            n_clusters=g,
            n_customers=cust_n,
            df_k=int(df_k),
            ssc=float(ssc),
            singletons_dropped=n_singletons,
            converged=bool(converged),
            outcome_mean=y_mean,
            fixed_effects=tuple(fixed_effects),
            r2_within=r2w,
        )
    return out


def fit_fe(
    df: pd.DataFrame,
    *,
    outcome: str,
    regressors: Sequence[str],
    fixed_effects: Sequence[str] = (),
    cluster: str,
    customer: str | None = None,
    k_fixef: str = "nonnested",
    alpha: float = 0.05,
    tol: float = 1e-10,
    maxiter: int = 10_000,
) -> FEResult:
    """Regress an outcome on regressors with absorbed fixed effects and clustered errors.

    ``y[r] = x[r] @ b + a_1[g_1(r)] + ... + e[r]``: the effects of every
    ``fixed_effects`` column are absorbed (two effects one of which has at
    most 2,000 levels are removed exactly, others by alternating
    projections), never built as dummy columns. Rows with a missing outcome
    or regressor are dropped, then rows alone in a fixed-effect group
    (singletons), repeatedly.

    Standard errors are cluster-robust (CRV1) with the small-sample factor
    ``G/(G-1) * (N-1)/(N-K)`` (Stata ``reghdfe``, R fixest): with
    ``k_fixef="nonnested"`` fixed effects nested in the cluster are not
    counted in K; with ``"full"`` every level counts, which reproduces
    dummy-variable OLS. Intervals and p-values use Student t with G-1
    degrees of freedom.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per observation.
    outcome : str
        Outcome column.
    regressors : sequence of str
        Numeric regressor columns (one coefficient each).
    fixed_effects : sequence of str
        Columns whose effects are absorbed; empty gives pooled OLS with an
        intercept (not reported).
    cluster : str
        Cluster column for the standard errors.
    customer : str, optional
        Column whose distinct values are counted as ``n_customers``;
        default ``cluster``.
    k_fixef : {"nonnested", "full"}
        How fixed effects count in the small-sample factor (see above).
    alpha : float
        1 - confidence level.
    tol, maxiter
        Convergence settings of the alternating projections.

    Returns
    -------
    FEResult
        ``summary`` per regressor: coef (outcome units per regressor unit),
        se, ci_lower, ci_upper, p_value, n_obs, n_customers.

    Raises
    ------
    AnalysisError
        Too few usable rows, or regressors collinear with each other or the
        fixed effects.
    DataError
        A named column is missing.
    """
    regressors = list(regressors)
    fixed_effects = list(fixed_effects)
    customer = cluster if customer is None else customer
    if k_fixef not in ("nonnested", "full"):
        raise AnalysisError(f"k_fixef must be 'nonnested' or 'full', not {k_fixef!r}")
    _require(df, "panel", sorted({outcome, *regressors, *fixed_effects, cluster, customer}))
    y = df[outcome].to_numpy(dtype=float)
    x = [df[c].to_numpy(dtype=float) for c in regressors]
    (res,) = _fe_fits(
        df,
        y,
        x,
        regressors,
        [list(range(len(regressors)))],
        outcome=outcome,
        fixed_effects=fixed_effects,
        cluster=cluster,
        customer=customer,
        k_fixef=k_fixef,
        alpha=alpha,
        tol=tol,
        maxiter=maxiter,
    )
    if isinstance(res, AnalysisError):
        raise res
    return res
