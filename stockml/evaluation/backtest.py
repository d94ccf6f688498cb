"""The backtest section of an evaluation: every forecast's cost-aware top-k book on the run's bars.

Models and baselines are backtested; extra seeds and calibrated rows (``<model>.aci``) are not: a
calibrated row has its model's medians, and the default book ranks by the median with equal weights,
so its book is its model's.
"""

from __future__ import annotations

from dataclasses import replace

from stockml.backtest.compare import backtest_all, book_config, with_adj_factor
from stockml.evaluation.calibration import SUFFIX as ACI
from stockml.evaluation.report import Evaluation, json_safe
from stockml.evaluation.report_types import BacktestSection
from stockml.sources.base import MarketData
from stockml.training.config import EvalConfig

BENCHMARK = "equal-weight universe"


def with_backtest(evaluation: Evaluation, data: MarketData, eval_cfg: EvalConfig) -> Evaluation:
    """``evaluation`` with its report's ``backtest`` section and each book's daily rows (unchanged when
    ``eval_cfg.backtest`` is off or there is nothing to backtest)."""
    report = evaluation.report
    names = [n for n, r in report.results.items() if r.kind != "seed" and not n.endswith(ACI)]
    if not eval_cfg.backtest or not names:
        return evaluation
    predictions = {name: evaluation.predictions[name] for name in names}
    cfg = book_config(
        predictions[names[0]], eval_cfg.backtest_top_k, eval_cfg.backtest_drop_n, eval_cfg.backtest_trade_at
    )
    books = backtest_all(predictions, with_adj_factor(data.bars, data.adj_factor), cfg, data.stock_basic)
    settings = {
        "top_k": cfg.strategy.top_k,
        "drop_n": cfg.strategy.drop_n,
        "trade_at": cfg.trade_at,
        "capital": cfg.capital,
        "benchmark": BENCHMARK,
        "costs": cfg.costs.model_dump(mode="json"),
    }
    results = {name: json_safe(book.metrics) for name, book in books.items()}
    section = BacktestSection(settings=settings, results=results)
    daily = {name: book.daily for name, book in books.items()}
    return replace(evaluation, report=replace(report, backtest=section), backtests=daily)
