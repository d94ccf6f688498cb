"""The akshare adapter against a fake akshare module whose frames have the real response shapes (Chinese
columns, dates as ``datetime.date``, volume in lots, amount in CNY). No network, no real sleeping."""

from __future__ import annotations

import datetime as dt
import sys
from collections import deque
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from fakes import FakeClock

from stockml import columns as C
from stockml.config import load_settings
from stockml.sources.akshare_source import AkshareConfig, AkshareSource, settled_through
from stockml.sources.base import FatalSourceError
from stockml.sources.codes import exchange_of, to_code6, to_ts_code, ts_code_to_yahoo, yahoo_to_ts_code
from stockml.sources.factory import make_source, source_id
from stockml.sources.retry import FatalCallError, MissingPackageError, TransientSourceError
from stockml.store.ingest import ingest_range
from stockml.store.lake import Lake
from stockml.store.validation import validate_market_data

DAYS = [dt.date(2024, 1, d) for d in (2, 3, 4, 5, 8)]
WEEK = (dt.date(2024, 1, 1), dt.date(2024, 1, 8))
AFTER_CLOSE = dt.datetime(2024, 1, 9, 9, 0, tzinfo=dt.UTC)  # 17:00 in Shanghai on the 9th
HIST = "akshare:stock_zh_a_hist"


def _hist(code: str, closes: list[float], changes: list[float]) -> pd.DataFrame:
    """A ``stock_zh_a_hist(adjust="")`` answer: open = close - 0.05, high/low around both."""
    n = len(closes)
    return pd.DataFrame(
        {
            "日期": DAYS[:n],
            "股票代码": code,
            "开盘": [c - 0.05 for c in closes],
            "收盘": closes,
            "最高": [c + 0.10 for c in closes],
            "最低": [c - 0.10 for c in closes],
            "成交量": [1000 * (i + 1) for i in range(n)],  # lots
            "成交额": [1_020_000.0 * (i + 1) for i in range(n)],  # CNY
            "振幅": 1.5,
            "涨跌幅": [round(ch / (c - ch) * 100, 2) for c, ch in zip(closes, changes, strict=True)],
            "涨跌额": changes,
            "换手率": 0.2,
        }
    )


# 000001: a 0.20 cash dividend goes ex on 4 Jan (pre_close 10.00 after a 10.20 close).
# 600519: ten bonus shares for ten go ex on 4 Jan (pre_close 51.00 after a 102.00 close).
HISTORIES = {
    "000001": _hist("000001", [10.00, 10.20, 10.10, 10.30, 10.00], [0.10, 0.20, 0.10, 0.20, -0.30]),
    "600519": _hist("600519", [100.0, 102.0, 50.0, 51.0, 50.5], [1.0, 2.0, -1.0, 1.0, -0.5]),
}
LISTING = pd.DataFrame({"code": ["000001", "600519"], "name": ["平安银行", "贵州茅台"]})


class FakeAkshare:
    """The three akshare functions the adapter calls; ``fail(name, *errors)`` makes the next calls raise."""

    def __init__(self, histories: dict[str, pd.DataFrame] | None = None) -> None:
        self.histories = dict(HISTORIES if histories is None else histories)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.failures: dict[str, deque[BaseException]] = {}
        self.broken: set[str] = set()  # symbols whose every call fails with an unknown error

    def fail(self, function: str, *errors: BaseException) -> None:
        self.failures.setdefault(function, deque()).extend(errors)

    def _enter(self, function: str, **params: Any) -> None:
        self.calls.append((function, params))
        pending = self.failures.get(function)
        if pending:
            raise pending.popleft()

    def stock_zh_a_hist(
        self, symbol: str, period: str, start_date: str, end_date: str, adjust: str = "", timeout: Any = None
    ) -> pd.DataFrame:
        self._enter("stock_zh_a_hist", symbol=symbol, start_date=start_date, end_date=end_date, adjust=adjust)
        if symbol in self.broken:
            raise ValueError(f"cannot parse the answer for {symbol}")
        frame = self.histories.get(symbol, pd.DataFrame())
        if frame.empty:
            return pd.DataFrame()  # akshare's answer when Eastmoney has no klines
        days = pd.to_datetime(frame["日期"], errors="coerce")
        lo, hi = pd.Timestamp(start_date), pd.Timestamp(end_date)
        rows = frame[days.isna() | ((days >= lo) & (days <= hi))]
        return rows.reset_index(drop=True) if len(rows) else pd.DataFrame()

    def stock_info_a_code_name(self) -> pd.DataFrame:
        self._enter("stock_info_a_code_name")
        return LISTING.copy()

    def tool_trade_date_hist_sina(self) -> pd.DataFrame:
        self._enter("tool_trade_date_hist_sina")
        return pd.DataFrame({"trade_date": [*DAYS, dt.date(2024, 1, 9)]})

    def hist_calls(self) -> list[dict[str, Any]]:
        return [p for f, p in self.calls if f == "stock_zh_a_hist"]


def _source(
    client: FakeAkshare | None = None,
    progress: Path | None = None,
    now: dt.datetime = AFTER_CLOSE,
    **cfg: Any,
) -> tuple[AkshareSource, FakeAkshare, FakeClock]:
    clock, client = FakeClock(), client or FakeAkshare()
    source = AkshareSource(
        AkshareConfig(**cfg),
        client=client,
        progress_dir=progress,
        sleep=clock.sleep,
        clock=clock,
        now=lambda: now,
    )
    return source, client, clock


def _row(frame: pd.DataFrame, code: str, day: str) -> pd.Series:
    return frame[(frame[C.TS_CODE] == code) & (frame[C.TRADE_DATE] == day)].iloc[0]


# -- codes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "ts_code"),
    [
        ("600519", "600519.SH"),
        ("688981", "688981.SH"),
        ("900901", "900901.SH"),
        ("000001", "000001.SZ"),
        ("002594", "002594.SZ"),
        ("300750", "300750.SZ"),
        ("200002", "200002.SZ"),
        ("430047", "430047.BJ"),
        ("830799", "830799.BJ"),
        ("920001", "920001.BJ"),
        (1, "000001.SZ"),  # a code read as a number
        ("000001.sz", "000001.SZ"),
    ],
)
def test_code_maps_to_ts_code_and_back(code: str | int, ts_code: str) -> None:
    assert to_ts_code(code) == ts_code
    assert to_code6(ts_code) == ts_code[:6]
    assert exchange_of(ts_code[:6]) == ts_code[-2:]


@pytest.mark.parametrize("bad", ["510300", "159915", "000001.SH", "60051", "12345a", "AAPL"])
def test_non_stock_codes_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        to_ts_code(bad)


@pytest.mark.parametrize(
    ("ts_code", "yahoo"),
    [("600519.SH", "600519.SS"), ("000001.SZ", "000001.SZ"), ("830799.BJ", "830799.BJ"), ("AAPL", "AAPL")],
)
def test_yahoo_tickers(ts_code: str, yahoo: str) -> None:
    assert ts_code_to_yahoo(ts_code) == yahoo
    assert yahoo_to_ts_code(yahoo) == ts_code
    assert yahoo_to_ts_code("^GSPC") == "^GSPC" and yahoo_to_ts_code("0700.HK") == "0700.HK"


# -- mapping ------------------------------------------------------------------------------------------


def test_bars_are_mapped_like_tushare_daily() -> None:
    source, client, clock = _source()
    data = source.fetch(*WEEK, symbols=["000001.SZ", "600519"])
    bars = data.bars
    assert list(bars.columns) == [*C.BAR_COLS, *C.PROVENANCE]
    assert len(bars) == 10 and data.read_errors == ()
    ex_day = _row(bars, "000001.SZ", "2024-01-04")
    assert ex_day[["open", "high", "low", "close"]].tolist() == pytest.approx([10.05, 10.20, 10.00, 10.10])
    assert ex_day["pre_close"] == pytest.approx(
        10.00
    )  # close - 涨跌额: ex-rights, not 10.20 (the last close)
    assert ex_day["change"] == pytest.approx(0.10) and ex_day["pct_chg"] == pytest.approx(1.0)
    assert ex_day["vol"] == 3000  # lots, as 成交量 and tushare's vol
    assert ex_day["amount"] == pytest.approx(3060.0)  # 3,060,000 CNY -> thousand CNY
    assert ex_day[C.SOURCE_FILE] == f"{HIST}:000001:19700101:20240108" and ex_day[C.SOURCE_ROW] == 2
    # one unadjusted call per symbol, over the whole history, for the factor
    assert client.hist_calls() == [
        {"symbol": s, "start_date": "19700101", "end_date": "20240108", "adjust": ""}
        for s in ("000001", "600519")
    ]
    assert clock.sleeps == []


def test_adj_factor_is_tushare_style_and_does_not_depend_on_the_range() -> None:
    source, _, _ = _source()
    factors = source.fetch(*WEEK, symbols=["000001.SZ", "600519.SH"]).adj_factor
    assert factors is not None
    by_day = factors.pivot(index=C.TRADE_DATE, columns=C.TS_CODE, values="adj_factor")
    # hand-computed: 1.0 on the first bar, times close[t-1] / pre_close[t] on the ex-date
    assert by_day["000001.SZ"].tolist() == pytest.approx([1.0, 1.0, 10.20 / 10.00, 1.02, 1.02])
    assert by_day["600519.SH"].tolist() == pytest.approx([1.0, 1.0, 2.0, 2.0, 2.0])
    # close * factor is a total-return price: the bonus day's return is the official +?% (-1 / 51)
    adjusted = _row(source.fetch(*WEEK, symbols=["600519.SH"]).bars, "600519.SH", "2024-01-04")["close"] * 2.0
    assert adjusted / 102.0 - 1 == pytest.approx(-1.0 / 51.0)

    later, client, _ = _source()
    tail = later.fetch(dt.date(2024, 1, 5), WEEK[1], symbols=["000001.SZ"]).adj_factor
    assert tail is not None and tail["adj_factor"].tolist() == pytest.approx([1.02, 1.02])
    assert client.hist_calls()[0]["start_date"] == "19700101"


def test_qfq_factor_is_one_on_the_newest_bar_and_none_asks_only_the_range() -> None:
    source, _, _ = _source(adjust="qfq")
    factors = source.fetch(*WEEK, symbols=["600519.SH"]).adj_factor
    assert factors is not None and factors["adj_factor"].tolist() == pytest.approx([0.5, 0.5, 1.0, 1.0, 1.0])

    plain, client, _ = _source(adjust="none")
    data = plain.fetch(dt.date(2024, 1, 4), WEEK[1], symbols=["600519.SH"])
    assert data.adj_factor is None and len(data.bars) == 3
    assert client.hist_calls()[0]["start_date"] == "20240104"
    with pytest.raises(ValueError, match="adjust"):
        AkshareConfig(adjust="bogus")  # type: ignore[arg-type]


def test_whole_market_stock_basic_and_calendar() -> None:
    source, client, _ = _source()
    data = source.fetch(*WEEK)
    assert sorted(set(data.bars[C.TS_CODE])) == ["000001.SZ", "600519.SH"]
    assert data.stock_basic is not None
    assert data.stock_basic[[C.TS_CODE, "name"]].values.tolist() == [
        ["000001.SZ", "平安银行"],
        ["600519.SH", "贵州茅台"],
    ]
    assert [f for f, _ in client.calls].count(
        "stock_info_a_code_name"
    ) == 1  # symbols and stock_basic share it
    cal = data.trade_cal
    assert cal is not None and cal["cal_date"].tolist()[:2] == ["20240101", "20240102"]
    assert cal["is_open"].tolist() == [0, 1, 1, 1, 1, 0, 0, 1]
    assert source.trading_days(dt.date(2024, 1, 5), dt.date(2024, 1, 31)) == [
        DAYS[3],
        DAYS[4],
        dt.date(2024, 1, 9),
    ]


def test_todays_bar_is_left_out_until_it_is_final() -> None:
    during = dt.datetime(2024, 1, 8, 3, 0, tzinfo=dt.UTC)  # 11:00 in Shanghai
    assert settled_through(during) == dt.date(2024, 1, 7)
    assert settled_through(dt.datetime(2024, 1, 8, 8, 0, tzinfo=dt.UTC)) == dt.date(2024, 1, 8)  # 16:00
    source, client, _ = _source(now=during)
    bars = source.fetch(*WEEK, symbols=["000001.SZ"]).bars
    assert bars[C.TRADE_DATE].max() == "2024-01-05" and client.hist_calls()[0]["end_date"] == "20240107"


# -- retries and failures -----------------------------------------------------------------------------


def test_transient_errors_are_retried_with_backoff() -> None:
    clean = _source()[0].fetch(*WEEK, symbols=["000001.SZ"])
    source, client, clock = _source()
    server = requests.HTTPError(response=requests.Response())
    server.response.status_code = 502  # type: ignore[union-attr]
    client.fail("stock_zh_a_hist", requests.ConnectionError("reset"), requests.ReadTimeout("slow"), server)
    data = source.fetch(*WEEK, symbols=["000001.SZ"])
    assert clock.sleeps == [1.0, 2.0, 4.0] and len(client.hist_calls()) == 4
    pd.testing.assert_frame_equal(data.bars, clean.bars)


def test_throttling_waits_a_window_and_calls_are_rate_limited() -> None:
    source, client, clock = _source(requests_per_minute=1)
    too_many = requests.HTTPError(response=requests.Response())
    too_many.response.status_code = 429  # type: ignore[union-attr]
    client.fail("stock_zh_a_hist", too_many)
    source.fetch(*WEEK, symbols=["000001.SZ", "600519.SH"], tables={"bars"})
    # the 429 waits 60 s (the retry then fits the window); the next symbol waits for the window
    assert clock.sleeps == [60.0, 60.0]
    assert [c["symbol"] for c in client.hist_calls()] == ["000001", "000001", "600519"]
    assert [f for f, _ in client.calls] == ["stock_zh_a_hist"] * 3  # no other table was asked for


def test_transient_beyond_retries_names_the_call() -> None:
    source, client, clock = _source(max_retries=2)
    client.fail("stock_zh_a_hist", *[requests.ConnectionError("refused")] * 3)
    with pytest.raises(TransientSourceError) as info:
        source.fetch(*WEEK, symbols=["000001.SZ"])
    assert "akshare stock_zh_a_hist(symbol='000001'" in str(info.value) and "2 retries" in str(info.value)
    assert clock.sleeps == [1.0, 2.0]


def test_unknown_error_fails_at_once_and_clearly() -> None:
    source, client, clock = _source()
    client.fail("stock_zh_a_hist", KeyError("klines"))
    with pytest.raises(FatalCallError) as info:
        source.fetch(*WEEK, symbols=["000001.SZ"])
    assert isinstance(info.value, FatalSourceError)  # the ingest task does not retry it either
    message = str(info.value)
    assert "stock_zh_a_hist(symbol='000001'" in message and "KeyError" in message and "not retried" in message
    assert len(client.hist_calls()) == 1 and clock.sleeps == []


def test_missing_akshare_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "akshare", None)  # import akshare -> ImportError
    source = AkshareSource(now=lambda: AFTER_CLOSE)  # constructing imports nothing
    with pytest.raises(MissingPackageError, match=r"pip install 'stockml\[akshare\]'"):
        source.fetch(*WEEK, symbols=["000001.SZ"])


# -- the gate and the lake ----------------------------------------------------------------------------


def test_output_passes_the_gate_and_ingests_into_a_lake(tmp_path: Path) -> None:
    source, _, _ = _source()
    clean, report = validate_market_data(
        source.fetch(*WEEK, symbols=["000001.SZ", "600519.SH"]), dt.date(2024, 2, 1)
    )
    assert report.ok, report.summary()
    assert clean.bars["trade_date"].dtype == "datetime64[ns]" and len(clean.bars) == 10

    lake = Lake(tmp_path / "lake")
    entries = ingest_range(lake, source, "akshare:test", *WEEK, ["000001.SZ", "600519.SH"])
    assert [e["tables"]["bars"]["inserted"] for e in entries] == [10]
    stored = lake.read("bars", symbols=["600519.SH"]).sort_values(C.TRADE_DATE)
    assert stored["close"].tolist() == [100.0, 102.0, 50.0, 51.0, 50.5]
    assert stored["pre_close"].tolist() == pytest.approx([99.0, 100.0, 51.0, 50.0, 51.0])
    factors = lake.read("adj_factor", symbols=["600519.SH"]).sort_values(C.TRADE_DATE)
    assert factors["adj_factor"].tolist() == pytest.approx([1.0, 1.0, 2.0, 2.0, 2.0])


def test_bad_rows_are_reported_with_source_row_and_column() -> None:
    bad = HISTORIES["000001"].copy()
    bad.loc[1, "开盘"] = -10.15
    bad["日期"] = bad["日期"].astype(object)
    bad.loc[3, "日期"] = pd.NaT  # akshare's to_datetime(errors="coerce") for a date it cannot read
    source, _, _ = _source(FakeAkshare({"000001": bad}))
    _, report = validate_market_data(source.fetch(*WEEK, symbols=["000001.SZ"]), dt.date(2024, 2, 1))
    failures = report.failures
    where = f"{HIST}:000001:19700101:20240108"
    negative = failures[(failures["table"] == "bars") & (failures["column"] == "open")]
    assert negative[["source_file", "row"]].values.tolist() == [[where, 2]]
    assert "greater_than" in negative["check"].iloc[0]
    unparsed = failures[(failures["table"] == "bars") & (failures["column"] == "trade_date")]
    assert unparsed[["source_file", "row", "check"]].values.tolist() == [[where, 4, "not_nullable"]]


def test_empty_and_malformed_responses() -> None:
    malformed = HISTORIES["000001"].drop(columns=["涨跌额"])
    source, _, _ = _source(FakeAkshare({"000001": malformed, "600519": pd.DataFrame()}))
    data = source.fetch(*WEEK, symbols=["000001.SZ", "600519.SH"])  # 600519: suspended, no klines
    assert data.bars.empty
    assert [(e.table, e.source_file, e.column) for e in data.read_errors] == [
        ("bars", f"{HIST}:000001:19700101:20240108", "涨跌额")
    ]


# -- resuming -----------------------------------------------------------------------------------------


def test_a_fetch_that_died_part_way_resumes_at_the_symbol(tmp_path: Path) -> None:
    codes = ["000001.SZ", "600519.SH"]
    progress = tmp_path / "_progress"
    source, client, _ = _source(progress=progress)
    client.broken.add("600519")  # the first symbol is fetched, the second kills the fetch
    with pytest.raises(FatalCallError, match="600519"):
        source.fetch(*WEEK, symbols=codes)
    assert [p.name for p in (progress / "hfq_20240101_20240108").iterdir()] == ["000001.SZ.json"]

    again, client2, _ = _source(progress=progress)
    resumed = again.fetch(*WEEK, symbols=codes)
    assert [c["symbol"] for c in client2.hist_calls()] == ["600519"]  # 000001 came from the progress file
    assert not (progress / "hfq_20240101_20240108").exists()
    fresh = _source()[0].fetch(*WEEK, symbols=codes)
    a, _ = validate_market_data(resumed, dt.date(2024, 2, 1))
    b, _ = validate_market_data(fresh, dt.date(2024, 2, 1))
    for name in ("bars", "adj_factor"):
        pd.testing.assert_frame_equal(a.tables()[name], b.tables()[name], check_dtype=False, obj=name)


# -- settings -----------------------------------------------------------------------------------------


def test_settings_and_factory(tmp_path: Path) -> None:
    settings = load_settings(
        source="akshare", data_dir=tmp_path, akshare={"adjust": "qfq", "requests_per_minute": 30}
    )
    source = make_source(settings)
    assert isinstance(source, AkshareSource)
    assert source.config.adjust == "qfq" and source.config.requests_per_minute == 30
    hfq = load_settings(source="akshare", data_dir=tmp_path)
    assert source_id(settings) != source_id(hfq)  # a different adjustment is a different job
    slower = load_settings(source="akshare", data_dir=tmp_path, akshare={"requests_per_minute": 10})
    assert source_id(slower) == source_id(hfq)  # rates do not change what is fetched


def test_a_symbol_with_a_read_error_is_not_kept_as_done(tmp_path: Path) -> None:
    malformed = HISTORIES["000001"].drop(columns=["收盘"])
    source, client, _ = _source(FakeAkshare({"000001": malformed, "600519": HISTORIES["600519"]}), tmp_path)
    client.broken.add("600519")
    with pytest.raises(FatalCallError):
        source.fetch(*WEEK, symbols=["000001.SZ", "600519.SH"])
    assert not any(tmp_path.rglob("*.json"))  # a rerun asks 000001 again, and reports it again
