"""Estimators that know nothing about customers, params or reports.

Each function takes arrays or a DataFrame plus column names and returns a result
object or a DataFrame. Modules here import nothing from the package but
:mod:`analysis.errors` and each other (enforced by ``tests/test_architecture.py``).
"""
