"""Top-k drop-n selection, position weights and the VaR budget (stockml.backtest.strategy)."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from pydantic import ValidationError

from stockml.backtest.config import StrategyConfig
from stockml.backtest.signals import Forecast, model_scores, tie_broken
from stockml.backtest.strategy import (
    portfolio_var,
    position_weights,
    rank_order,
    select_names,
    var_scale,
)

NAN = float("nan")


def test_rank_order_skips_missing_scores_and_breaks_ties_by_position() -> None:
    np.testing.assert_array_equal(rank_order(np.array([0.1, NAN, 0.3, 0.1])), [2, 0, 3])


def test_drop_n_sells_only_the_worst_names_that_left_the_top() -> None:
    # scores of A..F; top 3 = C, E, F. Held A, B, C, D: A, B, D left the top; worst first B, D, A
    scores = np.array([0.02, -0.05, 0.06, 0.00, 0.05, 0.04])
    held = np.array([True, True, True, True, False, False])
    sell, buy = select_names(held, scores, top_k=3, drop_n=2)
    np.testing.assert_array_equal(sell, [False, True, False, True, False, False])  # B and D, not A
    np.testing.assert_array_equal(buy, [4, 5])  # E, F: the top names not held, best first
    sell_all, _ = select_names(held, scores, top_k=3, drop_n=None)
    np.testing.assert_array_equal(sell_all, [True, True, False, True, False, False])


def test_a_held_name_without_a_forecast_is_sold_first() -> None:
    sell, buy = select_names(np.array([True, True, False]), np.array([NAN, -0.01, 0.02]), top_k=1, drop_n=1)
    np.testing.assert_array_equal(sell, [True, False, False])
    np.testing.assert_array_equal(buy, [2])


def test_equal_and_inverse_volatility_weights() -> None:
    members = np.array([True, True, False])
    width = np.array([0.02, 0.04, 0.01])
    np.testing.assert_allclose(position_weights(members, width, 4, "equal"), [0.25, 0.25, 0.0])
    # 1 / width = 50 and 25 -> 2/3 and 1/3 of the members' share 2 / 2
    np.testing.assert_allclose(position_weights(members, width, 2, "inverse_vol"), [2 / 3, 1 / 3, 0.0])
    # with 4 slots the two members hold half the book
    np.testing.assert_allclose(position_weights(members, width, 4, "inverse_vol"), [1 / 3, 1 / 6, 0.0])
    # a member without a width gets the mean inverse width: 50, 50 -> equal
    np.testing.assert_allclose(
        position_weights(members, np.array([0.02, NAN, 0.0]), 2, "inverse_vol"), [0.5, 0.5, 0.0]
    )


def test_var_sum_and_independent() -> None:
    w = np.array([0.5, 0.5])
    lower = np.log(np.array([0.95, 0.90]))  # r_lower = -5 %, -10 %
    median = np.log(np.array([1.01, 1.00]))  # r_median = 1 %, 0 %
    upper = np.log(np.array([1.05, 1.10]))  # r_upper = 5 %, 10 %
    summed = portfolio_var(w, lower, median, upper, StrategyConfig(var_method="sum"))
    assert summed == pytest.approx(0.5 * 0.05 + 0.5 * 0.10)  # 0.075
    z = NormalDist().inv_cdf(0.95)  # 1.6449
    sd = np.array([0.10, 0.20]) / (2 * z)  # 0.030397, 0.060795
    spread = math.sqrt((0.5 * sd[0]) ** 2 + (0.5 * sd[1]) ** 2)  # 0.033985
    independent = portfolio_var(w, lower, median, upper, StrategyConfig(var_method="independent"))
    assert independent == pytest.approx(-(0.005 - z * spread))  # 0.050902
    assert independent < summed  # diversification
    assert portfolio_var(np.zeros(2), lower, median, upper, StrategyConfig()) == 0.0


def test_var_scale_brings_the_book_within_budget() -> None:
    assert var_scale(0.075, 0.03) == pytest.approx(0.4)
    assert var_scale(0.02, 0.03) == 1.0
    assert var_scale(0.075, None) == 1.0
    w = np.array([0.5, 0.5])
    lower, median, upper = np.log([0.95, 0.90]), np.zeros(2), np.log([1.05, 1.10])
    for method in ("sum", "independent"):
        cfg = StrategyConfig(var_method=method)
        var = portfolio_var(w, lower, median, upper, cfg)
        scaled = w * var_scale(var, 0.03)
        assert portfolio_var(scaled, lower, median, upper, cfg) == pytest.approx(0.03)


def test_var_budget_needs_resizing() -> None:
    with pytest.raises(ValidationError, match="resize_held"):
        StrategyConfig(var_budget=0.02)
    assert StrategyConfig(var_budget=0.02, resize_held=True).var_budget == 0.02


def test_risk_adjusted_score_ranks_per_unit_of_width() -> None:
    # medians 2 % and 1 %, widths 0.04 and 0.01: by median A first; per unit of width 0.5 < 1.0, B first
    forecast = Forecast(
        lower=np.array([[0.0, 0.005]]), median=np.array([[0.02, 0.01]]), upper=np.array([[0.04, 0.015]])
    )
    np.testing.assert_allclose(model_scores(forecast, StrategyConfig(score="median")), [[0.02, 0.01]])
    np.testing.assert_allclose(model_scores(forecast, StrategyConfig(score="risk_adjusted")), [[0.5, 1.0]])


def test_tie_broken_ranks_order_ties_by_the_tiebreak_and_keep_missing_scores_missing() -> None:
    scores = np.array([[0.1, NAN, 0.3, 0.1], [0.0, 0.0, 0.0, 0.0]])
    tiebreak = np.array([[0.9, 0.5, 0.1, 0.2], [0.3, 0.1, 0.4, 0.2]])
    np.testing.assert_array_equal(tie_broken(scores, tiebreak), [[2.0, NAN, 3.0, 1.0], [2.0, 0.0, 3.0, 1.0]])
