"""Descriptive experience views and the rates that turn hazard ratios into customers and money.

* :func:`experience_metrics` -- NPS, CSAT/CES, first-contact resolution, SLA
  compliance overall, per period and/or per group;
* :func:`driver_view` -- survey answers by the outcome of the latest ticket
  before them;
* :func:`nps_landmark` -- customers at risk on a landmark date by their
  latest NPS answer before it;
* :func:`monthly_churn`, :func:`monthly_revenue`, :func:`fcr_rate`;
* :func:`claim_numbers` -- this data's numbers beside common CX claims.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import AnalysisError
from analysis.stats.fixed_effects import FEResult, _codes
from analysis.studies.experience.frames import (
    DAYS_PER_MONTH,
    NO_SURVEY,
    NPS_LEVELS,
    _as_bool,
    _period_floor,
    _require,
    nps_categories,
)

# --------------------------------------------------------------------------------------
# Descriptive views for the report
# --------------------------------------------------------------------------------------


def _prop_ci(k: float, n: float, z: float) -> tuple[float, float, float]:
    """Return a Wilson interval for a proportion k / n."""
    if n <= 0:
        return float("nan"), float("nan"), float("nan")
    p = k / n
    den = 1 + z**2 / n
    mid = (p + z**2 / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / den
    return p, mid - half, mid + half


def _nps_score(nps: pd.Series, z: float) -> tuple[float, float, float, int]:
    """Return NPS (% promoters - % detractors) with a multinomial-variance interval."""
    v = pd.to_numeric(nps, errors="coerce").dropna().to_numpy()
    return _nps_from_counts(int((v >= 9).sum()), int((v <= 6).sum()), len(v), z)


def _nps_from_counts(
    promoters: float, detractors: float, n: float, z: float
) -> tuple[float, float, float, int]:
    """:func:`_nps_score` from the counts of promoters and detractors among ``n`` answers."""
    n = int(n)
    if n == 0:
        return float("nan"), float("nan"), float("nan"), 0
    pp, pd_ = promoters / n, detractors / n
    score = 100 * (pp - pd_)
    se = 100 * math.sqrt(max(pp + pd_ - (pp - pd_) ** 2, 0.0) / n)
    return score, score - z * se, score + z * se, n


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


def metrics_from_sums(
    sums: pd.DataFrame, keys: Sequence[str] = (), *, alpha: float = 0.05
) -> pd.DataFrame:
    """Turn :func:`analysis.data.experience_stats.experience_sums` rows into the
    :func:`experience_metrics` table (same columns, groups sorted by ``keys``).

    The engine path of the study: counts and sums per group come from the
    engine, the shares, means and intervals are computed here.
    """
    z = stats.norm.ppf(1 - alpha / 2)
    keys = list(keys)
    if keys:
        sums = sums.sort_values(keys, na_position="last", kind="stable")
    rows = []
    for r in sums.to_dict("records"):
        n = r["nps_n"]
        score, lo, hi, n_nps = _nps_from_counts(r["promoters"], r["detractors"], n, z)
        rows.append(
            {
                **{k: r[k] for k in keys},
                "customers": int(r["customers"]),
                "answers": int(r["answers"]),
                "nps_answers": n_nps,
                "nps": score,
                "nps_ci_lower": lo,
                "nps_ci_upper": hi,
                "promoter_share": _ratio(r["promoters"], n),
                "passive_share": _ratio(r["passives"], n),
                "detractor_share": _ratio(r["detractors"], n),
                "csat_mean": _ratio(r["csat_sum"], r["csat_n"]),
                "ces_mean": _ratio(r["ces_sum"], r["ces_n"]),
                "tickets": int(r["tickets"]),
                "fcr_rate": _ratio(r["fcr_yes"], r["fcr_n"]),
                "contacts_to_resolve": _ratio(r["contacts_sum"], r["contacts_n"]),
                "sla_compliance": _ratio(r["sla_yes"], r["sla_n"]),
                "compensated_share": _ratio(r["comp_yes"], r["comp_n"]),
            }
        )
    out = pd.DataFrame(rows)
    if "period" in keys and len(out):
        out["period"] = pd.to_datetime(out["period"]).astype("datetime64[ns]")
    return out


def experience_metrics(
    experience: pd.DataFrame,
    *,
    by: str | None = None,
    customers: pd.DataFrame | None = None,
    period: str | None = None,
    customer: str = "customer_id",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Summarise survey and ticket outcomes overall, per calendar period and/or per group.

    Parameters
    ----------
    experience : pandas.DataFrame
        Contract ``experience`` rows.
    by : str, optional
        Customer attribute to group by (taken from ``customers`` when not in
        ``experience``), e.g. segment.
    customers : pandas.DataFrame, optional
        Customer table holding ``by``.
    period : {"month", "week", "quarter"}, optional
        Also group by the calendar period of the event date.
    alpha : float
        1 - confidence level of the NPS and rate intervals.

    Returns
    -------
    pandas.DataFrame
        One row per group: customers (distinct customers with an event),
        answers (survey rows), nps_answers, nps (-100..100) with nps_ci_lower /
        nps_ci_upper, promoter_share, passive_share, detractor_share,
        csat_mean (1-5), ces_mean (1-7), tickets, fcr_rate (share resolved at
        first contact), contacts_to_resolve (mean), sla_compliance (share of
        tickets within SLA), compensated_share (of failed tickets).
    """
    _require(experience, "experience", [customer, "date", "kind"])
    z = stats.norm.ppf(1 - alpha / 2)
    ex = experience
    keys: list[str] = []
    if by is not None:
        if by not in ex.columns:
            if customers is None or by not in customers.columns:
                raise AnalysisError(
                    f"Column {by!r} is in neither the experience nor the customers."
                )
            ex = ex.merge(customers[[customer, by]], on=customer, how="left")
        keys.append(by)
    if period is not None:
        ex = ex.assign(
            period=_period_floor(
                pd.to_datetime(ex["date"]).to_numpy().astype("datetime64[D]"), period
            ).astype("datetime64[ns]")
        )
        keys.append("period")
    kind = ex["kind"].astype(str).str.lower()
    ex = ex.assign(_survey=kind.eq("survey").to_numpy(), _ticket=kind.eq("ticket").to_numpy())

    def one(g: pd.DataFrame) -> dict:
        sv, tk = g[g["_survey"]], g[g["_ticket"]]
        score, lo, hi, n_nps = _nps_score(sv["nps"] if "nps" in sv else pd.Series(dtype=float), z)
        nps = pd.to_numeric(sv.get("nps", pd.Series(dtype=float)), errors="coerce").dropna()
        row = {
            "customers": g[customer].nunique(),
            "answers": len(sv),
            "nps_answers": n_nps,
            "nps": score,
            "nps_ci_lower": lo,
            "nps_ci_upper": hi,
            "promoter_share": float((nps >= 9).mean()) if len(nps) else np.nan,
            "passive_share": float(((nps >= 7) & (nps <= 8)).mean()) if len(nps) else np.nan,
            "detractor_share": float((nps <= 6).mean()) if len(nps) else np.nan,
            "csat_mean": pd.to_numeric(sv.get("csat"), errors="coerce").mean()
            if "csat" in sv
            else np.nan,
            "ces_mean": pd.to_numeric(sv.get("ces"), errors="coerce").mean()
            if "ces" in sv
            else np.nan,
            "tickets": len(tk),
        }
        fcr = _as_bool(tk["first_contact_resolution"]) if "first_contact_resolution" in tk else []
        sla = _as_bool(tk["sla_met"]) if "sla_met" in tk else []
        row["fcr_rate"] = float(np.nanmean(fcr)) if len(fcr) and not np.isnan(fcr).all() else np.nan
        row["contacts_to_resolve"] = (
            pd.to_numeric(tk["contacts_to_resolve"], errors="coerce").mean()
            if "contacts_to_resolve" in tk
            else np.nan
        )
        row["sla_compliance"] = (
            float(np.nanmean(sla)) if len(sla) and not np.isnan(sla).all() else np.nan
        )
        if len(fcr) and len(sla) and "compensated" in tk:
            failed = (fcr == 0) | (sla == 0)
            comp = _as_bool(tk["compensated"])
            cf = comp[failed]
            row["compensated_share"] = (
                float(np.nanmean(cf)) if len(cf) and not np.isnan(cf).all() else np.nan
            )
        else:
            row["compensated_share"] = np.nan
        return row

    if not keys:
        return pd.DataFrame([one(ex)])
    rows = []
    for k, g in ex.groupby(keys, sort=True, observed=True, dropna=False):
        k = k if isinstance(k, tuple) else (k,)
        rows.append({**dict(zip(keys, k, strict=True)), **one(g)})
    return pd.DataFrame(rows)


def driver_view(
    experience: pd.DataFrame,
    *,
    window_days: int = 30,
    customer: str = "customer_id",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Relate survey answers to the outcome of the customer's latest ticket before them.

    Each survey answer is matched to the same customer's most recent ticket
    dated up to ``window_days`` days before it (same day included). Answers
    with no such ticket form the comparison row. Several tickets of one day
    count as one with the day's worst outcome (not resolved at first contact
    if any was not, SLA missed if any was, the most contacts), compensated if
    any was: the rule the engine path
    (:func:`analysis.data.experience_stats.driver_sums`) follows too.

    Returns
    -------
    pandas.DataFrame
        One row per driver and outcome (e.g. "first-contact resolution" /
        "no"): answers, customers, csat_mean with ci_lower / ci_upper (1-5),
        nps (-100..100) with nps_ci_lower / nps_ci_upper, ces_mean (1-7).
        Descriptive: customers with bad tickets may differ in other ways.
    """
    _require(experience, "experience", [customer, "date", "kind"])
    z = stats.norm.ppf(1 - alpha / 2)
    kind = experience["kind"].astype(str).str.lower()
    sv = experience[kind.eq("survey").to_numpy()].copy()
    tk = experience[kind.eq("ticket").to_numpy()].copy()
    sv["_d"] = pd.to_datetime(sv["date"]).astype("datetime64[ns]")
    tk["_d"] = pd.to_datetime(tk["date"]).astype("datetime64[ns]")
    tcols = [
        c
        for c in ("first_contact_resolution", "sla_met", "contacts_to_resolve", "compensated")
        if c in tk.columns
    ]
    sv = sv.drop(columns=tcols).sort_values("_d")
    # one ticket per customer and day, with the day's worst outcome (see experience_stats)
    day = pd.DataFrame({customer: tk[customer].to_numpy(), "_td": tk["_d"].to_numpy()})
    for c in tcols:
        day[c] = (
            pd.to_numeric(tk[c], errors="coerce").to_numpy(dtype=float)
            if c == "contacts_to_resolve"
            else _as_bool(tk[c])
        )
    worst = {c: "max" if c in ("contacts_to_resolve", "compensated") else "min" for c in tcols}
    tk = day.groupby([customer, "_td"], sort=False).agg(worst).reset_index() if tcols else day
    tk = tk.drop_duplicates([customer, "_td"]).sort_values("_td")
    m = pd.merge_asof(
        sv,
        tk,
        left_on="_d",
        right_on="_td",
        by=customer,
        direction="backward",
        tolerance=pd.Timedelta(days=window_days),
        suffixes=("", "_ticket"),
    )
    has = m["_td"].notna()
    groups: list[tuple[str, str, np.ndarray]] = [
        ("ticket in the previous days", "none", ~has.to_numpy())
    ]
    if "first_contact_resolution" in m:
        f = m["first_contact_resolution"].to_numpy(dtype=float)
        groups += [
            ("first-contact resolution", "yes", has.to_numpy() & (f == 1)),
            ("first-contact resolution", "no", has.to_numpy() & (f == 0)),
        ]
    if "sla_met" in m:
        s_ = m["sla_met"].to_numpy(dtype=float)
        groups += [
            ("SLA", "met", has.to_numpy() & (s_ == 1)),
            ("SLA", "missed", has.to_numpy() & (s_ == 0)),
        ]
    if "contacts_to_resolve" in m:
        c = pd.to_numeric(m["contacts_to_resolve"], errors="coerce").to_numpy()
        groups += [
            ("contacts to resolve", "1", has.to_numpy() & (c == 1)),
            ("contacts to resolve", "2", has.to_numpy() & (c == 2)),
            ("contacts to resolve", "3 or more", has.to_numpy() & (c >= 3)),
        ]
    if "compensated" in m and "first_contact_resolution" in m and "sla_met" in m:
        failed = has.to_numpy() & (
            (m["first_contact_resolution"].to_numpy(dtype=float) == 0)
            | (m["sla_met"].to_numpy(dtype=float) == 0)
        )
        comp = m["compensated"].to_numpy(dtype=float)
        groups += [
            ("failed ticket compensated", "yes", failed & (comp == 1)),
            ("failed ticket compensated", "no", failed & (comp != 1)),
        ]
    rows = []
    for driver, outcome, mask in groups:
        g = m[mask]
        cs = pd.to_numeric(g.get("csat"), errors="coerce").dropna() if "csat" in g else pd.Series()
        n = len(cs)
        mean = cs.mean() if n else np.nan
        se = cs.std(ddof=1) / math.sqrt(n) if n > 1 else np.nan
        rows.append(
            _driver_row(
                driver,
                outcome,
                answers=len(g),
                customers=g[customer].nunique(),
                csat=(mean, se),
                nps=_nps_score(g["nps"] if "nps" in g else pd.Series(dtype=float), z),
                ces_mean=pd.to_numeric(g.get("ces"), errors="coerce").mean()
                if "ces" in g
                else np.nan,
                z=z,
            )
        )
    return _driver_table(rows, window_days)


def _driver_row(
    driver: str,
    outcome: str,
    *,
    answers: int,
    customers: int,
    csat: tuple[float, float],
    nps: tuple[float, float, float, int],
    ces_mean: float,
    z: float,
) -> dict:
    """One row of the driver table from its statistics (``csat``: mean and standard error;
    ``nps``: score, interval and answers)."""
    mean, se = csat
    return {
        "driver": driver,
        "outcome": outcome,
        "answers": int(answers),
        "customers": int(customers),
        "csat_mean": mean,
        "csat_ci_lower": mean - z * se,
        "csat_ci_upper": mean + z * se,
        "nps": nps[0],
        "nps_ci_lower": nps[1],
        "nps_ci_upper": nps[2],
        "ces_mean": ces_mean,
    }


def _driver_table(rows: list[dict], window_days: int) -> pd.DataFrame:
    out = pd.DataFrame(rows)
    out.attrs["window_days"] = window_days
    return out


def drivers_from_sums(
    sums: pd.DataFrame,
    groups: Sequence[tuple[str, str]],
    *,
    window_days: int,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Turn the one wide row of :func:`analysis.data.experience_stats.driver_sums` into
    the :func:`driver_view` table (``groups``: its (driver, outcome) pairs, in order)."""
    z = stats.norm.ppf(1 - alpha / 2)
    r = sums.iloc[0]
    rows = []
    for i, (driver, outcome) in enumerate(groups):
        g = {k: float(r[f"g{i}_{k}"]) for k in ("answers", "customers", "csat_n", "csat_sum")}
        n, ss = g["csat_n"], float(r[f"g{i}_csat_ss"])
        mean = _ratio(g["csat_sum"], n)
        var = max((ss - n * mean * mean) / (n - 1), 0.0) if n > 1 else float("nan")
        se = math.sqrt(var / n) if n > 1 else float("nan")
        rows.append(
            _driver_row(
                driver,
                outcome,
                answers=g["answers"],
                customers=g["customers"],
                csat=(mean, se),
                nps=_nps_from_counts(
                    r[f"g{i}_promoters"], r[f"g{i}_detractors"], r[f"g{i}_nps_n"], z
                ),
                ces_mean=_ratio(r[f"g{i}_ces_sum"], r[f"g{i}_ces_n"]),
                z=z,
            )
        )
    return _driver_table(rows, window_days)


def nps_landmark(
    lifetimes: pd.DataFrame,
    experience: pd.DataFrame,
    *,
    landmark: Any,
    customer: str = "customer_id",
) -> pd.DataFrame:
    """Classify customers at risk on a landmark date by their latest NPS answer before it.

    The latest answer is the mean of the answers of the latest day with one.
    Only answers dated before the landmark are used, and follow-up starts at
    the landmark, so the category cannot borrow from the future (no
    immortal-time bias).

    Returns
    -------
    pandas.DataFrame
        One row per customer at risk on the landmark: ``customer``,
        nps_category (promoter / passive / detractor / none), months (from
        the landmark to churn or censoring, months of 30.4375 days), event.
    """
    _require(
        lifetimes, "lifetimes", [customer, "start_date", "entry_days", "duration_days", "event"]
    )
    lm = np.datetime64(pd.Timestamp(landmark).date(), "D")
    base = landmark_at_risk(lifetimes, landmark=landmark, customer=customer)
    latest = None
    if experience is not None and len(experience) and "nps" in experience.columns:
        e = experience[[customer, "date", "nps"]].dropna(subset=["nps"])
        day = pd.to_datetime(e["date"]).to_numpy().astype("datetime64[D]")
        e = e.assign(_d=day)[day < lm]
        # the latest day's answers, averaged (a database keeps no row order)
        e = e[e["_d"].to_numpy() == e.groupby(customer)["_d"].transform("max").to_numpy()]
        latest = pd.to_numeric(e["nps"], errors="coerce").groupby(e[customer].to_numpy()).mean()
    return _landmark_categories(base, latest, customer)


def _landmark_categories(
    base: pd.DataFrame, latest: pd.Series | None, customer: str = "customer_id"
) -> pd.DataFrame:
    """Add ``nps_category`` to the landmark rows from each customer's latest answer
    (``latest``: NPS indexed by customer; ``None``: no answers)."""
    cat = pd.Series(NO_SURVEY, index=base.index, dtype=object)
    if latest is not None and len(latest):
        lastcat = pd.Series(nps_categories(latest).astype(object).to_numpy(), index=latest.index)
        hit = base[customer].map(lastcat)
        cat = hit.where(hit.notna(), NO_SURVEY)
    base["nps_category"] = pd.Categorical(cat.to_numpy(), categories=[*NPS_LEVELS, NO_SURVEY])
    return base


def landmark_at_risk(
    lifetimes: pd.DataFrame, *, landmark: Any, customer: str = "customer_id"
) -> pd.DataFrame:
    """The customers at risk on ``landmark`` with months to churn or censoring and event
    (the rows of :func:`nps_landmark` before the NPS category is added)."""
    lm = np.datetime64(pd.Timestamp(landmark).date(), "D")
    sd = pd.to_datetime(lifetimes["start_date"]).to_numpy().astype("datetime64[D]")
    entry = sd + lifetimes["entry_days"].to_numpy(dtype=np.int64).astype("timedelta64[D]")
    end = sd + lifetimes["duration_days"].to_numpy(dtype=np.int64).astype("timedelta64[D]")
    at = (entry <= lm) & (end > lm)
    return pd.DataFrame(
        {
            customer: lifetimes[customer].to_numpy()[at],
            "months": (end[at] - lm).astype(np.int64) / DAYS_PER_MONTH,
            "event": lifetimes["event"].to_numpy()[at].astype(int),
        }
    )


# --------------------------------------------------------------------------------------
# Rates used to turn hazard ratios into customers and money
# --------------------------------------------------------------------------------------


def monthly_churn(cp: pd.DataFrame, alpha: float = 0.05) -> tuple[float, float, float]:
    """Return churns per customer-month at risk in counting-process rows, with a Poisson interval."""
    months = float((cp["stop"] - cp["start"]).sum()) / DAYS_PER_MONTH
    k = float(cp["event"].sum())
    if months <= 0:
        return float("nan"), float("nan"), float("nan")
    lo = stats.chi2.ppf(alpha / 2, 2 * k) / 2 if k > 0 else 0.0
    hi = stats.chi2.ppf(1 - alpha / 2, 2 * k + 2) / 2
    return k / months, lo / months, hi / months


def monthly_revenue(
    panel: pd.DataFrame, *, outcome: str = "revenue", customer: str = "customer_id"
) -> tuple[float, float]:
    """Return mean revenue per customer-month at risk and its customer-clustered standard error."""
    y = panel[outcome].to_numpy(dtype=float)
    ok = ~np.isnan(y)
    y = y[ok]
    g = _codes(panel[customer].to_numpy()[ok])
    n, ng = len(y), int(g.max()) + 1 if len(g) else 0
    if n == 0:
        return float("nan"), float("nan")
    m = y.mean()
    s = np.bincount(g, weights=y - m, minlength=ng)
    return float(m), clustered_mean_se(float((s**2).sum()), n, ng)


def clustered_mean_se(spread: float, n: int, clusters: int) -> float:
    """Return the cluster-robust standard error of a mean of ``n`` values in ``clusters``.

    ``spread`` is the sum over clusters of (the cluster's sum of deviations from the
    mean) squared; the factor ``G / (G - 1)`` is the usual small-sample correction.
    """
    return math.sqrt(clusters / max(clusters - 1, 1) * spread) / n


def fcr_rate(experience: pd.DataFrame | pd.Series) -> float:
    """Return the share of tickets resolved at the first contact (NaN when not recorded).

    ``experience``: contract rows, or their overall counts (a row of
    :func:`analysis.data.experience_stats.experience_sums`).
    """
    if isinstance(experience, pd.Series):
        return _ratio(experience["fcr_yes"], experience["fcr_n"])
    if "first_contact_resolution" not in experience.columns or "kind" not in experience.columns:
        return float("nan")
    kind = experience["kind"].astype(str).str.lower()
    f = _as_bool(experience.loc[kind.eq("ticket").to_numpy(), "first_contact_resolution"])
    return float(np.nanmean(f)) if len(f) and not np.isnan(f).all() else float("nan")


# --------------------------------------------------------------------------------------
# Numbers beside common customer-experience claims
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimNumbers:
    """This data's numbers set beside three common customer-experience claims.

    Each figure is ``(estimate, ci_lower, ci_upper)``; shares are fractions.

    Attributes
    ----------
    revenue_pct_per_csat : tuple of float or None
        Next-month revenue change (percent of mean revenue) per CSAT point
        this month, customers compared with themselves; None when the revenue
        link could not be estimated.
    retained_12m : tuple of float
        Share of customers retained over 12 months at the observed monthly
        churn rate.
    within_two_contacts : tuple of float
        Share of tickets resolved within two contacts (Wilson interval).
    first_contact : tuple of float
        Share of tickets resolved at the first contact (Wilson interval).
    csat_answers : int or None
        CSAT answers in the experience table (None: not counted).
    """

    revenue_pct_per_csat: tuple[float, float, float] | None
    retained_12m: tuple[float, float, float]
    within_two_contacts: tuple[float, float, float]
    first_contact: tuple[float, float, float]
    csat_answers: int | None = None


def claim_numbers(
    *,
    revenue: FEResult | None,
    term: str,
    cp: pd.DataFrame,
    experience: pd.DataFrame,
    alpha: float = 0.05,
) -> ClaimNumbers:
    """Compute the numbers this data can set beside three common customer-experience claims.

    Parameters
    ----------
    revenue : FEResult or None
        The revenue link (:func:`~.revenue.revenue_link`) holding ``term``.
    term : str
        The CSAT term of ``revenue`` (e.g. ``"csat_mean_lag1"``).
    cp : pandas.DataFrame
        Counting-process rows (the churn rate).
    experience : pandas.DataFrame or pandas.Series
        Contract ``experience`` rows (the ticket outcomes), or their overall
        counts: a row of :func:`analysis.data.experience_stats.experience_sums`.
    alpha : float
        1 - confidence level.

    Returns
    -------
    ClaimNumbers
    """
    z = stats.norm.ppf(1 - alpha / 2)
    pct = None
    if revenue is not None and term in revenue.summary.index:
        r = revenue.summary.loc[term]
        base = revenue.outcome_mean
        pct = (100 * r.coef / base, 100 * r.ci_lower / base, 100 * r.ci_upper / base)
    h, h_lo, h_hi = monthly_churn(cp, alpha)
    ret = (math.exp(-12 * h), math.exp(-12 * h_hi), math.exp(-12 * h_lo))
    if isinstance(experience, pd.Series):  # one row of experience_sums (the engine path)
        counts = experience
    else:
        kind = experience["kind"].astype(str).str.lower()
        tk = experience[kind.eq("ticket").to_numpy()]
        c = (
            pd.to_numeric(tk["contacts_to_resolve"], errors="coerce").dropna()
            if "contacts_to_resolve" in tk.columns
            else pd.Series(dtype=float)
        )
        f = (
            _as_bool(tk["first_contact_resolution"])
            if "first_contact_resolution" in tk.columns
            else np.zeros(0)
        )
        counts = pd.Series(
            {
                "contacts_le2": float((c <= 2).sum()),
                "contacts_n": float(len(c)),
                "fcr_yes": float(np.nansum(f == 1)),
                "fcr_n": float(np.sum(~np.isnan(f))),
                "csat_any": int(pd.to_numeric(experience["csat"], errors="coerce").notna().sum())
                if "csat" in experience.columns
                else 0,
            }
        )
    nan3 = (float("nan"),) * 3
    two = _prop_ci(float(counts["contacts_le2"]), float(counts["contacts_n"]), z)
    one = _prop_ci(float(counts["fcr_yes"]), float(counts["fcr_n"]), z)
    return ClaimNumbers(
        revenue_pct_per_csat=pct,
        retained_12m=ret,
        within_two_contacts=two if counts["contacts_n"] else nan3,
        first_contact=one if counts["fcr_n"] else nan3,
        csat_answers=int(counts["csat_any"]),
    )
