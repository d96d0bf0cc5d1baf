"""The project's error type: library code raises it, the CLIs turn it into one clear line."""


class HarnessError(Exception):
    """A problem the user can fix (bad argument, missing file, refused combination)."""
