"""Backtests of several models' walk-forward predictions on the same bars, as one table (pure)."""

from __future__ import annotations

import pandas as pd

from stockml.backtest.config import BacktestConfig
from stockml.backtest.run import run_backtest

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
        name: run_backtest(preds, bars, cfg, stock_basic, benchmark).metrics
        for name, preds in predictions.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index")[list(COLUMNS)]
