"""``demo``: a deterministic synthetic A-share market, built in (no files, no network).

By default 30 symbols in 5 sectors over the weekdays of 2021-2024, in tushare's formats: raw prices
with 2 decimals, ``vol`` in lots, ``amount`` in thousand CNY, ``pct_chg`` in percent. The whole market
is simulated once per :class:`DemoSource` (lazily, on first use) over ``[config.start, config.end]``;
:meth:`DemoSource.fetch` only slices it, so chunked backfills agree row for row with one fetch.

The model (engine in :mod:`stockml.sources.demo_market`), for symbol i on trading day t::

    r[t, i] = drift + b_i m[t] + g_i s[sector(i), t] + sd[t, i] * (eps[t, i] + k * z[t-1, i])

``m`` (market) and ``s`` (one per sector) are factors and ``eps`` idiosyncratic; each is Student-t
(4 df, fat tails) scaled by its own GARCH(1,1) volatility (clustering). Returns are held to the
+-10 % price limit; suspensions are runs of days with no bar. Yearly ex-dividend and bonus-share
events lower the raw price: on the ex-date ``pre_close`` is the adjusted previous close (so it differs
from the previous raw close), ``adj_factor`` steps up by ``prev_close / pre_close`` and
``pct_chg = (close / pre_close - 1) * 100``. Adjusted series are derived later, never stored here.

The planted signal. ``z`` is a latent AR(1) per symbol (coefficient 0.9, unit variance); the
sentiment table publishes ``score[t, i] = z[t, i] + N(0, 1)`` at the close of day t, and the next
day's idiosyncratic return carries ``k * sd[t+1, i] * z[t, i]`` with ``k = signal_strength``: the
signal is k idiosyncratic standard deviations per unit of z, known at t. The cross-sectional
correlation of score[t] with return[t+1] is about ``0.71 * k / sqrt(1 + k**2 + 0.12)``: 0.71 is
corr(score, z) and 0.12 the sector factors' share of cross-sectional dispersion; the rank IC is close
to it. Measured mean daily rank IC of score vs next-day ``pct_chg`` (1,041 days, standard error about
0.006), mean over seeds 0-19 and, in brackets, the default seed 7: k = 0 -> -0.001 (0.017),
k = 0.05 -> 0.033 (0.051), k = 0.15 -> 0.101 (0.118), k = 0.3 -> 0.195 (0.210). Seed 7's
sentiment noise happens to line up with its returns (its k = 0 IC is about 3 standard errors, a
1-in-300 draw under the null), so judge "no signal" claims on held-out periods or several seeds.
At k = 0 returns are independent of sentiment and of the past beyond volatility clustering; at k > 0
past returns carry a faint trace of z too. The monthly macro table (``table="demo_macro"``;
``period_end`` is the month end it describes, its release lag of ``macro_lag_days`` is applied by
the feature pipeline) is independent noise.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import ClassVar, Self

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from stockml.columns import SOURCE_FILE, SOURCE_ROW, TABLE_TIME_COL, TS_CODE
from stockml.sources.base import MarketData
from stockml.sources.demo_market import DemoTables, demo_symbols, simulate_market, take_strings, weekdays

_TIME_COL = {**TABLE_TIME_COL, "macro": "period_end", "trade_cal": "cal_date"}
_MARKET_WIDE = {"index_daily", "macro", "trade_cal"}  # not filtered by ``symbols``


class DemoConfig(BaseModel):
    """The demo market. ``signal_strength`` is k above (0: nothing is predictable)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 7
    n_symbols: int = Field(default=30, ge=1, le=20_000)
    n_sectors: int = Field(default=5, ge=1)
    start: dt.date = dt.date(2021, 1, 4)
    end: dt.date = dt.date(2024, 12, 31)
    signal_strength: float = Field(default=0.15, ge=0.0, le=5.0)
    suspension_rate: float = Field(default=0.004, ge=0.0, le=0.5)  # share of symbol-days without a bar
    macro_lag_days: int = Field(default=10, ge=0)  # documented release lag; applied downstream
    index_code: str = Field(default="990001.SH", pattern=r"^\d{6}\.(SH|SZ)$")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        if np.busday_count(self.start, self.end + dt.timedelta(days=1)) == 0:
            raise ValueError(f"no weekday between {self.start} and {self.end}")
        if self.n_sectors > self.n_symbols:
            raise ValueError(f"n_sectors {self.n_sectors} exceeds n_symbols {self.n_symbols}")
        return self


class DemoSource:
    """The :class:`~stockml.sources.base.DataSource` of the demo market.

    ``source_row`` is a row's position in the full simulated table named by ``source_file``
    (e.g. ``demo:bars``), so it is the same whichever slice a fetch returns.
    """

    name = "demo"
    chunk_days: ClassVar[int | None] = None  # simulated once, sliced: any range in one pass

    def __init__(self, config: DemoConfig | None = None) -> None:
        self.config = config or DemoConfig()
        self._tables: dict[str, pd.DataFrame] | None = None

    @property
    def symbols(self) -> list[str]:
        return demo_symbols(self.config.n_symbols)

    def fetch(
        self,
        start: dt.date,
        end: dt.date,
        symbols: Sequence[str] | None = None,
        *,
        tables: Collection[str] | None = None,
    ) -> MarketData:
        full = self._full()
        wanted = None if symbols is None else set(symbols)
        out = {
            name: _slice(frame, _TIME_COL[name], start, end, None if name in _MARKET_WIDE else wanted)
            for name, frame in full.items()
            if tables is None or name in tables
        }
        return MarketData(**{"bars": full["bars"].iloc[:0], **out})

    def trading_days(self, start: dt.date, end: dt.date) -> list[dt.date]:
        lo, hi = max(_as_date(start), self.config.start), min(_as_date(end), self.config.end)
        return [d.date() for d in weekdays(lo, hi)]

    def index_constituents(self, index_code: str) -> list[str]:
        return self.symbols if index_code == self.config.index_code else []

    def _full(self) -> dict[str, pd.DataFrame]:
        if self._tables is None:
            sim: DemoTables = simulate_market(self.config)
            self._tables = {name: _with_provenance(getattr(sim, name), name) for name in _TIME_COL}
        return self._tables


def _as_date(value: dt.date) -> dt.date:
    """A plain date from a date, datetime or pandas Timestamp (time of day dropped)."""
    return pd.Timestamp(value).date()


def _with_provenance(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    rows = np.arange(len(frame), dtype=np.int64)
    return frame.assign(**{SOURCE_FILE: take_strings([f"demo:{name}"], rows * 0), SOURCE_ROW: rows})


def _slice(
    frame: pd.DataFrame, time_col: str | None, start: dt.date, end: dt.date, symbols: set[str] | None
) -> pd.DataFrame:
    """Rows with ``time_col`` in [start, end] (frames are sorted by it) and ``ts_code`` in symbols."""
    if time_col is not None:
        times = frame[time_col].to_numpy()
        first, after = np.datetime64(_as_date(start)), np.datetime64(_as_date(end) + dt.timedelta(days=1))
        lo = int(np.searchsorted(times, first, side="left"))
        hi = int(np.searchsorted(times, after, side="left"))
        frame = frame.iloc[lo : max(lo, hi)]
    if symbols is not None:
        frame = frame[frame[TS_CODE].isin(symbols)]
    return frame.reset_index(drop=True)
