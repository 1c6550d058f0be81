"""Input and output: feature/label tables in (:mod:`.read`), results out (:mod:`.write`), and
the no-clobber output rules (:mod:`._atomic`)."""
from .read import Table, load_table, open_table
from .write import (jsonable, results_csv_text, results_json_text, write_results_csv,
                    write_results_json)

__all__ = ["load_table", "open_table", "Table", "write_results_csv", "write_results_json",
           "results_csv_text", "results_json_text", "jsonable"]
