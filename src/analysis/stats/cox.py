"""The Cox proportional-hazards model: the package's one Cox engine and its callers.

:func:`fit_cox` is the engine: Newton-Raphson on the partial likelihood with
Efron or Breslow ties, strata, late entry and counting-process ``(start, stop]``
rows, case weights and a cluster-robust (sandwich) variance. Its callers:
:func:`cox` (the retention study's model on a customer table, with the
Grambsch-Therneau PH test :func:`ph_test` as R's ``cox.zph``, concordance and
:func:`cox_stratified_refit`), :func:`weighted_cox` (the loyalty study's
IP-weighted hazard ratio) and the experience study's counting-process fit
(:func:`analysis.studies.experience.churn_hazards`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import DataError, ParamsError, Problem
from analysis.stats.concordance import concordance_index
from analysis.stats.cox_refit import cox_stratified_refit
from analysis.stats.survival import TABLE, _entry_eff, _km_core, _prepare, _z, holm

__all__ = [
    "CoxFit",
    "CoxResult",
    "WeightedCoxResult",
    "concordance_index",
    "cox",
    "cox_stratified_refit",
    "fit_cox",
    "ph_test",
    "weighted_cox",
]


# ----------------------------------------------------------------------------
# Cox regression
# ----------------------------------------------------------------------------


@dataclass
class CoxResult:
    """Result of :func:`cox`.

    Attributes
    ----------
    summary : pandas.DataFrame
        Indexed by term: coef, se, hazard_ratio, ci_lower, ci_upper, z, p_value,
        covariate, level (None for numeric terms).
    ph_test : pandas.DataFrame
        Indexed by term plus "GLOBAL": chisq, df, p_value (Grambsch-Therneau
        score test of proportional hazards).
    concordance : float
        Harrell's C of the linear predictor (within strata, left truncation aware).
    reference_levels : dict
        Reference level of each categorical covariate.
    n, n_events, n_left_truncated, n_dropped_missing : int
    loglik : float
        Log partial likelihood at the estimate.
    spec : dict
        The arguments of the fit (used by :func:`cox_stratified_refit`).
    """

    summary: pd.DataFrame
    ph_test: pd.DataFrame
    concordance: float
    reference_levels: dict
    n: int
    n_events: int
    n_left_truncated: int
    n_dropped_missing: int
    loglik: float
    spec: dict = field(default_factory=dict)
    concordance_detail: dict = field(default_factory=dict)
    converged: bool = True

    def ph_failures(self, alpha: float = 0.05) -> list[str]:
        """Return covariates with a term whose PH test fails at ``alpha`` after Holm adjustment.

        Holm's adjustment across terms keeps one of several tests from
        flagging by chance (3 terms at 5% would give a false alarm in about
        one model of seven).
        """
        t = self.ph_test.drop(index="GLOBAL", errors="ignore")
        t = t[t["p_value"].notna()]
        if t.empty:
            return []
        adj = holm(t["p_value"].to_numpy())
        bad = t.index[adj < alpha]
        cov = self.summary.loc[bad, "covariate"] if len(bad) else []
        return list(dict.fromkeys(cov))


def _is_categorical(s: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s))


def _design(df: pd.DataFrame, covariates, reference: dict | None):
    """Build the numeric design matrix with treatment coding against stated references."""
    reference = dict(reference or {})
    cols, names, covs, levels, refs = [], [], [], [], {}
    for c in covariates:
        s = df[c]
        if _is_categorical(s):
            vals = s.astype(object)
            counts = vals.value_counts()
            if c in reference:
                ref = reference[c]
                if ref not in counts.index:
                    raise ParamsError(
                        f"reference level {ref!r} of {c} is not in the data",
                        [
                            Problem(
                                "survival",
                                c,
                                "reference_level",
                                f"{ref!r} not found",
                                examples=tuple(counts.index[:5]),
                                fix="choose one of the listed levels",
                            )
                        ],
                    )
            else:
                ref = counts.index[0]  # most frequent level
            refs[c] = ref
            try:
                others = sorted([v for v in counts.index if v != ref])
            except TypeError:
                others = sorted([v for v in counts.index if v != ref], key=str)
            for lev in others:
                cols.append((vals == lev).to_numpy(dtype=float))
                names.append(f"{c}[{lev}]")
                covs.append(c)
                levels.append(lev)
        else:
            cols.append(s.to_numpy(dtype=float))
            names.append(c)
            covs.append(c)
            levels.append(None)
    x = np.column_stack(cols) if cols else np.zeros((len(df), 0))
    return x, names, covs, levels, refs


def _transform_time(kind, t, e, entry):
    """Return g(t) at the event rows (in row order) for the proportional-hazards test.

    As R's ``cox.zph``: "rank" ranks the follow-up times of ALL rows (censored included,
    average ties) read at the events; "km" is 1 - the left-continuous pooled KM curve.
    """
    ev = e == 1
    if kind == "identity":
        return t[ev].astype(float)
    if kind == "log":
        return np.log(t[ev])
    if kind == "rank":
        return stats.rankdata(t)[ev]
    if kind == "km":
        tt, _, _, s, _ = _km_core(t, e, entry if np.any(entry > 0) else None)
        idx = np.searchsorted(tt, t[ev], side="left") - 1  # left-continuous S(t-)
        s_left = np.where(idx >= 0, s[np.clip(idx, 0, None)], 1.0)
        return 1.0 - s_left
    raise ParamsError(
        f"unknown PH-test time transform {kind!r}",
        [
            Problem(
                "survival",
                "ph_transform",
                "choice",
                f"got {kind!r}",
                fix="use 'km', 'rank', 'identity' or 'log'",
            )
        ],
    )


# ----------------------------------------------------------------------------
# The engine: Newton-Raphson on the partial likelihood
# ----------------------------------------------------------------------------

#: Largest covariate-patterns x event-times matrix (cells) kept for the risk-set sums.
_MAX_PATTERN_CELLS = 20_000_000


def _risk_sum(v: np.ndarray, lo: np.ndarray, hi: np.ndarray, m: int) -> np.ndarray:
    """Sum ``v`` over the rows at risk at each event time (rows enter at ``lo``, leave at ``hi``)."""
    a = np.bincount(lo, weights=v, minlength=m) - np.bincount(hi, weights=v, minlength=m)
    return np.cumsum(a)[:-1]


def _sum_by(idx: np.ndarray, w: np.ndarray, n: int) -> np.ndarray:
    """Sum the rows of ``w`` (vector or matrix) by ``idx`` into ``n`` bins."""
    if w.ndim == 1:
        return np.bincount(idx, weights=w, minlength=n)
    return np.column_stack([np.bincount(idx, weights=c, minlength=n) for c in w.T])


def _gram(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Return x' diag(v) x in blocks (bounded memory)."""
    out = np.zeros((x.shape[1], x.shape[1]))
    step = 1 << 18
    for i in range(0, len(v), step):
        xs = x[i : i + step]
        out += (xs * v[i : i + step, None]).T @ xs
    return out


def _risk_sets(x, lo, hi, w, n_times):
    """Compress rows for the risk-set sums, which depend on rows only through (x, lo, hi, w).

    With few distinct covariate rows (patterns) the sums are taken over a
    patterns x event-times matrix of (weighted) rows at risk, built once, so
    an iteration costs O(patterns x event times x p) however many rows (~1M
    customers x 36 months). Otherwise rows with equal covariates, entry and
    exit are merged, weighted by their total case weight. Returns
    ``("patterns", x_g, at_risk, None, None)`` or ``("rows", x_r, lo_r, hi_r, w_r)``.
    """
    n = len(lo)
    m = n_times + 1
    key = np.zeros(n, dtype=np.int64)
    card = 1
    for col in [*x.T, None, lo, hi]:
        if col is None:  # covariate pattern complete
            grp, uniq = pd.factorize(key)
            n_pat = len(uniq)
            if n_pat * m <= min(_MAX_PATTERN_CELLS, 8 * n):
                first = np.empty(n_pat, dtype=np.int64)
                first[grp[::-1]] = np.arange(n - 1, -1, -1)  # first row of each pattern
                cells = grp.astype(np.int64) * m
                at_risk = np.bincount(cells + lo, weights=w, minlength=n_pat * m) - np.bincount(
                    cells + hi, weights=w, minlength=n_pat * m
                )
                del cells
                at_risk = np.cumsum(at_risk.reshape(n_pat, m), axis=1)[:, :-1].astype(float)
                return "patterns", x[first], at_risk, None, None
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
    wr = np.bincount(grp, weights=w, minlength=len(uniq)).astype(float)
    return "rows", x[first], lo[first], hi[first], wr


@dataclass
class _State:
    """Risk-set quantities of one stratum at one coefficient vector."""

    k: float  # shift of the linear predictor (exp overflow guard)
    ra: np.ndarray  # exp(eta - k) of the compressed rows
    rw: np.ndarray  # ... times their case weight (rows route)
    re: np.ndarray  # case weight x exp(eta - k) of the event rows
    den: np.ndarray  # risk-set sum S0 of each term (Efron: minus the tied share)
    m: np.ndarray  # risk-set mean of x of each term
    loglik: float
    grad: np.ndarray


class _Stratum:
    """Risk-set bookkeeping of one stratum: rows at risk at event time u when start < u <= stop.

    The partial likelihood is a sum of terms: one per event time (Breslow;
    weight = total case weight of its events) or one per event (Efron: the
    k-th of d tied events sees the risk set minus k/d of the tied events,
    weight = their mean case weight).
    """

    def __init__(self, stop, event, x, mu, start=None, weight=None, ties="efron"):
        n = len(stop)
        ev = np.flatnonzero(event == 1)
        self.ev = ev
        self.times, inv = np.unique(stop[ev], return_inverse=True)
        self.inv = inv = inv.ravel()
        self.n_times = n_times = len(self.times)
        self.we = np.ones(len(ev)) if weight is None else weight[ev]
        d = np.bincount(inv, minlength=n_times).astype(float)
        dw = d if weight is None else np.bincount(inv, weights=self.we, minlength=n_times)
        self.lo = (
            np.zeros(n, dtype=np.int64)
            if start is None
            else np.searchsorted(self.times, start, side="right")
        )
        self.hi = np.searchsorted(self.times, stop, side="right")
        self.xe = x[ev] - mu
        self.wxe = self.we @ self.xe
        if ties == "efron" and bool((d > 1).any()):
            starts = np.concatenate([[0], np.cumsum(d)[:-1]]).astype(np.int64)
            order = np.argsort(inv, kind="stable")
            pos = np.empty(len(ev))
            pos[order] = np.arange(len(ev)) - np.repeat(starts, d.astype(np.int64))
            self.pj, self.pc, self.pw = inv, pos / d[inv], (dw / d)[inv]
        else:  # Breslow (or no ties): one term per event time
            self.pj, self.pc, self.pw = np.arange(n_times), None, dw
        kind, xa, r1, r2, wr = _risk_sets(x, self.lo, self.hi, weight, n_times)
        self.kind, self.xa, self.r1, self.r2, self.wr = kind, xa - mu, r1, r2, wr

    def evaluate(self, beta) -> _State:
        """Return the log partial likelihood, score and risk-set sums at ``beta``."""
        eta_a = self.xa @ beta
        k = float(eta_a.max())
        ra = np.exp(eta_a - k)
        if self.kind == "patterns":  # r1: patterns x times matrix of weighted rows at risk
            rw = ra
            s0 = self.r1.T @ ra
            s1 = self.r1.T @ (ra[:, None] * self.xa)
        else:
            rw = ra if self.wr is None else self.wr * ra
            m1 = self.n_times + 1
            s0 = _risk_sum(rw, self.r1, self.r2, m1)
            s1 = np.column_stack([_risk_sum(rw * c, self.r1, self.r2, m1) for c in self.xa.T])
        eta_e = self.xe @ beta
        re = self.we * np.exp(eta_e - k)
        if self.pc is None:
            den, m = s0, s1 / s0[:, None]
        else:
            pj, pc = self.pj, self.pc
            d0 = _sum_by(self.inv, re, self.n_times)
            d1 = _sum_by(self.inv, re[:, None] * self.xe, self.n_times)
            den = s0[pj] - pc * d0[pj]
            m = (s1[pj] - pc[:, None] * d1[pj]) / den[:, None]
        loglik = float(np.sum(self.we * eta_e) - np.sum(self.pw * (np.log(den) + k)))
        grad = self.wxe - self.pw @ m
        return _State(k, ra, rw, re, den, m, loglik, grad)

    def information(self, st: _State, mult=None) -> np.ndarray:
        """Return sum over terms of weight x mult x [(S2 - c D2) / den - m m'] (the information).

        ``sum_t q_t S2_t = sum_i w_i r_i x_i x_i' (Q[hi_i] - Q[lo_i])``, Q = cumsum(q): one
        weighted cross-product instead of p^2/2 risk-set sums.
        """
        pw = self.pw if mult is None else self.pw * mult
        q = pw / st.den
        a = _sum_by(self.pj, q, self.n_times)
        if self.kind == "patterns":
            v = st.ra * (self.r1 @ a)
        else:
            ca = np.concatenate([[0.0], np.cumsum(a)])
            v = st.rw * (ca[self.r2] - ca[self.r1])
        h = _gram(self.xa, v) - (st.m * pw[:, None]).T @ st.m
        if self.pc is not None:  # Efron: a tied event leaves k/d of the risk set
            h -= _gram(self.xe, st.re * _sum_by(self.pj, q * self.pc, self.n_times)[self.inv])
        return h

    def add_scores(self, st: _State, beta, x, mu, weight, cluster, out) -> None:
        """Add the score residuals (Lin & Wei 1989) of the stratum's rows to their clusters.

        Row i: w_i [dN_i (x_i - xbar) - r_i sum_t Y_i(t) (x_i - xbar_t) dLambda_t], with
        Efron's tied share at the event's own time (as R's ``residuals(fit, "score")``).
        """
        p, ng, nt, pj = len(beta), out.shape[0], self.n_times, self.pj
        q = self.pw / st.den
        ca = np.concatenate([[0.0], np.cumsum(_sum_by(pj, q, nt))])
        cm = np.vstack([np.zeros(p), np.cumsum(_sum_by(pj, q[:, None] * st.m, nt), axis=0)])
        lo, hi = self.lo, self.hi
        r = np.exp(x @ beta - (mu @ beta + st.k))
        da = ca[hi] - ca[lo]
        for j in range(p):
            res = -r * ((x[:, j] - mu[j]) * da - (cm[hi, j] - cm[lo, j]))
            if weight is not None:
                res *= weight
            out[:, j] += np.bincount(cluster, weights=res, minlength=ng)
        # event part: x_i minus the mean of its time's terms
        xbar = _sum_by(pj, self.pw[:, None] * st.m, nt) / _sum_by(pj, self.pw, nt)[:, None]
        re = self.xe - xbar[self.inv]
        if self.pc is not None:  # an event is at risk for only 1 - k/d of its own time's terms
            b, bm = _sum_by(pj, q * self.pc, nt), _sum_by(pj, (q * self.pc)[:, None] * st.m, nt)
            r_e = np.exp(self.xe @ beta - st.k)
            re = re + r_e[:, None] * (self.xe * b[self.inv][:, None] - bm[self.inv])
        re = re * self.we[:, None]
        ce = cluster[self.ev]
        for j in range(p):
            out[:, j] += np.bincount(ce, weights=re[:, j], minlength=ng)


@dataclass
class CoxFit:
    """Result of :func:`fit_cox`, the package's Cox engine.

    Attributes
    ----------
    coef : numpy.ndarray
        Log hazard ratios, one per column of ``x``.
    cov : numpy.ndarray
        Model-based covariance (inverse of the information matrix).
    robust_cov : numpy.ndarray or None
        Sandwich (Lin & Wei 1989) covariance from score residuals summed by
        cluster, ``I^-1 U'U I^-1`` without small-sample factor (as R
        ``coxph(..., cluster = id)``); None unless ``cluster`` or ``robust``
        was given.
    information : numpy.ndarray
        Information matrix at ``coef``.
    loglik : float
        Log partial likelihood at ``coef``.
    converged : bool
    iterations, n, n_events : int
        Newton steps taken, rows used, event rows (unweighted count).
    """

    coef: np.ndarray
    cov: np.ndarray
    robust_cov: np.ndarray | None
    information: np.ndarray
    loglik: float
    converged: bool
    iterations: int
    n: int
    n_events: int


def fit_cox(
    stop,
    event,
    x,
    *,
    start=None,
    strata=None,
    weights=None,
    cluster=None,
    robust: bool = False,
    ties: str = "efron",
    max_iter: int = 50,
    tol: float = 1e-9,
) -> CoxFit:
    """Fit a Cox proportional-hazards model: the package's one Cox engine.

    Newton-Raphson (with step halving) on the partial likelihood. A row is at
    risk for events at times ``start < u <= stop``: right censoring, late
    entry, and counting-process data with several rows per subject. Risk-set
    sums cost O(rows) per iteration (cumulative sums over the event times) on
    rows compressed to covariate patterns x event times when covariates
    repeat, else merged when equal in covariates, entry and exit; the
    information is one weighted cross-product. An iteration on ~1M customers x
    36 monthly rows takes well under a second.

    Parameters
    ----------
    stop : array_like
        End of each row's time at risk (the event or censoring time).
    event : array_like
        1 if the row ends in the event, else 0.
    x : array_like
        Design matrix (rows x terms), numeric.
    start : array_like, optional
        Start of each row's time at risk (exclusive). None: at risk from
        before the first event time.
    strata : array_like, optional
        Integer codes (or labels) of strata with their own baseline hazard.
        Rows sorted by stratum avoid a copy of ``x``.
    weights : array_like, optional
        Case weights (e.g. inverse-probability weights); events and risk
        sets are weighted, as R ``coxph(weights = )``.
    cluster : array_like, optional
        Cluster of each row (e.g. customer id when a customer has several
        rows); gives ``robust_cov`` from score residuals summed by cluster.
    robust : bool
        Return ``robust_cov`` with each row its own cluster when no
        ``cluster`` is given (the sandwich that keeps estimated weights honest).
    ties : {"efron", "breslow"}
        Handling of tied event times (within a stratum).
    max_iter : int
        Newton iterations at most.
    tol : float
        Relative change of the log partial likelihood at convergence (with
        every coefficient step below 1e-7).

    Returns
    -------
    CoxFit

    Raises
    ------
    numpy.linalg.LinAlgError
        When the information matrix is singular (collinear terms, or a
        term without events).

    Notes
    -----
    Score residuals follow Therneau & Grambsch (2000, ch. 4); with Efron
    ties an event is at risk for 1 - k/d of the k-th of its time's d terms,
    as in R's ``residuals.coxph``.
    """
    stop = np.asarray(stop, dtype=float)
    event = np.asarray(event)
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    n, p = x.shape
    start = None if start is None else np.asarray(start, dtype=float)
    weights = None if weights is None else np.asarray(weights, dtype=float)
    if cluster is not None:
        cluster = np.asarray(cluster)
        if not (np.issubdtype(cluster.dtype, np.integer) and (n == 0 or cluster.min() >= 0)):
            cluster = pd.factorize(cluster)[0]
    elif robust:
        cluster = np.arange(n)

    def sub(v, idx):
        return None if v is None else v[idx]

    bounds = np.array([0, n])
    if strata is not None and n:
        codes = np.asarray(strata)
        if not np.issubdtype(codes.dtype, np.integer):
            codes = pd.factorize(codes)[0]
        if not bool((codes[1:] >= codes[:-1]).all()):  # one stratum's rows contiguous
            o = np.argsort(codes, kind="stable")
            codes, stop, event, x, start = codes[o], stop[o], event[o], x[o], sub(start, o)
            weights, cluster = sub(weights, o), sub(cluster, o)
        bounds = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1], True])
    mu = x.mean(axis=0) if n else np.zeros(p)
    slices = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=False)]
    parts = [
        (sl, _Stratum(stop[sl], event[sl], x[sl], mu, sub(start, sl), sub(weights, sl), ties))
        for sl in slices
        if (event[sl] == 1).any()
    ]

    def total(beta):
        states = [sp.evaluate(beta) for _, sp in parts]
        ll = sum(s.loglik for s in states)
        g = np.sum([s.grad for s in states], axis=0) if states else np.zeros(p)
        h = np.zeros((p, p))
        for (_, sp), s in zip(parts, states, strict=True):
            h += sp.information(s)
        return ll, g, h, states

    beta = np.zeros(p)
    ll, g, h, states = total(beta)
    converged, it = False, 0
    while it < max_iter:
        it += 1
        step = np.linalg.solve(h, g)
        new = beta + step
        ll_new, g_new, h_new, st_new = total(new)
        halvings = 0
        # halve only on a real drop: near the optimum a Newton step changes the
        # log-likelihood by less than its rounding error
        while (not np.isfinite(ll_new) or ll_new < ll - 1e-10 * (abs(ll) + 1)) and halvings < 30:
            step = step / 2
            new = beta + step
            ll_new, g_new, h_new, st_new = total(new)
            halvings += 1
        done = (
            halvings == 0
            and abs(ll_new - ll) <= tol * (abs(ll) + tol)
            and np.max(np.abs(step)) < 1e-7
        )
        beta, ll, g, h, states = new, ll_new, g_new, h_new, st_new
        if done:
            converged = True
            break
    cov = np.linalg.inv(h)
    robust_cov = None
    if cluster is not None:
        ng = int(cluster.max()) + 1 if n else 0
        u = np.zeros((ng, p))
        for (sl, sp), s in zip(parts, states, strict=True):
            sp.add_scores(s, beta, x[sl], mu, sub(weights, sl), cluster[sl], u)
        robust_cov = cov @ (u.T @ u) @ cov
    return CoxFit(
        coef=beta,
        cov=cov,
        robust_cov=robust_cov,
        information=h,
        loglik=float(ll),
        converged=converged,
        iterations=it,
        n=int(n),
        n_events=int((event == 1).sum()),
    )


def ph_test(
    time, event, x, beta, *, entry=None, strata=None, transform="km", names=None, ties="efron"
) -> pd.DataFrame:
    """Test proportional hazards with the Grambsch-Therneau score test.

    For each term k the score test, at the fitted coefficients, for adding
    x_k * g(t) to the model (a slope in the scaled Schoenfeld residuals over
    transformed time g(t)); the global test adds all of them. As R's
    ``cox.zph`` (survival >= 3.0, ``terms = FALSE``); ties as in the fit.

    Parameters
    ----------
    time, event : array_like
        Follow-up end and 1/0 event indicator of each row.
    x : array_like
        Design matrix of the fit (rows x terms).
    beta : array_like
        Fitted coefficients.
    entry : array_like, optional
        Entry times (risk sets ``(entry, time]``).
    strata : array_like, optional
        Stratum of each row (g(t) is computed from the pooled rows, as R does).
    transform : {"km", "rank", "identity", "log"}
        g(t): 1 - Kaplan-Meier (left-continuous), the rank of the time
        among ALL rows' follow-up times (censored included, average ranks;
        R's ``rank(times)``), t itself, or log t.
    names : list of str, optional
        Term names (default x0, x1, ...).
    ties : {"efron", "breslow"}

    Returns
    -------
    pandas.DataFrame
        Indexed by term and "GLOBAL": chisq, df, p_value.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event).astype(int)
    x = np.asarray(x, dtype=float)
    beta = np.asarray(beta, dtype=float)
    p = x.shape[1]
    entry = np.zeros_like(time) if entry is None else np.asarray(entry, dtype=float)
    strata = (
        np.zeros(len(time), dtype=np.int64)
        if strata is None
        else pd.factorize(np.asarray(strata))[0]
    )
    # g(t) from the pooled data, as R does
    g_full = np.zeros(len(time))
    g_full[event == 1] = _transform_time(transform, time, event, entry)
    mu = x.mean(axis=0)  # residuals and variances do not depend on centring
    u2 = np.zeros(p)
    i11 = np.zeros((p, p))
    i12 = np.zeros((p, p))
    i22 = np.zeros((p, p))
    start = _entry_eff(entry)
    for s in np.unique(strata):
        m = strata == s
        if event[m].sum() == 0:
            continue
        part = _Stratum(time[m], event[m], x[m], mu, start=start[m], ties=ties)
        g_ev = g_full[m][part.ev]
        if part.pc is None:  # one term per event time: g of that time
            g = np.zeros(part.n_times)
            g[part.inv] = g_ev
        else:
            g = g_ev
        st = part.evaluate(beta)
        u2 += (part.we * g_ev) @ part.xe - (part.pw * g) @ st.m
        i11 += part.information(st)
        i12 += part.information(st, g)
        i22 += part.information(st, g**2)
    rows = {}
    try:
        inv11 = np.linalg.inv(i11)
        schur = i22 - i12.T @ inv11 @ i12
        glob = float(u2 @ np.linalg.solve(schur, u2))
    except np.linalg.LinAlgError:
        inv11, schur, glob = None, None, np.nan
    names = names or [f"x{k}" for k in range(p)]
    for k in range(p):
        if inv11 is None:
            rows[names[k]] = (np.nan, 1, np.nan)
            continue
        a_k = i12[:, k]
        var_k = i22[k, k] - a_k @ inv11 @ a_k
        chisq = float(u2[k] ** 2 / var_k) if var_k > 0 else np.nan
        rows[names[k]] = (chisq, 1, float(stats.chi2.sf(chisq, 1)))
    rows["GLOBAL"] = (glob, p, float(stats.chi2.sf(glob, p)) if np.isfinite(glob) else np.nan)
    out = pd.DataFrame.from_dict(rows, orient="index", columns=["chisq", "df", "p_value"])
    out.index.name = "term"
    return out


def cox(
    df: pd.DataFrame,
    *,
    duration: str,
    event: str,
    covariates,
    strata=None,
    entry: str | None = None,
    ties: str = "efron",
    reference: dict | None = None,
    alpha: float = 0.05,
    ph_transform: str = "km",
) -> CoxResult:
    """Fit a Cox proportional-hazards model of churn.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per customer.
    duration, event, entry : str
        As in :func:`kaplan_meier`.
    covariates : list of str
        Numeric columns enter as they are (hazard ratio per unit); other
        columns are categorical and expanded into one term per level,
        ``"column[level]"``, against a reference level.
    strata : str or list of str, optional
        Columns whose combinations get their own baseline hazard (no hazard
        ratio is estimated for them).
    ties : {"efron", "breslow"}
        Handling of tied churn times.
    reference : dict, optional
        Reference level per categorical covariate; default the most frequent.
    alpha : float
        1 - confidence level of the hazard-ratio intervals.
    ph_transform : {"km", "rank", "identity", "log"}
        Time scale of the proportional-hazards test.

    Returns
    -------
    CoxResult
        Rows with missing covariates are dropped (count in ``n_dropped_missing``).

    Notes
    -----
    Hazard ratios from observational data are adjusted associations, not
    causal effects.
    """
    z = _z(alpha)
    covariates = list(covariates)
    strata_cols = [strata] if isinstance(strata, str) else list(strata or [])
    if ties not in ("efron", "breslow"):
        raise ParamsError(
            f"ties must be 'efron' or 'breslow', not {ties!r}",
            [
                Problem(
                    "survival",
                    "ties",
                    "choice",
                    f"got {ties!r}",
                    fix="use 'efron' (default) or 'breslow'",
                )
            ],
        )
    if not covariates:
        raise ParamsError(
            "cox needs at least one covariate",
            [
                Problem(
                    "survival",
                    "cox_covariates",
                    "empty",
                    "no covariates",
                    fix="list covariate columns, e.g. [segment, value_tier]",
                )
            ],
        )
    work, info = _prepare(
        df,
        duration=duration,
        event=event,
        entry=entry,
        extra=tuple(dict.fromkeys(covariates + strata_cols)),
    )
    miss = work[covariates + strata_cols].isna().any(axis=1)
    n_missing = int(miss.sum())
    work = work.loc[~miss]
    x, names, covs, levels, refs = _design(work, covariates, reference)
    keep = x.std(axis=0) > 0 if len(x) else np.ones(x.shape[1], bool)
    if not keep.all():
        x = x[:, keep]
        names = [n for n, k in zip(names, keep, strict=True) if k]
        covs = [n for n, k in zip(covs, keep, strict=True) if k]
        levels = [n for n, k in zip(levels, keep, strict=True) if k]
    t = work["_t"].to_numpy()
    e = work["_e"].to_numpy().astype(float)
    en = work["_entry"].to_numpy()
    if strata_cols:
        scodes = np.zeros(len(work), dtype=np.int64)
        for c in strata_cols:
            f = pd.factorize(work[c])[0].astype(np.int64)
            scodes = scodes * (int(f.max()) + 2) + f + 1
        scodes = pd.factorize(scodes)[0]
    else:
        scodes = None
    if e.sum() == 0:
        raise DataError(
            f"{TABLE}.{event}: no churn events; a Cox model cannot be fitted",
            [
                Problem(
                    TABLE,
                    event,
                    "no_events",
                    "all customers censored",
                    int(len(work)),
                    fix="check the churn definition and window",
                )
            ],
        )
    try:
        fit = fit_cox(t, e, x, start=_entry_eff(en), strata=scodes, ties=ties)
    except np.linalg.LinAlgError as err:
        raise DataError(
            f"{TABLE}: the Cox model cannot be estimated (singular information matrix)",
            [
                Problem(
                    TABLE,
                    ", ".join(covariates),
                    "singular",
                    "a covariate level has no churn events or levels are collinear",
                    fix="merge rare levels or drop redundant covariates",
                )
            ],
        ) from err
    beta, loglik, converged = fit.coef, fit.loglik, fit.converged
    se = np.sqrt(np.diag(fit.cov))
    zval = beta / se
    summary = pd.DataFrame(
        {
            "coef": beta,
            "se": se,
            "hazard_ratio": np.exp(beta),
            "ci_lower": np.exp(beta - z * se),
            "ci_upper": np.exp(beta + z * se),
            "z": zval,
            "p_value": 2 * stats.norm.sf(np.abs(zval)),
            "covariate": covs,
            "level": levels,
        },
        index=pd.Index(names, name="term"),
    )
    ph = ph_test(
        t, e, x, beta, entry=en, strata=scodes, transform=ph_transform, names=names, ties=ties
    )
    conc = concordance_index(t, e, x @ beta, entry=en, strata=scodes)
    return CoxResult(
        summary=summary,
        ph_test=ph,
        concordance=conc["concordance"],
        reference_levels=refs,
        n=int(len(work)),
        n_events=int(e.sum()),
        n_left_truncated=int((en > 0).sum()),
        n_dropped_missing=n_missing,
        loglik=float(loglik),
        spec={
            "duration": duration,
            "event": event,
            "covariates": covariates,
            "strata": strata_cols,
            "entry": entry,
            "ties": ties,
            "reference": refs,
            "alpha": alpha,
            "ph_transform": ph_transform,
        },
        concordance_detail=conc,
        converged=converged,
    )


# ----------------------------------------------------------------------------
# Weighted Cox model of one binary treatment (the loyalty study's)
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightedCoxResult:
    """Weighted Cox model for a binary treatment (:func:`weighted_cox`; ``analysis.loyalty.CoxResult``).

    Attributes
    ----------
    hazard_ratio, ci_lower, ci_upper : float
        Hazard ratio (treated vs untreated) and robust (sandwich) interval.
    log_hr, se : float
        Coefficient and its robust standard error (clustered if ``cluster`` given).
    se_model : float
        Model-based (inverse information) standard error, for reference.
    p_value : float
        Two-sided Wald p-value with the robust standard error.
    n, events : int
        Rows and events used.
    """

    hazard_ratio: float
    ci_lower: float
    ci_upper: float
    log_hr: float
    se: float
    se_model: float
    p_value: float
    n: int
    events: int
    diagnostics: dict = field(default_factory=dict)


def weighted_cox(
    frame: pd.DataFrame,
    *,
    treatment: str = "member",
    time: str = "time_months",
    event: str = "event",
    weights: pd.Series | np.ndarray | str | None = None,
    horizon: float | None = None,
    cluster: str | None = None,
    alpha: float = 0.05,
) -> WeightedCoxResult:
    """Fit a Cox model with one binary treatment, case weights and a robust variance.

    Breslow ties; the weighted partial likelihood is maximised by
    :func:`fit_cox`; the robust variance comes from weighted score residuals
    (Lin & Wei 1989; Binder 1992), which is what makes the interval honest
    when the weights are estimated IP weights (it is then conservative).
    Without ``cluster`` each row is its own cluster.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per subject (or per subject and landmark when stacking).
    treatment, time, event : str
        Binary treatment, follow-up time (months), event indicator.
    weights : Series, array, column name, or None
        Case weights (e.g. ``Effect.weights``); None for unweighted. Rows
        with weight 0 are dropped.
    horizon : float, optional
        Administratively censor at this many months.
    cluster : str, optional
        Column identifying clusters (e.g. customer_id when landmarks are stacked).
    alpha : float
        1 - confidence level.

    Returns
    -------
    WeightedCoxResult
    """
    d = frame.reset_index(drop=True)
    x = d[treatment].to_numpy(float)
    t = d[time].to_numpy(float)
    ev = d[event].to_numpy(float)
    if weights is None:
        w = np.ones(len(d))
    elif isinstance(weights, str):
        w = d[weights].to_numpy(float)
    elif isinstance(weights, pd.Series):
        w = weights.to_numpy(float)
    else:
        w = np.asarray(weights, float)
    if horizon is not None:
        ev = np.where(t > horizon, 0.0, ev)
        t = np.minimum(t, horizon)
    use = w > 0
    x, t, ev, w = x[use], t[use], ev[use], w[use]
    groups = d[cluster].to_numpy()[use] if cluster else None
    fit = fit_cox(t, ev, x[:, None], weights=w, cluster=groups, robust=True, ties="breslow")
    beta = float(fit.coef[0])
    se = math.sqrt(fit.robust_cov[0, 0])
    z = stats.norm.ppf(1 - alpha / 2)
    return WeightedCoxResult(
        hazard_ratio=math.exp(beta),
        ci_lower=math.exp(beta - z * se),
        ci_upper=math.exp(beta + z * se),
        log_hr=beta,
        se=se,
        se_model=math.sqrt(fit.cov[0, 0]),
        p_value=float(2 * stats.norm.sf(abs(beta) / se)),
        n=int(len(t)),
        events=int(ev.sum()),
    )
