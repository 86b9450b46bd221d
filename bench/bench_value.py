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
import os
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
    cpu = []  # process CPU seconds per step: far below wall time means a contended machine

    def step(name, fn, size):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        rows.append((name, time.perf_counter() - t, size(out)))
        cpu.append(time.process_time() - c)
        return out

    tx = step(
        "synthesise transactions (numpy)",
        lambda: synth_transactions(args.customers, args.seed),
        lambda o: f"{len(o):,} rows",
    )

    summ = step(
        "rfm_summary (merge same-day, calibration + holdout)",
        lambda: value.rfm_summary(
            tx, calibration_end="2022-12-31", observation_end="2023-12-31", freq="W"
        ),
        lambda o: f"{len(o):,} customers",
    )
    n_unique = len(summ[["frequency", "recency", "T"]].drop_duplicates())
    bg = step(
        "fit_bgnbd (MLE + inverse-Hessian SEs)",
        lambda: value.fit_bgnbd(summ),
        lambda o: f"{n_unique:,} distinct (x, t_x, T)",
    )
    gg = step(
        "fit_gamma_gamma",
        lambda: value.fit_gamma_gamma(summ),
        lambda o: f"{o.n_customers:,} repeat buyers",
    )
    core = sum(r[1] for r in rows[1:])
    core_cpu = sum(cpu[1:])
    step(
        "clv, 52 weekly steps (not in the target)",
        lambda: value.clv(bg, gg, summ, horizon=52, discount_rate=0.1, freq="W"),
        lambda o: f"total {o['clv'].sum():,.0f}",
    )

    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(
        f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"peak RSS {peak_gb:.1f} GB\n"
    )
    print("| step | wall s | CPU s | size |")
    print("|---|---:|---:|---|")
    for (name, sec, size), c in zip(rows, cpu, strict=True):
        print(f"| {name} | {sec:.1f} | {c:.1f} | {size} |")
    print(
        f"| **summary + BG/NBD + Gamma-Gamma (target < 30 s)** | **{core:.1f}** | {core_cpu:.1f} | |"
    )
    print(f"\nLoad average at the end: {os.getloadavg()[0]:.1f} (2 cores)")
    print()
    print(
        "BG/NBD:",
        ", ".join(f"{k}={v:.3f}" for k, v in bg.params.items()),
        "| Gamma-Gamma:",
        ", ".join(f"{k}={v:.3f}" for k, v in gg.params.items()),
    )


if __name__ == "__main__":
    main()
