"""Churn hazards: the Cox model on counting-process rows and what it implies.

* :func:`churn_hazards` -- Cox model on :func:`~.frames.counting_process` rows
  with customer-clustered (robust) standard errors;
* :class:`Scenario` and its builders, :func:`revenue_at_stake` -- churners
  prevented and revenue kept under a stated scenario, with a delta-method
  interval;
* :func:`moments_of_truth`, :func:`compensation_effect` -- touchpoints ranked
  by what a failed ticket costs, and churn after compensated failures.

Time is in days; money in the data's currency.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import AnalysisError, Problem, examples_of
from analysis.stats.cox import fit_cox
from analysis.stats.fixed_effects import _codes
from analysis.studies.experience.frames import DAYS_PER_MONTH, _as_bool, _require
from analysis.studies.experience.metrics import fcr_rate
from analysis.studies.sections import NotEstimable

# --------------------------------------------------------------------------------------
# Cox model on counting-process rows
# --------------------------------------------------------------------------------------


@dataclass
class HazardResult:
    """A fitted Cox model on counting-process rows.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per term: coef (log hazard ratio), se (customer-clustered),
        hazard_ratio, ci_lower, ci_upper (hazard-ratio scale), p_value.
    cov : pandas.DataFrame
        Robust covariance of the coefficients.
    terms : list of str
        Design column names (categorical levels as ``column[level]``).
    design : dict
        For each covariate: ``("numeric", None)`` or ``("categorical", reference)``.
    n_rows, n_customers, n_events : int
    person_days : float
        Total time at risk in the rows used (days).
    level_customers : dict
        Distinct customers per categorical term (``column[level]``), so that the
        report can suppress terms of too few customers.
    """

    summary: pd.DataFrame
    cov: pd.DataFrame
    terms: list[str]
    design: dict[str, tuple[str, Any]]
    n_rows: int
    n_customers: int
    n_events: int
    person_days: float
    alpha: float = 0.05
    ties: str = "breslow"
    strata: str | None = None
    dropped_missing: int = 0
    window_days: int | None = None
    level_customers: dict[str, int] = field(default_factory=dict)

    def hr(self, term: str) -> tuple[float, float, float]:
        """Return (hazard ratio, lower, upper) for one term."""
        r = self.summary.loc[term]
        return float(r.hazard_ratio), float(r.ci_lower), float(r.ci_upper)


def _design(
    df: pd.DataFrame, covariates: Sequence[str], reference: Mapping[str, Any]
) -> tuple[np.ndarray, list[str], dict[str, tuple[str, Any]]]:
    cols, names, design = [], [], {}
    for c in covariates:
        s = df[c]
        if isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object or s.dtype == "string":
            levels = (
                list(s.cat.categories)
                if isinstance(s.dtype, pd.CategoricalDtype)
                else sorted(pd.unique(s.dropna()).tolist())
            )
            present = set(pd.unique(s.dropna()).tolist())
            levels = [lv for lv in levels if lv in present]
            ref = reference.get(c, levels[0] if levels else None)
            if ref not in present:
                raise AnalysisError(
                    f"Reference level {ref!r} of {c!r} does not occur in the rows.",
                    [
                        Problem(
                            "counting_process",
                            c,
                            "bad_reference",
                            "reference level absent",
                            examples=examples_of(levels),
                            fix="choose a level that occurs",
                        )
                    ],
                )
            design[c] = ("categorical", ref)
            for lv in levels:
                if lv == ref:
                    continue
                cols.append((c, lv))
                names.append(f"{c}[{lv}]")
        else:
            design[c] = ("numeric", None)
            cols.append((c, None))
            names.append(c)
    # filled column by column: no list of full-length columns next to the matrix
    x = np.empty((len(df), len(cols)))
    for j, (c, lv) in enumerate(cols):
        s = df[c]
        if lv is None:
            x[:, j] = s.to_numpy(dtype=float)
        elif isinstance(s.dtype, pd.CategoricalDtype):
            x[:, j] = s.cat.codes.to_numpy() == s.cat.categories.get_loc(lv)
        else:
            x[:, j] = s.astype(object).to_numpy() == lv
    return x, names, design


def churn_hazards(
    cp: pd.DataFrame,
    *,
    covariates: Sequence[str],
    strata: str | None = None,
    reference: Mapping[str, Any] | None = None,
    customer: str = "customer_id",
    alpha: float = 0.05,
) -> HazardResult:
    """Fit a Cox model with time-varying covariates and customer-clustered standard errors.

    Each ``(start, stop]`` row is at risk for churns at times ``start < t <=
    stop`` (so left truncation is respected); ties use Breslow's
    approximation. A customer's rows share one cluster, giving the robust
    (Lin-Wei 1989) sandwich variance, as R ``coxph(..., cluster = id)``
    without small-sample factor. Consecutive rows of a customer with
    identical covariates are merged first, which leaves the partial
    likelihood unchanged and makes monthly-split data fast to fit.

    Parameters
    ----------
    cp : pandas.DataFrame
        Output of :func:`counting_process` (start, stop in days; event).
    covariates : sequence of str
        Columns; categorical/text columns get treatment dummies.
    strata : str, optional
        Column whose levels get their own baseline hazard (e.g. segment).
    reference : mapping, optional
        Reference level per categorical column; default ``{"nps_category":
        "promoter"}`` and otherwise the first level.
    customer : str
        Cluster column.
    alpha : float
        1 - confidence level of the intervals.

    Returns
    -------
    HazardResult
        ``summary`` per term with coef, se, hazard_ratio, ci_lower, ci_upper, p_value.
    """
    # a covariate that is also the strata column is constant within every stratum: its
    # effect is absorbed by the stratum's own baseline, so it is left out of the terms
    covariates = [c for c in dict.fromkeys(covariates) if c != strata]
    _require(cp, "counting_process", [customer, "start", "stop", "event", *covariates])
    ref = {"nps_category": "promoter"}
    ref.update(reference or {})
    need = covariates + ([strata] if strata else [])
    miss = np.zeros(len(cp), dtype=bool)
    for c in need:  # column by column: no copy of the covariate block
        miss |= cp[c].isna().to_numpy()
    n_miss = int(miss.sum())
    cols = [customer, "start", "stop", "event", *need]
    d = cp.loc[~miss, cols] if n_miss else cp[cols]
    del miss
    d = _collapse(d, customer, [*need])
    if strata:
        # rows of one stratum together (stable: customers stay in order), so the
        # Cox fit slices strata without copying the design matrix
        sc = _codes(
            d[strata].cat.codes
            if isinstance(d[strata].dtype, pd.CategoricalDtype)
            else d[strata].to_numpy()
        )
        if len(sc) > 1 and not bool((sc[1:] >= sc[:-1]).all()):
            d = d.iloc[np.argsort(sc, kind="stable")].reset_index(drop=True)
    x, names, design = _design(d, covariates, ref)
    if d["event"].sum() == 0:
        raise NotEstimable(
            "No customer left during the time this model covers, so churn cannot be related "
            "to the service experience",
            remedy="It needs customers who left, with the date they left.",
        )
    fit = fit_cox(
        d["stop"].to_numpy(dtype=float),
        d["event"].to_numpy(dtype=float),
        x,
        start=d["start"].to_numpy(dtype=float),
        strata=pd.factorize(d[strata])[0] if strata else None,
        cluster=_codes(d[customer].to_numpy()),
        ties="breslow",
    )
    beta, cov = fit.coef, fit.robust_cov
    if not fit.converged or not np.isfinite(beta).all() or not np.isfinite(np.diag(cov)).all():
        raise AnalysisError(
            f"The Cox model on {names} did not converge (a covariate may separate churners).",
            [
                Problem(
                    "counting_process",
                    None,
                    "no_convergence",
                    "Newton-Raphson failed",
                    examples=tuple(names),
                    fix="drop sparse covariates or levels",
                )
            ],
        )
    level_customers = {}
    for c, (kind, _ref) in design.items():
        if kind == "categorical":
            per_level = d.groupby(c, observed=True, sort=False)[customer].nunique()
            level_customers.update({f"{c}[{lv}]": int(n) for lv, n in per_level.items()})
    se = np.sqrt(np.diag(cov))
    z = stats.norm.ppf(1 - alpha / 2)
    summary = pd.DataFrame(
        {
            "coef": beta,
            "se": se,
            "hazard_ratio": np.exp(beta),
            "ci_lower": np.exp(beta - z * se),
            "ci_upper": np.exp(beta + z * se),
            "p_value": 2 * stats.norm.sf(np.abs(beta / se)),
        },
        index=pd.Index(names, name="term"),
    )
    return HazardResult(
        summary=summary,
        cov=pd.DataFrame(cov, index=names, columns=names),
        terms=names,
        design=design,
        n_rows=len(d),
        n_customers=int(d[customer].nunique()),
        n_events=int(d["event"].sum()),
        person_days=float((d["stop"] - d["start"]).sum()),
        alpha=alpha,
        strata=strata,
        dropped_missing=n_miss,
        window_days=cp.attrs.get("window_days"),
        level_customers=level_customers,
    )


def _collapse(d: pd.DataFrame, customer: str, cols: Sequence[str]) -> pd.DataFrame:
    """Merge consecutive rows of one customer whose covariates are equal (exact for Cox)."""
    if len(d) < 2:
        return d
    cust = d[customer].to_numpy()
    start = d["start"].to_numpy()
    if not (
        np.issubdtype(cust.dtype, np.number)
        and bool(
            ((cust[1:] > cust[:-1]) | ((cust[1:] == cust[:-1]) & (start[1:] > start[:-1]))).all()
        )
    ):  # counting_process output is already in this order
        d = d.sort_values([customer, "start"], kind="stable")
        cust = d[customer].to_numpy()
        start = d["start"].to_numpy()
    cont = np.zeros(len(d), dtype=bool)  # row continues the previous one
    cont[1:] = (cust[1:] == cust[:-1]) & (start[1:] == d["stop"].to_numpy()[:-1])
    for c in cols:
        s = d[c]
        v = s.cat.codes.to_numpy() if isinstance(s.dtype, pd.CategoricalDtype) else s.to_numpy()
        cont[1:] &= v[1:] == v[:-1]
    if not cont.any():
        return d.reset_index(drop=True)
    first = np.flatnonzero(~cont)
    last = np.r_[first[1:] - 1, len(d) - 1]
    out = d.iloc[first].copy()
    out["stop"] = d["stop"].to_numpy()[last]
    out["event"] = d["event"].to_numpy()[last]
    return out.reset_index(drop=True)


def _varies(cp: pd.DataFrame, col: str) -> bool:
    """Whether a covariate can enter a Cox model: numeric with spread, or >= 2 levels present."""
    if col not in cp.columns:
        return False
    s = cp[col]
    if isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object or s.dtype == "string":
        present = set(pd.unique(s.dropna()).tolist())
        if col == "nps_category":
            return "promoter" in present and len(present) >= 2
        return len(present) >= 2
    v = s.to_numpy(dtype=float)
    return bool(np.nanmax(v) > np.nanmin(v)) if len(v) and not np.isnan(v).all() else False


# --------------------------------------------------------------------------------------
# Scenarios and revenue at stake
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """A stated change to experience, applied to the fitted churn model.

    ``changes`` holds ``("shift", column, from_level, to_level)`` (customers in
    ``from_level`` get ``to_level``'s hazard) and ``("scale", column, factor)``
    (a count covariate is multiplied by ``factor``).
    """

    name: str
    description: str
    changes: tuple[tuple, ...]
    assumptions: tuple[str, ...] = field(default_factory=tuple)


def scenario_detractors_as_passives() -> Scenario:
    """Build the scenario in which detractors churn at passives' rate."""
    return Scenario(
        "detractors_as_passives",
        "Detractors churn at the rate of passives",
        (("shift", "nps_category", "detractor", "passive"),),
        (
            "detractors' extra churn over passives is what the Cox model attributes to the "
            "NPS category, adjusted for the other covariates",
        ),
    )


def scenario_fcr_up(points: float, fcr_rate: float) -> Scenario:
    """Build the scenario 'first-contact resolution up ``points`` percentage points'.

    Unresolved tickets fall by the share ``points / (100 * (1 - fcr_rate))``.
    """
    if not 0 <= fcr_rate < 1:
        raise AnalysisError(f"fcr_rate must lie in [0, 1), not {fcr_rate}")
    share = min(points / 100 / (1 - fcr_rate), 1.0)
    return Scenario(
        "fcr_up",
        f"First-contact resolution up {points:g} points (from {100 * fcr_rate:.1f}%)",
        (("scale", "unresolved_window", 1 - share),),
        (
            f"{100 * share:.0f}% of tickets now unresolved at first contact get resolved at first "
            "contact; ticket volume unchanged",
        ),
    )


def scenario_sla_breaches_reduced(share: float = 0.5) -> Scenario:
    """Build the scenario 'SLA breaches cut by ``share``' (0.5 = halved)."""
    return Scenario(
        "sla_breaches_reduced",
        f"SLA breaches cut by {100 * share:.0f}%",
        (("scale", "sla_breaches_window", 1 - share),),
        ("breaches avoided are spread evenly over customers who had them",),
    )


def scenarios_from_params(exp_params: Any, experience: pd.DataFrame) -> list[Scenario]:
    """Build the report's three scenarios from the ``experience`` params section.

    Uses ``fcr_improvement_points`` and ``sla_breach_reduction``; the FCR
    scenario starts from the FCR rate observed in ``experience``. It is left out
    when that rate cannot be measured (no tickets with first-contact resolution
    recorded, e.g. a surveys-only table) or leaves nothing to improve (every
    ticket already resolved at first contact).
    """
    rate = fcr_rate(experience)
    fcr = [scenario_fcr_up(float(exp_params.fcr_improvement_points), rate)] if 0 <= rate < 1 else []
    return [
        scenario_detractors_as_passives(),
        *fcr,
        scenario_sla_breaches_reduced(float(exp_params.sla_breach_reduction)),
    ]


def _delta_eta(hz: HazardResult, cp: pd.DataFrame, scenario: Scenario) -> np.ndarray:
    """Return the design change D (rows x terms) so that eta' - eta = D @ beta."""
    d = np.zeros((len(cp), len(hz.terms)))
    pos = {t: i for i, t in enumerate(hz.terms)}
    for ch in scenario.changes:
        if ch[0] == "shift":
            _, col, lv_from, lv_to = ch
            if col not in hz.design:
                raise AnalysisError(f"Scenario {scenario.name!r} needs {col!r} in the Cox model.")
            rows = (cp[col].astype(object) == lv_from).to_numpy()
            for lv, sign in ((lv_to, 1.0), (lv_from, -1.0)):
                t = f"{col}[{lv}]"
                if t in pos:
                    d[rows, pos[t]] += sign
        elif ch[0] == "scale":
            _, col, factor = ch
            if col not in pos:
                raise AnalysisError(f"Scenario {scenario.name!r} needs {col!r} in the Cox model.")
            d[:, pos[col]] += (factor - 1.0) * cp[col].to_numpy(dtype=float)
        else:
            raise AnalysisError(f"Unknown scenario change {ch[0]!r}")
    return d


def _censored_at_last_row(cp: pd.DataFrame, ok: np.ndarray, customer: str) -> int:
    """Count customers whose last usable row (latest stop) is censored, not a churn."""
    c = cp[customer].to_numpy()[ok]
    stop = cp["stop"].to_numpy()[ok]
    event = cp["event"].to_numpy()[ok]
    if not len(c):
        return 0
    ordered = np.issubdtype(c.dtype, np.number) and bool(
        ((c[1:] > c[:-1]) | ((c[1:] == c[:-1]) & (stop[1:] > stop[:-1]))).all()
    )
    if not ordered:  # counting_process output is ordered already; anything else is sorted
        rows = pd.DataFrame({"c": c, "stop": stop, "event": event})
        last = rows.sort_values(["c", "stop"]).groupby("c", sort=False).tail(1)
        return int((last["event"] == 0).sum())
    is_last = np.r_[c[1:] != c[:-1], True]
    return int((event[is_last] == 0).sum())


def revenue_at_stake(
    hazards: HazardResult,
    cp: pd.DataFrame,
    *,
    scenario: Scenario,
    monthly_revenue: tuple[float, float],
    customers_at_risk: int | None = None,
    horizon_months: float = 12.0,
    customer: str = "customer_id",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Estimate churners prevented per year and the revenue they keep under a scenario.

    Churners prevented in the observed rows use the case-based impact
    fraction (Bruzzi et al. 1985): ``sum over churn rows of
    1 - exp(eta' - eta)``, where ``eta' - eta`` is the change the scenario
    makes to each churner's linear predictor. That count is turned into a
    rate per customer-year at risk and applied to ``customers_at_risk``.
    Money = churners prevented per year x ``monthly_revenue`` x
    ``horizon_months`` (months of revenue a kept customer is worth, not
    discounted).

    The interval is a delta-method interval combining the robust covariance
    of the Cox coefficients, Poisson variation in the churn rows, and the
    standard error of ``monthly_revenue``.

    Parameters
    ----------
    hazards : HazardResult
        Fitted by :func:`churn_hazards` on ``cp``.
    cp : pandas.DataFrame
        The counting-process rows the model was fitted on.
    scenario : Scenario
        What changes (see the ``scenario_*`` builders).
    monthly_revenue : (float, float)
        Revenue per customer-month (currency) and its standard error.
    customers_at_risk : int, optional
        Customers the yearly figure applies to; default: customers still
        active at the end of the rows (censored at their last row).
    horizon_months : float
        Months of revenue a kept customer is worth.
    alpha : float
        1 - confidence level.

    Returns
    -------
    pandas.DataFrame
        One row: scenario, description, churners_prevented_per_year (+ ci),
        revenue_at_stake (currency, + ci), customers_at_risk, assumptions.
    """
    need = [c for c in hazards.design]
    # masks rather than cp.dropna(): the rows can be tens of millions
    ok = ~cp[need].isna().any(axis=1).to_numpy()
    cases = cp.loc[ok & (cp["event"].to_numpy() == 1)]
    d = _delta_eta(hazards, cases, scenario)
    beta = hazards.summary["coef"].to_numpy()
    cov = hazards.cov.to_numpy()
    ratio = np.exp(d @ beta)
    prevented = float(np.sum(1 - ratio))
    grad = -(ratio[:, None] * d).sum(axis=0)
    var_prev = float(grad @ cov @ grad) + float(np.sum((1 - ratio) ** 2))
    person_years = float((cp["stop"] - cp["start"]).to_numpy()[ok].sum()) / 365.25
    if customers_at_risk is None:
        customers_at_risk = _censored_at_last_row(cp, ok, customer)
    scale = customers_at_risk / person_years if person_years > 0 else float("nan")
    per_year = prevented * scale
    se_year = math.sqrt(var_prev) * scale
    rev, rev_se = monthly_revenue
    money = per_year * rev * horizon_months
    se_money = horizon_months * math.sqrt((rev * se_year) ** 2 + (per_year * rev_se) ** 2)
    z = stats.norm.ppf(1 - alpha / 2)
    assumptions = (
        *scenario.assumptions,
        "hazard ratios from an observational Cox model are read as causal",
        f"the yearly rate applies to {customers_at_risk:,} customers at risk now",
        f"a kept customer is worth {horizon_months:g} months of average revenue "
        f"({rev:,.2f} per month), not discounted",
    )
    return pd.DataFrame(
        {
            "scenario": [scenario.name],
            "description": [scenario.description],
            "churners_prevented_per_year": [per_year],
            "churners_ci_lower": [per_year - z * se_year],
            "churners_ci_upper": [per_year + z * se_year],
            "revenue_at_stake": [money],
            "revenue_ci_lower": [money - z * se_money],
            "revenue_ci_upper": [money + z * se_money],
            "customers_at_risk": [int(customers_at_risk)],
            "assumptions": ["; ".join(assumptions)],
        }
    )


# --------------------------------------------------------------------------------------
# Moments of truth and compensation
# --------------------------------------------------------------------------------------


def moments_of_truth(
    cp: pd.DataFrame,
    experience: pd.DataFrame,
    *,
    monthly_churn_rate: float,
    revenue_per_month: tuple[float, float],
    horizon_months: float = 12.0,
    adjust: Sequence[str] = ("nps_category",),
    strata: str | None = None,
    customer: str = "customer_id",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Rank touchpoints by what a failed ticket there costs in churn and revenue.

    A failed ticket is one not resolved at first contact or outside its SLA.
    One Cox model holds the windowed failure counts of every touchpoint
    (``failures_<touchpoint>_window``) plus ``adjust``; a failure's hazard
    ratio lasts for the window (``cp.attrs["window_days"]``).

    Customers lost per 100 failures = 100 x (HR - 1) x monthly churn rate x
    window months (the extra churn during the window, small-rate
    approximation); revenue lost = that x revenue per customer-month x
    ``horizon_months``.

    Returns
    -------
    pandas.DataFrame
        One row per touchpoint, worst first: customers (with a ticket there),
        tickets, failure_rate,
        hazard_ratio with ci_lower / ci_upper, customers_lost_per_100 (with
        interval), revenue_lost_per_100 (currency, with interval).
    """
    tps = [
        t
        for t in cp.attrs.get("touchpoints", [])
        if f"failures_{t}_window" in cp.columns and _varies(cp, f"failures_{t}_window")
    ]
    cols = [f"failures_{t}_window" for t in tps]
    if not cols:
        return pd.DataFrame()
    hz = churn_hazards(
        cp, covariates=[*cols, *adjust], strata=strata, customer=customer, alpha=alpha
    )
    per_tp = (
        experience.set_index("touchpoint")
        if "failed" in experience.columns
        else touchpoint_counts(experience, customer=customer)
    )
    window_months = cp.attrs.get("window_days", 90) / DAYS_PER_MONTH
    rev = revenue_per_month[0]
    rows = []
    for t, c in zip(tps, cols, strict=False):
        n = per_tp.loc[t] if t in per_tp.index else pd.Series({"customers": 0, "tickets": 0})
        hr, lo, hi = hz.hr(c)
        per = 100 * monthly_churn_rate * window_months
        rows.append(
            {
                "touchpoint": t,
                "customers": int(n["customers"]),
                "tickets": int(n["tickets"]),
                "failure_rate": float(n["failed"]) / n["tickets"] if n["tickets"] else np.nan,
                "hazard_ratio": hr,
                "ci_lower": lo,
                "ci_upper": hi,
                "customers_lost_per_100": per * (hr - 1),
                "customers_lost_ci_lower": per * (lo - 1),
                "customers_lost_ci_upper": per * (hi - 1),
                "revenue_lost_per_100": per * (hr - 1) * rev * horizon_months,
                "revenue_lost_ci_lower": per * (lo - 1) * rev * horizon_months,
                "revenue_lost_ci_upper": per * (hi - 1) * rev * horizon_months,
            }
        )
    out = pd.DataFrame(rows).sort_values("customers_lost_per_100", ascending=False)
    return out.reset_index(drop=True)


def touchpoint_counts(experience: pd.DataFrame, *, customer: str = "customer_id") -> pd.DataFrame:
    """Return per ticket touchpoint (the index): ``customers`` (distinct), ``tickets`` and
    ``failed`` (not resolved at first contact or SLA missed), from contract rows; the
    engine builds the same table (:func:`analysis.data.experience_stats.touchpoint_sums`)."""
    kind = experience["kind"].astype(str).str.lower()
    tk = experience[kind.eq("ticket").to_numpy()]
    failed = np.zeros(len(tk), dtype=bool)
    for c in ("first_contact_resolution", "sla_met"):  # either may be absent from the data
        if c in tk.columns:
            failed |= _as_bool(tk[c]) == 0
    if "touchpoint" not in tk.columns:
        return pd.DataFrame({"customers": [], "tickets": [], "failed": []})
    tp = tk["touchpoint"]
    has = tp.notna().to_numpy()
    d = pd.DataFrame(
        {"touchpoint": tp.astype(str).to_numpy()[has], "c": tk[customer].to_numpy()[has]}
    )
    d["failed"] = failed[has]
    return d.groupby("touchpoint").agg(
        customers=("c", "nunique"), tickets=("c", "size"), failed=("failed", "sum")
    )


def compensation_effect(
    cp: pd.DataFrame,
    *,
    adjust: Sequence[str] = ("nps_category", "tickets_window"),
    strata: str | None = None,
    customer: str = "customer_id",
    alpha: float = 0.05,
    severity: Sequence[str] = ("unresolved_window", "sla_breaches_window"),
) -> pd.DataFrame:
    """Compare churn after compensated and uncompensated failed tickets (observational).

    The Cox model holds the ``severity`` counts (unresolved tickets and SLA
    breaches, where the data records them: what went wrong, and how often),
    ``adjust`` (history: latest NPS category, tickets in the window) and the
    count of compensated failed tickets. The hazard ratio of the last term
    compares a compensated failure with an uncompensated one of the same kind. Compensation is not randomised:
    agents may compensate the angriest or the most valuable customers.

    Returns
    -------
    pandas.DataFrame
        One row: compensated_failures (rows' customers with one), hazard_ratio,
        ci_lower, ci_upper, p_value, label "observational".
    """
    severity = list(severity)
    cov = [*severity, "compensated_failures_window", *adjust]
    hz = churn_hazards(cp, covariates=cov, strata=strata, customer=customer, alpha=alpha)
    r = hz.summary.loc["compensated_failures_window"]
    n_comp = int(cp.loc[cp["compensated_failures_window"] > 0, customer].nunique())
    return pd.DataFrame(
        [
            {
                "comparison": "compensated vs uncompensated failed ticket (same severity)",
                "customers_with_compensated_failure": n_comp,
                "hazard_ratio": r.hazard_ratio,
                "ci_lower": r.ci_lower,
                "ci_upper": r.ci_upper,
                "p_value": r.p_value,
                "adjusted_for": ", ".join([*severity, *adjust]),
                "label": "observational",
            }
        ]
    )
