"""One round of trading (stockml.backtest.execution): T+1, board lots, the commission minimum, limits.

Costs here: commission 2.5 bp (minimum 5 CNY), transfer fee 0.1 bp, no slippage, so a buy costs
``max(2.5e-4 * v, 5) + 1e-5 * v`` on its value v.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from stockml.backtest.config import CostConfig
from stockml.backtest.execution import Book, Quote, affordable_lots, start_day, trade

COSTS = CostConfig(slippage_bp=0.0)
DAY = dt.date(2024, 3, 1)
NAN = float("nan")


def quote(price: list[float], buy: list[bool] | None = None, sell: list[bool] | None = None) -> Quote:
    n = len(price)
    return Quote(
        price=np.array(price),
        can_buy=np.array(buy if buy is not None else [True] * n),
        can_sell=np.array(sell if sell is not None else [True] * n),
    )


def test_t_plus_one_blocks_a_same_day_sell() -> None:
    book = Book.empty(100_000.0, 1)
    q = quote([10.0])
    book, fills = trade(book, np.array([50_000.0]), q, DAY, 100, COSTS)
    # 50,000 / (10 * 1.000026) = 4999.87 -> 4900 shares (49 lots): 49,000 + 12.25 + 0.49 = 49,012.74
    assert fills.bought[0] == 4900
    assert book.cash == pytest.approx(100_000 - 49_012.74)
    assert book.locked[0] == 4900

    same_day, fills = trade(book, np.array([0.0]), q, DAY, 100, COSTS)  # sell it all, the same day
    assert fills.sold[0] == 0 and same_day.shares[0] == 4900 and same_day.cash == book.cash

    next_day, fills = trade(start_day(book, np.ones(1)), np.array([0.0]), q, DAY, 100, COSTS)
    assert fills.sold[0] == 4900 and next_day.shares[0] == 0
    # 49,000 - 12.25 commission - 0.49 transfer - 24.50 stamp duty (0.05 % in 2024)
    assert next_day.cash == pytest.approx(100_000 - 49_012.74 + 49_000 - 37.24)


@pytest.mark.parametrize(("cash", "shares"), [(900.0, 0), (1_004.0, 0), (1_005.01, 100), (2_010.0, 200)])
def test_lots_of_100_and_the_commission_minimum_in_sizing(cash: float, shares: int) -> None:
    # one lot at 10 CNY: 1,000 + max(0.25, 5) + 0.01 = 1,005.01; two lots: 2,000 + 5 + 0.02 = 2,005.02
    book, fills = trade(Book.empty(cash, 1), np.array([1e9]), quote([10.0]), DAY, 100, COSTS)
    assert fills.bought[0] == shares
    assert book.cash == pytest.approx(cash - shares * 10 - (5.0 + shares * 10 * 1e-5 if shares else 0.0))
    assert book.cash >= 0


def test_a_small_trade_pays_the_minimum_commission() -> None:
    _, fills = trade(Book.empty(10_000.0, 1), np.array([1_000.0 * 1.01]), quote([10.0]), DAY, 100, COSTS)
    assert fills.bought[0] == 100
    assert fills.buy_costs.commission[0] == pytest.approx(5.0)  # not 1,000 * 2.5 bp = 0.25
    assert fills.cost == pytest.approx(5.01)


def test_blocked_names_do_not_trade_and_nan_leaves_a_name_alone() -> None:
    book = Book(cash=10_000.0, shares=np.array([1_000.0, 1_000.0, 1_000.0]), locked=np.zeros(3))
    # 0: sell blocked (limit-down); 1: buy blocked (limit-up); 2: no target
    q = quote([10.0, 10.0, 10.0], buy=[True, False, True], sell=[False, True, True])
    after, fills = trade(book, np.array([0.0, 50_000.0, NAN]), q, DAY, 100, COSTS)
    np.testing.assert_array_equal(fills.sold, [0, 0, 0])
    np.testing.assert_array_equal(fills.bought, [0, 0, 0])
    np.testing.assert_array_equal(after.shares, book.shares)
    assert after.cash == 10_000.0


def test_partial_sells_are_whole_lots_and_a_sell_out_takes_the_odd_lot() -> None:
    book = Book(cash=0.0, shares=np.array([1_050.0, 1_050.0]), locked=np.zeros(2))
    # name 0 down to 5,000 CNY at 10: 550 shares too many -> 500 sold (whole lots); name 1 sold out
    _, fills = trade(book, np.array([5_000.0, 0.0]), quote([10.0, 10.0]), DAY, 100, COSTS)
    np.testing.assert_array_equal(fills.sold, [500, 1_050])


def test_short_cash_is_shared_in_proportion() -> None:
    # 30,000 CNY for targets of 40,000 and 20,000 -> budgets 20,000 and 10,000 -> 1,900 and 900 shares
    after, fills = trade(
        Book.empty(30_000.0, 2), np.array([40_000.0, 20_000.0]), quote([10.0, 10.0]), DAY, 100, COSTS
    )
    np.testing.assert_array_equal(fills.bought, [1_900, 900])
    assert after.cash == pytest.approx(30_000 - 28_000 - 2 * 5.0 - 28_000 * 1e-5)


def test_affordable_lots_never_overspends() -> None:
    rng = np.random.default_rng(0)
    budget, price = rng.uniform(0, 50_000, 200), rng.uniform(1, 200, 200)
    shares = affordable_lots(budget, price, 100, CostConfig())
    value = shares * price
    spent = value + np.where(shares > 0, np.maximum(value * 2.5e-4, 5.0), 0) + value * (0.1 + 5.0) * 1e-4
    assert (spent <= budget + 1e-9).all()
    assert (shares % 100 == 0).all()
    # and one more lot would not have fit
    more = (shares + 100) * price
    assert (more + np.maximum(more * 2.5e-4, 5.0) + more * 5.1e-4 > budget).all()


def test_start_day_unlocks_and_applies_splits() -> None:
    book = Book(cash=0.0, shares=np.array([1_000.0, 500.0]), locked=np.array([1_000.0, 0.0]))
    after = start_day(book, np.array([1.5, 1.0]))  # a 3-for-2 bonus issue on name 0
    np.testing.assert_array_equal(after.shares, [1_500.0, 500.0])
    np.testing.assert_array_equal(after.locked, [0.0, 0.0])
