"""Daily bars as (day, symbol) arrays: prices, who can trade, limit prices and share splits.

Required bar columns: ``ts_code``, ``trade_date``, ``open``, ``close``, ``pre_close`` (the exchange's,
ex-rights adjusted, as tushare gives it), ``vol``. Optional: ``adj_factor`` (tushare's cumulative factor;
held shares grow by its ratio from one bar to the next, so splits, bonus shares and cash dividends
reinvested keep the book's value; without it no corporate actions are applied) and ``up_limit`` /
``down_limit`` (tushare ``stk_limit``; they replace the board rule where present).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stockml.backtest import rules
from stockml.backtest.config import BacktestConfig
from stockml.columns import TRADE_DATE, TS_CODE

BAR_REQUIRED = (TS_CODE, TRADE_DATE, "open", "close", "pre_close", "vol")


@dataclass(frozen=True, eq=False)
class Market:
    """(D, N) arrays on the trading calendar ``dates`` and the universe ``codes``; NaN where no bar."""

    dates: pd.DatetimeIndex
    codes: np.ndarray
    open: np.ndarray
    close: np.ndarray
    last_close: np.ndarray  # close carried over suspensions: what a held share is worth
    tradable: np.ndarray  # a bar with volume
    up_limit: np.ndarray
    down_limit: np.ndarray
    split: np.ndarray  # adj_factor / the symbol's previous bar's adj_factor; 1 without a bar
    day_return: np.ndarray  # close / pre_close - 1 on tradable days, NaN otherwise


def _panel(bars: pd.DataFrame, column: str, dates: pd.DatetimeIndex, codes: np.ndarray) -> np.ndarray:
    wide = bars.pivot(index=TRADE_DATE, columns=TS_CODE, values=column)
    return wide.reindex(index=dates, columns=codes).to_numpy(dtype=np.float64)  # (D, N)


def _split_ratio(factor: np.ndarray) -> np.ndarray:
    """adj_factor over the same symbol's previous bar's (over gaps), 1 where either is missing."""
    previous = pd.DataFrame(factor).ffill().shift(1).to_numpy()
    ratio = factor / previous
    return np.where(np.isfinite(ratio) & (ratio > 0), ratio, 1.0)


def build_market(
    bars: pd.DataFrame,
    codes: np.ndarray,
    cfg: BacktestConfig,
    stock_basic: pd.DataFrame | None = None,
) -> Market:
    """Arrays of ``codes`` on every ``trade_date`` of ``bars`` (the calendar: any symbol's bar day)."""
    missing = [c for c in BAR_REQUIRED if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lack the columns {missing} (required: {list(BAR_REQUIRED)})")
    bars = bars.assign(**{TRADE_DATE: pd.to_datetime(bars[TRADE_DATE])})
    dates = pd.DatetimeIndex(np.sort(bars[TRADE_DATE].unique()))
    bars = bars[bars[TS_CODE].isin(codes)].drop_duplicates([TS_CODE, TRADE_DATE], keep="last")
    p = {c: _panel(bars, c, dates, codes) for c in ("open", "close", "pre_close", "vol")}
    tradable = ~rules.is_suspended(p["vol"]) & np.isfinite(p["open"]) & np.isfinite(p["close"])

    basic = stock_basic.set_index(TS_CODE) if stock_basic is not None else pd.DataFrame()
    names = basic["name"].reindex(codes).tolist() if "name" in basic else None
    markets = basic["market"].reindex(codes).tolist() if "market" in basic else None
    fraction = rules.limit_fractions(list(codes), cfg.limits, names, markets)  # (N,)
    up, down = rules.limit_prices(p["pre_close"], fraction[None, :])
    if "up_limit" in bars.columns:
        given = _panel(bars, "up_limit", dates, codes)
        up = np.where(np.isfinite(given), given, up)
    if "down_limit" in bars.columns:
        given = _panel(bars, "down_limit", dates, codes)
        down = np.where(np.isfinite(given), given, down)

    factor = _panel(bars, "adj_factor", dates, codes) if "adj_factor" in bars.columns else None
    split = _split_ratio(factor) if factor is not None else np.ones_like(p["close"])
    return Market(
        dates=dates,
        codes=np.asarray(codes),
        open=p["open"],
        close=p["close"],
        last_close=pd.DataFrame(p["close"]).ffill().to_numpy(),
        tradable=tradable,
        up_limit=up,
        down_limit=down,
        split=split,
        day_return=np.where(tradable, p["close"] / p["pre_close"] - 1.0, np.nan),
    )


def execution_prices(market: Market, trade_at: str) -> np.ndarray:
    """(D, N) the price trades fill at: the open or the close of the trading day."""
    return market.open if trade_at == "open" else market.close
