"""Exact two-way (unit + period) fixed-effects least squares by the Schur complement.

Provisional: phase 2 merges it into :mod:`analysis.stats.fixed_effects`, the package's
two-way fixed-effects engine.
"""

from __future__ import annotations

import numpy as np


def _fe_normal(unit, period, n_unit, n_period):
    """Factor the normal equations of a two-way (unit + period) fixed-effects design.

    Returns what :func:`_fe_solve` needs: the row keys, per-unit and per-period
    counts, and the pseudo-inverse of the period-by-period Schur complement
    (periods are few, units many, so the unit effects are eliminated exactly
    instead of iterated). Memory stays a few bytes per row: the unit-by-period
    count matrix is built only to form the small Schur complement.
    """
    from scipy import sparse

    cu = np.bincount(unit, minlength=n_unit).astype(float)
    cp = np.bincount(period, minlength=n_period).astype(float)
    inv_cu = np.where(cu > 0, 1.0 / np.maximum(cu, 1), 0.0)
    if unit.size and np.all(unit[1:] >= unit[:-1]):  # rows grouped by unit: build CSR directly
        indptr = np.concatenate([[0], np.cumsum(np.bincount(unit, minlength=n_unit))])
        idx = period.astype(np.int32)
        m = sparse.csr_matrix((np.ones(unit.size), idx, indptr), shape=(n_unit, n_period))
        md = sparse.csr_matrix((inv_cu[unit], idx, indptr), shape=(n_unit, n_period))
    else:
        m = sparse.csr_matrix((np.ones(unit.size), (unit, period)), shape=(n_unit, n_period))
        md = m.multiply(inv_cu[:, None]).tocsr()
    schur = np.diag(cp) - (m.T @ md).toarray()
    del m, md
    return unit, period, cu, cp, inv_cu, np.linalg.pinv(schur, rcond=1e-10, hermitian=True)


def _fe_solve(fact, unit_sums, period_sums):
    """Solve the two-way FE normal equations for right-hand sides (unit, period sums)."""
    unit, period, _, _, inv_cu, schur_pinv = fact
    one = unit_sums.ndim == 1
    us = unit_sums[:, None] if one else unit_sums
    ps = period_sums[:, None] if one else period_sums
    n_unit, n_period = us.shape[0], ps.shape[0]
    ua = us * inv_cu[:, None]
    # M' ua (period totals of the unit parts) and M b (unit totals of the period parts)
    mt_ua = np.column_stack(
        [np.bincount(period, weights=ua[unit, j], minlength=n_period) for j in range(ua.shape[1])]
    )
    b = schur_pinv @ (ps - mt_ua)
    mb = np.column_stack(
        [np.bincount(unit, weights=b[period, j], minlength=n_unit) for j in range(b.shape[1])]
    )
    a = ua - mb * inv_cu[:, None]
    return (a[:, 0], b[:, 0]) if one else (a, b)


def _fe_fit(fact, y, n_unit, n_period):
    """Least-squares unit and period effects of ``y``, one value per row of ``fact``'s design."""
    unit, period = fact[0], fact[1]
    return _fe_solve(
        fact,
        np.bincount(unit, weights=y, minlength=n_unit),
        np.bincount(period, weights=y, minlength=n_period),
    )


def _two_way_fe(y, unit, period, n_unit, n_period):
    """Fit y = a[unit] + b[period] by least squares (exact; unbalanced panel).

    Returns the unit effects, period effects and a mask of units with rows.
    The split between ``a`` and ``b`` is one of many equivalent ones; fitted
    values ``a[unit] + b[period]`` are unique.
    """
    fact = _fe_normal(unit, period, n_unit, n_period)
    a, b = _fe_fit(fact, y, n_unit, n_period)
    return a, b, fact[2] > 0
