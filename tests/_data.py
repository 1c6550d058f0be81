"""Where the tests' reference data lives: ``tests/data`` (see ``tests/data/README.md``).

The one place that locates it.  Missing data is an error, never a skip: every helper raises
``FileNotFoundError`` when its files are absent, so a test that needs them fails.
"""
import json
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
#: Copy of the shared exact-arithmetic reference cases (``../shared/cases`` next to a checkout).
CASES_DIR = DATA_DIR / "cases"
THRESHOLDS_DIR = CASES_DIR / "thresholds"
INDEX_FILE = CASES_DIR / "INDEX.json"
#: Files in CASES_DIR that are not case files.
NOT_CASES = ("INDEX.json", "ratio_tight_over_kl.json")


def _require(paths, what, where):
    paths = sorted(paths)
    if not paths:
        raise FileNotFoundError(
            f"no {what} found in {where}; the reference data belongs in tests/data "
            "(see tests/data/README.md for how to copy it from the shared cases)")
    return paths


def case_file(stem: str) -> Path:
    """Path of one case file by name (``bin_tiny_bruteforce``); raises if it does not exist."""
    p = CASES_DIR / f"{stem}.json"
    if not p.is_file():
        raise FileNotFoundError(f"reference case {p} is missing (see tests/data/README.md)")
    return p


def case_files() -> list:
    """Every case file (``*.json`` except INDEX.json); raises if there is none."""
    return _require((p for p in CASES_DIR.glob("*.json") if p.name not in NOT_CASES),
                    "reference case files (*.json)", CASES_DIR)


def threshold_files() -> list:
    """Every reference threshold table ``thresholds/thresholds_*.json``; raises if none."""
    return _require(THRESHOLDS_DIR.glob("thresholds_*.json"),
                    "reference threshold tables (thresholds_*.json)", THRESHOLDS_DIR)


def index() -> list:
    """The entries of INDEX.json (one dict per case, with ``name`` and ``m``)."""
    return json.loads(INDEX_FILE.read_text())
