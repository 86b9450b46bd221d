"""THE two-way (and more-way) fixed-effects engine: exact solves, absorption, clustered OLS.

One engine serves every fixed-effects computation of the package:

* :class:`TwoWayFE` factorises the normal equations of a customer + period
  design once (the customer effects eliminated exactly, the few period
  effects solved through a small Schur complement) and then gives effects
  (:meth:`TwoWayFE.fit`), residuals (:meth:`TwoWayFE.residuals`) or the
  solution for any per-level sums (:meth:`TwoWayFE.solve`) in a few passes
  over the rows. The event study (:mod:`analysis.stats.event_study`) uses it
  for the imputation first stage, its variance weights and the dynamic TWFE
  regression.
* :func:`demean` absorbs any set of fixed effects: two effects one of which
  has few levels go to :class:`TwoWayFE`; anything else to pyfixest's
  compiled alternating-projections kernel.
* :func:`fit_fe` regresses an outcome on regressors with the effects
  absorbed and cluster-robust (CRV1) standard errors with the small-sample
  factor of Stata ``reghdfe`` and R fixest (``_fe_fits`` shares one
  demeaning between several models on the same rows).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from threadpoolctl import threadpool_limits

from analysis.errors import AnalysisError, DataError, Problem

__all__ = ["FEResult", "TwoWayFE", "demean", "fit_fe"]


def _require(df: pd.DataFrame, table: str, columns: Iterable[str]) -> None:
    """Raise a :class:`DataError` naming the ``columns`` that ``df`` lacks."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            f"The {table} table lacks columns this regression needs.",
            [
                Problem(
                    table,
                    c,
                    "missing_column",
                    f"column {c!r} is missing",
                    fix=f"add a column {c!r}",
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


#: Largest number of levels of the smaller of two fixed effects solved directly.
_DIRECT_FE_LEVELS = 2_000

#: Relative cut-off of the pseudo-inverse of the Schur complement: its null space (one
#: direction per connected component of the design) is at rounding level, ~1e-14.
_RCOND = 1e-10


class TwoWayFE:
    """Exact least squares on two crossed fixed effects, one of them with few levels.

    The normal equations of ``y[r] = a[first[r]] + b[second[r]] + e[r]`` are
    factorised once: the effect with more levels (customers) is eliminated
    exactly and the one with fewer (periods) is solved through the small
    Schur complement ``diag(n_small) - C' diag(1/n_large) C`` (``C`` the
    large-by-small count matrix), which is built from customer-period counts
    in blocks and pseudo-inverted (an unbalanced or disconnected panel only
    makes it singular). Everything after that is a few passes over the rows:
    memory stays a few bytes per row and no dummy column is ever built.

    One factorisation serves any number of right-hand sides: the effects of
    an outcome (:meth:`fit`), the residuals of columns on both effects
    (:meth:`residuals`, the Frisch-Waugh-Lovell demeaning behind
    :func:`fit_fe`), and the solution for arbitrary per-level sums
    (:meth:`solve`, used for the weights of linear estimators such as the
    imputation event study).

    Parameters
    ----------
    first, second : numpy.ndarray
        Integer codes ``0..n-1`` of the two effects, one per row. Rows sorted
        by the effect with more levels take a faster route (slices, no
        scatter).
    n_first, n_second : int, optional
        Numbers of levels (default: largest code + 1). Levels without rows
        are allowed; their effects are 0.

    Attributes
    ----------
    counts_first, counts_second : numpy.ndarray
        Rows per level (float).

    Notes
    -----
    The split of the fitted values between the two effects is one of many
    equivalent ones (a constant can move from one to the other); fitted
    values ``a[first] + b[second]`` and residuals are unique.
    """

    def __init__(
        self,
        first: np.ndarray,
        second: np.ndarray,
        n_first: int | None = None,
        n_second: int | None = None,
    ) -> None:
        first, second = np.asarray(first), np.asarray(second)
        if n_first is None:
            n_first = int(first.max()) + 1 if first.size else 0
        if n_second is None:
            n_second = int(second.max()) + 1 if second.size else 0
        # "a" is the effect eliminated exactly (more levels), "b" the one kept (fewer)
        self._swap = n_second > n_first
        a, b, na, nb = (
            (second, first, n_second, n_first) if self._swap else (first, second, n_first, n_second)
        )
        self._a, self._b, self._na, self._nb = a, b, int(na), int(nb)
        self._cnt_a = np.bincount(a, minlength=na).astype(float)
        self._cnt_b = np.bincount(b, minlength=nb).astype(float)
        self._inv_a = np.where(self._cnt_a > 0, 1.0 / np.maximum(self._cnt_a, 1.0), 0.0)
        self._grouped = bool(a.size) and bool((a[1:] >= a[:-1]).all())
        if self._grouped:  # contiguous runs per level: sums and spreads without scatter
            self._starts = np.flatnonzero(np.r_[True, a[1:] != a[:-1]])
            self._present = a[self._starts]
            self._all_present = len(self._present) == na
            self._reps = self._cnt_a[self._present].astype(np.int64)
        self._pinv = np.linalg.pinv(
            np.diag(self._cnt_b) - self._cross(), rcond=_RCOND, hermitian=True
        )

    @property
    def counts_first(self) -> np.ndarray:
        """Rows per level of ``first``."""
        return self._cnt_b if self._swap else self._cnt_a

    @property
    def counts_second(self) -> np.ndarray:
        """Rows per level of ``second``."""
        return self._cnt_a if self._swap else self._cnt_b

    def _cross(self) -> np.ndarray:
        """Return ``C' diag(1/n_a) C`` (small x small), in blocks of large-effect levels."""
        out = np.zeros((self._nb, self._nb))
        # small blocks, one BLAS thread: more threads only spin on a busy machine (measured
        # 2-3x slower under load on 2 cores)
        with threadpool_limits(1, user_api="blas"):
            self._add_cross_blocks(out, step=8192)
        return out

    def _add_cross_blocks(self, out: np.ndarray, step: int) -> None:
        a, b, na, nb, inv = self._a, self._b, self._na, self._nb, self._inv_a
        if self._grouped:  # rows grouped by the large effect (a panel): slice, no index
            cuts = np.searchsorted(a, np.arange(0, na + step, step))
            for k, i in enumerate(range(0, na, step)):
                r0, r1 = cuts[k], cuts[k + 1]
                c = min(step, na - i)
                blk = (
                    np.bincount((a[r0:r1] - i).astype(np.int64) * nb + b[r0:r1], minlength=c * nb)
                    .reshape(c, nb)
                    .astype(float)
                )
                out += blk.T @ (blk * inv[i : i + c, None])
        else:
            from scipy import sparse

            counts = sparse.csr_matrix((np.ones(len(a)), (a, b)), shape=(na, nb))
            for i in range(0, na, step):
                blk = counts[i : i + step].toarray()
                out += blk.T @ (blk * inv[i : i + step, None])

    def _sum_a(self, col: np.ndarray) -> np.ndarray:
        """Per-level sums of ``col`` over the large effect."""
        if not self._grouped:
            return np.bincount(self._a, weights=col, minlength=self._na)
        s = np.add.reduceat(col, self._starts)
        if self._all_present:
            return s
        out = np.zeros(self._na)
        out[self._present] = s
        return out

    def _spread_a(self, per_level: np.ndarray) -> np.ndarray:
        """Per-row values of a per-level array of the large effect."""
        if self._grouped:
            v = per_level if self._all_present else per_level[self._present]
            return np.repeat(v, self._reps)
        return per_level[self._a]

    def solve(
        self, sums_first: np.ndarray, sums_second: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Solve the normal equations for given per-level sums (one or more right-hand sides).

        Parameters
        ----------
        sums_first, sums_second : numpy.ndarray
            ``Z' v`` split by effect: for a column ``v`` over the rows, the
            per-level sums ``bincount(first, v)`` and ``bincount(second, v)``;
            shape ``(n,)`` or ``(n, k)`` for ``k`` right-hand sides.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            Effects of ``first`` and of ``second`` (same shape as the sums):
            the least-squares coefficients ``(Z'Z)^+ Z' v`` up to the split
            of a constant between the two effects.
        """
        one = np.ndim(sums_first) == 1
        us, ps = (sums_second, sums_first) if self._swap else (sums_first, sums_second)
        us = np.asarray(us, float).reshape(self._na, -1)
        ps = np.asarray(ps, float).reshape(self._nb, -1)
        a, b, na, nb = self._a, self._b, self._na, self._nb
        ua = us * self._inv_a[:, None]
        # C' ua (small-effect totals of the large-effect parts), then C g (the reverse)
        ct_ua = np.column_stack(
            [np.bincount(b, weights=ua[a, j], minlength=nb) for j in range(ua.shape[1])]
        )
        g = self._pinv @ (ps - ct_ua)
        cg = np.column_stack(
            [np.bincount(a, weights=g[b, j], minlength=na) for j in range(g.shape[1])]
        )
        h = ua - cg * self._inv_a[:, None]
        if one:
            h, g = h[:, 0], g[:, 0]
        return (g, h) if self._swap else (h, g)

    def fit(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Least-squares effects of ``y`` (one value per row).

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            Effects of ``first`` and of ``second``; fitted values are
            ``a[first] + b[second]``.
        """
        first, second = (self._b, self._a) if self._swap else (self._a, self._b)
        n_first, n_second = (self._nb, self._na) if self._swap else (self._na, self._nb)
        return self.solve(
            np.bincount(first, weights=y, minlength=n_first),
            np.bincount(second, weights=y, minlength=n_second),
        )

    def residuals(
        self, columns: Sequence[np.ndarray], *, inplace: bool = False
    ) -> list[np.ndarray]:
        """Residuals of each column on both effects (two-way demeaning).

        ``M_A v - M_A D g`` with ``g`` solving ``(D' M_A D) g = D' M_A v``
        (Frisch-Waugh-Lovell; ``A`` the large effect's dummies, ``D`` the
        small one's): the limit alternating projections converge to, in a
        few passes over the rows.

        Parameters
        ----------
        columns : sequence of numpy.ndarray
            Float columns, one value per row.
        inplace : bool
            Overwrite the columns (no second copy).

        Returns
        -------
        list of numpy.ndarray
        """
        inv, b, nb = self._inv_a, self._b, self._nb
        out = []
        for col in columns:
            ma = col if inplace else col.copy()
            ma -= self._spread_a(self._sum_a(ma) * inv)
            gb = (self._pinv @ np.bincount(b, weights=ma, minlength=nb))[b]
            ma -= gb
            ma += self._spread_a(self._sum_a(gb) * inv)
            del gb
            out.append(ma)
        return out


def demean(
    columns: Sequence[np.ndarray],
    fe: np.ndarray,
    *,
    tol: float = 1e-10,
    maxiter: int = 10_000,
    inplace: bool = False,
) -> tuple[list[np.ndarray], bool]:
    """Residuals of columns on one or more sets of fixed effects (absorption).

    Two effects one of which has at most 2,000 levels (customers and
    periods) are removed exactly by :class:`TwoWayFE`; any other shape goes
    to pyfixest's compiled alternating-projections kernel.

    Parameters
    ----------
    columns : sequence of numpy.ndarray
        Float columns, one value per row.
    fe : numpy.ndarray
        Integer codes ``0..k-1`` of each fixed effect, shape ``(rows, effects)``;
        every level must have rows.
    tol, maxiter
        Convergence settings of the alternating projections.
    inplace : bool
        Allow the columns to be overwritten (the exact route does).

    Returns
    -------
    (list of numpy.ndarray, bool)
        The residual columns, and whether the projections converged (True
        on the exact route).
    """
    if fe.shape[1] == 2 and len(fe):
        sizes = [int(fe[:, j].max()) + 1 for j in range(2)]
        if min(sizes) <= _DIRECT_FE_LEVELS:
            return TwoWayFE(fe[:, 0], fe[:, 1], *sizes).residuals(columns, inplace=inplace), True
    from pyfixest.core.demean import demean as pf_demean

    mat, converged = pf_demean(
        np.ascontiguousarray(np.column_stack(columns)),
        fe.astype(np.uint64),
        np.ones(len(fe)),
        tol=tol,
        maxiter=maxiter,
    )
    return [mat[:, i] for i in range(mat.shape[1])], bool(converged)


def too_few_rows(n: int, names: Sequence[str], outcome: str) -> AnalysisError:
    """Return the error of a regression with ``n`` usable rows, too few for ``names``.

    Parameters
    ----------
    n : int
        Usable rows.
    names : sequence of str
        The regressors' names.
    outcome : str
        The outcome column (named in the problem).

    Returns
    -------
    AnalysisError
    """
    return AnalysisError(
        f"Only {n} usable rows for {list(names)}: too few to estimate.",
        [
            Problem(
                "panel",
                outcome,
                "too_few_rows",
                "rows with the outcome and every regressor observed",
                n_rows=n,
                fix="check the regressors' missing values",
            )
        ],
    )


def collinear_regressors(names: Sequence[str]) -> AnalysisError:
    """Return the error of regressors collinear with each other or the fixed effects.

    Parameters
    ----------
    names : sequence of str
        The regressors' names.

    Returns
    -------
    AnalysisError
    """
    return AnalysisError(
        f"The regressors {list(names)} are collinear with each other or the fixed effects.",
        [
            Problem(
                "panel",
                None,
                "collinear",
                "design matrix is rank deficient",
                examples=tuple(names),
                fix="drop a regressor",
            )
        ],
    )


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
            out.append(too_few_rows(len(idx), names, outcome))
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
        res, converged = demean(yx, fe, tol=tol, maxiter=maxiter, inplace=True)
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
            out[m] = collinear_regressors(names)
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
    ``fixed_effects`` column are absorbed by :func:`demean` (two effects one
    of which has at most 2,000 levels are removed exactly by
    :class:`TwoWayFE`, others by alternating projections), never built as
    dummy columns. Rows with a missing outcome
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
    return _fe_fit_all(
        df,
        y,
        x,
        regressors,
        outcome=outcome,
        fixed_effects=fixed_effects,
        cluster=cluster,
        customer=customer,
        k_fixef=k_fixef,
        alpha=alpha,
        tol=tol,
        maxiter=maxiter,
    )


def _fe_fit_all(
    df: pd.DataFrame, y: np.ndarray, x: Sequence[np.ndarray], names: Sequence[str], **kw
) -> FEResult:
    """Fit one regression of ``y`` on every column of ``x``; raise its error if it failed.

    :func:`_fe_fits` with a single model; keyword arguments as there.
    """
    (res,) = _fe_fits(df, y, x, names, [list(range(len(names)))], **kw)
    if isinstance(res, AnalysisError):
        raise res
    return res
