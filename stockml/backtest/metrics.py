"""Performance of a daily return series against a benchmark (all figures are fractions, not percent).

``annual_return``: geometric, ``(1 + total) ** (P / n) - 1``; ``excess_annual_return``: arithmetic,
``mean(r - b) * P``; ``annual_volatility``: ``sd(r) * sqrt(P)`` (ddof 1); ``sharpe``:
``(mean(r) - rf / P) / sd(r) * sqrt(P)``; ``information_ratio``: ``mean(r - b) / sd(r - b) * sqrt(P)``;
``max_drawdown``: the lowest ``wealth / running peak - 1`` (<= 0); ``hit_rate``: share of days with
``r > b``; ``turnover``: annualised one-way turnover, ``mean(traded / (2 * previous value)) * P`` (1: the
book replaced once a year); ``cost_drag``: ``mean(costs / previous value) * P``. P: periods per year.
"""

from __future__ import annotations

import numpy as np

METRICS = (
    "total_return",
    "annual_return",
    "annual_volatility",
    "sharpe",
    "max_drawdown",
    "benchmark_annual_return",
    "excess_annual_return",
    "information_ratio",
    "hit_rate",
    "turnover",
    "cost_drag",
    "total_costs",
    "n_days",
)
BOUND_METRICS = ("total_return", "annual_return", "sharpe", "max_drawdown", "excess_annual_return")


def daily_returns(value: np.ndarray, capital: float) -> np.ndarray:
    """(T,) close-to-close returns of the book, the first day against the starting capital."""
    previous = np.concatenate([[capital], value[:-1]])
    return value / previous - 1.0


def annual_return(returns: np.ndarray, periods: int) -> float:
    total = float(np.prod(1.0 + returns))
    return total ** (periods / len(returns)) - 1.0 if len(returns) else float("nan")


def max_drawdown(returns: np.ndarray) -> float:
    wealth = np.concatenate([[1.0], np.cumprod(1.0 + returns)])
    return float((wealth / np.maximum.accumulate(wealth) - 1.0).min())


def _ratio(mean: float, sd: float, periods: int) -> float:
    return mean / sd * np.sqrt(periods) if sd > 0 else float("nan")


def _sd(x: np.ndarray) -> float:
    return float(x.std(ddof=1)) if len(x) > 1 else float("nan")


def performance(
    returns: np.ndarray,
    benchmark: np.ndarray,
    previous_value: np.ndarray,
    traded: np.ndarray,
    costs: np.ndarray,
    periods: int = 252,
    risk_free: float = 0.0,
) -> dict[str, float]:
    """The metrics of :data:`METRICS` from (T,) daily returns, benchmark returns, the book's value
    before each day, and the CNY traded (both sides) and paid in costs each day."""
    excess = returns - benchmark
    sd = _sd(returns)
    return {
        "total_return": float(np.prod(1.0 + returns) - 1.0),
        "annual_return": annual_return(returns, periods),
        "annual_volatility": sd * np.sqrt(periods),
        "sharpe": _ratio(float(returns.mean()) - risk_free / periods, sd, periods),
        "max_drawdown": max_drawdown(returns),
        "benchmark_annual_return": annual_return(benchmark, periods),
        "excess_annual_return": float(excess.mean()) * periods,
        "information_ratio": _ratio(float(excess.mean()), _sd(excess), periods),
        "hit_rate": float((returns > benchmark).mean()),
        "turnover": float((traded / (2.0 * previous_value)).mean()) * periods,
        "cost_drag": float((costs / previous_value).mean()) * periods,
        "total_costs": float(costs.sum()),
        "n_days": float(len(returns)),
    }
