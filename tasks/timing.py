"""Stage timings of a flow run: the seconds each step took, as the run's summary reports them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class StageTimer:
    """Wall-clock seconds per named stage (rounded to 0.1 s), and since the timer was made."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._began = time.perf_counter()
        self.started_at = time.time()  # epoch seconds: when the run's work began (the MLflow run's start)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the ``with`` block as ``seconds[name]``."""
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = _since(began)

    def elapsed(self) -> float:
        """Seconds since the timer was made."""
        return _since(self._began)


def _since(began: float) -> float:
    return round(time.perf_counter() - began, 1)
