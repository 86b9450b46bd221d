"""One study per report: prepare the study's frames from the derived tables, call
:mod:`analysis.stats`, and return a result object that holds numbers, not text."""
