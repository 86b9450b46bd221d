"""Benchmark the sample-world generator: generate + write at several sizes.

Usage (from the repository root)::

    .venv/bin/python bench/bench_synth.py --sizes 100000 1000000 --out bench/results/synth.md
    # the streaming generator (analysis.data.synth.stream_world), chunks of 200,000 customers:
    .venv/bin/python bench/bench_synth.py --stream --sizes 1000000 2000000 \
        --chunk-customers 200000 --out bench/results/synth_stream.md

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

CHILD_STREAM = r"""
import json, resource, sys, time
from analysis.data import synth
n, seed, out, fmt, chunk = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
t0 = time.perf_counter()
r = synth.stream_world(out, n, seed, format=fmt, chunk_customers=chunk)
t1 = time.perf_counter()
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({
    "generate_s": t1 - t0, "write_s": 0.0, "cpu_s": ru.ru_utime + ru.ru_stime,
    "peak_rss_gb": ru.ru_maxrss / 1024**2, "rows": r["rows"],
}))
"""


def run_one(n: int, seed: int, fmt: str, chunk: int | None = None) -> dict:
    """Run one generate + write (or one stream, with ``chunk``) in a subprocess; measure it."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        cmd = [sys.executable, "-c", CHILD, str(n), str(seed), tmp, fmt]
        if chunk is not None:
            cmd = [sys.executable, "-c", CHILD_STREAM, str(n), str(seed), tmp, fmt, str(chunk)]
        res = subprocess.run(
            cmd,
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
    p.add_argument(
        "--stream",
        action="store_true",
        help="benchmark the streaming generator (synth.stream_world) instead of generate + write",
    )
    p.add_argument(
        "--chunk-customers",
        type=int,
        default=200_000,
        help="customers per chunk of the streaming generator (default 200000)",
    )
    a = p.parse_args(argv)
    cmd = "python bench/bench_synth.py " + " ".join(argv if argv is not None else sys.argv[1:])
    rows = []
    for n in a.sizes:
        r = run_one(n, a.seed, a.format, a.chunk_customers if a.stream else None)
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
    what = (
        f"stream = `analysis.data.synth.stream_world` (chunks of {a.chunk_customers:,} customers, "
        "blocks of 50,000; generation and writing interleaved, so write is 0)"
        if a.stream
        else "generate = `analysis.synth.generate`, write = `analysis.synth.write` (zstd parquet)"
    )
    text = (
        f"# Sample-world generator benchmark{' (streaming)' if a.stream else ''}\n\n"
        f"Command: `{cmd}` (seed {a.seed}, format {a.format}, 36 months).\n\n"
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"1-minute load average at the end of the run: {load:.1f} (other jobs shared the machine, "
        "so wall times are upper bounds; CPU time is the process's own).\n\n"
        f"{table}\n\n"
        f"{what}, peak RSS = `resource.getrusage(RUSAGE_SELF).ru_maxrss` of the child process.\n"
    )
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
