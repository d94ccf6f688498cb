"""akshare (Eastmoney's public quote API, no token) as a :class:`~stockml.sources.base.DataSource`.

Bars come per symbol: one ``stock_zh_a_hist`` call returns any date range of one stock, so a fetch costs
one call per symbol, whatever its length. With ``adjust`` "hfq" or "qfq" that call asks for the stock's
whole history (from :data:`HISTORY_START`), because the factor is cumulated from the first bar (see
:mod:`stockml.sources.akshare_format`); only the bars of the requested range are returned. ``stock_basic``
(code and name) comes from ``stock_info_a_code_name``, which also gives the whole-market symbol list, and
the calendar from ``tool_trade_date_hist_sina`` (Sina's list of SSE trading days).

Every call goes through the rate limiter and is retried on transient failures (:mod:`stockml.sources.retry`).
Resuming: chunks of a backfill resume through the manifest as for every source; within a chunk, with a
``progress_dir``, each finished symbol's rows are written there, so that a fetch that died part-way
(a crash, or a failure past the retries) re-asks only the symbols it has not finished when it is run
again with the same range; the folder is removed once the fetch is complete.

Eastmoney's daily bar of the current session is live until the close: a day's bar is taken from 16:00
Shanghai time on (:func:`settled_through`). Provenance: ``source_file`` is
``akshare:stock_zh_a_hist:<code>:<start>:<end>``, ``source_row`` the row in that response.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo

import pandas as pd

from stockml import columns as C
from stockml.sources.akshare_format import (
    NEEDED,
    adj_factor_from_bars,
    bars_from_hist,
    stock_basic_from_listing,
)
from stockml.sources.base import MarketData, ReadError, wanted_tables
from stockml.sources.codes import to_code6, to_ts_code
from stockml.sources.ratelimit import RateLimiter
from stockml.sources.retry import HttpSourceConfig, call_with_retries, import_client
from stockml.sources.tushare_format import parse_dates

MARKET_TZ = ZoneInfo("Asia/Shanghai")
SETTLED_AT = dt.time(16, 0)  # the close is 15:00; after-hours fixed-price trading ends 15:30
HISTORY_START = "19700101"  # akshare's own default start: the whole history
UPGRADE_HINT = "If akshare's answer changed shape, upgrade it: pip install -U 'stockml[akshare]'."


class AkshareConfig(HttpSourceConfig):
    """How the adapter talks to akshare. 60 calls a minute stays clear of Eastmoney's throttling."""

    # "hfq": adj_factor 1.0 on each stock's first bar (tushare's convention, stable as history grows);
    # "qfq": 1.0 on the newest bar fetched (rescales at every ex-date: refetch all history after one);
    # "none": no adj_factor table, and only the requested range is asked for.
    adjust: Literal["none", "qfq", "hfq"] = "hfq"
    exchange: str = "SSE"  # the calendar's exchange label in trade_cal


def settled_through(now: dt.datetime) -> dt.date:
    """The newest day whose bar is final at ``now``: today from 16:00 Shanghai time on, else yesterday."""
    local = now.astimezone(MARKET_TZ)
    return local.date() if local.time() >= SETTLED_AT else local.date() - dt.timedelta(days=1)


class AkshareSource:
    """A-share daily bars from akshare. ``client``: anything with akshare's ``stock_zh_a_hist``,
    ``stock_info_a_code_name`` and ``tool_trade_date_hist_sina``; the akshare module by default, imported
    on first use."""

    name = "akshare"
    # One call per symbol whatever the range: a chunk of a year (about 1.3 M bars for the whole market)
    # costs one call per symbol; ``ingest.chunk_days`` or ``--chunk-days`` change it.
    chunk_days: ClassVar[int | None] = 365

    def __init__(
        self,
        config: AkshareConfig | None = None,
        client: Any | None = None,
        progress_dir: Path | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.config = config or AkshareConfig()
        self._client = client
        self._progress_dir = progress_dir
        self._sleep = sleep
        self._now = now
        self._limiter = RateLimiter(self.config.requests_per_minute, 60.0, clock=clock, sleep=sleep)
        self._listing: pd.DataFrame | None = None
        self._open_days: list[dt.date] | None = None

    # -- the DataSource protocol ------------------------------------------------------------------

    def fetch(
        self,
        start: dt.date,
        end: dt.date,
        symbols: Sequence[str] | None = None,
        *,
        tables: Collection[str] | None = None,
    ) -> MarketData:
        """Bars (and adj_factor) of ``symbols`` (None: every listed A-share) for ``start..end``,
        stock_basic and trade_cal; or only ``tables``."""
        want = wanted_tables(tables)
        errors: list[ReadError] = []
        out: dict[str, pd.DataFrame] = {}
        if want & {"bars", "adj_factor"}:
            asked = [to_ts_code(s) for s in symbols] if symbols is not None else self._market_codes(errors)
            codes = list(dict.fromkeys(asked))  # once each, in order
            bars, factors = self._bars(codes, start, min(end, settled_through(self._now())), errors)
            out["bars"] = bars
            if "adj_factor" in want and self.config.adjust != "none":
                out["adj_factor"] = factors
        if "stock_basic" in want:
            out["stock_basic"] = self._basic(errors)
        if "trade_cal" in want:
            out["trade_cal"] = self._trade_cal(start, end)
        bars = out.pop("bars", _empty(C.BAR_COLS))
        return MarketData(bars=bars, read_errors=tuple(errors), **out)

    def trading_days(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """SSE trading days in the range, as far ahead as Sina lists them (usually the current year)."""
        return [d for d in self._calendar() if start <= d <= end]

    def index_constituents(self, index_code: str) -> list[str]:
        """Not offered: an index code in the universe is fetched as itself (no bars)."""
        return []

    # -- tables -----------------------------------------------------------------------------------

    def _bars(
        self, codes: list[str], start: dt.date, last: dt.date, errors: list[ReadError]
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        if last < start or not codes:
            return _empty(C.BAR_COLS), _empty(C.ADJ_COLS)
        progress = _Progress(self._progress_dir, f"{self.config.adjust}_{start:%Y%m%d}_{last:%Y%m%d}")
        bars, factors = [], []
        for code in codes:
            done = progress.load(code)
            if done is None:
                reported = len(errors)
                done = self._symbol(code, start, last, errors)
                if len(errors) == reported:  # a symbol with a read error is asked again on a rerun
                    progress.save(code, done)
            bars.append(done[0])
            factors.append(done[1])
        progress.finish()
        return _stack(bars, C.BAR_COLS), _stack(factors, C.ADJ_COLS)

    def _symbol(
        self, ts_code: str, start: dt.date, last: dt.date, errors: list[ReadError]
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """One symbol's bars and factors over [start, last]: one call (the whole history with a factor)."""
        symbol = to_code6(ts_code)
        first = HISTORY_START if self.config.adjust != "none" else f"{start:%Y%m%d}"
        params = {"symbol": symbol, "period": "daily", "start_date": first, "end_date": f"{last:%Y%m%d}"}
        raw = self._call("stock_zh_a_hist", **params, adjust="", timeout=self.config.timeout_s)
        source = f"akshare:stock_zh_a_hist:{symbol}:{first}:{last:%Y%m%d}"
        if raw.empty:  # akshare's answer for no bars (suspended, not yet listed): nothing to report
            return _empty(C.BAR_COLS), _empty(C.ADJ_COLS)
        missing = [c for c in NEEDED if c not in raw.columns]
        if missing:
            errors.extend(ReadError("bars", source, "column_in_dataframe", column=c) for c in missing)
            return _empty(C.BAR_COLS), _empty(C.ADJ_COLS)
        history = bars_from_hist(raw, symbol, source)
        factors = adj_factor_from_bars(history, self.config.adjust)
        dates = parse_dates(history[C.TRADE_DATE])
        # Keep the range, and every row whose date cannot be read: the gate reports those.
        keep = dates.isna() | ((dates >= pd.Timestamp(start)) & (dates <= pd.Timestamp(last)))
        return history[keep].reset_index(drop=True), factors[keep].reset_index(drop=True)

    def _market_codes(self, errors: list[ReadError]) -> list[str]:
        return self._basic(errors)[C.TS_CODE].tolist()

    def _basic(self, errors: list[ReadError]) -> pd.DataFrame:
        """The A-share listing, once per source (it serves both the symbol list and stock_basic)."""
        if self._listing is None:
            source = "akshare:stock_info_a_code_name"
            frame, unknown = stock_basic_from_listing(self._call("stock_info_a_code_name"), source)
            errors.extend(ReadError("stock_basic", source, "exchange of code", value=c) for c in unknown)
            self._listing = frame
        return self._listing

    def _calendar(self) -> list[dt.date]:
        if self._open_days is None:
            raw = self._call("tool_trade_date_hist_sina")
            days = pd.to_datetime(raw["trade_date"].astype(str), errors="coerce").dropna()
            self._open_days = sorted({d.date() for d in days})
        return self._open_days

    def _trade_cal(self, start: dt.date, end: dt.date) -> pd.DataFrame:
        """Every calendar day of the range Sina's list covers, open or not, in tushare's trade_cal shape."""
        open_days = self._calendar()
        last = min(end, open_days[-1]) if open_days else start - dt.timedelta(days=1)
        days = pd.date_range(start, last, freq="D")
        opened = set(open_days)
        return pd.DataFrame(
            {
                "exchange": self.config.exchange,
                "cal_date": days.strftime("%Y%m%d"),
                "is_open": [int(d.date() in opened) for d in days],
                C.SOURCE_FILE: "akshare:tool_trade_date_hist_sina",
                C.SOURCE_ROW: range(len(days)),
            }
        )

    # -- calls ------------------------------------------------------------------------------------

    def _call(self, function: str, **params: Any) -> pd.DataFrame:
        if self._client is None:
            self._client = import_client("akshare", "akshare")
        method = getattr(self._client, function)
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items() if k != "timeout")
        return call_with_retries(
            lambda: method(**params),
            call=f"akshare {function}({shown})",
            config=self.config,
            limiter=self._limiter,
            sleep=self._sleep,
            fatal_hint=UPGRADE_HINT,
        )


class _Progress:
    """Finished symbols of one fetch, as JSON files under ``root/key``, so that a rerun skips them.
    ``root=None``: no progress is kept."""

    def __init__(self, root: Path | None, key: str) -> None:
        self.folder = None if root is None else root / key

    def load(self, code: str) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        path = self._path(code)
        if path is None or not path.is_file():
            return None
        saved = json.loads(path.read_text(encoding="utf-8"))
        return _from_json(saved["bars"]), _from_json(saved["adj_factor"])

    def save(self, code: str, done: tuple[pd.DataFrame, pd.DataFrame]) -> None:
        path = self._path(code)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        bars, factors = (frame.to_json(orient="split") for frame in done)
        text = json.dumps({"bars": bars, "adj_factor": factors})
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)

    def finish(self) -> None:
        if self.folder is not None and self.folder.exists():
            shutil.rmtree(self.folder)

    def _path(self, code: str) -> Path | None:
        return None if self.folder is None else self.folder / f"{code}.json"


def _from_json(text: str) -> pd.DataFrame:
    return pd.read_json(io.StringIO(text), orient="split", dtype=False)


def _stack(frames: list[pd.DataFrame], cols: Sequence[str]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else _empty(cols)


def _empty(cols: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in (*cols, *C.PROVENANCE)})
