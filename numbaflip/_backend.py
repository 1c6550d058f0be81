"""Choice of the exact-arithmetic backend, made once, here (mpmath ``libmp/backend.py`` style).

numbaflip's exact paths (threshold tables, :mod:`numbaflip.tight.thresholds`) use exact rationals:
gmpy2's ``mpz``/``mpq`` when gmpy2 is importable, else Python's ``int`` and
:class:`fractions.Fraction`.  Both give bit-identical results; gmpy2 is only faster.

The pure-Python fallback can be forced

* for a whole process, by setting the environment variable ``NUMBAFLIP_NO_GMPY2=1`` before
  numbaflip is imported;
* at run time, with :func:`select_backend` (tests use this to exercise both backends).

Other modules must read the backend through this module at call time (``_backend.mpq``,
``_backend.mpz``), never copy the names at import, so that :func:`select_backend` takes effect.
"""
from __future__ import annotations

import os
from fractions import Fraction

try:  # a missing gmpy2 is fine: the fallback is complete, only slower
    import gmpy2 as _gmpy2
except ImportError:  # pragma: no cover - depends on the environment
    _gmpy2 = None

#: True when gmpy2 can be imported at all (independent of the backend in use).
GMPY2_AVAILABLE: bool = _gmpy2 is not None

#: Name of the backend in use: ``"gmpy2"`` or ``"python"``.
BACKEND: str = "python"
#: True when the backend in use is gmpy2.
HAVE_GMPY2: bool = False
#: Exact rational type of the backend in use (``gmpy2.mpq`` or ``fractions.Fraction``).
mpq = Fraction
#: Exact integer type of the backend in use (``gmpy2.mpz`` or ``int``).
mpz = int


def select_backend(name: str) -> str:
    """Select the exact-arithmetic backend: ``"gmpy2"``, ``"python"`` or ``"auto"``.

    ``"auto"`` means gmpy2 if it is installed.  Returns the name of the previous backend so a
    caller (a test) can restore it.  Asking for ``"gmpy2"`` when it is not installed raises
    ImportError with the install command.
    """
    global BACKEND, HAVE_GMPY2, mpq, mpz
    previous = BACKEND
    if name == "auto":
        name = "gmpy2" if GMPY2_AVAILABLE else "python"
    if name == "gmpy2":
        if _gmpy2 is None:
            raise ImportError(
                "the gmpy2 backend was requested but gmpy2 is not installed; "
                "install it with `pip install gmpy2`, or select the 'python' backend")
        BACKEND, HAVE_GMPY2, mpq, mpz = "gmpy2", True, _gmpy2.mpq, _gmpy2.mpz
    elif name == "python":
        BACKEND, HAVE_GMPY2, mpq, mpz = "python", False, Fraction, int
    else:
        raise ValueError(f"unknown backend {name!r}: use 'gmpy2', 'python' or 'auto'")
    return previous


select_backend("python" if os.environ.get("NUMBAFLIP_NO_GMPY2", "") not in ("", "0") else "auto")
