"""Compatibility module: the derived tables now live in :mod:`analysis.data.derive`."""

from analysis.data.derive import (  # noqa: F401
    DAYS_PER_MONTH,
    PERIOD_STEP,
    cohorts,
    lifetimes,
    panel,
    period_start,
    period_starts,
    usable_lifetimes,
)
