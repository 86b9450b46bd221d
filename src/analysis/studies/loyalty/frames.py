"""Analysis frames of the loyalty study: landmark, sequential trials, event-study panel.

Every frame is built from the contract tables (pandas) in calendar months relative to the
window start month; covariates come only from before the landmark (or trial month) and
outcomes only from after it.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
from ibis import _

from analysis.config import LOYALTY_COVARIATES
from analysis.data import customer_stats
from analysis.data import month_windows as mw
from analysis.errors import DataError, Problem
from analysis.studies.loyalty.activity import (
    PURCHASE_COLUMNS,
    SERVICE_COLUMNS,
    monthly_purchases,
    monthly_service,
)

__all__ = [
    "DAYS_PER_MONTH",
    "DEFAULT_COVARIATES",
    "event_study_panel",
    "landmark_frame",
    "trial_covariates",
    "trial_frame",
]

DAYS_PER_MONTH = 30.4375

DEFAULT_COVARIATES = list(LOYALTY_COVARIATES)


# --------------------------------------------------------------------------- helpers


def on_engine(table) -> bool:
    """True for an Ibis table (monthly activity on the engine), False for pandas."""
    return isinstance(table, ir.Table)


def in_id_order(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` sorted by ``customer_id`` (stable; identifiers of mixed types by their
    text), or as it is when already in that order."""
    ids = frame["customer_id"].to_numpy()
    try:
        order = np.argsort(ids, kind="stable")
    except TypeError:
        order = np.argsort(ids.astype(str), kind="stable")
    if np.array_equal(order, np.arange(len(order))):
        return frame
    return frame.iloc[order]


def _require(df, table: str, cols: Sequence[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        rows = "" if on_engine(df) else f" ({len(df):,} rows)"
        raise DataError(
            f"Table {table}{rows} lacks columns needed for the loyalty study.",
            [
                Problem(
                    table,
                    c,
                    "missing_column",
                    "column not present",
                    fix="see docs/data-contract.md",
                )
                for c in missing
            ],
        )


def _month_index(dates: pd.Series, origin: pd.Timestamp) -> np.ndarray:
    """Calendar-month index of each date relative to the month of ``origin`` (NaT -> large)."""
    d = pd.to_datetime(pd.Series(dates)).to_numpy()
    months = d.astype("datetime64[M]")
    idx = (months - np.datetime64(pd.Timestamp(origin).to_period("M").start_time, "M")).astype(
        "float64"
    )
    idx[np.isnat(d)] = np.nan
    return idx


def _add_months(origin: pd.Timestamp, months: np.ndarray) -> np.ndarray:
    """First day of the month ``months`` calendar months after ``origin``'s month."""
    k = origin.month - 1 + np.asarray(months, dtype=int)
    if k.size == 0:
        return np.array([], dtype="datetime64[us]")
    first = pd.to_datetime(
        pd.DataFrame({"year": origin.year + k // 12, "month": k % 12 + 1, "day": 1})
    )
    return first.to_numpy().astype("datetime64[us]")


def _window_spans(customers, loyalty, *, window_start, as_of) -> pd.DataFrame:
    """One row per customer: time in the window (``start``, ``stop``), ``churned`` by
    ``as_of``, and the first enrolment's ``enrolled_date`` and ``left_date`` (NaT if none)."""
    ws = pd.Timestamp(window_start)
    end = pd.Timestamp(as_of)
    c = customers[["customer_id", "signup_date", "churn_date"]].copy()
    c["start"] = pd.to_datetime(c["signup_date"]).clip(lower=ws)
    c["stop"] = pd.to_datetime(c["churn_date"]).fillna(end).clip(upper=end)
    c["churned"] = pd.to_datetime(c["churn_date"]).le(end).fillna(False)
    first = loyalty.sort_values("enrolled_date").drop_duplicates("customer_id")
    return c.merge(
        first[["customer_id", "enrolled_date", "left_date"]], on="customer_id", how="left"
    )


# --------------------------------------------------------------------------- landmark frame


def landmark_frame(
    customers: pd.DataFrame,
    transactions: pd.DataFrame,
    loyalty: pd.DataFrame | None,
    experience: pd.DataFrame | None = None,
    *,
    landmark_months: int,
    window_start,
    as_of,
    lookback_months: int = 3,
    horizon_months: int = 6,
) -> pd.DataFrame:
    """Build the landmark analysis frame: one row per customer active at tenure L.

    Calendar-month design (matches the sample world's truth definitions):

    * **landmark month** = signup month + ``landmark_months``; ``landmark_date`` is its
      first day;
    * **population**: customers not churned before ``landmark_date`` whose landmark
      month has ``lookback_months`` observed calendar months before it (on or after
      ``window_start``) and ``horizon_months`` complete months after it (ending on or
      before ``as_of``);
    * **treated** (``member``): enrolled before ``landmark_date`` and not left before it;
      everyone else is a control, including former members (``former_member``);
    * **covariates**, from the ``lookback_months`` calendar months before the landmark
      month: ``prior_spend`` (currency), ``prior_purchases`` (count), ``prior_tickets``,
      ``prior_unresolved``, ``prior_sla_breaches``, ``prior_nps_category`` (latest
      answered NPS before the landmark: none / detractor / passive / promoter),
      ``tenure_months`` (days since signup / 30.4375), plus every customer attribute
      column (segment, value_tier, ...);
    * **outcomes**, over the ``horizon_months`` calendar months from the landmark month:
      ``spend`` (currency, 0 after churn), ``purchases``, ``retained`` (1 if not churned
      by the end of the horizon), ``churned`` = 1 - retained; and for survival curves
      ``time_months`` (months from the landmark to churn or to ``as_of``) and ``event``.

    Parameters
    ----------
    customers, transactions, loyalty, experience : pandas.DataFrame
        Contract tables (``loyalty`` and ``experience`` may be None: nobody is
        treated / experience covariates are zero and "none").
    landmark_months : int
        Landmark tenure L in months.
    window_start, as_of : date-like
        First and last day of the data window.
    lookback_months, horizon_months : int
        Lengths of the covariate and outcome windows in calendar months.

    Returns
    -------
    pandas.DataFrame
        One row per customer in the landmark population (customer ids are kept for
        joins; never display them).
    """
    _require(customers, "customers", ["customer_id", "signup_date", "churn_date"])
    _require(transactions, "transactions", ["customer_id", "date", "amount"])
    ws = pd.Timestamp(window_start).to_period("M").start_time
    end = pd.Timestamp(as_of).normalize()
    L = int(landmark_months)

    c = customers.copy()
    c["signup_date"] = pd.to_datetime(c["signup_date"])
    c["churn_date"] = pd.to_datetime(c["churn_date"])
    lm_idx = _month_index(c["signup_date"], ws) + L  # landmark month, 0 = window start month
    last_full = _month_index(pd.Series([end + pd.Timedelta(days=1)]), ws)[0] - 1
    # the month containing as_of counts as complete only if as_of is its last day
    ok = (lm_idx >= lookback_months) & (lm_idx + horizon_months - 1 <= last_full)
    c = c.loc[ok].copy()
    c["lm"] = lm_idx[ok].astype(int)
    c["landmark_date"] = _add_months(ws, c["lm"].to_numpy())
    alive = c["churn_date"].isna() | (c["churn_date"] >= c["landmark_date"])
    c = c.loc[alive & (c["signup_date"] < c["landmark_date"])].copy()
    c["horizon_end"] = _add_months(ws, c["lm"].to_numpy() + int(horizon_months))

    # treatment
    c["member"] = 0
    c["former_member"] = 0
    c["enrolled_date"] = pd.NaT
    c["programme_tier"] = "none"
    if loyalty is not None and len(loyalty):
        _require(loyalty, "loyalty", ["customer_id", "enrolled_date"])
        lo = loyalty.copy()
        lo["enrolled_date"] = pd.to_datetime(lo["enrolled_date"])
        lo["left_date"] = pd.to_datetime(lo["left_date"]) if "left_date" in lo else pd.NaT
        lo = lo.merge(c[["customer_id", "landmark_date"]], on="customer_id")
        before = lo["enrolled_date"] < lo["landmark_date"]
        active = before & (lo["left_date"].isna() | (lo["left_date"] >= lo["landmark_date"]))
        gone = before & lo["left_date"].notna() & (lo["left_date"] < lo["landmark_date"])
        act = lo.loc[active].sort_values("enrolled_date").drop_duplicates("customer_id")
        ids_member = set(act["customer_id"])
        ids_former = set(lo.loc[gone, "customer_id"]) - ids_member
        c["member"] = c["customer_id"].isin(ids_member).astype(int)
        c["former_member"] = c["customer_id"].isin(ids_former).astype(int)
        c = c.drop(columns=["enrolled_date"]).merge(
            act[["customer_id", "enrolled_date"]], on="customer_id", how="left"
        )
        if "tier" in act:
            tier = act.set_index("customer_id")["tier"].astype("object")
            c["programme_tier"] = (
                c["customer_id"].map(tier).astype(object).fillna("none").astype(str)
            )
    c["member_months"] = (c["landmark_date"] - c["enrolled_date"]).dt.days / DAYS_PER_MONTH

    # window sums around the landmark month: events enter through monthly sums (activity.py);
    # the landmark date is a month start, so "before the landmark" is "in an earlier month"
    c = c.reset_index(drop=True)
    # all observed complete months before the landmark: a less noisy measure of a customer's
    # usual spending than the lookback window alone (window start or signup month + 1 .. L - 1)
    first_full = np.maximum(_month_index(c["signup_date"], ws) + 1, 0)
    spans = dict(first_full=first_full, lookback=int(lookback_months), horizon=int(horizon_months))
    if on_engine(transactions):
        s = _landmark_sums_engine(c, transactions, experience, ws, **spans)
    else:
        s = _landmark_sums_numpy(c, transactions, experience, ws, **spans)
    c["prior_spend"] = s["prior_spend"]
    c["history_spend_per_month"] = s["history_spend"] / np.maximum(
        c["lm"].to_numpy() - first_full, 1
    )
    c["prior_purchases"] = s["prior_purchases"].astype(int)
    c["spend"] = s["spend"]
    c["purchases"] = s["purchases"].astype(int)
    # experience before the landmark (zero and "none" without an experience table)
    for col in ("prior_tickets", "prior_unresolved", "prior_sla_breaches"):
        c[col] = s[col].astype(int)
    c["prior_nps_category"] = _nps_categories(s["nps_cat"])
    c["history_tickets"] = s["history_tickets"].astype(int)
    for score in ("nps", "csat"):
        cnt, sm = s[f"history_{score}_n"], s[f"history_{score}_sum"]
        # 0 where never answered; the answered flag / "none" NPS category carry that
        c[f"history_{score}_mean"] = np.where(cnt > 0, sm / np.maximum(cnt, 1), 0.0)
        c[f"history_{score}_answered"] = (cnt > 0).astype(int)

    # outcomes
    churned_by_h = c["churn_date"].notna() & (c["churn_date"] < c["horizon_end"])
    c["retained"] = (~churned_by_h).astype(int)
    c["churned"] = churned_by_h.astype(int)
    stop = c["churn_date"].where(c["churn_date"].notna() & (c["churn_date"] <= end), end)
    c["event"] = (c["churn_date"].notna() & (c["churn_date"] <= end)).astype(int)
    c["time_months"] = (stop - c["landmark_date"]).dt.days / DAYS_PER_MONTH
    c["tenure_months"] = (c["landmark_date"] - c["signup_date"]).dt.days / DAYS_PER_MONTH
    c["landmark"] = L
    c["log_prior_spend"] = np.log1p(c["prior_spend"])
    keep_first = ["customer_id", "landmark", "landmark_date", "member", "former_member"]
    rest = [x for x in c.columns if x not in keep_first and x not in ("lm", "horizon_end")]
    return c[keep_first + rest].reset_index(drop=True)


#: Windows of the landmark frame: output -> (monthly column, first month, last month),
#: months named as in :func:`_landmark_sums_engine` (None: every earlier month): prior months
#: lm - lookback .. lm - 1, outcome months lm .. lm + horizon - 1, history months
#: first_full .. lm - 1, experience: every month before lm.
_LANDMARK_PURCHASE_WINDOWS = {
    "prior_spend": ("amount", "lo", "now"),
    "history_spend": ("amount", "ff", "now"),
    "prior_purchases": ("purchases", "lo", "now"),
    "spend": ("amount", "lm", "hi"),
    "purchases": ("purchases", "lm", "hi"),
}
_LANDMARK_SERVICE_WINDOWS = {
    "prior_tickets": ("tickets", "lo", "now"),
    "prior_unresolved": ("unresolved", "lo", "now"),
    "prior_sla_breaches": ("sla_breaches", "lo", "now"),
    "history_tickets": ("tickets", None, "now"),
    **{
        f"history_{score}_{part}": (f"{score}_{part}", None, "now")
        for score in ("nps", "csat")
        for part in ("n", "sum")
    },
}


def _landmark_sums_numpy(c, transactions, experience, ws, *, first_full, lookback, horizon):
    """Window sums around each row's landmark month (``c["lm"]``) from monthly activity
    tables in pandas."""
    key = pd.Index(c["customer_id"])
    n = len(c)
    lm_arr = c["lm"].to_numpy()

    def locate(frame):
        pos = key.get_indexer(frame["customer_id"])
        frame = frame.loc[pos >= 0]
        pos = pos[pos >= 0]
        rel = _month_index(frame["date"], ws) - lm_arr[pos]
        return frame, pos, rel

    def total(pos, mask, values=None):
        w = None if values is None else np.asarray(values, float)[mask]
        return np.bincount(pos[mask], weights=w, minlength=n)

    tx, pos, rel = locate(monthly_purchases(transactions))
    amount = tx["amount"].to_numpy(float)
    bought = tx["purchases"].to_numpy(float)
    pre = (rel >= -lookback) & (rel < 0)
    post = (rel >= 0) & (rel < horizon)
    hist = (rel < 0) & (rel + lm_arr[pos] >= first_full[pos])
    s = {
        "prior_spend": total(pos, pre, amount),
        "history_spend": total(pos, hist, amount),
        "prior_purchases": total(pos, pre, bought),
        "spend": total(pos, post, amount),
        "purchases": total(pos, post, bought),
    }
    s.update({k: np.zeros(n) for k in (*_LANDMARK_SERVICE_WINDOWS, "nps_cat")})
    if experience is not None and len(experience):
        ex, pos, rel = locate(monthly_service(experience))
        before = rel < 0
        recent = (rel >= -lookback) & (rel < 0)
        s["prior_tickets"] = total(pos, recent, ex["tickets"])
        s["history_tickets"] = total(pos, before, ex["tickets"])
        s["prior_unresolved"] = total(pos, recent, ex["unresolved"])
        s["prior_sla_breaches"] = total(pos, recent, ex["sla_breaches"])
        for score in ("nps", "csat"):
            s[f"history_{score}_n"] = total(pos, before, ex[f"{score}_n"])
            s[f"history_{score}_sum"] = total(pos, before, ex[f"{score}_sum"])
        v = ex["nps_last"].to_numpy(float)
        ok = before & ~np.isnan(v)
        last = (
            pd.DataFrame({"pos": pos[ok], "date": ex["date"].to_numpy()[ok], "nps": v[ok]})
            .sort_values(["pos", "date"], kind="stable")
            .drop_duplicates("pos", keep="last")
        )
        s["nps_cat"][last["pos"].to_numpy()] = _nps_codes(last["nps"])
    return s


def _landmark_sums_engine(c, transactions, experience, ws, *, first_full, lookback, horizon):
    """The same as :func:`_landmark_sums_numpy`, computed on the engine from monthly
    activity (Ibis tables): one row per customer reaches Python."""
    a = _months_up(c["customer_id"].to_numpy(), np.arange(len(c)), lm=c["lm"], ff=first_full)
    month = {
        "lo": _.lm - lookback,
        "now": _.lm - 1,
        "ff": _.ff,
        "lm": _.lm,
        "hi": _.lm + horizon - 1,
    }
    s = _engine_window_sums(
        a,
        ["_pos"],
        month,
        transactions,
        experience,
        ws,
        purchase_windows=_LANDMARK_PURCHASE_WINDOWS,
        service_windows=_LANDMARK_SERVICE_WINDOWS,
    )
    del s["_pos"]  # one row per customer, in row order
    return s


def trial_covariates(covariates: Sequence[str] = DEFAULT_COVARIATES) -> list[str]:
    """Return the covariates for the sequential-trial frame.

    Tenure varies widely across customer-months (unlike at a landmark), and the chance of
    enrolling flattens with tenure, so ``log_tenure_months`` is added beside
    ``tenure_months`` when the latter is among ``covariates``.
    """
    out = list(covariates)
    if "tenure_months" in out and "log_tenure_months" not in out:
        out.insert(out.index("tenure_months") + 1, "log_tenure_months")
    return out


def trial_frame(
    customers: pd.DataFrame,
    transactions: pd.DataFrame,
    loyalty: pd.DataFrame | None,
    experience: pd.DataFrame | None = None,
    *,
    window_start,
    as_of,
    lookback_months: int = 3,
    horizon_months: int = 6,
    max_customers: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Build the pooled sequential-trial frame: one row per customer and eligible month.

    Emulates one trial per calendar month m (target-trial emulation with sequential
    trials): who enrols in month m, against who could have but did not.

    * **trial months**: m with ``lookback_months`` observed months before it and
      ``horizon_months`` complete months after it inside the window;
    * **eligible** (one row per customer and trial month): signed up before month m,
      never enrolled before month m, not churned by the end of month m;
    * **treated** (``member``): enrolled during month m; everyone else eligible is a
      control, including customers who enrol in a later month (they are treated in
      that month's trial, so a customer appears in many trials);
    * **covariates** from the ``lookback_months`` months before m (exactly the
      information that drives enrolment in month m, never anything after it):
      ``prior_spend`` (currency), ``log_prior_spend``, ``prior_purchases``,
      ``prior_tickets``, ``prior_unresolved``, ``prior_sla_breaches``,
      ``prior_nps_category`` (latest NPS answered before month m), ``history_tickets``
      and ``history_nps_mean`` (everything before month m), ``tenure_months`` (start
      of month m minus signup, in months of 30.4375 days), ``log_tenure_months``,
      plus every customer attribute column;
    * **outcomes** over the ``horizon_months`` months after month m (m+1 ...):
      ``spend`` (currency, 0 after churn), ``purchases``, ``retained`` (not churned
      by the end of month m + horizon) and ``churned``.

    Rows of one customer are not independent: estimate with
    ``estimate_effect(..., cluster="customer_id")``.

    Parameters
    ----------
    customers, transactions, loyalty, experience : pandas.DataFrame
        Contract tables (``experience`` may be None).
    window_start, as_of : date-like
        First and last day of the data window.
    lookback_months, horizon_months : int
        Covariate and outcome windows in calendar months.
    max_customers : int, optional
        Analyse a random sample of at most this many customers (drawn with ``seed``);
        the estimand is unchanged, only less precise. For very large data.
    seed : int
        Seed of that sample.

    Returns
    -------
    pandas.DataFrame
        One row per eligible customer-month: ``customer_id`` (for clustering; never
        display it), ``trial_month`` (0 = window start month), ``trial_date`` (first
        day of the trial month), ``member``, covariates and outcomes.
    """
    _require(customers, "customers", ["customer_id", "signup_date", "churn_date"])
    _require(transactions, "transactions", ["customer_id", "date", "amount"])
    ws = pd.Timestamp(window_start).to_period("M").start_time
    end = pd.Timestamp(as_of).normalize()
    nm = int(_month_index(pd.Series([end + pd.Timedelta(days=1)]), ws)[0])  # complete months
    lb, hz = int(lookback_months), int(horizon_months)
    trials = np.arange(lb, nm - hz)
    # in identifier order, so that the sample and the frame do not depend on the order in
    # which an engine returned the customers (Spark's partitions, DuckDB's threads)
    c = in_id_order(customers)
    if max_customers is not None and len(c) > max_customers:
        rng = np.random.default_rng(seed)
        c = c.iloc[np.sort(rng.choice(len(c), size=int(max_customers), replace=False))]
    c = c.reset_index(drop=True)
    n = len(c)
    key = pd.Index(c["customer_id"])
    s_m = _month_index(c["signup_date"], ws)
    ch_m = _month_index(c["churn_date"], ws)
    ch_m = np.where(np.isnan(ch_m), np.inf, ch_m)
    en_m = np.full(n, np.inf)
    if loyalty is not None and len(loyalty):
        _require(loyalty, "loyalty", ["customer_id", "enrolled_date"])
        pos = key.get_indexer(loyalty["customer_id"])
        ok = pos >= 0
        em = _month_index(loyalty["enrolled_date"], ws)[ok]
        np.minimum.at(en_m, pos[ok], np.where(np.isnan(em), np.inf, em))
    if trials.size == 0 or n == 0:
        raise DataError(
            f"No sequential trial fits the data window ({nm} complete months).",
            [
                Problem(
                    "transactions",
                    "date",
                    "short_window",
                    f"need at least {lb + hz + 1} complete months",
                    fix="use a longer window or shorter lookback/horizon",
                )
            ],
        )
    months = dict(s_m=s_m, ch_m=ch_m, en_m=en_m, trials=trials, n_months=nm, lb=lb, hz=hz)
    if on_engine(transactions):
        ci, m, sums = _trial_sums_engine(c, transactions, experience, ws, **months)
    else:
        ci, m, sums = _trial_sums_numpy(c, transactions, experience, ws, **months)

    out = c.iloc[ci].reset_index(drop=True)
    out.insert(1, "trial_month", m.astype(int))
    tdate = _add_months(ws, m)
    out.insert(2, "trial_date", tdate)
    out.insert(3, "member", (en_m[ci] == m).astype(int))
    out["prior_spend"] = sums["prior_spend"]
    out["log_prior_spend"] = np.log1p(np.maximum(out["prior_spend"].to_numpy(), 0))
    for col in ("prior_purchases", "prior_tickets", "prior_unresolved", "prior_sla_breaches"):
        out[col] = sums[col].astype(int)
    out["history_tickets"] = sums["history_tickets"].astype(int)
    cnt = sums["history_nps_n"]
    out["history_nps_mean"] = np.where(cnt > 0, sums["history_nps_sum"] / np.maximum(cnt, 1), 0.0)
    out["history_nps_answered"] = (cnt > 0).astype(int)
    out["prior_nps_category"] = _nps_categories(sums["nps_cat"])
    signup = pd.to_datetime(out["signup_date"]).to_numpy()
    out["tenure_months"] = (tdate - signup) / np.timedelta64(1, "D") / DAYS_PER_MONTH
    out["log_tenure_months"] = np.log1p(np.maximum(out["tenure_months"].to_numpy(), 0))
    out["spend"] = sums["spend"]
    out["purchases"] = sums["purchases"].astype(int)
    out["retained"] = (ch_m[ci] > m + hz).astype(int)
    out["churned"] = 1 - out["retained"]
    return out


def _nps_codes(scores) -> np.ndarray:
    """NPS category codes of answers (1 detractor 0-6, 2 passive 7-8, 3 promoter 9-10), as
    :func:`analysis.data.month_windows.anchored_sums` codes them on the engine."""
    v = np.asarray(scores, float)
    return np.where(v <= 6, 1, np.where(v <= 8, 2, 3))


def _nps_categories(codes) -> pd.Categorical:
    """Category labels of NPS category codes (0 none .. 3 promoter)."""
    labels = np.array(mw.NPS_CATEGORY, dtype=object)
    return pd.Categorical(labels[np.asarray(codes, dtype=int)], categories=list(labels))


def _trial_sums_numpy(
    c, transactions, experience, ws, *, s_m, ch_m, en_m, trials, n_months, lb, hz
):
    """Eligible customer-months (row of ``c``, trial month) and their window sums, from
    monthly activity tables in pandas."""
    n, nm = len(c), n_months
    key = pd.Index(c["customer_id"])

    # monthly matrices, column k = window month k - 1; column 0 collects everything earlier
    def monthly(frame, values=None, name="date"):
        pos = key.get_indexer(frame["customer_id"])
        mi = _month_index(frame[name], ws)
        ok = (pos >= 0) & ~np.isnan(mi) & (mi < nm)
        col = np.clip(mi[ok], -1, None).astype(int) + 1
        w = None if values is None else np.asarray(values, float)[ok]
        flat = np.bincount(pos[ok] * (nm + 1) + col, weights=w, minlength=n * (nm + 1))
        return flat.reshape(n, nm + 1)

    def csum(mat):
        return np.concatenate([np.zeros((n, 1)), np.cumsum(mat, axis=1)], axis=1)

    tx = monthly_purchases(transactions)
    spend_c = csum(monthly(tx, tx["amount"].to_numpy(float)))
    npur_c = csum(monthly(tx, tx["purchases"].to_numpy(float)))
    zeros = np.zeros((n, nm + 2))
    tick_c, unres_c, sla_c, nps_n_c, nps_s_c = zeros, zeros, zeros, zeros, zeros
    last_cat = np.zeros((n, nm + 1), dtype=np.int8)  # latest NPS category up to column k
    if experience is not None and len(experience):
        ex = monthly_service(experience)
        tick_c = csum(monthly(ex, ex["tickets"].to_numpy(float)))
        unres_c = csum(monthly(ex, ex["unresolved"].to_numpy(float)))
        sla_c = csum(monthly(ex, ex["sla_breaches"].to_numpy(float)))
        nps_n_c = csum(monthly(ex, ex["nps_n"].to_numpy(float)))
        nps_s_c = csum(monthly(ex, ex["nps_sum"].to_numpy(float)))
        v = ex["nps_last"].to_numpy(float)
        ans = ~np.isnan(v)
        if ans.any():
            a = ex.loc[ans, ["customer_id", "date"]].assign(nps=v[ans])
            a["pos"] = key.get_indexer(a["customer_id"])
            a["col"] = np.clip(_month_index(a["date"], ws), -1, None) + 1
            a = a[(a["pos"] >= 0) & (a["col"] <= nm)]
            a = a.sort_values(["pos", "date"], kind="stable").drop_duplicates(
                ["pos", "col"], keep="last"
            )
            cat = _nps_codes(a["nps"]).astype(np.int8)
            last_cat[a["pos"].to_numpy(), a["col"].to_numpy(int)] = cat
            # carry the latest answer forward to later months
            idx = np.where(last_cat > 0, np.arange(nm + 1)[None, :], 0)
            np.maximum.accumulate(idx, axis=1, out=idx)
            last_cat = np.take_along_axis(last_cat, idx, axis=1)

    # eligible customer-months
    mm = trials[None, :]
    elig = (s_m[:, None] < mm) & (en_m[:, None] >= mm) & (ch_m[:, None] > mm)
    ci, ti = np.nonzero(elig)
    m = trials[ti]
    # month m is column m + 1 of the monthly matrices; csum column j sums columns < j
    lo_, now, nxt, hi_ = m + 1 - lb, m + 1, m + 2, m + 2 + hz

    def window(cs, a, b):
        return cs[ci, b] - cs[ci, a]

    sums = {
        "prior_spend": window(spend_c, lo_, now),
        "prior_purchases": window(npur_c, lo_, now),
        "prior_tickets": window(tick_c, lo_, now),
        "prior_unresolved": window(unres_c, lo_, now),
        "prior_sla_breaches": window(sla_c, lo_, now),
        "history_tickets": tick_c[ci, now],
        "history_nps_n": nps_n_c[ci, now],
        "history_nps_sum": nps_s_c[ci, now],
        "nps_cat": last_cat[ci, m],  # column m = months up to m - 1
        "spend": window(spend_c, nxt, hi_),
        "purchases": window(npur_c, nxt, hi_),
    }
    return ci, m, sums


#: Month numbers too large for any window (a customer who never churns or enrols).
_NEVER = 1 << 40


def _months_up(ids, pos, **months) -> ir.Table:
    """An in-memory table for the engine: ``customer_id``, ``_pos`` (row in the frame
    being built) and month numbers (missing or infinite months become ``_NEVER``)."""
    cols = {"customer_id": pa.array(np.asarray(ids)), "_pos": np.asarray(pos, np.int64)}
    for name, v in months.items():
        v = np.asarray(v, float)
        cols[name] = np.where(np.isfinite(v), v, _NEVER).astype(np.int64)
    return ibis.memtable(pa.table(cols))


def _pull_sorted(expr: ir.Table, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """Run ``expr``; its columns as numpy arrays sorted by ``keys`` (engines return rows
    in any order)."""
    t = expr.to_pyarrow()
    cols = {name: t.column(name).to_numpy(zero_copy_only=False) for name in t.column_names}
    order = np.lexsort(tuple(cols[k] for k in reversed(keys)))
    return {name: v[order] for name, v in cols.items()}


def engine_purchases(transactions: ir.Table) -> ir.Table:
    """Monthly purchases on the engine: the table as it is if already monthly."""
    if "purchases" in transactions.columns:
        _require(transactions, "transactions", ["customer_id", "date", *PURCHASE_COLUMNS])
        return transactions
    _require(transactions, "transactions", ["customer_id", "date", "amount"])
    return customer_stats.monthly_purchases_of(transactions)


def engine_service(experience: ir.Table) -> ir.Table:
    """Monthly service events on the engine: the table as it is if already monthly."""
    if "nps_last" in experience.columns:
        _require(experience, "experience", ["customer_id", "date", *SERVICE_COLUMNS])
        return experience
    _require(experience, "experience", ["customer_id", "date"])
    return customer_stats.monthly_service_of(experience)


#: Windows of the trial frame: output -> (monthly column, first month, last month), months
#: named as in :func:`_trial_sums_engine` (None: every earlier month): prior months
#: m - lookback .. m - 1, outcome months m + 1 .. m + horizon, history: every month before m.
_TRIAL_PURCHASE_WINDOWS = {
    "prior_spend": ("amount", "lo", "now"),
    "prior_purchases": ("purchases", "lo", "now"),
    "spend": ("amount", "t1", "hi"),
    "purchases": ("purchases", "t1", "hi"),
}
_TRIAL_SERVICE_WINDOWS = {
    "prior_tickets": ("tickets", "lo", "now"),
    "prior_unresolved": ("unresolved", "lo", "now"),
    "prior_sla_breaches": ("sla_breaches", "lo", "now"),
    "history_tickets": ("tickets", None, "now"),
    "history_nps_n": ("nps_n", None, "now"),
    "history_nps_sum": ("nps_sum", None, "now"),
}


def _trial_sums_engine(
    c, transactions, experience, ws, *, s_m, ch_m, en_m, trials, n_months, lb, hz
):
    """The same as :func:`_trial_sums_numpy`, computed on the engine from monthly activity
    (Ibis tables): only the eligible customer-months' sums reach Python."""
    ok = np.flatnonzero(~np.isnan(s_m))  # without a signup month a customer is never eligible
    cust = _months_up(
        c["customer_id"].to_numpy()[ok], ok, s_m=s_m[ok], ch_m=ch_m[ok], en_m=en_m[ok]
    )
    a = cust.cross_join(mw.months_table(int(trials[0]), int(trials[-1]) + 1, "m"))
    a = a.filter((a.s_m < a.m) & (a.en_m >= a.m) & (a.ch_m > a.m)).select(
        "customer_id", "_pos", "m"
    )
    month = {"lo": _.m - lb, "now": _.m - 1, "t1": _.m + 1, "hi": _.m + hz}

    s = _engine_window_sums(
        a,
        ["_pos", "m"],
        month,
        transactions,
        experience,
        ws,
        purchase_windows=_TRIAL_PURCHASE_WINDOWS,
        service_windows=_TRIAL_SERVICE_WINDOWS,
    )
    return s.pop("_pos").astype(np.int64), s.pop("m").astype(np.int64), s


def _engine_window_sums(
    anchors, key, month, transactions, experience, ws, *, purchase_windows, service_windows
) -> dict[str, np.ndarray]:
    """Window sums of the anchors on the engine, one row per anchor in ``key`` order:
    ``key`` columns, purchase and service sums (zero without an experience table) and
    ``nps_cat``. ``month`` names the bounds the windows use (deferred expressions of the
    anchors' columns); every window ends by ``month["hi"]``."""

    def sums(monthly, windows, **kw):
        bounds = {k: (col, month.get(lo), month[hi]) for k, (col, lo, hi) in windows.items()}
        t = mw.anchored_sums(
            monthly,
            anchors,
            window_start=ws,
            key=key,
            windows=bounds,
            through=month["hi"],
            **kw,
        )
        return _pull_sorted(t, key)

    cols = sums(engine_purchases(transactions), purchase_windows)
    out = {k: cols[k] for k in key}
    out.update({k: cols[k].astype(float) for k in purchase_windows})
    service = (*service_windows, "nps_cat")
    if experience is None:
        out.update({k: np.zeros(len(cols[key[0]])) for k in service})
    else:
        more = sums(
            engine_service(experience), service_windows, latest_nps=("nps_last", month["now"])
        )
        out.update({k: more[k].astype(float) for k in service})
    return out


# --------------------------------------------------------------------------- event study


def event_study_panel(
    customers: pd.DataFrame,
    transactions: pd.DataFrame,
    loyalty: pd.DataFrame | None,
    *,
    window_start,
    as_of,
) -> pd.DataFrame:
    """Build a customer-month panel of spend for the enrolment event study.

    One row per customer and *complete* calendar month in which the customer was
    active: from the month after signup (or the window start) to the month
    before churn (or the last window month). Partial first and last months are
    left out because their lower spend is an artefact of the calendar.

    Parameters
    ----------
    customers, transactions, loyalty : pandas.DataFrame
        Contract tables (``loyalty`` may be None).
    window_start, as_of : date-like
        Data window.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``period`` (month index, 0 = window start month),
        ``period_start`` (date), ``revenue`` (currency in the month),
        ``purchases`` (count), ``cohort`` (month index of enrolment, NaN if never
        enrolled in the window), ``rel`` (period - cohort), ``segment`` and
        ``value_tier`` where present.
    """
    ws = pd.Timestamp(window_start).to_period("M").start_time
    end = pd.Timestamp(as_of)
    last = int(_month_index(pd.Series([end]), ws)[0])
    c = customers.reset_index(drop=True)
    # complete months only: the signup month and the churn month are partial, and keeping
    # them would make short histories (typical of early enrollees) look like low spenders
    signup_m = _month_index(c["signup_date"], ws)
    first = np.maximum(signup_m + 1, 0)
    stop = _month_index(c["churn_date"], ws) - 1
    stop = np.where(np.isnan(stop), last, np.minimum(stop, last))
    n_months = (stop - first + 1).clip(min=0).astype(np.int64)
    start = np.cumsum(n_months) - n_months  # first panel row of each customer
    rows = np.repeat(np.arange(len(c)), n_months)
    offset = np.arange(rows.size) - start[rows]
    period = (first[rows] + offset).astype(np.int32)
    panel = pd.DataFrame({"customer_id": c["customer_id"].to_numpy()[rows], "period": period})
    for col in ("segment", "value_tier"):
        if col in c:
            panel[col] = pd.Categorical(c[col]).take(rows)

    # each month's purchases' panel row, found arithmetically (rows are contiguous per customer)
    if on_engine(transactions):
        prow, amt, bought = _panel_purchases_engine(c, transactions, ws, first, stop, start)
    else:
        transactions = monthly_purchases(transactions)
        pos = pd.Index(c["customer_id"]).get_indexer(transactions["customer_id"])
        tper = _month_index(transactions["date"], ws)
        ok = pos >= 0
        pos_ok = pos[ok]
        tp = tper[ok]
        inside = (tp >= first[pos_ok]) & (tp <= stop[pos_ok])
        prow = (start[pos_ok] + tp - first[pos_ok])[inside].astype(np.int64)
        amt = transactions["amount"].to_numpy(float)[ok][inside]
        bought = transactions["purchases"].to_numpy(float)[ok][inside]
    panel["revenue"] = np.bincount(prow, weights=amt, minlength=len(panel))
    panel["purchases"] = np.bincount(prow, weights=bought, minlength=len(panel)).astype(np.int32)

    cohort = np.full(len(c), np.nan)
    if loyalty is not None and len(loyalty):
        first_enrol = loyalty.groupby("customer_id")["enrolled_date"].min()
        g = _month_index(c["customer_id"].map(first_enrol), ws)
        cohort = np.where((g >= 0) & (g <= last), g, np.nan)
    panel["cohort"] = cohort[rows]
    panel["rel"] = panel["period"] - panel["cohort"]
    panel["period_start"] = _add_months(ws, np.arange(last + 1))[period]
    return panel


def _panel_purchases_engine(c, transactions, ws, first, stop, start):
    """Panel rows, spend and purchases of the customer-months with a purchase, summed on the
    engine over the customers' complete active months (monthly activity as an Ibis table)."""
    ok = np.flatnonzero(stop >= first)
    spans = _months_up(c["customer_id"].to_numpy()[ok], ok, first=first[ok], last=stop[ok])
    p = mw.span_activity(
        engine_purchases(transactions), spans, window_start=ws, columns=PURCHASE_COLUMNS
    )
    cols = _pull_sorted(p, ["_pos", "k"])
    pos = cols["_pos"].astype(np.int64)
    prow = start[pos] + cols["k"].astype(np.int64) - first[pos].astype(np.int64)
    return prow, cols["amount"].astype(float), cols["purchases"].astype(float)
