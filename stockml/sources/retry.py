"""Rate-limited calls with retries, for the sources that scrape public web APIs (akshare, yfinance).

The pattern of :mod:`stockml.sources.tushare_source`: every call waits for the client-side rate limiter,
a transient failure (connection reset, timeout, HTTP 5xx, a proxy's HTML page instead of JSON) is retried
with capped exponential backoff, a rate-limit answer waits a whole window, and anything else stops at once.
Exceptions are sorted by the names of their classes, so that ``requests`` (akshare) and ``curl_cffi``
(yfinance) errors are recognised without importing either library.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection
from enum import Enum
from types import ModuleType
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from stockml.sources.base import FatalSourceError
from stockml.sources.ratelimit import RateLimiter

T = TypeVar("T")

# Class names (anywhere in an exception's MRO) of failures that may pass: requests' and curl_cffi's
# ConnectionError / Timeout families, the builtin ones, http.client's, and a body that is not JSON.
_TRANSIENT_NAMES = frozenset(
    {
        "ConnectionError",
        "Timeout",
        "TimeoutError",
        "ChunkedEncodingError",
        "IncompleteRead",
        "RemoteDisconnected",
        "ProtocolError",
        "JSONDecodeError",
    }
)


class HttpSourceConfig(BaseModel):
    """Rate limit and retry settings shared by the web sources."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    requests_per_minute: int = Field(default=60, ge=1)
    timeout_s: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=4, ge=0, le=20)
    backoff_s: float = Field(default=1.0, ge=0)  # first retry delay; doubles on each retry
    backoff_cap_s: float = Field(default=30.0, ge=0)
    rate_limited_wait_s: float = Field(default=60.0, ge=0)  # after a "too many requests" answer


class Failure(Enum):
    TRANSIENT = "transient"  # retry with exponential backoff
    RATE_LIMITED = "rate_limited"  # retry after a whole rate-limit window
    FATAL = "fatal"  # fail fast: retrying what we do not understand only hides it


class SourceCallError(RuntimeError):
    """A call to a web source failed; the message names the call."""


class TransientSourceError(SourceCallError):
    """A failure that may pass persisted beyond the retries (an orchestrator may retry the fetch)."""


class FatalCallError(SourceCallError, FatalSourceError):
    """A failure not known to be transient: not retried, here or by the orchestrator."""


class MissingPackageError(FatalSourceError, ImportError):
    """The source's optional package is not installed."""


def import_client(module: str, source: str) -> ModuleType:
    """Import a source's optional package on first use, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingPackageError(
            f"the {source} source needs the {module} package, which is not installed: "
            f"pip install 'stockml[{source}]' (or choose another source)"
        ) from exc


def classify(exc: BaseException, rate_limited: Collection[str] = ()) -> Failure:
    """Sort one exception; ``rate_limited`` adds class names that mean "too many requests"."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & set(rate_limited):
        return Failure.RATE_LIMITED
    if "HTTPError" in names:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status == 429:
            return Failure.RATE_LIMITED
        if isinstance(status, int) and status >= 500:
            return Failure.TRANSIENT
        return Failure.FATAL
    if names & _TRANSIENT_NAMES:
        return Failure.TRANSIENT
    return Failure.FATAL


def call_with_retries(
    fn: Callable[[], T],
    *,
    call: str,
    config: HttpSourceConfig,
    limiter: RateLimiter,
    sleep: Callable[[float], None],
    sort: Callable[[BaseException], Failure] = classify,
    fatal_hint: str = "",
) -> T:
    """``fn()`` through the rate limiter, retried on transient failures. ``call`` names it in errors."""
    last: BaseException | None = None
    kind = Failure.TRANSIENT
    for attempt in range(config.max_retries + 1):
        if attempt:
            sleep(retry_delay(config, attempt, kind))
        limiter.acquire()
        try:
            return fn()
        except Exception as exc:
            kind = sort(exc)
            if kind is Failure.FATAL:
                raise FatalCallError(
                    f"{call} failed with an error not known to be transient ({type(exc).__name__}: {exc}); "
                    f"not retried. {fatal_hint}".strip()
                ) from exc
            last = exc
    raise TransientSourceError(
        f"{call} still failing after {config.max_retries} retries; last error: {type(last).__name__}: {last}"
    ) from last


def retry_delay(config: HttpSourceConfig, attempt: int, kind: Failure) -> float:
    """Seconds before retry ``attempt`` (1-based): exponential, capped; rate limiting waits a window."""
    backoff = min(config.backoff_s * 2 ** (attempt - 1), config.backoff_cap_s)
    return max(backoff, config.rate_limited_wait_s) if kind is Failure.RATE_LIMITED else backoff
