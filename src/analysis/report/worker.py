"""Notebook worker of the report runner: one notebook in one process.

The runner starts ``python -m analysis.report.worker --worker SPEC`` for each
report, with the environment of :func:`thread_env`. The worker executes the
notebook with papermill as the JSON spec says and writes a JSON result
(``status`` and a one-line ``error``) where the spec says.

The worker dies with the runner, whatever ends the runner (even SIGKILL): on
Linux the kernel sends it SIGTERM when its parent dies (``PR_SET_PDEATHSIG``);
a watchdog thread that checks its parent every half second does so where that
is not available, and ends a worker whose shutdown hangs (:func:`die_with_runner`).
On SIGTERM the worker shuts its kernel down and exits; the kernel (ipykernel)
also exits by itself within a second of its worker's death, as it polls its
parent (``JPY_PARENT_PID``).

After the last cell the kernel is shut down without the interrupt (SIGINT) that
jupyter_client sends first by default (:func:`_kernel_manager_class`), so a
successful run's log holds no ``KeyboardInterrupt`` error.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from analysis.report.outputs import one_line

#: Environment variable holding the runner's pid (set by the runner for its workers).
RUNNER_PID_ENV = "ANALYSIS_RUNNER_PID"
#: Exit code of a worker whose runner died (before it started, or without stopping it).
EXIT_ORPHANED = 3
#: Seconds an orphaned worker may take to shut its kernel down before it ends itself.
SHUTDOWN_GRACE_SECONDS = 6
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_WATCHDOG_SECONDS = 0.5


def die_with_runner(runner_pid: int | None) -> bool:
    """Arrange for this process to end when the runner ``runner_pid`` dies.

    On Linux, ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` makes the kernel signal this
    process the moment its parent dies. Then the parent is checked: if it is no
    longer the runner (it died before the request took effect), return False and
    the caller exits. A daemon thread also checks the parent every half second;
    once the runner is gone it sends SIGTERM where ``prctl`` is not available, and
    ends the process outright if the shutdown that SIGTERM started takes longer than
    :data:`SHUTDOWN_GRACE_SECONDS`.

    Parameters
    ----------
    runner_pid : int or None
        The runner's pid; None (worker started by hand) arranges nothing.

    Returns
    -------
    bool
        False when the runner is already gone.
    """
    if not runner_pid:
        return True
    deathsig = False
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            deathsig = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) == 0
    if os.getppid() != runner_pid:
        return False

    def _watch() -> None:
        while os.getppid() == runner_pid:
            time.sleep(_WATCHDOG_SECONDS)
        if not deathsig:
            os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(SHUTDOWN_GRACE_SECONDS)
        os._exit(EXIT_ORPHANED)  # the kernel follows: it polls its parent

    threading.Thread(target=_watch, name="runner-watchdog", daemon=True).start()
    return True


class _CellState:
    """Whether a cell is executing (set by nbclient's cell hooks)."""

    running = False


def _cell_started(**_: Any) -> None:
    _CellState.running = True


def _cell_finished(**_: Any) -> None:
    _CellState.running = False


def _kernel_manager_class() -> type:
    """Return a kernel manager that interrupts the kernel on shutdown only while a cell runs.

    jupyter_client interrupts (SIGINT) every kernel before asking it to shut down.
    After the last cell the kernel is idle or finishing a reply, and the interrupt
    only makes it log ``ERROR | KeyboardInterrupt caught in kernel`` in the
    worker's log. A kernel stopped mid-cell (timeout, SIGTERM) is still interrupted.
    """
    import shutil
    import tempfile

    from jupyter_client import AsyncKernelManager
    from traitlets import default

    class QuietShutdownKernelManager(AsyncKernelManager):
        # The kernel talks to its worker over Unix sockets in a private folder, not TCP
        # ports: Jupyter picks free TCP ports by opening and closing sockets, and another
        # process on the machine (a second test suite, another run) can take one before
        # the kernel binds it, which kills the kernel ("Kernel died before replying").
        @default("transport")
        def _default_transport(self):
            return "ipc"

        @default("ip")
        def _default_ip(self):
            self._ipc_dir = tempfile.mkdtemp(prefix="analysis-kernel-")
            return os.path.join(self._ipc_dir, "kernel")

        def cleanup_resources(self, restart: bool = False) -> None:
            super().cleanup_resources(restart=restart)
            if not restart and getattr(self, "_ipc_dir", None):
                shutil.rmtree(self._ipc_dir, ignore_errors=True)

        async def _async_interrupt_kernel(self) -> None:
            if self.shutting_down and not _CellState.running:
                return  # a clean shutdown: nothing to interrupt
            await super()._async_interrupt_kernel()

    return QuietShutdownKernelManager


def _worker(spec_path: str) -> int:
    """Execute one notebook as described by a JSON spec; write a JSON result.

    Return 0 (ok), 1 (failed or interrupted) or :data:`EXIT_ORPHANED` (the runner
    was gone before the worker started; nothing is done, not even the spec read).
    """

    def _term(signum, frame):  # let papermill/nbclient shut the kernel down cleanly
        if _term.seen:  # a second SIGTERM must not cut the shutdown the first one started
            return
        _term.seen = True
        raise KeyboardInterrupt

    _term.seen = False
    signal.signal(signal.SIGTERM, _term)
    runner = os.environ.get(RUNNER_PID_ENV)
    if not die_with_runner(int(runner) if runner else None):
        return EXIT_ORPHANED  # the runner died before this worker started: do nothing
    spec = json.loads(Path(spec_path).read_text())
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
            kernel_manager_class=_kernel_manager_class(),
            on_cell_execute=_cell_started,
            on_cell_executed=_cell_finished,
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
