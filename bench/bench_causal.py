"""Time AIPW (logistic propensity, linear outcome, analytic SE) on a large synthetic frame.

Usage::

    .venv/bin/python bench/bench_causal.py [--rows 1000000] [--covariates 20] [--seed 0]

Prints a markdown table (wall time and peak memory of the estimation step, plus the
estimate against the planted effect). Results are recorded in bench/results/causal.md.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import pandas as pd
import psutil

from analysis import causal


def make_frame(n: int, k: int, seed: int) -> tuple[pd.DataFrame, list[str], float]:
    """Build a confounded frame: k-2 numeric covariates, one 4-level categorical, one boolean."""
    rng = np.random.default_rng(seed)
    n_num = k - 2
    x = rng.normal(size=(n, n_num))
    seg = rng.choice(np.array(["a", "b", "c", "d"]), size=n)
    flag = rng.random(n) < 0.3
    beta_t = rng.normal(scale=0.3, size=n_num)
    lin = -0.5 + x @ beta_t + 0.4 * (seg == "b") - 0.3 * flag
    t = rng.random(n) < 1 / (1 + np.exp(-lin))
    effect = 2.0
    beta_y = rng.normal(scale=0.5, size=n_num)
    y = 10 + effect * t + x @ beta_y + 1.0 * (seg == "c") + 0.5 * flag + rng.normal(size=n)
    cols = {f"x{i}": x[:, i] for i in range(n_num)}
    df = pd.DataFrame(cols | {"segment": seg, "flag": flag, "t": t.astype(int), "y": y})
    return df, [*cols, "segment", "flag"], effect


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--covariates", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    df, covs, truth = make_frame(args.rows, args.covariates, args.seed)
    proc = psutil.Process()
    rows = []
    for method in ("ipw", "aipw"):
        times = []
        base = proc.memory_info().rss
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            eff = causal.estimate_effect(
                df, treatment="t", outcome="y", covariates=covs, method=method, estimand="ATE"
            )
            times.append(time.perf_counter() - t0)
        rss = (proc.memory_info().rss - base) / 2**20
        rows.append(
            f"| {method} ATE | {args.rows:,} | {len(covs)} | {min(times):.2f} | "
            f"{np.median(times):.2f} | {rss:+.0f} | {eff.estimate:.4f} [{eff.ci_lower:.4f}, "
            f"{eff.ci_upper:.4f}] | {truth} |"
        )
    print(f"machine: {platform.processor() or platform.machine()}, {psutil.cpu_count()} cores")
    print()
    print(
        "| estimator | rows | covariates | best s | median s | RSS change MiB | estimate [95% CI] "
        "| planted |"
    )
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
