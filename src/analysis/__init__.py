"""Customer-retention research and reporting.

Data sources -> contract validation -> derived tables (Ibis) -> study functions
-> thin notebooks -> papermill -> HTML reports.
"""

from analysis.errors import AnalysisError, DataError, ParamsError, Problem

__version__ = "0.1.0"

__all__ = ["AnalysisError", "DataError", "ParamsError", "Problem", "__version__"]
