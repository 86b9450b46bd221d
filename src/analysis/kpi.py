"""Compatibility module: the KPI dashboard is split by layer.

The numbers are in :mod:`analysis.studies.kpi`, the labels, findings and
formatted tables in :mod:`analysis.report.kpi`, the trend plots in
:mod:`analysis.report.plots.kpi`.
"""

from analysis.report.kpi import (  # noqa: F401
    METRIC_LABELS,
    display_table,
    findings,
    validation_summary,
    year_on_year_table,
)
from analysis.report.plots.kpi import plot_trends  # noqa: F401
from analysis.studies.kpi import (  # noqa: F401
    LEVEL_METRICS,
    RATE_METRICS,
    customer_counts,
    data_quality,
    headline_values,
    kpi_table,
    latest_complete,
    member_counts,
    with_changes,
    year_on_year,
)
