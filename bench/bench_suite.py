"""Benchmark the complete report suite (`python -m analysis run`) at several scales.

Usage::

    .venv/bin/python bench/bench_suite.py --customers 100000 1000000 [--jobs 2]

For each scale the sample world of ``bench/bench_foundation.py`` (seed 7, Parquet, under
data/bench/) is generated if missing, a params file ``data/bench/suite_<n>.yaml`` is
written, and the runner executes every notebook exactly as ``make reports`` does. The
script records the wall time of the start-up checks (validation, fingerprint, identifier
list for the privacy guard), of each report (from the run log) and of the whole run, and
samples the memory of the whole process tree (runner plus notebook kernels) every 0.2 s:
the peak of the **sum** of resident memory over all processes (what the machine must
hold; shared pages are counted twice, so this overstates slightly) and the largest single
process.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from bench_foundation import _world  # noqa: E402


def _params(
    n: int, jobs: int, timeout: int, engine_memory: str | None = None, world: Path | None = None
) -> Path:
    world = world or _world(n)
    tag = f"{n}" if world == _world(n) else f"{n}_{world.name}"
    out = ROOT / "data" / "bench" / f"reports_{tag}"
    p = ROOT / "data" / "bench" / f"suite_{tag}.yaml"
    p.write_text(
        f"# written by bench/bench_suite.py\ndata:\n  path: {world}\n"
        f"reports:\n  output_dir: {out}\n  jobs: {jobs}\n  timeout_seconds: {timeout}\n"
        f"  title: Benchmark reports ({n:,} customers)\n"
        + (f"  engine_memory_limit: {engine_memory}\n" if engine_memory else "")
    )
    return p


def _report_of(p: psutil.Process) -> str | None:
    """Name of the report a notebook worker runs (its spec lives in ``.<name>.<random>/``)."""
    try:
        cmd = p.cmdline()
    except psutil.Error:
        return None
    if "--worker" in cmd:
        m = re.search(r"/\.(\d\d_[A-Za-z0-9_]+)\.[^/]+/spec\.json$", cmd[-1])
        return m.group(1) if m else None
    return None


def _sample(proc: psutil.Process, stop: threading.Event, out: dict) -> None:
    out.update(total=0, single=0, by_report={})
    while not stop.is_set():
        try:
            workers = proc.children()
        except psutil.NoSuchProcess:
            break
        total = 0
        try:
            total = proc.memory_info().rss
            out["single"] = max(out["single"], total)
        except psutil.Error:
            pass
        for w in workers:
            name = _report_of(w)
            try:
                tree = [w, *w.children(recursive=True)]
            except psutil.Error:
                continue
            sub = 0
            for p in tree:
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                sub += rss
                out["single"] = max(out["single"], rss)
            total += sub
            if name:
                out["by_report"][name] = max(out["by_report"].get(name, 0), sub)
        out["total"] = max(out["total"], total)
        time.sleep(0.2)


def run_suite(
    n: int, jobs: int, timeout: int, engine_memory: str | None = None, world: Path | None = None
) -> dict:
    """Run the whole suite on the world of ``n`` customers (or the folder ``world``);
    return timings and memory."""
    params = _params(n, jobs, timeout, engine_memory, world)
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "analysis", "run", "--params", str(params)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    mem: dict = {}
    stop = threading.Event()
    th = threading.Thread(target=_sample, args=(psutil.Process(proc.pid), stop, mem), daemon=True)
    th.start()
    prelude = None
    lines = []
    for line in proc.stdout:
        lines.append(line.rstrip())
        print(f"[{time.monotonic() - t0:7.1f} s] {line.rstrip()}", flush=True)
        if prelude is None and re.search(r"\brunning \d+ report", line):
            prelude = time.monotonic() - t0
    code = proc.wait()
    wall = time.monotonic() - t0
    stop.set()
    th.join()
    out_dir = ROOT / "data" / "bench" / params.stem.replace("suite_", "reports_")
    last = json.loads((out_dir / "run-log.jsonl").read_text().strip().splitlines()[-1])
    return {
        "customers": n,
        "exit_code": code,
        "wall_s": wall,
        "prelude_s": prelude,
        "reports": last["reports"],
        "peak_total_gb": mem["total"] / 1e9,
        "peak_single_gb": mem["single"] / 1e9,
        "peak_by_report_gb": {k: v / 1e9 for k, v in mem["by_report"].items()},
        "log": lines,
    }


def render(results: list[dict], jobs: int, command: str, engine_memory: str | None) -> str:
    import platform

    names = sorted({k for r in results for k in r["reports"]})
    scales = [r["customers"] for r in results]
    head = "| stage | " + " | ".join(f"{n:,} customers (s)" for n in scales)
    head += " | " + " | ".join(f"peak GB, {n:,}" for n in scales)
    sep = "|---|" + "---:|" * (2 * len(scales))
    ratio = len(scales) > 1
    if ratio:
        head += f" | ratio {scales[-1] // scales[0]}x size"
        sep += "---:|"
    rows = [head + " |", sep]

    def row(label, vals, mems=None):
        mems = mems or [None] * len(vals)
        cells = " | ".join("" if v is None else f"{v:,.1f}" for v in vals)
        cells += " | " + " | ".join("" if m is None else f"{m:.2f}" for m in mems)
        extra = ""
        if ratio:
            a, b = vals[0], vals[-1]
            extra = f" | {b / a:.1f}x" if a and b else " | "
        rows.append(f"| {label} | {cells}{extra} |")

    row("start-up checks (validate, fingerprint, id list)", [r["prelude_s"] for r in results])
    for name in names:
        vals = []
        for r in results:
            rep = r["reports"].get(name, {})
            vals.append(rep.get("seconds"))
        row(name, vals, [r["peak_by_report_gb"].get(name) for r in results])
    row(
        "**whole run (wall)**",
        [r["wall_s"] for r in results],
        [r["peak_total_gb"] for r in results],
    )
    lines = [
        "## Full report suite",
        "",
        f"Command: `{command}`",
        "",
        f"Runner with `jobs: {jobs}` (notebooks in parallel)"
        + (f", `engine_memory_limit: {engine_memory}`" if engine_memory else "")
        + ", sample worlds of "
        "`bench/bench_foundation.py` (seed 7, Parquet). Report times are the runner's own "
        "(papermill execution plus HTML rendering and the privacy guard), memory is the peak of "
        "each report's worker and kernel together, and of everything at once on the last row; "
        "reports run "
        f"{jobs} at a time, so the whole run is less than their sum. Machine: "
        f"{platform.machine()}, {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB.",
        "",
        *rows,
        "",
        "| scale | exit code | statuses | peak memory, all processes (GB) | largest process (GB) |",
        "|---|---:|---|---:|---:|",
    ]
    for r in results:
        st = ", ".join(sorted({v["status"] for v in r["reports"].values()}))
        lines.append(
            f"| {r['customers']:,} | {r['exit_code']} | {st} | {r['peak_total_gb']:.2f} | "
            f"{r['peak_single_gb']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=1800, help="per-notebook limit, seconds")
    ap.add_argument("--engine-memory", help="reports.engine_memory_limit, e.g. 2GB")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "suite.md"))
    a = ap.parse_args(argv)
    results = [run_suite(n, a.jobs, a.timeout, a.engine_memory) for n in a.customers]
    cmd = ".venv/bin/python bench/bench_suite.py " + " ".join(
        ["--customers", *map(str, a.customers), "--jobs", str(a.jobs)]
        + (["--engine-memory", a.engine_memory] if a.engine_memory else [])
    )
    text = render(results, a.jobs, cmd, a.engine_memory)
    Path(a.out).write_text(text)
    print(text)
    return max(r["exit_code"] for r in results)


if __name__ == "__main__":
    sys.exit(main())
