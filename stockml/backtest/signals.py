"""Ranking scores on the (day, symbol) grid: the model's, perfect foresight's and a seeded random one.

Only horizon-1 forecasts are used: the book is re-decided every day. A score of day t is known after
t's close and trades at t+1's open (``trade_at="open"``) or at t's close (``"close"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stockml.backtest.config import StrategyConfig
from stockml.backtest.market import Market, execution_prices
from stockml.columns import TS_CODE, quantile_column

PRED_REQUIRED = (TS_CODE, "date", "horizon")


@dataclass(frozen=True, eq=False)
class Forecast:
    """(D, N) horizon-1 quantiles of the cumulative log return on the market's grid; NaN: no forecast."""

    lower: np.ndarray
    median: np.ndarray
    upper: np.ndarray

    @property
    def width(self) -> np.ndarray:
        return self.upper - self.lower


def forecast_panel(predictions: pd.DataFrame, market: Market, cfg: StrategyConfig) -> Forecast:
    """Horizon-1 rows of ``predictions`` (as-of ``date``; quantile columns ``q0.05`` ... ``q0.95``) on the
    market grid. Rows whose date is not a trading day of the bars are dropped."""
    levels = (cfg.lower, 0.5, cfg.upper)
    columns = [quantile_column(q) for q in levels]
    missing = [c for c in (*PRED_REQUIRED, *columns) if c not in predictions.columns]
    if missing:
        raise ValueError(f"predictions lack the columns {missing}")
    h1 = predictions[predictions["horizon"] == 1]
    h1 = h1.assign(date=pd.to_datetime(h1["date"])).drop_duplicates([TS_CODE, "date"], keep="last")

    def panel(column: str) -> np.ndarray:
        wide = h1.pivot(index="date", columns=TS_CODE, values=column)
        return wide.reindex(index=market.dates, columns=market.codes).to_numpy(dtype=np.float64)

    lower, median, upper = (panel(c) for c in columns)
    return Forecast(lower=lower, median=median, upper=upper)


def model_scores(forecast: Forecast, cfg: StrategyConfig) -> np.ndarray:
    """(D, N) predicted median, or median per unit of interval width (NaN where the width is not > 0)."""
    if cfg.score == "median":
        return forecast.median
    width = forecast.width
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(width > 0, forecast.median / width, np.nan)


def signal_days(n_days: int, trade_at: str) -> np.ndarray:
    """(D,) index of the signal day that trades on each day; -1 where none (the first day at the open)."""
    days = np.arange(n_days)
    return days - 1 if trade_at == "open" else days


def perfect_scores(market: Market, trade_at: str) -> np.ndarray:
    """(D, N) at signal day t: the realised return from the fill of t's trades to the next day's fill
    price (open to next open, or close to next close), splits included; NaN where either is missing."""
    price = np.where(market.tradable, execution_prices(market, trade_at), np.nan)
    level = price * np.cumprod(market.split, axis=0)  # in shares of the first day
    realised = np.full_like(level, np.nan)
    realised[:-1] = level[1:] / level[:-1] - 1.0  # (D-1, N): fill on day e, sell on day e+1
    scores = np.full_like(realised, np.nan)
    offset = 1 if trade_at == "open" else 0  # signal t fills on day t + offset
    scores[: len(scores) - offset] = realised[offset:]
    return scores


def random_scores(shape: tuple[int, int], seed: int) -> np.ndarray:
    """(D, N) seeded uniform scores: the random portfolio's ranking."""
    return np.random.default_rng(seed).random(shape)


def tie_broken(scores: np.ndarray, tiebreak: np.ndarray) -> np.ndarray:
    """(D, N) each day's rank of ``scores`` (0: worst; NaN where no score), equal scores ordered by
    ``tiebreak`` (D, N). Only the order matters to the book, so ranks replace scores losslessly; with
    :func:`random_scores` of the random book as ``tiebreak``, a model that ranks nothing (the same median
    for every name, as the zero-median baselines) holds exactly the random book, not the first names in
    code order."""
    order = np.lexsort((tiebreak, np.nan_to_num(scores, nan=-np.inf)), axis=-1)  # (D, N) worst first
    ranks = np.empty_like(scores)
    np.put_along_axis(ranks, order, np.arange(scores.shape[1], dtype=np.float64)[None, :], axis=-1)
    return np.where(np.isfinite(scores), ranks, np.nan)
