"""Tushare fakes for tests: a client that serves tushare's frames from the market the tests build
(:mod:`tushare_data`) and can fail on demand, a fake clock, and a fake HTTP layer for the real pro client.
No network, no files."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import tushare_data as market


@dataclass
class Call:
    endpoint: str
    params: dict[str, Any]
    at: float


@dataclass
class FakeTushareClient:
    """Answers tushare pro endpoints like ``pro_api(token)`` does (``client.daily(trade_date=...)``).

    ``fail(endpoint, *errors)`` makes the next calls to ``endpoint`` raise those errors in turn;
    ``handlers[endpoint]`` can be replaced to serve another frame. Every call is logged with the clock.
    """

    clock: Callable[[], float] = lambda: 0.0
    calls: list[Call] = field(default_factory=list)
    handlers: dict[str, Callable[..., pd.DataFrame]] = field(default_factory=dict)
    _failures: dict[str, deque[BaseException]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.handlers = {
            "daily": _daily,
            "adj_factor": _adj_factor,
            "trade_cal": _trade_cal,
            "stock_basic": _stock_basic,
            "index_daily": _index_daily,
            "index_weight": _index_weight,
            "shibor": _shibor,
            **{name: functools.partial(_macro, name) for name in market.MONTHLY_MACRO},
            **self.handlers,
        }

    def fail(self, endpoint: str, *errors: BaseException) -> None:
        self._failures.setdefault(endpoint, deque()).extend(errors)

    def count(self, endpoint: str) -> int:
        return sum(c.endpoint == endpoint for c in self.calls)

    def query(self, api_name: str, fields: str = "", **params: Any) -> pd.DataFrame:
        self.calls.append(Call(api_name, dict(params, fields=fields) if fields else params, self.clock()))
        pending = self._failures.get(api_name)
        if pending:
            raise pending.popleft()
        frame = self.handlers[api_name](**params)
        if fields:
            frame = frame[[c for c in fields.split(",") if c in frame.columns]]
        return frame.reset_index(drop=True)

    def __getattr__(self, name: str) -> Callable[..., pd.DataFrame]:
        if name.startswith("_"):
            raise AttributeError(name)
        return functools.partial(self.query, name)


def _daily(trade_date: str, **_: Any) -> pd.DataFrame:
    bars = market.daily()
    return bars[bars["trade_date"] == trade_date]


def _adj_factor(trade_date: str, **_: Any) -> pd.DataFrame:
    factors = market.adj_factor()
    return factors[factors["trade_date"] == trade_date]


def _trade_cal(exchange: str = "SSE", start_date: str = "", end_date: str = "", **_: Any) -> pd.DataFrame:
    """Every calendar day of the range with tushare's columns, newest first."""
    days = pd.date_range(start_date, end_date, freq="D").strftime("%Y%m%d")
    opened = set(market.open_days(start_date, end_date))
    rows, before = [], market.previous_open_day(start_date)
    for day in days:
        rows.append((exchange, day, int(day in opened), before))
        before = day if day in opened else before
    frame = pd.DataFrame(rows, columns=["exchange", "cal_date", "is_open", "pretrade_date"])
    return frame.iloc[::-1]


def _stock_basic(exchange: str = "", list_status: str = "L", **_: Any) -> pd.DataFrame:
    basic = market.stock_basic()
    return basic[basic["list_status"] == list_status]


def _index_daily(ts_code: str, start_date: str, end_date: str, **_: Any) -> pd.DataFrame:
    index = market.index_daily()
    return index[(index["ts_code"] == ts_code) & index["trade_date"].between(start_date, end_date)]


def _index_weight(index_code: str, start_date: str, end_date: str, **_: Any) -> pd.DataFrame:
    w = market.INDEX_WEIGHT
    return w[(w["index_code"] == index_code) & w["trade_date"].between(start_date, end_date)]


def _shibor(start_date: str, end_date: str, **_: Any) -> pd.DataFrame:
    rates = market.shibor()
    return rates[rates["date"].between(start_date, end_date)]


def _macro(endpoint: str, start_m: str = "", end_m: str = "", **_: Any) -> pd.DataFrame:
    frame = market.macro(endpoint)
    return frame[frame["month"].between(start_m or "000000", end_m or "999999")]


class FakeClock:
    """``clock()`` reads the time; ``clock.sleep(s)`` records the sleep and advances the time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeResponse:
    """What the pro client reads from ``requests.post``: truthiness (2xx) and ``.text``."""

    def __init__(self, status_code: int, payload: dict[str, Any] | None) -> None:
        self.status_code = status_code
        self.text = json.dumps(payload, ensure_ascii=False, default=_plain) if payload is not None else ""

    def __bool__(self) -> bool:
        return self.status_code < 400


def _plain(value: Any) -> Any:
    return value.item()  # numpy scalars


class FakeHttp:
    """Stands in for ``requests.post`` under the real pro client: answers tushare's JSON from a
    :class:`FakeTushareClient`; queued ``script`` items (a response or an exception) go first."""

    def __init__(self, backend: FakeTushareClient) -> None:
        self.backend = backend
        self.posts: list[dict[str, Any]] = []
        self.script: deque[FakeResponse | BaseException] = deque()

    def post(self, url: str, json: dict[str, Any], timeout: float) -> FakeResponse:  # noqa: A002
        self.posts.append({"url": url, "json": json, "timeout": timeout})
        if self.script:
            item = self.script.popleft()
            if isinstance(item, BaseException):
                raise item
            return item
        params = {k: v for k, v in json["params"].items() if k != "ts_type_name"}
        frame = self.backend.query(json["api_name"], fields=json["fields"], **params)
        items = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
        return FakeResponse(
            200, {"code": 0, "msg": "", "data": {"fields": list(frame.columns), "items": items}}
        )


def today() -> dt.date:
    return dt.date(2025, 1, 15)
