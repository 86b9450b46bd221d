"""Design matrices and column checks shared by the effect and propensity estimators.

:func:`covariate_matrix` expands covariates into a numeric design matrix;
:func:`binary_treatment` and :func:`numeric_outcome` check and extract the treatment and
outcome columns, raising :class:`analysis.errors.DataError` with the column, the count and
examples of the offending rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.errors import DataError, Problem, examples_of

__all__ = ["binary_treatment", "covariate_matrix", "numeric_outcome"]


def covariate_matrix(df: pd.DataFrame, covariates: Sequence[str]) -> pd.DataFrame:
    """Expand covariates into a numeric design matrix (no intercept).

    Numeric columns are kept, booleans become 0/1, and categorical or string
    columns are one-hot encoded with the first level (categorical order, else
    sorted) as reference, named ``column[level]``.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per unit.
    covariates : sequence of str
        Columns to expand.

    Returns
    -------
    pandas.DataFrame
        Float columns, same index as ``df``.

    Raises
    ------
    DataError
        If a covariate is missing from ``df`` or has missing values.
    """
    missing_cols = [c for c in covariates if c not in df.columns]
    if missing_cols:
        raise DataError(
            f"Covariates not found in the analysis frame ({len(df):,} rows).",
            [
                Problem(
                    "analysis frame",
                    c,
                    "missing_column",
                    "column not present",
                    fix=f"choose from: {', '.join(map(str, list(df.columns)[:20]))}",
                )
                for c in missing_cols
            ],
        )
    problems = []
    for c in covariates:
        n_na = int(df[c].isna().sum())
        if n_na:
            problems.append(
                Problem(
                    "analysis frame",
                    c,
                    "missing_values",
                    "covariate has missing values",
                    n_rows=n_na,
                    examples=examples_of(df.index[df[c].isna()]),
                    fix="impute or add a missingness indicator before estimating effects",
                )
            )
    if problems:
        raise DataError("Covariates must be complete to estimate effects.", problems)

    parts: list[pd.DataFrame] = []
    for c in covariates:
        s = df[c]
        if pd.api.types.is_bool_dtype(s):
            parts.append(s.astype(float).to_frame(c))
        elif pd.api.types.is_numeric_dtype(s):
            parts.append(s.astype(float).to_frame(c))
        else:
            if isinstance(s.dtype, pd.CategoricalDtype):
                levels = [lv for lv in s.cat.categories if (s == lv).any()]
            else:
                levels = sorted(s.astype(str).unique())
                s = s.astype(str)
            cols = {f"{c}[{lv}]": (s == lv).to_numpy(dtype=float) for lv in levels[1:]}
            parts.append(pd.DataFrame(cols, index=df.index))
    if not parts:
        return pd.DataFrame(index=df.index)
    return pd.concat(parts, axis=1)


def binary_treatment(df: pd.DataFrame, col: str) -> np.ndarray:
    """Return a binary (0/1 or bool) treatment column as a float array of 0 and 1.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per unit.
    col : str
        Treatment column.

    Returns
    -------
    numpy.ndarray
        0.0 / 1.0 per row.

    Raises
    ------
    DataError
        If the column is missing, has missing values or values other than 0/1.
    """
    if col not in df.columns:
        raise DataError(
            f"Treatment column {col!r} not found in the analysis frame ({len(df):,} rows).",
            [Problem("analysis frame", col, "missing_column", "column not present")],
        )
    s = df[col]
    if s.isna().any():
        bad = s.isna()
        raise DataError(
            "Treatment must be known for every row.",
            [
                Problem(
                    "analysis frame",
                    col,
                    "missing_values",
                    "treatment missing",
                    n_rows=int(bad.sum()),
                    examples=examples_of(df.index[bad]),
                    fix="drop these rows or define the treatment for them",
                )
            ],
        )
    v = s.astype(float).to_numpy()
    odd = ~np.isin(v, (0.0, 1.0))
    if odd.any():
        raise DataError(
            "Treatment must be binary (0/1 or True/False).",
            [
                Problem(
                    "analysis frame",
                    col,
                    "not_binary",
                    "values other than 0/1",
                    n_rows=int(odd.sum()),
                    examples=examples_of(s[odd]),
                    fix="recode the treatment to 0/1",
                )
            ],
        )
    return v


def numeric_outcome(df: pd.DataFrame, col: str) -> np.ndarray:
    """Return a numeric outcome column as a float array.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per unit.
    col : str
        Outcome column (binary outcomes as 0/1).

    Returns
    -------
    numpy.ndarray
        The outcome per row.

    Raises
    ------
    DataError
        If the column is missing or has missing values.
    """
    if col not in df.columns:
        raise DataError(
            f"Outcome column {col!r} not found in the analysis frame ({len(df):,} rows).",
            [Problem("analysis frame", col, "missing_column", "column not present")],
        )
    s = df[col]
    bad = s.isna()
    if bad.any():
        raise DataError(
            "Outcome must be observed for every row (no censoring handling here).",
            [
                Problem(
                    "analysis frame",
                    col,
                    "missing_values",
                    "outcome missing",
                    n_rows=int(bad.sum()),
                    examples=examples_of(df.index[bad]),
                    fix="restrict to rows with an observed outcome, or use a survival analysis",
                )
            ],
        )
    return s.astype(float).to_numpy()
