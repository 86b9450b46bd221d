"""Small-group suppression for report tables, with complementary suppression.

A group with fewer than ``min_group_size`` customers is hidden. Where a total
is shown beside the groups (a total row, a total in the text, or a total that
another table gives), hiding one group is not enough: the total minus the
shown groups would reveal it. :func:`suppression` then hides further groups,
the smallest first, until no hidden group can be worked out from what is
shown. Suppressing a group hides the group; its customers stay in the totals.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError

# --------------------------------------------------------------------------------------
# Small-group suppression
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Suppression:
    """Which rows of a grouped table are hidden, and why (see :func:`suppression`).

    Attributes
    ----------
    small : numpy.ndarray of bool
        Rows with fewer than ``min_group_size`` customers, or with an unknown
        count (primary suppression).
    complementary : numpy.ndarray of bool
        Further rows hidden so that no small row can be worked out by
        subtracting the shown rows from a total (complementary suppression).
    min_group_size : int
        The threshold.
    labels : tuple or None
        Each row's group label (the ``group_col`` of :func:`suppression`), so
        that other tables and plots of the same groups can hide the same ones.
    """

    small: np.ndarray
    complementary: np.ndarray
    min_group_size: int
    labels: tuple | None = None

    @property
    def hidden(self) -> np.ndarray:
        """Rows hidden for either reason."""
        return self.small | self.complementary

    def _groups(self, mask: np.ndarray) -> frozenset:
        if self.labels is None:
            raise AnalysisError(
                "Suppression: no group labels; pass group_col= to suppression() to hide the "
                "same groups in other tables and plots."
            )
        return frozenset(lab for lab, m in zip(self.labels, mask, strict=True) if m)

    @property
    def small_groups(self) -> frozenset:
        """Labels of the groups under the threshold."""
        return self._groups(self.small)

    @property
    def complementary_groups(self) -> frozenset:
        """Labels of the groups hidden to protect the small ones."""
        return self._groups(self.complementary & ~self.small)

    @property
    def hidden_groups(self) -> frozenset:
        """Labels of every hidden group."""
        return self._groups(self.hidden)

    def visible(self, df: pd.DataFrame, column: str) -> pd.DataFrame:
        """Return the rows of ``df`` whose ``column`` is not a hidden group (for plots)."""
        return df[~df[column].isin(self.hidden_groups)]


def complementary_suppression(
    counts: np.ndarray,
    hidden: np.ndarray,
    blocks: Sequence[tuple[np.ndarray, float | None]],
    min_group_size: int,
) -> np.ndarray:
    """Return the rows to hide besides ``hidden`` so that no known total discloses a small row.

    The engine of :func:`suppression`, for tables whose blocks are not columns
    of one frame (the levels of several covariates, say).

    Parameters
    ----------
    counts : array of float
        Customers per row (NaN: unknown, counted as 0 here).
    hidden : array of bool
        Rows already hidden (small ones, or parts not shown at all). The small
        ones (count below ``min_group_size`` or unknown) are the rows to protect.
    blocks : sequence of (array of int, float or None)
        Row positions whose total the reader knows, and that total when it is
        a given number (None: shown somewhere, value not given here).
    min_group_size : int
        The threshold.

    Returns
    -------
    numpy.ndarray of bool
        The further rows to hide.

    Notes
    -----
    Two rules, applied until both hold. First, per block: a block is safe
    when it hides nothing, or at least two parts whose customers add up to
    ``min_group_size`` or more (so subtracting the shown rows from its total
    gives a sum over enough customers); a total above the listed counts
    means customers of groups that are not rows at all (left out upstream),
    one more hidden part, safe on its own when that large (it is several
    small groups together). The smallest shown row of an unsafe block is
    hidden too, the usual heuristic of statistical offices. Second, an audit
    of the blocks together: a small row whose value follows from the known
    totals by linear algebra (every block total is an equation in the hidden
    rows; the row is determined when its unit vector lies in their row
    space), as happens when suppressions chain through a two-way table, gets
    the smallest shown row of one of its blocks hidden as well. Bounds (counts
    are not negative) are not audited, only exact recovery.
    """
    counts = np.asarray(counts, dtype=float)
    known = np.where(np.isnan(counts), 0.0, counts)
    hidden = np.asarray(hidden, dtype=bool).copy()
    protect = hidden & ((counts < min_group_size) | np.isnan(counts))
    extra = np.zeros(len(hidden), dtype=bool)
    blocks = [(np.asarray(rows, dtype=int), total) for rows, total in blocks]
    blocks = [(rows, total) for rows, total in blocks if len(rows)]

    def hide_smallest(candidates: np.ndarray) -> bool:
        if len(candidates) == 0:
            return False
        pick = candidates[int(np.argmin(known[candidates]))]
        hidden[pick] = extra[pick] = True
        return True

    while True:
        changed = True
        while changed:
            changed = False
            for rows, total in blocks:
                h = hidden[rows]
                if total is None:
                    union, unlisted = float(known[rows][h].sum()), False
                else:
                    union = float(total) - float(known[rows][~h].sum())
                    # With unknown counts among the rows the remainder may be theirs: count
                    # it as no extra part (fewer parts means more suppression, never less).
                    unlisted = float(total) - float(known[rows].sum()) > 0.5 and not bool(
                        np.isnan(counts[rows]).any()
                    )
                parts = int(h.sum()) + int(unlisted)
                if parts == 0 or (union >= min_group_size and (parts >= 2 or unlisted)):
                    continue
                changed |= hide_smallest(rows[~h])
        if not _audit_fix(protect, hidden, blocks, hide_smallest, known, counts):
            return extra


def _audit_fix(protect, hidden, blocks, hide_smallest, known, counts) -> bool:
    """Hide one more row if a protected row is determined by the block totals; True if one was.

    Unknowns are the hidden rows, plus one per block whose given total exceeds
    its rows (the customers of groups left out upstream).
    """
    unknown = np.flatnonzero(hidden)
    slack = [
        b
        for b, (rows, total) in enumerate(blocks)
        if total is not None
        and float(total) - float(known[rows].sum()) > 0.5
        and not bool(np.isnan(counts[rows]).any())
    ]
    if len(unknown) == 0 or not blocks:
        return False
    pos = {int(r): j for j, r in enumerate(unknown)}
    a = np.zeros((len(blocks), len(unknown) + len(slack)))
    for b, (rows, _) in enumerate(blocks):
        for r in rows:
            if hidden[r]:
                a[b, pos[int(r)]] = 1.0
    for j, b in enumerate(slack):
        a[b, len(unknown) + j] = 1.0
    rank = np.linalg.matrix_rank(a)
    alone = {
        int(rows[0]) for b, (rows, _) in enumerate(blocks) if len(rows) == 1 and b not in slack
    }
    for r in np.flatnonzero(protect):
        if int(r) in alone:
            continue  # its own total is known: nothing else hidden can protect it
        e = np.zeros(a.shape[1])
        e[pos[int(r)]] = 1.0
        if np.linalg.matrix_rank(np.vstack([a, e])) > rank:
            continue  # not determined by the totals
        for rows, _ in blocks:
            if r in rows and hide_smallest(rows[~hidden[rows]]):
                return True
    return False


def suppression(
    df: pd.DataFrame,
    *,
    count_col: str,
    min_group_size: int,
    total: bool | float | None = None,
    totals_by: Iterable[str | Sequence[str]] | None = None,
    group_col: str | None = None,
    total_label: Any = None,
    hide: Suppression | Collection | None = None,
) -> Suppression:
    """Decide which groups of a table to hide: small ones, and those that would reveal them.

    Groups with fewer than ``min_group_size`` customers (or no count) are
    hidden. When the groups' total is known to the reader (a total row, a
    total in the text, a total in another table), hiding one small group is
    not enough: the total minus the shown groups gives it. Then further
    groups, the smallest first, are hidden until the hidden groups of every
    known total are at least two and together have at least
    ``min_group_size`` customers, or everything is hidden. Hiding a group
    hides its numbers, never its customers: totals still include them.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per group (or per group and breakdown, see ``totals_by``).
    count_col : str
        Column with the number of customers in each row.
    min_group_size : int
        Rows with fewer customers are suppressed.
    total : bool or number, optional
        The rows' total is shown beside the table: ``True`` when the rows
        are every group of a population whose size is shown somewhere, a
        number when that size is known here and may exceed the rows' sum
        (customers of groups left out upstream, which then count as a hidden
        group). None (default): no total is shown; only small rows are hidden.
    totals_by : iterable of str or of sequences of str, optional
        Columns whose subtotals are shown (in another table, or because each
        level's rows describe the same customers): within each level of each
        entry the same rule holds. For a two-way table of segment by tier with
        segment totals and tier totals elsewhere: ``["segment", "clv_tier"]``.
    group_col : str, optional
        Column with the group labels (default: the first column) for
        :attr:`Suppression.hidden_groups` and ``total_label``.
    total_label : optional
        Label (in ``group_col``) of a total row inside the table, e.g.
        ``"all customers"``: it is never hidden, and its count is the total
        unless ``total`` gives one.
    hide : Suppression or collection, optional
        Groups (labels in ``group_col``) another table of the same groups
        hides: hidden here too before the rule above is applied, and their
        subtotals (``totals_by`` on ``group_col``) count as unknown.

    Returns
    -------
    Suppression
    """
    if count_col not in df.columns:
        raise AnalysisError(
            f"suppression: count column {count_col!r} is not in the table "
            f"(columns: {list(df.columns)}); pass the column with customers per group."
        )
    gcol = group_col if group_col is not None else (df.columns[0] if len(df.columns) else None)
    if group_col is not None and group_col not in df.columns:
        raise AnalysisError(
            f"suppression: group column {group_col!r} is not in the table "
            f"(columns: {list(df.columns)})."
        )
    counts = pd.to_numeric(df[count_col], errors="coerce").to_numpy(dtype=float)
    is_total = np.zeros(len(df), dtype=bool)
    if total_label is not None and gcol is not None:
        is_total = (df[gcol].astype(str) == str(total_label)).to_numpy()
        if total is None and is_total.sum() == 1:
            total = float(counts[is_total][0])
    small = ((counts < min_group_size) | np.isnan(counts)) & ~is_total
    before = np.zeros(len(df), dtype=bool)
    hidden_elsewhere: set = set()
    if hide is not None:
        if gcol is None:
            raise AnalysisError("suppression: hide= needs the table's group column.")
        if isinstance(hide, Suppression):
            small |= df[gcol].isin(hide.small_groups).to_numpy() & ~is_total
            hidden_elsewhere = set(hide.hidden_groups)
        else:
            hidden_elsewhere = set(hide)
        before = df[gcol].isin(hidden_elsewhere).to_numpy() & ~is_total & ~small
    groups = np.flatnonzero(~is_total)
    blocks: list[tuple[np.ndarray, float | None]] = []
    if total is not None and total is not False:
        blocks.append((groups, None if total is True else float(total)))
    sub = df.iloc[groups].reset_index(drop=True)
    for cols in totals_by or []:
        cols = [cols] if isinstance(cols, str) else list(cols)
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise AnalysisError(f"suppression: totals_by columns {missing} are not in the table.")
        for key, idx in sub.groupby(cols, sort=False, dropna=False).indices.items():
            if cols == [gcol] and (key[0] if isinstance(key, tuple) else key) in hidden_elsewhere:
                continue  # that group's total is hidden where it would be shown
            blocks.append((groups[np.asarray(idx, dtype=int)], None))
    extra = before | (
        complementary_suppression(counts, small | before, blocks, min_group_size)
        if blocks
        else np.zeros(len(df), dtype=bool)
    )
    labels = tuple(df[gcol]) if group_col is not None else None
    return Suppression(
        small=small, complementary=extra, min_group_size=min_group_size, labels=labels
    )


def suppress_small(
    df: pd.DataFrame,
    *,
    count_col: str,
    min_group_size: int,
    value_cols: Iterable[str] | None = None,
    total: bool | float | None = None,
    totals_by: Iterable[str | Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Mask the values of groups with fewer than ``min_group_size`` customers.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per group, with a count of customers in ``count_col``.
    count_col : str
        Column holding the number of customers in each group. A missing count
        is treated as a small group (its size cannot be checked).
    min_group_size : int
        Groups with a count below this are suppressed.
    value_cols : iterable of str, optional
        Columns to mask. Default: every numeric column, the count included.
    total, totals_by : optional
        Totals shown beside the table; further groups are then masked so that
        the small ones cannot be worked out from them (see :func:`suppression`).

    Returns
    -------
    pandas.DataFrame
        A copy with the masked values set to NaN and a boolean ``suppressed``
        column. The input is not changed.
    """
    if count_col not in df.columns:
        raise AnalysisError(
            f"suppress_small: count column {count_col!r} is not in the table "
            f"(columns: {list(df.columns)}); pass the column with customers per group."
        )
    if "suppressed" in df.columns:
        raise AnalysisError(
            "suppress_small: the table already has a 'suppressed' column; rename it first."
        )
    if value_cols is None:
        value_cols = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
    else:
        value_cols = list(value_cols)
        missing = [c for c in value_cols if c not in df.columns]
        if missing:
            raise AnalysisError(f"suppress_small: value columns {missing} are not in the table.")
    small = suppression(
        df,
        count_col=count_col,
        min_group_size=min_group_size,
        total=total,
        totals_by=totals_by,
    ).hidden
    out = df.copy()
    for c in value_cols:
        col = out[c]
        if pd.api.types.is_bool_dtype(col) or pd.api.types.is_integer_dtype(col):
            col = col.astype("float64")
        out[c] = col.mask(small)
    out["suppressed"] = small
    return out
