"""A stratified, seeded sample of customers for the models that need rows per customer.

Descriptive figures (counts, rates, trends, sums) are computed on the engine over every
customer. A few models need one row per customer, or per customer and month, in the
Python process: the loyalty study's landmark, sequential-trial and event-study frames,
the experience study's panel and churn rows. Their size grows with the number of
customers, so above ``analysis.model_max_customers`` those models are fitted on a
sample, and the report says so (:meth:`CustomerSample.sentence`).

The sample is drawn in Python from the sorted list of customer identifiers (one
column, pulled once), not by an engine's hash function, so the same seed gives the
same customers on DuckDB, Postgres and Spark. Allocation is proportional within
each stratum (the breakdown column, ``analysis.group``), with the remainders given to
the strata with the largest fractional parts, so every stratum's share of the sample
equals its share of the customers to within one customer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CustomerSample", "customer_sample", "stratified_mask"]


def stratified_mask(strata: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Return a boolean mask choosing ``k`` of ``len(strata)`` rows, stratified and seeded.

    Parameters
    ----------
    strata : array of int
        Stratum code per row (any integers; rows in a fixed order, e.g. sorted ids).
    k : int
        Rows to choose (``0 <= k <= len(strata)``).
    seed : int
        Seed of the uniform keys; the rows chosen in a stratum are those with the
        smallest keys.

    Returns
    -------
    numpy.ndarray of bool
        ``n_s * k / n`` rows of each stratum ``s`` rounded down, plus one for the
        strata with the largest remainders (ties: the lower stratum code), so the
        counts sum to ``k``.
    """
    strata = np.asarray(strata)
    n = len(strata)
    if not 0 <= k <= n:
        raise ValueError(f"cannot choose {k} of {n} rows")
    levels, s = np.unique(strata, return_inverse=True)
    sizes = np.bincount(s, minlength=len(levels))
    exact = sizes * (k / n) if n else sizes * 0.0
    quota = np.floor(exact).astype(np.int64)
    short = int(k - quota.sum())
    if short > 0:
        frac = exact - quota
        order = np.lexsort((np.arange(len(levels)), -frac))
        quota[order[:short]] += 1
    key = np.random.default_rng(seed).random(n)
    order = np.lexsort((key, s))  # by stratum, then by key
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - start[s[order]]
    return rank < quota[s]


@dataclass(frozen=True)
class CustomerSample:
    """Customers chosen for the per-customer models (see the module docstring).

    Attributes
    ----------
    ids : pyarrow.Array
        The chosen customer identifiers, sorted.
    n_customers : int
        Customers in the data.
    seed : int
    strata : str or None
        Column the allocation is proportional within (None: simple random sample).
    """

    ids: Any
    n_customers: int
    seed: int
    strata: str | None

    @property
    def n_sampled(self) -> int:
        return len(self.ids)

    @property
    def fraction(self) -> float:
        return self.n_sampled / self.n_customers if self.n_customers else 1.0

    def table(self, column: str = "customer_id"):
        """The chosen identifiers as a one-column Ibis table, for a semi-join on the engine."""
        import ibis
        import pyarrow as pa

        return ibis.memtable(pa.table({column: self.ids}))

    def contains(self, ids: Any) -> np.ndarray:
        """Boolean mask: which of ``ids`` (identifiers) are in the sample."""
        import pyarrow as pa
        import pyarrow.compute as pc

        v = ids if isinstance(ids, pa.Array | pa.ChunkedArray) else pa.array(np.asarray(ids))
        return pc.is_in(v, value_set=self.ids.cast(v.type)).to_numpy(zero_copy_only=False)

    def sentence(self, parts: str) -> str:
        """Plain words for the report, e.g. "The effect estimates use a random sample ..."."""
        how = (
            f"drawn in proportion within each {self.strata.replace('_', ' ')} group"
            if self.strata
            else "a simple random sample"
        )
        return (
            f"{parts[:1].upper()}{parts[1:]} are estimated on a random sample of "
            f"{self.n_sampled:,} of the {self.n_customers:,} customers ({how}, seed "
            f"{self.seed}), so that the models fit in memory; the other figures use every "
            "customer."
        )


def customer_sample(
    source: Any, *, max_customers: int | None, strata: str | None = None, seed: int = 0
) -> CustomerSample | None:
    """Draw the model sample of a validated source; None when every customer fits.

    Parameters
    ----------
    source : analysis.data.Source
    max_customers : int or None
        Sample size; None, or at least the number of customers: no sample.
    strata : str, optional
        Customers-table column to stratify by (ignored when absent); nulls form their
        own stratum.
    seed : int
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if max_customers is None:
        return None
    cu = source.table("customers")
    n = int(cu.count().to_pyarrow().as_py())
    if n <= max_customers:
        return None
    strata = strata if strata and strata in cu.columns else None
    cols = ["customer_id", *([strata] if strata else [])]
    t = cu.select(*cols).to_pyarrow()
    t = t.take(pc.sort_indices(t.column("customer_id")))
    ids = t.column("customer_id").combine_chunks()
    if strata:
        codes = pc.dictionary_encode(t.column(strata).combine_chunks()).indices
        s = pc.fill_null(codes, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    else:
        s = np.zeros(n, dtype=np.int64)
    del t
    mask = stratified_mask(s, int(max_customers), int(seed))
    return CustomerSample(
        ids=ids.filter(pa.array(mask)), n_customers=n, seed=int(seed), strata=strata
    )
