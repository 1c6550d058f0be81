"""progress= in the API drives one bar for the whole batch (not one per block)."""
import numpy as np

import numbaflip
from numbaflip import config


def test_one_progress_bar_over_all_blocks(capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    H = rng.normal(size=(7, 3))
    try:
        config.config.block_size = 2        # 4 blocks
        numbaflip.certify(X, y, H, q=0.1, progress=True)
    finally:
        config.reset()
    err = capsys.readouterr().err
    assert "certify" in err
    assert err.count(" 0/7 ") == 1          # one bar over all 7 points, started once
    import re
    assert set(re.findall(r"\d+/(\d+) ", err)) == {"7"}   # never a per-block total
    numbaflip.certify(X, y, H, q=0.1, progress=False)
    assert capsys.readouterr().err == ""
