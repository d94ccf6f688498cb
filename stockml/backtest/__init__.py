"""What a forecast is worth in money: a cost-aware A-share portfolio backtest (pure; no I/O).

Entry point: :func:`stockml.backtest.run.run_backtest`, configured by
:class:`stockml.backtest.config.BacktestConfig`.
"""

from stockml.backtest.config import BacktestConfig
from stockml.backtest.run import BacktestResult, run_backtest

__all__ = ["BacktestConfig", "BacktestResult", "run_backtest"]
