"""Contractual churn risk: features as of a cutoff and a time-split scikit-learn model.

A churn date or an inactivity rule defines the label; the model is trained at one
cutoff and tested at a later one, with AUC, calibration, gains and permutation
importance (:mod:`analysis.stats.classification`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from analysis.errors import AnalysisError, Problem
from analysis.stats.btyd.units import _MONTH_DAYS, _as_day, _day_numbers
from analysis.stats.classification import (
    _AUCRanks,
    _permutation_importance,
    calibration_slope_intercept,
    calibration_table,
    gains_table,
)


def churn_risk_features(
    customers: pd.DataFrame,
    transactions: pd.DataFrame,
    *,
    cutoff,
    horizon_months: float = 3.0,
    definition: str = "contractual",
    customer_id: str = "customer_id",
    signup: str = "signup_date",
    churn: str = "churn_date",
    date: str = "date",
    amount: str = "amount",
    attributes: tuple[str, ...] | list[str] = ("segment",),
    extra: pd.DataFrame | None = None,
    as_of=None,
    experience: pd.DataFrame | None = None,
    loyalty: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Build churn-risk features as of ``cutoff`` and the label "churned in the next k months".

    Only information dated on or before ``cutoff`` enters the features, so a model
    trained at one cutoff can be tested at a later one.

    Parameters
    ----------
    customers, transactions : pandas.DataFrame
        Contract tables.
    cutoff : date-like
        Feature date. Customers included: signed up on or before it and, for
        ``definition="contractual"``, not churned by it; for ``"inactivity"``, with at
        least one purchase on or before it.
    horizon_months : float
        Label window (cutoff, cutoff + horizon], months of 30.4375 days.
    definition : {"contractual", "inactivity"}
        Label: churn date inside the window (contractual), or no purchase inside the
        window (inactivity; for data without churn dates).
    customer_id, signup, churn, date, amount : str
        Column names.
    attributes : sequence of str
        Customer attribute columns used as categorical features (missing ones skipped).
    extra : pandas.DataFrame, optional
        More features (one row per customer, keyed by ``customer_id``), already
        computed as of ``cutoff`` by the caller.
    as_of : date-like, optional
        Last day the data covers; labels whose window ends after it are NaN.
        Default: the latest transaction, signup or churn date.
    experience : pandas.DataFrame, optional
        Contract experience table; adds ``tickets_90d``, ``unresolved_90d``,
        ``sla_breaches_90d``, ``csat_mean_365d`` and ``nps_category`` (latest answered
        NPS: detractor / passive / promoter / none; several answers on that day: their
        mean).
    loyalty : pandas.DataFrame, optional
        Contract loyalty table; adds ``member`` (0/1 at the cutoff) and ``loyalty_tier``.

    Returns
    -------
    pandas.DataFrame
        One row per eligible customer: ``customer_id``, numeric features
        (``tenure_days``, ``recency_days``, ``purchases_90d``, ``purchases_365d``,
        ``spend_90d``, ``spend_365d``, ``spend_prev_90d``, ``mean_amount``,
        ``purchases_total``), the attribute columns, any extra columns, and
        ``churned`` (0/1; NaN where the label window runs past the data).
        ``attrs`` record cutoff, horizon and definition.
    """
    if definition not in ("contractual", "inactivity"):
        raise AnalysisError(f"definition={definition!r} must be 'contractual' or 'inactivity'.")
    tdays = _day_numbers(transactions[date], table="transactions", column=date)
    coder = _CustomerCoder.from_ids(transactions[customer_id], customers[customer_id])
    amt = pd.to_numeric(transactions[amount], errors="coerce").fillna(0.0).to_numpy(float)
    bins = _TxBins.from_events(
        coder.codes_of(transactions[customer_id]),
        tdays,
        amt,
        len(coder.ids),
        [_cutoff_days(cutoff, horizon_months)],
    )
    return _churn_features_coded(
        coder.code_frame(customers, customer_id),
        coder,
        bins,
        cutoff=cutoff,
        horizon_months=horizon_months,
        definition=definition,
        customer_id=customer_id,
        signup=signup,
        churn=churn,
        attributes=attributes,
        extra=extra,
        as_of=as_of,
        experience=None if experience is None else coder.code_frame(experience, customer_id),
        loyalty=None if loyalty is None else coder.code_frame(loyalty, customer_id),
    )


def _cutoff_days(cutoff, horizon_months: float) -> tuple[int, int]:
    """Return (cutoff, end of the label window) as day numbers."""
    cut = _as_day(cutoff, "cutoff")
    return cut, cut + int(round(horizon_months * _MONTH_DAYS))


class _CustomerCoder:
    """Integer codes for customer ids.

    Built from a data source (:meth:`from_source`), a code is the customer's position
    in identifier order, the code of :meth:`analysis.data.Source.customer_keys`, so
    engine results pulled with ``_code`` need no lookup at all and the ids stay one
    Arrow array (no Python string per customer). Built from pandas rows
    (:meth:`from_ids`): transaction customers first (in order of first purchase row),
    then customers without transactions (in table order).

    Grouping and joining on integer codes is many times faster and leaner than on
    string ids; ids are put back only in the outputs.
    """

    def __init__(self, ids):
        self.ids = ids  # customer id of each code: object array, or an Arrow array
        self._index = None

    @classmethod
    def from_source(cls, source) -> _CustomerCoder:
        """The codes of ``source.customer_keys()``: code k is the k-th id in sorted order."""
        return cls(source.sorted_customer_ids())

    @classmethod
    def from_ids(cls, tx_ids, customer_ids) -> _CustomerCoder:
        """Build from the transaction rows' and the customers table's ids (pandas or numpy)."""
        _, tx_uniques = pd.factorize(np.asarray(tx_ids, dtype=object), sort=False)
        tx_uniques = np.asarray(tx_uniques, dtype=object)
        cust = np.asarray(customer_ids, dtype=object)
        pos = pd.Index(tx_uniques).get_indexer(cust)
        extra = pd.unique(cust[pos < 0])
        return cls(np.concatenate([tx_uniques, np.asarray(extra, dtype=object)]))

    @classmethod
    def from_arrow(cls, tx_ids, customer_ids) -> tuple[_CustomerCoder, np.ndarray]:
        """Build from an Arrow column of transaction ids; return (coder, code of each row).

        Arrow's hash-based ``unique`` keeps the order of first appearance, as
        ``pandas.factorize(sort=False)`` does, and never converts the ids to Python
        objects row by row.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        uniq = pc.unique(tx_ids)
        codes = pc.index_in(tx_ids, value_set=uniq)
        codes = codes.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
        cust = pa.array(np.asarray(customer_ids, dtype=object), type=uniq.type)
        known = pc.is_valid(pc.index_in(cust, value_set=uniq)).to_numpy(zero_copy_only=False)
        extra = pd.unique(np.asarray(customer_ids, dtype=object)[~known])
        ids = np.concatenate(
            [uniq.to_numpy(zero_copy_only=False).astype(object), np.asarray(extra, dtype=object)]
        )
        return cls(ids), codes

    @property
    def arrow(self) -> bool:
        return not isinstance(self.ids, np.ndarray)

    @property
    def index(self) -> pd.Index:
        if self._index is None:
            self._index = pd.Index(self.ids)
        return self._index

    def codes_of(self, values) -> np.ndarray:
        """Return the int64 code of each id (-1 for ids the coder does not know)."""
        if self.arrow:  # a hash lookup in Arrow: no Python object per id
            import pyarrow as pa
            import pyarrow.compute as pc

            if isinstance(values, pd.Series | pd.Index):
                values = values.array
            if isinstance(values, pa.ChunkedArray):
                values = values.combine_chunks()
            if not isinstance(values, pa.Array):
                values = pa.array(values, from_pandas=True)
            vals = pc.cast(values, self.ids.type)
            pos = pc.fill_null(pc.index_in(vals, value_set=self.ids), -1)
            return pos.to_numpy(zero_copy_only=False).astype(np.int64)
        return self.index.get_indexer(np.asarray(values, dtype=object)).astype(np.int64)

    def codes_in(self, table) -> np.ndarray:
        """Return the int64 code of each row of an Arrow ``table``: its ``_code`` column
        (coded on the engine; the coder must come from the same source), else its
        ``customer_id`` looked up (-1 for unknown ids)."""
        if "_code" in table.column_names:
            return table.column("_code").to_numpy(zero_copy_only=False).astype(np.int64)
        return self.codes_of(table.column("customer_id").to_numpy(zero_copy_only=False))

    def ids_of(self, codes):
        """Return the ids of ``codes`` (an array pandas can hold: Arrow-backed text when
        the coder's ids are Arrow)."""
        codes = np.asarray(codes, dtype=np.int64)
        if self.arrow:
            import pyarrow as pa

            return self.ids.take(pa.array(codes)).to_pandas().array
        return self.ids[codes]

    def code_frame(self, frame: pd.DataFrame, customer_id: str) -> pd.DataFrame:
        """Return ``frame`` with its id column replaced by int64 codes."""
        out = frame.copy()
        out[customer_id] = self.codes_of(frame[customer_id])
        return out


def _rows_kept(ok: np.ndarray):
    """A function taking the rows of an array where ``ok`` (of customers known to the
    coder); the array itself, not a copy, where every row is kept."""
    if bool(ok.all()):
        return lambda values: values
    return lambda values: values[ok]


class _TxBins:
    """Per-customer purchase counts, amounts and last purchase day between fixed days.

    The churn-risk features of several cutoffs need counts and sums over windows
    ending at each cutoff; one pass over the transactions into bins bounded by all
    window edges gives every window as a sum of a few bins.
    """

    def __init__(self, edges, count, amount, last_in, max_day, rows=None):
        self.edges = np.asarray(edges, dtype=np.int64)
        self.count = count  # (row, bin) transaction rows
        self.amount = amount  # (row, bin) total amount
        self.last_in = last_in  # (row, bin) latest day, its dtype's min where none
        self.max_day = max_day
        # customer code of each row (sorted), or None: row k is code k, every customer
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)

    def rows_of(self, codes) -> np.ndarray:
        """Row of each customer code in the arrays (every code must be binned)."""
        codes = np.asarray(codes, dtype=np.int64)
        if self.rows is None:
            return codes
        pos = np.searchsorted(self.rows, codes)
        if codes.size and (
            pos.max() >= self.rows.size or not np.array_equal(self.rows[pos], codes)
        ):
            raise AnalysisError("internal: customers missing from the transaction bins.")
        return pos

    def subset(self, codes) -> _TxBins:
        """The bins of the customer codes ``codes`` only (every one must be binned); self
        where they are every row already."""
        codes = np.unique(np.asarray(codes, dtype=np.int64))
        if codes.size == self.count.shape[0]:
            return self
        at = self.rows_of(codes)
        return _TxBins(
            self.edges, self.count[at], self.amount[at], self.last_in[at], self.max_day, codes
        )

    @staticmethod
    def edges_of(cutoffs) -> np.ndarray:
        """The bin edges (day numbers) that the feature windows of ``cutoffs`` need."""
        edges = set()
        for cut, end in cutoffs:
            edges |= {cut - 365, cut - 180, cut - 90, cut, end}
        return np.array(sorted(edges), dtype=np.int64)

    @classmethod
    def from_events(cls, codes, days, amount, n_codes: int, cutoffs) -> _TxBins:
        """Bin transaction rows (customer code, day number, amount) in one pass."""
        edges = cls.edges_of(cutoffs)
        nb = edges.size + 1
        ok = codes >= 0
        if not ok.all():
            codes, days, amount = codes[ok], days[ok], amount[ok]
        # bin k holds days in (edges[k-1], edges[k]]; the last bin days after every edge
        key = codes.astype(np.int64) * nb + np.searchsorted(edges, days, side="left")
        size = n_codes * nb
        count = np.bincount(key, minlength=size).reshape(n_codes, nb)
        amt = np.bincount(key, weights=amount, minlength=size).reshape(n_codes, nb)
        last = np.full(size, np.iinfo(np.int64).min)
        np.maximum.at(last, key, days)
        max_day = int(days.max()) if days.size else None
        return cls(edges, count, amt, last.reshape(n_codes, nb), max_day)

    @classmethod
    def from_table(cls, table, coder: _CustomerCoder, cutoffs, rows=None) -> _TxBins:
        """Build from the engine's per-(customer, bin) totals
        (:func:`analysis.data.customer_stats.window_bins` over :meth:`edges_of`).

        ``rows``: the customer codes to keep (others are dropped), or None for every
        customer of ``coder``.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        edges = cls.edges_of(cutoffs)
        nb = edges.size + 1
        code = coder.codes_in(table)
        if rows is not None:
            rows = np.unique(np.asarray(rows, dtype=np.int64))
            pos = np.searchsorted(rows, code)
            hit = pos < rows.size
            hit[hit] = rows[pos[hit]] == code[hit]
            code = np.where(hit, pos, -1)
        n_rows = len(coder.ids) if rows is None else rows.size
        size = n_rows * nb
        # int32 positions where they fit (ten million customers x 6 bins do): half the memory
        idx = np.int32 if size < np.iinfo(np.int32).max else np.int64
        code = code.astype(idx, copy=False)
        b = table.column("bin").to_numpy(zero_copy_only=False).astype(idx, copy=False)
        last = pc.cast(table.column("last"), pa.int32()).to_numpy(zero_copy_only=False)
        kept = _rows_kept(code >= 0)
        key = kept(code) * idx(nb) + kept(b)
        del code, b
        # counts and day numbers as int32 (a third less memory: 10M customers x 12 bins)
        count = np.zeros(size, np.int32)
        count[key] = kept(table.column("purchases").to_numpy(zero_copy_only=False))
        amt = np.zeros(size)
        amt[key] = kept(table.column("amount").to_numpy(zero_copy_only=False))
        last_in = np.full(size, np.iinfo(np.int32).min, dtype=np.int32)
        last_in[key] = kept(last)
        max_day = int(last.max()) if last.size else None
        return cls(
            edges,
            count.reshape(n_rows, nb),
            amt.reshape(n_rows, nb),
            last_in.reshape(n_rows, nb),
            max_day,
            rows,
        )

    def covers(self, cut: int, end: int) -> bool:
        return bool(np.isin([cut - 365, cut - 180, cut - 90, cut, end], self.edges).all())

    def _upto(self, day) -> int:
        """Number of bins holding days <= ``day`` (an edge)."""
        return int(np.searchsorted(self.edges, day)) + 1

    def window(self, lo, hi) -> tuple[np.ndarray, np.ndarray]:
        """Return (purchases, amount) per customer code with lo < day <= hi (lo None: no bound)."""
        a = 0 if lo is None else self._upto(lo)
        b = self._upto(hi)
        return self.count[:, a:b].sum(axis=1), self.amount[:, a:b].sum(axis=1)

    def last(self, hi) -> np.ndarray:
        """Return each code's last purchase day on or before ``hi`` (int64 min if none)."""
        m = self.last_in[:, : self._upto(hi)].max(axis=1)
        out = m.astype(np.int64)
        out[m == np.iinfo(m.dtype).min] = np.iinfo(np.int64).min
        return out


def _churn_features_coded(
    customers: pd.DataFrame,
    coder: _CustomerCoder,
    tx: _TxBins,
    *,
    cutoff,
    horizon_months: float,
    definition: str,
    customer_id: str,
    signup: str,
    churn: str,
    attributes,
    extra,
    as_of,
    experience,
    loyalty,
    keep_codes: bool = False,
) -> pd.DataFrame:
    """:func:`churn_risk_features` on integer-coded tables (id columns hold codes of ``coder``).

    With ``keep_codes`` the result's id column keeps the codes (the value study maps
    them itself) instead of the customer ids.

    Transactions come binned by customer code (:class:`_TxBins`, built with this
    cutoff and label end among its cutoffs).
    """
    cut, end = _cutoff_days(cutoff, horizon_months)
    # no .copy(): a column selection and a row filter are new frames already (copy on write)
    cust = customers[
        [c for c in [customer_id, signup, churn, *attributes] if c in customers.columns]
    ]
    sdays = _day_numbers(cust[signup], table="customers", column=signup)
    cdays = None
    if definition == "contractual":
        if churn not in cust.columns:
            raise AnalysisError(
                "The contractual churn-risk label needs a churn date column.",
                [
                    Problem(
                        "customers",
                        churn,
                        "missing_column",
                        "no churn dates",
                        fix="use definition='inactivity'",
                    )
                ],
            )
        cd = pd.to_datetime(cust[churn])
        cdays = np.where(
            cd.isna(),
            np.iinfo(np.int64).max,
            np.asarray(cd, dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64),
        )
    # Per-customer counts and sums in the feature windows, from binned totals.
    if tx is None or not tx.covers(cut, end):
        raise AnalysisError(f"internal: transaction bins do not cover the cutoff {cutoff}.")
    # the windows of these customers only: a chunk of half a million customers scored
    # against the bins of ten million summed every window of everyone (about 1 GB)
    tx = tx.subset(cust[customer_id].to_numpy())
    n_past, spend_total = tx.window(None, cut)
    last = tx.last(cut)
    p90, s90 = tx.window(cut - 90, cut)
    p365, s365 = tx.window(cut - 365, cut)
    _, sp90 = tx.window(cut - 180, cut - 90)
    sums = {
        "purchases_90d": p90.astype(float),
        "purchases_365d": p365.astype(float),
        "spend_90d": s90,
        "spend_365d": s365,
        "spend_prev_90d": sp90,
        "purchases_total": n_past.astype(float),
    }
    elig = sdays <= cut
    if cdays is not None:
        elig &= cdays > cut
    base = cust.loc[elig]
    base["tenure_days"] = (cut - sdays[elig]).astype(float)
    bc = base[customer_id].to_numpy()
    bi = tx.rows_of(bc)  # rows of the bins
    has = n_past[bi] > 0
    if definition == "inactivity":
        base, bc, bi, has = base.loc[has], bc[has], bi[has], has[has]
    base["recency_days"] = np.where(
        has, (cut - last[bi]).astype(float), base["tenure_days"].to_numpy()
    )
    for name, v in sums.items():
        base[name] = v[bi]
    with np.errstate(invalid="ignore", divide="ignore"):
        base["mean_amount"] = np.where(has, spend_total[bi] / n_past[bi], np.nan)
    # Label
    if definition == "contractual":
        cd_e = cdays[elig]
        label = ((cd_e > cut) & (cd_e <= end)).astype(float)
        base["churned"] = label
    else:
        bought = tx.window(cut, end)[0] > 0
        base["churned"] = (~bought[bi]).astype(float)
    if as_of is not None:
        tmax = _as_day(as_of, "as_of")
    else:
        cands = [tx.max_day if tx.max_day is not None else cut, int(sdays.max())]
        if cdays is not None and (cdays < np.iinfo(np.int64).max).any():
            cands.append(int(cdays[cdays < np.iinfo(np.int64).max].max()))
        tmax = max(cands)
    if end > tmax:
        base["churned"] = np.nan  # the label window is not fully observed
    base = base.drop(columns=[c for c in (signup, churn) if c in base.columns])
    if experience is not None:
        if not hasattr(experience, "features"):
            experience = _ExperienceArrays(experience, customer_id)
        base = base.reset_index(drop=True)
        bc = base[customer_id].to_numpy()
        for c, v in experience.features(cut, len(coder.ids)).items():
            base[c] = v[bc]
    if loyalty is not None:
        # members are unique per customer: a lookup by code, not a merge copying every row
        lf = _loyalty_features(loyalty, cut, customer_id)
        pos = pd.Index(lf[customer_id]).get_indexer(base[customer_id].to_numpy())
        found = pos >= 0
        tier = np.full(len(base), "none", dtype=object)
        tier[found] = lf["loyalty_tier"].to_numpy(dtype=object)[pos[found]]
        base = base.reset_index(drop=True)
        base["member"] = found.astype(float)
        base["loyalty_tier"] = pd.array(tier, dtype="str")
    if not keep_codes:
        base[customer_id] = coder.ids_of(base[customer_id].to_numpy())
    if extra is not None:
        base = base.merge(extra, on=customer_id, how="left", validate="one_to_one")
    base = base.reset_index(drop=True)
    base.attrs.update(
        {
            "cutoff": str(np.datetime64(cut, "D")),
            "horizon_months": horizon_months,
            "definition": definition,
        }
    )
    return base


class _ExperienceArrays:
    """Service events as arrays by customer code, for features at several cutoffs.

    Built once from the contract experience table (ids already coded); each
    :meth:`features` call is a few passes of ``numpy.bincount`` instead of a
    pandas group-by over millions of rows.
    """

    def __init__(self, experience: pd.DataFrame, customer_id: str):
        e = experience
        n = len(e)
        self.code = e[customer_id].to_numpy(dtype=np.int64)
        self.day = _day_numbers(e["date"], table="experience", column="date")
        self.ticket = (e["kind"] == "ticket").fillna(False).to_numpy(dtype=bool)

        def false_flag(col):
            if col not in e.columns:
                return np.zeros(n, bool)
            return e[col].eq(False).fillna(False).to_numpy(dtype=bool)

        self.unresolved = false_flag("first_contact_resolution")
        self.breach = false_flag("sla_met")
        self.csat = (
            pd.to_numeric(e["csat"], errors="coerce").to_numpy(dtype=float)
            if "csat" in e.columns
            else None
        )
        self.nps = (
            pd.to_numeric(e["nps"], errors="coerce").to_numpy(dtype=float)
            if "nps" in e.columns
            else None
        )
        ok = self.code >= 0  # rows of customers the study does not know
        if not ok.all():
            for a in ("code", "day", "ticket", "unresolved", "breach", "csat", "nps"):
                if getattr(self, a) is not None:
                    setattr(self, a, getattr(self, a)[ok])

    def features(self, cut: int, n_codes: int) -> dict:
        """Return per-code arrays: ``tickets_90d``, ``unresolved_90d``, ``sla_breaches_90d``
        (counts of tickets in the 90 days to ``cut``), ``csat_mean_365d`` (mean CSAT over
        the 365 days, NaN without answers) and ``nps_category`` (latest answered NPS on
        or before ``cut``, the mean of that day's answers: detractor / passive / promoter,
        "none" without answers)."""
        past = self.day <= cut
        code = self.code[past]
        age = cut - self.day[past]
        ticket = self.ticket[past] & (age < 90)
        out = {
            "tickets_90d": np.bincount(code[ticket], minlength=n_codes).astype(float),
            "unresolved_90d": np.bincount(
                code[ticket & self.unresolved[past]], minlength=n_codes
            ).astype(float),
            "sla_breaches_90d": np.bincount(
                code[ticket & self.breach[past]], minlength=n_codes
            ).astype(float),
        }
        if self.csat is not None:
            cs = self.csat[past]
            use = (age < 365) & ~np.isnan(cs)
            total = np.bincount(code[use], weights=cs[use], minlength=n_codes)
            count = np.bincount(code[use], minlength=n_codes)
            with np.errstate(invalid="ignore", divide="ignore"):
                out["csat_mean_365d"] = np.where(count > 0, total / count, np.nan)
        else:
            out["csat_mean_365d"] = np.full(n_codes, np.nan)
        last = np.full(n_codes, np.nan)
        if self.nps is not None:
            nps = self.nps[past]
            rows = np.flatnonzero(~np.isnan(nps))
            if rows.size:
                # The latest day with an answer; several answers that day: their mean.
                day = (cut - age)[rows]
                latest = np.full(n_codes, np.iinfo(np.int64).min)
                np.maximum.at(latest, code[rows], day)
                on_last = day == latest[code[rows]]
                c = code[rows][on_last]
                total = np.bincount(c, weights=nps[rows][on_last], minlength=n_codes)
                count = np.bincount(c, minlength=n_codes)
                has = count > 0
                last[has] = total[has] / count[has]
        out["nps_category"] = _nps_category(last)
        return out


_NPS_LEVELS = ["detractor", "none", "passive", "promoter"]  # text order, as the encoder sorts


def _nps_category(score: np.ndarray) -> pd.Categorical:
    """Detractor (0-6), passive (7-8), promoter (9-10) or "none" (no answer) per score.

    A categorical: one byte per customer, where text held a Python string each (about
    650 MB at ten million customers, for every cutoff).
    """
    v = np.asarray(score, dtype=float)
    code = np.select(
        [(v > -0.5) & (v <= 6.5), (v > 6.5) & (v <= 8.5), (v > 8.5) & (v <= 10.5)],
        [0, 2, 3],
        default=1,
    ).astype(np.int8)
    return pd.Categorical.from_codes(code, categories=_NPS_LEVELS)


_FEATURE_BATCH_ROWS = 1_000_000  # rows of the engine's per-customer result per batch


class _EngineExperience:
    """The features of :class:`_ExperienceArrays`, aggregated on the engine per cutoff
    (:func:`analysis.data.customer_stats.experience_features`): only one row per
    customer reaches Python."""

    def __init__(self, source, coder: _CustomerCoder, codes=None):
        self.source = source
        self.coder = coder
        self.codes = codes  # customer codes to query (the model sample), None for everyone

    def features(self, cut: int, n_codes: int) -> dict:
        from analysis.data import customer_stats

        expr = customer_stats.experience_features(
            self.source,
            cutoff=np.datetime64(int(cut), "D").item(),
            coded=self.coder.arrow,
            codes=self.codes if self.coder.arrow else None,
        )
        counts = ("tickets_90d", "unresolved_90d", "sla_breaches_90d", "csat_n_365d")
        feats = {c: np.zeros(n_codes) for c in counts}
        csat = np.full(n_codes, np.nan)  # the sum, then the mean
        nps = np.full(n_codes, np.nan)
        # filled batch by batch: the engine's result (a row per customer with service
        # events, ten million at 10M customers) is never held whole beside the arrays
        with warnings.catch_warnings():  # Ibis calls DuckDB's older name for its reader
            warnings.filterwarnings("ignore", "fetch_record_batch", DeprecationWarning)
            for batch in expr.to_pyarrow_batches(chunk_size=_FEATURE_BATCH_ROWS):
                code = self.coder.codes_in(batch)
                kept = _rows_kept(code >= 0)
                code = kept(code)
                for name, out in (*feats.items(), ("csat_sum_365d", csat), ("nps_last", nps)):
                    out[code] = kept(batch.column(name).to_numpy(zero_copy_only=False))
        n = feats.pop("csat_n_365d")
        with np.errstate(invalid="ignore", divide="ignore"):
            np.divide(csat, n, out=csat, where=n > 0)
        csat[n <= 0] = np.nan
        del n
        feats["csat_mean_365d"] = csat
        feats["nps_category"] = _nps_category(nps)
        return feats


def _loyalty_features(loyalty: pd.DataFrame, cut: int, customer_id: str) -> pd.DataFrame:
    """Membership at day ``cut`` (0/1) and the programme tier ("none" for non-members)."""
    enr = _day_numbers(loyalty["enrolled_date"], table="loyalty", column="enrolled_date")
    left = pd.to_datetime(loyalty["left_date"]) if "left_date" in loyalty.columns else None
    if left is not None:
        ld = np.where(
            left.isna(),
            np.iinfo(np.int64).max,
            np.asarray(left, dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64),
        )
    else:
        ld = np.full(enr.size, np.iinfo(np.int64).max)
    member = (enr <= cut) & (ld > cut)
    m = loyalty.loc[
        member, [customer_id] + (["tier"] if "tier" in loyalty.columns else [])
    ].drop_duplicates(customer_id)
    out = pd.DataFrame({customer_id: m[customer_id].to_numpy(), "member": 1.0})
    out["loyalty_tier"] = m["tier"].astype(str).to_numpy() if "tier" in m.columns else "member"
    return out


def churn_risk_cutoffs(as_of, *, horizon_months: float = 3.0) -> dict:
    """Return the cutoffs of the time-based split: train, test and scoring dates.

    Train features at as_of - 2k months (label window ends at the test cutoff),
    test features at as_of - k months (label window ends at as_of), scoring at as_of.
    """
    a = pd.Timestamp(as_of).normalize()
    k = pd.Timedelta(days=round(horizon_months * _MONTH_DAYS))
    return {"train": (a - 2 * k).date(), "test": (a - k).date(), "score": a.date()}


@dataclass
class ChurnRiskResult:
    """A fitted churn-risk model and its out-of-time evaluation.

    Attributes
    ----------
    model : sklearn.pipeline.Pipeline
        Preprocessing and classifier, fitted on the train cutoff.
    features : list of str
        Feature columns used.
    test_predictions : pandas.DataFrame
        ``customer_id``, ``p_churn`` and ``churned`` at the test cutoff.
    auc, auc_ci : float, (float, float)
        Test ROC AUC and a bootstrap interval.
    calibration : pandas.DataFrame
        Binned mean predicted vs observed churn (see :func:`calibration_table`).
    calibration_slope, calibration_intercept : float
        Logistic recalibration of the test outcomes on logit(p): slope (ideal 1) and
        calibration-in-the-large intercept (ideal 0), with ``calibration_ci``.
    gains : pandas.DataFrame
        Lift/gains by decile of predicted risk (see :func:`gains_table`).
    importance : pandas.DataFrame
        Permutation importance (drop in test AUC) per feature, with its spread.
    base_rate_train, base_rate_test, brier : float
    """

    model: object
    features: list[str]
    test_predictions: pd.DataFrame
    auc: float
    auc_ci: tuple[float, float]
    calibration: pd.DataFrame
    calibration_slope: float
    calibration_intercept: float
    calibration_ci: dict
    gains: pd.DataFrame
    importance: pd.DataFrame
    base_rate_train: float
    base_rate_test: float
    brier: float
    n_train: int
    n_test: int
    categories: dict = field(default_factory=dict)

    def predict(self, frame: pd.DataFrame, *, chunk_rows: int = 250_000) -> pd.Series:
        """Return churn probabilities for a feature frame built by :func:`churn_risk_features`.

        Scored ``chunk_rows`` customers at a time: the encoded design matrix of ten
        million customers would take gigabytes, a chunk of it tens of megabytes (each
        row's probability depends on that row only, so the result is the same).
        """
        p = np.empty(len(frame))
        for start in range(0, len(frame), chunk_rows):
            part = frame.iloc[start : start + chunk_rows]
            X = _code_categories(part[self.features], self.categories)
            p[start : start + len(part)] = self.model.predict_proba(X)[:, 1]
        return pd.Series(p, index=frame.index, name="p_churn")


def _category_levels(values: pd.Series) -> tuple[list, bool]:
    """Return (sorted distinct text values, whether any value is missing).

    The order is the one ``OneHotEncoder`` gives text categories (Python string
    order, missing last), so integer codes in this order yield the same columns.
    """
    text = values.astype(str)
    missing = bool(text.isna().any())
    return sorted(pd.unique(text.dropna().to_numpy(dtype=object))), missing


def _code_categories(frame: pd.DataFrame, categories: dict) -> pd.DataFrame:
    """Replace each categorical column by integer codes of its training levels.

    One-hot encoding integer codes is many times faster than encoding Python
    strings and gives the same design matrix. Levels unseen in training (and
    missing values when training had none) get -1, which the encoder ignores, as
    it ignores unknown text.
    """
    if not categories:
        return frame
    out = frame.copy()
    for c, (levels, has_missing) in categories.items():
        text = frame[c].astype(str)
        codes = pd.Index(levels, dtype=object).get_indexer(text.to_numpy(dtype=object))
        codes = codes.astype(np.int64)
        if has_missing:
            codes[text.isna().to_numpy()] = len(levels)
        out[c] = codes
    return out


def _feature_columns(frame: pd.DataFrame, label: str, customer_id: str):
    cols = [c for c in frame.columns if c not in (label, customer_id)]
    cat = [
        c
        for c in cols
        if not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])
    ]
    num = [c for c in cols if c not in cat]
    return num, cat


def fit_churn_risk(
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    label: str = "churned",
    customer_id: str = "customer_id",
    model: str = "logistic",
    n_bins: int = 10,
    n_repeats: int = 3,
    n_boot: int = 200,
    seed: int = 0,
) -> ChurnRiskResult:
    """Fit a churn-risk classifier at one cutoff and evaluate it at a later one.

    Parameters
    ----------
    train, test : pandas.DataFrame
        Outputs of :func:`churn_risk_features` at an earlier (train) and a later
        (test) cutoff; rows with a missing label are dropped.
    label, customer_id : str
        Column names.
    model : {"logistic", "gbm"}
        L2-penalised logistic regression on standardised features (default), its
        penalty chosen by 5-fold cross-validated log-loss on the training cutoff
        (churn signals are often weak, and an unpenalised or boosted model then gives
        over-confident risks out of time), or histogram gradient boosting.
    n_bins : int
        Bins of the calibration table (equal-count).
    n_repeats : int
        Permutation-importance repeats.
    n_boot : int
        Bootstrap resamples for the AUC interval.
    seed : int
        Seed for the classifier, the permutations and the bootstrap.

    Returns
    -------
    ChurnRiskResult
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import brier_score_loss, roc_auc_score
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    tr = train.dropna(subset=[label])
    te = test.dropna(subset=[label])
    for name, fr in (("train", tr), ("test", te)):
        if len(fr) < 50 or fr[label].nunique() < 2:
            raise AnalysisError(
                f"Churn-risk {name} set has {len(fr):,} labelled customers and {fr[label].nunique()} outcome value(s).",
                [
                    Problem(
                        "customers",
                        label,
                        "too_few_labels",
                        "need both churners and stayers",
                        n_rows=len(fr),
                        fix="use a shorter risk horizon or a longer data window",
                    )
                ],
            )
    num, cat = _feature_columns(tr, label, customer_id)
    feats = num + cat
    num_pipe = (
        make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
        if model == "logistic"
        else SimpleImputer(strategy="median", keep_empty_features=True)
    )
    pre = ColumnTransformer(
        [
            ("num", num_pipe, num),
            (
                "cat",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False, min_frequency=10),
                cat,
            ),
        ]
    )
    if model == "gbm":
        clf = HistGradientBoostingClassifier(
            learning_rate=0.05,
            max_iter=200,
            max_leaf_nodes=15,
            min_samples_leaf=40,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=seed,
        )
    elif model == "logistic":
        clf = LogisticRegressionCV(
            Cs=np.logspace(-2, 1, 7).tolist(),
            cv=5,
            scoring="neg_log_loss",
            max_iter=2000,
            l1_ratios=(0.0,),
            use_legacy_attributes=False,
        )
    else:
        raise AnalysisError(f"model={model!r} must be 'gbm' or 'logistic'.")
    pipe = Pipeline([("pre", pre), ("clf", clf)])
    levels = {c: _category_levels(tr[c]) for c in cat}
    Xtr = _code_categories(tr[feats], levels)
    Xte = _code_categories(te[feats], levels)
    ytr = tr[label].astype(int).to_numpy()
    yte = te[label].astype(int).to_numpy()
    # One OpenMP thread: on a shared machine, thread oversubscription makes boosting
    # tens of times slower; the data here are small.
    with threadpool_limits(1):
        pipe.fit(Xtr, ytr)
        p = pipe.predict_proba(Xte)[:, 1]
        imp = _permutation_importance(pipe, Xte, yte, feats, n_repeats=n_repeats, seed=seed)
    auc = float(roc_auc_score(yte, p))
    rng = np.random.default_rng(seed)
    boots = []
    n = yte.size
    ranks = _AUCRanks(p, yte)
    with threadpool_limits(1):
        for _ in range(n_boot):
            i = rng.integers(0, n, n)
            # The resample as case weights: no sort per resample.
            a = ranks.auc(np.bincount(i, minlength=n))
            if np.isfinite(a):  # both outcomes in the resample
                boots.append(a)
    auc_ci = tuple(float(v) for v in np.quantile(boots, [0.025, 0.975]))
    slope, intercept, cal_ci = calibration_slope_intercept(yte, p)
    importance = imp
    preds = pd.DataFrame({"customer_id": te[customer_id].to_numpy(), "p_churn": p, "churned": yte})
    return ChurnRiskResult(
        model=pipe,
        features=feats,
        test_predictions=preds,
        auc=auc,
        auc_ci=auc_ci,
        calibration=calibration_table(yte, p, n_bins=n_bins),
        calibration_slope=slope,
        calibration_intercept=intercept,
        calibration_ci=cal_ci,
        gains=gains_table(yte, p),
        importance=importance,
        base_rate_train=float(ytr.mean()),
        base_rate_test=float(yte.mean()),
        brier=float(brier_score_loss(yte, p)),
        n_train=int(ytr.size),
        n_test=int(yte.size),
        categories=levels,
    )
