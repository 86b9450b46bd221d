"""Experience to revenue: how service experience relates to churn and next-period revenue.

The study links the ``experience`` table (survey answers and service tickets)
to the churn clock and to the monthly revenue panel:

* :func:`nps_categories` -- promoter / passive / detractor from 0-10 NPS answers;
* :func:`counting_process` -- ``(start, stop]`` rows per customer whose
  time-varying covariates only use experience recorded *before* each row
  starts (no look-ahead);
* :func:`churn_hazards` -- Cox model on those rows with customer-clustered
  (robust) standard errors;
* :func:`revenue_link` -- next-period revenue on this period's experience with
  customer and period fixed effects absorbed (never built as dummy columns)
  and customer-clustered standard errors;
* :func:`revenue_at_stake` -- churners prevented and revenue kept under a
  stated scenario, with a delta-method interval.

Time on the churn clock is in days since the customer's ``start_date``;
money is in the data's currency.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import AnalysisError, DataError, Problem, examples_of

__all__ = [
    "NPS_LEVELS",
    "FEResult",
    "HazardResult",
    "Scenario",
    "churn_hazards",
    "counting_process",
    "nps_categories",
    "revenue_at_stake",
    "revenue_link",
    "scenario_detractors_as_passives",
    "scenario_fcr_up",
    "scenario_sla_breaches_reduced",
]

#: NPS categories, best first; ``"none"`` marks "no answer recorded yet" in the churn model.
NPS_LEVELS = ("promoter", "passive", "detractor")
NO_SURVEY = "none"
DAYS_PER_MONTH = 30.4375


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


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


def _as_bool(s: pd.Series) -> np.ndarray:
    """Return a float array: 1.0 True, 0.0 False, NaN missing (nullable bools welcome)."""
    out = pd.array(s, dtype="boolean")
    return np.where(pd.isna(out), np.nan, np.asarray(out.fillna(False), dtype=float))


# --------------------------------------------------------------------------------------
# NPS categories
# --------------------------------------------------------------------------------------


def nps_categories(scores: Any) -> pd.Series:
    """Classify 0-10 likelihood-to-recommend answers as promoter, passive or detractor.

    Standard Net Promoter cut-offs (Reichheld 2003): 9-10 promoter, 7-8 passive,
    0-6 detractor.

    Parameters
    ----------
    scores : array-like or pandas.Series
        NPS answers on the 0-10 scale; missing values stay missing.

    Returns
    -------
    pandas.Series
        Categorical with categories ``("promoter", "passive", "detractor")``,
        same index as ``scores`` when it is a Series.

    Raises
    ------
    DataError
        If an answer lies outside 0-10.
    """
    index = scores.index if isinstance(scores, pd.Series) else None
    x = pd.to_numeric(pd.Series(np.asarray(scores, dtype=object), index=index), errors="coerce")
    bad = x.notna() & ((x < 0) | (x > 10))
    if bad.any():
        raise DataError(
            "NPS answers must lie on the 0-10 scale.",
            [
                Problem(
                    "experience",
                    "nps",
                    "out_of_range",
                    "values outside 0-10",
                    n_rows=int(bad.sum()),
                    examples=examples_of(x[bad].tolist()),
                    fix="check the survey export; NPS is 'how likely ... 0-10'",
                )
            ],
        )
    cat = np.select([x >= 9, x >= 7, x >= 0], list(NPS_LEVELS), default="")
    out = pd.Series(pd.Categorical(np.where(x.isna(), None, cat), categories=list(NPS_LEVELS)))
    out.index = x.index
    return out


# --------------------------------------------------------------------------------------
# Counting-process data
# --------------------------------------------------------------------------------------

#: Windowed event counts built by :func:`counting_process` (column -> description).
WINDOW_COUNTS = {
    "tickets_window": "tickets opened in the look-back window",
    "unresolved_window": "tickets not resolved at first contact, in the window",
    "sla_breaches_window": "tickets whose SLA was missed, in the window",
    "failures_window": "failed tickets (not first-contact resolved or SLA missed), in the window",
    "compensated_failures_window": "failed tickets followed by compensation, in the window",
    "uncompensated_failures_window": "failed tickets without compensation, in the window",
}


def _period_floor(dates: np.ndarray, period: str) -> np.ndarray:
    """Return the start of the calendar period holding each date (datetime64[D])."""
    if period == "month":
        return dates.astype("datetime64[M]").astype("datetime64[D]")
    if period == "week":  # ISO weeks start on Monday; 1970-01-01 was a Thursday
        days = dates.astype("datetime64[D]").astype(np.int64)
        return (days - ((days + 3) % 7)).astype("datetime64[D]")
    if period == "quarter":
        m = dates.astype("datetime64[M]").astype(np.int64)
        return (m - m % 3).astype("datetime64[M]").astype("datetime64[D]")
    raise AnalysisError(f"period must be 'month', 'week', 'quarter' or None, not {period!r}")


def _period_next(starts: np.ndarray, period: str) -> np.ndarray:
    if period == "month":
        return (starts.astype("datetime64[M]") + 1).astype("datetime64[D]")
    if period == "week":
        return starts + np.timedelta64(7, "D")
    return (starts.astype("datetime64[M]") + 3).astype("datetime64[D]")


def counting_process(
    lifetimes: pd.DataFrame,
    experience: pd.DataFrame | None,
    *,
    window_days: int = 90,
    period: str | None = "month",
    customer: str = "customer_id",
    touchpoints: Sequence[str] | None = None,
    keep: Sequence[str] = (),
    update: str = "event",
) -> pd.DataFrame:
    """Split each customer's time at risk into ``(start, stop]`` rows with experience covariates.

    Rows are split at every experience event, at the day an event leaves the
    look-back window and (optionally) at calendar period boundaries. An event
    recorded on day ``t`` enters the covariates of rows starting at ``t`` or
    later, so a churn on the same day as a survey or ticket is explained by
    what was known *before* that day (no look-ahead). Events after a
    customer's end (churn or censoring) are ignored.

    Parameters
    ----------
    lifetimes : pandas.DataFrame
        One row per customer: ``customer``, start_date (datetime), entry_days
        (days from start to the first day observed; > 0 for left-truncated
        customers), duration_days (days from start to churn or censoring),
        event (1 churned, 0 censored). Customers with
        ``duration_days <= entry_days`` have no time at risk and are dropped.
    experience : pandas.DataFrame or None
        Contract ``experience`` rows: ``customer``, date, kind ("survey" /
        "ticket"), and where present nps, csat, first_contact_resolution,
        sla_met, compensated, touchpoint. ``None`` gives rows without events.
    window_days : int
        Look-back window (days) of the ticket counts.
    period : {"month", "week", "quarter"} or None
        Also split at calendar period starts so that every row lies inside
        one period (column ``period``); ``None`` splits only at events.
    customer : str
        Customer key column in both tables.
    touchpoints : sequence of str, optional
        Touchpoints for which ``failures_<touchpoint>_window`` counts are
        built; default: every touchpoint seen on a failed ticket.
    keep : sequence of str
        Further ``lifetimes`` columns (e.g. segment) copied onto every row.
    update : {"event", "period"}
        ``"event"``: an event counts from its own day and for ``window_days``
        days. ``"period"``: covariates are refreshed once per calendar period
        -- an event counts from the start of the next period and for
        ``round(window_days / period length)`` whole periods (monthly
        operational reporting; needs ``period``).

    Returns
    -------
    pandas.DataFrame
        ``customer``, start, stop (days since start_date), event (1 on the
        row that ends in churn), period (period start date of the row, when
        ``period`` is given), nps_last (latest NPS answer, NaN if none yet),
        nps_category (promoter / passive / detractor / none), csat_last,
        the windowed counts of :data:`WINDOW_COUNTS`, ``failures_<tp>_window``
        per touchpoint, and the ``keep`` columns. ``attrs`` records
        ``window_days``, ``period`` and the number of customers dropped.
    """
    _require(
        lifetimes, "lifetimes", [customer, "start_date", "entry_days", "duration_days", "event"]
    )
    if window_days < 1:
        raise AnalysisError(f"window_days must be at least 1, not {window_days}")
    if update not in ("event", "period"):
        raise AnalysisError(f"update must be 'event' or 'period', not {update!r}")
    if update == "period" and period is None:
        raise AnalysisError("update='period' needs a calendar period (period='month', ...)")
    period_days = {"month": DAYS_PER_MONTH, "week": 7.0, "quarter": 3 * DAYS_PER_MONTH}
    window_periods = (
        max(1, round(window_days / period_days[period])) if period in period_days else 0
    )
    lt = lifetimes[[customer, "start_date", "entry_days", "duration_days", "event", *keep]]
    dup = lt[customer].duplicated()
    if dup.any():
        raise DataError(
            "lifetimes must hold one row per customer.",
            [
                Problem(
                    "lifetimes",
                    customer,
                    "duplicate_key",
                    "duplicated customers",
                    n_rows=int(dup.sum()),
                    examples=examples_of(lt.loc[dup, customer]),
                    fix="build lifetimes with analysis.derive.lifetimes",
                )
            ],
        )
    entry = lt["entry_days"].to_numpy(dtype=np.int64)
    dur = lt["duration_days"].to_numpy(dtype=np.int64)
    usable = dur > entry
    n_dropped = int((~usable).sum())
    lt = lt.loc[usable].reset_index(drop=True)
    entry, dur = entry[usable], dur[usable]
    ev_flag = lt["event"].to_numpy(dtype=np.int64)
    start_date = pd.to_datetime(lt["start_date"]).to_numpy().astype("datetime64[D]")
    n = len(lt)
    ids = pd.Index(lt[customer])

    # ---- experience events mapped to (customer code, day known, day forgotten) ------------
    raw_streams: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    raw_surveys: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    tp_names: list[str] = []
    if experience is not None and len(experience):
        _require(experience, "experience", [customer, "date", "kind"])
        ex = experience
        code = ids.get_indexer(ex[customer])
        inside = code >= 0
        code = code[inside]
        ex = ex.loc[inside]
        day = (
            pd.to_datetime(ex["date"]).to_numpy().astype("datetime64[D]") - start_date[code]
        ).astype(np.int64)
        day = np.maximum(day, 0)  # an event before signup counts as known at signup
        # Nothing at or after the customer's end can enter any row.
        live = day < dur[code]
        code, day, ex = code[live], day[live], ex.loc[live]
        if update == "period":
            # known from the start of the next period (split point = day before it), forgotten
            # `window_periods` periods later
            ev_date = start_date[code] + day.astype("timedelta64[D]")
            nxt = _period_next(_period_floor(ev_date, period), period)
            known = (nxt - start_date[code]).astype(np.int64) - 1
            gone = nxt
            for _ in range(window_periods):
                gone = _period_next(gone, period)
            forgotten = (gone - start_date[code]).astype(np.int64) - 1
        else:
            known = day
            forgotten = day + window_days
        kind = ex["kind"].astype("string").str.lower().to_numpy()
        is_ticket = kind == "ticket"
        is_survey = kind == "survey"

        def col(name: str) -> np.ndarray:
            if name in ex.columns:
                return _as_bool(ex[name])
            return np.full(len(ex), np.nan)

        fcr = col("first_contact_resolution")
        sla = col("sla_met")
        comp = col("compensated")
        unresolved = is_ticket & (fcr == 0)
        breach = is_ticket & (sla == 0)
        failed = unresolved | breach
        flags = {
            "tickets_window": is_ticket,
            "unresolved_window": unresolved,
            "sla_breaches_window": breach,
            "failures_window": failed,
            "compensated_failures_window": failed & (comp == 1),
            "uncompensated_failures_window": failed & (comp != 1),
        }
        if "touchpoint" in ex.columns:
            tp = ex["touchpoint"].astype("string").fillna("unknown").to_numpy()
            tp_names = (
                list(touchpoints)
                if touchpoints is not None
                else sorted(pd.unique(tp[failed]).tolist())
            )
            for name in tp_names:
                flags[f"failures_{name}_window"] = failed & (tp == name)
        for name, mask in flags.items():
            raw_streams[name] = (code[mask], known[mask], forgotten[mask])
        for score in ("nps", "csat"):
            if score in ex.columns:
                val = pd.to_numeric(ex[score], errors="coerce").to_numpy(dtype=float)
                ok = is_survey & ~np.isnan(val)
                raw_surveys[score] = (code[ok], known[ok], val[ok])
    else:
        empty = np.empty(0, dtype=np.int64)
        for name in WINDOW_COUNTS:
            raw_streams[name] = (empty, empty, empty)

    max_day = int(dur.max()) if n else 0
    for _, _, f in raw_streams.values():
        if len(f):
            max_day = max(max_day, int(f.max()))
    big = np.int64(max_day + 2)  # key spacing: day offsets never cross customers
    streams: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # name -> sorted enter/exit keys
    for name, (c, k_in, k_out) in raw_streams.items():
        streams[name] = (np.sort(c * big + k_in), np.sort(c * big + k_out))
    survey_keys = {}
    for score, (c, k_in, val) in raw_surveys.items():
        k = c * big + k_in
        order = np.argsort(k, kind="stable")  # same-day answers: the later row wins
        survey_keys[score] = (k[order], val[order])

    # ---- breakpoints ---------------------------------------------------------------------
    codes = np.arange(n, dtype=np.int64)
    base = codes * big
    pieces = [base + entry, base + dur]
    for k_in, k_out in streams.values():
        if len(k_in):
            pieces.append(k_in)
            pieces.append(k_out)
    for keys, _ in survey_keys.values():
        pieces.append(keys)
    if period is not None and n:
        first = _period_floor(start_date + entry.astype("timedelta64[D]"), period)
        last = start_date + dur.astype("timedelta64[D]")
        # Split the day before each period start, so (a, b] covers whole calendar days of one period.
        cur = _period_next(first, period)
        idx = np.arange(n)
        while len(idx):
            off = (cur - start_date[idx]).astype(np.int64) - 1
            ok = cur <= last[idx]
            if not ok.any():
                break
            pieces.append(idx[ok] * big + off[ok])
            idx, cur = idx[ok], _period_next(cur[ok], period)
    keys = np.unique(np.concatenate(pieces)) if n else np.empty(0, dtype=np.int64)
    kc = keys // big
    kd = keys - kc * big
    # keep breakpoints inside [entry, dur] of their customer
    inside = (kd >= entry[kc]) & (kd <= dur[kc])
    keys, kc, kd = keys[inside], kc[inside], kd[inside]
    same = kc[:-1] == kc[1:]
    rc = kc[:-1][same]
    rstart = kd[:-1][same]
    rstop = kd[1:][same]
    rkey = keys[:-1][same]

    out = {
        customer: lt[customer].to_numpy()[rc],
        "start": rstart.astype(np.int32),
        "stop": rstop.astype(np.int32),
        "event": ((rstop == dur[rc]) & (ev_flag[rc] == 1)).astype(np.int8),
    }
    if period is not None:
        out["period"] = _period_floor(
            start_date[rc] + (rstart + 1).astype("timedelta64[D]"), period
        ).astype("datetime64[ns]")
    for score, (skeys, sval) in survey_keys.items():
        j = np.searchsorted(skeys, rkey, side="right") - 1
        ok = (j >= 0) & (skeys[np.maximum(j, 0)] // big == rc)
        out[f"{score}_last"] = np.where(ok, sval[np.maximum(j, 0)], np.nan)
    if "nps_last" not in out:
        out["nps_last"] = np.full(len(rc), np.nan)
    if "csat_last" not in out:
        out["csat_last"] = np.full(len(rc), np.nan)
    cat = nps_categories(out["nps_last"]).astype("string").fillna(NO_SURVEY).to_numpy()
    out["nps_category"] = pd.Categorical(cat, categories=[*NPS_LEVELS, NO_SURVEY])
    for name, (k_in, k_out) in streams.items():
        # an event known from day t and forgotten on day u counts on rows (a, b] with t <= a < u
        cnt = np.searchsorted(k_in, rkey, side="right") - np.searchsorted(k_out, rkey, side="right")
        out[name] = cnt.astype(np.int16)
    res = pd.DataFrame(out)
    for c in keep:
        res[c] = lt[c].to_numpy()[rc]
    res.attrs.update(
        window_days=int(window_days),
        update=update,
        period=period,
        customers_dropped_no_time_at_risk=n_dropped,
        touchpoints=tp_names,
    )
    return res


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
            v = s.astype(object).to_numpy()
            for lv in levels:
                if lv == ref:
                    continue
                cols.append((v == lv).astype(float))
                names.append(f"{c}[{lv}]")
        else:
            design[c] = ("numeric", None)
            cols.append(s.to_numpy(dtype=float))
            names.append(c)
    x = np.column_stack(cols) if cols else np.empty((len(df), 0))
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
    covariates = list(covariates)
    _require(cp, "counting_process", [customer, "start", "stop", "event", *covariates])
    ref = {"nps_category": "promoter"}
    ref.update(reference or {})
    need = covariates + ([strata] if strata else [])
    miss = cp[need].isna().any(axis=1)
    d = cp.loc[~miss, [customer, "start", "stop", "event", *need]]
    d = _collapse(d, customer, [*need])
    x, names, design = _design(d, covariates, ref)
    if d["event"].sum() == 0:
        raise AnalysisError("No churn events in the rows: a hazard model cannot be fitted.")
    beta, cov, converged = _cox_counting(
        d["start"].to_numpy(dtype=float),
        d["stop"].to_numpy(dtype=float),
        d["event"].to_numpy(dtype=float),
        x,
        pd.factorize(d[strata])[0] if strata else np.zeros(len(d), dtype=np.int64),
        pd.factorize(d[customer])[0],
    )
    if not converged:
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
        dropped_missing=int(miss.sum()),
    )


def _risk_sum(v: np.ndarray, lo: np.ndarray, hi: np.ndarray, m: int) -> np.ndarray:
    """Sum ``v`` over the rows at risk at each event time (rows enter at ``lo``, leave at ``hi``)."""
    a = np.bincount(lo, weights=v, minlength=m) - np.bincount(hi, weights=v, minlength=m)
    return np.cumsum(a)[:-1]


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
    after ``start`` and removes itself after ``stop``), so the cost is
    O(rows x p^2) per iteration.
    """
    n, p = x.shape
    parts = []
    for s in np.unique(strata):
        rows = np.flatnonzero(strata == s)
        ev = rows[event[rows] == 1]
        if not len(ev):
            continue
        times, d = np.unique(stop[ev], return_counts=True)
        lo = np.searchsorted(times, start[rows], side="right")  # first event time > start
        hi = np.searchsorted(times, stop[rows], side="right")  # first event time > stop
        at = np.searchsorted(times, stop[ev])  # event time index of each churn
        parts.append((rows, ev, times, d.astype(float), lo, hi, at))

    def sums(beta: np.ndarray, hess: bool = True):
        ll, g, h = 0.0, np.zeros(p), np.zeros((p, p))
        aux = []
        for rows, ev, times, d, lo, hi, at in parts:
            xr = x[rows]
            eta = xr @ beta
            w = np.exp(eta)
            m = len(times) + 1

            s0 = _risk_sum(w, lo, hi, m)
            s1 = np.column_stack([_risk_sum(w * xr[:, j], lo, hi, m) for j in range(p)])
            xbar = s1 / s0[:, None]
            ll += float((x[ev] @ beta).sum())
            ll -= float((d * np.log(s0)).sum())
            g += x[ev].sum(axis=0) - (d[:, None] * xbar).sum(axis=0)
            if hess:
                for j in range(p):
                    for k in range(j, p):
                        s2 = _risk_sum(w * xr[:, j] * xr[:, k], lo, hi, m)
                        v = float((d * (s2 / s0 - xbar[:, j] * xbar[:, k])).sum())
                        h[j, k] = h[k, j] = h[j, k] + v
            aux.append((rows, ev, w, s0, xbar, d, lo, hi, at))
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
    # Score residuals (Lin & Wei 1989): dM-weighted deviations from the risk-set means.
    resid = np.zeros((n, p))
    for rows, ev, w, s0, xbar, d, lo, hi, at in aux:
        ca = np.r_[0.0, np.cumsum(d / s0)]
        cb = np.vstack([np.zeros(p), np.cumsum(d[:, None] * xbar / s0[:, None], axis=0)])
        xr = x[rows]
        r = -w[:, None] * (xr * (ca[hi] - ca[lo])[:, None] - (cb[hi] - cb[lo]))
        resid[rows] += r
        resid[ev] += x[ev] - xbar[at]
    ng = int(cluster.max()) + 1
    u = np.column_stack([np.bincount(cluster, weights=resid[:, j], minlength=ng) for j in range(p)])
    cov = info_inv @ (u.T @ u) @ info_inv
    return beta, cov, converged


def _collapse(d: pd.DataFrame, customer: str, cols: Sequence[str]) -> pd.DataFrame:
    """Merge consecutive rows of one customer whose covariates are equal (exact for Cox)."""
    if len(d) < 2:
        return d
    d = d.sort_values([customer, "start"], kind="stable")
    cust = d[customer].to_numpy()
    cont = np.zeros(len(d), dtype=bool)  # row continues the previous one
    cont[1:] = (cust[1:] == cust[:-1]) & (d["start"].to_numpy()[1:] == d["stop"].to_numpy()[:-1])
    for c in cols:
        v = d[c].to_numpy()
        cont[1:] &= v[1:] == v[:-1]
    if not cont.any():
        return d.reset_index(drop=True)
    run = np.cumsum(~cont) - 1
    first = np.flatnonzero(~cont)
    last = np.r_[first[1:] - 1, len(d) - 1]
    out = d.iloc[first].copy()
    out["stop"] = d["stop"].to_numpy()[last]
    out["event"] = d["event"].to_numpy()[last]
    del run
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------------------
# Revenue link: high-dimensional fixed effects with clustered standard errors
# --------------------------------------------------------------------------------------


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


def _period_ordinal(s: pd.Series, freq: str) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(s) or s.dtype == object:
        d = pd.to_datetime(s).to_numpy().astype("datetime64[D]")
        if freq == "month":
            return d.astype("datetime64[M]").astype(np.int64)
        if freq == "quarter":
            return d.astype("datetime64[M]").astype(np.int64) // 3
        if freq == "week":
            return d.astype(np.int64) // 7
        if freq == "day":
            return d.astype(np.int64)
        raise AnalysisError(f"freq must be month, quarter, week or day, not {freq!r}")
    return s.to_numpy(dtype=np.int64)


def _add_lags(
    panel: pd.DataFrame,
    *,
    customer: str,
    period: str,
    exposures: Sequence[str],
    lags: Sequence[int],
    freq: str,
) -> tuple[pd.DataFrame, list[str]]:
    """Return ``panel`` with ``<x>_lag<L>`` columns: x of the same customer L periods earlier."""
    cust = pd.factorize(panel[customer])[0].astype(np.int64)
    po = _period_ordinal(panel[period], freq)
    lo = po.min() if len(po) else 0
    span = np.int64(po.max() - lo + 1 + max(lags, default=0)) if len(po) else 1
    key = cust * span + (po - lo)
    order = np.argsort(key, kind="stable")
    skey = key[order]
    if len(skey) > 1 and (np.diff(skey) == 0).any():
        raise DataError(
            "The panel has more than one row per customer and period.",
            [
                Problem(
                    "panel",
                    period,
                    "duplicate_key",
                    "duplicated customer-period rows",
                    fix="aggregate the panel to one row per customer and period",
                )
            ],
        )
    out = {}
    names = []
    for lag in lags:
        want = key - lag
        j = np.searchsorted(skey, want)
        jj = np.minimum(j, len(skey) - 1)
        found = (j < len(skey)) & (skey[jj] == want) & (po - lo - lag >= 0)
        src = order[jj]
        for x in exposures:
            v = panel[x].to_numpy(dtype=float)
            name = f"{x}_lag{lag}" if lag else x
            out[name] = np.where(found, v[src], np.nan)
            names.append(name)
    res = panel.copy()
    for k, v in out.items():
        res[k] = v
    return res, names


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
    """Whether every level of ``fe`` lies inside one cluster."""
    pairs = np.unique(fe.astype(np.int64) * (int(cl.max()) + 1) + cl)
    return len(pairs) == len(np.unique(fe))


def revenue_link(
    panel: pd.DataFrame,
    *,
    outcome: str = "revenue",
    exposures: Sequence[str],
    lags: Sequence[int] = (1,),
    fixed_effects: Sequence[str] = ("customer_id", "period"),
    cluster: str = "customer_id",
    customer: str = "customer_id",
    period: str = "period",
    freq: str = "month",
    k_fixef: str = "nonnested",
    alpha: float = 0.05,
    tol: float = 1e-10,
    maxiter: int = 10_000,
) -> FEResult:
    """Regress this period's outcome on earlier periods' experience with absorbed fixed effects.

    ``revenue[i, t] = b_L * x[i, t-L] + a_i + g_t + e[i, t]`` for each lag L:
    with ``lags=(1,)`` this is next-period revenue on current experience.
    Customer and period effects are absorbed by alternating projections
    (pyfixest's compiled demeaning kernel), never built as dummy columns, so
    a 1M-customer x 36-month panel fits in seconds.

    Standard errors are cluster-robust (CRV1) with the small-sample factor
    ``G/(G-1) * (N-1)/(N-K)`` used by Stata (``reghdfe``, ``xtreg, fe
    vce(cluster)``) and R fixest/pyfixest by default: with
    ``k_fixef="nonnested"`` fixed effects nested in the cluster (customer
    effects when clustering by customer) are not counted in K; with ``"full"``
    every fixed-effect level counts, which reproduces dummy-variable OLS
    (statsmodels ``C(customer) + C(period)``, ``cov_type="cluster"``).
    Intervals and p-values use Student t with G-1 degrees of freedom.

    Parameters
    ----------
    panel : pandas.DataFrame
        One row per customer and period (analysis.derive.panel).
    outcome : str
        Outcome column (revenue: currency per customer-period).
    exposures : sequence of str
        Experience columns (e.g. csat_mean, unresolved_tickets, sla_breaches).
        Missing values (no survey that month) drop the row.
    lags : sequence of int
        Periods between exposure and outcome; several lags enter jointly
        (distributed lag). 0 means the same period.
    fixed_effects : sequence of str
        Columns whose effects are absorbed; empty gives pooled OLS with an
        intercept.
    cluster : str
        Cluster column for the standard errors.
    customer, period : str
        Key columns used to find earlier periods.
    freq : {"month", "quarter", "week", "day"}
        Period length when ``period`` holds dates.
    k_fixef : {"nonnested", "full"}
        How fixed effects count in the small-sample factor (see above).
    alpha : float
        1 - confidence level.
    tol, maxiter
        Convergence settings of the demeaning.

    Returns
    -------
    FEResult
        ``summary`` per term (``<exposure>_lag<L>``): coef (outcome units per
        exposure unit), se, ci_lower, ci_upper, p_value, n_obs, n_customers.
    """
    exposures = list(exposures)
    lags = [int(v) for v in lags]
    fixed_effects = list(fixed_effects)
    if k_fixef not in ("nonnested", "full"):
        raise AnalysisError(f"k_fixef must be 'nonnested' or 'full', not {k_fixef!r}")
    needed = {outcome, *exposures, *fixed_effects, cluster, customer, period}
    _require(panel, "panel", sorted(needed))
    if any(lag < 0 for lag in lags) or not lags:
        raise AnalysisError(f"lags must be non-negative integers, got {lags}")
    cols = sorted(needed)
    df, terms = _add_lags(
        panel[cols], customer=customer, period=period, exposures=exposures, lags=lags, freq=freq
    )
    y = df[outcome].to_numpy(dtype=float)
    x = np.column_stack([df[t].to_numpy(dtype=float) for t in terms])
    ok = ~np.isnan(y) & ~np.isnan(x).any(axis=1)
    fe_codes = (
        np.column_stack([pd.factorize(df[f])[0] for f in fixed_effects]).astype(np.int64)
        if fixed_effects
        else np.empty((len(df), 0), dtype=np.int64)
    )
    for j in range(fe_codes.shape[1]):
        ok &= fe_codes[:, j] >= 0
    cl = pd.factorize(df[cluster])[0]
    ok &= cl >= 0
    n_singletons = 0
    if fixed_effects:
        keep = _drop_singletons(fe_codes[ok])
        n_singletons = int((~keep).sum())
        idx = np.flatnonzero(ok)[keep]
    else:
        idx = np.flatnonzero(ok)
    if len(idx) <= len(terms) + 1:
        raise AnalysisError(
            f"Only {len(idx)} usable panel rows for {terms}: too few to estimate.",
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
    y, x = y[idx], x[idx]
    cl = pd.factorize(cl[idx])[0]
    cust_n = int(pd.unique(df[customer].to_numpy()[idx]).size)
    fe = (
        np.column_stack([pd.factorize(fe_codes[idx, j])[0] for j in range(fe_codes.shape[1])])
        if fixed_effects
        else np.empty((len(idx), 0), dtype=np.int64)
    )
    converged = True
    if fixed_effects:
        from pyfixest.core.demean import demean

        yx = np.ascontiguousarray(np.column_stack([y, x]))
        res, converged = demean(yx, fe.astype(np.uint64), np.ones(len(y)), tol=tol, maxiter=maxiter)
        yd, xd = res[:, 0], res[:, 1:]
        k = len(terms)
    else:
        yd = y
        xd = np.column_stack([x, np.ones(len(y))])
        k = len(terms) + 1
    xtx = xd.T @ xd
    if np.linalg.matrix_rank(xtx) < xtx.shape[0]:
        raise AnalysisError(
            f"The exposures {terms} are collinear with each other or the fixed effects.",
            [
                Problem(
                    "panel",
                    None,
                    "collinear",
                    "design matrix is rank deficient",
                    examples=tuple(terms),
                    fix="drop an exposure or a lag",
                )
            ],
        )
    bread = np.linalg.inv(xtx)
    beta = bread @ (xd.T @ yd)
    e = yd - xd @ beta
    # CRV1 meat: sum over clusters of (X_g' e_g)(X_g' e_g)'
    scores = np.column_stack([np.bincount(cl, weights=xd[:, j] * e) for j in range(xd.shape[1])])
    meat = scores.T @ scores
    n_obs = len(y)
    g = int(cl.max()) + 1
    levels = [int(fe[:, j].max()) + 1 for j in range(fe.shape[1])]
    if fixed_effects:
        k_fe = sum(levels) - (len(levels) - 1)  # one redundant level per extra fixed effect
        if k_fixef == "nonnested":
            for j, lv in enumerate(levels):
                if _nested_in(fe[:, j], cl):
                    k_fe -= lv - 1  # a nested effect costs one parameter, not lv
        df_k = k + k_fe
    else:
        df_k = k
    ssc = (g / (g - 1)) * ((n_obs - 1) / (n_obs - df_k))
    vcov = ssc * bread @ meat @ bread
    se = np.sqrt(np.diag(vcov))
    tq = stats.t.ppf(1 - alpha / 2, g - 1)
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
        index=pd.Index(terms, name="term"),
    )
    r2w = 1 - float(e @ e) / float(((yd - yd.mean()) ** 2).sum()) if n_obs else float("nan")
    return FEResult(
        summary=summary,
        vcov=pd.DataFrame(vcov, index=terms, columns=terms),
        n_obs=n_obs,
        n_clusters=g,
        n_customers=cust_n,
        df_k=int(df_k),
        ssc=float(ssc),
        singletons_dropped=n_singletons,
        converged=bool(converged),
        outcome_mean=float(y.mean()),
        fixed_effects=tuple(fixed_effects),
        r2_within=r2w,
    )


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
        revenue_at_stake (currency, + ci), assumptions.
    """
    need = [c for c in hazards.design]
    rows = cp.dropna(subset=need)
    cases = rows.loc[rows["event"] == 1]
    d = _delta_eta(hazards, cases, scenario)
    beta = hazards.summary["coef"].to_numpy()
    cov = hazards.cov.to_numpy()
    ratio = np.exp(d @ beta)
    prevented = float(np.sum(1 - ratio))
    grad = -(ratio[:, None] * d).sum(axis=0)
    var_prev = float(grad @ cov @ grad) + float(np.sum((1 - ratio) ** 2))
    person_years = float((rows["stop"] - rows["start"]).sum()) / 365.25
    if customers_at_risk is None:
        last = rows.sort_values([customer, "stop"]).groupby(customer, sort=False).tail(1)
        customers_at_risk = int((last["event"] == 0).sum())
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
            "assumptions": ["; ".join(assumptions)],
        }
    )
