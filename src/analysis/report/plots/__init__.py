"""Plots for the report notebooks, one module per study."""
