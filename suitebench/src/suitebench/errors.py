"""The engine's error type: library code raises it, the command line turns it into one clear line."""


class BenchError(Exception):
    """A problem the user can fix: a bad argument, a missing file or run, an unusable design."""
