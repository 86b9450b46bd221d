"""Benchmark the value study at scale: RFM summary + BG/NBD + Gamma-Gamma on 1M customers.

Synthesises a transaction log with numpy (about 25 transactions per customer, a
two-year window), then times each step and prints a markdown table.

Usage::

    .venv/bin/python bench/bench_value.py                 # 1,000,000 customers
    .venv/bin/python bench/bench_value.py --customers 100000

Peak memory is about 2.5 GB at 1M customers / 25M transactions.

With ``--study PARAMS_FILE`` it instead times what the 04_customer_value notebook does on a
data source: ``data.load_study_data``, ``value.value_study`` (default arguments, 50 parameter
draws), the CSV export and the plots, with wall and CPU seconds and peak resident memory
(sampled every 50 ms)::

    .venv/bin/python bench/bench_value.py --study /path/to/params_1m.yaml --export-dir /tmp/x
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


def study(params_file: str, export_dir: str) -> None:
    """Time the value notebook's work on a data source; print a markdown table."""
    import threading
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis import data

    peak = [0]

    def sample():
        while True:
            with open("/proc/self/statm") as f:
                peak[0] = max(peak[0], int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
            time.sleep(0.05)

    threading.Thread(target=sample, daemon=True).start()
    rows = []

    def step(name, fn):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        rows.append((name, time.perf_counter() - t, time.process_time() - c, peak[0] / 1e9))
        return out

    st = step("data.load_study_data", lambda: data.load_study_data(params_file))
    vs = step("value.value_study", lambda: value.value_study(st))
    step(
        "value.write_export (ranked CSV)",
        lambda: value.write_export(vs.ranked, Path(export_dir) / "customers_to_protect.csv"),
    )

    def plots():
        figs = [
            value.plot_value_curve(vs.scores["clv"]),
            value.plot_holdout_by_frequency(vs.holdout_by_frequency),
            value.plot_tracking(vs.tracking, unit_label=vs.settings["unit_label"]),
            value.plot_p_alive(vs.scores),
        ]
        if vs.churn is not None:
            figs.append(value.plot_churn_model(vs.churn))
        for f in figs:
            f.canvas.draw()
            plt.close(f)

    step("plots", plots)
    print(
        f"{vs.settings['n_scored']:,} customers scored, {vs.settings['n_calibration']:,} in the "
        f"calibration cohort; load average at the end {os.getloadavg()[0]:.1f} (2 cores)\n"
    )
    print("| step | wall s | CPU s | peak RSS so far (GB) |")
    print("|---|---:|---:|---:|")
    for name, sec, cpu_s, gb in rows:
        print(f"| {name} | {sec:.1f} | {cpu_s:.1f} | {gb:.2f} |")
    print(
        f"| **total** | **{sum(r[1] for r in rows):.1f}** | {sum(r[2] for r in rows):.1f} | "
        f"{peak[0] / 1e9:.2f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--study", metavar="PARAMS_FILE", help="time the value study on a data source")
    ap.add_argument("--export-dir", default="/tmp/bench_value_export")
    args = ap.parse_args()
    if args.study:
        study(args.study, args.export_dir)
        return
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
