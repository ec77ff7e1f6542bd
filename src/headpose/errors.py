"""One exception type for every user-facing failure.

The CLI turns a ``HeadposeError`` into a single line on stderr and exit code 2; Python callers can catch it.
Messages name the file and what is wrong with it.
"""


class HeadposeError(Exception):
    """Bad input or configuration, explained in one line."""
