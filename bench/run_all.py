"""Run every benchmark in bench/ one after another and rebuild docs/benchmarks.md.

Usage::

    .venv/bin/python bench/run_all.py            # all benchmarks (tens of minutes, up to ~5 GB)
    .venv/bin/python bench/run_all.py --collect  # only rebuild docs/benchmarks.md from bench/results/

Each script writes its own markdown section to bench/results/<name>.md, with the command
that produced it; docs/benchmarks.md is those sections in a fixed order.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = [
    "suite",
    "foundation",
    "synth",
    "synth_stream",
    "flat_memory",
    "survival",
    "causal",
    "experience",
    "experience_1m",
    "value",
    "value_1m",
    "sources",
]
SCRIPTS = {
    "foundation": ["bench/bench_foundation.py"],
    "synth": ["bench/bench_synth.py"],
    "survival": ["bench/bench_survival.py"],
    "causal": ["bench/bench_causal.py"],
    "experience": ["bench/bench_experience.py"],
    "value": ["bench/bench_value.py"],
    "suite": ["bench/bench_suite.py", "--engine-memory", "1GB"],
    "flat_memory": ["bench/bench_flat_memory.py", "--engine-memory", "256MB"],
}
HEADER = """# Benchmarks

Measured on this project's machine: 2 cores, 24 GB, no GPU. Each section says the command that
produced it; `make bench` reruns them all (`bench/run_all.py`). Where other jobs shared the
machine during a run, the section says so: wall-clock times are then inflated and CPU times
are the better guide. Timings live here, never in unit tests.
"""


def _demote(text: str) -> str:
    """Add one level to every markdown heading outside fenced code blocks."""
    out, fenced = [], False
    for ln in text.splitlines():
        if ln.lstrip().startswith("```"):
            fenced = not fenced
        out.append("#" + ln if ln.startswith("#") and not fenced else ln)
    return "\n".join(out)


def collect() -> str:
    parts = [HEADER]
    results = ROOT / "bench" / "results"
    names = ORDER + sorted(p.stem for p in results.glob("*.md") if p.stem not in ORDER)
    for name in names:
        f = results / f"{name}.md"
        if f.exists():
            text = f.read_text().strip()
            if not text.startswith("#"):
                text = f"## {name}\n\n{text}"
            if text.startswith("# "):  # demote a file's own headings one level
                text = _demote(text)
            parts.append(text)
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--collect", action="store_true", help="only rebuild docs/benchmarks.md")
    a = ap.parse_args(argv)
    status = 0
    if not a.collect:
        for name in ORDER:
            cmd = SCRIPTS.get(name)
            if cmd and (ROOT / cmd[0]).exists():
                print(f">> {' '.join(cmd)}", flush=True)
                r = subprocess.run([sys.executable, *cmd], cwd=ROOT)
                status = status or r.returncode
    (ROOT / "docs" / "benchmarks.md").write_text(collect())
    print("wrote docs/benchmarks.md")
    return status


if __name__ == "__main__":
    sys.exit(main())
