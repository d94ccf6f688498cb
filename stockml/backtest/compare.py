"""Backtests of several models' walk-forward predictions on the same bars, as one table (pure)."""

from __future__ import annotations

import pandas as pd

from stockml.backtest.config import BacktestConfig, StrategyConfig
from stockml.backtest.run import BacktestResult, run_backtest

COLUMNS = (
    "annual_return",
    "annual_volatility",
    "sharpe",
    "information_ratio",
    "max_drawdown",
    "turnover",
    "cost_drag",
    "perfect_annual_return",
    "random_annual_return",
)


def with_adj_factor(bars: pd.DataFrame, adj_factor: pd.DataFrame | None) -> pd.DataFrame:
    """The lake's bars with tushare's ``adj_factor`` joined where known (the backtest's share splits)."""
    if adj_factor is None or "adj_factor" in bars.columns:
        return bars
    factors = adj_factor[["ts_code", "trade_date", "adj_factor"]]
    return bars.merge(factors, on=["ts_code", "trade_date"], how="left", validate="one_to_one")


def book_config(
    forecast: pd.DataFrame, top_k: int | None = None, drop_n: int | None = None, trade_at: str = "open"
) -> BacktestConfig:
    """The default book for the universe of ``forecast`` (the symbols it forecasts at horizon 1): top
    ``top_k`` (default a fifth of the universe, 1 to 30, so a book always chooses), replacing at most
    ``drop_n`` a day (default a sixth of the book, at least 1); default costs and rules."""
    n_symbols = forecast.loc[forecast["horizon"] == 1, "ts_code"].nunique()
    k = top_k if top_k is not None else min(30, max(1, n_symbols // 5))
    n = drop_n if drop_n is not None else max(1, k // 6)
    return BacktestConfig.model_validate(
        {"trade_at": trade_at, "strategy": StrategyConfig(top_k=k, drop_n=n)}
    )


def backtest_all(
    predictions: dict[str, pd.DataFrame],
    bars: pd.DataFrame,
    cfg: BacktestConfig | None = None,
    stock_basic: pd.DataFrame | None = None,
    benchmark: pd.Series | None = None,
) -> dict[str, BacktestResult]:
    """Every prediction frame's book, on the same bars and settings."""
    return {name: run_backtest(p, bars, cfg, stock_basic, benchmark) for name, p in predictions.items()}


def backtest_table(
    predictions: dict[str, pd.DataFrame],
    bars: pd.DataFrame,
    cfg: BacktestConfig | None = None,
    stock_basic: pd.DataFrame | None = None,
    benchmark: pd.Series | None = None,
) -> pd.DataFrame:
    """One row per name of ``predictions`` (each a walk-forward prediction frame: ``ts_code``, as-of
    ``date``, ``horizon``, quantiles) with its book's :data:`COLUMNS`, every book on the same bars and
    settings."""
    rows = {
        name: r.metrics for name, r in backtest_all(predictions, bars, cfg, stock_basic, benchmark).items()
    }
    return pd.DataFrame.from_dict(rows, orient="index")[list(COLUMNS)]
