"""The package's one exception type for problems a user can fix.

Every message names the table, the column, how many rows are affected, a few
example keys, and what to do about it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One data or configuration problem, rendered as one line.

    Parameters
    ----------
    table : str
        Contract table (or params section) where the problem is.
    column : str or None
        Column (or params key), if the problem concerns one.
    rule : str
        Short machine-readable name of the check that failed.
    n_rows : int
        Number of rows affected (0 where not row-based).
    examples : tuple
        Up to five example keys (customer ids or values).
    fix : str
        What the user should do.
    severity : str
        ``"error"`` blocks a run; ``"warning"`` is reported and the run goes on.
    """

    table: str
    column: str | None
    rule: str
    message: str
    n_rows: int = 0
    examples: tuple = field(default_factory=tuple)
    fix: str = ""
    severity: str = "error"

    def __str__(self) -> str:
        where = self.table if self.column is None else f"{self.table}.{self.column}"
        parts = [f"[{self.severity}] {where}: {self.message}"]
        if self.n_rows:
            parts.append(f"({self.n_rows:,} rows)")
        if self.examples:
            shown = ", ".join(str(e) for e in list(self.examples)[:5])
            parts.append(f"e.g. {shown}")
        line = " ".join(parts)
        if self.fix:
            line += f" -> {self.fix}"
        return line


class AnalysisError(Exception):
    """Raised for any problem the user can fix: bad params, bad data, missing files.

    Carries zero or more :class:`Problem` objects; ``str(err)`` lists them one per line.
    """

    def __init__(self, message: str, problems: Sequence[Problem] | None = None):
        self.problems = list(problems or [])
        self.summary = message
        lines = [message] + [f"  {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class ParamsError(AnalysisError):
    """A params file is invalid."""


class DataError(AnalysisError):
    """The input data breaks the data contract."""


def examples_of(values: Iterable, k: int = 5) -> tuple:
    """Return up to ``k`` distinct example values, in their first-seen order."""
    out: list = []
    for v in values:
        if v not in out:
            out.append(v)
        if len(out) >= k:
            break
    return tuple(out)
