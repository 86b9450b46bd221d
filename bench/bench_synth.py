"""Benchmark the sample-world generator: generate + write at several sizes.

Usage (from the repository root)::

    .venv/bin/python bench/bench_synth.py --sizes 100000 1000000 --out bench/results/synth.md

Each size runs in a fresh subprocess so that peak RSS (resource.getrusage, ru_maxrss) is
that run's own. Output files go to a temporary folder that is removed afterwards.
Prints a markdown table and writes it (with the exact command) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from analysis import synth
n, seed, out, fmt = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
t0 = time.perf_counter()
w = synth.generate(n_customers=n, seed=seed)
t1 = time.perf_counter()
synth.write(w, out, format=fmt)
t2 = time.perf_counter()
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({
    "generate_s": t1 - t0, "write_s": t2 - t1, "cpu_s": ru.ru_utime + ru.ru_stime,
    "peak_rss_gb": ru.ru_maxrss / 1024**2,
    "rows": {k: len(v) for k, v in w.tables.items()},
}))
"""


def run_one(n: int, seed: int, fmt: str) -> dict:
    """Run one generate + write in a subprocess and return its measurements."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = subprocess.run(
            [sys.executable, "-c", CHILD, str(n), str(seed), tmp, fmt],
            check=True,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t0
        out = json.loads(res.stdout.strip().splitlines()[-1])
        out["disk_mb"] = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1e6
    out["wall_s"] = wall
    out["n"] = n
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--format", default="parquet", choices=("parquet", "csv"))
    p.add_argument("--out", default="bench/results/synth.md")
    a = p.parse_args(argv)
    cmd = "python bench/bench_synth.py " + " ".join(argv if argv is not None else sys.argv[1:])
    rows = []
    for n in a.sizes:
        r = run_one(n, a.seed, a.format)
        rows.append(r)
        print(f"done n={n:,}: {r['wall_s']:.1f}s", file=sys.stderr)
    lines = [
        "| customers | transactions | experience rows | generate (s) | write (s) | wall incl. start-up (s) "
        "| CPU (s) | peak RSS (GB) | files (MB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']:,} | {r['rows']['transactions']:,} | {r['rows']['experience']:,} "
            f"| {r['generate_s']:.1f} | {r['write_s']:.1f} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} "
            f"| {r['peak_rss_gb']:.2f} | {r['disk_mb']:.0f} |"
        )
    table = "\n".join(lines)
    print(table)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    text = (
        "# Sample-world generator benchmark\n\n"
        f"Command: `{cmd}` (seed {a.seed}, format {a.format}, 36 months).\n\n"
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"1-minute load average at the end of the run: {load:.1f} (other jobs shared the machine, "
        "so wall times are upper bounds; CPU time is the process's own).\n\n"
        f"{table}\n\n"
        "generate = `analysis.synth.generate`, write = `analysis.synth.write` (zstd parquet), "
        "peak RSS = `resource.getrusage(RUSAGE_SELF).ru_maxrss` of the child process.\n"
    )
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
