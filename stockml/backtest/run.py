"""One backtest of a model's walk-forward predictions, beside perfect-foresight and random bounds.

The bounds run the same book (strategy, weights, VaR budget from the model's quantiles, costs, rules)
and rank only differently: by the realised return of the holding day, or by seeded random numbers,
both among the names the model forecast that day. Ties in a ranking are broken by the random book's
numbers, so a forecast that ranks nothing earns what the random book earns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stockml.backtest.config import BacktestConfig
from stockml.backtest.market import Market, build_market
from stockml.backtest.metrics import BOUND_METRICS, daily_returns, performance
from stockml.backtest.signals import (
    forecast_panel,
    model_scores,
    perfect_scores,
    random_scores,
    tie_broken,
)
from stockml.backtest.simulate import BookHistory, backtest_days, simulate
from stockml.columns import TRADE_DATE, TS_CODE

COST_PARTS = ("commission", "stamp_duty", "transfer_fee", "slippage")


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """``daily``: one row per trading day (value, cash, invested, n_holdings, costs, traded, return,
    benchmark_return, excess_return, perfect_return, random_return); ``holdings``: shares and value at each
    close (long); ``trades``: every fill with its costs; ``metrics``: the model book's
    :data:`~stockml.backtest.metrics.METRICS`, and ``perfect_*`` / ``random_*`` for the bounds."""

    daily: pd.DataFrame
    holdings: pd.DataFrame
    trades: pd.DataFrame
    metrics: dict[str, float]


def benchmark_returns(market: Market, index_close: pd.Series | None = None) -> np.ndarray:
    """(D,) daily benchmark returns: an index's close series (indexed by date; carried over missing
    days), or without one the equal-weight mean of the universe's ``close / pre_close - 1`` over the
    names that traded. 0 where unknown."""
    if index_close is not None:
        close = index_close.set_axis(pd.to_datetime(index_close.index)).sort_index()
        close = close.reindex(close.index.union(market.dates)).ffill()
        out = close.pct_change().reindex(market.dates).to_numpy(dtype=np.float64)
    else:
        traded = np.isfinite(market.day_return)
        total = np.where(traded, market.day_return, 0.0).sum(axis=1)
        out = np.where(traded.any(axis=1), total / np.maximum(traded.sum(axis=1), 1), np.nan)
    return np.nan_to_num(out, nan=0.0)


def _returns(path: BookHistory, cfg: BacktestConfig) -> np.ndarray:
    return daily_returns(path.value, cfg.capital)


def _metrics(path: BookHistory, bench: np.ndarray, cfg: BacktestConfig) -> dict[str, float]:
    previous = np.concatenate([[cfg.capital], path.value[:-1]])
    return performance(
        _returns(path, cfg),
        bench[path.days],
        previous,
        path.traded,
        path.costs,
        cfg.periods_per_year,
        cfg.risk_free,
    )


def _holdings(path: BookHistory, market: Market) -> pd.DataFrame:
    day, name = np.nonzero(path.shares > 0)
    shares = path.shares[day, name]
    close = market.last_close[path.days[day], name]
    return pd.DataFrame(
        {
            TRADE_DATE: market.dates[path.days[day]],
            TS_CODE: market.codes[name],
            "shares": shares,
            "close": close,
            "value": shares * close,
        }
    )


def _trades(path: BookHistory, market: Market) -> pd.DataFrame:
    day, name = np.nonzero((path.bought > 0) | (path.sold > 0))
    bought = path.bought[day, name] > 0
    shares = np.where(bought, path.bought[day, name], path.sold[day, name])
    price = path.price[day, name]
    frame = pd.DataFrame(
        {
            TRADE_DATE: market.dates[path.days[day]],
            TS_CODE: market.codes[name],
            "side": np.where(bought, "buy", "sell"),
            "shares": shares,
            "price": price,
            "value": shares * price,
        }
    )
    parts = {part: getattr(path, part)[day, name] for part in COST_PARTS}
    return frame.assign(**parts, cost=sum(parts.values()))


def run_backtest(
    predictions: pd.DataFrame,
    bars: pd.DataFrame,
    cfg: BacktestConfig | None = None,
    stock_basic: pd.DataFrame | None = None,
    benchmark: pd.Series | None = None,
) -> BacktestResult:
    """Backtest the horizon-1 forecasts of ``predictions`` (``ts_code``, as-of ``date``, ``horizon``,
    quantile columns) on ``bars`` (see :mod:`stockml.backtest.market` for the columns). The universe is
    the predicted symbols; ``stock_basic`` (``ts_code``, ``name``, optional ``market``) marks ST names and
    boards; ``benchmark``: an index close series by date (default: the equal-weight universe)."""
    cfg = cfg if cfg is not None else BacktestConfig()
    codes = np.sort(predictions.loc[predictions["horizon"] == 1, TS_CODE].unique())
    market = build_market(bars, codes, cfg, stock_basic)
    forecast = forecast_panel(predictions, market, cfg.strategy)
    forecast_made = np.isfinite(forecast.median)
    randomness = random_scores(forecast_made.shape, cfg.seed)
    scores = tie_broken(model_scores(forecast, cfg.strategy), randomness)
    bounds = {
        "perfect": tie_broken(
            np.where(forecast_made, perfect_scores(market, cfg.trade_at), np.nan), randomness
        ),
        "random": np.where(forecast_made, randomness, np.nan),
    }
    bench = benchmark_returns(market, benchmark)

    days = backtest_days(scores, cfg.trade_at)
    path = simulate(market, scores, forecast, days, cfg)
    metrics = _metrics(path, bench, cfg)
    returns = _returns(path, cfg)
    daily = pd.DataFrame(
        {
            TRADE_DATE: market.dates[path.days],
            "value": path.value,
            "cash": path.cash,
            "invested": path.value - path.cash,
            "n_holdings": (path.shares > 0).sum(axis=1),
            "costs": path.costs,
            "traded": path.traded,
            "return": returns,
            "benchmark_return": bench[path.days],
            "excess_return": returns - bench[path.days],
        }
    )
    for name, bound_scores in bounds.items():
        bound = simulate(market, bound_scores, forecast, days, cfg)
        bound_metrics = _metrics(bound, bench, cfg)
        metrics.update({f"{name}_{key}": bound_metrics[key] for key in BOUND_METRICS})
        daily[f"{name}_return"] = _returns(bound, cfg)
    return BacktestResult(
        daily=daily, holdings=_holdings(path, market), trades=_trades(path, market), metrics=metrics
    )
