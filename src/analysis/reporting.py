"""Compatibility module: the notebook display helpers now live in :mod:`analysis.report.display`
and the number formatting in :mod:`analysis.report.format`."""

from analysis.report.display import (  # noqa: F401
    DEFAULT_MAX_ROWS,
    DEFAULT_MIN_GROUP_SIZE,
    HEADLINE_MIME,
    absent_table,
    absent_table_html,
    absent_table_message,
    findings,
    findings_html,
    headline,
    headline_record,
    note,
    note_html,
    provenance_html,
    setup_notebook,
    show_table,
    suppress_small,
    table_html,
)
from analysis.report.format import fmt_ci, fmt_money, fmt_pct  # noqa: F401
