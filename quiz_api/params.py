"""Path and query parameters shared by the routers: row ids and offsets the database can hold.

The models' ids are SQL INTEGER columns: 32-bit on PostgreSQL, 64-bit on SQLite. A number outside
the range both hold names no row, and passed on it makes the driver raise (SQLite's
OverflowError, PostgreSQL's NumericValueOutOfRange): a 500. So such input is rejected as
invalid (422) before any query runs; within the range, an id naming no row is a 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

MAX_ROW_ID = 2**31 - 1
# Text parameters reach SQL as bound strings; PostgreSQL refuses NUL characters in text.
NO_NUL_PATTERN = r"^[^\x00]*$"

PathId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)]
Offset = Annotated[int, Query(ge=0, le=MAX_ROW_ID)]
# Every list is paginated: a page holds at most MAX_PAGE items (422 beyond).
MAX_PAGE = 100
DEFAULT_PAGE = 50
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
