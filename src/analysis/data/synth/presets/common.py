"""Helpers shared by the business-shape presets: calendar arithmetic, intake, service events.

Dates are numpy ``datetime64[D]`` inside the simulators and ``datetime64[us]`` in the
tables (as in the sample world). Money is in the data's currency.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.data.synth.assemble import _id_col, _ids, _str_col  # noqa: F401 - re-exported
from analysis.errors import ParamsError

DAYS_PER_MONTH = 30.4375
DAYS_PER_WEEK = 7.0


def rng(seed: int, *stream: int) -> np.random.Generator:
    """Return the generator of one named stream of a preset (streams never overlap)."""
    return np.random.default_rng([int(seed), 7_000, *[int(s) for s in stream]])


def r6(x, nd: int = 6):
    """Round a finite number for truth.json (None for missing or non-finite)."""
    if x is None:
        return None
    x = float(x)
    return round(x, nd) if math.isfinite(x) else None


def window(start: str, months: int, *, min_months: int = 6) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Return (window start, as-of date) of a ``months``-long window; check the arguments."""
    st0 = pd.Timestamp(start)
    if st0.day != 1:
        raise ParamsError(f"synth: start must be the first day of a month, got {start!r}.")
    if int(months) < min_months:
        raise ParamsError(f"synth: months must be at least {min_months}, got {months}.")
    as_of = st0 + pd.DateOffset(months=int(months)) - pd.Timedelta(days=1)
    return st0, as_of


def day(ts: pd.Timestamp) -> np.datetime64:
    """Return a timestamp as ``datetime64[D]``."""
    return np.datetime64(ts.strftime("%Y-%m-%d"), "D")


def month_starts(start: pd.Timestamp, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Return first days (datetime64[D]) and lengths in days of months ``lo..hi-1`` from ``start``."""
    m0 = np.datetime64(start.strftime("%Y-%m"), "M")
    ms = m0 + np.arange(lo, hi)
    first = ms.astype("datetime64[D]")
    return first, ((ms + 1).astype("datetime64[D]") - first).astype(np.int64)


def add_months(dates: np.ndarray, k) -> np.ndarray:
    """Return ``dates`` plus ``k`` calendar months, the day clipped to the month's length.

    Like ``pandas.DateOffset(months=k)``: 31 January plus one month is 28 (or 29)
    February, plus two months is 31 March (counted from the original date).
    """
    d = np.asarray(dates, dtype="datetime64[D]")
    mon = d.astype("datetime64[M]")
    dom = (d - mon.astype("datetime64[D]")).astype(np.int64)
    target = mon + np.asarray(k, dtype=np.int64).astype("timedelta64[M]")
    first = target.astype("datetime64[D]")
    dim = ((target + 1).astype("datetime64[D]") - first).astype(np.int64)
    return first + np.minimum(dom, dim - 1)


def months_between(a: np.ndarray, b: np.datetime64) -> np.ndarray:
    """Return the largest ``k >= 0`` with ``add_months(a, k) <= b`` (whole months from a to b)."""
    a = np.asarray(a, dtype="datetime64[D]")
    k = (b.astype("datetime64[M]") - a.astype("datetime64[M]")).astype(np.int64)
    k = np.where(add_months(a, k) > b, k - 1, k)
    return np.maximum(k, 0)


def intake_months(
    g: np.random.Generator,
    n: int,
    lo: int,
    hi: int,
    start: pd.Timestamp,
    *,
    trend_per_year: float,
    seasonality: float,
    peak_month: int,
) -> np.ndarray:
    """Draw signup months in ``lo..hi-1`` (0 = window start) for ``n`` customers.

    Monthly intake grows by ``trend_per_year`` on the log scale per year and peaks in
    calendar month ``peak_month`` with relative amplitude ``seasonality``.
    """
    m = np.arange(lo, hi)
    cal = (start.month - 1 + m) % 12 + 1
    w = np.exp(trend_per_year * m / 12.0) * (
        1 + seasonality * np.cos(2 * np.pi * (cal - peak_month) / 12)
    )
    return g.choice(m, n, p=w / w.sum()).astype(np.int64)


def dates_in_months(g: np.random.Generator, months: np.ndarray, start: pd.Timestamp) -> np.ndarray:
    """Return a uniformly drawn day inside each month offset of ``months`` (datetime64[D])."""
    lo = int(months.min()) if months.size else 0
    first, dim = month_starts(start, lo, int(months.max()) + 1 if months.size else 1)
    i = months - lo
    return first[i] + np.floor(g.random(months.size) * dim[i]).astype(np.int64)


def allocate(n: int, shares: dict[str, float], fixed: dict[str, int] | None = None) -> np.ndarray:
    """Return per-level counts summing to ``n``: fixed counts first, the rest by shares.

    Largest-remainder rounding, so the sizes are the same for every seed.
    """
    fixed = dict(fixed or {})
    rest = n - sum(fixed.values())
    if rest < len(shares):
        fixed = {}
        rest = n
    w = np.array(list(shares.values()), float)
    raw = rest * w / w.sum()
    cnt = np.floor(raw).astype(np.int64)
    cnt[np.argsort(-(raw - cnt), kind="stable")[: rest - int(cnt.sum())]] += 1
    return np.concatenate([cnt, np.array(list(fixed.values()), np.int64)])


def levels(shares: dict[str, float], fixed: dict[str, int] | None = None) -> list[str]:
    """Return the level names in the order :func:`allocate` counts them."""
    return list(shares) + list(fixed or {})


def dt_us(d: np.ndarray) -> np.ndarray:
    """Return ``datetime64[D]`` values as the tables' ``datetime64[us]``."""
    return np.asarray(d, dtype="datetime64[D]").astype("datetime64[us]")


# ---------------------------------------------------------------------------
# Service events (tickets and surveys) on a customer-period panel
# ---------------------------------------------------------------------------


def service_events(
    g: np.random.Generator,
    *,
    cix: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    k: np.ndarray,
    tprop: np.ndarray,
    sat: np.ndarray,
    cfg: dict,
) -> dict[str, np.ndarray]:
    """Draw tickets and survey answers on a panel of customer-periods.

    Parameters
    ----------
    g : numpy.random.Generator
    cix : numpy.ndarray
        Customer index of each panel row.
    lo, hi : numpy.ndarray
        First day and the day after the last day of the period (datetime64[D]), already
        clipped to the customer's active days inside the data window.
    k : numpy.ndarray
        Periods since signup (0 = the signup period); the touchpoint mix shifts after
        ``cfg["early_periods"]``.
    tprop, sat : numpy.ndarray
        Per-customer ticket propensity (mean 1) and latent satisfaction (standard scale).
    cfg : dict
        ``ticket_prob`` per period (0: no tickets), ``touchpoints``, ``probs_early``,
        ``probs_later``, ``fcr_prob``, ``response_hours_median``, ``response_hours_log_sd``,
        ``sla_hours``, ``compensation_prob_given_failure``,
        ``survey_prob_after_ticket``, ``survey_prob_per_period``, ``early_periods``.

    Returns
    -------
    dict of str to numpy.ndarray
        One entry per experience row: ``cix``, ``date`` (datetime64[D]), ``kind``
        (0 ticket, 1 survey), ``tp`` (touchpoint code), ticket fields ``fcr``,
        ``contacts``, ``sla``, ``resp``, ``comp`` and survey fields ``nps``, ``csat``,
        ``ces`` (NaN where not asked or not answered).
    """
    n = cix.size
    span = np.maximum((hi - lo).astype(np.int64), 1)
    early = k < cfg["early_periods"]
    ce = np.cumsum(cfg["probs_early"])
    cl = np.cumsum(cfg["probs_later"])
    ntp = len(cfg["touchpoints"])

    def touchpoint(u):
        cum = np.where(early[:, None], ce[None, :], cl[None, :])
        return (u[:, None] > cum).sum(axis=1).clip(0, ntp - 1)

    p_t = np.minimum(cfg["ticket_prob"] * tprop[cix] * np.where(early, 1.5, 1.0), 0.9)
    ticket = g.random(n) < p_t
    tp = touchpoint(g.random(n))
    fcr = g.random(n) < np.asarray(cfg["fcr_prob"])[tp]
    resp = np.round(
        np.exp(
            np.log(np.asarray(cfg["response_hours_median"], float)[tp])
            + cfg["response_hours_log_sd"] * g.standard_normal(n)
        ),
        1,
    )
    sla = resp <= cfg["sla_hours"]
    comp = (~fcr | ~sla) & (g.random(n) < cfg["compensation_prob_given_failure"])
    contacts = np.where(fcr, 1, 2 + np.floor(-np.log(g.random(n)) / 1.2)).astype(np.int64)
    t_day = lo + np.floor(g.random(n) * span).astype(np.int64)
    # a survey after a ticket (same period, on or after the ticket) or a relationship survey
    post = ticket & (g.random(n) < cfg["survey_prob_after_ticket"])
    rel = g.random(n) < cfg["survey_prob_per_period"]
    survey = post | rel
    s_day = np.where(
        post,
        t_day + np.floor(g.random(n) * (hi - t_day).astype(np.int64) * 0.3).astype(np.int64),
        lo + np.floor(g.random(n) * span).astype(np.int64),
    )
    s_tp = np.where(post, tp, touchpoint(g.random(n)))
    zs = sat[cix] + np.where(post, -0.9 * ~fcr - 0.6 * ~sla + 0.4 * comp, 0.0)
    zs = zs + 0.5 * g.standard_normal(n)
    nps = np.clip(np.rint(8.0 + 1.9 * zs), 0, 10)
    csat = np.clip(np.rint(4.0 + 0.9 * (0.8 * zs + 0.5 * g.standard_normal(n))), 1, 5)
    ces = np.clip(np.rint(5.3 + 1.2 * (0.7 * zs + 0.7 * g.standard_normal(n))), 1, 7)
    miss = cfg.get("item_missing_prob", {"nps": 0.05, "csat": 0.1, "ces": 0.2})
    nps = np.where(g.random(n) < miss["nps"], np.nan, nps)
    csat = np.where(g.random(n) < miss["csat"], np.nan, csat)
    ces = np.where(g.random(n) < miss["ces"], np.nan, ces)
    ti, si = np.flatnonzero(ticket), np.flatnonzero(survey)
    nan_t = np.full(ti.size, np.nan)
    return {
        "cix": np.concatenate([cix[ti], cix[si]]),
        "date": np.concatenate([t_day[ti], s_day[si]]),
        "kind": np.concatenate([np.zeros(ti.size, np.int8), np.ones(si.size, np.int8)]),
        "tp": np.concatenate([tp[ti], s_tp[si]]),
        "fcr": np.concatenate([fcr[ti], np.zeros(si.size, bool)]),
        "contacts": np.concatenate([contacts[ti], np.zeros(si.size, np.int64)]),
        "sla": np.concatenate([sla[ti], np.zeros(si.size, bool)]),
        "resp": np.concatenate([resp[ti], np.full(si.size, np.nan)]),
        "comp": np.concatenate([comp[ti], np.zeros(si.size, bool)]),
        "nps": np.concatenate([nan_t, nps[si]]),
        "csat": np.concatenate([nan_t, csat[si]]),
        "ces": np.concatenate([nan_t, ces[si]]),
    }


def experience_table(ev: dict, ids: np.ndarray, touchpoints, *, tickets: bool) -> pd.DataFrame:
    """Return the contract ``experience`` table from :func:`service_events` rows.

    Rows sorted by customer, date and kind. ``tickets=False`` keeps only survey rows and
    leaves out the ticket-only columns (a surveys-only table, as the contract allows).
    """
    keep = np.ones(ev["cix"].size, bool) if tickets else ev["kind"] == 1
    e = {k: v[keep] for k, v in ev.items()}
    order = np.lexsort((e["kind"], e["date"], e["cix"]))
    e = {k: v[order] for k, v in e.items()}
    is_survey = e["kind"] == 1
    import pyarrow as pa

    id_labels = pa.array(ids)
    out = {
        "customer_id": _id_col(id_labels, e["cix"]),
        "date": dt_us(e["date"]),
        "kind": _str_col(("ticket", "survey"), e["kind"]),
        "touchpoint": _str_col(tuple(touchpoints), e["tp"]),
    }
    if tickets:

        def nullable(v):
            a = pd.array(v.astype(bool), dtype="boolean")
            a[is_survey] = pd.NA
            return a

        contacts = pd.array(e["contacts"].astype(np.int64), dtype="Int64")
        contacts[is_survey] = pd.NA
        out["compensated"] = nullable(e["comp"])
    out["csat"] = e["csat"].astype(float)
    out["nps"] = e["nps"].astype(float)
    out["ces"] = e["ces"].astype(float)
    if tickets:
        out["first_contact_resolution"] = nullable(e["fcr"])
        out["contacts_to_resolve"] = contacts
        out["sla_met"] = nullable(e["sla"])
        out["response_hours"] = e["resp"].astype(float)
    return pd.DataFrame(out)


def panel(
    first_day: np.ndarray, end_excl: np.ndarray, win_lo: np.datetime64, n_periods: np.ndarray
):
    """Return a customer-month panel: (cix, k, lo, hi) of each active month in the window.

    Month ``k`` of customer ``i`` runs from ``add_months(first_day[i], k)`` to the day
    before ``add_months(first_day[i], k + 1)``, clipped to ``[win_lo, end_excl[i])``;
    months that are empty after clipping are dropped. ``n_periods`` bounds ``k``.
    """
    cix = np.repeat(np.arange(first_day.size), n_periods)
    k = np.arange(cix.size) - np.repeat(np.cumsum(n_periods) - n_periods, n_periods)
    lo = np.maximum(add_months(first_day[cix], k), win_lo)
    hi = np.minimum(add_months(first_day[cix], k + 1), end_excl[cix])
    ok = hi > lo
    return cix[ok], k[ok], lo[ok], hi[ok]
