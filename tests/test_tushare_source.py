"""The tushare adapter against a fake client that serves a market the tests build in tushare's own frames
(:mod:`tushare_data`), and once through the real pro client with only its HTTP layer faked. No network, no
files, no real sleeping."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pandas as pd
import pytest
import requests
import tushare_data as market
from fakes import FakeClock, FakeHttp, FakeResponse, FakeTushareClient, today
from pydantic import ValidationError

from stockml import columns as C
from stockml.sources.ratelimit import RateLimiter
from stockml.sources.tushare_errors import (
    Failure,
    TushareAuthError,
    TushareError,
    TushareQuotaError,
    TushareTransientError,
    classify,
)
from stockml.sources.tushare_source import TushareConfig, TushareSource

JAN_2024 = (dt.date(2024, 1, 1), dt.date(2024, 1, 10))  # 1 Jan closed; 7 open days
OPEN_JAN_2024 = ["20240102", "20240103", "20240104", "20240105", "20240108", "20240109", "20240110"]
# Eight stocks on seven open days, less the three of them (4, 5 and 8 Jan) that 002594.SZ is suspended.
BARS_JAN_2024 = 8 * 7 - 3
# Only the calendar, bars, adj_factor and one stock_basic call: fewer calls to count.
LEAN = {"index_codes": (), "macro_endpoints": (), "list_statuses": ("L",)}
DOC = "权限的具体详情访问：https://tushare.pro/document/1?doc_id=108。"  # tushare appends it
PER_MINUTE_MSG = f"抱歉，您每分钟最多访问该接口200次，{DOC}"


def _source(**config: object) -> tuple[TushareSource, FakeTushareClient, FakeClock]:
    clock = FakeClock()
    client = FakeTushareClient(clock=clock)
    source = TushareSource(
        TushareConfig(**config), client=client, sleep=clock.sleep, clock=clock, today=today
    )
    return source, client, clock


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values([C.TS_CODE, C.TRADE_DATE]).reset_index(drop=True)


def test_fetch_calls_daily_once_per_open_day_and_bars_match_the_market() -> None:
    source, client, _ = _source()
    assert source.trading_days(*JAN_2024) == [dt.datetime.strptime(d, "%Y%m%d").date() for d in OPEN_JAN_2024]
    data = source.fetch(*JAN_2024)

    assert [c.params["trade_date"] for c in client.calls if c.endpoint == "daily"] == OPEN_JAN_2024
    assert client.count("adj_factor") == 7
    assert client.count("trade_cal") == 1  # cached between trading_days and fetch
    assert [c.params["list_status"] for c in client.calls if c.endpoint == "stock_basic"] == ["L", "D", "P"]
    assert client.count("index_daily") == 1
    assert [client.count(m) for m in ("cn_cpi", "cn_ppi", "cn_pmi", "cn_m", "shibor")] == [1] * 5

    daily = market.daily()
    expected = _sorted(daily[daily[C.TRADE_DATE].isin(OPEN_JAN_2024)])
    got = _sorted(data.bars.drop(columns=list(C.PROVENANCE)))
    assert len(got) == BARS_JAN_2024
    pd.testing.assert_frame_equal(got, expected)
    assert set(data.bars[C.SOURCE_FILE]) == {f"tushare:daily:{d}" for d in OPEN_JAN_2024}
    first_day = data.bars[data.bars[C.SOURCE_FILE] == "tushare:daily:20240102"]
    assert first_day[C.SOURCE_ROW].tolist() == list(range(8))
    suspended = data.bars[data.bars[C.TS_CODE] == "002594.SZ"]
    assert suspended[C.TRADE_DATE].tolist() == ["20240102", "20240103", "20240109", "20240110"]
    assert data.read_errors == ()

    assert list(data.trade_cal.columns) == [*C.CALENDAR_COLS, *C.PROVENANCE]
    assert (data.trade_cal["is_open"] == 1).sum() == 7 and len(data.trade_cal) == 10
    assert data.adj_factor is not None and len(data.adj_factor) == 8 * 7  # suspended days keep a factor
    assert data.index_daily is not None
    assert sorted(data.index_daily[C.TRADE_DATE]) == OPEN_JAN_2024
    assert set(data.index_daily[C.SOURCE_FILE]) == {"tushare:index_daily:000300.SH:20240101:20240110"}
    assert data.stock_basic is not None
    assert data.stock_basic[C.SOURCE_FILE].value_counts().to_dict() == {
        "tushare:stock_basic:L": 8,
        "tushare:stock_basic:D": 1,
    }
    assert list(data.stock_basic.columns[:5]) == list(C.STOCK_BASIC_COLS)


def test_symbols_filter_bars_and_adj_factor() -> None:
    source, _, _ = _source(**LEAN)
    data = source.fetch(*JAN_2024, symbols=["600519.SH", "000001.SZ", "999999.SZ"])
    assert sorted(set(data.bars[C.TS_CODE])) == ["000001.SZ", "600519.SH"]
    assert len(data.bars) == 14
    assert data.adj_factor is not None and sorted(set(data.adj_factor[C.TS_CODE])) == [
        "000001.SZ",
        "600519.SH",
    ]
    # source_row still points at the row of the whole-market response it came from
    row = data.bars[(data.bars[C.TS_CODE] == "600519.SH") & (data.bars[C.TRADE_DATE] == "20240102")]
    whole_day = market.daily()[market.daily()[C.TRADE_DATE] == "20240102"].reset_index(drop=True)
    assert whole_day.loc[int(row[C.SOURCE_ROW].iloc[0]), C.TS_CODE] == "600519.SH"


def test_the_fake_market_reads_like_tushare() -> None:
    """What the tests lean on: consistent bars, newest first; pre_close is the previous close except on
    the split's ex-date, where it is halved and the factor doubles; the suspension keeps its factors;
    moves within the board's limit; vol in lots and amount in thousand CNY."""
    bars = market.daily()
    assert bars[C.TRADE_DATE].is_monotonic_decreasing
    body_lo, body_hi = bars[["open", "close"]].min(axis=1), bars[["open", "close"]].max(axis=1)
    assert ((bars["low"] <= body_lo) & (body_hi <= bars["high"])).all()
    price = bars["amount"] * 1000 / (bars["vol"] * 100)  # the day's average price, CNY
    assert price.between(bars["low"] - 0.01, bars["high"] + 0.01).all()
    limit = bars["pre_close"] * bars[C.TS_CODE].str[:3].isin(["300", "688"]).map({True: 0.2, False: 0.1})
    assert ((bars["high"] - bars["pre_close"]) <= limit + 0.005).all()
    assert ((bars["pre_close"] - bars["low"]) <= limit + 0.005).all()
    assert ((bars["close"] - bars["pre_close"]).abs() >= limit - 0.005).sum() == 12  # days at a limit
    assert (bars["pct_chg"] - bars["change"] / bars["pre_close"] * 100).abs().max() < 1e-4

    chain = bars.sort_values([C.TS_CODE, C.TRADE_DATE])
    previous = chain.groupby(C.TS_CODE)["close"].shift()
    broken = chain[previous.notna() & (chain["pre_close"] != previous)]
    assert broken[[C.TS_CODE, C.TRADE_DATE]].to_numpy().tolist() == [["300750.SZ", "20220315"]]
    assert broken["pre_close"].iloc[0] == round(previous[broken.index[0]] / 2, 2)

    factors = market.adj_factor().sort_values([C.TS_CODE, C.TRADE_DATE])
    ratio = factors.groupby(C.TS_CODE)["adj_factor"].pct_change().fillna(0) + 1
    assert factors.loc[ratio != 1, [C.TS_CODE, C.TRADE_DATE]].to_numpy().tolist() == [
        ["300750.SZ", "20220315"]
    ]
    assert ratio.max() == pytest.approx(2.0, abs=1e-3)
    keys = [C.TS_CODE, C.TRADE_DATE]
    without_bars = factors.merge(bars[keys], on=keys, how="left", indicator=True).query(
        "_merge == 'left_only'"
    )
    assert without_bars[keys].to_numpy().tolist() == [
        ["002594.SZ", d] for d in ("20240104", "20240105", "20240108")
    ]


def test_rate_limiter_allows_n_calls_per_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(3, 60.0, clock=clock, sleep=clock.sleep)
    waits = [limiter.acquire() for _ in range(7)]
    assert waits == [0.0, 0.0, 0.0, 60.0, 0.0, 0.0, 60.0]
    assert clock.now == 120.0


def test_rate_limiter_serves_waiters_one_at_a_time() -> None:
    """Two threads wait on a full window: only one may be waiting in sleep, or both would wake up
    together and both be let through in the same window."""
    clock = FakeClock()
    guard = threading.Lock()
    sleeping: list[int] = []
    most_sleeping = 0
    entered, release = threading.Event(), threading.Event()

    def sleep(seconds: float) -> None:
        nonlocal most_sleeping
        with guard:
            sleeping.append(1)
            most_sleeping = max(most_sleeping, len(sleeping))
        entered.set()
        release.wait(timeout=5)
        with guard:
            sleeping.pop()
            clock.sleep(seconds)

    limiter = RateLimiter(1, 60.0, clock=clock, sleep=sleep)
    limiter.acquire()
    threads = [threading.Thread(target=limiter.acquire) for _ in range(2)]
    for t in threads:
        t.start()
    assert entered.wait(timeout=5)
    time.sleep(0.05)  # real time for the second thread to reach sleep, if the lock let it
    release.set()
    for t in threads:
        t.join(timeout=5)
    assert most_sleeping == 1
    assert clock.sleeps == [60.0, 60.0] and clock.now == 120.0


def test_fetch_honours_calls_per_minute() -> None:
    source, client, clock = _source(calls_per_minute=3, **LEAN)
    source.fetch(dt.date(2024, 1, 2), dt.date(2024, 1, 4))  # 1 trade_cal + 3 daily + 3 adj + 1 basic
    times = [c.at for c in client.calls]
    assert len(times) == 8
    assert all(later - earlier >= 60.0 for earlier, later in zip(times, times[3:], strict=False))
    assert sum(clock.sleeps) == 120.0
    assert times == [0.0, 0.0, 0.0, 60.0, 60.0, 60.0, 120.0, 120.0]


def test_transient_errors_are_retried_with_growing_backoff() -> None:
    clean, _, _ = _source(**LEAN)
    source, client, clock = _source(**LEAN)
    server_error = requests.HTTPError(response=requests.Response())
    server_error.response.status_code = 503  # type: ignore[union-attr]
    client.fail("daily", requests.ConnectionError("reset"), requests.ReadTimeout("slow"), server_error)

    data = source.fetch(*JAN_2024)
    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert [c.params["trade_date"] for c in client.calls if c.endpoint == "daily"][:4] == ["20240102"] * 4
    assert client.count("daily") == 7 + 3
    pd.testing.assert_frame_equal(data.bars, clean.fetch(*JAN_2024).bars)


def test_per_minute_quota_waits_for_the_window() -> None:
    source, client, clock = _source(**LEAN)
    client.fail("adj_factor", Exception(PER_MINUTE_MSG))
    data = source.fetch(*JAN_2024)
    assert clock.sleeps == [60.0]
    assert data.adj_factor is not None and len(data.adj_factor) == 8 * 7


def test_backoff_is_capped() -> None:
    source, client, clock = _source(max_retries=5, backoff_s=1.0, backoff_cap_s=5.0, **LEAN)
    client.fail("trade_cal", *[requests.ConnectionError("down")] * 5)
    assert len(source.trading_days(*JAN_2024)) == 7
    assert clock.sleeps == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_transient_beyond_max_retries_raises() -> None:
    source, client, clock = _source(max_retries=2, **LEAN)
    client.fail("daily", *[requests.ConnectionError("connection refused")] * 3)
    with pytest.raises(TushareTransientError) as info:
        source.fetch(*JAN_2024)
    message = str(info.value)
    assert "daily(trade_date='20240102')" in message
    assert "2 retries" in message and "ConnectionError: connection refused" in message
    assert client.count("daily") == 3
    assert clock.sleeps == [1.0, 2.0]


def test_auth_error_stops_at_once() -> None:
    source, client, clock = _source()
    client.fail("trade_cal", Exception("您的token不对，请确认。"))
    with pytest.raises(TushareAuthError) as info:
        source.fetch(*JAN_2024)
    assert len(client.calls) == 1
    assert clock.sleeps == []
    message = str(info.value)
    assert "TUSHARE_TOKEN" in message and "trade_cal(" in message and "您的token不对" in message


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (f"抱歉，您每天最多访问该接口10000次，{DOC}", TushareQuotaError),
        (f"抱歉，您没有接口访问权限，{DOC}", TushareQuotaError),
        (f"抱歉，您没有权限访问该接口，{DOC}", TushareQuotaError),
        ("您的积分不足", TushareQuotaError),
        ("token已过期", TushareAuthError),
        ("参数错误：trade_date", TushareError),
    ],
)
def test_fatal_errors_are_not_retried(message: str, error: type[TushareError]) -> None:
    source, client, clock = _source(**LEAN)
    client.fail("daily", Exception(message))
    with pytest.raises(TushareError) as info:
        source.fetch(*JAN_2024)
    assert type(info.value) is error
    assert client.count("daily") == 1 and clock.sleeps == []
    assert message in str(info.value) and "daily(trade_date='20240102')" in str(info.value)


def test_classification_of_transient_failures() -> None:
    assert classify(requests.ConnectTimeout("x")) is Failure.TRANSIENT
    assert classify(Exception(PER_MINUTE_MSG)) is Failure.RATE_LIMITED
    assert classify(Exception("抱歉，您每分最多访问该接口80次:-(")) is Failure.RATE_LIMITED
    client_error = requests.HTTPError(response=requests.Response())
    client_error.response.status_code = 404  # type: ignore[union-attr]
    assert classify(client_error) is Failure.UNKNOWN


def test_missing_token_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TUSHARE_TOKEN", raising=False)
    source = TushareSource(TushareConfig())  # constructing reads nothing
    with pytest.raises(TushareAuthError, match="TUSHARE_TOKEN is not set"):
        source.trading_days(*JAN_2024)
    monkeypatch.setenv("TUSHARE_TOKEN", "  ")
    with pytest.raises(TushareAuthError, match="TUSHARE_TOKEN"):
        source.index_constituents("000300.SH")


def test_macro_is_long_with_month_ends_and_daily_shibor() -> None:
    source, client, _ = _source(index_codes=(), list_statuses=("L",))
    data = source.fetch(dt.date(2021, 12, 1), dt.date(2021, 12, 31))
    macro = data.macro
    assert macro is not None and list(macro.columns) == [*C.MACRO_COLS, *C.PROVENANCE]
    cpi = client.calls[[c.endpoint for c in client.calls].index("cn_cpi")]
    assert cpi.params == {"start_m": "202109", "end_m": "202112"}  # three months of lookback

    pmi = macro[macro["table"] == "cn_pmi"]
    assert pmi["freq"].unique().tolist() == ["M"]
    assert pmi.pivot(index="period_end", columns="series", values="value").to_dict("index") == {
        "2021-12-31": {"pmi010000": 49.5, "pmi010400": 50.8, "pmi010500": 47.9},
        "2021-11-30": {"pmi010000": 49.6, "pmi010400": 52.5, "pmi010500": 48.5},
        "2021-10-31": {"pmi010000": 49.5, "pmi010400": 50.8, "pmi010500": 49.0},
        "2021-09-30": {"pmi010000": 49.2, "pmi010400": 50.5, "pmi010500": 49.1},
    }
    assert set(pmi[C.SOURCE_FILE]) == {"tushare:cn_pmi:202109:202112"}
    money = sorted(set(macro.loc[macro["table"] == "cn_m", "series"]))
    assert money == [f"{m}{s}" for m in ("m0", "m1", "m2") for s in ("", "_mom", "_yoy")]

    shibor = macro[macro["table"] == "shibor"]
    assert shibor["freq"].unique().tolist() == ["D"]
    assert sorted(set(shibor["series"])) == sorted(["on", "1w", "2w", "1m", "3m", "6m", "9m", "1y"])
    overnight = shibor[(shibor["series"] == "on") & (shibor["period_end"] == "20211231")]
    assert overnight["value"].tolist() == [1.968]


def test_macro_skips_text_columns_and_keeps_bad_months_for_the_gate() -> None:
    source, client, _ = _source(index_codes=(), list_statuses=("L",), macro_endpoints=("cn_m",))
    client.handlers["cn_m"] = lambda **_: pd.DataFrame(
        {"month": ["202401", "2024-13"], "m2": [3.1, 3.2], "note": ["初值", "修订"]}
    )
    macro = source.fetch(*JAN_2024).macro
    assert macro is not None
    assert macro["series"].tolist() == ["m2", "m2"]
    assert macro["period_end"].tolist() == ["2024-01-31", "2024-13"]  # the gate reports the bad one
    assert macro[C.SOURCE_ROW].tolist() == [0, 1]


def test_index_constituents_are_the_latest_members() -> None:
    source, client, _ = _source()
    assert source.index_constituents("000300.SH") == ["000001.SZ", "600519.SH", "601318.SH"]
    assert client.calls[-1].params == {
        "index_code": "000300.SH",
        "start_date": "20241014",
        "end_date": "20250115",
    }
    assert source.index_constituents("000905.SH") == []


def test_empty_daily_response_on_an_open_day_is_reported() -> None:
    source, client, _ = _source(**LEAN)
    client.handlers["daily"] = lambda **_: market.daily().iloc[:0]
    data = source.fetch(dt.date(2024, 1, 2), dt.date(2024, 1, 2))
    assert data.bars.empty and list(data.bars.columns) == [*C.BAR_COLS, *C.PROVENANCE]
    assert [(e.table, e.source_file, e.check) for e in data.read_errors] == [
        ("bars", "tushare:daily:20240102", "empty response")
    ]


# -- the real pro client, with only requests.post faked ----------------------------------------------


@pytest.fixture
def real_client(monkeypatch: pytest.MonkeyPatch, tmp_path) -> FakeHttp:  # noqa: ANN001
    import tushare.pro.client

    monkeypatch.setenv("HOME", str(tmp_path))  # proves nothing is written to ~/tk.csv
    monkeypatch.setenv("TUSHARE_TOKEN", "test-token")
    http = FakeHttp(FakeTushareClient())
    monkeypatch.setattr(tushare.pro.client.requests, "post", http.post)
    return http


def _nulls_as_none(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(object).where(frame.notna(), None)


def _real_source(**config: object) -> tuple[TushareSource, FakeClock]:
    clock = FakeClock()
    cfg = TushareConfig(timeout_s=7, **config)
    return TushareSource(cfg, sleep=clock.sleep, clock=clock, today=today), clock


def test_real_client_round_trip_matches_fake_client(real_client: FakeHttp, tmp_path) -> None:  # noqa: ANN001
    source, _ = _real_source(macro_endpoints=("cn_cpi", "shibor"), list_statuses=("L",))
    start, end = dt.date(2021, 12, 30), dt.date(2022, 1, 5)
    through_http = source.fetch(start, end)
    direct, _, _ = _source(macro_endpoints=("cn_cpi", "shibor"), list_statuses=("L",))
    expected = direct.fetch(start, end)
    for name, frame in expected.tables().items():
        got = through_http.tables()[name]
        assert len(frame) > 0, name
        # JSON null comes back as None where the fake's frame has NaN: the same missing value
        pd.testing.assert_frame_equal(_nulls_as_none(got), _nulls_as_none(frame), check_dtype=False, obj=name)

    assert len(real_client.posts) == 1 + 4 + 4 + 1 + 1 + 2  # calendar, 4 open days x 2, basic, index, macro
    post = real_client.posts[1]
    assert post["url"].endswith("/daily") and post["json"]["params"]["trade_date"] == "20211230"
    assert {p["timeout"] for p in real_client.posts} == {7}
    assert {p["json"]["token"] for p in real_client.posts} == {"test-token"}
    assert not (tmp_path / "tk.csv").exists()


def test_real_client_token_error_is_auth_error(real_client: FakeHttp) -> None:
    real_client.script.append(
        FakeResponse(200, {"code": -2001, "msg": "您的token不对，请确认。", "data": None})
    )
    source, clock = _real_source()
    with pytest.raises(TushareAuthError, match="您的token不对"):
        source.trading_days(*JAN_2024)
    assert len(real_client.posts) == 1 and clock.sleeps == []


def test_real_client_transient_failures_are_retried(real_client: FakeHttp) -> None:
    real_client.script.extend(
        [
            requests.ConnectionError("connection reset"),
            FakeResponse(502, None),  # the pro client turns this into an empty frame without fields
            FakeResponse(200, {"code": -2002, "msg": PER_MINUTE_MSG, "data": None}),
        ]
    )
    source, clock = _real_source()
    assert len(source.trading_days(*JAN_2024)) == 7
    assert len(real_client.posts) == 4
    assert clock.sleeps == [1.0, 2.0, 60.0]


def test_real_client_http_errors_beyond_retries(real_client: FakeHttp) -> None:
    real_client.script.extend([FakeResponse(503, None)] * 3)
    source, clock = _real_source(max_retries=2)
    with pytest.raises(TushareTransientError, match="trade_cal.*HTTP error"):
        source.trading_days(*JAN_2024)
    assert len(real_client.posts) == 3


def test_config_is_frozen_and_rejects_unknown_endpoints() -> None:
    config = TushareConfig(macro_endpoints=["cn_m"], index_codes=["000905.SH"])  # lists, as YAML gives
    assert config.macro_endpoints == ("cn_m",) and config.index_codes == ("000905.SH",)
    with pytest.raises(ValidationError, match="macro_endpoints"):
        TushareConfig(macro_endpoints=("cn_gdp",))
    with pytest.raises(ValidationError, match="timeout"):
        TushareConfig(timeout=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        config.calls_per_minute = 5  # type: ignore[misc]
