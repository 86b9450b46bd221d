"""Notebook worker of the report runner: one notebook in one process.

The runner starts ``python -m analysis.report.worker --worker SPEC`` for each
report, with the environment of :func:`thread_env`. The worker executes the
notebook with papermill as the JSON spec says and writes a JSON result
(``status`` and a one-line ``error``) where the spec says.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from analysis.report.outputs import one_line


def _worker(spec_path: str) -> int:
    """Execute one notebook as described by a JSON spec; write a JSON result. Return 0/1."""
    spec = json.loads(Path(spec_path).read_text())

    def _term(signum, frame):  # let papermill/nbclient shut the kernel down cleanly
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    # jsonschema (via nbformat) imports the optional rfc3987_syntax, which builds a Lark
    # grammar at import time: seconds of CPU per worker. Notebook schemas use no IRI
    # formats, so this worker process goes without it.
    sys.modules.setdefault("rfc3987_syntax", None)
    result: dict[str, Any] = {"status": "failed", "error": None}
    try:
        import papermill as pm

        pm.execute_notebook(
            spec["input"],
            spec["output"],
            parameters=spec["parameters"],
            kernel_name=spec["kernel_name"],
            execution_timeout=spec["timeout"],
            cwd=spec["cwd"],
            progress_bar=False,
            log_output=False,
            request_save_on_cell_execute=False,
        )
        result = {"status": "ok", "error": None}
    except KeyboardInterrupt:
        result = {"status": "interrupted", "error": "interrupted"}
    except Exception as exc:  # noqa: BLE001 - every failure becomes a one-line error
        ename = getattr(exc, "ename", type(exc).__name__)
        evalue = getattr(exc, "evalue", str(exc))
        cell = getattr(exc, "exec_count", None)
        where = f" (cell [{cell}])" if cell is not None else ""
        result = {"status": "failed", "error": one_line(f"{ename}: {evalue}") + where}
    Path(spec["result"]).write_text(json.dumps(result))
    return 0 if result["status"] == "ok" else 1


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "ANALYSIS_THREADS")


def thread_env(
    jobs: int, environ: Mapping[str, str] | None = None, *, engine_memory: str | None = None
) -> dict[str, str]:
    """Return the environment for a notebook worker when ``jobs`` notebooks run at once.

    Each worker gets ``max(1, cores // jobs)`` threads for BLAS/OpenMP (numpy, scipy,
    scikit-learn) and DuckDB (``ANALYSIS_THREADS``, read by :mod:`analysis.data`), and
    DuckDB a memory cap when ``engine_memory`` (``reports.engine_memory_limit``) is set.
    Without this, two notebooks on two cores each start multi-threaded linear algebra
    that spins against the other: a logistic fit measured 7-20 times slower. Variables
    the user has already set are left alone.
    """
    env = dict(os.environ if environ is None else environ)
    n = str(max(1, (os.cpu_count() or 1) // max(1, int(jobs))))
    for var in THREAD_VARS:
        env.setdefault(var, n)
    if engine_memory:  # params reports.engine_memory_limit
        env.setdefault("ANALYSIS_ENGINE_MEMORY", str(engine_memory))
    return env


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        sys.exit(_worker(sys.argv[2]))
    sys.exit(f"usage: {sys.executable} -m analysis.report.worker --worker SPEC")
