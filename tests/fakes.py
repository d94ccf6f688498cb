"""Tushare fakes for tests: a client that serves tushare's frames from the shared A-share sample and
can fail on demand, a fake clock, and a fake HTTP layer for the real pro client. No network."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sample import require_sample

_TEXT = {c: str for c in ("ts_code", "trade_date", "list_date", "delist_date", "date", "month")}


def _read(relative: str) -> pd.DataFrame:
    return pd.read_csv(require_sample() / relative, dtype=_TEXT, encoding="utf-8-sig")


@functools.cache
def sample_daily() -> pd.DataFrame:
    """The ten sample stocks' unadjusted daily bars, exactly as in the files."""
    return pd.concat([_read(f"daily/{p.name}") for p in sorted((require_sample() / "daily").glob("*.csv"))])


@functools.cache
def sample_open_days() -> frozenset[str]:
    return frozenset(sample_daily()["trade_date"])


@functools.cache
def _monthly(relative: str, renames: tuple[tuple[str, str], ...]) -> pd.DataFrame:
    """A sample macro workbook in tushare's shape: month as YYYYMM, tushare's column names."""
    raw = _read(relative)
    out = pd.DataFrame({"month": raw["month"].str.replace("-", "", regex=False)})
    for sample_name, tushare_name in renames:
        out[tushare_name] = raw[sample_name]
    return out.iloc[::-1].reset_index(drop=True)  # tushare answers newest first


# Sample column -> tushare column (same statistic: e.g. CPI month-on-month is cn_cpi.nt_mom).
_MACRO = {
    "cn_cpi": ("macro/cn_cpi_ppi_mom_monthly.csv", (("CPI:环比", "nt_mom"),)),
    "cn_ppi": ("macro/cn_cpi_ppi_mom_monthly.csv", (("PPI:全部工业品:环比", "ppi_mom"),)),
    "cn_pmi": ("macro/cn_pmi_monthly.csv", (("PMI", "pmi010000"), ("PMI:生产", "pmi010400"))),
    "cn_m": (
        "macro/cn_money_credit_monthly.csv",
        (("M0", "m0"), ("M1", "m1"), ("M2", "m2"), ("M2:同比", "m2_yoy")),
    ),
}
# index_weight is not in the sample: two monthly snapshots, the newer one without 000858.SZ.
INDEX_WEIGHT = pd.DataFrame(
    {
        "index_code": "000300.SH",
        "con_code": [
            "600519.SH",
            "000001.SZ",
            "601318.SH",
            "600519.SH",
            "000001.SZ",
            "601318.SH",
            "000858.SZ",
        ],
        "trade_date": ["20241231"] * 3 + ["20241129"] * 4,
        "weight": [5.1, 1.2, 2.9, 5.0, 1.1, 3.0, 0.9],
    }
)


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
            **{name: functools.partial(_macro, name) for name in _MACRO},
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
    bars = sample_daily()
    return bars[bars["trade_date"] == trade_date]


def _adj_factor(trade_date: str, **_: Any) -> pd.DataFrame:
    """Not in the sample: a factor per stock that is the same every day (enough to test plumbing)."""
    bars = _daily(trade_date)
    factors = bars["ts_code"].map(lambda code: 100.0 + int(code[:6]) % 97)
    return pd.DataFrame({"ts_code": bars["ts_code"], "trade_date": trade_date, "adj_factor": factors})


def _trade_cal(exchange: str = "SSE", start_date: str = "", end_date: str = "", **_: Any) -> pd.DataFrame:
    """The sample's trading days as the open days of a calendar, with tushare's columns, newest first."""
    days = pd.date_range(start_date, end_date, freq="D").strftime("%Y%m%d")
    opened = sample_open_days()
    all_open = sorted(opened)
    rows = []
    for day in days:
        before = [d for d in all_open if d < day]
        rows.append((exchange, day, int(day in opened), before[-1] if before else None))
    frame = pd.DataFrame(rows, columns=["exchange", "cal_date", "is_open", "pretrade_date"])
    return frame.iloc[::-1]


def _stock_basic(exchange: str = "", list_status: str = "L", **_: Any) -> pd.DataFrame:
    basic = _read("stock_basic.csv")
    return basic[basic["status"] == list_status]


def _index_daily(ts_code: str, start_date: str, end_date: str, **_: Any) -> pd.DataFrame:
    index = _read("index_daily.csv")
    return index[(index["ts_code"] == ts_code) & index["trade_date"].between(start_date, end_date)]


def _index_weight(index_code: str, start_date: str, end_date: str, **_: Any) -> pd.DataFrame:
    w = INDEX_WEIGHT
    return w[(w["index_code"] == index_code) & w["trade_date"].between(start_date, end_date)]


def _shibor(start_date: str, end_date: str, **_: Any) -> pd.DataFrame:
    rates = _read("macro/shibor.csv")
    return rates[rates["date"].between(start_date, end_date)].iloc[::-1]


def _macro(endpoint: str, start_m: str = "", end_m: str = "", **_: Any) -> pd.DataFrame:
    relative, renames = _MACRO[endpoint]
    frame = _monthly(relative, renames)
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
