"""Plots for the report notebooks, one module per study, in one style.

:func:`use_style` (called by :func:`analysis.report.display.setup_notebook`) sets the
look every report shares: a colour-blind-safe palette (Okabe–Ito), readable font sizes
at the report's figure width, light grids, and no top/right spines.
"""

from __future__ import annotations

#: Okabe & Ito (2008) colour-blind-safe palette (blue first: the accent of the pages).
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
#: Colour of partial or not-yet-observable periods.
PARTIAL = "#9AA5B1"


def use_style() -> None:
    """Apply the reports' plot style (seaborn whitegrid, Okabe–Ito colours, readable sizes)."""
    import matplotlib as mpl
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook", palette=OKABE_ITO)
    mpl.rcParams.update(
        {
            "axes.titlesize": 12,
            "axes.titleweight": "bold",
            "axes.labelsize": 11,
            "xtick.labelsize": 10,
            "ytick.labelsize": 10,
            "legend.fontsize": 10,
            "legend.title_fontsize": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.prop_cycle": mpl.cycler(color=OKABE_ITO),
            "image.cmap": "cividis",
        }
    )
