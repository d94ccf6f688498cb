"""Backtest performance figures against hand-computed values (stockml.backtest.metrics).

Three days, P = 6 periods a year so that the annualised figures stay readable:
r = 10 %, -5 %, 2 %; benchmark b = 0, 0, 1 %; excess e = 10 %, -5 %, 1 %.
mean(r) = 0.023333, sd(r) = sqrt((0.076667^2 + 0.073333^2 + 0.003333^2) / 2) = 0.075056;
mean(e) = 0.02, sd(e) = sqrt((0.08^2 + 0.07^2 + 0.01^2) / 2) = 0.075498.
"""

from __future__ import annotations

import numpy as np
import pytest

from stockml.backtest.metrics import METRICS, daily_returns, max_drawdown, performance

R = np.array([0.10, -0.05, 0.02])
B = np.array([0.0, 0.0, 0.01])
PREVIOUS = np.array([100.0, 110.0, 104.5])  # the book before each day: 100 * cumprod(1 + r)
TRADED = np.array([200.0, 22.0, 0.0])
COSTS = np.array([1.0, 0.11, 0.0])


def test_performance_by_hand() -> None:
    m = performance(R, B, PREVIOUS, TRADED, COSTS, periods=6)
    assert set(m) == set(METRICS)
    assert m["total_return"] == pytest.approx(1.1 * 0.95 * 1.02 - 1)  # 0.0659
    assert m["annual_return"] == pytest.approx(1.0659**2 - 1)  # 3 days of 6 a year: squared
    assert m["annual_volatility"] == pytest.approx(0.075056 * 6**0.5, rel=1e-4)  # 0.18385
    assert m["sharpe"] == pytest.approx(0.023333 / 0.075056 * 6**0.5, rel=1e-4)  # 0.7615
    assert m["max_drawdown"] == pytest.approx(1.045 / 1.1 - 1)  # -5 %: from 1.10 down to 1.045
    assert m["benchmark_annual_return"] == pytest.approx(1.01**2 - 1)
    assert m["excess_annual_return"] == pytest.approx(0.02 * 6)
    assert m["information_ratio"] == pytest.approx(0.02 / 0.075498 * 6**0.5, rel=1e-4)  # 0.6489
    assert m["hit_rate"] == pytest.approx(2 / 3)  # days 1 and 3 beat the benchmark
    # traded / (2 * previous) = 1.0, 0.1, 0 -> mean 0.36667 * 6
    assert m["turnover"] == pytest.approx(2.2)
    # costs / previous = 1 %, 0.1 %, 0 -> mean 0.36667 % * 6
    assert m["cost_drag"] == pytest.approx(0.022)
    assert m["total_costs"] == pytest.approx(1.11)
    assert m["n_days"] == 3


def test_sharpe_with_a_risk_free_rate() -> None:
    m = performance(R, B, PREVIOUS, TRADED, COSTS, periods=6, risk_free=0.06)  # 1 % a period
    assert m["sharpe"] == pytest.approx((0.023333 - 0.01) / 0.075056 * 6**0.5, rel=1e-4)  # 0.4351


def test_daily_returns_start_from_the_capital_and_drawdown_from_the_start() -> None:
    np.testing.assert_allclose(daily_returns(np.array([90.0, 99.0]), 100.0), [-0.1, 0.1])
    assert max_drawdown(np.array([-0.1, 0.1])) == pytest.approx(-0.1)  # the first day counts
    assert max_drawdown(np.array([0.05, 0.02])) == 0.0
