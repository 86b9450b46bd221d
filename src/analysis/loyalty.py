"""Loyalty-programme study: landmark design, weighted survival, event study, report helpers.

The question is what the programme does to retention and spend. Members are
not a random sample of customers (enrolment follows recent spend, tenure and
experience), so the plain member vs non-member contrast mixes the programme's
effect with who joins. The study therefore:

1. builds a **landmark** frame (:func:`landmark_frame`): at a fixed tenure L
   (e.g. 6 or 12 months after signup) it takes every customer still active,
   calls those who are members at that moment "treated" and everyone else
   "control", measures covariates only *before* L and outcomes only *after* L.
   Nobody's treatment status depends on surviving past L, so there is no
   immortal-time bias;
2. adjusts for the measured confounders with :func:`analysis.causal.estimate_effect`
   (IPW / AIPW) and IP-weighted survival curves, RMST and a weighted Cox model
   (:func:`weighted_survival`, :func:`weighted_cox`);
3. looks at spend around the enrolment month in a staggered-adoption **event
   study** (:func:`event_study`) with a heterogeneity-robust estimator.

See docs/methods/loyalty.md for the assumptions and how to read the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from analysis import causal
from analysis.config import LOYALTY_COVARIATES
from analysis.errors import DataError, Problem

__all__ = [
    "DEFAULT_COVARIATES",
    "CoxResult",
    "SurvivalContrast",
    "effect_table",
    "effect_sentence",
    "e_value_sentence",
    "event_study",
    "event_study_panel",
    "heterogeneity",
    "landmark_frame",
    "member_profile",
    "points_summary",
    "post_leaving",
    "trial_covariates",
    "trial_frame",
    "uptake",
    "weighted_cox",
    "weighted_survival",
]

DAYS_PER_MONTH = 30.4375

DEFAULT_COVARIATES = list(LOYALTY_COVARIATES)


# --------------------------------------------------------------------------- landmark frame


def _require(df: pd.DataFrame, table: str, cols: Sequence[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(
            f"Table {table} ({len(df):,} rows) lacks columns needed for the loyalty study.",
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
            c["programme_tier"] = c["customer_id"].map(tier).fillna("none").astype(str)
    c["member_months"] = (c["landmark_date"] - c["enrolled_date"]).dt.days / DAYS_PER_MONTH

    # transactions relative to the landmark month (integer positions: faster than merges)
    c = c.reset_index(drop=True)
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

    tx, pos, rel = locate(transactions[["customer_id", "date", "amount"]])
    amount = tx["amount"].to_numpy(float)
    pre = (rel >= -lookback_months) & (rel < 0)
    post = (rel >= 0) & (rel < horizon_months)
    c["prior_spend"] = total(pos, pre, amount)
    # all observed complete months before the landmark: a less noisy measure of a customer's
    # usual spending than the lookback window alone (window start or signup month + 1 .. L - 1)
    first_full = np.maximum(_month_index(c["signup_date"], ws) + 1, 0)
    hist = (rel < 0) & (rel + lm_arr[pos] >= first_full[pos])
    n_hist = np.maximum(lm_arr - first_full, 1)
    c["history_spend_per_month"] = total(pos, hist, amount) / n_hist
    c["prior_purchases"] = total(pos, pre).astype(int)
    c["spend"] = total(pos, post, amount)
    c["purchases"] = total(pos, post).astype(int)

    # experience before the landmark
    c["prior_tickets"] = 0
    c["prior_unresolved"] = 0
    c["prior_sla_breaches"] = 0
    c["prior_nps_category"] = "none"
    c["history_tickets"] = 0
    for score in ("nps", "csat"):
        c[f"history_{score}_mean"] = 0.0
        c[f"history_{score}_answered"] = 0
    if experience is not None and len(experience):
        ex, pos, rel = locate(experience)
        before = pd.to_datetime(ex["date"]).to_numpy() < c["landmark_date"].to_numpy()[pos]
        ticket = (ex["kind"] == "ticket").to_numpy()
        recent = ticket & (rel >= -lookback_months) & (rel < 0)
        c["prior_tickets"] = total(pos, recent).astype(int)
        c["history_tickets"] = total(pos, ticket & before).astype(int)
        if "first_contact_resolution" in ex:
            unres = ex["first_contact_resolution"].astype("boolean").eq(False).fillna(False)
            c["prior_unresolved"] = total(pos, recent & unres.to_numpy(bool)).astype(int)
        if "sla_met" in ex:
            br = ex["sla_met"].astype("boolean").eq(False).fillna(False)
            c["prior_sla_breaches"] = total(pos, recent & br.to_numpy(bool)).astype(int)
        for score in ("nps", "csat"):
            if score in ex:
                v = ex[score].to_numpy(float)
                ok = before & ~np.isnan(v)
                cnt = total(pos, ok)
                sm = total(pos, ok, np.nan_to_num(v))
                # 0 where never answered; the answered flag / "none" NPS category carry that
                c[f"history_{score}_mean"] = np.where(cnt > 0, sm / np.maximum(cnt, 1), 0.0)
                c[f"history_{score}_answered"] = (cnt > 0).astype(int)
        if "nps" in ex:
            v = ex["nps"].to_numpy(float)
            ok = before & ~np.isnan(v)
            last = (
                pd.DataFrame({"pos": pos[ok], "date": ex["date"].to_numpy()[ok], "nps": v[ok]})
                .sort_values(["pos", "date"], kind="stable")
                .drop_duplicates("pos", keep="last")
            )
            cat = np.where(
                last["nps"] <= 6, "detractor", np.where(last["nps"] <= 8, "passive", "promoter")
            )
            labels = np.full(n, "none", dtype=object)
            labels[last["pos"].to_numpy()] = cat
            c["prior_nps_category"] = labels
    c["prior_nps_category"] = pd.Categorical(
        c["prior_nps_category"], categories=["none", "detractor", "passive", "promoter"]
    )

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


# Plain-language labels for stakeholder tables and plots (the code keeps the short names).
COVARIATE_LABELS = {
    "prior_spend": "spend in the 3 months before",
    "log_prior_spend": "log(1 + spend) in the 3 months before",
    "prior_purchases": "purchases in the 3 months before",
    "tenure_months": "tenure (months)",
    "log_tenure_months": "log tenure",
    "segment": "segment",
    "value_tier": "value tier",
    "prior_nps_category": "latest NPS answer",
    "prior_tickets": "service tickets in the 3 months before",
    "history_tickets": "service tickets, whole history",
    "history_nps_mean": "mean NPS answer, whole history (0 = none)",
    "prior_unresolved": "unresolved tickets in the 3 months before",
    "prior_sla_breaches": "SLA breaches in the 3 months before",
}
METHOD_LABELS = {
    "naive": "naive (raw difference)",
    "regression": "regression adjustment",
    "ipw": "inverse-probability weighting",
    "aipw": "doubly robust (AIPW)",
}
QUANTITY_LABELS = {
    "survival_member": "share still active: members",
    "survival_non_member": "share still active: comparable non-members",
    "survival_difference": "share still active: difference",
    "rmst_member": "mean months active within the horizon: members",
    "rmst_non_member": "mean months active within the horizon: comparable non-members",
    "rmst_difference": "mean months active within the horizon: difference",
}


def covariate_label(name: str) -> str:
    """Plain-language label of a covariate or one of its dummy columns.

    ``"prior_spend"`` -> ``"spend in the 3 months before"``;
    ``"segment[consumer]"`` -> ``"segment: consumer"``; unknown names are returned
    with underscores as spaces.
    """
    base, sep, level = str(name).partition("[")
    label = COVARIATE_LABELS.get(base, base.replace("_", " "))
    return f"{label}: {level.rstrip(']')}" if sep else label


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
    ``causal.estimate_effect(..., cluster="customer_id")``.

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
    c = customers
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

    tx = transactions
    spend_c = csum(monthly(tx, tx["amount"].to_numpy(float)))
    npur_c = csum(monthly(tx))
    zeros = np.zeros((n, nm + 2))
    tick_c, unres_c, sla_c, nps_n_c, nps_s_c = zeros, zeros, zeros, zeros, zeros
    last_cat = np.zeros((n, nm + 1), dtype=np.int8)  # latest NPS category up to column k
    if experience is not None and len(experience):
        ex = experience
        is_t = (ex["kind"] == "ticket").to_numpy() if "kind" in ex else np.zeros(len(ex), bool)
        tick_c = csum(monthly(ex, is_t))
        if "first_contact_resolution" in ex:
            un = ex["first_contact_resolution"].astype("boolean").eq(False).fillna(False)
            unres_c = csum(monthly(ex, is_t & un.to_numpy(bool)))
        if "sla_met" in ex:
            br = ex["sla_met"].astype("boolean").eq(False).fillna(False)
            sla_c = csum(monthly(ex, is_t & br.to_numpy(bool)))
        if "nps" in ex:
            v = ex["nps"].to_numpy(float)
            ans = ~np.isnan(v)
            nps_n_c = csum(monthly(ex, ans))
            nps_s_c = csum(monthly(ex, np.nan_to_num(v)))
            a = ex.loc[ans, ["customer_id", "date"]].assign(nps=v[ans])
            a["pos"] = key.get_indexer(a["customer_id"])
            a["col"] = np.clip(_month_index(a["date"], ws), -1, None) + 1
            a = a[(a["pos"] >= 0) & (a["col"] <= nm)]
            a = a.sort_values(["pos", "date"], kind="stable").drop_duplicates(
                ["pos", "col"], keep="last"
            )
            cat = np.where(a["nps"] <= 6, 1, np.where(a["nps"] <= 8, 2, 3)).astype(np.int8)
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

    out = c.iloc[ci].reset_index(drop=True)
    out.insert(1, "trial_month", m.astype(int))
    tdate = _add_months(ws, m)
    out.insert(2, "trial_date", tdate)
    out.insert(3, "member", (en_m[ci] == m).astype(int))
    out["prior_spend"] = window(spend_c, lo_, now)
    out["log_prior_spend"] = np.log1p(np.maximum(out["prior_spend"].to_numpy(), 0))
    out["prior_purchases"] = window(npur_c, lo_, now).astype(int)
    out["prior_tickets"] = window(tick_c, lo_, now).astype(int)
    out["prior_unresolved"] = window(unres_c, lo_, now).astype(int)
    out["prior_sla_breaches"] = window(sla_c, lo_, now).astype(int)
    out["history_tickets"] = tick_c[ci, now].astype(int)
    cnt = nps_n_c[ci, now]
    out["history_nps_mean"] = np.where(cnt > 0, nps_s_c[ci, now] / np.maximum(cnt, 1), 0.0)
    out["history_nps_answered"] = (cnt > 0).astype(int)
    labels = np.array(["none", "detractor", "passive", "promoter"], dtype=object)
    out["prior_nps_category"] = pd.Categorical(
        labels[last_cat[ci, m]], categories=list(labels)
    )  # column m = months up to m - 1
    signup = pd.to_datetime(out["signup_date"]).to_numpy()
    out["tenure_months"] = (tdate - signup) / np.timedelta64(1, "D") / DAYS_PER_MONTH
    out["log_tenure_months"] = np.log1p(np.maximum(out["tenure_months"].to_numpy(), 0))
    out["spend"] = window(spend_c, nxt, hi_)
    out["purchases"] = window(npur_c, nxt, hi_).astype(int)
    out["retained"] = (ch_m[ci] > m + hz).astype(int)
    out["churned"] = 1 - out["retained"]
    return out


# --------------------------------------------------------------------------- survival


@dataclass(frozen=True)
class SurvivalContrast:
    """IP-weighted survival curves and contrasts at a horizon.

    Attributes
    ----------
    curves : pandas.DataFrame
        ``group`` (member / non-member), ``time_months``, ``survival``, with
        pointwise ``ci_lower`` / ``ci_upper``.
    summary : pandas.DataFrame
        One row per quantity: survival at the horizon for each group, their
        difference (members minus non-members, percentage points as a proportion),
        and RMST up to the horizon (months) and its difference, each with an
        analytic (influence-function) or bootstrap percentile interval.
    horizon : float
        Months after the landmark.
    n_boot : int
        Bootstrap replicates (propensity model refitted in each); 0 when the
        intervals are analytic.
    """

    curves: pd.DataFrame
    summary: pd.DataFrame
    horizon: float
    n_boot: int


def _weighted_km(time, event, w, grid):
    """Weighted Kaplan-Meier evaluated on ``grid`` (right-continuous step function)."""
    return _weighted_km_if(time, event, w, grid, influence=False)[0]


def _weighted_km_if(time, event, w, grid, *, influence=True):
    """Weighted Kaplan-Meier on ``grid`` and, optionally, each row's influence on it.

    Returns ``(surv, infl)`` where ``infl`` is an ``(n, len(grid))`` array with
    ``infl[i] = w_i * dS/dw_i`` (the influence of row ``i`` for fixed weights, so
    that ``sum(infl**2)`` is the weighted Greenwood variance), or None.
    """
    time = np.asarray(time, float)
    event = np.asarray(event, float)
    w = np.asarray(w, float)
    ut, inv = np.unique(time, return_inverse=True)
    deaths = np.bincount(inv, weights=w * event, minlength=ut.size)
    removed = np.bincount(inv, weights=w, minlength=ut.size)
    at_risk = np.cumsum(removed[::-1])[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.where(at_risk > 0, deaths / at_risk, 0.0)
    surv_t = np.cumprod(1 - hazard)
    pos = np.searchsorted(ut, grid, side="right") - 1
    surv = np.where(pos >= 0, surv_t[np.clip(pos, 0, None)], 1.0)
    if not influence:
        return surv, None
    # d log S(t) / d w_i = -[1{event_i, T_i <= t} / (R_i (1 - h_i)) - sum_{u_j <= min(t, T_i)} h_j / (R_j (1 - h_j))]
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = at_risk * (1 - hazard)
        jump = np.where(denom > 0, 1.0 / denom, 0.0)
        step = np.where(denom > 0, hazard / denom, 0.0)
    cum = np.cumsum(step)
    posc = np.clip(pos, 0, None)
    # index of min(t, T_i) on the unique-time axis, per row and grid point
    upto = np.minimum(inv[:, None], posc[None, :])
    a = np.where(pos[None, :] >= 0, cum[upto], 0.0)
    ev_part = (event[:, None] > 0) & (inv[:, None] <= pos[None, :])
    dlog = -(np.where(ev_part, jump[inv][:, None], 0.0) - a)
    return surv, (w[:, None] * dlog) * surv[None, :]


def _rmst(grid, surv, horizon):
    g = grid[grid <= horizon]
    s = surv[..., : g.size]
    widths = np.diff(np.append(g, horizon))
    return np.sum(s * widths, axis=-1)


def weighted_survival(
    frame: pd.DataFrame,
    *,
    treatment: str = "member",
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    time: str = "time_months",
    event: str = "event",
    horizon: float = 6.0,
    estimand: str = "ATE",
    trim: float | None = None,
    se: str = "analytic",
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
) -> SurvivalContrast:
    """Estimate IP-weighted survival curves for members and comparable non-members.

    Weights come from a logistic propensity model (ATE: ``1/e`` and ``1/(1-e)``;
    ATT: 1 and ``e/(1-e)``); each group's curve is a weighted Kaplan-Meier
    estimate. By default intervals are analytic: each customer's influence on
    the weighted Kaplan-Meier curve (the weighted Greenwood term) plus the
    propensity model's estimation error, propagated through the weights
    (M-estimation sandwich, as for IPW in :func:`analysis.causal.estimate_effect`).
    ``se="bootstrap"`` gives percentile intervals over customers instead,
    refitting the propensity model in each of ``n_boot`` replicates (slow on
    large data; kept as the independent check used in the tests).

    Parameters
    ----------
    frame : pandas.DataFrame
        A :func:`landmark_frame`.
    treatment, time, event : str
        Columns: treatment (0/1), months since the landmark, churn indicator.
    covariates : sequence of str
        Confounders for the propensity model.
    horizon : float
        Months after the landmark for survival and RMST contrasts.
    estimand : {"ATE", "ATT"}
    trim : float, optional
        Propensity trimming as in :func:`analysis.causal.estimate_effect`.
    se : {"analytic", "bootstrap"}
        How intervals are computed.
    n_boot : int
        Bootstrap replicates (``se="bootstrap"`` only).
    seed : int
        Seed of the bootstrap.
    alpha : float
        1 - confidence level.

    Returns
    -------
    SurvivalContrast
    """
    if se not in ("analytic", "bootstrap"):
        raise ValueError(f"se must be 'analytic' or 'bootstrap', got {se!r}")
    df = frame.reset_index(drop=True)
    grid = np.linspace(0, horizon, int(round(horizon * 4)) + 1)
    x_all = causal.covariate_matrix(df, list(covariates)).to_numpy(float)
    t_all = df[treatment].to_numpy(float)
    time_all = df[time].to_numpy(float)
    ev_all = df[event].to_numpy(float)
    z = stats.norm.ppf(1 - alpha / 2)

    def weights(e, t):
        keep = np.ones(len(t), bool) if trim is None else (e >= trim) & (e <= 1 - trim)
        if estimand == "ATE":
            w = np.where(t == 1, 1 / e, 1 / (1 - e))
            dw = np.where(t == 1, -(1 - e) / e, e / (1 - e))
        else:
            w = np.where(t == 1, 1.0, e / (1 - e))
            dw = np.where(t == 1, 0.0, e / (1 - e))
        return w * keep, dw * keep

    def one(idx):
        x, t, tt, ev = x_all[idx], t_all[idx], time_all[idx], ev_all[idx]
        _, e = causal._logit_newton(causal._with_intercept(x), t)
        w, _ = weights(e, t)
        s1 = _weighted_km(tt[t == 1], ev[t == 1], w[t == 1], grid)
        s0 = _weighted_km(tt[t == 0], ev[t == 0], w[t == 0], grid)
        return s1, s0

    rm = lambda s: _rmst(grid, s, horizon)  # noqa: E731
    with causal._threads(len(df), user_api=None):
        if se == "bootstrap":
            s1, s0 = one(np.arange(len(df)))
            rng = np.random.default_rng(seed)
            boots = [one(rng.integers(0, len(df), len(df))) for _ in range(n_boot)]
            b1 = np.array([b[0] for b in boots])
            b0 = np.array([b[1] for b in boots])
            q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
            bands = {
                "member": np.percentile(b1, q, axis=0),
                "non-member": np.percentile(b0, q, axis=0),
            }

            def interval(est, draws):
                return tuple(np.percentile(draws, q))

            d1, d0 = b1, b0  # bootstrap replicates of each curve
        else:
            zmat = causal._with_intercept(x_all)
            _, e = causal._logit_newton(zmat, t_all)
            w, dw = weights(e, t_all)
            # logistic score contributions mapped to coefficient influence: H^-1 z_i (t_i - e_i)
            hess = (zmat * (e * (1 - e))[:, None]).T @ zmat
            if_gamma = np.linalg.solve(hess, (zmat * (t_all - e)[:, None]).T).T
            infl = {}
            curves_est = {}
            for name, g in (("member", t_all == 1), ("non-member", t_all == 0)):
                s, inf = _weighted_km_if(time_all[g], ev_all[g], w[g], grid)
                with np.errstate(divide="ignore", invalid="ignore"):
                    dsdw = np.where(w[g][:, None] > 0, inf / w[g][:, None], 0.0)
                grad = (zmat[g] * dw[g][:, None]).T @ dsdw  # dS/dgamma, (k, grid)
                full = if_gamma @ grad
                full[g] += inf
                infl[name] = full
                curves_est[name] = s
            s1, s0 = curves_est["member"], curves_est["non-member"]
            sd = {k: np.sqrt(np.sum(v**2, axis=0)) for k, v in infl.items()}
            bands = {
                k: np.vstack([curves_est[k] - z * sd[k], curves_est[k] + z * sd[k]]).clip(0, 1)
                for k in infl
            }

            def interval(est, draws):
                half = z * float(np.sqrt(np.sum(draws**2)))
                return est - half, est + half

            d1, d0 = infl["member"], infl["non-member"]  # per-customer influence on each curve
    # each quantity with its replicates (bootstrap) or influence values (analytic)
    summ = {
        "survival_member": (s1[-1], d1[:, -1]),
        "survival_non_member": (s0[-1], d0[:, -1]),
        "survival_difference": (s1[-1] - s0[-1], d1[:, -1] - d0[:, -1]),
        "rmst_member": (rm(s1), rm(d1)),
        "rmst_non_member": (rm(s0), rm(d0)),
        "rmst_difference": (rm(s1) - rm(s0), rm(d1) - rm(d0)),
    }
    curves = pd.concat(
        [
            pd.DataFrame(
                {
                    "group": name,
                    "time_months": grid,
                    "survival": s,
                    "ci_lower": bands[name][0],
                    "ci_upper": bands[name][1],
                }
            )
            for name, s in (("member", s1), ("non-member", s0))
        ],
        ignore_index=True,
    )
    units = {"survival": "proportion", "rmst": "months"}
    rows = []
    for name, (est, draws) in summ.items():
        lo, hi = interval(est, draws)
        rows.append(
            {
                "quantity": name,
                "estimate": float(est),
                "ci_lower": float(lo),
                "ci_upper": float(hi),
                "unit": units[name.split("_")[0]],
            }
        )
    return SurvivalContrast(
        curves=curves,
        summary=pd.DataFrame(rows),
        horizon=horizon,
        n_boot=n_boot if se == "bootstrap" else 0,
    )


@dataclass(frozen=True)
class CoxResult:
    """Weighted Cox model for a binary treatment.

    Attributes
    ----------
    hazard_ratio, ci_lower, ci_upper : float
        Hazard ratio (treated vs untreated) and robust (sandwich) interval.
    log_hr, se : float
        Coefficient and its robust standard error (clustered if ``cluster`` given).
    se_model : float
        Model-based (inverse information) standard error, for reference.
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
) -> CoxResult:
    """Fit a Cox model with one binary treatment, case weights and a robust variance.

    Breslow ties; Newton-Raphson on the weighted partial likelihood; robust
    variance from weighted score residuals (Lin & Wei 1989; Binder 1992), which
    is what makes the interval honest when the weights are estimated IP weights
    (it is then conservative). statsmodels' ``PHReg`` takes no case weights,
    hence this implementation.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per subject (or per subject and landmark when stacking).
    treatment, time, event : str
        Binary treatment, follow-up time (months), event indicator.
    weights : Series, array, column name, or None
        Case weights (e.g. ``Effect.weights``); None for unweighted.
    horizon : float, optional
        Administratively censor at this many months.
    cluster : str, optional
        Column identifying clusters (e.g. customer_id when landmarks are stacked).
    alpha : float
        1 - confidence level.

    Returns
    -------
    CoxResult
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

    order = np.argsort(-t, kind="stable")  # descending time: cumulative sums = risk sets
    x, t, ev, w = x[order], t[order], ev[order], w[order]
    if groups is not None:
        groups = groups[order]
    # index of the last row with the same time (ties share the risk set)
    _, first_idx = np.unique(-t, return_index=True)
    tie_end = np.repeat(np.append(first_idx[1:], len(t)) - 1, np.diff(np.append(first_idx, len(t))))

    beta = 0.0
    for _ in range(50):
        r = w * np.exp(beta * x)
        s0 = np.cumsum(r)[tie_end]
        s1 = np.cumsum(r * x)[tie_end]
        xbar = s1 / s0
        score = np.sum(w * ev * (x - xbar))
        info = np.sum(w * ev * (xbar - xbar**2))
        step = score / info
        beta += step
        if abs(step) < 1e-10:
            break
    r = w * np.exp(beta * x)
    s0 = np.cumsum(r)[tie_end]
    s1 = np.cumsum(r * x)[tie_end]
    xbar = s1 / s0
    info = float(np.sum(w * ev * (xbar - xbar**2)))
    # score residuals: event part minus the compensator accumulated over events at or before t_i
    de = w * ev / s0
    # events at times <= t_i are at positions >= tie-start of i in descending order
    cum_a = np.cumsum((de * xbar)[::-1])[::-1]
    cum_b = np.cumsum(de[::-1])[::-1]
    _, first_of_tie = np.unique(-t, return_index=True)
    tie_start = np.repeat(first_of_tie, np.diff(np.append(first_of_tie, len(t))))
    comp = np.exp(beta * x) * (x * cum_b[tie_start] - cum_a[tie_start])
    resid = w * (ev * (x - xbar) - comp)
    if groups is not None:
        resid = pd.Series(resid).groupby(groups).sum().to_numpy()
    var = float(np.sum(resid**2)) / info**2
    se = math.sqrt(var)
    z = stats.norm.ppf(1 - alpha / 2)
    return CoxResult(
        hazard_ratio=math.exp(beta),
        ci_lower=math.exp(beta - z * se),
        ci_upper=math.exp(beta + z * se),
        log_hr=beta,
        se=se,
        se_model=1 / math.sqrt(info),
        p_value=float(2 * stats.norm.sf(abs(beta) / se)),
        n=int(len(t)),
        events=int(ev.sum()),
    )


# --------------------------------------------------------------------------- effects table


def effect_table(
    frame: pd.DataFrame,
    *,
    outcomes: Sequence[str] = ("retained", "spend", "purchases"),
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    treatment: str = "member",
    methods: Sequence[str] = ("naive", "regression", "ipw", "aipw"),
    estimands: Sequence[str] = ("ATE", "ATT"),
    propensity_model: str = "logit",
    trim: float | None = None,
    seed: int = 0,
    cluster: str | None = None,
) -> pd.DataFrame:
    """Estimate the programme's effect on several outcomes with several estimators.

    Parameters
    ----------
    frame : pandas.DataFrame
        A :func:`landmark_frame` (or several stacked).
    outcomes : sequence of str
        Outcome columns (``retained`` is a proportion; ``spend`` in currency per
        customer over the horizon; ``purchases`` a count over the horizon).
    covariates, treatment, methods, estimands, propensity_model, trim, seed, cluster
        Passed to :func:`analysis.causal.estimate_effect` (``cluster="customer_id"``
        for a :func:`trial_frame`, where a customer appears in many trials).

    Returns
    -------
    pandas.DataFrame
        One row per outcome, method and estimand (naive once, labelled
        "observational contrast"), with estimate, se, interval, p-value, the two
        potential-outcome means, their ratio with interval, group sizes and
        trimmed rows.
    """
    rows = []
    for y in outcomes:
        for m in methods:
            for est in ("ATE",) if m == "naive" else estimands:
                eff = causal.estimate_effect(
                    frame,
                    treatment=treatment,
                    outcome=y,
                    covariates=list(covariates),
                    method=m,
                    estimand=est,
                    propensity_model=propensity_model,
                    trim=trim,
                    seed=seed,
                    cluster=cluster,
                )
                d = eff.to_dict()
                if m == "naive":
                    d["estimand"] = "observational contrast"
                rows.append(d)
    return pd.DataFrame(rows)


def heterogeneity(
    frame: pd.DataFrame,
    *,
    by: str,
    outcome: str,
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    treatment: str = "member",
    method: str = "aipw",
    estimand: str = "ATT",
    min_group_size: int = 50,
    cluster: str | None = None,
) -> pd.DataFrame:
    """Estimate effects within subgroups; suppress groups that are too small.

    A subgroup is estimated only if both its treated and its control counts are
    at least ``min_group_size``; otherwise its row is kept with ``suppressed``
    True and no numbers. The grouping column is dropped from the covariates.

    Returns
    -------
    pandas.DataFrame
        One row per level of ``by``: n_treated, n_control, estimate, ci_lower,
        ci_upper, ratio (lift) and its interval, suppressed.

    ``cluster`` is passed to :func:`analysis.causal.estimate_effect`; with it the
    counts are customers (clusters), not rows.
    """
    covs = [c for c in covariates if c != by]
    rows = []
    for level, g in frame.groupby(by, observed=True, sort=True):
        if cluster is None:
            n1 = int(g[treatment].sum())
            n0 = int(len(g) - n1)
        else:  # customers, so that suppression protects people rather than rows
            n1 = int(g.loc[g[treatment] == 1, cluster].nunique())
            n0 = int(g.loc[g[treatment] == 0, cluster].nunique())
        row = {by: level, "n_treated": n1, "n_control": n0, "suppressed": True}
        if n1 >= min_group_size and n0 >= min_group_size:
            covs_g = [c for c in covs if g[c].nunique() > 1]
            eff = causal.estimate_effect(
                g,
                treatment=treatment,
                outcome=outcome,
                covariates=covs_g,
                method=method,
                estimand=estimand,
                cluster=cluster,
            )
            row.update(
                estimate=eff.estimate,
                ci_lower=eff.ci_lower,
                ci_upper=eff.ci_upper,
                ratio=eff.ratio,
                ratio_ci_lower=eff.ratio_ci_lower,
                ratio_ci_upper=eff.ratio_ci_upper,
                suppressed=False,
            )
        rows.append(row)
    out = pd.DataFrame(rows)
    for c in ("estimate", "ci_lower", "ci_upper", "ratio", "ratio_ci_lower", "ratio_ci_upper"):
        if c not in out:
            out[c] = np.nan
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

    # each transaction's panel row, found arithmetically (rows are contiguous per customer)
    pos = pd.Index(c["customer_id"]).get_indexer(transactions["customer_id"])
    tper = _month_index(transactions["date"], ws)
    ok = pos >= 0
    pos_ok = pos[ok]
    tp = tper[ok]
    inside = (tp >= first[pos_ok]) & (tp <= stop[pos_ok])
    prow = (start[pos_ok] + tp - first[pos_ok])[inside].astype(np.int64)
    amt = transactions["amount"].to_numpy(float)[ok][inside]
    panel["revenue"] = np.bincount(prow, weights=amt, minlength=len(panel))
    panel["purchases"] = np.bincount(prow, minlength=len(panel)).astype(np.int32)

    cohort = np.full(len(c), np.nan)
    if loyalty is not None and len(loyalty):
        first_enrol = loyalty.groupby("customer_id")["enrolled_date"].min()
        g = _month_index(c["customer_id"].map(first_enrol), ws)
        cohort = np.where((g >= 0) & (g <= last), g, np.nan)
    panel["cohort"] = cohort[rows]
    panel["rel"] = panel["period"] - panel["cohort"]
    panel["period_start"] = _add_months(ws, np.arange(last + 1))[period]
    return panel


@dataclass(frozen=True)
class EventStudy:
    """Event-study estimates of spend around enrolment.

    Attributes
    ----------
    coefficients : pandas.DataFrame
        One row per estimator and event time (months since enrolment month):
        ``estimator`` (did2s / twfe), ``rel``, ``estimate``, ``se``, ``ci_lower``,
        ``ci_upper`` in currency per customer-month; the reference period has 0.
    post_att : dict
        Average effect over post-enrolment months 1..window end (did2s), with
        interval, and the implied lift relative to the enrollees' estimated
        untreated mean.
    pretrend : dict
        Joint Wald test that the leads before the anticipation window are zero.
    reference : int
        The reference event time.
    """

    coefficients: pd.DataFrame
    post_att: dict
    pretrend: dict
    reference: int
    n_customers: int
    n_enrollees: int


def _fe_normal(unit, period, n_unit, n_period):
    """Factor the normal equations of a two-way (unit + period) fixed-effects design.

    Returns what :func:`_fe_solve` needs: the row keys, per-unit and per-period
    counts, and the pseudo-inverse of the period-by-period Schur complement
    (periods are few, units many, so the unit effects are eliminated exactly
    instead of iterated). Memory stays a few bytes per row: the unit-by-period
    count matrix is built only to form the small Schur complement.
    """
    from scipy import sparse

    cu = np.bincount(unit, minlength=n_unit).astype(float)
    cp = np.bincount(period, minlength=n_period).astype(float)
    inv_cu = np.where(cu > 0, 1.0 / np.maximum(cu, 1), 0.0)
    if unit.size and np.all(unit[1:] >= unit[:-1]):  # rows grouped by unit: build CSR directly
        indptr = np.concatenate([[0], np.cumsum(np.bincount(unit, minlength=n_unit))])
        idx = period.astype(np.int32)
        m = sparse.csr_matrix((np.ones(unit.size), idx, indptr), shape=(n_unit, n_period))
        md = sparse.csr_matrix((inv_cu[unit], idx, indptr), shape=(n_unit, n_period))
    else:
        m = sparse.csr_matrix((np.ones(unit.size), (unit, period)), shape=(n_unit, n_period))
        md = m.multiply(inv_cu[:, None]).tocsr()
    schur = np.diag(cp) - (m.T @ md).toarray()
    del m, md
    return unit, period, cu, cp, inv_cu, np.linalg.pinv(schur, rcond=1e-10, hermitian=True)


def _fe_solve(fact, unit_sums, period_sums):
    """Solve the two-way FE normal equations for right-hand sides (unit, period sums)."""
    unit, period, _, _, inv_cu, schur_pinv = fact
    one = unit_sums.ndim == 1
    us = unit_sums[:, None] if one else unit_sums
    ps = period_sums[:, None] if one else period_sums
    n_unit, n_period = us.shape[0], ps.shape[0]
    ua = us * inv_cu[:, None]
    # M' ua (period totals of the unit parts) and M b (unit totals of the period parts)
    mt_ua = np.column_stack(
        [np.bincount(period, weights=ua[unit, j], minlength=n_period) for j in range(ua.shape[1])]
    )
    b = schur_pinv @ (ps - mt_ua)
    mb = np.column_stack(
        [np.bincount(unit, weights=b[period, j], minlength=n_unit) for j in range(b.shape[1])]
    )
    a = ua - mb * inv_cu[:, None]
    return (a[:, 0], b[:, 0]) if one else (a, b)


def _fe_fit(fact, y, n_unit, n_period):
    """Least-squares unit and period effects of ``y``, one value per row of ``fact``'s design."""
    unit, period = fact[0], fact[1]
    return _fe_solve(
        fact,
        np.bincount(unit, weights=y, minlength=n_unit),
        np.bincount(period, weights=y, minlength=n_period),
    )


def _two_way_fe(y, unit, period, n_unit, n_period):
    """Fit y = a[unit] + b[period] by least squares (exact; unbalanced panel).

    Returns the unit effects, period effects and a mask of units with rows.
    The split between ``a`` and ``b`` is one of many equivalent ones; fitted
    values ``a[unit] + b[period]`` are unique.
    """
    fact = _fe_normal(unit, period, n_unit, n_period)
    a, b = _fe_fit(fact, y, n_unit, n_period)
    return a, b, fact[2] > 0


def _imputation(y, unit, period, rel, treated_unit, untreated, ks, n_unit, n_period, *, variance):
    """Imputation (two-stage) estimates at each event time in ``ks`` and over months 1..max(ks).

    With ``variance``, also the standard errors of Borusyak, Jaravel & Spiess
    (2024, Theorem 3): each estimate is linear in the outcomes, ``sum v_it y_it``;
    the weights ``v`` of untreated rows follow from the first-stage normal
    equations, and the variance is ``sum_i (sum_t v_it e_it)^2`` clustered by
    customer, with first-stage residuals for untreated rows and, for treated
    rows, each effect minus the mean effect at its event time (conservative
    when effects vary within an event time).
    """
    u0, p0, y0 = unit[untreated], period[untreated], y[untreated]
    fact = _fe_normal(u0, p0, n_unit, n_period)
    a, b = _fe_fit(fact, y0, n_unit, n_period)
    seen = fact[2] > 0
    usable = treated_unit & seen[unit] & ~untreated
    resid = y - a[unit] - b[period]
    est = np.full(len(ks), np.nan)
    masks = []
    for j, k in enumerate(ks):
        mk = usable & (rel == k)
        masks.append(mk)
        if mk.any():
            est[j] = resid[mk].mean()
    post = usable & (rel >= 1) & (rel <= ks[-1])
    masks.append(post)
    att = resid[post].mean() if post.any() else np.nan
    observed = y[post].mean() if post.any() else np.nan
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
        ha, hb = _fe_solve(
            fact,
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
    (Frisch-Waugh-Lovell with :func:`_fe_solve`), working only on the rows that
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
    fact = _fe_normal(unit, period, n_unit, n_period)
    d = np.flatnonzero(et != ref)
    col = np.searchsorted(levels, et[d])
    ud, pd_ = unit[d], period[d]
    # partial the FE out of y, and of each dummy (whose unit/period sums come from its rows)
    ay, by = _fe_fit(fact, y, n_unit, n_period)
    yt = y - ay[unit] - by[period]
    ax, bx = _fe_solve(
        fact,
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
    g = int((fact[2] > 0).sum())
    n = len(y)
    k = nl + int((fact[3] > 0).sum())  # month effects counted in full, as pyfixest does
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

    Enrolment is selected on spend in the months just before it, so those months
    are *expected* to be high (selection on a transitory spend peak, not an
    effect). The ``anticipation`` months before enrolment are therefore kept out of
    the untreated sample and the TWFE reference period is ``-(anticipation + 1)``.

    Parameters
    ----------
    panel : pandas.DataFrame
        From :func:`event_study_panel`: customer_id, period, cohort, rel, outcome.
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
    )
    if se == "analytic":
        se_k, att_se = ses[:-1], float(ses[-1])
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
            )
            boot_est.append(e_b)
            boot_att.append(a_b)
        ok = n_boot > 1
        se_k = np.nanstd(np.array(boot_est), axis=0, ddof=1) if ok else np.full(len(ks), np.nan)
        att_se = float(np.nanstd(boot_att, ddof=1)) if ok else float("nan")
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
    untreated_mean = observed - att
    lift = observed / untreated_mean if untreated_mean > 0 else float("nan")
    # delta method with the enrollees' observed mean held fixed (as in the bootstrap)
    lift_se = observed / untreated_mean**2 * att_se if untreated_mean > 0 else float("nan")
    post_att = {
        "estimate": float(att),
        "se": att_se,
        "ci_lower": float(att - z * att_se),
        "ci_upper": float(att + z * att_se),
        "observed_mean": float(observed),
        "untreated_mean": float(untreated_mean),
        "lift": float(lift),
        "lift_ci_lower": float(lift - z * lift_se),
        "lift_ci_upper": float(lift + z * lift_se),
        "months": f"1..{hi}",
        "enrollees_without_untreated_months": n_dropped,
        "se_method": se,
        "n_boot": n_boot,
    }
    return EventStudy(
        coefficients=coefs.reset_index(drop=True),
        post_att=post_att,
        pretrend=pre,
        reference=ref,
        n_customers=int(n_unit),
        n_enrollees=int(np.unique(unit[treated_unit]).size),
    )


def _ranges(lens: np.ndarray) -> np.ndarray:
    """Concatenate arange(n) for each n in ``lens``."""
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, int)
    starts = np.cumsum(lens) - lens
    return np.arange(total) - np.repeat(starts, lens)


# --------------------------------------------------------------------------- descriptive helpers


def uptake(
    customers: pd.DataFrame,
    loyalty: pd.DataFrame,
    *,
    window_start,
    as_of,
) -> pd.DataFrame:
    """Count enrolments, leavers and members per calendar month.

    Returns
    -------
    pandas.DataFrame
        One row per month of the window: ``month`` (first day), ``enrolments``,
        ``leavers``, ``members`` (active members at month end: enrolled, not left,
        not churned), ``active_customers`` (at month end) and ``member_share``.
    """
    ws = pd.Timestamp(window_start).to_period("M").start_time
    last = int(_month_index(pd.Series([pd.Timestamp(as_of)]), ws)[0])
    months = np.arange(last + 1)
    ends = _add_months(ws, months + 1)  # first day of the next month
    su = pd.to_datetime(customers["signup_date"]).to_numpy()
    ch = pd.to_datetime(customers["churn_date"]).to_numpy()
    active = [
        int(((su < e) & (np.isnat(ch) | (ch >= e))).sum()) for e in ends.astype("datetime64[ns]")
    ]
    lo = loyalty.merge(customers[["customer_id", "churn_date"]], on="customer_id", how="left")
    en = pd.to_datetime(lo["enrolled_date"]).to_numpy()
    lv = (
        pd.to_datetime(lo["left_date"]).to_numpy()
        if "left_date" in lo
        else np.full(len(lo), np.datetime64("NaT"))
    )
    lc = pd.to_datetime(lo["churn_date"]).to_numpy()
    members = [
        int(((en < e) & (np.isnat(lv) | (lv >= e)) & (np.isnat(lc) | (lc >= e))).sum())
        for e in ends.astype("datetime64[ns]")
    ]
    em = _month_index(lo["enrolled_date"], ws)
    lm = _month_index(lo["left_date"], ws) if "left_date" in lo else np.full(len(lo), np.nan)
    out = pd.DataFrame(
        {
            "month": _add_months(ws, months),
            "enrolments": [int((em == m).sum()) for m in months],
            "leavers": [int((lm == m).sum()) for m in months],
            "members": members,
            "active_customers": active,
        }
    )
    out["member_share"] = out["members"] / out["active_customers"].where(
        out["active_customers"] > 0
    )
    return out


def member_profile(
    frame: pd.DataFrame,
    *,
    columns: Sequence[str],
    treatment: str = "member",
    min_group_size: int = 10,
) -> pd.DataFrame:
    """Describe members and non-members at the landmark, before any adjustment.

    Returns
    -------
    pandas.DataFrame
        One row per covariate (categoricals one row per non-reference level):
        mean (or share) among members, among non-members, and the standardised
        difference. Empty if either group is smaller than ``min_group_size``.
    """
    n1 = int(frame[treatment].sum())
    if min(n1, len(frame) - n1) < min_group_size:
        return pd.DataFrame(columns=["members", "non_members", "smd"])
    bal = causal.balance(frame, treatment=treatment, covariates=list(columns))
    return bal.rename(columns={"mean_treated": "members", "mean_control": "non_members"})


def points_summary(
    customers: pd.DataFrame,
    loyalty: pd.DataFrame,
    *,
    as_of,
    min_group_size: int = 10,
) -> pd.DataFrame:
    """Summarise points earned and redeemed, and how redeemers and non-redeemers fare.

    Descriptive only: redeeming needs time in the programme to collect points,
    so redeemers are partly redeemers *because* they stayed.

    Returns
    -------
    pandas.DataFrame
        One row per group (``redeemers``, ``non-redeemers``): members, mean points
        earned and redeemed, mean months in the programme, and monthly churn rate
        while in the programme (churn events per member-month). Groups smaller
        than ``min_group_size`` have their numbers suppressed.
    """
    need = {"points_earned", "points_redeemed"}
    if not need.issubset(loyalty.columns) or loyalty["points_earned"].isna().all():
        return pd.DataFrame()
    end = pd.Timestamp(as_of)
    lo = loyalty.merge(customers[["customer_id", "churn_date"]], on="customer_id", how="left")
    left = (
        pd.to_datetime(lo["left_date"]) if "left_date" in lo else pd.Series(pd.NaT, index=lo.index)
    )
    churn = pd.to_datetime(lo["churn_date"])
    stop = pd.concat([left, churn, pd.Series(end, index=lo.index)], axis=1).min(axis=1)
    months = (stop - pd.to_datetime(lo["enrolled_date"])).dt.days.clip(lower=0) / DAYS_PER_MONTH
    churned_in = churn.notna() & (churn <= stop) & (left.isna() | (churn <= left))
    lo = lo.assign(months=months, churned_in=churned_in.astype(int))
    lo["group"] = np.where(lo["points_redeemed"].fillna(0) > 0, "redeemers", "non-redeemers")
    rows = []
    for g, d in lo.groupby("group"):
        row = {"group": g, "members": len(d)}
        if len(d) >= min_group_size:
            row.update(
                points_earned=float(d["points_earned"].mean()),
                points_redeemed=float(d["points_redeemed"].mean()),
                months_in_programme=float(d["months"].mean()),
                monthly_churn_rate=float(d["churned_in"].sum() / max(d["months"].sum(), 1e-9)),
            )
        rows.append(row)
    return pd.DataFrame(rows)


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


def post_leaving(
    customers: pd.DataFrame,
    loyalty: pd.DataFrame,
    *,
    window_start,
    as_of,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Compare monthly churn rates: while a member, after leaving, and never enrolled.

    Descriptive rates (churn events per customer-month in the window) with
    exact Poisson intervals; not adjusted for who leaves.

    Returns
    -------
    pandas.DataFrame
        One row per state: ``customer_months``, ``churn_events``,
        ``monthly_churn_rate`` with ``ci_lower`` and ``ci_upper``.
    """
    c = _window_spans(customers, loyalty, window_start=window_start, as_of=as_of)
    en = pd.to_datetime(c["enrolled_date"])
    lv = pd.to_datetime(c["left_date"])
    spans = {
        "never enrolled / before enrolling": (
            c["start"],
            en.fillna(c["stop"]).clip(upper=c["stop"]),
        ),
        "member": (en, lv.fillna(c["stop"]).clip(upper=c["stop"])),
        "after leaving": (lv, c["stop"]),
    }
    rows = []
    for name, (a, b) in spans.items():
        a = a.clip(lower=c["start"])
        months = ((b - a).dt.days / DAYS_PER_MONTH).clip(lower=0).fillna(0)
        ev = c["churned"] & a.notna() & (a <= c["stop"]) & (c["stop"] <= b) & (months > 0)
        k, T = int(ev.sum()), float(months.sum())
        lo_ci = stats.chi2.ppf(alpha / 2, 2 * k) / 2 / T if k > 0 and T > 0 else 0.0
        hi_ci = stats.chi2.ppf(1 - alpha / 2, 2 * k + 2) / 2 / T if T > 0 else float("nan")
        rows.append(
            {
                "state": name,
                "customer_months": T,
                "churn_events": k,
                "monthly_churn_rate": k / T if T > 0 else float("nan"),
                "ci_lower": lo_ci,
                "ci_upper": hi_ci,
            }
        )
    return pd.DataFrame(rows)


def _rate_ratio(k1: int, t1: float, k0: int, t0: float, alpha: float) -> tuple[float, float, float]:
    """Ratio of two Poisson rates with the exact conditional (Clopper-Pearson) interval."""
    if t1 <= 0 or t0 <= 0 or k0 == 0:
        return float("nan"), float("nan"), float("nan")
    n = k1 + k0
    lo = stats.beta.ppf(alpha / 2, k1, n - k1 + 1) if k1 > 0 else 0.0
    hi = stats.beta.ppf(1 - alpha / 2, k1 + 1, n - k1) if k1 < n else 1.0
    # k1 given k1 + k0 is binomial with p = t1 r / (t1 r + t0): r = p / (1 - p) * t0 / t1
    upper = hi / (1 - hi) * t0 / t1 if hi < 1 else float("inf")
    return (k1 / t1) / (k0 / t0), float(lo / (1 - lo) * t0 / t1), float(upper)


def naive_churn_comparison(
    customers: pd.DataFrame,
    loyalty: pd.DataFrame,
    *,
    window_start,
    as_of,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Show how the members-versus-non-members churn comparison goes wrong.

    Two descriptive comparisons of monthly churn rates in the window (churn events
    per customer-month, exact conditional interval for the rate ratio):

    * ``"ever-members vs never-members"``: what a dashboard does. Every customer who
      ever enrolled counts as a member for all their time, including the months
      before joining, in which they could not have churned as a member (they had to
      stay to join): immortal time, plus selection (the best customers join).
    * ``"member months vs non-member months"``: time split at enrolment and
      leaving, each churn counted in the state it happened in. Immortal time is
      gone; selection remains.

    Neither is an effect; the adjusted analyses are.

    Returns
    -------
    pandas.DataFrame
        One row per comparison: customer-months and churn events of members and
        non-members, their monthly churn rates, ``rate_ratio`` (members over
        non-members) with ``ci_lower`` and ``ci_upper``.
    """
    c = _window_spans(customers, loyalty, window_start=window_start, as_of=as_of)
    c = c[c["stop"] > c["start"]]
    en = pd.to_datetime(c["enrolled_date"])
    en = en.where(en <= c["stop"])  # enrolled after churning or after as_of: never a member here
    lv = pd.to_datetime(c["left_date"]).where(en.notna())
    total = (c["stop"] - c["start"]).dt.days / DAYS_PER_MONTH
    ever = en.notna()
    m_from = en.clip(lower=c["start"])
    m_to = lv.fillna(c["stop"]).clip(upper=c["stop"])
    member_months = ((m_to - m_from).dt.days / DAYS_PER_MONTH).clip(lower=0).fillna(0.0)
    churn_as_member = c["churned"] & ever & (lv.isna() | (lv >= c["stop"]))
    rows = []
    for name, (t1, k1, t0, k0) in {
        "ever-members vs never-members": (
            total[ever].sum(),
            int(c["churned"][ever].sum()),
            total[~ever].sum(),
            int(c["churned"][~ever].sum()),
        ),
        "member months vs non-member months": (
            member_months.sum(),
            int(churn_as_member.sum()),
            (total - member_months).sum(),
            int((c["churned"] & ~churn_as_member).sum()),
        ),
    }.items():
        rr, lo, hi = _rate_ratio(k1, float(t1), k0, float(t0), alpha)
        rows.append(
            {
                "comparison": name,
                "member_customer_months": float(t1),
                "member_churn_events": k1,
                "member_monthly_churn_rate": k1 / t1 if t1 > 0 else float("nan"),
                "non_member_customer_months": float(t0),
                "non_member_churn_events": k0,
                "non_member_monthly_churn_rate": k0 / t0 if t0 > 0 else float("nan"),
                "rate_ratio": rr,
                "ci_lower": lo,
                "ci_upper": hi,
            }
        )
    return pd.DataFrame(rows)


def effect_sentence(eff: causal.Effect, *, what: str, unit: str = "", scale: float = 1.0) -> str:
    """Write one plain-language sentence about an adjusted effect, with its interval.

    Returns plain text; the reporting helpers escape it when rendering HTML.

    Parameters
    ----------
    eff : analysis.causal.Effect
    what : str
        What the outcome is, e.g. "6-month retention" or "spend over 6 months".
    unit : str
        Unit suffix after numbers, e.g. " percentage points" or " EUR".
    scale : float
        Multiply numbers by this before printing (100 for proportions -> points).
    """
    who = "members" if eff.estimand == "ATT" else "customers at the landmark"
    est, lo, hi = eff.estimate * scale, eff.ci_lower * scale, eff.ci_upper * scale
    if eff.method == "naive":
        return (
            f"Observed difference in {what} (members minus non-members, not adjusted): "
            f"{est:+,.1f}{unit} (95% CI {lo:+,.1f} to {hi:+,.1f})."
        )
    direction = "raised" if est > 0 else "lowered"
    certain = (
        "the interval excludes no effect"
        if lo > 0 or hi < 0
        else "the interval includes no effect, so the data cannot rule it out"
    )
    return (
        f"After adjusting for measured differences ({eff.method.upper()}, {eff.estimand}), "
        f"the programme is estimated to have {direction} {what} for {who} by "
        f"{abs(est):,.1f}{unit} (95% CI {lo:+,.1f} to {hi:+,.1f}); {certain}."
    )


def e_value_sentence(ev: causal.EValue, *, outcome: str = "churn") -> str:
    """Turn an E-value into the sentence a stakeholder can read."""
    if not np.isfinite(ev.point):
        return "E-value not available."
    ci = (
        f"; to move the confidence interval to include no effect, a risk ratio of {ev.ci:.2f} "
        "would suffice"
        if np.isfinite(ev.ci) and ev.ci > 1
        else "; the confidence interval already includes no effect"
    )
    return (
        f"An unmeasured confounder would need to be associated with both enrolment and "
        f"{outcome} by a risk ratio of {ev.point:.2f} each, beyond the measured covariates, "
        f"to explain the estimated effect away{ci}."
    )


# --------------------------------------------------------------------------- report


@dataclass
class LandmarkResult:
    """Everything estimated at one landmark (see :func:`programme_report`)."""

    landmark: int
    frame: pd.DataFrame = field(repr=False)
    n: int
    n_members: int
    propensity: pd.Series = field(repr=False)
    balance: pd.DataFrame
    effects: pd.DataFrame
    survival: SurvivalContrast | None
    cox: CoxResult | None
    cox_unweighted: CoxResult | None
    churn_effect: causal.Effect | None
    e_value: causal.EValue | None
    heterogeneity: pd.DataFrame | None
    n_trimmed: int
    weight_diagnostics: dict = field(default_factory=dict)


@dataclass
class SequentialResult:
    """The pooled sequential-trial analysis (see :func:`trial_frame`): the headline effects."""

    frame: pd.DataFrame = field(repr=False)
    n_rows: int
    n_enrolments: int
    n_customers: int
    n_trials: int
    sampled_customers: int | None
    propensity: pd.Series = field(repr=False)
    balance: pd.DataFrame
    effects: pd.DataFrame
    churn_effect: causal.Effect | None
    e_value: causal.EValue | None
    heterogeneity: pd.DataFrame | None
    weight_diagnostics: dict = field(default_factory=dict)


@dataclass
class ProgrammeReport:
    """Results of the loyalty-programme study, ready for a notebook to display.

    ``available`` is False when the data has no loyalty table or no members;
    ``message`` then says why and every other field is empty.
    """

    available: bool
    message: str
    currency: str = "EUR"
    uptake: pd.DataFrame | None = None
    landmarks: dict = field(default_factory=dict)
    sequential: SequentialResult | None = None
    event_study: EventStudy | None = None
    points: pd.DataFrame | None = None
    post_leaving: pd.DataFrame | None = None
    naive_churn: pd.DataFrame | None = None
    findings: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    covariates: list = field(default_factory=list)


def programme_report(
    tables: dict,
    *,
    window_start,
    as_of,
    landmarks: Sequence[int] = (6, 12),
    lookback_months: int = 3,
    horizon_months: int = 6,
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    trim: float | None = None,
    propensity_model: str = "logit",
    event_window: Sequence[int] = (-6, 6),
    heterogeneity_by: str | None = "value_tier",
    min_group_size: int = 10,
    currency: str = "EUR",
    n_boot: int = 0,
    seed: int = 0,
    sequential: bool = True,
    trial_max_customers: int | None = 50_000,
    ate_trim: float | str | None = "crump",
) -> ProgrammeReport:
    """Run the whole loyalty-programme study.

    Headline effects on retention and spend come from pooled sequential trials
    (:func:`trial_frame`: each month, customers who enrol vs eligible customers who do
    not, adjusted for the months before; standard errors clustered by customer). The
    landmark analyses give the survival curves, hazard ratios, and per-landmark overlap
    and balance diagnostics.

    Parameters
    ----------
    tables : dict
        Contract tables as pandas frames: ``customers``, ``transactions`` and, if
        present, ``loyalty`` and ``experience``.
    window_start, as_of : date-like
        Data window.
    landmarks : sequence of int
        Landmark tenures in months (each analysed separately; not pooled).
    lookback_months, horizon_months : int
        Covariate and outcome windows in calendar months.
    covariates : sequence of str
        Confounders measured before the landmark (columns of :func:`landmark_frame`);
        those absent or constant in the data are dropped with a note.
    trim : float, optional
        Propensity trimming bound for the landmark analyses and the effects on
        enrollees (ATT) of the sequential trials (reported).
    propensity_model : {"logit", "gbm"}
    event_window : (int, int)
        Event times for the enrolment event study.
    heterogeneity_by : str, optional
        Column for subgroup effects on spend (small groups suppressed).
    min_group_size : int
        Suppression threshold for subgroups.
    currency : str
        Label for money.
    n_boot : int
        0 (default): analytic intervals for the survival curves and the event
        study; a positive number: bootstrap replicates instead (slow on large
        data).
    seed : int
        Seed for the bootstraps, the jackknife groups and the customer sample.
    sequential : bool
        Run the pooled sequential-trial analysis (the headline).
    trial_max_customers : int, optional
        Sequential trials on a random sample of at most this many customers (None:
        all); keeps very large data fast, at some loss of precision.
    ate_trim : float, "crump" or None
        Trimming of the sequential-trial ATE (the effect had every eligible
        customer-month been an enrolment). Most eligible customer-months have a
        tiny chance of enrolling, so untrimmed the ATE rests on a few enrolments
        with weights in the hundreds or thousands and its interval is too narrow
        (89-92% coverage in the simulation study). ``"crump"`` (default): the
        variance-minimising bound of Crump et al. (2009); the ATE is then the
        effect among customer-months with a real chance of enrolling, and the
        report says which share that is.

    Returns
    -------
    ProgrammeReport

    Notes
    -----
    Spend effects come from the sequential trials only. At a landmark, a member's
    covariate months (the months just before the landmark) are already months in
    the programme, so they are affected by the treatment and cannot stand in for
    the customer's spending level before joining; the landmark spend contrast is
    biased upwards (by about a quarter of the effect in the simulation study) and
    is not estimated. The landmarks give retention, survival curves and hazard
    ratios.
    """
    lo_t = tables.get("loyalty")
    if lo_t is None or len(lo_t) == 0:
        return ProgrammeReport(
            available=False,
            message=(
                "The data has no loyalty table (or it is empty), so the programme cannot be "
                "evaluated. Add a loyalty table (customer_id, enrolled_date, ...) to run this study."
            ),
            currency=currency,
        )
    cust, tx, ex = tables["customers"], tables["transactions"], tables.get("experience")
    rep = ProgrammeReport(available=True, message="", currency=currency)
    rep.uptake = uptake(cust, lo_t, window_start=window_start, as_of=as_of)
    rep.points = points_summary(cust, lo_t, as_of=as_of, min_group_size=min_group_size)
    rep.post_leaving = post_leaving(cust, lo_t, window_start=window_start, as_of=as_of)
    rep.naive_churn = naive_churn_comparison(cust, lo_t, window_start=window_start, as_of=as_of)

    for L in landmarks:
        f = landmark_frame(
            cust,
            tx,
            lo_t,
            ex,
            landmark_months=int(L),
            window_start=window_start,
            as_of=as_of,
            lookback_months=int(lookback_months),
            horizon_months=int(horizon_months),
        )
        n1 = int(f["member"].sum()) if len(f) else 0
        if n1 < min_group_size or len(f) - n1 < min_group_size:
            rep.notes.append(
                f"Landmark {L} months: {len(f):,} customers, {n1:,} members - too few to estimate."
            )
            continue
        covs = [c for c in covariates if c in f.columns and f[c].nunique() > 1]
        dropped = [c for c in covariates if c not in covs]
        if dropped and not rep.covariates:
            rep.notes.append(
                "Covariates not available or constant in this data, left out: " + ", ".join(dropped)
            )
        rep.covariates = covs
        ipw = causal.estimate_effect(
            f,
            treatment="member",
            outcome="retained",
            covariates=covs,
            method="ipw",
            propensity_model=propensity_model,
            trim=trim,
            seed=seed,
        )
        bal = causal.balance(f, treatment="member", covariates=covs, weights=ipw.weights)
        eff = effect_table(
            f,
            outcomes=("retained",),
            covariates=covs,
            propensity_model=propensity_model,
            trim=trim,
            seed=seed,
        )
        churn = causal.estimate_effect(
            f,
            treatment="member",
            outcome="churned",
            covariates=covs,
            method="aipw",
            estimand="ATT",
            propensity_model=propensity_model,
            trim=trim,
            seed=seed,
        )
        ev = causal.e_value(churn.ratio, churn.ratio_ci_lower, churn.ratio_ci_upper)
        surv = weighted_survival(
            f,
            covariates=covs,
            horizon=float(horizon_months),
            trim=trim,
            se="bootstrap" if n_boot > 0 else "analytic",
            n_boot=n_boot,
            seed=seed,
        )
        cox = weighted_cox(f, weights=ipw.weights, horizon=float(horizon_months))
        cox_u = weighted_cox(f, horizon=float(horizon_months))
        rep.landmarks[int(L)] = LandmarkResult(
            landmark=int(L),
            frame=f,
            n=len(f),
            n_members=n1,
            propensity=ipw.propensity,
            balance=bal,
            effects=eff,
            survival=surv,
            cox=cox,
            cox_unweighted=cox_u,
            churn_effect=churn,
            e_value=ev,
            heterogeneity=None,
            n_trimmed=ipw.n_trimmed,
            weight_diagnostics=dict(ipw.diagnostics),
        )

    if sequential:
        rep.sequential = _sequential_result(
            rep,
            cust,
            tx,
            lo_t,
            ex,
            window_start=window_start,
            as_of=as_of,
            lookback_months=int(lookback_months),
            horizon_months=int(horizon_months),
            covariates=covariates,
            trim=trim,
            propensity_model=propensity_model,
            heterogeneity_by=heterogeneity_by,
            min_group_size=min_group_size,
            max_customers=trial_max_customers,
            seed=seed,
            ate_trim=ate_trim,
        )

    panel = event_study_panel(cust, tx, lo_t, window_start=window_start, as_of=as_of)
    if panel["cohort"].notna().any():
        rep.event_study = event_study(
            panel,
            window=tuple(event_window),
            anticipation=int(lookback_months),
            se="bootstrap" if n_boot > 0 else "analytic",
            n_boot=n_boot,
            seed=seed,
        )
    rep.findings = _findings(rep, currency=currency, horizon=horizon_months)
    return rep


def _sequential_result(
    rep: ProgrammeReport,
    cust,
    tx,
    lo_t,
    ex,
    *,
    window_start,
    as_of,
    lookback_months,
    horizon_months,
    covariates,
    trim,
    propensity_model,
    heterogeneity_by,
    min_group_size,
    max_customers,
    seed,
    ate_trim="crump",
) -> SequentialResult | None:
    """Run the pooled sequential-trial analysis; None (with a note) if it cannot run."""
    try:
        f = trial_frame(
            cust,
            tx,
            lo_t,
            ex,
            window_start=window_start,
            as_of=as_of,
            lookback_months=lookback_months,
            horizon_months=horizon_months,
            max_customers=max_customers,
            seed=seed,
        )
    except DataError as err:
        rep.notes.append(f"Sequential trials not run: {err}")
        return None
    n1 = int(f["member"].sum())
    if n1 < min_group_size or len(f) - n1 < min_group_size:
        rep.notes.append(
            f"Sequential trials: {len(f):,} customer-months, {n1:,} enrolments - too few to "
            "estimate."
        )
        return None
    covs = [c for c in trial_covariates(covariates) if c in f.columns and f[c].nunique() > 1]
    # encode once into a slim numeric frame: every estimate below would otherwise re-encode the
    # categoricals of the wide frame (5-6x slower at 400,000 customer-months)
    design = causal.covariate_matrix(f, covs)
    extra = [heterogeneity_by] if heterogeneity_by and heterogeneity_by in f.columns else []
    base = ["customer_id", "member", "retained", "churned", "spend", "purchases"]
    slim = pd.concat([f[base + extra], design], axis=1)
    xcols = list(design.columns)
    kw = dict(propensity_model=propensity_model, trim=trim, seed=seed, cluster="customer_id")
    ipw = causal.estimate_effect(
        slim, treatment="member", outcome="retained", covariates=xcols, method="ipw", **kw
    )
    # balance for the headline (ATT): controls weighted to resemble the enrolments
    ipw_att = causal.estimate_effect(
        slim,
        treatment="member",
        outcome="retained",
        covariates=xcols,
        method="ipw",
        estimand="ATT",
        **kw,
    )
    bal = causal.balance(slim, treatment="member", covariates=xcols, weights=ipw_att.weights)
    outcomes = ("retained", "spend", "purchases")
    att = effect_table(
        slim,
        outcomes=outcomes,
        covariates=xcols,
        methods=("naive", "regression", "ipw", "aipw"),
        estimands=("ATT",),
        **kw,
    )
    ate_kw = dict(
        outcomes=outcomes,
        covariates=xcols,
        methods=("regression", "ipw", "aipw"),
        estimands=("ATE",),
    )
    try:
        ate = effect_table(slim, **ate_kw, **{**kw, "trim": ate_trim})
    except DataError as err:  # trimming emptied an arm (tiny data)
        rep.notes.append(
            f"Sequential trials: trimming for the ATE ({ate_trim}) left an arm empty "
            f"({err.args[0] if err.args else err}); the ATE rows are untrimmed."
        )
        ate = effect_table(slim, **ate_kw, **{**kw, "trim": None})
    order = {"observational contrast": 0, "ATE": 1, "ATT": 2}
    eff = (
        pd.concat([att, ate], ignore_index=True)
        .assign(
            _o=lambda d: d["outcome"].map({o: i for i, o in enumerate(outcomes)}),
            _e=lambda d: d["estimand"].map(order),
            _m=lambda d: d["method"].map({"naive": 0, "regression": 1, "ipw": 2, "aipw": 3}),
        )
        .sort_values(["_o", "_e", "_m"], kind="stable")
        .drop(columns=["_o", "_e", "_m"])
        .reset_index(drop=True)
    )
    churn = causal.estimate_effect(
        slim,
        treatment="member",
        outcome="churned",
        covariates=xcols,
        method="aipw",
        estimand="ATT",
        **kw,
    )
    ev = causal.e_value(churn.ratio, churn.ratio_ci_lower, churn.ratio_ci_upper)
    het = None
    if extra:
        het = heterogeneity(
            slim,
            by=heterogeneity_by,
            outcome="spend",
            covariates=xcols,
            min_group_size=min_group_size,
            cluster="customer_id",
        )
    n_all = int(cust["customer_id"].nunique())
    return SequentialResult(
        frame=f,
        n_rows=len(f),
        n_enrolments=n1,
        n_customers=int(f["customer_id"].nunique()),
        n_trials=int(f["trial_month"].nunique()),
        sampled_customers=max_customers if max_customers and n_all > max_customers else None,
        propensity=ipw.propensity,
        balance=bal,
        effects=eff,
        churn_effect=churn,
        e_value=ev,
        heterogeneity=het,
        weight_diagnostics=dict(ipw.diagnostics),
    )


def _gap_clause(naive: float, adjusted: float) -> str:
    """Say how the raw contrast compares with the adjusted effect, and why."""
    if abs(naive - adjusted) <= 0.1 * max(abs(naive), abs(adjusted), 1e-12):
        return " The raw and adjusted numbers are close: measured differences explain little of it."
    if naive > adjusted:
        return (
            " The raw gap is larger because customers who join already spent more, had better "
            "service experiences or fewer tickets before joining."
        )
    return (
        " The raw gap is smaller than the adjusted effect: members differed in ways that hide it."
    )


def _sequential_findings(sq: SequentialResult, *, currency: str, horizon: int) -> list[str]:
    """Headline sentences from the pooled sequential trials."""
    e = sq.effects.set_index(["outcome", "method", "estimand"])
    ret_naive = e.loc[("retained", "naive", "observational contrast")]
    ret = e.loc[("retained", "aipw", "ATT")]
    sp_naive = e.loc[("spend", "naive", "observational contrast")]
    sp = e.loc[("spend", "aipw", "ATT")]
    sample = (
        f", a random sample of {sq.sampled_customers:,} customers" if sq.sampled_customers else ""
    )
    out = [
        f"Headline (sequential trials: each month, customers who enrolled compared with "
        f"customers who could have enrolled that month but did not; {sq.n_enrolments:,} "
        f"enrolments in {sq.n_trials} monthly trials{sample}): enrolling raised "
        f"{horizon}-month retention of those who enrolled by {100 * ret.estimate:+.1f} points "
        f"(95% CI {100 * ret.ci_lower:+.1f} to {100 * ret.ci_upper:+.1f}), after adjusting for "
        f"spend, purchases, service experience and survey answers in the months before, "
        f"tenure, segment and value tier. The raw difference was "
        f"{100 * ret_naive.estimate:+.1f} points." + _gap_clause(ret_naive.estimate, ret.estimate),
        f"Spend over the {horizon} months after enrolling: raw difference "
        f"{sp_naive.estimate:+,.0f} {currency} per customer, adjusted effect on those who "
        f"enrolled {sp.estimate:+,.0f} {currency} (95% CI {sp.ci_lower:+,.0f} to "
        f"{sp.ci_upper:+,.0f}), a lift of {100 * (sp.ratio - 1):+.1f}% (95% CI "
        f"{100 * (sp.ratio_ci_lower - 1):+.1f}% to {100 * (sp.ratio_ci_upper - 1):+.1f}%)."
        + _gap_clause(sp_naive.estimate, sp.estimate),
    ]
    if ("spend", "aipw", "ATE") in e.index:
        a = e.loc[("spend", "aipw", "ATE")]
        r = e.loc[("retained", "aipw", "ATE")]
        kept = (a.n_treated + a.n_control) / max(sq.n_rows, 1)
        who = (
            f"customer-months with at least a {100 * a.trim_lower:.1f}% chance of enrolling "
            f"({100 * kept:.0f}% of eligible customer-months; the rest almost never enrol, so "
            f"the data cannot say what enrolling would do for them)"
            if a.n_trimmed > 0
            else "all eligible customer-months"
        )
        out.append(
            f"Average effect had everyone enrolled (ATE), among {who}: retention "
            f"{100 * r.estimate:+.1f} points (95% CI {100 * r.ci_lower:+.1f} to "
            f"{100 * r.ci_upper:+.1f}), spend {a.estimate:+,.0f} {currency} (95% CI "
            f"{a.ci_lower:+,.0f} to {a.ci_upper:+,.0f})."
        )
    if sq.e_value is not None:
        out.append("Sequential trials: " + e_value_sentence(sq.e_value, outcome="churn"))
    return out


def _event_study_vs_trials(rep: ProgrammeReport, *, currency: str, horizon: int) -> str:
    """Put the event study next to the sequential-trial spend effect on enrollees, per month."""
    if rep.sequential is None or horizon <= 0:
        return ""
    e = rep.sequential.effects.set_index(["outcome", "method", "estimand"])
    sp = e.loc[("spend", "aipw", "ATT")]
    return (
        f" The sequential trials, which adjust for that peak, give {sp.estimate / horizon:+,.1f} "
        f"{currency} per month (95% CI {sp.ci_lower / horizon:+,.1f} to "
        f"{sp.ci_upper / horizon:+,.1f}, lift {100 * (sp.ratio - 1):+.1f}%) and are the "
        f"headline."
    )


def _naive_sentence(rep: ProgrammeReport) -> str:
    """Say what the dashboard comparison shows, and why it flatters the programme."""
    n = rep.naive_churn.set_index("comparison")
    ever = n.loc["ever-members vs never-members"]
    split = n.loc["member months vs non-member months"]
    if not np.isfinite(ever.rate_ratio) or not np.isfinite(split.rate_ratio):
        return ""
    text = (
        f"The simple comparison, customers who ever joined against those who never did, shows "
        f"members churning at {ever.rate_ratio:.2f} times the non-members' monthly rate (95% CI "
        f"{ever.ci_lower:.2f} to {ever.ci_upper:.2f}). It flatters the programme twice: members "
        f"are counted as members from the day they signed up, although they had to stay long "
        f"enough to join (immortal time), and the customers who join are those who were "
        f"staying anyway (selection). Counting only the months customers were actually members "
        f"gives {split.rate_ratio:.2f} ({split.ci_lower:.2f} to {split.ci_upper:.2f}); "
    )
    lm = [(L, r) for L, r in rep.landmarks.items() if r.cox is not None]
    if lm:
        L, r = lm[0]
        text += (
            f"comparing members with similar non-members (weighted, at {L} months of tenure) "
            f"gives a hazard ratio of {r.cox.hazard_ratio:.2f} ({r.cox.ci_lower:.2f} to "
            f"{r.cox.ci_upper:.2f})."
        )
    else:
        text += "only the adjusted comparisons remove the selection."
    return text


def _findings(rep: ProgrammeReport, *, currency: str, horizon: int) -> list[str]:
    out = []
    if rep.sequential is not None:
        out += _sequential_findings(rep.sequential, currency=currency, horizon=horizon)
    else:
        # no sequential trials: the landmark effects are the retention findings
        for L, r in rep.landmarks.items():
            e = r.effects.set_index(["outcome", "method", "estimand"])
            ret_naive = e.loc[("retained", "naive", "observational contrast")]
            ret = e.loc[("retained", "aipw", "ATT")]
            out.append(
                f"Landmark design, at {L} months of tenure ({r.n:,} active customers, "
                f"{r.n_members:,} members): members' {horizon}-month retention was "
                f"{100 * ret_naive.estimate:+.1f} points higher than non-members' before "
                f"adjustment; after adjusting for prior spend, tenure, segment, value tier and "
                f"service experience the programme's estimated effect on members is "
                f"{100 * ret.estimate:+.1f} points (95% CI {100 * ret.ci_lower:+.1f} to "
                f"{100 * ret.ci_upper:+.1f})." + _gap_clause(ret_naive.estimate, ret.estimate)
            )
            if r.e_value is not None:
                out.append(f"Landmark {L}: " + e_value_sentence(r.e_value, outcome="churn"))
    if rep.naive_churn is not None and len(rep.naive_churn):
        sentence = _naive_sentence(rep)
        if sentence:
            out.append(sentence)
    hrs = [
        f"{r.cox.hazard_ratio:.2f} (95% CI {r.cox.ci_lower:.2f} to {r.cox.ci_upper:.2f}) at "
        f"{L} months of tenure"
        for L, r in rep.landmarks.items()
        if r.cox is not None
    ]
    if hrs:
        out.append(
            f"Churn hazard of members against comparable non-members in the {horizon} months "
            f"after a fixed tenure (landmark design, IP-weighted Cox): hazard ratio "
            + "; ".join(hrs)
            + ". Below 1 means members churn less; these compare being a member at that tenure, "
            "as the programme is actually used, and are a second design next to the headline."
        )
    if rep.event_study is not None:
        pa = rep.event_study.post_att
        out.append(
            f"Around enrolment, monthly spend of enrollees was {pa['estimate']:+,.1f} {currency} "
            f"(95% CI {pa['ci_lower']:+,.1f} to {pa['ci_upper']:+,.1f}) above what their own "
            f"earlier spend and the market trend predict, in months {pa['months']} after "
            f"enrolling (lift {100 * (pa['lift'] - 1):+.1f}%). Spend was already high in the "
            f"months just before joining (customers join after a spending peak), so read this "
            f"as an upper bound rather than the programme's effect."
            + _event_study_vs_trials(rep, currency=currency, horizon=horizon)
        )
    return out


# --------------------------------------------------------------------------- plots


def plot_uptake(up: pd.DataFrame, ax=None):
    """Plot monthly enrolments (bars) and the member share of active customers (line)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(8, 3.5))[1]
    ax.bar(up["month"], up["enrolments"], width=20, color="#9ecae1", label="enrolments")
    ax.set_ylabel("enrolments per month")
    ax2 = ax.twinx()
    ax2.plot(up["month"], 100 * up["member_share"], color="#08519c", label="member share")
    ax2.set_ylabel("members, % of active customers")
    ax.set_title("Programme uptake")
    ax.figure.autofmt_xdate()
    return ax


def plot_overlap(
    frame: pd.DataFrame,
    propensity: pd.Series,
    ax=None,
    *,
    trim=None,
    log: bool = False,
    labels: tuple[str, str] = ("members", "non-members"),
    xlabel: str = "estimated probability of being a member at the landmark",
):
    """Plot the propensity-score distributions of the treated and the controls.

    ``trim`` marks the trimming bounds (dashed); ``log`` puts the score on a log
    axis (rare treatments such as monthly enrolment, where most scores are near 0).
    Rows without a score (e.g. trimmed away) are left out.
    """
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    p = propensity.to_numpy(dtype=float)
    ok = np.isfinite(p)
    hi = float(p[ok].max()) if ok.any() else 1.0
    if log and ok.any():
        lo = max(float(p[ok & (p > 0)].min()), 1e-6)
        bins = np.geomspace(lo, min(1.0, 1.05 * hi), 41)
        ax.set_xscale("log")
    else:
        bins = np.linspace(0, min(1.0, 1.05 * hi), 41)  # zoom on the observed range
    for val, label, color in ((1, labels[0], "#d95f02"), (0, labels[1], "#1b9e77")):
        ax.hist(
            propensity[(frame["member"] == val).to_numpy()].dropna(),
            bins=bins,
            density=True,
            alpha=0.5,
            label=label,
            color=color,
        )
    if trim:
        for x in (trim, 1 - trim):
            if bins[0] <= x <= bins[-1]:
                ax.axvline(x, color="grey", ls="--", lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend()
    return ax


def plot_love(bal: pd.DataFrame, ax=None):
    """Love plot: |SMD| per covariate before and after weighting, with the 0.1 line."""
    import matplotlib.pyplot as plt

    b = bal.assign(before=bal["smd"].abs(), after=bal["smd_weighted"].abs()).sort_values("before")
    ax = ax or plt.subplots(figsize=(6, 0.3 * len(b) + 1.2))[1]
    y = np.arange(len(b))
    ax.scatter(b["before"], y, marker="o", color="#d95f02", label="before weighting")
    ax.scatter(b["after"], y, marker="s", color="#1b9e77", label="after weighting")
    ax.axvline(0.1, color="grey", ls="--", lw=1)
    ax.set_yticks(y, [covariate_label(i) for i in b.index])
    ax.set_xlabel("absolute standardised mean difference")
    ax.legend(loc="lower right")
    return ax


def plot_survival(sv: SurvivalContrast, ax=None):
    """Plot IP-weighted survival curves of members and non-members after the landmark."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    for g, color in (("member", "#d95f02"), ("non-member", "#1b9e77")):
        c = sv.curves[sv.curves["group"] == g]
        ax.step(c["time_months"], c["survival"], where="post", color=color, label=g)
        ax.fill_between(
            c["time_months"], c["ci_lower"], c["ci_upper"], step="post", alpha=0.2, color=color
        )
    ax.set_xlabel("months after the landmark")
    ax.set_ylabel("share still active (weighted)")
    ax.legend()
    return ax


def plot_event_study(es: EventStudy, ax=None, *, currency: str = "EUR"):
    """Plot event-study coefficients (imputation and TWFE) with 95% intervals."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(8, 3.5))[1]
    for (name, d), off, color in zip(
        es.coefficients.groupby("estimator"), (-0.1, 0.1), ("#08519c", "#bdbdbd"), strict=False
    ):
        ax.errorbar(
            d["rel"] + off,
            d["estimate"],
            yerr=[d["estimate"] - d["ci_lower"], d["ci_upper"] - d["estimate"]],
            fmt="o",
            color=color,
            label="imputation (robust)" if name == "imputation" else "two-way FE",
            capsize=2,
        )
    ax.axhline(0, color="black", lw=0.8)
    ax.axvline(-0.5, color="grey", ls=":", lw=1)
    ax.set_xlabel("months relative to the enrolment month")
    ax.set_ylabel(f"spend per month vs untreated ({currency})")
    ax.legend()
    return ax
