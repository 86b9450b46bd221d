"""Benchmark the survival study on synthetic customers (numpy-generated, not the sample world).

Usage::

    .venv/bin/python bench/bench_survival.py --rows 100000 1000000

Each size runs the whole study computation once: Kaplan-Meier by group, medians,
survival at horizons, RMST, log-rank (3 groups, pairwise), Cox with 10 covariates
plus strata (Efron ties, late entry, PH test and concordance included), cumulative
incidence by 5 reasons and the life-table hazard. Durations are whole days expressed in
months (so many tied churn times, as in real data); 30% of customers enter late.
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import pandas as pd
import psutil

from analysis import survival as sv

DAYS = 30.4375


def make_data(n: int, seed: int = 0) -> pd.DataFrame:
    """Return n synthetic customer lifetimes with 10 covariates, strata, entry and reasons."""
    rng = np.random.default_rng(seed)
    seg = rng.choice(["consumer", "business"], n, p=[0.7, 0.3])
    tier = rng.choice(["low", "medium", "high"], n, p=[0.3, 0.5, 0.2])
    channel = rng.choice(["web", "store", "phone", "partner"], n)
    region = rng.choice(["north", "south", "east", "west"], n)
    num = rng.normal(size=(n, 4))
    lp = (
        np.where(seg == "business", np.log(0.75), 0)
        + np.where(tier == "high", np.log(0.7), 0)
        + np.where(tier == "low", np.log(1.4), 0)
        + np.where(channel == "partner", 0.2, 0)
        + num @ np.array([0.2, -0.1, 0.05, 0.0])
    )
    # Weibull-ish tenure in days, admin censoring after 36 months of window
    t = np.ceil(DAYS * 30 * rng.weibull(0.9, n) * np.exp(-lp / 0.9))
    signup_before = rng.uniform(size=n) < 0.3
    entry_days = np.where(signup_before, np.ceil(rng.uniform(1, 720, n)), 0.0)
    cens_days = entry_days + np.ceil(rng.uniform(30, 36 * DAYS, n))
    t = np.where(signup_before, entry_days + t, t)  # survivors to entry only (truncation)
    e = (t <= cens_days).astype(int)
    dur = np.minimum(t, cens_days)
    reasons = np.array(["price", "service", "competitor", "moved", "other"])
    reason = np.where(e == 1, reasons[rng.integers(0, 5, n)], None)
    return pd.DataFrame(
        {
            "duration": dur / DAYS,
            "entry": entry_days / DAYS,
            "event": e,
            "segment": seg,
            "value_tier": tier,
            "channel": channel,
            "region": region,
            "x1": num[:, 0],
            "x2": num[:, 1],
            "x3": num[:, 2],
            "x4": num[:, 3],
            "churn_reason": reason,
        }
    )


COVS = ["segment", "value_tier", "channel", "x1", "x2", "x3", "x4"]  # 1 + 2 + 3 + 4 = 10 terms


def run(n: int) -> list[dict]:
    df = make_data(n)
    common = {"duration": "duration", "event": "event", "entry": "entry"}
    steps = [
        ("Kaplan-Meier by value_tier", lambda: sv.kaplan_meier(df, group="value_tier", **common)),
        (
            "median survival by value_tier",
            lambda: sv.median_survival(df, group="value_tier", **common),
        ),
        (
            "survival at 3/6/12/24 months",
            lambda: sv.survival_at(df, times=[3, 6, 12, 24], group="value_tier", **common),
        ),
        (
            "RMST to 24 months by value_tier + differences",
            lambda: sv.rmst(df, horizon=24, group="value_tier", **common),
        ),
        (
            "log-rank, 3 groups + pairwise Holm",
            lambda: sv.logrank(df, group="value_tier", **common),
        ),
        (
            "Cox: 10 terms + strata(region), Efron, PH test, concordance",
            lambda: sv.cox(df, covariates=COVS, strata="region", **common),
        ),
        (
            "cumulative incidence, 5 reasons",
            lambda: sv.cumulative_incidence(df, cause="churn_reason", **common),
        ),
        ("monthly hazard over tenure", lambda: sv.hazard_over_tenure(df, **common)),
    ]
    rows = []
    proc = psutil.Process()
    for name, fn in steps:
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        rows.append(
            {
                "rows": n,
                "step": name,
                "seconds": dt,
                "cpu": dc,
                "rss_gb": proc.memory_info().rss / 1e9,
            }
        )
        if name.startswith("Cox"):
            n_ties = len(np.unique(df.duration[df.event == 1]))
            rows[-1]["step"] += f" ({n_ties:,} distinct churn times)"
            del out
    rows.append(
        {
            "rows": n,
            "step": "**whole study**",
            "seconds": sum(r["seconds"] for r in rows),
            "cpu": sum(r["cpu"] for r in rows),
            "rss_gb": proc.memory_info().rss / 1e9,
        }
    )
    return rows


def run_phreg(n: int) -> dict:
    """Time statsmodels PHReg on the same Cox model (the engine this module replaced)."""
    from statsmodels.duration.hazard_regression import PHReg

    df = make_data(n)
    x = pd.get_dummies(df[COVS], drop_first=True, dtype=float).to_numpy()
    entry = np.where(df.entry > 0, df.entry + 1e-7, 0.0)
    t0, c0 = time.perf_counter(), time.process_time()
    PHReg(
        df.duration.to_numpy(),
        x,
        status=df.event.to_numpy(float),
        entry=entry,
        strata=df.region.to_numpy(),
        ties="efron",
    ).fit()
    return {
        "rows": n,
        "step": "reference: statsmodels PHReg, same Cox model (fit only)",
        "seconds": time.perf_counter() - t0,
        "cpu": time.process_time() - c0,
        "rss_gb": psutil.Process().memory_info().rss / 1e9,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument(
        "--phreg-rows",
        type=int,
        nargs="*",
        default=[100_000],
        help="sizes at which to time statsmodels PHReg for comparison",
    )
    args = ap.parse_args()
    rows = []
    for n in args.rows:
        rows += run(n)
    for n in args.phreg_rows:
        rows.append(run_phreg(n))
    print(
        f"Machine: {platform.processor() or platform.machine()}, {psutil.cpu_count()} CPUs, "
        f"Python {platform.python_version()}\n"
    )
    print(
        f"Load average at the end: {', '.join(f'{x:.1f}' for x in psutil.getloadavg())} "
        "(the machine is shared; CPU seconds are the steadier measure)\n"
    )
    print("| rows | step | wall s | CPU s | RSS (GB) |")
    print("|---:|---|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['rows']:,} | {r['step']} | {r['seconds']:.2f} | {r['cpu']:.2f} "
            f"| {r['rss_gb']:.2f} |"
        )


if __name__ == "__main__":
    main()
