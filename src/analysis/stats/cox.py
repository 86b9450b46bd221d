"""The Cox proportional-hazards model: fit, proportional-hazards test and concordance.

The fit is a vectorised Newton-Raphson on the partial likelihood with Efron or
Breslow ties, strata and left truncation (risk sets ``(entry, duration]``; see
:mod:`analysis.stats.survival`). Added: the Grambsch-Therneau
proportional-hazards test (as R's ``cox.zph``), Harrell's concordance with
left truncation, and a refit with covariates that fail the test moved into
strata.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import DataError, ParamsError, Problem
from analysis.stats.survival import TABLE, _entry_eff, _km_core, _prepare, _z, holm

__all__ = [
    "CoxResult",
    "concordance_index",
    "cox",
    "cox_stratified_refit",
    "ph_test",
]


# ----------------------------------------------------------------------------
# Concordance
# ----------------------------------------------------------------------------


def _fenwick_counts(
    point_key, point_score, query_key, query_score, n_scores, strict=True, chunk=256
):
    """Count points with key > query key (>= if not strict) and score <, == the query score.

    Offline 2-D dominance counting: points sorted by key (descending) are
    added to a Fenwick tree over score ranks in chunks; pairs inside the
    current chunk are counted by brute force.
    """
    order = np.argsort(-point_key, kind="stable")
    pk = point_key[order]
    ps = point_score[order]
    # number of points with key > q (or >= q): prefix length in descending order
    neg = -pk  # ascending
    side = "left" if strict else "right"
    plen = np.searchsorted(neg, -query_key, side=side)
    less = np.zeros(len(query_key), dtype=np.int64)
    equal = np.zeros(len(query_key), dtype=np.int64)

    tree = np.zeros(n_scores + 2, dtype=np.int64)  # last slot: sink for overflowing updates
    nbits = int(n_scores + 1).bit_length()

    def tree_prefix(idx):  # sum of counts for score ranks < idx (1-based tree; tree[0] = 0)
        res = np.zeros(len(idx), dtype=np.int64)
        i = idx.copy()
        for _ in range(nbits):
            res += tree[i]
            i &= i - 1  # drop the lowest set bit
        return res

    def tree_add(scores):
        i = scores + 1
        for _ in range(nbits):
            np.add.at(tree, i, 1)
            i = np.minimum(i + (i & -i), n_scores + 1)
            if i.min() > n_scores:
                break

    qorder = np.argsort(plen, kind="stable")
    qplen = plen[qorder]
    n_points = len(pk)
    for start in range(0, max(n_points, 1) + 1, chunk):
        stop = start + chunk
        lo_q = np.searchsorted(qplen, start, side="left")
        hi_q = np.searchsorted(qplen, stop, side="left")
        if hi_q > lo_q:
            qi = qorder[lo_q:hi_q]
            qs = query_score[qi]
            both = tree_prefix(np.concatenate([qs, qs + 1]))
            base_less, base_leq = both[: len(qs)], both[len(qs) :]
            block = ps[start:stop]
            for b0 in range(0, len(qi), 4096):
                sl = slice(b0, b0 + 4096)
                lim = (plen[qi[sl]] - start)[:, None]
                cols = np.arange(len(block))[None, :]
                inside = cols < lim
                less[qi[sl]] = base_less[sl] + (inside & (block[None, :] < qs[sl, None])).sum(1)
                equal[qi[sl]] = (base_leq[sl] - base_less[sl]) + (
                    inside & (block[None, :] == qs[sl, None])
                ).sum(1)
        if start < n_points:
            tree_add(ps[start:stop])
    return less, equal, plen


def concordance_index(time, event, score, entry=None, strata=None) -> dict:
    """Compute Harrell's C: how often the customer with the higher risk score churns first.

    A pair is comparable when customer i churns at t_i while customer j is
    at risk at t_i: j's end is later (or j is censored at t_i) and j entered
    before t_i (left truncation). Pairs with tied event times are not
    comparable; tied scores count one half. Pairs are formed within strata.

    Parameters
    ----------
    time, event, score : array_like
        Durations, 1/0 churn indicators, risk scores (higher = churns sooner).
    entry : array_like, optional
        Tenure at first observation.
    strata : array_like, optional
        Pairs are only formed within the same stratum.

    Returns
    -------
    dict
        concordance, concordant, discordant, tied_score, comparable.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event).astype(int)
    score = np.asarray(score, dtype=float)
    entry = np.zeros_like(time) if entry is None else np.asarray(entry, dtype=float)
    strata = (
        np.zeros(len(time), dtype=np.int64)
        if strata is None
        else pd.factorize(np.asarray(strata))[0]
    )
    tot = {"concordant": 0, "discordant": 0, "tied_score": 0}
    for s in np.unique(strata):
        m = strata == s
        t, e, sc, en = time[m], event[m], score[m], _entry_eff(entry[m])
        ev = np.flatnonzero(e == 1)
        if len(ev) == 0:
            continue
        _, t_rank = np.unique(t, return_inverse=True)
        key = 2 * t_rank.astype(np.int64) + (1 - e)  # censored at t ranks after events at t
        uscore, s_rank = np.unique(sc, return_inverse=True)
        s_rank = s_rank.astype(np.int64)
        ns = len(uscore)
        less, eq, plen = _fenwick_counts(key, s_rank, key[ev], s_rank[ev], ns, strict=True)
        total = plen
        # remove customers who entered at or after t_i (not yet at risk): entry_j >= t_i
        less2, eq2, plen2 = _fenwick_counts(en, s_rank, t[ev], s_rank[ev], ns, strict=False)
        less = less - less2
        eq = eq - eq2
        total = total - plen2
        greater = total - less - eq
        # concordant: the churner has the higher score than the one still at risk
        tot["concordant"] += int(less.sum())
        tot["discordant"] += int(greater.sum())
        tot["tied_score"] += int(eq.sum())
    comparable = tot["concordant"] + tot["discordant"] + tot["tied_score"]
    c = (tot["concordant"] + 0.5 * tot["tied_score"]) / comparable if comparable else np.nan
    return {"concordance": float(c), **tot, "comparable": int(comparable)}


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


def _transform_time(kind, times_ev, t, e, entry):
    if kind == "identity":
        return times_ev.astype(float)
    if kind == "log":
        return np.log(times_ev)
    if kind == "rank":
        return stats.rankdata(times_ev)
    if kind == "km":
        tt, _, _, s, _ = _km_core(t, e, entry if np.any(entry > 0) else None)
        idx = np.searchsorted(tt, times_ev, side="left") - 1  # left-continuous S(t-)
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


class _RiskSums:
    """Sum per-customer quantities over the risk sets {entry < u_j <= t} at times u_j.

    Customers are binned once by how many of the times u lie below their end
    (and their entry); each sum is then two weighted bincounts and two short
    reverse cumulative sums, so a Newton step costs O(n) per covariate pair.
    """

    def __init__(self, t, entry, u):
        self.size = len(u) + 1
        # bin = #{u <= value}; value >= u_j  <=>  bin > j
        self.bin_t = np.searchsorted(u, t, side="right")
        bin_e = np.searchsorted(u, _entry_eff(entry), side="right")
        # only late entrants can leave a risk set through entry; skip the others
        self.late = np.flatnonzero(bin_e > 0)
        self.bin_e = bin_e[self.late]
        self.n_u = len(u)

    def __call__(self, q):
        a = np.bincount(self.bin_t, weights=q, minlength=self.size)[::-1].cumsum()[::-1]
        if len(self.late) == 0:
            return a[1:]
        b = np.bincount(self.bin_e, weights=q[self.late], minlength=self.size)
        b = b[::-1].cumsum()[::-1]
        return (a - b)[1:]


class _CoxStratum:
    """Precomputed risk-set bookkeeping of one stratum for the vectorised Cox fit."""

    def __init__(self, t, e, entry, x, ties):
        self.x = x
        evi = np.flatnonzero(e == 1)
        self.evi = evi
        self.u, self.inv = np.unique(t[evi], return_inverse=True)
        self.d = np.bincount(self.inv, minlength=len(self.u)).astype(float)
        self.rsum = _RiskSums(t, entry, self.u)
        # Efron: the k-th of d tied events sees the risk set minus k/d of the tied set
        starts = np.concatenate([[0], np.cumsum(self.d)[:-1]]).astype(np.int64)
        order = np.argsort(self.inv, kind="stable")
        pos_in_tie = np.empty(len(evi))
        pos_in_tie[order] = np.arange(len(evi)) - np.repeat(starts, self.d.astype(np.int64))
        self.pair_j = self.inv
        self.frac = pos_in_tie / self.d[self.inv] if ties == "efron" else np.zeros(len(evi))
        self.xsum_events = x[evi].sum(0)

    def parts(self, beta, want_hessian=True):
        x = self.x
        p = x.shape[1]
        eta = x @ beta
        k = eta.max()
        w = np.exp(eta - k)
        J = len(self.u)
        s0 = self.rsum(w)
        d0 = np.bincount(self.inv, weights=w[self.evi], minlength=J)
        wx = w[:, None] * x
        s1 = np.column_stack([self.rsum(wx[:, a]) for a in range(p)])
        d1 = np.column_stack(
            [np.bincount(self.inv, weights=wx[self.evi, a], minlength=J) for a in range(p)]
        )
        pj, c = self.pair_j, self.frac
        den = s0[pj] - c * d0[pj]
        loglik = float(eta[self.evi].sum() - np.sum(np.log(den) + k))
        m = (s1[pj] - c[:, None] * d1[pj]) / den[:, None]
        grad = self.xsum_events - m.sum(0)
        if not want_hessian:
            return loglik, grad, None
        a_j = np.bincount(pj, weights=1 / den, minlength=J)
        b_j = np.bincount(pj, weights=c / den, minlength=J)
        info = -(m.T @ m)
        for a in range(p):
            for b in range(a, p):
                q = wx[:, a] * x[:, b]
                s2 = self.rsum(q)
                d2 = np.bincount(self.inv, weights=q[self.evi], minlength=J)
                val = float(a_j @ s2 - b_j @ d2)
                info[a, b] += val
                if a != b:
                    info[b, a] += val
        return loglik, grad, info

    def zph_parts(self, beta, g):
        """Return the score U2 and information blocks for adding x * g(t) at (beta, 0).

        ``g`` holds g(t) for each event (in the order of ``self.evi``). Tied
        events use the same Efron (or Breslow) risk-set weights as the fit.
        """
        x = self.x
        p = x.shape[1]
        eta = x @ beta
        w = np.exp(eta - eta.max())
        J = len(self.u)
        s0 = self.rsum(w)
        d0 = np.bincount(self.inv, weights=w[self.evi], minlength=J)
        wx = w[:, None] * x
        s1 = np.column_stack([self.rsum(wx[:, a]) for a in range(p)])
        d1 = np.column_stack(
            [np.bincount(self.inv, weights=wx[self.evi, a], minlength=J) for a in range(p)]
        )
        pj, c = self.pair_j, self.frac
        den = s0[pj] - c * d0[pj]
        m = (s1[pj] - c[:, None] * d1[pj]) / den[:, None]
        u2 = (g[:, None] * (x[self.evi] - m)).sum(0)
        blocks = []
        for wv in (np.ones_like(g), g, g**2):
            a_j = np.bincount(pj, weights=wv / den, minlength=J)
            b_j = np.bincount(pj, weights=wv * c / den, minlength=J)
            blocks.append((a_j, b_j, -((wv[:, None] * m).T @ m)))
        for a in range(p):
            for b in range(a, p):
                q = wx[:, a] * x[:, b]
                s2 = self.rsum(q)
                d2 = np.bincount(self.inv, weights=q[self.evi], minlength=J)
                for a_j, b_j, mat in blocks:
                    val = float(a_j @ s2 - b_j @ d2)
                    mat[a, b] += val
                    if a != b:
                        mat[b, a] += val
        return u2, blocks[0][2], blocks[1][2], blocks[2][2]


def _cox_fit(t, e, entry, x, strata, ties, max_iter=50, tol=1e-9):
    """Fit Cox coefficients by Newton-Raphson with vectorised risk-set sums.

    Returns beta, covariance, log partial likelihood, converged flag. Risk
    sets are (entry, duration]; ties by Efron or Breslow.
    """
    mu = x.mean(0)
    xc = x - mu  # centring changes nothing but the numerics
    codes = np.zeros(len(t), dtype=np.int64) if strata is None else strata
    strata_parts = []
    for s in np.unique(codes):
        m = codes == s
        if e[m].sum() > 0:
            strata_parts.append(_CoxStratum(t[m], e[m], entry[m], xc[m], ties))
    p = x.shape[1]

    def total(beta, hess=True):
        ll, g, h = 0.0, np.zeros(p), np.zeros((p, p))
        for sp in strata_parts:
            a, b, c = sp.parts(beta, hess)
            ll += a
            g += b
            if hess:
                h += c
        return ll, g, h

    beta = np.zeros(p)
    ll, g, h = total(beta)
    converged = False
    for _ in range(max_iter):
        step = np.linalg.solve(h, g)
        new = beta + step
        ll_new, g_new, h_new = total(new)
        halvings = 0
        while (not np.isfinite(ll_new) or ll_new < ll - 1e-12) and halvings < 20:
            step /= 2
            new = beta + step
            ll_new, g_new, h_new = total(new)
            halvings += 1
        done = abs(ll_new - ll) <= tol * (abs(ll) + tol) and np.max(np.abs(step)) < 1e-6
        beta, ll, g, h = new, ll_new, g_new, h_new
        if done:
            converged = True
            break
    cov = np.linalg.inv(h)
    return beta, cov, ll, converged


def ph_test(
    time, event, x, beta, *, entry=None, strata=None, transform="km", names=None, ties="efron"
) -> pd.DataFrame:
    """Test proportional hazards with the Grambsch-Therneau score test.

    For each term k this is the score test, at the fitted coefficients, for
    adding x_k * g(t) to the model (g = transformed time), i.e. for a slope
    in the scaled Schoenfeld residuals over g(t); the global test adds all
    of them. This is the test of R's ``cox.zph`` (survival >= 3.0). Tied
    event times use the fit's method (Efron or Breslow).

    Returns
    -------
    pandas.DataFrame
        Indexed by term and "GLOBAL": chisq, df, p_value.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event).astype(int)
    x = np.asarray(x, dtype=float)
    x = x - x.mean(0)  # residuals and variances do not depend on centring
    p = x.shape[1]
    entry = np.zeros_like(time) if entry is None else np.asarray(entry, dtype=float)
    strata = (
        np.zeros(len(time), dtype=np.int64)
        if strata is None
        else pd.factorize(np.asarray(strata))[0]
    )
    # g(t) from the pooled data, as R does
    g_full = np.zeros(len(time))
    ev_mask = event == 1
    g_full[ev_mask] = _transform_time(transform, time[ev_mask], time, event, entry)
    u2 = np.zeros(p)
    i11 = np.zeros((p, p))
    i12 = np.zeros((p, p))
    i22 = np.zeros((p, p))
    for s in np.unique(strata):
        m = strata == s
        if event[m].sum() == 0:
            continue
        part = _CoxStratum(time[m], event[m], entry[m], x[m], ties)
        g = g_full[m][part.evi]
        a, b11, b12, b22 = part.zph_parts(np.asarray(beta, dtype=float), g)
        u2 += a
        i11 += b11
        i12 += b12
        i22 += b22
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
        beta, cov, loglik, converged = _cox_fit(t, e, en, x, scodes, ties)
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
    se = np.sqrt(np.diag(cov))
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


def cox_stratified_refit(
    df: pd.DataFrame, result: CoxResult, *, alpha: float = 0.05
) -> tuple[CoxResult, list[str]]:
    """Refit a Cox model with covariates that fail the PH test moved into strata.

    A categorical covariate whose hazard ratio changes with tenure cannot be
    summarised by one hazard ratio; stratifying on it gives each of its
    levels its own baseline churn curve and keeps the other hazard ratios
    valid. Numeric covariates that fail stay in the model (stratifying on
    them is not meaningful) and are reported by the caller.

    Returns
    -------
    (CoxResult, list of str)
        The refitted model (or ``result`` itself if nothing moved) and the
        covariates moved into strata.
    """
    failing = result.ph_failures(alpha)
    movable = [c for c in failing if _is_categorical(df[c])]
    if not movable:
        return result, []
    spec = dict(result.spec)
    covs = [c for c in spec["covariates"] if c not in movable]
    if not covs:
        return result, []
    new = cox(
        df,
        duration=spec["duration"],
        event=spec["event"],
        covariates=covs,
        strata=list(spec["strata"]) + movable,
        entry=spec["entry"],
        ties=spec["ties"],
        reference={k: v for k, v in spec["reference"].items() if k in covs},
        alpha=spec["alpha"],
        ph_transform=spec["ph_transform"],
    )
    return new, movable
