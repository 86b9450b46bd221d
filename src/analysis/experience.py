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
  stated scenario, with a delta-method interval;
* report helpers (:func:`experience_metrics`, :func:`driver_view`,
  :func:`nps_landmark`, :func:`moments_of_truth`, :func:`compensation_effect`,
  :func:`dose_response`, :func:`lag_profile`, :func:`industry_claims`,
  :func:`findings`, ``plot_*``) and :func:`run_study`, which computes
  everything the report notebook shows.

Methods, conventions and checks: ``docs/methods/experience.md``.

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
    "StudyResults",
    "add_panel_columns",
    "churn_hazards",
    "compensation_effect",
    "counting_process",
    "dose_response",
    "driver_view",
    "experience_metrics",
    "fcr_rate",
    "findings",
    "industry_claims",
    "lag_profile",
    "moments_of_truth",
    "monthly_churn",
    "monthly_revenue",
    "nps_categories",
    "nps_landmark",
    "plot_dose_response",
    "plot_km",
    "plot_lags",
    "plot_trends",
    "revenue_at_stake",
    "revenue_link",
    "run_study",
    "scenario_detractors_as_passives",
    "scenario_fcr_up",
    "scenario_sla_breaches_reduced",
    "scenarios_from_params",
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
    v = x.to_numpy(dtype=float)
    codes = np.where(np.isnan(v), -1, np.where(v >= 9, 0, np.where(v >= 7, 1, 2)))
    return pd.Series(pd.Categorical.from_codes(codes, categories=list(NPS_LEVELS)), index=x.index)


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


def _count_at_or_before(keys: np.ndarray, at: np.ndarray) -> np.ndarray:
    """For sorted ``at``, count sorted ``keys`` <= each value (searchsorted 'right', inverted).

    Searching the (few) keys among the (many) rows instead of the other way
    round gives the same counts for a fraction of the work; the counts are
    written run by run (``int32``) without a row-length scratch array.
    """
    pos = np.searchsorted(at, keys, side="left")  # first row whose value is >= the key
    runs = np.diff(np.r_[0, pos, len(at)])
    return np.repeat(np.arange(len(keys) + 1, dtype=np.int32), runs)


def _last_at_or_before(keys: np.ndarray, at: np.ndarray) -> np.ndarray:
    """For sorted ``at``, index of the last sorted key <= each value, -1 if none."""
    pos = np.searchsorted(at, keys, side="left")
    last = np.r_[pos[1:] != pos[:-1], True] if len(pos) else np.zeros(0, dtype=bool)
    mark = np.full(len(at) + 1, -1, dtype=np.int64)
    mark[pos[last]] = np.flatnonzero(last)
    return np.maximum.accumulate(mark[: len(at)]) if len(at) else mark[:0]


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
        kcode, kinds = pd.factorize(ex["kind"])
        kinds = [str(k).lower() for k in kinds]
        is_ticket = np.isin(kcode, [i for i, k in enumerate(kinds) if k == "ticket"])
        is_survey = np.isin(kcode, [i for i, k in enumerate(kinds) if k == "survey"])

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
            tcode, tps = pd.factorize(ex["touchpoint"])
            tps = [str(t) for t in tps]
            tp_names = (
                list(touchpoints)
                if touchpoints is not None
                else sorted({tps[c] for c in np.unique(tcode[failed]) if c >= 0})
            )
            for name in tp_names:
                hit = [i for i, t in enumerate(tps) if t == name]
                flags[f"failures_{name}_window"] = failed & np.isin(tcode, hit)
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
    keys = np.concatenate(pieces) if n else np.empty(0, dtype=np.int64)
    del pieces
    keys.sort()
    keys = keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys
    kc = keys // big
    # keep breakpoints inside [entry, dur] of their customer
    kd = keys - kc * big
    inside = kd >= entry[kc]
    inside &= kd <= dur[kc]
    del kc, kd
    keys = keys[inside]
    del inside
    kc = keys // big
    same = kc[:-1] == kc[1:]
    rc = kc[:-1][same]
    del kc
    rc = rc.astype(np.int32) if n < 2**31 else rc
    rkey = keys[:-1][same]
    rstop = keys[1:][same]
    del keys, same
    rstart = (rkey - rc * big).astype(np.int32)
    rstop -= rc * big
    rstop = rstop.astype(np.int32)

    out = {
        customer: lt[customer].to_numpy()[rc],
        "start": rstart,
        "stop": rstop,
        "event": ((rstop == dur[rc]) & (ev_flag[rc] == 1)).astype(np.int8),
    }
    if period is not None:
        # in blocks: the date arithmetic needs several temporaries per row
        per = np.empty(len(rc), dtype="datetime64[ns]")
        step = 1 << 21
        for i in range(0, len(rc), step):
            sl = slice(i, i + step)
            per[sl] = _period_floor(
                start_date[rc[sl]] + (rstart[sl] + 1).astype("timedelta64[D]"), period
            )
        out["period"] = per
        del per
    for score, (skeys, sval) in survey_keys.items():
        if not len(skeys):
            continue
        j = _last_at_or_before(skeys, rkey)
        ok = (j >= 0) & (skeys[np.maximum(j, 0)] // big == rc)
        out[f"{score}_last"] = np.where(ok, sval[np.maximum(j, 0)], np.nan)
    if "nps_last" not in out:
        out["nps_last"] = np.full(len(rc), np.nan)
    if "csat_last" not in out:
        out["csat_last"] = np.full(len(rc), np.nan)
    v = out["nps_last"]
    if np.nanmax(np.r_[v, 0.0]) > 10 or np.nanmin(np.r_[v, 0.0]) < 0:
        nps_categories(v)  # raises with the offending values
    codes = np.full(len(v), 3, dtype=np.int8)  # none, then detractor / passive / promoter
    codes[~np.isnan(v)] = 2
    codes[v >= 7] = 1
    codes[v >= 9] = 0
    out["nps_category"] = pd.Categorical.from_codes(codes, categories=[*NPS_LEVELS, NO_SURVEY])
    del codes
    for name, (k_in, k_out) in streams.items():
        # an event known from day t and forgotten on day u counts on rows (a, b] with t <= a < u
        cnt = _count_at_or_before(k_in, rkey)
        cnt -= _count_at_or_before(k_out, rkey)
        out[name] = cnt.astype(np.int16)
        del cnt
    del rkey, rstart, rstop, v
    res = pd.DataFrame(out, copy=False)  # no consolidating copy of tens of millions of rows
    del out
    for c in keep:  # take() keeps the dtype (a categorical stays one byte per row)
        res[c] = lt[c].array.take(rc)
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
    window_days: int | None = None

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
    covariates = list(covariates)
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
        raise AnalysisError("No churn events in the rows: a hazard model cannot be fitted.")
    beta, cov, converged = _cox_counting(
        d["start"].to_numpy(dtype=float),
        d["stop"].to_numpy(dtype=float),
        d["event"].to_numpy(dtype=float),
        x,
        pd.factorize(d[strata])[0] if strata else np.zeros(len(d), dtype=np.int64),
        _codes(d[customer].to_numpy()),
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
        dropped_missing=n_miss,
        window_days=cp.attrs.get("window_days"),
    )


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
    out, names = _lagged(
        panel, customer=customer, period=period, exposures=exposures, lags=lags, freq=freq
    )
    res = panel.copy()
    for k, v in out.items():
        res[k] = v
    return res, names


def _lag_index(
    panel: pd.DataFrame,
    *,
    customer: str,
    period: str,
    lags: Sequence[int],
    freq: str,
) -> dict[int, np.ndarray]:
    """Return, per lag L, the row of the same customer exactly L periods earlier (-1: none).

    One factorisation and one sorted key serve every lag.
    """
    cust = _codes(panel[customer].to_numpy())
    po = _period_ordinal(panel[period], freq)
    lo = po.min() if len(po) else 0
    span = np.int64(po.max() - lo + 1 + max(lags, default=0)) if len(po) else 1
    key = cust * span + (po - lo)
    del cust
    if len(key) < 2 or bool((key[1:] > key[:-1]).all()):
        order = None  # already sorted by customer and period (the usual case): no copies
        skey = key
    else:
        order = np.argsort(key, kind="stable")
        skey = key[order]
    if len(skey) > 1 and (skey[1:] == skey[:-1]).any():
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
    for lag in dict.fromkeys(lags):
        if order is None and 0 < lag <= 12:
            # sorted, one row per customer-period: the row L periods back, if any, is one of
            # the L rows just before (no search)
            src = np.full(len(key), -1, dtype=np.int32 if len(key) < 2**31 else np.int64)
            for back in range(1, lag + 1):
                hit = np.zeros(len(key), dtype=bool)
                hit[back:] = key[:-back] == key[back:] - lag
                src[hit] = np.flatnonzero(hit) - back
            src[po - lo - lag < 0] = -1
            out[lag] = src
            continue
        want = key - lag
        j = np.searchsorted(skey, want)
        np.minimum(j, len(skey) - 1, out=j)
        found = (skey[j] == want) & (po - lo - lag >= 0)
        del want
        src = j if order is None else order[j]
        out[lag] = np.where(found, src, -1).astype(np.int32 if len(key) < 2**31 else np.int64)
    return out


def _lagged(
    panel: pd.DataFrame,
    *,
    customer: str,
    period: str,
    exposures: Sequence[str],
    lags: Sequence[int],
    freq: str,
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Return arrays ``<x>_lag<L>``: x of the same customer exactly L periods earlier (or NaN)."""
    index = _lag_index(panel, customer=customer, period=period, lags=lags, freq=freq)
    out = {}
    names = []
    for lag in lags:
        src = index[lag]
        found = src >= 0
        for x in exposures:
            v = panel[x].to_numpy(dtype=float)
            name = f"{x}_lag{lag}" if lag else x
            out[name] = np.where(found, v[src], np.nan)
            names.append(name)
    return out, names


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
    _check_fe_args(
        panel,
        outcome=outcome,
        exposures=exposures,
        lags=lags,
        fixed_effects=fixed_effects,
        cluster=cluster,
        customer=customer,
        period=period,
        k_fixef=k_fixef,
    )
    lagged, terms = _lagged(
        panel, customer=customer, period=period, exposures=exposures, lags=lags, freq=freq
    )
    y = panel[outcome].to_numpy(dtype=float)
    x = [lagged.pop(t) for t in terms]
    (res,) = _fe_fits(
        panel,
        y,
        x,
        terms,
        [list(range(len(terms)))],
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


def _lag_fits(
    panel: pd.DataFrame,
    *,
    exposures: Sequence[str],
    lags: Sequence[int],
    outcome: str = "revenue",
    fixed_effects: Sequence[str] = ("customer_id", "period"),
    cluster: str = "customer_id",
    customer: str = "customer_id",
    period: str = "period",
    freq: str = "month",
    k_fixef: str = "nonnested",
    alpha: float = 0.05,
    tol: float = 1e-10,
    maxiter: int = 10_000,
) -> dict[tuple[str, int], FEResult]:
    """Fit :func:`revenue_link` for each exposure and lag alone, sharing the work.

    The lag lookup is built once; per lag, exposures with the same missing
    rows share one estimation sample and one demeaning. Each result equals
    ``revenue_link(panel, exposures=[x], lags=(lag,), ...)``; pairs that
    cannot be estimated are left out.
    """
    exposures = list(exposures)
    lags = [int(v) for v in lags]
    fixed_effects = list(fixed_effects)
    _check_fe_args(
        panel,
        outcome=outcome,
        exposures=exposures,
        lags=lags,
        fixed_effects=fixed_effects,
        cluster=cluster,
        customer=customer,
        period=period,
        k_fixef=k_fixef,
    )
    index = _lag_index(panel, customer=customer, period=period, lags=lags, freq=freq)
    y = panel[outcome].to_numpy(dtype=float)
    codes = {f: _codes(panel[f].to_numpy()) for f in dict.fromkeys([*fixed_effects, cluster])}
    fits: dict[tuple[str, int], FEResult] = {}
    for lag in dict.fromkeys(lags):
        src = index.pop(lag)
        # only rows with an outcome and a row `lag` periods back can be used
        cand = np.flatnonzero((src >= 0) & ~np.isnan(y)).astype(
            np.int32 if len(y) < 2**31 else np.int64
        )
        src = src[cand]
        y_c = y[cand]
        groups: list[tuple[np.ndarray, list[str], list[np.ndarray]]] = []
        for name in exposures:
            v = panel[name].to_numpy()[src].astype(float)  # gather first, then widen
            miss = np.isnan(v)
            for g_miss, g_names, g_cols in groups:
                if np.array_equal(g_miss, miss):
                    g_names.append(name)
                    g_cols.append(v)
                    break
            else:
                groups.append((miss, [name], [v]))
        for _, g_names, g_cols in groups:
            x = list(g_cols)
            g_cols.clear()
            terms = [f"{n}_lag{lag}" if lag else n for n in g_names]
            res = _fe_fits(
                panel,
                y_c,
                x,
                terms,
                [[i] for i in range(len(terms))],
                codes=codes,
                given_rows=cand,
                outcome=outcome,
                fixed_effects=fixed_effects,
                cluster=cluster,
                customer=customer,
                k_fixef=k_fixef,
                alpha=alpha,
                tol=tol,
                maxiter=maxiter,
            )
            del x
            for name, r in zip(g_names, res, strict=True):
                if isinstance(r, FEResult):
                    fits[(name, lag)] = r
    return fits


def _lag_table(
    fits: Mapping[tuple[str, int], FEResult], exposures: Sequence[str], lags: Sequence[int]
) -> pd.DataFrame:
    rows = [fits[(x, int(lag))].summary for x in exposures for lag in lags if (x, int(lag)) in fits]
    if not rows:
        return pd.DataFrame()
    out = pd.concat(rows)
    out.insert(0, "exposure", [t.rsplit("_lag", 1)[0] for t in out.index])
    out.insert(1, "lag", [int(t.rsplit("_lag", 1)[1]) for t in out.index])
    return out


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
        revenue_at_stake (currency, + ci), assumptions.
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
            "assumptions": ["; ".join(assumptions)],
        }
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
    n = len(v)
    if n == 0:
        return float("nan"), float("nan"), float("nan"), 0
    pp, pd_ = (v >= 9).mean(), (v <= 6).mean()
    score = 100 * (pp - pd_)
    se = 100 * math.sqrt(max(pp + pd_ - (pp - pd_) ** 2, 0.0) / n)
    return score, score - z * se, score + z * se, n


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
    with no such ticket form the comparison row.

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
    tk = tk.sort_values("_d")[[customer, "_d", *tcols]].rename(columns={"_d": "_td"})
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
        f = _as_bool(m["first_contact_resolution"])
        groups += [
            ("first-contact resolution", "yes", has.to_numpy() & (f == 1)),
            ("first-contact resolution", "no", has.to_numpy() & (f == 0)),
        ]
    if "sla_met" in m:
        s_ = _as_bool(m["sla_met"])
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
            (_as_bool(m["first_contact_resolution"]) == 0) | (_as_bool(m["sla_met"]) == 0)
        )
        comp = _as_bool(m["compensated"])
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
        score, lo, hi, _ = _nps_score(g["nps"] if "nps" in g else pd.Series(dtype=float), z)
        rows.append(
            {
                "driver": driver,
                "outcome": outcome,
                "answers": len(g),
                "customers": g[customer].nunique(),
                "csat_mean": mean,
                "csat_ci_lower": mean - z * se,
                "csat_ci_upper": mean + z * se,
                "nps": score,
                "nps_ci_lower": lo,
                "nps_ci_upper": hi,
                "ces_mean": pd.to_numeric(g.get("ces"), errors="coerce").mean()
                if "ces" in g
                else np.nan,
            }
        )
    out = pd.DataFrame(rows)
    out.attrs["window_days"] = window_days
    return out


def nps_landmark(
    lifetimes: pd.DataFrame,
    experience: pd.DataFrame,
    *,
    landmark: Any,
    customer: str = "customer_id",
) -> pd.DataFrame:
    """Classify customers at risk on a landmark date by their latest NPS answer before it.

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
    sd = pd.to_datetime(lifetimes["start_date"]).to_numpy().astype("datetime64[D]")
    entry = sd + lifetimes["entry_days"].to_numpy(dtype=np.int64).astype("timedelta64[D]")
    end = sd + lifetimes["duration_days"].to_numpy(dtype=np.int64).astype("timedelta64[D]")
    at = (entry <= lm) & (end > lm)
    base = pd.DataFrame(
        {
            customer: lifetimes[customer].to_numpy()[at],
            "months": (end[at] - lm).astype(np.int64) / DAYS_PER_MONTH,
            "event": lifetimes["event"].to_numpy()[at].astype(int),
        }
    )
    cat = pd.Series(NO_SURVEY, index=base.index, dtype=object)
    if experience is not None and len(experience) and "nps" in experience.columns:
        e = experience[[customer, "date", "nps"]].dropna(subset=["nps"])
        e = e[pd.to_datetime(e["date"]).to_numpy().astype("datetime64[D]") < lm]
        last = e.sort_values("date", kind="stable").groupby(customer, sort=False).tail(1)
        lastcat = pd.Series(
            nps_categories(last["nps"]).astype(object).to_numpy(), index=last[customer].to_numpy()
        )
        hit = base[customer].map(lastcat)
        cat = hit.where(hit.notna(), NO_SURVEY)
    base["nps_category"] = pd.Categorical(cat.to_numpy(), categories=[*NPS_LEVELS, NO_SURVEY])
    return base


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
    se = math.sqrt(ng / max(ng - 1, 1) * float((s**2).sum())) / n
    return float(m), se


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
    kind = experience["kind"].astype(str).str.lower()
    tk = experience[kind.eq("ticket").to_numpy()]
    failed = (_as_bool(tk["first_contact_resolution"]) == 0) | (_as_bool(tk["sla_met"]) == 0)
    window_months = cp.attrs.get("window_days", 90) / DAYS_PER_MONTH
    rev = revenue_per_month[0]
    rows = []
    for t, c in zip(tps, cols, strict=False):
        is_tp = (tk["touchpoint"].astype(str) == t).to_numpy()
        hr, lo, hi = hz.hr(c)
        per = 100 * monthly_churn_rate * window_months
        rows.append(
            {
                "touchpoint": t,
                "customers": int(tk.loc[is_tp, customer].nunique()),
                "tickets": int(is_tp.sum()),
                "failure_rate": float(failed[is_tp].mean()) if is_tp.any() else np.nan,
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


def compensation_effect(
    cp: pd.DataFrame,
    *,
    adjust: Sequence[str] = ("nps_category", "tickets_window"),
    strata: str | None = None,
    customer: str = "customer_id",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Compare churn after compensated and uncompensated failed tickets (observational).

    The Cox model holds unresolved and SLA-breach counts (severity: what
    went wrong, and how often), ``adjust`` (history: latest NPS category,
    tickets in the window) and the count of compensated failed tickets. The
    hazard ratio of the last term compares a compensated failure with an
    uncompensated one of the same kind. Compensation is not randomised:
    agents may compensate the angriest or the most valuable customers.

    Returns
    -------
    pandas.DataFrame
        One row: compensated_failures (rows' customers with one), hazard_ratio,
        ci_lower, ci_upper, p_value, label "observational".
    """
    cov = ["unresolved_window", "sla_breaches_window", "compensated_failures_window", *adjust]
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
                "adjusted_for": ", ".join(cov[:2] + list(adjust)),
                "label": "observational",
            }
        ]
    )


# --------------------------------------------------------------------------------------
# Dose-response of next-period revenue on CSAT
# --------------------------------------------------------------------------------------


def dose_response(
    panel: pd.DataFrame,
    *,
    exposure: str = "csat_mean",
    outcome: str = "revenue",
    reference: int = 3,
    customer: str = "customer_id",
    period: str = "period",
    freq: str = "month",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Tabulate next-period revenue by this period's (rounded) CSAT level.

    Two columns of answers per level: the raw mean of next-period revenue
    (with a customer-clustered interval), and the fixed-effects contrast to
    ``reference`` (customer and period effects absorbed, as in
    :func:`revenue_link`), which compares the same customers across months.

    Returns
    -------
    pandas.DataFrame
        One row per level: level, customer_months, customers,
        next_revenue_mean with ci_lower / ci_upper (currency per customer-
        month), fe_difference with fe_ci_lower / fe_ci_upper (currency, vs
        ``reference``).
    """
    lagged, _ = _lagged(
        panel, customer=customer, period=period, exposures=[exposure], lags=[1], freq=freq
    )
    lvl = np.round(lagged[f"{exposure}_lag1"])
    y = panel[outcome].to_numpy(dtype=float)
    ok = ~np.isnan(lvl) & ~np.isnan(y)
    levels = sorted(int(v) for v in np.unique(lvl[ok]))
    z = stats.norm.ppf(1 - alpha / 2)
    # only rows with a level can enter the contrast regression: build it on those
    has = np.flatnonzero(~np.isnan(lvl))
    df = panel[[customer, period, outcome]].iloc[has].reset_index(drop=True)
    dummies = []
    for v in levels:
        if v == reference:
            continue
        name = f"_lvl_{v}"
        df[name] = (lvl[has] == v).astype(float)
        dummies.append(name)
    fe = None
    if dummies and reference in levels:
        try:
            fe = revenue_link(
                df,
                outcome=outcome,
                exposures=dummies,
                lags=(0,),
                fixed_effects=(customer, period),
                cluster=customer,
                customer=customer,
                period=period,
                freq=freq,
                alpha=alpha,
            )
        except AnalysisError:
            fe = None
    rows = []
    cust = panel[customer].to_numpy()
    for v in levels:
        sel = ok & (lvl == v)
        mean, se = monthly_revenue(
            pd.DataFrame({customer: cust[sel], outcome: y[sel]}), outcome=outcome, customer=customer
        )
        row = {
            "level": v,
            "customer_months": int(sel.sum()),
            "customers": int(pd.unique(cust[sel]).size),
            "next_revenue_mean": mean,
            "ci_lower": mean - z * se,
            "ci_upper": mean + z * se,
        }
        if v == reference:
            row.update(fe_difference=0.0, fe_ci_lower=0.0, fe_ci_upper=0.0)
        elif fe is not None:
            r = fe.summary.loc[f"_lvl_{v}"]
            row.update(fe_difference=r.coef, fe_ci_lower=r.ci_lower, fe_ci_upper=r.ci_upper)
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------
# Scenarios from params, industry claims, findings
# --------------------------------------------------------------------------------------


def fcr_rate(experience: pd.DataFrame) -> float:
    """Return the share of tickets resolved at the first contact."""
    kind = experience["kind"].astype(str).str.lower()
    f = _as_bool(experience.loc[kind.eq("ticket").to_numpy(), "first_contact_resolution"])
    return float(np.nanmean(f)) if len(f) and not np.isnan(f).all() else float("nan")


def scenarios_from_params(exp_params: Any, experience: pd.DataFrame) -> list[Scenario]:
    """Build the report's three scenarios from the ``experience`` params section.

    Uses ``fcr_improvement_points`` and ``sla_breach_reduction``; the FCR
    scenario starts from the FCR rate observed in ``experience``.
    """
    return [
        scenario_detractors_as_passives(),
        scenario_fcr_up(float(exp_params.fcr_improvement_points), fcr_rate(experience)),
        scenario_sla_breaches_reduced(float(exp_params.sla_breach_reduction)),
    ]


def industry_claims(
    *,
    revenue: FEResult | None,
    term: str,
    cp: pd.DataFrame,
    experience: pd.DataFrame,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Put this data's numbers beside three common customer-experience claims.

    Returns
    -------
    pandas.DataFrame
        claim, our_number, what_the_data_can_say.
    """
    z = stats.norm.ppf(1 - alpha / 2)
    if revenue is not None and term in revenue.summary.index:
        r = revenue.summary.loc[term]
        base = revenue.outcome_mean
        pct = (100 * r.coef / base, 100 * r.ci_lower / base, 100 * r.ci_upper / base)
        cx = (
            f"One CSAT point more this month goes with {pct[0]:+.1f}% revenue next "
            f"month (95% CI {pct[1]:+.1f}% to {pct[2]:+.1f}%), same customers "
            "compared across months"
        )
    else:
        cx = "Not estimable: too few CSAT answers in consecutive months"
    h, h_lo, h_hi = monthly_churn(cp, alpha)
    ret = (math.exp(-12 * h), math.exp(-12 * h_hi), math.exp(-12 * h_lo))
    kind = experience["kind"].astype(str).str.lower()
    tk = experience[kind.eq("ticket").to_numpy()]
    n_t = len(tk)
    if "contacts_to_resolve" in tk.columns and n_t:
        c = pd.to_numeric(tk["contacts_to_resolve"], errors="coerce").dropna()
        two = _prop_ci(float((c <= 2).sum()), float(len(c)), z)
    else:
        two = (float("nan"),) * 3
    one = (
        _prop_ci(
            float(np.nansum(_as_bool(tk["first_contact_resolution"]) == 1)),
            float(np.sum(~np.isnan(_as_bool(tk["first_contact_resolution"])))),
            z,
        )
        if "first_contact_resolution" in tk.columns and n_t
        else (float("nan"),) * 3
    )
    return pd.DataFrame(
        [
            {
                "claim": "Companies that improve CX grow revenue 4-8% above their market",
                "our_number": cx,
                "what_the_data_can_say": (
                    "We have no market or competitor data, so 'above the market' cannot be tested; "
                    "the within-customer association is observational and covers one month ahead."
                ),
            },
            {
                "claim": "Companies with a customer-service strategy retain 92% of customers",
                "our_number": (
                    f"{100 * ret[0]:.1f}% of customers retained over 12 months at the "
                    f"observed churn rate (95% CI {100 * ret[1]:.1f}%-{100 * ret[2]:.1f}%)"
                ),
                "what_the_data_can_say": (
                    "One company, no comparison group without a service strategy: the retention rate "
                    "is measured, the strategy's share in it is not."
                ),
            },
            {
                "claim": "Up to 90% of incidents can be resolved at the first or second contact",
                "our_number": (
                    f"{100 * two[0]:.1f}% of tickets resolved within two contacts "
                    f"(95% CI {100 * two[1]:.1f}%-{100 * two[2]:.1f}%); "
                    f"{100 * one[0]:.1f}% at the first"
                ),
                "what_the_data_can_say": (
                    "Directly measured on our tickets; what is achievable depends on the ticket mix, "
                    "which the claim does not state."
                ),
            },
        ]
    )


def _whole(v: float) -> str:
    """Format a count estimate as a whole number without a negative zero."""
    return f"{int(round(v)):,}"


def findings(
    *,
    hazards: HazardResult,
    revenue: FEResult | None,
    revenue_term: str,
    stakes: pd.DataFrame,
    currency: str = "EUR",
    compensation: pd.DataFrame | None = None,
) -> list[str]:
    """Write the report's key findings as sentences generated from the estimates."""

    from analysis.reporting import fmt_money

    def money(v: float) -> str:
        return fmt_money(v, currency)

    out = []
    for term, label in [
        ("nps_category[detractor]", "Detractors"),
        ("nps_category[passive]", "Passives"),
    ]:
        if term in hazards.summary.index:
            hr, lo, hi = hazards.hr(term)
            out.append(
                f"{label} churn at {hr:.2f} times the rate of promoters (95% CI "
                f"{lo:.2f}-{hi:.2f}), counting only answers given before the time at risk "
                "they explain and adjusting for the other terms of the model."
            )
    for term, label in [
        ("unresolved_window", "ticket not resolved at first contact"),
        ("sla_breaches_window", "missed SLA"),
    ]:
        if term in hazards.summary.index:
            hr, lo, hi = hazards.hr(term)
            window = f"{hazards.window_days} days" if hazards.window_days else "window"
            out.append(
                f"Each {label} in the last {window} multiplies the churn "
                f"rate by {hr:.2f} (95% CI {lo:.2f}-{hi:.2f})."
            )
    if revenue is not None and revenue_term in revenue.summary.index:
        r = revenue.summary.loc[revenue_term]
        out.append(
            f"One CSAT point more in a month goes with {money(r.coef)} more revenue per "
            f"customer the next month (95% CI {money(r.ci_lower)} to {money(r.ci_upper)}), "
            f"comparing the same customers across months ({r.n_obs:,.0f} customer-months, "
            f"{r.n_customers:,.0f} customers)."
        )
    for _, s in stakes.iterrows():
        out.append(
            f"{s.description}: about {_whole(s.churners_prevented_per_year)} fewer churners a "
            f"year (95% CI {_whole(s.churners_ci_lower)} to {_whole(s.churners_ci_upper)}), worth "
            f"{money(s.revenue_at_stake)} (95% CI {money(s.revenue_ci_lower)} to "
            f"{money(s.revenue_ci_upper)}) under the assumptions stated with the table."
        )
    if compensation is not None and len(compensation):
        c = compensation.iloc[0]
        out.append(
            f"Observational: after a compensated failure customers churned at "
            f"{c.hazard_ratio:.2f} times the rate after an uncompensated one of the same "
            f"kind (95% CI {c.ci_lower:.2f}-{c.ci_upper:.2f}); compensation was not "
            "assigned at random."
        )
    return out


# --------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------


def plot_trends(metrics: pd.DataFrame, *, min_answers: int = 10):
    """Plot NPS, CSAT/CES, FCR/SLA compliance and contacts to resolve per period.

    Periods with fewer than ``min_answers`` answers (or tickets) are left out.
    """
    import matplotlib.pyplot as plt

    m = metrics.sort_values("period")
    fig, ax = plt.subplots(2, 2, figsize=(11, 6.5), sharex=True)
    s = m[m["nps_answers"] >= min_answers]
    ax[0, 0].plot(s["period"], s["nps"], color="C0")
    ax[0, 0].fill_between(s["period"], s["nps_ci_lower"], s["nps_ci_upper"], alpha=0.2)
    ax[0, 0].set_title("NPS (% promoters - % detractors), 95% CI")
    s = m[m["answers"] >= min_answers]
    ax[0, 1].plot(s["period"], s["csat_mean"], label="CSAT (1-5)")
    ax[0, 1].plot(s["period"], s["ces_mean"], label="CES (1-7, higher = easier)")
    ax[0, 1].set_title("Satisfaction and effort")
    ax[0, 1].legend(frameon=False)
    t = m[m["tickets"] >= min_answers]
    ax[1, 0].plot(t["period"], 100 * t["fcr_rate"], label="first-contact resolution")
    ax[1, 0].plot(t["period"], 100 * t["sla_compliance"], label="SLA compliance")
    ax[1, 0].set_ylabel("% of tickets")
    ax[1, 0].set_title("Ticket outcomes")
    ax[1, 0].legend(frameon=False)
    ax[1, 1].plot(t["period"], t["contacts_to_resolve"], color="C3")
    ax[1, 1].set_title("Contacts to resolve (mean)")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def plot_km(km: pd.DataFrame, *, group: str = "nps_category", title: str = ""):
    """Plot Kaplan-Meier curves (columns time, survival, ci_lower, ci_upper, ``group``)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    tcol = "time" if "time" in km.columns else km.columns[1]
    for i, (lv, g) in enumerate(km.groupby(group, observed=True, sort=False)):
        g = g.sort_values(tcol)
        ax.step(g[tcol], g["survival"], where="post", label=str(lv), color=f"C{i}")
        if {"ci_lower", "ci_upper"} <= set(g.columns):
            ax.fill_between(
                g[tcol], g["ci_lower"], g["ci_upper"], step="post", alpha=0.15, color=f"C{i}"
            )
    ax.set_xlabel("months since the landmark date")
    ax.set_ylabel("share still customers")
    ax.set_title(title)
    ax.legend(frameon=False, title="latest NPS answer")
    fig.tight_layout()
    return fig


def plot_dose_response(dr: pd.DataFrame, *, currency: str = "EUR", reference: int = 3):
    """Plot next-month revenue by CSAT level: raw means and fixed-effects contrasts."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    ax[0].errorbar(
        dr["level"],
        dr["next_revenue_mean"],
        yerr=[dr["next_revenue_mean"] - dr["ci_lower"], dr["ci_upper"] - dr["next_revenue_mean"]],
        fmt="o-",
        capsize=3,
    )
    ax[0].set_title("Next-month revenue per customer (raw mean, 95% CI)")
    ax[0].set_xlabel("CSAT this month")
    ax[0].set_ylabel(currency)
    if "fe_difference" in dr.columns:
        ax[1].errorbar(
            dr["level"],
            dr["fe_difference"],
            yerr=[dr["fe_difference"] - dr["fe_ci_lower"], dr["fe_ci_upper"] - dr["fe_difference"]],
            fmt="o-",
            capsize=3,
            color="C1",
        )
    ax[1].axhline(0, color="grey", lw=0.8)
    ax[1].set_title(f"Same customers across months, vs CSAT {reference} (95% CI)")
    ax[1].set_xlabel("CSAT this month")
    ax[1].set_ylabel(f"{currency} difference next month")
    fig.tight_layout()
    return fig


def plot_lags(lag_summary: pd.DataFrame, *, currency: str = "EUR"):
    """Plot coefficients by lag (index ``<exposure>_lag<L>``) with intervals, one panel per exposure."""
    import matplotlib.pyplot as plt

    s = lag_summary.copy()
    if "exposure" not in s.columns:
        s["exposure"] = [t.rsplit("_lag", 1)[0] for t in s.index]
        s["lag"] = [int(t.rsplit("_lag", 1)[1]) for t in s.index]
    ex = list(dict.fromkeys(s["exposure"]))
    fig, axes = plt.subplots(1, len(ex), figsize=(4 * len(ex), 3.5), squeeze=False)
    for ax, e in zip(axes[0], ex, strict=True):
        g = s[s["exposure"] == e]
        ax.errorbar(
            g["lag"],
            g["coef"],
            yerr=[g["coef"] - g["ci_lower"], g["ci_upper"] - g["coef"]],
            fmt="o",
            capsize=3,
        )
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(g["lag"])
        ax.set_xlabel("months later")
        ax.set_title(e)
        ax.set_ylabel(f"{currency} per customer-month per unit")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------
# Convenience wrappers used by the report
# --------------------------------------------------------------------------------------


def _lookup_by_key(
    cp: pd.DataFrame, panel: pd.DataFrame, columns: Sequence[str], *, customer: str, fill: float
) -> pd.DataFrame | None:
    """Do :func:`add_panel_columns`'s left merge with one int64 key and a binary search.

    Returns None when the panel has duplicate customer-periods (the merge then decides).
    """

    def key_parts(df):
        c = df[customer].to_numpy().astype(np.int64)
        d = df["period"].to_numpy().astype("datetime64[D]").astype(np.int64)
        return c, d

    pc_, pd_ = key_parts(panel)
    cc, cd = key_parts(cp)
    if not len(pc_) or not len(cc):
        return None
    lo = min(int(pd_.min()), int(cd.min()))
    span = max(int(pd_.max()), int(cd.max())) - lo + 1
    pkey = pc_ * span + (pd_ - lo)
    del pc_, pd_
    order = None if bool((pkey[1:] > pkey[:-1]).all()) else np.argsort(pkey, kind="stable")
    skey = pkey if order is None else pkey[order]
    if (skey[1:] == skey[:-1]).any():
        return None
    ckey = cc * span + (cd - lo)
    del cc, cd
    j = np.minimum(np.searchsorted(skey, ckey), len(skey) - 1)
    found = skey[j] == ckey
    del ckey
    src = j if order is None else order[j]
    out = cp.copy(deep=False)  # copy-on-write: the existing columns are shared
    for c in columns:
        v = panel[c].to_numpy()[src]
        if not found.all():
            v = np.where(found, v, fill)
        out[c] = v
    return out


def add_panel_columns(
    cp: pd.DataFrame,
    panel: pd.DataFrame,
    columns: Sequence[str],
    *,
    customer: str = "customer_id",
    fill: float = 0.0,
) -> pd.DataFrame:
    """Copy per-period panel columns (e.g. member) onto counting-process rows by period.

    Needs ``cp`` built with a calendar ``period`` matching the panel's.
    Rows without a panel match get ``fill``. Keeps ``cp.attrs``.
    """
    if "period" not in cp.columns:
        raise AnalysisError("add_panel_columns needs counting_process(..., period='month').")
    if (
        pd.api.types.is_integer_dtype(cp[customer])
        and pd.api.types.is_integer_dtype(panel[customer])
        and pd.api.types.is_datetime64_any_dtype(cp["period"])
        and pd.api.types.is_datetime64_any_dtype(panel["period"])
    ):
        got = _lookup_by_key(cp, panel, columns, customer=customer, fill=fill)
        if got is not None:
            return got
    out = cp.merge(panel[[customer, "period", *columns]], on=[customer, "period"], how="left")
    for c in columns:
        out[c] = out[c].fillna(fill)
    out.attrs.update(cp.attrs)
    return out


def lag_profile(
    panel: pd.DataFrame,
    *,
    exposures: Sequence[str],
    lags: Sequence[int],
    outcome: str = "revenue",
    **kwargs: Any,
) -> pd.DataFrame:
    """Estimate the revenue link of each exposure at each lag, one regression per pair.

    Separate regressions keep every customer-month with that exposure
    observed at that lag (a survey score is rarely observed in three
    consecutive months, so a joint distributed-lag model would keep almost
    no rows). Keyword arguments go to :func:`revenue_link`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``<exposure>_lag<L>``: exposure, lag, coef, se, ci_lower,
        ci_upper, p_value, n_obs, n_customers.
    """
    try:
        fits = _lag_fits(panel, exposures=exposures, lags=lags, outcome=outcome, **kwargs)
    except AnalysisError:
        return pd.DataFrame()
    return _lag_table(fits, exposures, lags)


# --------------------------------------------------------------------------------------
# Compact, integer-keyed model tables pulled from the engine
# --------------------------------------------------------------------------------------

#: Panel columns the study uses (``analysis.derive.panel`` builds more).
_PANEL_COLUMNS = (
    "period",
    "revenue",
    "member",
    "csat_mean",
    "unresolved_tickets",
    "sla_breaches",
    "churned",
)


def _with_codes(df: pd.DataFrame, ids: Any, customer: str = "customer_id") -> pd.DataFrame:
    """Replace ``customer`` ids by their int32 position in the sorted ``ids`` (-1: unknown)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    v = pa.array(df[customer].array)
    codes = pc.index_in(v, value_set=ids.cast(v.type)).fill_null(-1)
    return df.assign(**{customer: codes.to_numpy(zero_copy_only=False).astype(np.int32)})


def _period_units(dates: np.ndarray, period: str) -> tuple[np.ndarray, int]:
    """Return (period start as an integer, step): months for month/quarter, days for week."""
    start = _period_floor(dates, period)
    if period == "week":
        return start.astype("datetime64[D]").astype(np.int64), 7
    return start.astype("datetime64[M]").astype(np.int64), 3 if period == "quarter" else 1


def _units_to_dates(u: np.ndarray, period: str) -> np.ndarray:
    if period == "week":
        return u.astype("datetime64[D]").astype("datetime64[s]")
    return u.astype("datetime64[M]").astype("datetime64[s]")


def _study_panel(
    study: Any, lt: pd.DataFrame, ex: pd.DataFrame, ids: Any, keys: Any, period: str
) -> pd.DataFrame:
    """Build the customer-period panel columns the study uses, keyed by integer codes.

    Same rows and values as :func:`analysis.derive.panel` (one row per usable
    customer and period from the period of entry to the period of the end;
    revenue, member, csat_mean, unresolved_tickets, sla_breaches, churned),
    but only the revenue sum runs on the engine; rows, membership and the
    experience counts come from the compact tables already pulled, so no
    customer-period table with string keys is joined or sorted.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from analysis import derive

    src = study.source
    sd = lt["start_date"].to_numpy().astype("datetime64[D]")
    entry = sd + lt["entry_days"].to_numpy().astype(np.int64).astype("timedelta64[D]")
    end = sd + lt["duration_days"].to_numpy().astype(np.int64).astype("timedelta64[D]")
    first, step = _period_units(entry, period)
    last, _ = _period_units(end, period)
    k = np.maximum((last - first) // step + 1, 0)
    rep = np.repeat(np.arange(len(lt)), k)
    offset = np.arange(len(rep)) - np.repeat(np.cumsum(k) - k, k)
    u = first[rep] + step * offset
    del offset
    code = lt["customer_id"].to_numpy().astype(np.int64)[rep]
    churned = ((u == last[rep]) & (lt["event"].to_numpy()[rep] == 1)).astype(np.int8)
    del rep

    # revenue: summed per customer and period on the engine, placed by key
    tx = src.table("transactions")
    tx = tx.mutate(period=derive.period_start(tx.date, period))
    agg = tx.group_by(["customer_id", "period"]).aggregate(revenue=tx.amount.sum())
    agg = agg.join(keys, agg.customer_id == keys._cid)
    rv = agg.select(code=agg._code, period=agg.period, revenue=agg.revenue).to_pyarrow()
    r_code = rv.column("code").to_numpy().astype(np.int64)
    r_day = pc.cast(rv.column("period"), pa.timestamp("s")).to_numpy().astype("datetime64[D]")
    r_u, _ = _period_units(r_day, period)
    r_val = rv.column("revenue").to_numpy(zero_copy_only=False).astype(float)
    del rv, r_day

    loy = None
    if study.has("loyalty"):
        lo_t = src.table("loyalty").select("customer_id", "enrolled_date", "left_date")
        loy = _with_codes(lo_t.to_pandas(), ids)
        loy = loy[loy["customer_id"] >= 0]
        l_en, _ = _period_units(loy["enrolled_date"].to_numpy().astype("datetime64[D]"), period)
        left = loy["left_date"].to_numpy().astype("datetime64[D]")
        l_left = np.where(np.isnat(left), np.iinfo(np.int64).max, 0)
        has_left = ~np.isnat(left)
        l_left[has_left] = _period_units(left[has_left], period)[0]

    e_day = pd.to_datetime(ex["date"]).to_numpy().astype("datetime64[D]")
    e_u, _ = _period_units(e_day, period)
    ends = [u, r_u, e_u] + ([l_en, l_left[has_left]] if loy is not None else [])
    lo = min(int(a.min()) for a in ends if len(a))
    hi = max(int(a.max()) for a in ends if len(a))
    span = np.int64(hi - lo + 2)
    pkey = code * span + (u - lo)  # ascending: customers in code order, periods in order

    def locate(c: np.ndarray, uu: np.ndarray) -> np.ndarray:
        """Row of each (customer, period) in the panel, -1 if it has none."""
        want = c * span + (uu - lo)
        j = np.minimum(np.searchsorted(pkey, want), max(len(pkey) - 1, 0))
        return np.where((len(pkey) > 0) & (pkey[j] == want) & (c >= 0), j, -1)

    n = len(pkey)
    revenue = np.zeros(n)
    j = locate(r_code, r_u)
    revenue[j[j >= 0]] = r_val[j >= 0]
    del r_code, r_u, r_val, j

    member = np.zeros(n, dtype=np.int8)
    if loy is not None and len(loy):
        lc = loy["customer_id"].to_numpy().astype(np.int64)
        a = np.searchsorted(pkey, lc * span + (l_en - lo))
        b = np.where(
            has_left,
            np.searchsorted(pkey, lc * span + (np.where(has_left, l_left, lo) - lo), side="right"),
            np.searchsorted(pkey, (lc + 1) * span),
        )
        cover = a < b
        diff = np.bincount(a[cover], minlength=n + 1) - np.bincount(b[cover], minlength=n + 1)
        member = (np.cumsum(diff)[:n] > 0).astype(np.int8)

    j = locate(ex["customer_id"].to_numpy().astype(np.int64), e_u)
    inside = j >= 0
    csat = (
        ex["csat"].to_numpy(dtype=float, na_value=np.nan)
        if "csat" in ex
        else np.full(len(ex), np.nan)
    )
    has_c = inside & ~np.isnan(csat)
    c_sum = np.bincount(j[has_c], weights=csat[has_c], minlength=n)
    c_n = np.bincount(j[has_c], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        csat_mean = np.where(c_n > 0, c_sum / np.maximum(c_n, 1), np.nan)
    ticket = inside & (ex["kind"] == "ticket").to_numpy(dtype=bool, na_value=False)

    def false_count(col: str) -> np.ndarray:
        if col not in ex:
            return np.zeros(n, dtype=np.int32)
        f = (pd.array(ex[col], dtype="boolean") == False).to_numpy(  # noqa: E712
            dtype=bool, na_value=False
        )
        return np.bincount(j[ticket & f], minlength=n).astype(np.int32)

    return pd.DataFrame(
        {
            "customer_id": code.astype(np.int32),
            "period": _units_to_dates(u, period),
            "revenue": revenue,
            "member": member,
            "csat_mean": csat_mean,
            "unresolved_tickets": false_count("first_contact_resolution"),
            "sla_breaches": false_count("sla_met"),
            "churned": churned,
        },
        copy=False,
    )


def _study_frames(
    study: Any, *, lifetime_columns: Sequence[str], group: str | None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Pull lifetimes, experience, panel and customers with integer customer keys.

    Customer ids become their position in the sorted customers table
    (``customer_id`` then holds ``int32`` codes), so no string id is turned
    into Python objects, and only the columns the study uses are pulled. The
    rows and their order are those of ``study.lifetimes()``,
    ``study.table("experience")``, ``study.panel()`` and
    ``study.table("customers")``; the panel is keyed on the engine (a join),
    the others through Arrow, which keeps the experience table's own row order
    (it decides which same-day answer is the latest).
    """
    import ibis
    import pyarrow as pa
    import pyarrow.compute as pc

    from analysis import derive

    src = study.source
    ids = src.table("customers").select("customer_id").to_pyarrow().column(0)
    ids = ids.take(pc.sort_indices(ids)).combine_chunks()

    lt_expr = derive.usable_lifetimes(study.lifetimes_expr())
    cols = list(dict.fromkeys(["customer_id", *lifetime_columns]))
    lt = _with_codes(lt_expr.select(*[c for c in cols if c in lt_expr.columns]).to_pandas(), ids)
    lt = lt.sort_values("customer_id", kind="stable").reset_index(drop=True)
    ex_t = src.table("experience")
    ex_a = ex_t.drop(*[c for c in ("response_hours",) if c in ex_t.columns]).to_pyarrow()
    # Arrow to pandas directly: nullable booleans stay vectorised (not Python objects)
    ex = ex_a.drop_columns(["customer_id"]).to_pandas(
        types_mapper={pa.bool_(): pd.BooleanDtype()}.get, date_as_object=False
    )
    ex_id = ex_a.column("customer_id").combine_chunks()
    del ex_a
    ex_code = pc.index_in(ex_id, value_set=ids.cast(ex_id.type)).fill_null(-1)
    ex.insert(0, "customer_id", ex_code.to_numpy(zero_copy_only=False).astype(np.int32))
    del ex_id, ex_code
    for c in ("kind", "touchpoint"):  # one byte per row instead of a string
        if c in ex.columns:
            ex[c] = ex[c].astype("category")
    cu = src.table("customers")
    cust = _with_codes(
        cu.select("customer_id", *([group] if group and group in cu.columns else [])).to_pandas(),
        ids,
    )
    keys = ibis.memtable(
        pa.table({"_cid": ids, "_code": pa.array(np.arange(len(ids), dtype=np.int32))})
    )
    period = study.params.analysis.period
    if period in ("month", "week", "quarter"):
        return lt, ex, _study_panel(study, lt, ex, ids, keys, period), cust
    pn_expr = derive.panel(src, period=period, lifetimes_expr=study.lifetimes_expr())
    j = pn_expr.join(keys, pn_expr.customer_id == keys._cid)
    tbl = j.select(customer_id=j._code, **{c: j[c] for c in _PANEL_COLUMNS}).to_pyarrow()
    # Sorted here rather than by the engine: one int64 key, and one column at a time in memory.
    code = tbl.column("customer_id").to_numpy().astype(np.int64)
    day = pc.cast(tbl.column("period"), pa.timestamp("s")).to_numpy().astype("datetime64[D]")
    day = day.astype(np.int64)
    lo = int(day.min()) if len(day) else 0
    order = np.argsort(code * (int(day.max()) - lo + 1 if len(day) else 1) + (day - lo))
    del code, day
    pn = {}
    for c in tbl.column_names:
        col = tbl.column(c)
        if c == "period":
            col = pc.cast(col, pa.timestamp("s"))
        v = col.to_numpy(zero_copy_only=False)
        if c in ("unresolved_tickets", "sla_breaches"):
            v = v.astype(np.int32)  # counts per customer-month
        pn[c] = v[order]
        tbl = tbl.drop_columns([c])
        del col, v
    return lt, ex, pd.DataFrame(pn, copy=False), cust


# --------------------------------------------------------------------------------------
# The whole study in one call (the notebook displays its parts)
# --------------------------------------------------------------------------------------


@dataclass
class StudyResults:
    """Everything the experience report shows, computed from one :class:`StudyData`."""

    currency: str
    min_group_size: int
    window_days: int
    update: str
    trends: pd.DataFrame
    by_segment: pd.DataFrame
    by_nps: pd.DataFrame
    drivers: pd.DataFrame
    landmark: str
    km: pd.DataFrame
    km_counts: pd.DataFrame
    hazards: HazardResult
    hazard_table: pd.DataFrame
    revenue: FEResult | None
    revenue_term: str
    lags: pd.DataFrame
    dose: pd.DataFrame
    moments: pd.DataFrame
    compensation: pd.DataFrame
    stakes: pd.DataFrame
    claims: pd.DataFrame
    churn_rate: tuple[float, float, float]
    revenue_per_month: tuple[float, float]
    notes: list[str] = field(default_factory=list)

    def findings(self) -> list[str]:
        """Return the key findings as sentences generated from the numbers."""
        return findings(
            hazards=self.hazards,
            revenue=self.revenue,
            revenue_term=self.revenue_term,
            stakes=self.stakes,
            currency=self.currency,
            compensation=self.compensation,
        )


_TERM_LABELS = {
    "nps_category[passive]": "Latest NPS: passive (vs promoter)",
    "nps_category[detractor]": "Latest NPS: detractor (vs promoter)",
    "nps_category[none]": "No NPS answer yet (vs promoter)",
    "unresolved_window": "Each ticket not resolved at first contact, in the window",
    "sla_breaches_window": "Each SLA breach, in the window",
    "compensated_failures_window": "Each failed ticket that was compensated (extra)",
    "member": "Loyalty member this month",
}


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


#: Customers per block when the study builds its counting-process rows.
_ROWS_BLOCK = 250_000


def _study_rows(
    lt: pd.DataFrame,
    ex: pd.DataFrame,
    pn: pd.DataFrame,
    *,
    window_days: int,
    period: str | None,
    update: str,
    keep: Sequence[str],
) -> pd.DataFrame:
    """Build the report's counting-process rows with ``member``, block by block of customers.

    Equal to ``add_panel_columns(counting_process(lt, ex, ...), pn, ["member"])`` without
    the columns the report does not use (period, nps_last, csat_last, failures_window,
    uncompensated_failures_window). Rows of one customer depend only on that customer's
    lifetime and events, so blocks of customers (integer codes, ``lt`` sorted by them) give
    the same rows in the same order while the working memory stays that of one block.
    """
    unused = ("period", "nps_last", "csat_last", "failures_window", "uncompensated_failures_window")
    cust = lt["customer_id"].to_numpy()
    ex_c = ex["customer_id"].to_numpy()
    pn_c = pn["customer_id"].to_numpy()
    blocks, dropped, tps = [], 0, set()
    for i in range(0, max(len(lt), 1), _ROWS_BLOCK):
        lt_b = lt.iloc[i : i + _ROWS_BLOCK]
        if len(lt_b):
            lo, hi = cust[i], cust[min(i + _ROWS_BLOCK, len(lt)) - 1]
            ex_b = ex.loc[(ex_c >= lo) & (ex_c <= hi)]
            a, b = np.searchsorted(pn_c, [lo, hi + 1])
            pn_b = pn.iloc[a:b]
        else:
            ex_b, pn_b = ex, pn
        cp = counting_process(
            lt_b, ex_b, window_days=window_days, period=period, update=update, keep=keep
        )
        cp = add_panel_columns(cp, pn_b, ["member"])
        dropped += cp.attrs["customers_dropped_no_time_at_risk"]
        tps.update(cp.attrs["touchpoints"])
        attrs = dict(cp.attrs)
        blocks.append(cp.drop(columns=[c for c in unused if c in cp.columns]))
        del cp, ex_b, pn_b
    # a touchpoint without failures in a block has zero counts there
    tp_cols = [f"failures_{t}_window" for t in sorted(tps)]
    base = [c for c in blocks[0].columns if c not in tp_cols]
    last = max((j for j, c in enumerate(base) if c in WINDOW_COUNTS), default=len(base) - 1)
    cols = base[: last + 1] + tp_cols + base[last + 1 :]  # counting_process's column order
    for j, b in enumerate(blocks):
        miss = {c: np.zeros(len(b), dtype=np.int16) for c in tp_cols if c not in b.columns}
        if miss:
            blocks[j] = b.assign(**miss)
    out = pd.concat([b[cols] for b in blocks], ignore_index=True) if len(blocks) > 1 else blocks[0]
    del blocks
    out.attrs.update(attrs)
    out.attrs.update(customers_dropped_no_time_at_risk=dropped, touchpoints=sorted(tps))
    return out


def run_study(
    study: Any,
    *,
    landmark_months: int | None = None,
    driver_window_days: int | None = None,
    update: str | None = None,
    adjust: Sequence[str] | None = None,
    strata: str | None = "",
    alpha: float = 0.05,
) -> StudyResults:
    """Run every estimate of the experience-to-revenue report on a loaded study.

    Every setting defaults to the params file's ``experience`` section; a
    keyword given here overrides it (notebook parameters use this).

    Parameters
    ----------
    study : analysis.data.StudyData
        Loaded data with an ``experience`` table.
    landmark_months : int, optional
        Kaplan-Meier curves by NPS category start this many months after the
        data window starts (answers before the landmark classify customers);
        params ``km_landmark_months``.
    driver_window_days : int, optional
        Days before a survey answer in which a ticket counts as its driver;
        params ``driver_window_days``.
    update : {"period", "event"}, optional
        How experience enters the churn model (see :func:`counting_process`);
        params ``covariate_update``.
    adjust : sequence of str, optional
        Customer attributes added to every Cox model (when present); params
        ``cox_covariates``.
    strata : str or None, optional
        Customer attribute with its own baseline hazard; ``""`` (default):
        params ``cox_strata``; ``None``: no strata.
    """
    from threadpoolctl import threadpool_limits

    # Every matrix here is narrow (a few columns); multithreaded BLAS only spins and
    # competes with the notebook running beside this one.
    with threadpool_limits(limits=1, user_api="blas"):
        return _run_study(
            study,
            landmark_months=landmark_months,
            driver_window_days=driver_window_days,
            update=update,
            adjust=adjust,
            strata=strata,
            alpha=alpha,
        )


def _run_study(
    study: Any,
    *,
    landmark_months: int | None,
    driver_window_days: int | None,
    update: str | None,
    adjust: Sequence[str] | None,
    strata: str | None,
    alpha: float,
) -> StudyResults:
    p = study.params.experience
    landmark_months = landmark_months or p.km_landmark_months
    driver_window_days = driver_window_days or p.driver_window_days
    update = update or p.covariate_update
    adjust = list(p.cox_covariates if adjust is None else adjust)
    strata = p.cox_strata if strata == "" else strata
    period = study.params.analysis.period
    group = study.params.analysis.group
    lt, ex, pn, cust = _study_frames(
        study,
        lifetime_columns=["start_date", "entry_days", "duration_days", "event", *adjust, strata],
        group=group,
    )
    keep = [c for c in [*adjust, strata] if c and c in lt.columns]
    for c in keep:  # one byte per counting-process row instead of a string
        if not pd.api.types.is_numeric_dtype(lt[c]):
            lt[c] = lt[c].astype("category")
    adjust = [c for c in adjust if c in lt.columns]
    strata = strata if strata in lt.columns else None
    notes = []

    trends = experience_metrics(ex, period=period, alpha=alpha)
    by_segment = (
        experience_metrics(ex, by=group, customers=cust, alpha=alpha)
        if group in cust.columns
        else pd.DataFrame()
    )
    drivers = driver_view(ex, window_days=driver_window_days, alpha=alpha)

    lm_date = pd.Timestamp(study.window_start) + pd.DateOffset(months=landmark_months)
    if lm_date >= pd.Timestamp(study.as_of):
        lm_date = (
            pd.Timestamp(study.window_start)
            + (pd.Timestamp(study.as_of) - pd.Timestamp(study.window_start)) / 2
        )
        notes.append("The data window is shorter than the landmark; the curves start halfway.")
    lm = nps_landmark(lt, ex, landmark=lm_date)
    from analysis import survival

    km = survival.kaplan_meier(
        lm, duration="months", event="event", group="nps_category", alpha=alpha
    )
    km_counts = (
        lm.groupby("nps_category", observed=True)
        .agg(customers=("event", "size"), churned=("event", "sum"))
        .reset_index()
    )

    # Revenue side first, so the panel is gone before the counting-process rows are built
    # (at 1M customers each holds ~16M rows).
    rev = monthly_revenue(pn)
    # outcome months in which the customer was a customer for the whole month
    full = pn.loc[
        pn["churned"].to_numpy() == 0,
        ["customer_id", "period", "revenue", "csat_mean", "unresolved_tickets", "sla_breaches"],
    ]
    members = pn[["customer_id", "period", "member"]]
    del pn
    lag_exposures = ["csat_mean", "unresolved_tickets", "sla_breaches"]
    try:
        fits = _lag_fits(full, exposures=lag_exposures, lags=[1, *p.lags], alpha=alpha)
    except AnalysisError:
        fits = {}
    fe = fits.get(("csat_mean", 1))  # = revenue_link(full, exposures=["csat_mean"], lags=(1,))
    lags = _lag_table(fits, lag_exposures, p.lags)
    del fits
    dose = dose_response(full, alpha=alpha)
    del full

    cp = _study_rows(
        lt, ex, members, window_days=p.window_days, period=period, update=update, keep=keep
    )
    del members
    base = [
        "nps_category",
        "unresolved_window",
        "sla_breaches_window",
        "compensated_failures_window",
        "member",
        *adjust,
    ]
    dropped = [c for c in base if not _varies(cp, c)]
    base = [c for c in base if c not in dropped]
    if dropped:
        notes.append(
            "Left out of the churn model because they do not vary in this data: "
            + ", ".join(dropped)
            + "."
        )
    if not base:
        raise AnalysisError(
            "No experience covariate varies in this data, so the churn model cannot be fitted.",
            [
                Problem(
                    "experience",
                    None,
                    "no_variation",
                    "no NPS answers and no failed tickets",
                    fix="check the experience table's nps, first_contact_resolution, sla_met",
                )
            ],
        )
    hz = churn_hazards(cp, covariates=base, strata=strata, alpha=alpha)
    ht = hz.summary.loc[[t for t in hz.terms if t in _TERM_LABELS]].copy()
    ht.insert(0, "term_label", [_TERM_LABELS[t] for t in ht.index])

    h = monthly_churn(cp, alpha)
    if fe is None:
        notes.append("Too few CSAT answers in consecutive months to relate CSAT to revenue.")

    moments = moments_of_truth(
        cp,
        ex,
        monthly_churn_rate=h[0],
        revenue_per_month=rev,
        horizon_months=p.horizon_months,
        adjust=[c for c in ["nps_category", "member", *adjust] if _varies(cp, c)],
        strata=strata,
        alpha=alpha,
    )
    comp_adjust = [
        c for c in ["nps_category", "tickets_window", "member", *adjust] if _varies(cp, c)
    ]
    if all(
        _varies(cp, c)
        for c in ("compensated_failures_window", "unresolved_window", "sla_breaches_window")
    ):
        comp = compensation_effect(cp, adjust=comp_adjust, strata=strata, alpha=alpha)
    else:
        comp = pd.DataFrame()
        notes.append("No compensated failures (or no failures) in the data: compensation skipped.")
    stake_rows = []
    for sc in scenarios_from_params(p, ex):
        try:
            stake_rows.append(
                revenue_at_stake(
                    hz,
                    cp,
                    scenario=sc,
                    monthly_revenue=rev,
                    horizon_months=p.horizon_months,
                    alpha=alpha,
                )
            )
        except AnalysisError:
            notes.append(f"Scenario '{sc.description}' needs a covariate this data lacks.")
    stakes = pd.concat(stake_rows, ignore_index=True) if stake_rows else pd.DataFrame()
    claims = industry_claims(revenue=fe, term="csat_mean_lag1", cp=cp, experience=ex, alpha=alpha)
    by_nps = km_counts
    return StudyResults(
        currency=study.currency,
        min_group_size=study.min_group_size,
        window_days=p.window_days,
        update=update,
        trends=trends,
        by_segment=by_segment,
        by_nps=by_nps,
        drivers=drivers,
        landmark=str(lm_date.date()),
        km=km,
        km_counts=km_counts,
        hazards=hz,
        hazard_table=ht,
        revenue=fe,
        revenue_term="csat_mean_lag1",
        lags=lags,
        dose=dose,
        moments=moments,
        compensation=comp,
        stakes=stakes,
        claims=claims,
        churn_rate=h,
        revenue_per_month=rev,
        notes=notes,
    )
