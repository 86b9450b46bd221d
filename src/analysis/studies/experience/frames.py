"""Experience frames: NPS categories, counting-process rows, lags and panel columns.

* :func:`nps_categories` -- promoter / passive / detractor from 0-10 NPS answers;
* :func:`counting_process` -- ``(start, stop]`` rows per customer whose
  time-varying covariates only use experience recorded *before* each row
  starts (no look-ahead);
* :func:`add_panel_columns` -- per-period panel columns (e.g. member) copied
  onto those rows;
* the lag lookup (``<x>_lag<L>``: the same customer's value L periods earlier)
  used by the revenue link.

Time on the churn clock is in days since the customer's ``start_date``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.data.fe_engine import duplicate_periods_error
from analysis.errors import AnalysisError, DataError, Problem, examples_of
from analysis.stats.fixed_effects import _codes

#: NPS categories, best first; ``"none"`` marks "no answer recorded yet" in the churn model.
NPS_LEVELS = ("promoter", "passive", "detractor")
NO_SURVEY = "none"
DAYS_PER_MONTH = 30.4375


def _require(df: pd.DataFrame, table: str, columns: Iterable[str]) -> None:
    """Raise a :class:`DataError` naming the ``columns`` of ``table`` the study needs and lacks."""
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


def _count_at_or_before(
    keys: np.ndarray, at: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """For sorted ``at``, count sorted ``keys`` <= each value (searchsorted 'right', inverted).

    Searching the (few) keys among the (many) rows instead of the other way
    round gives the same counts for a fraction of the work; the counts are
    written run by run (``int32``) without a row-length scratch array. With
    ``weights`` (in the order of ``keys``) each key counts that many times.
    """
    pos = np.searchsorted(at, keys, side="left")  # first row whose value is >= the key
    runs = np.diff(np.r_[0, pos, len(at)])
    if weights is None:
        return np.repeat(np.arange(len(keys) + 1, dtype=np.int32), runs)
    return np.repeat(np.r_[0, np.cumsum(weights)].astype(np.int32), runs)


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
    prep = _prepare(lifetimes, customer, window_days, period, update, keep)
    inputs = _raw_inputs(
        experience,
        prep["ids"],
        prep["start_date"],
        prep["dur"],
        customer=customer,
        update=update,
        period=period,
        window_days=window_days,
        window_periods=prep["window_periods"],
        touchpoints=touchpoints,
    )
    return _rows(prep, inputs, period, customer, window_days, update)


def counting_process_from_sums(
    lifetimes: pd.DataFrame,
    sums: pd.DataFrame,
    *,
    touchpoints: Sequence[str] = (),
    window_days: int = 90,
    period: str | None = "month",
    customer: str = "customer_id",
    keep: Sequence[str] = (),
    update: str = "period",
) -> pd.DataFrame:
    """:func:`counting_process` from experience sums instead of experience rows.

    ``sums`` holds one row per customer and key, as
    :func:`analysis.data.experience_stats.customer_periods` builds them on the
    engine: the key (``date``) is the calendar ``period`` for
    ``update="period"`` (an event then counts from the next period on, so the
    day inside the period does not matter) and the day for ``update="event"``.
    Its ``tp<i>`` columns count failed tickets at ``touchpoints[i]``. The rows
    equal those :func:`counting_process` builds from the events
    (``tests/test_experience_engine.py``).
    """
    prep = _prepare(lifetimes, customer, window_days, period, update, keep)
    inputs = _sum_inputs(
        sums,
        prep["ids"],
        prep["start_date"],
        prep["dur"],
        customer=customer,
        update=update,
        period=period,
        window_days=window_days,
        window_periods=prep["window_periods"],
        touchpoints=touchpoints,
    )
    return _rows(prep, inputs, period, customer, window_days, update)


def _prepare(
    lifetimes: pd.DataFrame,
    customer: str,
    window_days: int,
    period: str | None,
    update: str,
    keep: Sequence[str],
) -> dict:
    """Check the settings and the lifetimes; keep the customers with time at risk."""
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
    base_cols = [customer, "start_date", "entry_days", "duration_days", "event"]
    # a column named twice (e.g. the strata column also among the adjustments) is copied once
    keep = [c for c in dict.fromkeys(keep) if c not in base_cols]
    lt = lifetimes[[*base_cols, *keep]]
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
    ids = pd.Index(lt[customer])

    return {
        "lt": lt,
        "entry": entry,
        "dur": dur,
        "ev_flag": ev_flag,
        "start_date": start_date,
        "ids": ids,
        "n_dropped": n_dropped,
        "window_periods": window_periods,
        "keep": keep,
    }


def _known_forgotten(
    dates: np.ndarray,
    start: np.ndarray,
    *,
    update: str,
    period: str | None,
    window_days: int,
    window_periods: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the day (since start) from which an event dated ``dates`` counts, and the day
    it is forgotten (both the day *before*: split points of ``(a, b]`` rows).

    ``dates`` may be event days, or (``update="period"``) the start of the event's period:
    both give the same days. An event before signup counts as known at signup.
    """
    day = np.maximum((dates - start).astype(np.int64), 0)
    if update == "period":
        # known from the start of the next period, forgotten `window_periods` periods later
        nxt = _period_next(_period_floor(start + day.astype("timedelta64[D]"), period), period)
        known = (nxt - start).astype(np.int64) - 1
        gone = nxt
        for _ in range(window_periods):
            gone = _period_next(gone, period)
        return known, (gone - start).astype(np.int64) - 1
    return day, day + window_days


def _latest_mean(
    keys: np.ndarray, dates: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per distinct key (sorted): the mean of the values of its latest date.

    Answers that become known at the same split point: the latest one counts, and
    answers of the same (latest) day count equally -- no row order is used.
    """
    if not len(keys):
        return keys, values
    order = np.lexsort((dates, keys))
    k, d, v = keys[order], dates[order], values[order]
    new = np.r_[True, k[1:] != k[:-1]]
    grp = np.cumsum(new) - 1
    last = np.r_[new[1:], True]
    on = d == d[last][grp]
    total = np.bincount(grp[on], weights=v[on], minlength=int(grp[-1]) + 1)
    count = np.bincount(grp[on], minlength=int(grp[-1]) + 1)
    return k[last], total / count


def _live(
    frame: pd.DataFrame,
    ids: pd.Index,
    start_date: np.ndarray,
    dur: np.ndarray,
    *,
    customer: str,
    **timing: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame, np.ndarray]:
    """Place dated rows (events, or sums per day or period) on their customer's clock.

    Returns the customer code, the days the row is known and forgotten
    (:func:`_known_forgotten` with ``timing``), the rows themselves and their dates,
    keeping only rows of customers in ``ids`` that become known before the customer's
    end: nothing known only at or after the end can enter any row.
    """
    code = ids.get_indexer(frame[customer])
    inside = code >= 0
    code, frame = code[inside], frame.loc[inside]
    day = pd.to_datetime(frame["date"]).to_numpy().astype("datetime64[D]")
    known, forgotten = _known_forgotten(day, start_date[code], **timing)
    live = known < dur[code]
    return code[live], known[live], forgotten[live], frame.loc[live], day[live]


def _raw_inputs(
    experience: pd.DataFrame | None,
    ids: pd.Index,
    start_date: np.ndarray,
    dur: np.ndarray,
    *,
    customer: str,
    update: str,
    period: str | None,
    window_days: int,
    window_periods: int,
    touchpoints: Sequence[str] | None,
) -> dict:
    """Counting-process inputs from contract experience rows (see :func:`_rows`)."""
    streams: dict[str, tuple] = {}
    surveys: dict[str, tuple] = {}
    tp_names: list[str] = []
    empty = np.empty(0, dtype=np.int64)
    if experience is None or not len(experience):
        for name in WINDOW_COUNTS:
            streams[name] = (empty, empty, empty, None)
        return {"streams": streams, "surveys": surveys, "touchpoints": tp_names}
    _require(experience, "experience", [customer, "date", "kind"])
    code, known, forgotten, ex, ev_day = _live(
        experience,
        ids,
        start_date,
        dur,
        customer=customer,
        update=update,
        period=period,
        window_days=window_days,
        window_periods=window_periods,
    )
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
        streams[name] = (code[mask], known[mask], forgotten[mask], None)
    day_no = ev_day.astype(np.int64)
    for score in ("nps", "csat"):
        if score in ex.columns:
            val = pd.to_numeric(ex[score], errors="coerce").to_numpy(dtype=float)
            ok = is_survey & ~np.isnan(val)
            surveys[score] = (code[ok], known[ok], day_no[ok], val[ok])
    return {"streams": streams, "surveys": surveys, "touchpoints": tp_names}


def _sum_inputs(
    sums: pd.DataFrame,
    ids: pd.Index,
    start_date: np.ndarray,
    dur: np.ndarray,
    *,
    customer: str,
    update: str,
    period: str | None,
    window_days: int,
    window_periods: int,
    touchpoints: Sequence[str],
) -> dict:
    """Counting-process inputs from per (customer, day or period) sums (see :func:`_rows`)."""
    from analysis.data.experience_stats import STREAMS

    code, known, forgotten, s, key_day = _live(
        sums,
        ids,
        start_date,
        dur,
        customer=customer,
        update=update,
        period=period,
        window_days=window_days,
        window_periods=window_periods,
    )
    streams: dict[str, tuple] = {}
    for name in STREAMS:
        w = s[name].to_numpy(dtype=np.int64)
        on = w > 0
        streams[f"{name}_window"] = (code[on], known[on], forgotten[on], w[on])
    tp_names = []
    for i, tp in sorted(enumerate(touchpoints), key=lambda x: x[1]):
        w = s[f"tp{i}"].to_numpy(dtype=np.int64)
        on = w > 0
        if on.any():
            tp_names.append(tp)
            streams[f"failures_{tp}_window"] = (code[on], known[on], forgotten[on], w[on])
    surveys = {}
    day_no = key_day.astype(np.int64)
    for score in ("nps", "csat"):
        val = s[f"{score}_last"].to_numpy(dtype=float, na_value=np.nan)
        ok = ~np.isnan(val)
        surveys[score] = (code[ok], known[ok], day_no[ok], val[ok])
    return {"streams": streams, "surveys": surveys, "touchpoints": tp_names}


def _rows(
    prep: dict,
    inputs: dict,
    period: str | None,
    customer: str,
    window_days: int,
    update: str,
) -> pd.DataFrame:
    """Build the ``(start, stop]`` rows from the inputs of :func:`_raw_inputs` / :func:`_sum_inputs`.

    ``inputs["streams"]``: name -> (customer code, day known, day forgotten, weight or None);
    ``inputs["surveys"]``: score -> (customer code, day known, date, value).
    """
    lt, entry, dur, ev_flag = prep["lt"], prep["entry"], prep["dur"], prep["ev_flag"]
    start_date, keep, n_dropped = prep["start_date"], prep["keep"], prep["n_dropped"]
    n = len(lt)
    raw_streams, tp_names = inputs["streams"], inputs["touchpoints"]
    max_day = int(dur.max()) if n else 0
    for _, _, f, _ in raw_streams.values():
        if len(f):
            max_day = max(max_day, int(f.max()))
    big = np.int64(max_day + 2)  # key spacing: day offsets never cross customers
    streams: dict[str, tuple] = {}  # name -> sorted enter/exit keys with their weights
    for name, (c, k_in, k_out, w) in raw_streams.items():
        a, b = c * big + k_in, c * big + k_out
        if w is None:
            streams[name] = (np.sort(a), None, np.sort(b), None)
        else:
            oa, ob = np.argsort(a, kind="stable"), np.argsort(b, kind="stable")
            streams[name] = (a[oa], w[oa], b[ob], w[ob])
    survey_keys = {}
    for score, (c, k_in, d, val) in inputs["surveys"].items():
        survey_keys[score] = _latest_mean(c * big + k_in, d, val)

    # ---- breakpoints ---------------------------------------------------------------------
    codes = np.arange(n, dtype=np.int64)
    base = codes * big
    pieces = [base + entry, base + dur]
    for k_in, _, k_out, _ in streams.values():
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
    for name, (k_in, w_in, k_out, w_out) in streams.items():
        # an event known from day t and forgotten on day u counts on rows (a, b] with t <= a < u
        cnt = _count_at_or_before(k_in, rkey, w_in)
        cnt -= _count_at_or_before(k_out, rkey, w_out)
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
# Lags: the same customer's value L periods earlier
# --------------------------------------------------------------------------------------


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
        raise duplicate_periods_error("panel", period)
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


# --------------------------------------------------------------------------------------
# Panel columns on counting-process rows
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
