"""Monthly activity per customer: what the loyalty frames need from the event tables.

Every loyalty frame (landmark, sequential trials, event study) works in calendar
months, so the transactions and the service events enter it only through sums per
customer and month. :func:`monthly_purchases` and :func:`monthly_service` compute
them from the contract tables in pandas; :mod:`analysis.data.customer_stats` builds the
same tables on the engine (``monthly_purchases``, ``monthly_service``), so that at scale
only one row per customer and active month reaches Python, however many events there
are.

The tables carry ``attrs["monthly_activity"] = True``; the frames summarise raw tables
themselves and take summaries as they are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.errors import DataError, Problem

FLAG = "monthly_activity"

#: Columns of a monthly purchases table, after ``customer_id`` and ``date`` (month start).
PURCHASE_COLUMNS = ("amount", "purchases")
#: Columns of a monthly service table, after ``customer_id`` and ``date`` (month start).
SERVICE_COLUMNS = (
    "tickets",
    "unresolved",
    "sla_breaches",
    "nps_n",
    "nps_sum",
    "csat_n",
    "csat_sum",
    "nps_last",
)


def is_monthly(frame) -> bool:
    """True if ``frame`` is already a monthly activity table."""
    return frame is not None and bool(getattr(frame, "attrs", {}).get(FLAG))


def mark(frame: pd.DataFrame) -> pd.DataFrame:
    """Flag ``frame`` as a monthly activity table (e.g. one pulled from the engine)."""
    frame.attrs[FLAG] = True
    return frame


def _require(df: pd.DataFrame, table: str, columns) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            f"{table} lacks column(s) {missing}.",
            [
                Problem(table, c, "missing_column", "column not found", fix=f"add {c!r}")
                for c in missing
            ],
        )


def _month_start(dates) -> np.ndarray:
    d = pd.to_datetime(pd.Series(dates)).to_numpy()
    return d.astype("datetime64[M]").astype("datetime64[ns]")


def monthly_purchases(transactions: pd.DataFrame) -> pd.DataFrame:
    """Return purchases per customer and calendar month.

    Parameters
    ----------
    transactions : pandas.DataFrame
        ``customer_id``, ``date``, ``amount`` (one row per purchase), or a table this
        function already returned (returned as it is).

    Returns
    -------
    pandas.DataFrame
        One row per customer and month with a purchase: ``customer_id``, ``date`` (first
        day of the month), ``amount`` (their total, currency) and ``purchases`` (rows).
        Rows without a customer or a date are left out.
    """
    if is_monthly(transactions):
        return transactions
    _require(transactions, "transactions", ["customer_id", "date", "amount"])
    f = pd.DataFrame(
        {
            "customer_id": transactions["customer_id"].to_numpy(),
            "date": _month_start(transactions["date"]),
            "amount": pd.to_numeric(transactions["amount"], errors="coerce").to_numpy(float),
        }
    )
    f = f[f["customer_id"].notna() & f["date"].notna()]
    out = f.groupby(["customer_id", "date"], sort=True).agg(
        amount=("amount", "sum"), purchases=("amount", "size")
    )
    out = out.reset_index()
    out["purchases"] = out["purchases"].astype(np.int64)
    return mark(out)


def _false(ex: pd.DataFrame, col: str) -> np.ndarray:
    if col not in ex:
        return np.zeros(len(ex), bool)
    return (pd.array(ex[col], dtype="boolean") == False).fillna(False).to_numpy(bool)  # noqa: E712


def monthly_service(experience: pd.DataFrame) -> pd.DataFrame:
    """Return service events per customer and calendar month.

    Parameters
    ----------
    experience : pandas.DataFrame
        Contract experience table (``customer_id``, ``date``, ``kind``; ``nps``,
        ``csat``, ``first_contact_resolution``, ``sla_met`` where present), or a table
        this function already returned (returned as it is).

    Returns
    -------
    pandas.DataFrame
        One row per customer and month with an event: ``customer_id``, ``date`` (first
        day of the month), ``tickets``, ``unresolved`` (tickets whose first contact did
        not resolve them), ``sla_breaches`` (tickets that missed the SLA), ``nps_n`` and
        ``nps_sum`` (NPS answers and their total), ``csat_n`` and ``csat_sum``, and
        ``nps_last``: the answer on the month's latest day with an NPS answer (the mean
        where that day has several; NaN without answers).
    """
    if is_monthly(experience):
        return experience
    _require(experience, "experience", ["customer_id", "date"])
    ex = experience
    n = len(ex)
    day = pd.to_datetime(ex["date"]).to_numpy().astype("datetime64[D]")
    ticket = (
        (ex["kind"] == "ticket").fillna(False).to_numpy(bool) if "kind" in ex else np.zeros(n, bool)
    )

    def score(col):
        if col not in ex:
            return np.full(n, np.nan)
        return pd.to_numeric(ex[col], errors="coerce").to_numpy(float)

    nps, csat = score("nps"), score("csat")
    f = pd.DataFrame(
        {
            "customer_id": ex["customer_id"].to_numpy(),
            "date": day.astype("datetime64[M]").astype("datetime64[ns]"),
            "day": day,
            "tickets": ticket.astype(np.int64),
            "unresolved": (ticket & _false(ex, "first_contact_resolution")).astype(np.int64),
            "sla_breaches": (ticket & _false(ex, "sla_met")).astype(np.int64),
            "nps_n": (~np.isnan(nps)).astype(np.int64),
            "nps_sum": np.nan_to_num(nps),
            "csat_n": (~np.isnan(csat)).astype(np.int64),
            "csat_sum": np.nan_to_num(csat),
            "nps": nps,
        }
    )
    f = f[f["customer_id"].notna() & f["date"].notna()]
    keys = ["customer_id", "date"]
    sums = ["tickets", "unresolved", "sla_breaches", "nps_n", "nps_sum", "csat_n", "csat_sum"]
    out = f.groupby(keys, sort=True)[sums].sum()
    a = f[f["nps"].notna()]
    latest = a.groupby(keys)["day"].transform("max")
    last = a[a["day"] == latest].groupby(keys)["nps"].mean().rename("nps_last")
    out = out.join(last).reset_index()
    return mark(out)


def study_tables(study) -> dict:
    """Return the tables :func:`analysis.studies.loyalty.programme_report` needs, from a
    loaded study, with customer ids as integer codes (the study only links rows).

    ``customers`` and ``loyalty`` (one row per customer or membership) come as pandas
    tables. ``transactions`` and ``experience`` stay on the engine: Ibis tables of
    monthly activity (:func:`analysis.data.customer_stats.monthly_purchases` and
    ``monthly_service``), from which the loyalty frames are built on the engine
    (:mod:`analysis.data.month_windows`), so only the frames' rows reach Python, never
    the events. When the study has a model sample
    (:meth:`analysis.data.StudyData.model_sample`), those two hold only the sampled
    customers: pass :func:`model_customers` to ``programme_report``, which restricts its
    models to them.
    """
    from analysis.data import customer_stats

    out = {
        name: study.table(name, id_codes=True)
        for name in ("customers", "loyalty")
        if study.has(name)
    }
    built = {
        "transactions": customer_stats.monthly_purchases,
        "experience": customer_stats.monthly_service,
    }
    sample = study.model_sample()
    for name, build in built.items():
        if study.has(name):
            expr = build(study.source)
            if sample is not None:  # only the model sample's customers use these tables
                expr = expr.semi_join(sample.table(), "customer_id")
            out[name] = study.coded(expr)
    return out


def model_customers(study) -> np.ndarray | None:
    """Integer codes (as in :func:`study_tables`) of the study's model sample; None: all."""
    sample = study.model_sample()
    if sample is None:
        return None
    codes = study.coded(sample.table()).to_pyarrow().column("customer_id")
    return np.sort(codes.to_numpy(zero_copy_only=False).astype(np.int32))
