"""The quiz API's error type: a problem in its settings or start-up that the operator can fix."""


class QuizError(Exception):
    """Bad configuration or an unusable database; the server's command line prints it as one line."""
