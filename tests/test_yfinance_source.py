"""The yfinance adapter against a fake yfinance whose frames have the real ``Ticker.history`` shape
(index ``Date`` in the exchange's time zone; Open, High, Low, Close, Adj Close, Volume, Dividends, Stock
Splits; prices and volume split-adjusted, Adj Close dividend-adjusted too). No network, no real sleeping."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import types
from collections import deque
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from fakes import FakeClock

from stockml import columns as C
from stockml.config import load_settings
from stockml.sources.base import FatalSourceError
from stockml.sources.factory import make_source
from stockml.sources.retry import FatalCallError, MissingPackageError, TransientSourceError
from stockml.sources.yfinance_source import YfinanceConfig, YfinanceSource
from stockml.store.ingest import ingest_range
from stockml.store.lake import Lake
from stockml.store.validation import validate_market_data

NY = "America/New_York"
WEEK = (dt.date(2024, 6, 3), dt.date(2024, 6, 7))
LATER = dt.datetime(2024, 6, 10, 14, 0, tzinfo=dt.UTC)  # Monday morning in New York


def _history(tz: str = NY, low_on_day2: float | None = None) -> pd.DataFrame:
    """Five days as Yahoo shows them today. Traded prices: 400, 404, then a 4.00 dividend goes ex on day 3
    (close 398), a 4-for-1 split on day 4 (close 100), 101. Yahoo divides the days before the split by 4
    (prices; volume times 4) and scales Adj Close before the ex-date by 1 - 1.00 / 101."""
    close = [100.0, 101.0, 99.5, 100.0, 101.0]
    scale = 1 - 1.0 / 101.0
    index = pd.DatetimeIndex(pd.date_range("2024-06-03", periods=5, freq="B"), name="Date").tz_localize(tz)
    frame = pd.DataFrame(
        {
            "Open": [c - 0.5 for c in close],
            "High": [c + 1.0 for c in close],
            "Low": [c - 1.0 for c in close],
            "Close": close,
            "Adj Close": [close[0] * scale, close[1] * scale, *close[2:]],
            "Volume": [4_000_000] * 5,
            "Dividends": [0.0, 0.0, 1.0, 0.0, 0.0],
            "Stock Splits": [0.0, 0.0, 0.0, 4.0, 0.0],
        },
        index=index,
    )
    if low_on_day2 is not None:
        frame.iloc[1, frame.columns.get_loc("Low")] = low_on_day2
    return frame


class YFRateLimitError(Exception):
    """Named as yfinance's: "Too Many Requests"."""


class YFTzMissingError(Exception):
    """Named as yfinance's: the ticker has no time zone, i.e. Yahoo does not know it."""


class FakeYahoo:
    """``Ticker(t).history(**kw)`` like yfinance; ``fail(*errors)`` makes the next calls raise."""

    def __init__(self, frames: dict[str, pd.DataFrame] | None = None) -> None:
        self.frames = frames if frames is not None else {"AAPL": _history(), "^GSPC": _history()}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.failures: deque[BaseException] = deque()

    def fail(self, *errors: BaseException) -> None:
        self.failures.extend(errors)

    def Ticker(self, ticker: str) -> Any:  # noqa: N802 (yfinance's name)
        fake = self

        class _Ticker:
            def history(self, **params: Any) -> pd.DataFrame:
                fake.calls.append((ticker, params))
                if fake.failures:
                    raise fake.failures.popleft()
                if ticker not in fake.frames:
                    raise YFTzMissingError(f"${ticker}: possibly delisted; no timezone found")
                return fake.frames[ticker].copy()

        return _Ticker()


def _source(
    client: FakeYahoo | None = None, now: dt.datetime = LATER, **cfg: Any
) -> tuple[YfinanceSource, FakeYahoo, FakeClock]:
    clock, client = FakeClock(), client or FakeYahoo()
    source = YfinanceSource(
        YfinanceConfig(**cfg), client=client, sleep=clock.sleep, clock=clock, now=lambda: now
    )
    return source, client, clock


def test_bars_are_traded_prices_with_a_tushare_style_factor() -> None:
    source, client, clock = _source()
    data = source.fetch(*WEEK, symbols=["AAPL"])
    bars, factors = data.bars, data.adj_factor
    assert factors is not None and data.read_errors == ()
    assert list(bars.columns) == [*C.BAR_COLS, *C.PROVENANCE]
    assert bars[C.TRADE_DATE].tolist() == [
        "2024-06-03",
        "2024-06-04",
        "2024-06-05",
        "2024-06-06",
        "2024-06-07",
    ]
    assert bars["close"].tolist() == pytest.approx([400.0, 404.0, 398.0, 100.0, 101.0])  # as traded
    assert bars["open"].tolist() == pytest.approx([398.0, 402.0, 396.0, 99.5, 100.5])
    assert bars["vol"].tolist() == pytest.approx([10_000, 10_000, 10_000, 40_000, 40_000])  # lots
    assert bars["amount"].iloc[0] == pytest.approx(400.0 * 1_000_000 / 1000)  # thousand USD, estimated
    # hand-computed: 1.0 on the first bar; x 404/400 on the ex-date; x 4 on the split
    assert factors["adj_factor"].tolist() == pytest.approx([1.0, 1.0, 1.01, 4.04, 4.04])
    # pre_close is ex-rights: the dividend and the split are not returns
    assert bars["pre_close"].tolist()[1:] == pytest.approx([400.0, 400.0, 99.5, 100.0])
    assert bars["pct_chg"].tolist()[2:] == pytest.approx([-0.5, 100 / 99.5 * 100 - 100, 1.0])
    assert bars[C.SOURCE_FILE].unique().tolist() == ["yfinance:history:AAPL:max"]
    assert bars[C.SOURCE_ROW].tolist() == [0, 1, 2, 3, 4]
    assert client.calls == [
        ("AAPL", {"period": "max", "interval": "1d", "auto_adjust": False, "actions": True, "timeout": 30.0})
    ]
    assert clock.sleeps == []


def test_a_range_keeps_the_factor_of_the_whole_history() -> None:
    source, _, _ = _source()
    data = source.fetch(dt.date(2024, 6, 6), WEEK[1], symbols=["AAPL"])
    assert data.bars["close"].tolist() == pytest.approx([100.0, 101.0])
    assert data.adj_factor is not None and data.adj_factor["adj_factor"].tolist() == pytest.approx(
        [4.04, 4.04]
    )
    assert data.bars["pre_close"].tolist() == pytest.approx([99.5, 100.0])  # from the row before the range


def test_the_current_days_bar_waits_for_the_next_day() -> None:
    friday_noon = dt.datetime(2024, 6, 7, 16, 0, tzinfo=dt.UTC)  # 12:00 in New York
    source, _, _ = _source(now=friday_noon)
    assert source.fetch(*WEEK, symbols=["AAPL"]).bars[C.TRADE_DATE].max() == "2024-06-06"


def test_trading_days_are_yahoos_then_weekdays() -> None:
    source, client, _ = _source(calendar_ticker="^GSPC")
    days = source.trading_days(dt.date(2024, 6, 1), dt.date(2024, 6, 12))
    assert days == [dt.date(2024, 6, d) for d in (3, 4, 5, 6, 7, 10, 11, 12)]
    assert [t for t, _ in client.calls] == ["^GSPC"]
    source.trading_days(dt.date(2024, 6, 1), dt.date(2024, 6, 5))
    assert len(client.calls) == 1  # cached


def test_retries_transient_and_rate_limit_failures() -> None:
    source, client, clock = _source()
    client.fail(requests.ConnectionError("reset"), YFRateLimitError("Too Many Requests"), TimeoutError())
    assert len(source.fetch(*WEEK, symbols=["AAPL"]).bars) == 5
    assert clock.sleeps == [1.0, 60.0, 4.0] and len(client.calls) == 4


def test_transient_beyond_retries_and_unknown_errors() -> None:
    source, client, clock = _source(max_retries=1)
    client.fail(requests.ReadTimeout("slow"), requests.ReadTimeout("slow"))
    with pytest.raises(TransientSourceError, match=r"yfinance Ticker\('AAPL'\).*1 retries"):
        source.fetch(*WEEK, symbols=["AAPL"])
    source, client, clock = _source()
    client.fail(ValueError("unexpected column"))
    with pytest.raises(FatalCallError, match="not retried") as info:
        source.fetch(*WEEK, symbols=["AAPL"])
    assert isinstance(info.value, FatalSourceError) and len(client.calls) == 1 and clock.sleeps == []


def test_unknown_ticker_is_reported_and_a_universe_is_required() -> None:
    source, _, _ = _source()
    data = source.fetch(*WEEK, symbols=["AAPL", "NOPE"])
    assert sorted(set(data.bars[C.TS_CODE])) == ["AAPL"]
    assert [(e.source_file, e.column) for e in data.read_errors] == [("yfinance:history:NOPE:max", "ts_code")]
    _, report = validate_market_data(data, dt.date(2024, 7, 1))
    assert "yfinance:history:NOPE:max" in set(report.failures["source_file"])
    with pytest.raises(FatalSourceError, match="--symbols"):
        source.fetch(*WEEK)


def test_a_share_tickers_take_the_lakes_code_pass_the_gate_and_ingest(tmp_path: Path) -> None:
    client = FakeYahoo({"600519.SS": _history("Asia/Shanghai")})
    source, _, _ = _source(client)
    data = source.fetch(*WEEK, symbols=["600519.SH"])
    assert [t for t, _ in client.calls] == ["600519.SS"]
    assert set(data.bars[C.TS_CODE]) == {"600519.SH"}
    clean, report = validate_market_data(data, dt.date(2024, 7, 1))
    assert report.ok, report.summary()

    lake = Lake(tmp_path / "lake")
    ingest_range(lake, source, "yfinance:test", *WEEK, ["600519.SH"])
    stored = lake.read("bars").sort_values(C.TRADE_DATE)
    assert stored["close"].tolist() == pytest.approx([400.0, 404.0, 398.0, 100.0, 101.0])
    assert lake.read("adj_factor")["adj_factor"].tolist() == pytest.approx([1.0, 1.0, 1.01, 4.04, 4.04])


def test_the_gate_takes_tickers_from_this_source_and_still_checks_their_shape() -> None:
    """yfinance data says its codes are tickers: AAPL and ^GSPC pass the gate; a malformed one does
    not; the same AAPL rows said to be A-share codes fail on ts_code alone."""
    source, _, _ = _source()
    data = source.fetch(*WEEK, symbols=["AAPL", "^GSPC"])
    clean, report = validate_market_data(data, dt.date(2024, 7, 1))
    assert report.ok, report.summary()
    assert sorted(set(clean.bars[C.TS_CODE])) == ["AAPL", "^GSPC"] and clean.codes == "ticker"
    bad = data.with_tables(bars=data.bars.assign(ts_code=data.bars[C.TS_CODE].str.lower()))
    _, report = validate_market_data(bad, dt.date(2024, 7, 1))
    assert set(report.failures["column"]) == {"ts_code"} and set(report.failures["table"]) == {"bars"}
    as_a_share = dataclasses.replace(data, codes="a_share")
    _, report = validate_market_data(as_a_share, dt.date(2024, 7, 1))
    failures = report.failures
    assert set(failures["column"]) == {"ts_code"} and set(failures["table"]) == {"bars", "adj_factor"}
    assert failures["check"].str.startswith("str_matches").all()


def test_bad_row_is_reported_with_source_row_and_column() -> None:
    client = FakeYahoo({"600519.SS": _history("Asia/Shanghai", low_on_day2=-1.0)})
    source, _, _ = _source(client)
    _, report = validate_market_data(source.fetch(*WEEK, symbols=["600519.SH"]), dt.date(2024, 7, 1))
    low = report.failures[report.failures["column"] == "low"]
    assert low[["table", "source_file", "row"]].values.tolist() == [
        ["bars", "yfinance:history:600519.SS:max", 2]
    ]


def test_default_client_is_imported_lazily_and_told_to_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeYahoo()
    module = types.SimpleNamespace(
        Ticker=fake.Ticker, config=types.SimpleNamespace(debug=types.SimpleNamespace(hide_exceptions=True))
    )
    monkeypatch.setitem(sys.modules, "yfinance", module)
    source = YfinanceSource(now=lambda: LATER)
    assert len(source.fetch(*WEEK, symbols=["AAPL"]).bars) == 5
    assert module.config.debug.hide_exceptions is False

    monkeypatch.setitem(sys.modules, "yfinance", None)
    with pytest.raises(MissingPackageError, match=r"pip install 'stockml\[yfinance\]'"):
        YfinanceSource().fetch(*WEEK, symbols=["AAPL"])


def test_settings_and_factory(tmp_path: Path) -> None:
    settings = load_settings(source="yfinance", data_dir=tmp_path, yfinance={"calendar_ticker": "^N225"})
    source = make_source(settings)
    assert isinstance(source, YfinanceSource) and source.config.calendar_ticker == "^N225"
    assert source.config.requests_per_minute == 30 and source.chunk_days is None
