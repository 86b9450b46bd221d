"""Compatibility module: the data contract now lives in :mod:`analysis.data.contract`."""

from analysis.data.contract import (  # noqa: F401
    CUSTOMERS,
    EXPERIENCE,
    LOYALTY,
    TABLE_NAMES,
    TABLES,
    TRANSACTIONS,
    Column,
    Table,
)
