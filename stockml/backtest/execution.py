"""The book and one round of trading: sells first, then buys with the cash there is, in board lots.

T+1: shares bought on a day are ``locked`` until :func:`start_day` opens the next one, so a second round
on the same day cannot sell them. A sell leaves no odd lot behind unless the book already had one (after
a split); a buy is whole lots whose price and costs fit in its budget.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from stockml.backtest import rules
from stockml.backtest.config import CostConfig
from stockml.backtest.costs import TradeCosts, proportional_buy_rate, trade_costs


@dataclass(frozen=True, eq=False)
class Book:
    """Cash (CNY) and (N,) shares; ``locked``: shares bought today, sellable from the next trading day."""

    cash: float
    shares: np.ndarray
    locked: np.ndarray

    @classmethod
    def empty(cls, cash: float, n: int) -> Book:
        return cls(cash=cash, shares=np.zeros(n), locked=np.zeros(n))

    def value(self, price: np.ndarray) -> float:
        """Cash plus holdings at ``price`` (names not held count 0 whatever their price)."""
        return self.cash + float(np.where(self.shares > 0, self.shares * price, 0.0).sum())


@dataclass(frozen=True, eq=False)
class Quote:
    """(N,) of one trading round: the fill price (the last close where the name cannot trade, for the
    book's value) and whether a buy or a sell may fill."""

    price: np.ndarray
    can_buy: np.ndarray
    can_sell: np.ndarray


@dataclass(frozen=True, eq=False)
class Fills:
    """(N,) shares bought and sold, at the quote's prices, and what each side cost."""

    bought: np.ndarray
    sold: np.ndarray
    price: np.ndarray
    buy_costs: TradeCosts
    sell_costs: TradeCosts

    @property
    def traded_value(self) -> float:
        return float(np.nansum((self.bought + self.sold) * self.price))

    @property
    def cost(self) -> float:
        return float(self.buy_costs.total.sum() + self.sell_costs.total.sum())


def start_day(book: Book, split: np.ndarray) -> Book:
    """A new trading day: yesterday's buys become sellable, held shares grow by the day's split ratio."""
    return Book(cash=book.cash, shares=book.shares * split, locked=np.zeros_like(book.locked))


def affordable_lots(budget: np.ndarray, price: np.ndarray, lot: int, cfg: CostConfig) -> np.ndarray:
    """(N,) the most shares, in whole lots, whose value and buy costs (commission minimum included) fit
    in ``budget``; 0 where not even one lot fits."""
    ok = np.isfinite(price) & (price > 0) & (budget > 0)
    price = np.where(ok, price, 1.0)
    rate = proportional_buy_rate(cfg)
    shares = np.where(ok, rules.whole_lots(budget / (price * (1.0 + rate)), lot), 0.0)
    while True:  # the commission minimum can push a small order over: take lots off until it fits
        value = shares * price
        spent = value + trade_costs(value, sell=False, day=dt.date.min, cfg=cfg).total
        over = (shares > 0) & (spent > budget)
        if not over.any():
            return shares
        shares = np.where(over, shares - lot, shares)


def trade(
    book: Book,
    target_value: np.ndarray,
    quote: Quote,
    day: dt.date,
    lot: int,
    cfg: CostConfig,
) -> tuple[Book, Fills]:
    """Trade each name towards ``target_value`` (CNY at the quote; NaN: leave it alone, 0: sell it all).

    Sells fill first, within the unlocked shares and the limit-down rule, in whole lots unless the name
    is sold out. Buys then share the cash in proportion to what each lacks (scaled down together when
    the cash is short), each in whole lots that fit with their costs.
    """
    price = np.where(np.isfinite(quote.price), quote.price, 0.0)
    active = np.isfinite(target_value)
    target = np.where(active, target_value, 0.0)
    held_value = book.shares * price
    sellable = np.maximum(book.shares - book.locked, 0.0)

    with np.errstate(divide="ignore", invalid="ignore"):
        excess = np.where(price > 0, (held_value - target) / price, 0.0)
    partial = np.minimum(rules.whole_lots(excess, lot), sellable)
    sold = np.where(target <= 0, sellable, partial)
    sold = np.where(active & (held_value > target) & quote.can_sell, sold, 0.0)
    sell_costs = trade_costs(sold * price, sell=True, day=day, cfg=cfg)
    cash = book.cash + float((sold * price).sum() - sell_costs.total.sum())

    lacking = np.where(active & quote.can_buy, np.maximum(target - held_value, 0.0), 0.0)
    need = float(lacking.sum())
    budget = lacking * min(1.0, cash / need) if need > 0 else lacking
    bought = affordable_lots(budget, price, lot, cfg)
    buy_costs = trade_costs(bought * price, sell=False, day=day, cfg=cfg)
    cash -= float((bought * price).sum() + buy_costs.total.sum())

    after = Book(cash=cash, shares=book.shares - sold + bought, locked=book.locked + bought)
    return after, Fills(bought=bought, sold=sold, price=price, buy_costs=buy_costs, sell_costs=sell_costs)
