"""Memory against the number of events: the whole suite on a world and on the same world
with every customer's transactions and service events doubled.

Usage::

    .venv/bin/python bench/bench_flat_memory.py --customers 200000 [--jobs 2]

The doubled world has the same customers, loyalty memberships and dates; each transaction
and each service event appears twice, the copy dated one day earlier where that is still
on or after the customer's signup (else on the same day). A study that reads only
aggregates per customer, per customer-month or per period keeps its peak memory; one that
reads the events grows with them. Results: per report, time and peak memory (worker and
kernel together) on both worlds, and their ratio.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from bench_foundation import _world  # noqa: E402
from bench_suite import run_suite  # noqa: E402


def doubled_world(n: int) -> Path:
    """Write (once) the world of ``n`` customers with its events doubled; return its folder."""
    import duckdb

    src = _world(n)
    out = src.parent / f"world_{n}_doubled"
    if (out / "truth.json").exists():
        return out
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    con = duckdb.connect()
    for f in src.iterdir():
        name = f.stem
        if f.suffix != ".parquet" or name not in ("transactions", "experience"):
            shutil.copy(f, tmp / f.name)
            continue
        id_col = {"transactions": "transaction_id", "experience": "event_id"}.get(name)
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM '{f}'").fetchall()]
        shifted = ", ".join(
            "CASE WHEN e.date - 1 >= c.signup_date THEN e.date - 1 ELSE e.date END AS date"
            if c == "date"
            else (f"e.{c} || '-2' AS {c}" if c == id_col else f"e.{c}")
            for c in cols
        )
        con.execute(
            f"COPY (SELECT * FROM '{f}' UNION ALL "
            f"SELECT {shifted} FROM '{f}' e JOIN '{src / 'customers.parquet'}' c "
            f"USING (customer_id)) TO '{tmp / f.name}' (FORMAT parquet)"
        )
    tmp.rename(out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=200_000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=1800)
    ap.add_argument("--engine-memory", default="1GB")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "flat_memory.md"))
    a = ap.parse_args(argv)
    n = a.customers
    base = run_suite(n, a.jobs, a.timeout, a.engine_memory)
    twice = run_suite(n, a.jobs, a.timeout, a.engine_memory, world=doubled_world(n))
    cmd = (
        f".venv/bin/python bench/bench_flat_memory.py --customers {n} --jobs {a.jobs} "
        f"--engine-memory {a.engine_memory}"
    )
    rows = [
        "## Memory against the number of events",
        "",
        f"Command: `{cmd}`",
        "",
        f"{n:,} customers; the second world has every transaction and service event twice "
        "(the copy one day earlier where still after signup). Peak memory of each report's "
        "worker and kernel together.",
        "",
        "| report | time (s) | time, 2x events (s) | peak GB | peak GB, 2x events | memory ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in sorted(base["reports"]):
        t1 = base["reports"][name].get("seconds")
        t2 = twice["reports"].get(name, {}).get("seconds")
        m1 = base["peak_by_report_gb"].get(name)
        m2 = twice["peak_by_report_gb"].get(name)
        ratio = f"{m2 / m1:.2f}" if m1 and m2 else ""
        rows.append(f"| {name} | {t1:.1f} | {t2:.1f} | {m1:.2f} | {m2:.2f} | {ratio} |")
    rows.append(
        f"| **whole run** | {base['wall_s']:.1f} | {twice['wall_s']:.1f} | "
        f"{base['peak_total_gb']:.2f} | {twice['peak_total_gb']:.2f} | "
        f"{twice['peak_total_gb'] / base['peak_total_gb']:.2f} |"
    )
    status = {v["status"] for r in (base, twice) for v in r["reports"].values()}
    rows += ["", f"Statuses: {', '.join(sorted(status))}."]
    text = "\n".join(rows) + "\n"
    Path(a.out).write_text(text)
    print(text)
    return max(base["exit_code"], twice["exit_code"])


if __name__ == "__main__":
    sys.exit(main())
