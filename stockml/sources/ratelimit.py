"""A client-side rate limiter: at most N calls in any sliding window of ``period_s`` seconds.

Thread-safe. The clock and the sleep function are injectable so that tests run instantly.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """Sliding-window limiter: ``acquire()`` blocks until a call is allowed, then records it.

    A sliding window (not a token bucket) because servers such as tushare count calls per minute:
    no 60 s window ever holds more than ``calls`` of our calls, whenever the server starts its own.
    """

    def __init__(
        self,
        calls: int,
        period_s: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if calls < 1:
            raise ValueError(f"calls must be >= 1, got {calls}")
        if period_s <= 0:
            raise ValueError(f"period_s must be > 0, got {period_s}")
        self.calls = calls
        self.period_s = period_s
        self._clock = clock
        self._sleep = sleep
        self._stamps: deque[float] = deque()
        # Held while waiting, so waiters are served one at a time and none overtakes the window.
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait until one more call fits in the window, record it, and return the seconds waited."""
        waited = 0.0
        with self._lock:
            while True:
                now = self._clock()
                while self._stamps and now - self._stamps[0] >= self.period_s:
                    self._stamps.popleft()
                if len(self._stamps) < self.calls:
                    self._stamps.append(now)
                    return waited
                delay = self._stamps[0] + self.period_s - now
                self._sleep(delay)
                waited += delay
