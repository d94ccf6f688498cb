"""Yahoo Finance (through ``yfinance``, no token) as a :class:`~stockml.sources.base.DataSource`, for
symbols tushare does not cover: indices (``^GSPC``), foreign stocks and ADRs (``AAPL``, ``BABA``), a
user's own universe. A-shares may be asked for by their lake code (``600519.SH``, Yahoo's ``600519.SS``)
and are stored under it (:mod:`stockml.sources.codes`); every other ticker is stored as Yahoo spells it.

One ``Ticker(t).history(period="max", auto_adjust=False, actions=True)`` call per ticker: Yahoo's OHLC
and volume are split-adjusted back from today and ``Adj Close`` is also dividend-adjusted, so both change
whenever a split or a dividend happens. Bars are turned back into the prices traded on the day (raw, as
tushare's): OHLC times the splits after the day, volume divided by them. ``adj_factor`` is
``Adj Close / raw close`` over its value on the first bar of the history (1.0 there, tushare's convention),
so a day's factor does not change when later history arrives; ``pre_close`` is the previous raw close
carried through that day's split or dividend (``close[t-1] * adj[t-1] / adj[t]``), which makes ``pct_chg``
the day's total return, as tushare's ex-rights pre_close does. Units as the lake's: ``vol`` in lots of 100
shares; ``amount`` in thousands of the quote currency, estimated as close * volume (Yahoo gives no turnover).

The trading days are the days Yahoo has a bar for ``calendar_ticker``; after its last bar (the future)
they are weekdays, as Yahoo publishes no calendar of sessions to come. The bar of the exchange's current
day is left out (it is live until the close). No stock_basic, trade_cal or index members.
``download`` is not used: it logs a ticker's failure and returns an empty frame, so no retry could see it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from stockml import columns as C
from stockml.sources.base import FatalSourceError, MarketData, ReadError, wanted_tables
from stockml.sources.codes import ts_code_to_yahoo, yahoo_to_ts_code
from stockml.sources.ratelimit import RateLimiter
from stockml.sources.retry import (
    Failure,
    FatalCallError,
    HttpSourceConfig,
    call_with_retries,
    classify,
    import_client,
)

PRICES = ("Open", "High", "Low", "Close")
# yfinance's exceptions for a ticker Yahoo does not know or has no prices for: reported, not raised.
_MISSING = frozenset({"YFTickerMissingError", "YFTzMissingError", "YFPricesMissingError"})
NO_UNIVERSE = (
    "the yfinance source has no list of every symbol: name the tickers with --symbols (e.g. "
    "--symbols AAPL ^GSPC 600519.SH) or in the settings' universe"
)


class YfinanceConfig(HttpSourceConfig):
    """How the adapter talks to Yahoo; it throttles hard, so fewer calls a minute than the others."""

    requests_per_minute: int = Field(default=30, ge=1)
    calendar_ticker: str = "^GSPC"  # whose bar days are the trading days


class YfinanceSource:
    """Daily bars from Yahoo. ``client``: anything with yfinance's ``Ticker(t).history(...)``; the
    yfinance module by default, imported on first use (and told to raise its errors, not log them)."""

    name = "yfinance"
    # Each call returns a ticker's whole history, whatever the range: one chunk, one call per ticker.
    chunk_days: ClassVar[int | None] = None

    def __init__(
        self,
        config: YfinanceConfig | None = None,
        client: Any | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.config = config or YfinanceConfig()
        self._client = client
        self._sleep = sleep
        self._now = now
        self._limiter = RateLimiter(self.config.requests_per_minute, 60.0, clock=clock, sleep=sleep)
        self._calendar: list[dt.date] | None = None

    def fetch(
        self,
        start: dt.date,
        end: dt.date,
        symbols: Sequence[str] | None = None,
        *,
        tables: Collection[str] | None = None,
    ) -> MarketData:
        """Bars and adj_factor of ``symbols`` (required: Yahoo has no market-wide list) for the range."""
        want = wanted_tables(tables)
        if not want & {"bars", "adj_factor"}:
            return MarketData(bars=_empty(C.BAR_COLS), codes="ticker")
        if not symbols:
            raise FatalSourceError(NO_UNIVERSE)
        errors: list[ReadError] = []
        bars, factors = [], []
        for ticker in dict.fromkeys(ts_code_to_yahoo(s) for s in symbols):
            source = f"yfinance:history:{ticker}:max"
            raw = self._history(ticker, source, errors)
            if raw is None or raw.empty:
                continue
            b, f = bars_from_history(_settled(raw, self._now()), yahoo_to_ts_code(ticker), source)
            keep = _in_range(b[C.TRADE_DATE], start, end)
            bars.append(b[keep])
            factors.append(f[keep])
        adj = _stack(factors, C.ADJ_COLS) if "adj_factor" in want else None
        return MarketData(
            bars=_stack(bars, C.BAR_COLS), adj_factor=adj, read_errors=tuple(errors), codes="ticker"
        )

    def trading_days(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Days with a bar of ``calendar_ticker``; weekdays after its last bar."""
        if self._calendar is None:
            ticker = self.config.calendar_ticker
            errors: list[ReadError] = []
            raw = self._history(ticker, f"yfinance:history:{ticker}:max", errors)
            if raw is None or raw.empty:
                raise FatalSourceError(f"no calendar: Yahoo has no bars for calendar_ticker {ticker!r}")
            self._calendar = sorted(set(_settled(raw, self._now()).index.date))
        known = [d for d in self._calendar if start <= d <= end]
        after = max(start, self._calendar[-1] + dt.timedelta(days=1))
        return known + [d.date() for d in pd.bdate_range(after, end)] if after <= end else known

    def index_constituents(self, index_code: str) -> list[str]:
        """Not offered: an index ticker in the universe is fetched as itself (``^GSPC``)."""
        return []

    def _history(self, ticker: str, source: str, errors: list[ReadError]) -> pd.DataFrame | None:
        """A ticker's whole daily history; None (and a read error) when Yahoo does not know it."""
        if self._client is None:
            module = import_client("yfinance", "yfinance")
            if hasattr(module, "config"):  # yfinance >= 1.0 logs errors and returns nothing unless told
                module.config.debug.hide_exceptions = False
            self._client = module
        client = self._client
        params = {"period": "max", "interval": "1d", "auto_adjust": False, "actions": True}
        try:
            return call_with_retries(
                lambda: client.Ticker(ticker).history(**params, timeout=self.config.timeout_s),
                call=f"yfinance Ticker({ticker!r}).history(period='max')",
                config=self.config,
                limiter=self._limiter,
                sleep=self._sleep,
                sort=_sort,
            )
        except FatalCallError as exc:
            cause = exc.__cause__
            if cause is None or not _MISSING & {c.__name__ for c in type(cause).__mro__}:
                raise
            errors.append(ReadError("bars", source, "known to Yahoo", column="ts_code", value=str(cause)))
            return None


def bars_from_history(raw: pd.DataFrame, ts_code: str, source_file: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One ``history(auto_adjust=False, actions=True)`` frame -> canonical bars and adj_factor rows with
    provenance (see the module docstring for the arithmetic). ``raw`` is oldest first, as Yahoo answers."""
    splits = raw["Stock Splits"] if "Stock Splits" in raw.columns else pd.Series(0.0, index=raw.index)
    ratio = np.where(splits.to_numpy(np.float64) > 0, splits.to_numpy(np.float64), 1.0)
    later = np.cumprod(ratio[::-1])[::-1] / ratio  # product of the split ratios after each day
    prices = {name.lower(): raw[name].to_numpy(np.float64) * later for name in PRICES}
    volume = raw["Volume"].to_numpy(np.float64) / later
    adjusted = raw["Adj Close"] if "Adj Close" in raw.columns else raw["Close"]
    total = adjusted.to_numpy(np.float64) / prices["close"]  # every later split and dividend
    factor = total / total[0] if len(total) else total
    pre_close = np.r_[np.nan, prices["close"][:-1] * factor[:-1] / factor[1:]]
    dates = pd.DatetimeIndex(raw.index).strftime("%Y-%m-%d")
    provenance = {C.SOURCE_FILE: source_file, C.SOURCE_ROW: np.arange(len(raw), dtype=np.int64)}
    bars = pd.DataFrame(
        {
            C.TS_CODE: ts_code,
            C.TRADE_DATE: dates,
            **prices,
            "pre_close": pre_close,
            "change": prices["close"] - pre_close,
            "pct_chg": (prices["close"] / pre_close - 1.0) * 100.0,
            "vol": volume / 100.0,  # lots of 100 shares
            "amount": prices["close"] * volume / 1000.0,  # thousands of the quote currency (estimate)
            **provenance,
        }
    )
    factors = pd.DataFrame({C.TS_CODE: ts_code, C.TRADE_DATE: dates, "adj_factor": factor, **provenance})
    return bars[[*C.BAR_COLS, *C.PROVENANCE]], factors


def _sort(exc: BaseException) -> Failure:
    return classify(exc, rate_limited=("YFRateLimitError",))


def _settled(raw: pd.DataFrame, now: dt.datetime) -> pd.DataFrame:
    """Bars of days before the exchange's current date (Yahoo's index is in the exchange's time zone)."""
    index = pd.DatetimeIndex(raw.index)
    today = now.astimezone(index.tz).date() if index.tz is not None else now.date()
    return raw[index.date < today]


def _in_range(dates: pd.Series, start: dt.date, end: dt.date) -> pd.Series:
    return (dates >= start.isoformat()) & (dates <= end.isoformat())


def _stack(frames: list[pd.DataFrame], cols: Sequence[str]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else _empty(cols)


def _empty(cols: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in (*cols, *C.PROVENANCE)})
