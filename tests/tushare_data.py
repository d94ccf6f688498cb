"""A small A-share market in tushare's own shapes, built by the tests (seeded, no files, no network): what
:class:`fakes.FakeTushareClient` serves.

Eight stocks on both exchanges (a ChiNext and a STAR name among them) and the CSI 300 trade on the SSE's
open days from 2021-10-08 to 2024-12-31: weekdays less the exchange's real holiday closures. The codes
are real; prices and events are made up. What real daily bars have and a naive generator would not:

- a suspension: the stock is absent from ``daily`` on those days but keeps its ``adj_factor`` rows, as
  tushare answers (its factors have more dates than its bars);
- a 10-for-10 bonus issue: on the ex-date ``pre_close`` is the previous close halved and the cumulative
  ``adj_factor`` doubles; on every other day ``pre_close`` is the previous close;
- price limits (10 % on the main boards, 20 % on ChiNext and STAR), prices in fen, ``vol`` in lots of
  100 shares and ``amount`` in thousand CNY;
- answers newest first, dates as ``YYYYMMDD`` text and months as ``YYYYMM``.

Macro tables (cn_cpi, cn_ppi, cn_pmi, cn_m, shibor) carry tushare's column names, January 2021 on.
"""

from __future__ import annotations

import datetime as dt
import functools
import zlib
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd

SEED = 20211008
FIRST_DAY, LAST_DAY = "20211008", "20241231"
FIRST_MONTH, LAST_MONTH = "2021-01", "2024-12"
MONTHLY_MACRO = ("cn_cpi", "cn_ppi", "cn_pmi", "cn_m")
# Weekdays the SSE was closed, a day or a first-last range, as the exchange announced them.
_CLOSURES = (
    "20210920-20210921 20211001-20211007",
    "20220103 20220131-20220204 20220404-20220405 20220502-20220504 20220603 20220912 20221003-20221007",
    "20230102 20230123-20230127 20230405 20230501-20230503 20230622-20230623 20230929-20231006",
    "20240101 20240209-20240216 20240404-20240405 20240501-20240503 20240610 20240916-20240917",
    "20241001-20241007",
)
DAILY_COLUMNS = ["ts_code", "trade_date", "open", "high", "low", "close", "pre_close", "change", "pct_chg"]
DAILY_COLUMNS += ["vol", "amount"]
INDEX_COLUMNS = ["ts_code", "trade_date", "close", "open", "high", "low", "pre_close", "change", "pct_chg"]
INDEX_COLUMNS += ["vol", "amount"]


@dataclass(frozen=True)
class Stock:
    ts_code: str
    name: str
    area: str
    industry: str
    list_date: str
    price: float  # close before the first day, CNY
    adj_factor: float  # tushare's cumulative factor on the first day
    beta: float
    lots: float  # volume of an ordinary day, lots of 100 shares

    @property
    def board(self) -> str:
        return {"300": "创业板", "688": "科创板"}.get(self.ts_code[:3], "主板")

    @property
    def limit(self) -> float:
        return 0.1 if self.board == "主板" else 0.2


STOCKS = (
    Stock("000001.SZ", "平安银行", "深圳", "银行", "19910403", 17.6, 108.031, 1.0, 1.1e6),
    Stock("000858.SZ", "五粮液", "四川", "白酒", "19980427", 232.0, 54.36, 1.2, 2.2e5),
    Stock("002594.SZ", "比亚迪", "深圳", "汽车整车", "20110630", 262.0, 2.147, 1.3, 1.1e5),
    Stock("300750.SZ", "宁德时代", "福建", "电气设备", "20180611", 558.0, 1.552, 1.4, 9.0e4),
    Stock("600036.SH", "招商银行", "深圳", "银行", "20020409", 52.3, 11.962, 0.9, 6.5e5),
    Stock("600519.SH", "贵州茅台", "贵州", "白酒", "20010827", 1880.0, 8.201, 0.8, 3.2e4),
    Stock("601318.SH", "中国平安", "深圳", "保险", "20070301", 51.2, 3.416, 1.0, 7.0e5),
    Stock("688981.SH", "中芯国际", "上海", "半导体", "20200716", 56.8, 1.0, 1.5, 4.0e5),
)
# A code that left the market before the span: only stock_basic(list_status="D") knows it.
DELISTED = ("600087.SH", "600087", "退市长油", "江苏", None, "主板", "D", "19970611", "20140605")
SPLIT_CODE, SPLIT_DATE, SPLIT_RATIO = "300750.SZ", "20220315", 2.0  # 10转10
SUSPENDED_CODE, SUSPENDED_DAYS = "002594.SZ", ("20240104", "20240105", "20240108")
# index_weight: two monthly snapshots of the CSI 300, the newer one without 000858.SZ.
_MEMBERS = ["600519.SH", "000001.SZ", "601318.SH"]
INDEX_WEIGHT = pd.DataFrame(
    {
        "index_code": "000300.SH",
        "con_code": [*_MEMBERS, *_MEMBERS, "000858.SZ"],
        "trade_date": ["20241231"] * 3 + ["20241129"] * 4,
        "weight": [5.1, 1.2, 2.9, 5.0, 1.1, 3.0, 0.9],
    }
)


def _rng(key: str) -> np.random.Generator:
    """One stream per series, so that adding a stock or a table leaves the others' values as they are."""
    return np.random.default_rng([SEED, zlib.crc32(key.encode())])


@functools.cache
def _closed() -> frozenset[str]:
    days: list[str] = []
    for span in " ".join(_CLOSURES).split():
        first, _, last = span.partition("-")
        days += pd.bdate_range(first, last or first).strftime("%Y%m%d").tolist()
    return frozenset(days)


def open_days(start: str, end: str) -> list[str]:
    """The SSE's open days in ``start..end`` (``YYYYMMDD``, inclusive), ascending."""
    return [d for d in pd.bdate_range(start, end).strftime("%Y%m%d") if d not in _closed()]


def previous_open_day(day: str) -> str:
    """The last open day before ``day`` (tushare's ``pretrade_date``)."""
    start = (dt.datetime.strptime(day, "%Y%m%d") - dt.timedelta(days=31)).strftime("%Y%m%d")
    return [d for d in open_days(start, day) if d < day][-1]


def _newest_first(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    return frame.sort_values(by, ascending=False, kind="stable").reset_index(drop=True)


def _limit_price(pre_close: float, factor: float) -> float:
    """The exchange's limit price: rounded to the fen, half up."""
    return float(Decimal(repr(float(pre_close * factor))).quantize(Decimal("0.01"), ROUND_HALF_UP))


def _limited(value: float, down: float, up: float) -> float:
    return min(max(value, down), up)


def _stock_bars(stock: Stock, days: list[str], index_moves: np.ndarray) -> tuple[list[tuple], list[tuple]]:
    """Daily bars and adj_factor rows of one stock: a walk of closes, each bar built on its pre_close."""
    rng = _rng(stock.ts_code)
    n = len(days)
    moves = stock.beta * index_moves + 0.011 * rng.standard_t(3, n)  # fat tails: a few days hit the limit
    gaps = rng.normal(0.0, 0.005, n)  # open against pre_close
    reach = np.abs(rng.normal(0.0, 0.007, (n, 2)))  # high above and low below the body
    activity = rng.lognormal(0.0, 0.3, n)
    close, factor = stock.price, stock.adj_factor
    bars, factors = [], []
    for i, day in enumerate(days):
        pre_close = close
        if (stock.ts_code, day) == (SPLIT_CODE, SPLIT_DATE):
            pre_close = round(close / SPLIT_RATIO, 2)
            factor = round(factor * SPLIT_RATIO, 3)
        factors.append((stock.ts_code, day, factor))
        if stock.ts_code == SUSPENDED_CODE and day in SUSPENDED_DAYS:
            continue
        up, down = _limit_price(pre_close, 1 + stock.limit), _limit_price(pre_close, 1 - stock.limit)
        close = _limited(round(pre_close * (1 + moves[i]), 2), down, up)
        open_ = _limited(round(pre_close * (1 + gaps[i]), 2), down, up)
        high = min(round(max(open_, close) * (1 + reach[i, 0]), 2), up)
        low = max(round(min(open_, close) * (1 - reach[i, 1]), 2), down)
        vol = round(stock.lots * activity[i] * (1 + 20 * abs(moves[i])), 2)
        amount = round(vol * (open_ + high + low + close) / 4 / 10, 3)  # lots x 100 shares x CNY / 1000
        change = round(close - pre_close, 2)
        pct_chg = round(change / pre_close * 100, 4)
        bars.append((stock.ts_code, day, open_, high, low, close, pre_close, change, pct_chg, vol, amount))
    return bars, factors


def _index_bars(ts_code: str, days: list[str], moves: np.ndarray, level: float) -> pd.DataFrame:
    rng = _rng(f"{ts_code}:bars")
    n = len(days)
    closes = np.round(level * np.cumprod(1 + moves), 4)
    pre = np.round(np.concatenate([[level], closes[:-1]]), 4)
    opens = np.round(pre * (1 + rng.normal(0.0, 0.003, n)), 4)
    reach = np.abs(rng.normal(0.0, 0.005, (n, 2)))
    vol = np.round(1.1e8 * rng.lognormal(0.0, 0.25, n), 1)
    frame = pd.DataFrame(
        {
            "ts_code": ts_code,
            "trade_date": days,
            "close": closes,
            "open": opens,
            "high": np.round(np.maximum(opens, closes) * (1 + reach[:, 0]), 4),
            "low": np.round(np.minimum(opens, closes) * (1 - reach[:, 1]), 4),
            "pre_close": pre,
            "change": np.round(closes - pre, 4),
            "pct_chg": np.round((closes - pre) / pre * 100, 4),
            "vol": vol,
            # lots x 100 shares x an average share price of ~23 CNY that moves with the index, thousand CNY
            "amount": np.round(vol * 100 * (23.0 * closes / level) / 1e3, 1),
        }
    )
    return _newest_first(frame[INDEX_COLUMNS], "trade_date")


@functools.cache
def _market() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    days = open_days(FIRST_DAY, LAST_DAY)
    index_moves = _rng("000300.SH").normal(0.0002, 0.011, len(days))
    bars, factors = [], []
    for stock in STOCKS:
        b, f = _stock_bars(stock, days, index_moves)
        bars += b
        factors += f
    order = ["trade_date", "ts_code"]
    daily = pd.DataFrame(bars, columns=DAILY_COLUMNS).sort_values(order, ascending=[False, True])
    adj = pd.DataFrame(factors, columns=["ts_code", "trade_date", "adj_factor"]).sort_values(
        order, ascending=[False, True]
    )
    index = _index_bars("000300.SH", days, index_moves, 4916.0)
    return daily.reset_index(drop=True), adj.reset_index(drop=True), index


def daily() -> pd.DataFrame:
    """Every unadjusted daily bar of the span (``pro.daily``'s columns), newest first."""
    return _market()[0]


def adj_factor() -> pd.DataFrame:
    return _market()[1]


def index_daily() -> pd.DataFrame:
    return _market()[2]


def stock_basic() -> pd.DataFrame:
    """``pro.stock_basic`` with ``list_status`` and ``delist_date`` among the fields."""
    rows = [
        (s.ts_code, s.ts_code[:6], s.name, s.area, s.industry, s.board, "L", s.list_date, None)
        for s in STOCKS
    ]
    columns = ["ts_code", "symbol", "name", "area", "industry", "market", "list_status", "list_date"]
    return pd.DataFrame([*rows, DELISTED], columns=[*columns, "delist_date"])


def _mean_reverting(key: str, n: int, mean: float, sd: float, pull: float) -> np.ndarray:
    """An AR(1) series around ``mean``: a slow macro series (``pull`` is the share of a gap closed a step)."""
    shocks = _rng(key).normal(0.0, sd, n)
    out = np.empty(n)
    level = mean
    for i in range(n):
        level = mean + (1 - pull) * (level - mean) + shocks[i]
        out[i] = level
    return out


def _year_to_date_mean(months: pd.PeriodIndex, values: np.ndarray) -> np.ndarray:
    return pd.Series(values).groupby(months.year).expanding().mean().to_numpy()


@functools.cache
def _macro() -> dict[str, pd.DataFrame]:
    months = pd.period_range(FIRST_MONTH, LAST_MONTH, freq="M")
    n = len(months)
    rng = _rng("macro")
    cpi = np.round(_mean_reverting("cn_cpi", n, 1.0, 0.35, 0.15), 1)
    ppi = np.round(_mean_reverting("cn_ppi", n, 1.5, 0.9, 0.05), 1)
    pmi = np.round(_mean_reverting("cn_pmi", n, 50.0, 0.7, 0.3), 1)
    tables = {
        "cn_cpi": {
            "nt_val": np.round(100 + cpi, 1),
            "nt_yoy": cpi,
            "nt_mom": np.round(rng.normal(0.1, 0.4, n), 1),
            "nt_accu": np.round(100 + _year_to_date_mean(months, cpi), 1),
        },
        "cn_ppi": {
            "ppi_yoy": ppi,
            "ppi_mom": np.round(rng.normal(0.0, 0.5, n), 1),
            "ppi_accu": np.round(_year_to_date_mean(months, ppi), 1),
        },
        "cn_pmi": {
            "pmi010000": pmi,
            "pmi010400": np.round(pmi + rng.normal(1.2, 0.8, n), 1),  # production
            "pmi010500": np.round(pmi + rng.normal(-0.4, 0.8, n), 1),  # new orders
        },
        "cn_m": _money(n),
    }
    month = months.strftime("%Y%m")
    return {
        name: _newest_first(pd.DataFrame({"month": month, **columns}), "month")
        for name, columns in tables.items()
    }


def _money(n: int) -> dict[str, np.ndarray]:
    """M0, M1, M2 (100 million CNY) with their year-on-year and month-on-month growth in percent."""
    out = {}
    for name, level, growth, noise in (
        ("m0", 8.4e4, 0.006, 0.03),
        ("m1", 6.0e5, 0.004, 0.012),
        ("m2", 2.1e6, 0.007, 0.005),
    ):
        levels = level * np.cumprod(1 + _rng(name).normal(growth, noise, n + 12))
        out[name] = np.round(levels[12:], 2)
        out[f"{name}_yoy"] = np.round((levels[12:] / levels[:-12] - 1) * 100, 1)
        out[f"{name}_mom"] = np.round((levels[12:] / levels[11:-1] - 1) * 100, 2)
    return out


def macro(endpoint: str) -> pd.DataFrame:
    """A monthly macro table as tushare answers it: ``month`` (``YYYYMM``) first, newest first."""
    return _macro()[endpoint]


@functools.cache
def shibor() -> pd.DataFrame:
    """``pro.shibor``: the eight tenors in percent on every open day of the span, newest first."""
    days = open_days(FIRST_DAY, LAST_DAY)
    level = _mean_reverting("shibor", len(days), 0.0, 0.03, 0.02)
    tenors = {"on": 1.95, "1w": 2.15, "2w": 2.2, "1m": 2.35, "3m": 2.45, "6m": 2.55, "9m": 2.62, "1y": 2.68}
    noise = _rng("shibor:tenors").normal(0.0, 0.01, (len(days), len(tenors)))
    noise[:, 0] *= 8  # the overnight rate is the jumpy one
    rates = {t: np.round(base + level + noise[:, i], 3) for i, (t, base) in enumerate(tenors.items())}
    return _newest_first(pd.DataFrame({"date": days, **rates}), "date")
