"""Tushare's failures, sorted into the ones worth retrying and the ones that must stop a run.

The pro client (``tushare/pro/client.py``) raises a plain ``Exception(msg)`` whenever the server answers
with ``code != 0``, so the server's message text is all there is to classify on. Network failures come
from ``requests`` unchanged. A non-2xx HTTP status does not raise at all: the client returns an empty
``DataFrame()`` without columns, which the adapter treats as a transient failure.
"""

from __future__ import annotations

import json
import re
from enum import Enum

import requests

from stockml.sources.base import FatalSourceError


class TushareError(RuntimeError):
    """A tushare call failed; the message names the endpoint and what to do."""


class TushareAuthError(TushareError, FatalSourceError):
    """The token is missing or rejected. Not retried."""


class TushareQuotaError(TushareError, FatalSourceError):
    """The account may not call this endpoint now (points, permission, daily quota). Not retried."""


class TushareTransientError(TushareError):
    """A failure that may pass (network, server, per-minute quota) persisted beyond the retries."""


class Failure(Enum):
    TRANSIENT = "transient"  # retry with exponential backoff
    RATE_LIMITED = "rate_limited"  # per-minute quota: retry after the server's window has passed
    AUTH = "auth"
    QUOTA = "quota"
    UNKNOWN = "unknown"  # fail fast: retrying what we do not understand only hides it


# Server messages, as the pro API writes them, e.g.
# "抱歉，您每分钟最多访问该接口200次，权限的具体详情访问：..." (older servers wrote "每分最多").
_PER_MINUTE = re.compile(r"每分钟?最多访问")
_DAILY_OR_HOURLY = re.compile(r"每(天|日|小时)最多访问")
# "没有接口访问权限", "没有权限访问该接口", "没有访问该接口的权限"; "积分" = the account's points.
_PERMISSION = re.compile(r"没有.{0,8}权限|积分")
_TOKEN = re.compile(r"token", re.IGNORECASE)
_TRY_AGAIN = ("请稍后", "服务器繁忙", "系统繁忙")


def classify(exc: BaseException) -> Failure:
    """Sort one exception raised by a tushare call."""
    if isinstance(exc, requests.HTTPError):
        status = exc.response.status_code if exc.response is not None else None
        if status == 429:
            return Failure.RATE_LIMITED
        if status is not None and status >= 500:
            return Failure.TRANSIENT
        return Failure.UNKNOWN
    network = requests.ConnectionError | requests.Timeout | requests.exceptions.ChunkedEncodingError
    if isinstance(exc, network):
        return Failure.TRANSIENT
    if isinstance(exc, json.JSONDecodeError):  # a proxy's error page instead of the API's JSON
        return Failure.TRANSIENT
    msg = str(exc)
    # Order matters: the per-minute message also says "权限的具体详情", and quota beats token.
    if _PER_MINUTE.search(msg):
        return Failure.RATE_LIMITED
    if _DAILY_OR_HOURLY.search(msg):
        return Failure.QUOTA
    if _TOKEN.search(msg):
        return Failure.AUTH
    if _PERMISSION.search(msg):
        return Failure.QUOTA
    if any(marker in msg for marker in _TRY_AGAIN):
        return Failure.TRANSIENT
    return Failure.UNKNOWN


def fatal_error(kind: Failure, call: str, exc: BaseException) -> TushareError:
    """The exception to raise, at once, for a failure that is not retried."""
    msg = f"{type(exc).__name__}: {exc}"
    if kind is Failure.AUTH:
        return TushareAuthError(
            f"tushare rejected the token on {call} ({msg}). Check TUSHARE_TOKEN: it must hold the token "
            "shown in your tushare.pro account; the call was not retried."
        )
    if kind is Failure.QUOTA:
        return TushareQuotaError(
            f"tushare refused {call} ({msg}). This is a limit of the account (points, permission or "
            "daily quota), so retrying cannot help: wait for the quota to reset, raise the account's "
            "points, or drop this endpoint from the tushare config."
        )
    return TushareError(f"tushare call {call} failed with an error that is not known to be transient ({msg})")
