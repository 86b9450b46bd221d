"""Benchmark the experience study at scale: counting-process build + FE revenue regression.

A synthetic world of N customers x 36 months is built directly with numpy (no
generator, no Ibis), then timed:

* ``counting_process`` on N lifetimes and ~3 experience events per customer
  (``period=None``: split at events and window expiries; and ``period="month"``
  on a quarter of the customers, whose row count grows with the months);
* ``churn_hazards`` on the event-split rows;
* ``revenue_link`` on the full N x 36 panel (customer + period effects
  absorbed, customer-clustered SEs, three exposures at lag 1);
* ``lag_profile``: the report's nine single-exposure regressions (three
  exposures x lags 1-3), which share the lag lookup and the demeaning.

The whole report at scale (``load_study_data`` + ``run_study`` on the
ready-made 1M world) is recorded in ``bench/results/experience_1m.md``.

Prints a markdown table. Usage::

    .venv/bin/python bench/bench_experience.py                 # 1,000,000 customers
    .venv/bin/python bench/bench_experience.py --customers 100000
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pandas as pd
import psutil

from analysis.studies import experience as X

MONTHS = 36
START = np.datetime64("2023-01-01")


def make_lifetimes(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Return N lifetimes: a third signed up before the window (left-truncated)."""
    days_window = 1095
    signup = rng.integers(-720, days_window - 30, n)
    entry = np.maximum(0, -signup)
    life = np.ceil(rng.exponential(900, n)).astype(np.int64) + 1
    end = np.minimum(signup + life, days_window)
    dur = end - signup
    event = (signup + life <= days_window).astype(np.int8)
    keep = dur > entry
    return pd.DataFrame(
        {
            "customer_id": np.flatnonzero(keep),  # integer keys: the code handles any hashable
            "start_date": (START + signup[keep].astype("timedelta64[D]")).astype("datetime64[ns]"),
            "entry_days": entry[keep],
            "duration_days": dur[keep],
            "event": event[keep],
        }
    )


def make_experience(lt: pd.DataFrame, per_customer: float, rng: np.random.Generator):
    """Return ~per_customer events per customer, dated inside each customer's time at risk."""
    n = len(lt)
    k = rng.poisson(per_customer, n)
    idx = np.repeat(np.arange(n), k)
    entry = lt.entry_days.to_numpy()[idx]
    dur = lt.duration_days.to_numpy()[idx]
    day = entry + np.floor(rng.random(idx.size) * (dur - entry)).astype(np.int64)
    survey = rng.random(idx.size) < 0.4
    m = idx.size
    return pd.DataFrame(
        {
            "customer_id": lt.customer_id.to_numpy()[idx],
            "date": (
                lt.start_date.to_numpy()[idx].astype("datetime64[D]") + day.astype("timedelta64[D]")
            ).astype("datetime64[ns]"),
            "kind": np.where(survey, "survey", "ticket"),
            "touchpoint": rng.choice(["sales", "onboarding", "service", "billing", "retention"], m),
            "compensated": np.where(survey, False, rng.random(m) < 0.1),
            "nps": np.where(survey, rng.integers(0, 11, m), np.nan),
            "csat": np.where(survey, rng.integers(1, 6, m), np.nan),
            "first_contact_resolution": np.where(survey, True, rng.random(m) < 0.7),
            "sla_met": np.where(survey, True, rng.random(m) < 0.87),
        }
    )


def make_panel(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Return a balanced N x 36 monthly panel with revenue and experience columns."""
    cust = np.repeat(np.arange(n, dtype=np.int64), MONTHS)
    per = np.tile(np.arange(MONTHS, dtype=np.int64), n)
    a = rng.gamma(2.0, 30.0, n)
    csat = np.where(rng.random(n * MONTHS) < 0.1, rng.integers(1, 6, n * MONTHS), np.nan)
    unres = rng.poisson(0.03, n * MONTHS).astype(np.float64)
    sla = rng.poisson(0.015, n * MONTHS).astype(np.float64)
    revenue = a[cust] + 2.0 * np.sin(per / 3) + rng.normal(0, 20, n * MONTHS)
    # planted: +4 per CSAT point last month, -6 per unresolved ticket last month
    lag_csat = np.r_[np.nan, csat[:-1]]
    lag_unres = np.r_[0.0, unres[:-1]]
    first = per == 0
    revenue += np.where(first | np.isnan(lag_csat), 0.0, 4.0 * (np.nan_to_num(lag_csat) - 3))
    revenue -= np.where(first, 0.0, 6.0 * lag_unres)
    return pd.DataFrame(
        {
            "customer_id": cust,
            "period": (np.datetime64("2023-01", "M") + per).astype("datetime64[ns]"),
            "revenue": revenue,
            "csat_mean": csat,
            "unresolved_tickets": unres,
            "sla_breaches": sla,
        }
    )


def _timed(fn, *args, **kwargs):
    """Return fn(), wall seconds, CPU seconds of this process, RSS after (GB)."""
    proc = psutil.Process(os.getpid())
    t, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t, time.process_time() - c, proc.memory_info().rss / 1e9


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--events-per-customer", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    rng = np.random.default_rng(a.seed)
    n = a.customers
    rows = []

    lt = make_lifetimes(n, rng)
    ex = make_experience(lt, a.events_per_customer, rng)
    cp, t_cp, c_cp, rss = _timed(X.counting_process, lt, ex, window_days=90, period=None)
    rows.append(
        (
            "counting_process (event splits)",
            f"{len(lt):,} customers, {len(ex):,} events",
            f"{len(cp):,} rows",
            t_cp,
            c_cp,
            rss,
        )
    )
    q = lt.iloc[: len(lt) // 4]
    exq = ex[ex.customer_id.isin(q.customer_id)]
    cpm, t_cpm, c_cpm, rss = _timed(X.counting_process, q, exq, window_days=90, period="month")
    rows.append(
        (
            "counting_process (+ monthly splits)",
            f"{len(q):,} customers",
            f"{len(cpm):,} rows",
            t_cpm,
            c_cpm,
            rss,
        )
    )
    del cpm, exq
    hz, t_hz, c_hz, rss = _timed(
        X.churn_hazards, cp, covariates=["nps_category", "unresolved_window", "sla_breaches_window"]
    )
    rows.append(
        (
            "churn_hazards (Cox, clustered SE)",
            f"{len(cp):,} rows",
            f"{hz.n_events:,} churns",
            t_hz,
            c_hz,
            rss,
        )
    )
    del cp, ex, lt

    pn = make_panel(n, rng)
    fe, t_fe, c_fe, rss = _timed(
        X.revenue_link, pn, exposures=["csat_mean", "unresolved_tickets", "sla_breaches"], lags=(1,)
    )
    rows.append(
        (
            "revenue_link (customer + period FE, CRV1)",
            f"{n:,} x {MONTHS} = {len(pn):,} rows",
            f"{fe.n_obs:,} used",
            t_fe,
            c_fe,
            rss,
        )
    )
    s = fe.summary
    lp, t_lp, c_lp, rss = _timed(
        X.lag_profile,
        pn,
        exposures=["csat_mean", "unresolved_tickets", "sla_breaches"],
        lags=[1, 2, 3],
    )
    rows.append(
        (
            "lag_profile (3 exposures x lags 1-3, one regression each)",
            f"{len(pn):,} rows",
            f"{len(lp)} regressions",
            t_lp,
            c_lp,
            rss,
        )
    )

    print(
        f"Machine: {platform.machine()}, {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 1e9:.0f} GB; numpy {np.__version__}, "
        f"pandas {pd.__version__}\n"
    )
    print(
        f"Load average at the end: {os.getloadavg()[0]:.1f} (wall time grows when other "
        "processes share the cores; CPU seconds do not)\n"
    )
    print("| step | input | output | wall s | CPU s | process RSS after (GB) |")
    print("|---|---|---|---:|---:|---:|")
    for step, inp, outp, sec, cpu, mem in rows:
        print(f"| {step} | {inp} | {outp} | {sec:.1f} | {cpu:.1f} | {mem:.1f} |")
    print(
        f"\nCounting process (event splits) + FE regression at {n:,} customers: "
        f"{t_cp + t_fe:.1f} s wall, {c_cp + c_fe:.1f} s CPU."
    )
    print(
        f"Planted revenue effects recovered: csat_mean_lag1 {s.coef.iloc[0]:.2f} "
        f"(SE {s.se.iloc[0]:.2f}; planted 4.00), unresolved_tickets_lag1 {s.coef.iloc[1]:.2f} "
        f"(SE {s.se.iloc[1]:.2f}; planted -6.00); demeaning converged: {fe.converged}."
    )


if __name__ == "__main__":
    main()
