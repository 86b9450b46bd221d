"""Benchmark the value study at scale: RFM summary + BG/NBD + Gamma-Gamma on 1M customers.

Synthesises a transaction log with numpy (about 25 transactions per customer, a
two-year window), then times each step and prints a markdown table.

Usage::

    .venv/bin/python bench/bench_value.py                 # 1,000,000 customers
    .venv/bin/python bench/bench_value.py --customers 100000

Peak memory is about 2.5 GB at 1M customers / 25M transactions.
"""

from __future__ import annotations

import argparse
import platform
import resource
import time

import numpy as np
import pandas as pd

from analysis import value


def synth_transactions(n_customers: int, seed: int = 0, mean_tx: float = 25.0) -> pd.DataFrame:
    """Return a transaction log: customer_id (int), date, amount; births in the first year."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2022-01-01", "D")
    window = 730
    birth = rng.integers(0, 365, n_customers)
    # Lifetime (days) and purchase rate: heterogeneous, roughly mean_tx purchases each.
    life = np.minimum(rng.exponential(900, n_customers), window - birth)
    rate = rng.gamma(1.5, 1.0, n_customers) * mean_tx / 1.5 / np.maximum(window - birth, 1) * 1.28
    extra = rng.poisson(rate * life)
    n = 1 + extra
    cust = np.repeat(np.arange(n_customers, dtype=np.int64), n)
    first_idx = np.r_[0, np.cumsum(n)[:-1]]
    offs = rng.random(cust.size) * np.repeat(life, n)
    offs[first_idx] = 0.0
    days = np.repeat(birth, n) + offs.astype(np.int64)
    mean_spend = rng.gamma(6.0, 6.0, n_customers)
    amount = rng.gamma(4.0, 1.0, cust.size) * np.repeat(mean_spend, n) / 4.0
    return pd.DataFrame(
        {"customer_id": cust, "date": (start + days).astype("datetime64[s]"), "amount": amount}
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = []
    t0 = time.perf_counter()
    tx = synth_transactions(args.customers, args.seed)
    rows.append(("synthesise transactions (numpy)", time.perf_counter() - t0, f"{len(tx):,} rows"))

    t = time.perf_counter()
    summ = value.rfm_summary(
        tx, calibration_end="2022-12-31", observation_end="2023-12-31", freq="W"
    )
    rows.append(
        (
            "rfm_summary (merge same-day, calibration + holdout)",
            time.perf_counter() - t,
            f"{len(summ):,} customers",
        )
    )

    n_unique = len(summ[["frequency", "recency", "T"]].drop_duplicates())
    t = time.perf_counter()
    bg = value.fit_bgnbd(summ)
    rows.append(
        (
            "fit_bgnbd (MLE + inverse-Hessian SEs)",
            time.perf_counter() - t,
            f"{n_unique:,} distinct (x, t_x, T)",
        )
    )

    t = time.perf_counter()
    gg = value.fit_gamma_gamma(summ)
    rows.append(("fit_gamma_gamma", time.perf_counter() - t, f"{gg.n_customers:,} repeat buyers"))

    core = sum(r[1] for r in rows[1:])
    t = time.perf_counter()
    c = value.clv(bg, gg, summ, horizon=52, discount_rate=0.1, freq="W")
    rows.append(
        (
            "clv, 52 weekly steps (not in the target)",
            time.perf_counter() - t,
            f"total {c['clv'].sum():,.0f}",
        )
    )

    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(
        f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"peak RSS {peak_gb:.1f} GB\n"
    )
    print("| step | seconds | size |")
    print("|---|---:|---|")
    for name, sec, size in rows:
        print(f"| {name} | {sec:.1f} | {size} |")
    print(f"| **summary + BG/NBD + Gamma-Gamma (target < 30 s)** | **{core:.1f}** | |")
    print()
    print(
        "BG/NBD:",
        ", ".join(f"{k}={v:.3f}" for k, v in bg.params.items()),
        "| Gamma-Gamma:",
        ", ".join(f"{k}={v:.3f}" for k, v in gg.params.items()),
    )


if __name__ == "__main__":
    main()
