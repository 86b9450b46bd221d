"""Engine sums for two-way fixed-effects regressions: no row comes to Python.

The queries behind :func:`analysis.studies.fixed_effects_engine.two_way_fit`, the
customer + period regression of :func:`analysis.stats.fixed_effects.fit_fe` solved
exactly from sums:

1. :func:`estimation_rows` keeps rows with the outcome and every regressor;
   :func:`drop_singletons` drops rows alone in their customer or period until none is;
2. :func:`two_way_sums` removes each customer's means (a group-by and a join), sums the
   cross-products of those within values overall and per period, and sums each
   customer's periods as bit patterns counted per distinct pattern (for the small
   ``C' diag(1/n) C`` matrix of the period system: one row per distinct set of periods,
   bounded by the customers, not by the rows);
3. after the small solve in numpy (:mod:`analysis.stats.fixed_effects_sums`),
   :func:`residual_sums` sums each customer's scores of the two-way residuals for the
   cluster-robust meat.

Also :func:`materialized` (a temporary table, dropped afterwards), :func:`period_ordinal`
(calendar periods numbered for lags) and :func:`check_unique_keys`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from analysis.errors import DataError, Problem

__all__ = [
    "PATTERN_BITS",
    "check_unique_keys",
    "duplicate_periods_error",
    "drop_singletons",
    "estimation_rows",
    "materialized",
    "period_ordinal",
    "residual_sums",
    "two_way_sums",
]

#: Periods per pattern word: a signed 64-bit sum of distinct powers of two below 2**62 is exact.
PATTERN_BITS = 62


@contextmanager
def materialized(con, expr: ir.Table) -> Iterator[ir.Table]:
    """Compute ``expr`` once into a temporary table of the engine; drop it afterwards.

    Later queries read the table instead of recomputing the expression (a derived
    panel costs seconds per query at scale).
    """
    if getattr(con, "name", "") in ("duckdb", "postgres"):
        # ibis' own drop (and so its cache release) emits a DROP without a table name
        # with this sqlglot: create and drop by hand
        name = f"_analysis_{uuid.uuid4().hex}"
        table = con.create_table(name, expr, temp=True)
        try:
            yield table
        finally:
            cur = con.raw_sql(f'DROP TABLE IF EXISTS "{name}"')
            if con.name != "duckdb":  # DuckDB returns its connection itself: keep it open
                cur.close()
    else:
        # Spark's cache compiles the query without registering its in-memory tables
        con._run_pre_execute_hooks(expr)
        cached = expr.cache()
        try:
            yield cached
        finally:
            cached.release()


def period_ordinal(period: ir.DateValue, freq: str) -> ir.IntegerValue:
    """Number calendar periods consecutively from their start dates (month, quarter, week, day).

    The numbers of :func:`analysis.studies.experience.frames._period_ordinal`: months
    since 1970-01, quarters since 1970-Q1, weeks and days since 1970-01-01 (weeks
    counted in whole sevens of days, so a lag of one is seven days back).
    """
    if freq in ("month", "quarter"):
        months = (period.year() - 1970) * 12 + period.month() - 1
        return months if freq == "month" else months // 3
    days = period.delta(ibis.date(1970, 1, 1), unit="day")
    if freq == "week":
        return days // 7
    if freq == "day":
        return days
    raise ValueError(f"freq must be month, quarter, week or day, not {freq!r}")


def _scalar(expr) -> object:
    return expr.to_pyarrow().as_py()


def drop_singletons(con, rows: ir.Table, stack) -> tuple[ir.Table, int, int]:
    """Drop rows alone in their customer (``_c``) or period (``_t``) until none is.

    Rows that are singletons in either effect cannot be in the largest subset in
    which every level has two rows, so dropping both at once reaches the same
    subset as dropping them effect by effect. Tables made on the way are entered
    into ``stack`` (a :class:`contextlib.ExitStack`), which drops them.

    Returns
    -------
    (ibis.Table, int, int)
        The rows kept, their number and the number dropped.
    """
    n0 = n = int(_scalar(rows.count()))
    while n:
        # group-bys and semi-joins: hash aggregates, much faster than window counts
        many_c = rows.group_by("_c").aggregate(_n=rows.count())
        many_t = rows.group_by("_t").aggregate(_n=rows.count())
        kept = rows.semi_join(many_c.filter(many_c._n > 1).select("_c"), "_c").semi_join(
            many_t.filter(many_t._n > 1).select("_t"), "_t"
        )
        m = int(_scalar(kept.count()))
        if m == n:
            break
        rows = stack.enter_context(materialized(con, kept))
        n = m
    return rows, n, n0 - n


def _period_table(periods: pa.Array, columns: dict[str, np.ndarray]) -> ir.Table:
    """A small in-memory table: one row per period (its key as the engine gave it)."""
    data = {"_t": periods}
    data.update({k: pa.array(v) for k, v in columns.items()})
    return ibis.memtable(pa.table(data))


def two_way_sums(rows: ir.Table, k: int) -> dict:
    """Sum what a customer + period fixed-effects regression needs, on the engine.

    Parameters
    ----------
    rows : ibis.Table
        ``_c`` (customer), ``_t`` (period), ``_y`` and ``_x0`` .. ``_x{k-1}``
        (:func:`estimation_rows`, singletons dropped).
    k : int
        Number of regressors.

    Returns
    -------
    dict
        The fields of :class:`analysis.stats.fixed_effects_sums.TwoWaySums` except
        ``cross`` and ``singletons_dropped``; ``periods`` (the sorted period keys, an
        Arrow array) and ``patterns`` (:func:`_patterns`: each customer's set of
        periods, counted per distinct set).
    """
    xs = [f"_x{j}" for j in range(k)]
    means = rows.group_by("_c").aggregate(
        _my=rows._y.mean(), **{f"_m{j}": rows[x].mean() for j, x in enumerate(xs)}
    )
    j = rows.join(means, "_c")
    within = j.mutate(_yd=j._y - j._my, **{f"_d{m}": j[x] - j[f"_m{m}"] for m, x in enumerate(xs)})
    d = [within[f"_d{j}"] for j in range(k)]
    tot = within.aggregate(
        n=within.count(),
        g=within._c.nunique(),
        ysum=within._y.sum(),
        yy=(within._yd * within._yd).sum(),
        **{f"xy{j}": (d[j] * within._yd).sum() for j in range(k)},
        **{f"xx{j}_{m}": (d[j] * d[m]).sum() for j in range(k) for m in range(j, k)},
        **{f"v{j}": rows[x].var(how="pop") for j, x in enumerate(xs)},
    ).to_pyarrow()
    tot = {c: tot.column(c)[0].as_py() for c in tot.column_names}
    per = (
        within.group_by("_t")
        .aggregate(
            _n=within.count(),
            _by=within._yd.sum(),
            **{f"_bx{j}": d[j].sum() for j in range(k)},
        )
        .to_pyarrow()
        .sort_by("_t")
    )
    periods = per.column("_t").combine_chunks()
    n_t = len(periods)
    xx = np.zeros((k, k))
    for j in range(k):
        for m in range(j, k):
            xx[j, m] = xx[m, j] = tot[f"xx{j}_{m}"]
    n = int(tot["n"])
    return {
        "n_obs": n,
        "n_customers": int(tot["g"]),
        "outcome_sum": float(tot["ysum"]),
        "period_rows": per.column("_n").to_numpy().astype(float),
        "period_y": per.column("_by").to_numpy().astype(float),
        "period_x": np.column_stack(
            [per.column(f"_bx{j}").to_numpy().astype(float) for j in range(k)]
        ).reshape(n_t, k),
        "yy": float(tot["yy"]),
        "xy": np.array([tot[f"xy{j}"] for j in range(k)], dtype=float),
        "xx": xx,
        "xx_total": np.array([tot[f"v{j}"] * n for j in range(k)], dtype=float),
        "periods": periods,
        "patterns": _patterns(rows, periods),
    }


def _patterns(rows: ir.Table, periods: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each customer's set of periods as bits (one int64 word per :data:`PATTERN_BITS`
    periods), counted per distinct set: ``(masks (P, W), rows per customer (P,),
    customers (P,))``, the input of :func:`analysis.stats.fixed_effects_sums.pattern_cross`."""
    n_t = len(periods)
    words = max(1, -(-n_t // PATTERN_BITS))
    idx = np.arange(n_t, dtype=np.int64)
    bits = {
        f"_w{w}": np.where(idx // PATTERN_BITS == w, np.int64(1) << (idx % PATTERN_BITS), 0)
        for w in range(words)
    }
    j = rows.join(_period_table(periods, bits), "_t")
    per_c = j.group_by("_c").aggregate(
        _rows=j.count(), **{f"_w{w}": j[f"_w{w}"].sum() for w in range(words)}
    )
    pat = (
        per_c.group_by([*(f"_w{w}" for w in range(words)), "_rows"])
        .aggregate(_customers=per_c.count())
        .to_pyarrow()
    )
    masks = np.column_stack([pat.column(f"_w{w}").to_numpy() for w in range(words)])
    return masks, pat.column("_rows").to_numpy(), pat.column("_customers").to_numpy()


def residual_sums(
    rows: ir.Table,
    periods: pa.Array,
    *,
    gamma_y: np.ndarray,
    gamma_x: np.ndarray,
    beta: np.ndarray,
    n: int,
) -> tuple[np.ndarray, float, float]:
    """Sum the customers' scores of the two-way residuals on the engine.

    Parameters
    ----------
    rows : ibis.Table
        The rows of :func:`two_way_sums`.
    periods : pyarrow.Array
        Its sorted period keys.
    gamma_y, gamma_x, beta : numpy.ndarray
        Period effects of the within outcome ``(T,)`` and regressors ``(T, k)``, and
        the coefficients ``(k,)`` (:func:`analysis.stats.fixed_effects_sums.solve_two_way`).
    n : int
        Rows.

    Returns
    -------
    (numpy.ndarray, float, float)
        The meat ``sum_g s_g s_g'`` ``(k, k)`` with ``s_g`` the customer's sum of
        ``X~ e``, ``e'e``, and the outcome residual's sum of squares about its mean.
    """
    k = len(beta)
    cols = {"_gy": gamma_y}
    cols.update({f"_gx{j}": gamma_x[:, j] for j in range(k)})
    cols.update({f"_b{j}": np.full(len(periods), beta[j]) for j in range(k)})
    j = rows.join(_period_table(periods, cols), "_t")
    # each customer's means of the values and of their periods' effects (a group-by and a
    # join: faster than window means)
    vals = {"y": (j._y, j._gy), **{f"x{m}": (j[f"_x{m}"], j[f"_gx{m}"]) for m in range(k)}}
    means = j.group_by("_c").aggregate(
        **{f"_mv_{name}": v.mean() for name, (v, _) in vals.items()},
        **{f"_mg_{name}": g.mean() for name, (_, g) in vals.items()},
    )
    j = j.join(means, "_c")

    def two_way(name: str, value: str, effect: str) -> ir.FloatingValue:
        # within value minus the period effect's within value
        return (j[value] - j[f"_mv_{name}"]) - (j[effect] - j[f"_mg_{name}"])

    r = j.mutate(
        _ry=two_way("y", "_y", "_gy"),
        **{f"_rx{m}": two_way(f"x{m}", f"_x{m}", f"_gx{m}") for m in range(k)},
    )
    e = r._ry
    for m in range(k):
        e = e - r[f"_b{m}"] * r[f"_rx{m}"]
    r = r.mutate(_e=e)
    per_c = r.group_by("_c").aggregate(
        _ee=(r._e * r._e).sum(),
        _ys=r._ry.sum(),
        _yy=(r._ry * r._ry).sum(),
        **{f"_s{m}": (r[f"_rx{m}"] * r._e).sum() for m in range(k)},
    )
    s = [per_c[f"_s{m}"] for m in range(k)]
    out = per_c.aggregate(
        ee=per_c._ee.sum(),
        ys=per_c._ys.sum(),
        yy=per_c._yy.sum(),
        **{f"m{a}_{b}": (s[a] * s[b]).sum() for a in range(k) for b in range(a, k)},
    ).to_pyarrow()
    out = {c: out.column(c)[0].as_py() for c in out.column_names}
    meat = np.zeros((k, k))
    for a in range(k):
        for b in range(a, k):
            meat[a, b] = meat[b, a] = out[f"m{a}_{b}"]
    # the outcome residual sums to ~0 over rows; its spread about that mean all the same
    return meat, float(out["ee"]), float(out["yy"]) - float(out["ys"]) ** 2 / max(n, 1)


def estimation_rows(
    rows: ir.Table, *, outcome: str, regressors: Sequence[str], customer: str, period: str
) -> ir.Table:
    """Return the rows with the outcome and every regressor observed, renamed for the sums.

    ``_c`` (customer), ``_t`` (period), ``_y`` (outcome) and ``_x0`` .. (regressors),
    as float64; rows with a null or NaN in any of them are left out.
    """
    keep = rows[outcome].notnull()
    for c in [outcome, *regressors]:
        col = rows[c]
        keep &= col.notnull()
        if col.type().is_floating():
            keep &= ~col.isnan()
    return rows.filter(keep).select(
        _c=rows[customer],
        _t=rows[period],
        _y=rows[outcome].cast("float64"),
        **{f"_x{j}": rows[x].cast("float64") for j, x in enumerate(regressors)},
    )


def check_unique_keys(rows: ir.Table, *, customer: str, period: str, table: str = "panel") -> None:
    """Raise a :class:`DataError` when ``rows`` has more than one row per customer and period."""
    n = int(_scalar(rows.count()))
    distinct = int(_scalar(rows.select(customer, period).distinct().count()))
    if n != distinct:
        raise duplicate_periods_error(table, period, n - distinct)


def duplicate_periods_error(table: str, period: str, n_rows: int = 0) -> DataError:
    """Return the error of a panel with more than one row per customer and period."""
    return DataError(
        "The panel has more than one row per customer and period.",
        [
            Problem(
                table,
                period,
                "duplicate_key",
                "duplicated customer-period rows",
                n_rows=n_rows,
                fix="aggregate the panel to one row per customer and period",
            )
        ],
    )
