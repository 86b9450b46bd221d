"""Small groups in the retention report: totals over everyone, complementary suppression.

Split out of :mod:`analysis.report.retention` (which re-exports these functions).
"""

from __future__ import annotations

import dataclasses

from analysis.report.display import Suppression, suppression
from analysis.studies.retention import ALL_CUSTOMERS as _ALL
from analysis.studies.retention import RetentionResult
from analysis.studies.sections import is_skipped


def _ok(x) -> bool:  # a section result that can be shown (not None, not Skipped)
    return x is not None and not is_skipped(x)


def group_suppression(result: RetentionResult) -> Suppression | None:
    """Decide which groups of the retention report to hide (None without groups).

    The groups shown must not add up to the stated total less one small group:
    further groups, the smallest first, are hidden until hidden customers cannot
    be told apart (:func:`analysis.report.display.suppression`).
    """
    if not result.group or not _ok(result.median):
        return None
    med, gcol = result.median, result.group
    return suppression(
        med[med[gcol] != _ALL].reset_index(drop=True),
        count_col="n",
        min_group_size=result.min_group_size,
        total=float(result.n_population),
        group_col=gcol,
    )


def hidden_labels(result: RetentionResult, sup: Suppression | None) -> set:
    """Return the row labels to hide in the report's tables: hidden groups and their comparisons.

    A comparison row (``"a - b"`` in the restricted-mean table, ``"a vs b"`` as
    shown) is hidden when either group is, since its count and difference
    would give the hidden group back.
    """
    if sup is None or not result.group:
        return set()
    hidden = set(sup.hidden_groups)
    out = set(hidden)
    if _ok(result.rmst) and result.group in result.rmst.columns:
        for lab in result.rmst[result.group].astype(str):
            parts = lab.split(" - ", 1)
            if len(parts) == 2 and (parts[0] in hidden or parts[1] in hidden):
                out.add(lab)
                out.add(lab.replace(" - ", " vs "))
    return out


def hide_groups(result: RetentionResult, sup: Suppression | None) -> RetentionResult:
    """Return ``result`` without the hidden groups' curves and numbers at risk (for the plots)."""
    if sup is None or result.km_group is None or not sup.hidden.any():
        return result
    hidden = sup.hidden_groups
    km = result.km_group[~result.km_group[result.group].isin(hidden)]
    at = result.at_risk_group
    if at is not None:
        at = at[~at.index.isin(list(hidden))]
    if km.empty:
        km, at = None, None
    return dataclasses.replace(result, km_group=km, at_risk_group=at)
