"""The study's error type: library code raises it, the CLIs turn it into one clear line."""

from quiz_api.errors import QuizError
from quiz_architectures.errors import ArchitectureError


class HarnessError(Exception):
    """A problem the user can fix (bad argument, missing file, refused combination)."""


# What a command line turns into one `error:` line: the study's own errors and those of the
# architectures and the quiz API it drives.
USER_ERRORS: tuple[type[Exception], ...] = (HarnessError, ArchitectureError, QuizError)
