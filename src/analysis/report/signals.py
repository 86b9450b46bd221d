"""Signal handling of the report runner: interrupts, deferred signals while publishing."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class _Interrupted(Exception):
    pass


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM (and SIGHUP, unless ignored) into KeyboardInterrupt while running.

    Main thread only. A SIGHUP that ``nohup`` set to be ignored stays ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _handler(signum, frame):
        raise KeyboardInterrupt

    old = {signal.SIGTERM: signal.signal(signal.SIGTERM, _handler)}
    if signal.getsignal(signal.SIGHUP) is signal.SIG_DFL:
        old[signal.SIGHUP] = signal.signal(signal.SIGHUP, _handler)
    try:
        yield
    finally:
        for signum, handler in old.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def _ignore_signals() -> Iterator[None]:
    """Ignore SIGINT/SIGTERM while writing the final state after an interrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP until the block ends (main thread only).

    A signal that arrives meanwhile is delivered when the block ends, so a
    report's publication (a few renames) is never cut in half by an interrupt.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
