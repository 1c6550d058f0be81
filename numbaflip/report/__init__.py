"""Reports: certified accuracy and tables in the layout of the paper's Tables 1–2
(:mod:`.accuracy`), plots like its Figure 1 (:mod:`.plot`, needs matplotlib)."""
from .accuracy import (accuracy_curve, accuracy_table, certified_accuracy, clean_accuracy,
                       read_results_csv, report_from_csv)
from .plot import PLOT_STYLES, PlotResult, plot_certified_accuracy

__all__ = ["certified_accuracy", "clean_accuracy", "accuracy_table", "read_results_csv",
           "report_from_csv", "plot_certified_accuracy", "accuracy_curve", "PlotResult",
           "PLOT_STYLES"]
