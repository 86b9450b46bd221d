"""Event studies of staggered adoption: the imputation estimator and dynamic TWFE.

:func:`event_study` takes a unit-period panel (``customer_id``, ``period``, ``rel`` = period
minus the adoption period, NaN for never-treated units, and an outcome column) and returns
the heterogeneity-robust imputation estimates of Borusyak, Jaravel & Spiess (2024) next to
a conventional dynamic two-way fixed-effects regression with its pre-trend test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from analysis.stats.fixed_effects import TwoWayFE

__all__ = ["EventStudy", "event_study"]


@dataclass(frozen=True)
class EventStudy:
    """Event-study estimates of spend around enrolment.

    Attributes
    ----------
    coefficients : pandas.DataFrame
        One row per estimator and event time (months since enrolment month):
        ``estimator`` (imputation / twfe), ``rel``, ``estimate``, ``se``, ``ci_lower``,
        ``ci_upper`` in currency per customer-month; the reference period has 0.
    post_att : dict
        Average effect (imputation estimator) over post-enrolment months
        1..window end -- the enrolment month itself left out -- with its
        standard error and interval (``estimate``, ``se``, ``ci_lower``,
        ``ci_upper``), the enrollees' observed and estimated untreated mean
        spend in those months, the implied ``lift`` (observed / untreated)
        with its interval, ``months`` (``"1..<end>"``), ``se_method`` and
        ``n_boot``. This is the number the loyalty report quotes.
    pretrend : dict
        Joint Wald test that the leads before the anticipation window are zero.
    reference : int
        The reference event time.
    n_customers, n_enrollees : int
        Customers in the panel, and those of them who enrolled.
    overall_post_att : dict
        The same summary over event times **0**..window end (the enrolment
        month included): the average of all enrollee-months from enrolment
        to the window end, i.e. the mean of the per-event-time effects 0..end
        weighted by their numbers of customer-months. Same keys as
        ``post_att`` (``months`` is ``"0..<end>"``); its standard error is the
        same imputation variance (or the same bootstrap) as ``post_att``'s.
    """

    coefficients: pd.DataFrame
    post_att: dict
    pretrend: dict
    reference: int
    n_customers: int
    n_enrollees: int
    overall_post_att: dict = field(default_factory=dict)


#: First event time of the post-enrolment averages: ``post_att`` (1..end) and
#: ``overall_post_att`` (0..end).
_POST_FROM = (1, 0)


def _imputation(
    y, unit, period, rel, treated_unit, untreated, ks, n_unit, n_period, *, variance, post_from=(1,)
):
    """Imputation (two-stage) estimates at each event time in ``ks`` and over months f..max(ks).

    Returns the per-event-time estimates, the post averages and the enrollees' observed
    mean over event times ``f..max(ks)`` for each ``f`` in ``post_from`` (arrays), the
    number of enrollees without untreated months, and (with ``variance``) the standard
    errors of the per-event-time estimates followed by those of the post averages.

    With ``variance``, also the standard errors of Borusyak, Jaravel & Spiess
    (2024, Theorem 3): each estimate is linear in the outcomes, ``sum v_it y_it``;
    the weights ``v`` of untreated rows follow from the first-stage normal
    equations, and the variance is ``sum_i (sum_t v_it e_it)^2`` clustered by
    customer, with first-stage residuals for untreated rows and, for treated
    rows, each effect minus the mean effect at its event time (conservative
    when effects vary within an event time).
    """
    u0, p0, y0 = unit[untreated], period[untreated], y[untreated]
    fact = TwoWayFE(u0, p0, n_unit, n_period)
    a, b = fact.fit(y0)
    seen = fact.counts_first > 0
    usable = treated_unit & seen[unit] & ~untreated
    resid = y - a[unit] - b[period]
    est = np.full(len(ks), np.nan)
    masks = []
    for j, k in enumerate(ks):
        mk = usable & (rel == k)
        masks.append(mk)
        if mk.any():
            est[j] = resid[mk].mean()
    att = np.full(len(post_from), np.nan)
    observed = np.full(len(post_from), np.nan)
    for j, first in enumerate(post_from):
        post = usable & (rel >= first) & (rel <= ks[-1])
        masks.append(post)
        if post.any():
            att[j], observed[j] = resid[post].mean(), y[post].mean()
    n_dropped = int(np.unique(unit[treated_unit & ~seen[unit]]).size)
    if not variance:
        return est, att, observed, n_dropped, None
    # treated-row residuals: effect minus the mean effect at the same event time
    tau_bar = np.zeros(len(y))
    for j in range(len(ks)):
        if not np.isnan(est[j]):
            tau_bar[masks[j]] = est[j]
    e1 = np.where(usable, resid - tau_bar, 0.0)
    e0 = resid[untreated]
    ses = []
    for mk in masks:
        nk = int(mk.sum())
        if nk == 0:
            ses.append(np.nan)
            continue
        w = mk / nk
        ha, hb = fact.solve(
            np.bincount(unit, weights=w, minlength=n_unit),
            np.bincount(period, weights=w, minlength=n_period),
        )
        v0 = -(ha[u0] + hb[p0])
        contrib = np.bincount(unit, weights=w * e1, minlength=n_unit)
        contrib += np.bincount(u0, weights=v0 * e0, minlength=n_unit)
        ses.append(float(np.sqrt(np.sum(contrib**2))))
    return est, att, observed, n_dropped, np.array(ses)


def _twfe_event(y, unit, period, et, ref, n_unit, n_period):
    """Dynamic two-way fixed-effects regression of ``y`` on event-time dummies.

    Customer and calendar-month effects are partialled out exactly
    (Frisch-Waugh-Lovell with :meth:`TwoWayFE.solve`), working only on the rows that
    carry a dummy, so memory stays linear in the panel. Standard errors are
    clustered by customer with the small-sample factors of ``fixest`` /
    ``pyfixest`` (CRV1: ``G/(G-1) * (N-1)/(N-K)``, K counting the dummies and
    the month effects, which are not nested in customers). Customers with a
    single row are dropped first, as ``pyfixest`` does.

    Returns
    -------
    (levels, coef, vcov)
    """

    keep = (np.bincount(unit, minlength=n_unit) > 1)[unit]
    y, unit, period, et = y[keep], unit[keep], period[keep], et[keep]
    levels = np.array(sorted(set(np.unique(et).tolist()) - {ref}), dtype=int)
    nl = len(levels)
    fact = TwoWayFE(unit, period, n_unit, n_period)
    d = np.flatnonzero(et != ref)
    col = np.searchsorted(levels, et[d])
    ud, pd_ = unit[d], period[d]
    # partial the FE out of y, and of each dummy (whose unit/period sums come from its rows)
    ay, by = fact.fit(y)
    yt = y - ay[unit] - by[period]
    ax, bx = fact.solve(
        np.bincount(ud * nl + col, minlength=n_unit * nl).reshape(n_unit, nl).astype(float),
        np.bincount(pd_ * nl + col, minlength=n_period * nl).reshape(n_period, nl).astype(float),
    )
    # X'MX = X'X - X'PX, X'My = X'y~  (rows without a dummy contribute nothing to X'.)
    xtx = np.diag(np.bincount(col, minlength=nl).astype(float))
    for j in range(nl):
        xtx[:, j] -= np.bincount(col, weights=ax[ud, j] + bx[pd_, j], minlength=nl)
    xty = np.bincount(col, weights=yt[d], minlength=nl)
    coef = np.linalg.solve(xtx, xty)
    # residuals e = y~ - x~ coef with x~ = x - ax[unit] - bx[period]
    e = yt + (ax @ coef)[unit] + (bx @ coef)[period]
    e[d] -= coef[col]
    # cluster scores: sum_r x~_r e_r = sum_r x_r e_r - ax[i] sum_r e_r - sum_r bx[period_r] e_r
    scores = np.bincount(ud * nl + col, weights=e[d], minlength=n_unit * nl).reshape(n_unit, nl)
    scores -= ax * np.bincount(unit, weights=e, minlength=n_unit)[:, None]
    for j in range(nl):
        scores[:, j] -= np.bincount(unit, weights=e * bx[period, j], minlength=n_unit)
    bread = np.linalg.inv(xtx)
    g = int((fact.counts_first > 0).sum())
    n = len(y)
    k = nl + int((fact.counts_second > 0).sum())  # month effects counted in full, as pyfixest does
    vcov = bread @ (scores.T @ scores) @ bread * (g / (g - 1)) * ((n - 1) / (n - k))
    return levels, coef, vcov


def event_study(
    panel: pd.DataFrame,
    *,
    outcome: str = "revenue",
    window: tuple[int, int] = (-6, 6),
    anticipation: int = 3,
    se: str = "analytic",
    n_boot: int = 100,
    seed: int = 0,
    alpha: float = 0.05,
    twfe: bool = True,
) -> EventStudy:
    """Estimate spend per month relative to enrolment (staggered adoption).

    Heterogeneity-robust **imputation** estimator (Borusyak, Jaravel & Spiess
    2024; numerically the same point estimates as Gardner's two-stage DiD):
    customer and calendar-month effects are fitted on untreated customer-months
    only (never-enrolled customers, and enrollees' months before the
    anticipation window); each enrollee-month's untreated outcome is imputed
    from them; the effect at event time k is the mean of observed minus
    imputed. Standard errors are the analytic ones of Borusyak, Jaravel & Spiess
    (Theorem 3, clustered by customer); ``se="bootstrap"`` gives a cluster
    bootstrap over customers instead (the independent check used in the
    tests). A conventional dynamic two-way fixed-effects regression (clustered
    by customer; same numbers as ``pyfixest.feols``) is reported alongside; it
    is the estimator that can be biased under staggered adoption with changing
    effects, and its leads give the pre-trend test.

    Two post-enrolment averages are reported, both over enrollee-months (so
    each event time weighs by its number of customer-months) and both with
    the same standard errors as the per-event-time estimates:
    ``post_att`` over event times 1..window end (the enrolment month, often
    partly before the enrolment day, left out; the number the loyalty report
    quotes), and ``overall_post_att`` over event times 0..window end (the
    enrolment month included).

    Enrolment is selected on spend in the months just before it, so those months
    are *expected* to be high (selection on a transitory spend peak, not an
    effect). The ``anticipation`` months before enrolment are therefore kept out of
    the untreated sample and the TWFE reference period is ``-(anticipation + 1)``.

    Parameters
    ----------
    panel : pandas.DataFrame
        From :func:`analysis.studies.loyalty.event_study_panel`: customer_id, period, cohort, rel, outcome.
    outcome : str
        Outcome column (currency per customer-month).
    window : (int, int)
        Event times to report (months relative to the enrolment month).
    anticipation : int
        Months before enrolment excluded from the untreated sample.
    se : {"analytic", "bootstrap"}
        Standard errors of the imputation estimator.
    n_boot : int
        Cluster-bootstrap replicates (``se="bootstrap"`` only).
    seed : int
        Bootstrap seed.
    alpha : float
        1 - confidence level.
    twfe : bool
        Also fit the dynamic TWFE comparison and the pre-trend test.

    Returns
    -------
    EventStudy
        ``coefficients`` per estimator and event time, ``post_att`` (months
        1..end), ``overall_post_att`` (months 0..end), ``pretrend``.
    """
    if se not in ("analytic", "bootstrap"):
        raise ValueError(f"se must be 'analytic' or 'bootstrap', got {se!r}")
    lo, hi = window
    ref = -(anticipation + 1)
    z = stats.norm.ppf(1 - alpha / 2)
    unit, uniq = pd.factorize(panel["customer_id"])
    period = panel["period"].to_numpy(int)
    period = period - period.min()
    y = panel[outcome].to_numpy(float)
    rel = panel["rel"].to_numpy(float)
    treated_unit = ~np.isnan(rel)
    rel_i = np.where(treated_unit, rel, -10_000).astype(int)
    untreated = ~treated_unit | (rel_i < -anticipation)
    n_unit, n_period = len(uniq), int(period.max()) + 1
    ks = np.arange(-anticipation, hi + 1)

    est, att, observed, n_dropped, ses = _imputation(
        y,
        unit,
        period,
        rel_i,
        treated_unit,
        untreated,
        ks,
        n_unit,
        n_period,
        variance=se == "analytic",
        post_from=_POST_FROM,
    )
    n_post = len(_POST_FROM)
    if se == "analytic":
        se_k, att_se = ses[:-n_post], ses[-n_post:]
        n_boot = 0
    else:
        rng = np.random.default_rng(seed)
        order = np.argsort(unit, kind="stable")
        bounds = np.searchsorted(unit[order], np.arange(n_unit + 1))
        boot_est, boot_att = [], []
        for _ in range(n_boot):
            pick = rng.integers(0, n_unit, n_unit)
            lens = bounds[pick + 1] - bounds[pick]
            rows = order[np.repeat(bounds[pick], lens) + _ranges(lens)]
            e_b, a_b, _, _, _ = _imputation(
                y[rows],
                np.repeat(np.arange(n_unit), lens),
                period[rows],
                rel_i[rows],
                treated_unit[rows],
                untreated[rows],
                ks,
                n_unit,
                n_period,
                variance=False,
                post_from=_POST_FROM,
            )
            boot_est.append(e_b)
            boot_att.append(a_b)
        ok = n_boot > 1
        se_k = np.nanstd(np.array(boot_est), axis=0, ddof=1) if ok else np.full(len(ks), np.nan)
        boot_att = np.array(boot_att).reshape(-1, n_post)
        att_se = np.array(
            [np.nanstd(boot_att[:, j], ddof=1) if ok else np.nan for j in range(n_post)]
        )
    coefs = [
        pd.DataFrame(
            {
                "estimator": "imputation",
                "rel": ks,
                "estimate": est,
                "se": se_k,
                "ci_lower": est - z * se_k,
                "ci_upper": est + z * se_k,
            }
        )
    ]
    pre = {"leads": [], "chi2": float("nan"), "df": 0, "p_value": float("nan")}
    if twfe:
        et = np.where(treated_unit, np.clip(rel_i, lo, hi), ref).astype(int)
        levels, b, vcov = _twfe_event(y, unit, period, et, ref, n_unit, n_period)
        s = np.sqrt(np.diag(vcov))
        coefs.append(
            pd.DataFrame(
                {
                    "estimator": "twfe",
                    "rel": np.append(levels, ref),
                    "estimate": np.append(b, 0.0),
                    "se": np.append(s, 0.0),
                    "ci_lower": np.append(b - z * s, 0.0),
                    "ci_upper": np.append(b + z * s, 0.0),
                }
            )
        )
        # leads before the anticipation window (the earliest one bins all earlier months)
        idx = np.flatnonzero(levels < ref)
        if idx.size:
            bl = b[idx]
            chi2 = float(bl @ np.linalg.solve(vcov[np.ix_(idx, idx)], bl))
            pre = {
                "leads": [int(k) for k in levels[idx]],
                "chi2": chi2,
                "df": int(idx.size),
                "p_value": float(stats.chi2.sf(chi2, idx.size)),
            }
    coefs = pd.concat(coefs, ignore_index=True).sort_values(["estimator", "rel"])
    post = [
        {
            **_post_summary(float(att[j]), float(att_se[j]), float(observed[j]), z),
            "months": f"{first}..{hi}",
            "enrollees_without_untreated_months": n_dropped,
            "se_method": se,
            "n_boot": n_boot,
        }
        for j, first in enumerate(_POST_FROM)
    ]
    return EventStudy(
        coefficients=coefs.reset_index(drop=True),
        post_att=post[0],
        pretrend=pre,
        reference=ref,
        n_customers=int(n_unit),
        n_enrollees=int(np.unique(unit[treated_unit]).size),
        overall_post_att=post[1],
    )


def _post_summary(att: float, att_se: float, observed: float, z: float) -> dict:
    """Effect, interval, and lift over the enrollees' estimated untreated mean."""
    untreated_mean = observed - att
    lift = observed / untreated_mean if untreated_mean > 0 else float("nan")
    # delta method with the enrollees' observed mean held fixed (as in the bootstrap)
    lift_se = observed / untreated_mean**2 * att_se if untreated_mean > 0 else float("nan")
    return {
        "estimate": float(att),
        "se": att_se,
        "ci_lower": float(att - z * att_se),
        "ci_upper": float(att + z * att_se),
        "observed_mean": float(observed),
        "untreated_mean": float(untreated_mean),
        "lift": float(lift),
        "lift_ci_lower": float(lift - z * lift_se),
        "lift_ci_upper": float(lift + z * lift_se),
    }


def _ranges(lens: np.ndarray) -> np.ndarray:
    """Concatenate arange(n) for each n in ``lens``."""
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, int)
    starts = np.cumsum(lens) - lens
    return np.arange(total) - np.repeat(starts, lens)
