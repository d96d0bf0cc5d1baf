"""Run the quiz API as a server: `python -m quiz_api [--host H] [--port P]`.

DATABASE_URL selects the database (disk SQLite `./quiz.db` by default); the schema and reference
data are created on start.
"""

from __future__ import annotations

import argparse
import sys

from quiz_api.errors import QuizError
from quiz_api.server import build_server_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m quiz_api", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    args = parser.parse_args(argv)
    try:
        app = build_server_app()
    except QuizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
