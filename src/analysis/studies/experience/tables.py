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


class EngineExperience:
    """The experience table's sufficient statistics, built on the study's engine.

    What reaches Python is counts and sums (per period, group, driver outcome
    or touchpoint), each customer's latest NPS answer before a date, and one
    row per customer and period with events (:mod:`analysis.data.experience_stats`);
    customer ids arrive as the integer codes of :func:`_study_frames`.
    """

    def __init__(self, source: Any, keys: Any) -> None:
        self.source, self.keys = source, keys
        self._periods: dict[str, tuple[pd.DataFrame, list[str]]] = {}
        self._sums: dict[tuple, pd.DataFrame] = {}
        self._touchpoints: list[str] | None = None

    def _coded(self, expr: Any) -> pd.DataFrame:
        k = self.keys
        j = expr.join(k, expr.customer_id == k._cid)
        cols = {c: j[c] for c in expr.columns if c != "customer_id"}
        df = j.select(customer_id=j._code, **cols).to_pandas()
        df["customer_id"] = df["customer_id"].astype(np.int32)
        return df

    def sums(self, *, period: str | None = None, by: str | None = None) -> pd.DataFrame:
        """Counts and sums overall, per period and/or per customer group."""
        from analysis.data import experience_stats

        key = (period, by)
        if key not in self._sums:
            self._sums[key] = experience_stats.experience_sums(
                self.source, period=period, by=by
            ).to_pandas()
        return self._sums[key]

    def overall(self) -> pd.Series:
        """The one row of :meth:`sums` over every experience row."""
        return self.sums().iloc[0]

    def drivers(self, window_days: int) -> pd.DataFrame:
        from analysis.data import experience_stats

        return experience_stats.driver_sums(self.source, window_days=window_days).to_pandas()

    def latest_nps(self, before: Any) -> pd.Series:
        """Each customer's latest NPS answer before ``before``, indexed by customer code."""
        from analysis.data import experience_stats

        df = self._coded(experience_stats.latest_nps(self.source, before=before))
        return pd.Series(df["nps"].to_numpy(dtype=float), index=df["customer_id"].to_numpy())

    def touchpoints(self) -> pd.DataFrame:
        from analysis.data import experience_stats

        return experience_stats.touchpoint_sums(self.source).to_pandas()

    def customer_periods(self, key: str) -> tuple[pd.DataFrame, list[str]]:
        """Rows per customer code and ``key`` (day or period), and the touchpoint names
        of their ``tp<i>`` columns."""
        from analysis.data import experience_stats

        if key not in self._periods:
            if self._touchpoints is None:
                self._touchpoints = experience_stats.failed_touchpoints(self.source)
            tps = self._touchpoints
            expr = experience_stats.customer_periods(self.source, key=key, touchpoints=tps)
            self._periods[key] = (self._coded(expr), tps)
        return self._periods[key]

    def forget_periods(self) -> None:
        """Drop the rows per customer and period kept for the panel and the churn rows."""
        self._periods.clear()


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

    # ex: experience counts per customer code and period (EngineExperience.customer_periods)
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

    def placed(col: str, dtype: Any) -> np.ndarray:
        out = np.zeros(n, dtype=dtype)
        out[j[inside]] = ex[col].to_numpy(dtype=dtype)[inside]
        return out

    c_n, c_sum = placed("csat_all_n", np.int64), placed("csat_all_sum", float)
    with np.errstate(invalid="ignore", divide="ignore"):
        csat_mean = np.where(c_n > 0, c_sum / np.maximum(c_n, 1), np.nan)

    return pd.DataFrame(
        {
            "customer_id": code.astype(np.int32),
            "period": _units_to_dates(u, period),
            "revenue": revenue,
            "member": member,
            "csat_mean": csat_mean,
            "unresolved_tickets": placed("unresolved", np.int32),
            "sla_breaches": placed("sla_breaches", np.int32),
            "churned": churned,
        },
        copy=False,
    )


def _study_frames(
    study: Any, *, lifetime_columns: Sequence[str], group: str | None
) -> tuple[pd.DataFrame, EngineExperience, pd.DataFrame, pd.DataFrame]:
    """Pull lifetimes, panel and customers with integer customer keys, and the experience
    table's engine statistics (:class:`EngineExperience`).

    Customer ids become their position in the sorted customers table
    (``customer_id`` then holds ``int32`` codes), so no string id is turned
    into Python objects, and only the columns the study uses are pulled. The
    rows and their order are those of ``study.lifetimes()``, ``study.panel()``
    and ``study.table("customers")``. No experience row reaches Python. With a
    model sample (:meth:`analysis.data.StudyData.model_sample`) the lifetimes, the
    panel and every per-customer pull of :class:`EngineExperience` hold the sampled
    customers only (their codes unchanged); its sums still cover every customer.
    """
    import ibis
    import pyarrow as pa
    import pyarrow.compute as pc

    from analysis.data import derive

    src = study.source
    ids = src.sorted_customer_ids()

    lt_expr = derive.usable_lifetimes(study.lifetimes_expr())
    sample = study.model_sample()
    if sample is not None:  # the models' rows: the sampled customers only
        lt_expr = lt_expr.semi_join(sample.table(), "customer_id")
    cols = list(dict.fromkeys(["customer_id", *lifetime_columns]))
    lt = _with_codes(lt_expr.select(*[c for c in cols if c in lt_expr.columns]).to_pandas(), ids)
    lt = lt.sort_values("customer_id", kind="stable").reset_index(drop=True)
    cu = src.table("customers")
    cust = _with_codes(
        cu.select("customer_id", *([group] if group and group in cu.columns else [])).to_pandas(),
        ids,
    )
    codes = pa.array(np.arange(len(ids), dtype=np.int32))
    if sample is not None:  # every per-customer pull joins these keys: sampled customers only
        chosen = pa.array(sample.contains(ids))
        keys = ibis.memtable(pa.table({"_cid": ids.filter(chosen), "_code": codes.filter(chosen)}))
    else:
        keys = ibis.memtable(pa.table({"_cid": ids, "_code": codes}))
    exp = EngineExperience(src, keys)
    period = study.params.analysis.period
    if period in ("month", "week", "quarter"):
        per, _ = exp.customer_periods(period)
        return lt, exp, _study_panel(study, lt, per, ids, keys, period), cust
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
    return lt, exp, pd.DataFrame(pn, copy=False), cust
