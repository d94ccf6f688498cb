"""The tushare pro API as a :class:`~stockml.sources.base.DataSource`.

Bars and adjustment factors are fetched by trade date: one call returns the whole market for a day, so a
daily update is one call and a backfill is one call per open day of the trade calendar. Every call goes
through a client-side rate limiter and is retried with exponential backoff on transient failures; auth
and quota failures stop at once (see :mod:`stockml.sources.tushare_errors`). ``TUSHARE_TOKEN`` is read here
and nowhere else, on first use.

Frames keep tushare's values as given (``trade_date`` as ``YYYYMMDD`` strings) and are normalised by
:mod:`stockml.sources.tushare_format`, like every source's. Provenance: ``source_file`` is
``tushare:<endpoint>:<params>`` (e.g. ``tushare:daily:20240102``), ``source_row`` the row in that call.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any, ClassVar, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from stockml import columns as C
from stockml.columns import REQUIRED
from stockml.sources.base import MarketData, ReadError, wanted_tables
from stockml.sources.ratelimit import RateLimiter
from stockml.sources.tushare_errors import (
    Failure,
    TushareAuthError,
    TushareError,
    TushareTransientError,
    classify,
    fatal_error,
)
from stockml.sources.tushare_format import melt_macro, to_canonical

MacroEndpoint = Literal["cn_cpi", "cn_ppi", "cn_pmi", "cn_m", "shibor"]
MONTHLY_MACRO: tuple[MacroEndpoint, ...] = ("cn_cpi", "cn_ppi", "cn_pmi", "cn_m")  # month = YYYYMM
DAILY_MACRO: tuple[MacroEndpoint, ...] = ("shibor",)  # date = YYYYMMDD
TOKEN_ENV = "TUSHARE_TOKEN"
_COLUMNS = {
    "bars": C.BAR_COLS,
    "adj_factor": C.ADJ_COLS,
    "index_daily": C.INDEX_COLS,
    "stock_basic": C.STOCK_BASIC_COLS,
    "macro": C.MACRO_COLS,
    "trade_cal": C.CALENDAR_COLS,
}


class TushareConfig(BaseModel):
    """How the adapter talks to tushare. Defaults suit an account allowed 200 calls a minute."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    calls_per_minute: int = Field(default=200, ge=1)
    timeout_s: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=4, ge=0, le=20)
    backoff_s: float = Field(default=1.0, ge=0)  # first retry delay; doubles on each retry
    backoff_cap_s: float = Field(default=30.0, ge=0)
    # After a per-minute quota message the server's window must pass before a retry can succeed.
    quota_wait_s: float = Field(default=60.0, ge=0)
    exchange: str = "SSE"
    index_codes: tuple[str, ...] = ("000300.SH",)
    macro_endpoints: tuple[MacroEndpoint, ...] = MONTHLY_MACRO + DAILY_MACRO
    # Monthly macro is published weeks after the month ends: re-fetch a few months before ``start`` so
    # that a daily update picks up last month's figures (the macro table upserts on its key).
    macro_lookback_months: int = Field(default=3, ge=0)
    # L listed, D delisted, P paused: all three, so that delisted names keep their industry.
    list_statuses: tuple[str, ...] = ("L", "D", "P")
    # index_weight is monthly; the latest members are those of the newest date in this window.
    constituents_lookback_days: int = Field(default=93, ge=1)


class TushareSource:
    """The tushare pro API. ``client`` (anything with tushare's endpoint methods) is built lazily."""

    name = "tushare"
    # Bars and adj_factor cost one call per open day each, so a backfill goes by chunks of trade dates:
    # 92 calendar days are about 62 open days, ~130 calls, ~40 s at 200 calls a minute -- what a crash
    # loses at most. ``ingest.chunk_days`` in the settings changes it; ``--chunk-days`` forces it.
    chunk_days: ClassVar[int | None] = 92

    def __init__(
        self,
        config: TushareConfig | None = None,
        client: Any | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        today: Callable[[], dt.date] = dt.date.today,
    ) -> None:
        self.config = config or TushareConfig()
        self._client = client
        self._sleep = sleep
        self._today = today
        self._limiter = RateLimiter(self.config.calls_per_minute, 60.0, clock=clock, sleep=sleep)
        self._calendars: dict[tuple[dt.date, dt.date], pd.DataFrame] = {}

    # -- the DataSource protocol ------------------------------------------------------------------

    def fetch(
        self,
        start: dt.date,
        end: dt.date,
        symbols: Sequence[str] | None = None,
        *,
        tables: Collection[str] | None = None,
    ) -> MarketData:
        """Every table for ``start..end`` (inclusive), or only ``tables`` (no call for the others);
        ``symbols`` filters bars and adj_factor."""
        cfg = self.config
        want = wanted_tables(tables)
        errors: list[ReadError] = []
        by_day = []
        if want & {"bars", "adj_factor"}:
            by_day = [{"trade_date": _ymd(d)} for d in self.trading_days(start, end)]
        fields = ",".join(C.STOCK_BASIC_COLS)
        basic_params = [{"exchange": "", "list_status": s, "fields": fields} for s in cfg.list_statuses]
        s, e = _ymd(start), _ymd(end)
        index_params = [{"ts_code": code, "start_date": s, "end_date": e} for code in cfg.index_codes]
        readers: dict[str, Callable[[], pd.DataFrame]] = {
            "bars": lambda: self._table("bars", "daily", by_day, errors, expect_rows=True),
            "adj_factor": lambda: self._table("adj_factor", "adj_factor", by_day, errors, expect_rows=True),
            "index_daily": lambda: self._table("index_daily", "index_daily", index_params, errors),
            "stock_basic": lambda: self._table("stock_basic", "stock_basic", basic_params, errors),
            "macro": lambda: self._macro(start, end, errors),
            "trade_cal": lambda: self._calendar(start, end)[[*C.CALENDAR_COLS, *C.PROVENANCE]],
        }
        out = {name: read() for name, read in readers.items() if name in want}
        if symbols is not None:
            wanted = set(symbols)
            for name in {"bars", "adj_factor"} & out.keys():
                out[name] = out[name][out[name][C.TS_CODE].isin(wanted)].reset_index(drop=True)
        bars = out.pop("bars", _empty(C.BAR_COLS))
        return MarketData(bars=bars, read_errors=tuple(errors), **out)

    def trading_days(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Open days of the configured exchange's calendar, ascending (one call per range, cached)."""
        calendar = self._calendar(start, end)
        is_open = pd.to_numeric(calendar["is_open"], errors="coerce") == 1
        dates = pd.to_datetime(calendar.loc[is_open, "cal_date"].astype(str), format="%Y%m%d")
        return sorted(d.date() for d in dates)

    def index_constituents(self, index_code: str) -> list[str]:
        """Members at the newest ``index_weight`` date in the lookback window, sorted."""
        end = self._today()
        start = end - dt.timedelta(days=self.config.constituents_lookback_days)
        params = {"index_code": index_code, "start_date": _ymd(start), "end_date": _ymd(end)}
        weights = self._call("index_weight", **params)
        if weights.empty:
            return []
        dates = weights["trade_date"].astype(str)
        return sorted(set(weights.loc[dates == dates.max(), "con_code"].astype(str)))

    # -- tables -----------------------------------------------------------------------------------

    def _table(
        self,
        table: str,
        endpoint: str,
        calls: list[dict[str, str]],
        errors: list[ReadError],
        expect_rows: bool = False,
    ) -> pd.DataFrame:
        """One call per parameter set, normalised and stacked. Like the local source, a response that
        lacks a required column is reported and left out; with ``expect_rows`` so is an empty one."""
        frames = []
        for params in calls:
            raw = self._call(endpoint, **params)
            source = _source_file(endpoint, params)
            if raw.empty:
                if expect_rows:
                    errors.append(ReadError(table, source, "empty response"))
                continue
            frame = to_canonical(table, raw, source)
            missing = [c for c in REQUIRED[table] if c not in frame.columns]
            errors.extend(ReadError(table, source, "column_in_dataframe", column=c) for c in missing)
            if not missing:
                frames.append(frame)
        if not frames:
            return _empty(_COLUMNS[table])
        return pd.concat(frames, ignore_index=True)

    def _calendar(self, start: dt.date, end: dt.date) -> pd.DataFrame:
        key = (start, end)
        if key not in self._calendars:
            params = {"exchange": self.config.exchange, "start_date": _ymd(start), "end_date": _ymd(end)}
            raw = self._call("trade_cal", **params)
            for col in C.CALENDAR_COLS:
                if col not in raw.columns:
                    raise TushareError(f"tushare trade_cal({params}) returned no {col!r} column")
            self._calendars[key] = to_canonical("trade_cal", raw, _source_file("trade_cal", params))
        return self._calendars[key]

    def _macro(self, start: dt.date, end: dt.date, errors: list[ReadError]) -> pd.DataFrame:
        """Monthly endpoints: one call from ``macro_lookback_months`` before ``start``. Daily ones: one
        call per 365 days (~250 rows), well under tushare's cap on the rows of one call: a backfill
        asks for its whole range at once."""
        lookback = pd.DateOffset(months=self.config.macro_lookback_months)
        first_month = (pd.Timestamp(start) - lookback).strftime("%Y%m")
        monthly = [{"start_m": first_month, "end_m": end.strftime("%Y%m")}]
        daily = [{"start_date": _ymd(lo), "end_date": _ymd(hi)} for lo, hi in _windows(start, end, 365)]
        endpoints = self.config.macro_endpoints
        calls = [(ep, p) for ep in endpoints for p in (daily if ep in DAILY_MACRO else monthly)]
        frames = []
        for endpoint, params in calls:
            raw = self._call(endpoint, **params)
            if raw.empty:
                continue
            source = _source_file(endpoint, params)
            try:
                frames.append(melt_macro(raw, source, table_name=endpoint))
            except ValueError as exc:  # no time column: report, as the local source does
                errors.append(
                    ReadError("macro", source, "column_in_dataframe", column="month", value=str(exc))
                )
        if not frames:
            return _empty(C.MACRO_COLS)
        return pd.concat(frames, ignore_index=True)

    # -- calls ------------------------------------------------------------------------------------

    def _get_client(self) -> Any:
        if self._client is None:
            token = os.environ.get(TOKEN_ENV, "").strip()
            if not token:
                raise TushareAuthError(
                    f"{TOKEN_ENV} is not set: export {TOKEN_ENV}=<your tushare pro token> to use the "
                    "tushare source (or choose the demo or local source)."
                )
            import tushare  # lazy: importing tushare costs time and the other sources do not need it

            # The token goes straight to the client; ts.set_token would write it to ~/tk.csv.
            self._client = tushare.pro_api(token, timeout=self.config.timeout_s)
        return self._client

    def _call(self, endpoint: str, **params: str) -> pd.DataFrame:
        """One endpoint call, rate limited, retried on transient failures; returns tushare's frame."""
        method = getattr(self._get_client(), endpoint)
        call = f"{endpoint}({', '.join(f'{k}={v!r}' for k, v in params.items())})"
        cfg = self.config
        last: BaseException | None = None
        for attempt in range(cfg.max_retries + 1):
            if attempt:
                self._sleep(_delay(cfg, attempt, last))
            self._limiter.acquire()
            try:
                frame = method(**params)
            except Exception as exc:
                kind = classify(exc)
                if kind not in (Failure.TRANSIENT, Failure.RATE_LIMITED):
                    raise fatal_error(kind, call, exc) from exc
                last = exc
                continue
            if len(frame.columns) == 0:
                # The pro client's answer to a non-2xx HTTP status: no fields at all, not "no rows".
                last = _EmptyResponse("response without fields (the pro client's sign of an HTTP error)")
                continue
            return frame
        raise TushareTransientError(
            f"tushare call {call} still failing after {cfg.max_retries} retries; last error: "
            f"{type(last).__name__}: {last}"
        ) from last


class _EmptyResponse(Exception):
    """Stands for the HTTP error that the pro client turns into an empty frame."""


def _delay(cfg: TushareConfig, attempt: int, last: BaseException | None) -> float:
    """Seconds before retry ``attempt`` (1-based): exponential, capped; a per-minute quota waits it out."""
    backoff = min(cfg.backoff_s * 2 ** (attempt - 1), cfg.backoff_cap_s)
    if last is not None and classify(last) is Failure.RATE_LIMITED:
        return max(backoff, cfg.quota_wait_s)
    return backoff


def _source_file(endpoint: str, params: dict[str, str]) -> str:
    """``tushare:daily:20240102``; parameters that do not select rows (fields, empty) are left out."""
    keys = [str(v) for k, v in params.items() if k != "fields" and v != ""]
    return ":".join(["tushare", endpoint, *keys])


def _empty(cols: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in (*cols, *C.PROVENANCE)})


def _windows(start: dt.date, end: dt.date, days: int) -> list[tuple[dt.date, dt.date]]:
    """[start, end] as consecutive windows of at most ``days`` calendar days."""
    lows = pd.date_range(start, end, freq=f"{days}D").date
    return [(lo, min(end, lo + dt.timedelta(days=days - 1))) for lo in lows]


def _ymd(day: dt.date) -> str:
    return day.strftime("%Y%m%d")
