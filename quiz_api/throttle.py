"""The login throttle: failed logins counted per username and per client address, in this process.

Only failures count, so a client that logs in correctly is never slowed down; a success clears
its username's failures (not its address's, or one good account would reset a guessing run).
Memory is bounded: each key keeps at most `limit` timestamps, and at most `max_keys` keys are
remembered, the least recently failed forgotten first. Being in-process, the counts are per
server process and start again when it restarts; behind a proxy every client has the proxy's
address (the throttle does not trust X-Forwarded-For).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class LoginThrottle:
    def __init__(
        self,
        *,
        failures_per_username: int,
        failures_per_address: int,
        window_s: float,
        max_keys: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = {"username": failures_per_username, "address": failures_per_address}
        self.window_s = window_s
        self.max_keys = max_keys
        self.clock = clock
        self._failures: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        # Login runs in worker threads.
        self._lock = threading.Lock()

    def retry_after_s(self, *, username: str, address: str) -> int | None:
        """Seconds until this username and address may try again, or None when they may now."""
        now = self.clock()
        waits = []
        with self._lock:
            for kind, key in (("username", username), ("address", address)):
                limit, failures = self.limits[kind], self._failures.get((kind, key))
                if limit and failures is not None and len(failures) >= limit:
                    # The oldest of the last `limit` failures must leave the window first.
                    wait = failures[0] + self.window_s - now
                    if wait > 0:
                        waits.append(wait)
        return math.ceil(max(waits)) if waits else None

    def record_failure(self, *, username: str, address: str) -> None:
        now = self.clock()
        with self._lock:
            for kind, key in (("username", username), ("address", address)):
                limit = self.limits[kind]
                if not limit:
                    continue
                failures = self._failures.pop((kind, key), None) or deque(maxlen=limit)
                failures.append(now)
                self._failures[(kind, key)] = failures  # now the most recent key
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def record_success(self, *, username: str) -> None:
        with self._lock:
            self._failures.pop(("username", username), None)

    def __len__(self) -> int:
        """How many usernames and addresses are remembered."""
        return len(self._failures)
