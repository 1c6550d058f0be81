"""Exceptions raised by numbaflip's public layer."""


class NumbaflipInputError(ValueError):
    """Bad input to a public function or to the command line.

    The message always says what is wrong and how to fix it.  The CLI turns this exception
    into one line on stderr and exit status 2, without a traceback.
    """


class NumbaflipWarning(UserWarning):
    """A result is valid but weaker than it could be (e.g. Newton stopped early)."""
