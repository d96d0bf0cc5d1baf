"""The quiz API under study: FastAPI + SQLAlchemy 2 ORM + PyJWT + argon2 (pwdlib).

Nothing is built at import time: `create_app(settings=..., session_factory=...)` builds an app, so
one process can build the app for any test architecture.
"""

from quiz_api.app import create_app

__all__ = ["create_app"]
