"""Assembly of the simulated arrays into the four contract tables: :func:`generate`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.data.synth.dirt import _inject_dirt
from analysis.data.synth.population import _draw_population, _static_lp
from analysis.data.synth.simulate import SEQ_FULL_TRUTH_CUSTOMERS, _Consts, _simulate_chunk
from analysis.data.synth.truth import _sequential_effects, _truth
from analysis.data.synth.world import (
    ACQ_CHANNELS,
    CHUNK,
    PARAMS,
    PROGRAMME_TIERS,
    REASONS,
    REGIONS,
    SEGMENTS,
    TIERS,
    TOUCHPOINTS,
    TX_CHANNELS,
    SampleWorld,
    _month_starts,
    _rng,
)
from analysis.errors import ParamsError

# ---------------------------------------------------------------------------
# Assembly: arrays -> contract tables
# ---------------------------------------------------------------------------


def _ids(n: int, lo: int = 0, total: int | None = None) -> np.ndarray:
    """Return the customer ids of positions ``lo .. lo + n - 1`` (C0000001, ...).

    Seven digits up to 9,999,999 customers; beyond, as many digits as ``total`` (the
    world's size) needs, so ids still sort in customer order.
    """
    width = max(7, len(str(total if total is not None else lo + n)))
    return np.char.add("C", np.char.zfill(np.arange(lo + 1, lo + n + 1).astype(str), width))


def _str_col(
    values: np.ndarray, codes: np.ndarray | None = None, missing: np.ndarray | None = None
):
    """Return a pandas ``str`` Series from labels (optionally coded) with optional missing mask."""
    arr = (
        np.asarray(values, dtype=object)
        if codes is None
        else np.asarray(values, dtype=object)[codes]
    )
    if missing is not None:
        arr = arr.copy()
        arr[missing] = None
    return pd.Series(pd.array(arr, dtype="str"))


def _id_col(id_labels, idx: np.ndarray) -> pd.Series:
    import pyarrow as pa

    taken = id_labels.take(pa.array(idx.astype(np.int64)))
    return pd.Series(pd.array(taken, dtype="str"))


def _dates(first: np.ndarray, dim: np.ndarray, m_index: np.ndarray, frac: np.ndarray) -> np.ndarray:
    day = np.minimum(np.floor(frac * dim[m_index]).astype(np.int64), dim[m_index] - 1)
    return (first[m_index] + day).astype("datetime64[us]")


def _split_amounts(rng, counts: np.ndarray, totals: np.ndarray, shape_p: float) -> np.ndarray:
    """Split monthly totals into ``counts`` i.i.d. Gamma(p) purchases (Dirichlet shares)."""
    g = rng.gamma(shape_p, 1.0, int(counts.sum()))
    grp = np.repeat(np.arange(counts.size), counts)
    gs = np.bincount(grp, weights=g, minlength=counts.size)
    amt = np.repeat(totals / gs, counts) * g
    return np.maximum(np.round(amt, 2), 0.01)


def generate(
    n_customers: int = 20000,
    seed: int = 42,
    start: str = "2023-01-01",
    months: int = 36,
    dirty: bool = False,
) -> SampleWorld:
    """Generate the sample world with planted effects.

    Parameters
    ----------
    n_customers : int
        Customers in the data (customers who signed up before ``start`` and were still
        active at ``start``, plus customers who signed up inside the window).
    seed : int
        Seed of all randomness; same arguments give identical tables.
    start : str
        First day of the data window (YYYY-MM-DD, first of a month).
    months : int
        Length of the window in calendar months; ``as_of`` is its last day.
    dirty : bool
        Inject duplicate customers, orphan and future-dated transactions, negative
        amounts and out-of-range scores (recorded in ``truth["dirt"]``).

    Returns
    -------
    SampleWorld
        ``tables`` (customers, transactions, loyalty, experience) and ``truth``.
        Dates are datetime64 (day precision), money in currency units.
    """
    return _generate(n_customers, seed, start, months, dirty, min_months=12)


def _check_args(
    n_customers: int, start: str, months: int, min_months: int
) -> tuple[int, pd.Timestamp, int]:
    """Check the world's size and window; return (customers, start timestamp, months)."""
    if int(n_customers) < 10:
        raise ParamsError(f"synth: n_customers must be at least 10, got {n_customers}.")
    if int(months) < min_months:
        raise ParamsError(f"synth: months must be at least {min_months}, got {months}.")
    st0 = pd.Timestamp(start)
    if st0.day != 1:
        raise ParamsError(f"synth: start must be the first day of a month, got {start!r}.")
    return int(n_customers), st0, int(months)


def _generate(
    n_customers: int, seed: int, start: str, months: int, dirty: bool, *, min_months: int
) -> SampleWorld:
    """Run :func:`generate` with a chosen shortest window (the ``short`` preset uses 6)."""
    n, st0, months = _check_args(n_customers, start, months, min_months)
    K = PARAMS["acquisition"]["pre_window_months"]
    landmarks = (6, 12)

    pop = _draw_population(seed, n, st0, months)
    pop["lp"] = _static_lp(pop)
    C = _Consts(st0, months)

    first, dim = _month_starts(st0, -K - 1, months + 1)
    off = K + 1  # month m -> index m + off

    chunks = []
    for ci, lo_ in enumerate(range(0, n, CHUNK)):
        hi_ = min(lo_ + CHUNK, n)
        stc = {k: v[lo_:hi_] for k, v in pop.items()}
        res = _simulate_chunk(
            seed, ci, stc, C, months, landmarks, min(1.0, SEQ_FULL_TRUTH_CUSTOMERS / max(n, 1))
        )
        res["offset"] = lo_
        chunks.append(res)

    ids = _ids(n)
    tables, tx_counts, churn_m, enrolled = _assemble(
        pop, chunks, ids=ids, rng_out=_rng(seed, 4), first=first, dim=dim, off=off
    )
    truth = _truth(
        seed=seed,
        n=n,
        start=st0,
        months=months,
        pop=pop,
        churn_m=churn_m,
        enrolled=enrolled,
        chunks=chunks,
        tables=tables,
        tx_counts=tx_counts,
        C=C,
        landmarks=landmarks,
        dirty=dirty,
    )
    if dirty:
        tables, truth["dirt"] = _inject_dirt(tables, seed, st0, months)
    return SampleWorld(
        tables=tables, truth=truth, sequential_effects=_sequential_effects(chunks, ids)
    )


def _assemble(
    pop: dict,
    chunks: list[dict],
    *,
    ids: np.ndarray,
    rng_out: np.random.Generator,
    first: np.ndarray,
    dim: np.ndarray,
    off: int,
) -> tuple[dict, dict, np.ndarray, np.ndarray]:
    """Turn simulated customers into the four contract tables.

    ``pop`` holds the customers' static arrays, ``chunks`` the simulation results of
    consecutive chunks covering them (``offset``: the chunk's first row in ``pop``),
    ``ids`` their customer ids; ``rng_out`` draws what is decided only at output (basket
    amounts, days, margins, channels, missing labels, redeemed points). The streaming
    generator calls this once per block of customers.

    Returns
    -------
    tuple
        ``(tables, tx_counts, churn_m, enrolled)``: the four tables (rows sorted by
        customer), transaction count and amount sum, churn month (-1 if none) and
        ever-enrolled flag per customer.
    """
    import pyarrow as pa

    n = ids.size
    pp = PARAMS["purchases"]

    def cat(key):
        return np.concatenate([c[key] for c in chunks])

    churn_m, churn_f, reason = cat("churn_m"), cat("churn_f"), cat("reason")
    enrol_m, enrol_f = cat("enrol_m"), cat("enrol_f")
    leave_m, leave_f, ptier = cat("leave_m"), cat("leave_f"), cat("ptier")

    id_labels = pa.array(ids)

    # customers
    signup = _dates(first, dim, pop["s"] + off, pop["f"])
    churned = churn_m >= 0
    cdate = np.full(n, np.datetime64("NaT"), "datetime64[us]")
    cdate[churned] = _dates(first, dim, churn_m[churned] + off, churn_f[churned])
    rmiss = churned & (rng_out.random(n) < PARAMS["churn"]["churn_reason_missing_share"])
    reason_lab = np.where(churned, reason, 0)
    customers = pd.DataFrame(
        {
            "customer_id": pd.Series(pd.array(ids, dtype="str")),
            "signup_date": signup,
            "churn_date": cdate,
            "churn_reason": _str_col(REASONS, reason_lab, ~churned | rmiss),
            "segment": _str_col(SEGMENTS, pop["segment"]),
            "value_tier": _str_col(TIERS, pop["tier"]),
            "region": _str_col(
                REGIONS, pop["region"], rng_out.random(n) < PARAMS["noise"]["region_missing_share"]
            ),
            "channel": _str_col(ACQ_CHANNELS, pop["channel"]),
        }
    )

    # transactions
    parts = []
    for c in chunks:
        for kx, mm, k, tot, fs, fe in c["rec"]["tx"]:
            parts.append((kx + c["offset"], mm, k, tot, fs, fe))
    cix = np.concatenate([p[0] for p in parts])
    mm = np.concatenate([p[1] for p in parts])
    kk = np.concatenate([p[2] for p in parts])
    tot = np.concatenate([p[3] for p in parts])
    fs = np.concatenate([p[4] for p in parts])
    fe = np.concatenate([p[5] for p in parts])
    del parts
    amount = _split_amounts(rng_out, kk, tot, pp["spend_shape_p"])
    t_cix = np.repeat(cix, kk)
    t_m = np.repeat(mm, kk)
    frac = np.repeat(fs, kk) + np.repeat(fe - fs, kk) * rng_out.random(t_cix.size)
    del cix, mm, kk, tot, fs, fe
    t_date = _dates(first, dim, t_m + off, frac)
    mrate = np.array([pp["margin_rate"][s] for s in SEGMENTS])[pop["segment"][t_cix]]
    mrate = np.clip(mrate + rng_out.normal(0, pp["margin_rate_noise_sd"], t_cix.size), 0.02, 0.8)
    margin = np.round(amount * mrate, 2)
    tch = rng_out.choice(len(TX_CHANNELS), t_cix.size, p=list(pp["channel_probs"].values()))
    tmiss = rng_out.random(t_cix.size) < pp["channel_missing_share"]
    order = np.lexsort((amount, t_date, t_cix))
    transactions = pd.DataFrame(
        {
            "customer_id": _id_col(id_labels, t_cix[order]),
            "date": t_date[order],
            "amount": amount[order],
            "margin": margin[order],
            "channel": _str_col(TX_CHANNELS, tch[order], tmiss[order]),
        }
    )
    # points: 1 per currency unit while a member (enrolment date .. leaving date)
    e_date = np.full(n, np.datetime64("NaT"), "datetime64[us]")
    enrolled = enrol_m >= 0
    e_date[enrolled] = _dates(first, dim, enrol_m[enrolled] + off, enrol_f[enrolled])
    l_date = np.full(n, np.datetime64("NaT"), "datetime64[us]")
    lft = leave_m >= 0
    l_date[lft] = _dates(first, dim, leave_m[lft] + off, leave_f[lft])
    ed = e_date[t_cix]
    ld = l_date[t_cix]
    in_prog = ~np.isnat(ed) & (t_date >= ed) & (np.isnat(ld) | (t_date < ld))
    pts = np.floor(
        np.bincount(t_cix[in_prog], weights=amount[in_prog], minlength=n)
        * PARAMS["loyalty"]["points_per_currency_unit"]
    )
    tx_counts = {"n": int(t_cix.size), "sum_amount": float(amount.sum())}
    del t_cix, t_m, frac, t_date, amount, margin, tch, tmiss, order, ed, ld, in_prog, mrate

    # loyalty
    li = np.flatnonzero(enrolled)
    red = np.floor(pts[li] * rng_out.beta(2, 3, li.size))
    loyalty = pd.DataFrame(
        {
            "customer_id": pd.Series(pd.array(ids[li], dtype="str")),
            "enrolled_date": e_date[li],
            "tier": _str_col(PROGRAMME_TIERS, ptier[li]),
            "left_date": l_date[li],
            "points_earned": pts[li].astype(np.float64),
            "points_redeemed": red.astype(np.float64),
        }
    )

    # experience
    tk = [(r[0] + c["offset"],) + tuple(r[1:]) for c in chunks for r in c["rec"]["tk"]]
    sv = [(r[0] + c["offset"],) + tuple(r[1:]) for c in chunks for r in c["rec"]["sv"]]

    def col(lst, i):
        return np.concatenate([r[i] for r in lst])

    k_c, k_m, k_f, k_tp = col(tk, 0), col(tk, 1), col(tk, 2), col(tk, 3)
    s_c, s_m, s_f, s_tp = col(sv, 0), col(sv, 1), col(sv, 2), col(sv, 3)
    nk, ns = k_c.size, s_c.size
    e_cix = np.concatenate([k_c, s_c])
    e_date2 = np.concatenate(
        [_dates(first, dim, k_m + off, k_f), _dates(first, dim, s_m + off, s_f)]
    )
    kind = np.concatenate([np.zeros(nk, np.int8), np.ones(ns, np.int8)])
    order = np.lexsort((kind, e_date2, e_cix))

    def tick(vals, fill):
        return np.concatenate([np.asarray(vals, dtype=float), np.full(ns, fill)])[order]

    def nullable_bool(vals):
        a = pd.array(
            np.concatenate([vals.astype(bool), np.zeros(ns, bool)])[order], dtype="boolean"
        )
        a[kind[order] == 1] = pd.NA
        return a

    contacts = pd.array(
        np.concatenate([col(tk, 5), np.zeros(ns, np.int16)])[order].astype(np.int64), dtype="Int64"
    )
    contacts[kind[order] == 1] = pd.NA
    experience = pd.DataFrame(
        {
            "customer_id": _id_col(id_labels, e_cix[order]),
            "date": e_date2[order],
            "kind": _str_col(("ticket", "survey"), kind[order]),
            "touchpoint": _str_col(TOUCHPOINTS, np.concatenate([k_tp, s_tp])[order]),
            "compensated": nullable_bool(col(tk, 8)),
            "csat": np.concatenate([np.full(nk, np.nan), col(sv, 5)])[order],
            "nps": np.concatenate([np.full(nk, np.nan), col(sv, 4)])[order],
            "ces": np.concatenate([np.full(nk, np.nan), col(sv, 6)])[order],
            "first_contact_resolution": nullable_bool(col(tk, 4)),
            "contacts_to_resolve": contacts,
            "sla_met": nullable_bool(col(tk, 6)),
            "response_hours": tick(np.round(col(tk, 7), 1), np.nan),
        }
    )

    tables = {
        "customers": customers,
        "transactions": transactions,
        "loyalty": loyalty,
        "experience": experience,
    }
    return tables, tx_counts, churn_m, enrolled
