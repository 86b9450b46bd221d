"""Compatibility module: the retention figures now live in :mod:`analysis.report.plots.retention`."""

from analysis.report.plots.retention import (  # noqa: F401
    plot_cif,
    plot_cohort_heatmap,
    plot_forest,
    plot_hazard,
    plot_km,
)

__all__ = ["plot_cif", "plot_cohort_heatmap", "plot_forest", "plot_hazard", "plot_km"]
