"""Precompute tight label-flip thresholds L_r = log(1 - p_r) and write them as .npz tables.

What: for each noise level q, class count K and training-set size n, the Neyman-Pearson
thresholds of Lee et al. (2019) as used by Rosenfeld et al. (ICML 2020, eq. 2) -- see
``numbaflip/tight/thresholds.py`` and ``docs/math.md`` section 4 -- for r = 0..r_max, rounded DOWN
(never over-certify), non-increasing, in the format of ``numbaflip/tight/cache.py``.

r_max: by default min(n, the first r with L_r < -1e4) (``numbaflip.tight.cache.default_r_max``):
a point is certified at r iff log(1 - p) < L_r, and the Chernoff bounds essentially never go
below -1e4; if one does, the library extends the table on demand.  ``--r-max`` overrides it
(always capped at n).

How long: the float64 path is O(r_max^2); on one core the --paper preset (15 tables, r_max up to
13007) takes about 10-20 s.  ``--exact`` uses exact rational arithmetic: fine up to r_max of a
few hundred (K = 10, r_max = 200: about a second), far too slow for the paper's r_max.

Where: ``--out DIR`` (default: the writable cache directory, numbaflip.config.table_dir /
$NUMBAFLIP_TABLE_DIR / ~/.cache/numbaflip/thresholds).  ``--out precomputed`` regenerates the
tables shipped with the package (run from the repository root).

Examples::

    python scripts/precompute_thresholds.py --paper --out precomputed
    python scripts/precompute_thresholds.py -q 0.1 0.2 -K 2 -n 1000 5000
"""
from __future__ import annotations

import sys

from numbaflip.tight.precompute import PAPER_SETTINGS, build_precompute_parser  # noqa: F401  (re-export)


def main(argv=None) -> int:
    """Parse ``argv`` (default: sys.argv[1:]) and write the tables; returns the exit status.
    The logic lives in :func:`numbaflip.tight.cache.precompute_main` (also ``numbaflip precompute``).
    """
    from numbaflip.tight.precompute import precompute_main

    return precompute_main(argv)


if __name__ == "__main__":
    sys.exit(main())
