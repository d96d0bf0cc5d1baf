"""The study's error type, and every error a command line of the study turns into one line."""

from quiz_api.errors import QuizError
from quiz_architectures.errors import ArchitectureError
from suitebench.errors import BenchError


class StudyError(BenchError):
    """A problem the user can fix (bad argument, missing run, refused combination)."""


# What a command line of the study reports as one `error:` line: the study's and the engine's own
# errors, and those of the architectures and the quiz API it drives.
USER_ERRORS: tuple[type[Exception], ...] = (BenchError, ArchitectureError, QuizError)
