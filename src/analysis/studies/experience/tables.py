"""Compact, integer-keyed model tables pulled from the engine for the experience study.

Customer ids become their position in the sorted customers table, so no
string id is turned into Python objects and only the columns the study uses
are pulled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.studies.experience.frames import _period_floor

#: Panel columns the study uses (``analysis.data.derive.panel`` builds more).
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

    Same rows and values as :func:`analysis.data.derive.panel` (one row per usable
    customer and period from the period of entry to the period of the end;
    revenue, member, csat_mean, unresolved_tickets, sla_breaches, churned),
    but only the revenue sum runs on the engine; rows, membership and the
    experience counts come from the compact tables already pulled, so no
    customer-period table with string keys is joined or sorted.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from analysis.data import derive

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

    from analysis.data import derive

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
