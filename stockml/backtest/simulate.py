"""The daily loop: each trading day the book opens (T+1 unlock, splits), trades once on the previous
signal and is valued at the close. The loop runs over days; everything inside it is over symbols."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stockml.backtest import rules
from stockml.backtest.config import BacktestConfig, StrategyConfig
from stockml.backtest.execution import Book, Quote, start_day, trade
from stockml.backtest.market import Market, execution_prices
from stockml.backtest.signals import Forecast, signal_days
from stockml.backtest.strategy import portfolio_var, position_weights, select_names, var_scale


@dataclass(frozen=True, eq=False)
class BookHistory:
    """One book over the backtest days ``days`` (T,) (indices into ``market.dates``).

    ``value``, ``cash``: CNY at each close; ``costs``, ``traded``: CNY paid and traded (both sides) that
    day. (T, N): ``shares`` held at the close, ``bought`` / ``sold`` that day, ``price`` they filled at,
    and ``commission``, ``stamp_duty``, ``transfer_fee``, ``slippage`` paid per name.
    """

    days: np.ndarray
    value: np.ndarray
    cash: np.ndarray
    costs: np.ndarray
    traded: np.ndarray
    shares: np.ndarray
    bought: np.ndarray
    sold: np.ndarray
    price: np.ndarray
    commission: np.ndarray
    stamp_duty: np.ndarray
    transfer_fee: np.ndarray
    slippage: np.ndarray


def target_values(
    book: Book, scores: np.ndarray, forecast: Forecast, t: int, quote: Quote, cfg: StrategyConfig
) -> np.ndarray:
    """(N,) CNY each name should hold after this round (NaN: leave it alone, 0: sell it out).

    Sells are the drop-n rule's names that can be sold out now; buys are the best names not held, as
    many as the book has free slots after those sells (a buy blocked by a limit-up price or a suspension
    leaves its slot in cash until the next day; the next name is not bought instead). Held names keep
    their shares unless ``resize_held``; a name to sell that cannot be sold is left alone.
    """
    held = book.shares > 0
    sell, buy = select_names(held, scores, cfg.top_k, cfg.drop_n)
    sold_out = sell & quote.can_sell & (book.locked <= 0)
    kept = held & ~sold_out
    new = np.zeros_like(held)
    new[buy[: max(cfg.top_k - int(kept.sum()), 0)]] = True
    new &= quote.can_buy

    lower, median, upper = forecast.lower[t], forecast.median[t], forecast.upper[t]
    weights = position_weights(kept | new, upper - lower, cfg.top_k, cfg.weighting)
    if cfg.var_budget is not None:
        weights = weights * var_scale(portfolio_var(weights, lower, median, upper, cfg), cfg.var_budget)
    value = book.value(quote.price)
    target = np.full(len(held), np.nan)
    target[sold_out] = 0.0
    target[new] = weights[new] * value
    if cfg.resize_held:
        resize = kept & ~sell
        target[resize] = weights[resize] * value
    return target


def backtest_days(scores: np.ndarray, trade_at: str) -> np.ndarray:
    """(T,) the days a backtest of ``scores`` (D, N) covers: from the first day that trades on a signal
    to the day after the last one (when the bars have it), so that the last book is held a whole day."""
    n_days = len(scores)
    signal = signal_days(n_days, trade_at)
    has = np.zeros(n_days, dtype=bool)
    ok = signal >= 0
    has[ok] = np.isfinite(scores[signal[ok]]).any(axis=1)
    trading = np.flatnonzero(has)
    if len(trading) == 0:
        raise ValueError("no forecast falls on a trading day of the bars: nothing to backtest")
    return np.arange(trading[0], min(trading[-1] + 1, n_days - 1) + 1)


def simulate(
    market: Market, scores: np.ndarray, forecast: Forecast, days: np.ndarray, cfg: BacktestConfig
) -> BookHistory:
    """Run the strategy of ``cfg`` ranking by ``scores`` (D, N) over ``days`` (increasing indices into
    the market's dates); a day whose signal day has no score trades nothing. Deterministic."""
    n_days, n = scores.shape
    signal = signal_days(n_days, cfg.trade_at)
    fill = execution_prices(market, cfg.trade_at)
    quote_price = np.where(market.tradable, fill, market.last_close)
    buy_ok = rules.can_buy(fill, market.up_limit, market.tradable)
    sell_ok = rules.can_sell(fill, market.down_limit, market.tradable)

    t_len = len(days)
    per_day = {k: np.zeros(t_len) for k in ("value", "cash", "costs", "traded")}
    per_name = {
        k: np.zeros((t_len, n))
        for k in ("shares", "bought", "sold", "price", "commission", "stamp_duty", "transfer_fee", "slippage")
    }
    book = Book.empty(cfg.capital, n)
    for i, d in enumerate(days):
        book = start_day(book, market.split[d])
        t = signal[d]
        if t >= 0 and np.isfinite(scores[t]).any():
            quote = Quote(price=quote_price[d], can_buy=buy_ok[d], can_sell=sell_ok[d])
            target = target_values(book, scores[t], forecast, t, quote, cfg.strategy)
            book, fills = trade(book, target, quote, market.dates[d].date(), cfg.lot, cfg.costs)
            per_day["costs"][i], per_day["traded"][i] = fills.cost, fills.traded_value
            per_name["bought"][i], per_name["sold"][i], per_name["price"][i] = (
                fills.bought,
                fills.sold,
                fills.price,
            )
            for part in ("commission", "stamp_duty", "transfer_fee", "slippage"):
                per_name[part][i] = getattr(fills.buy_costs, part) + getattr(fills.sell_costs, part)
        per_day["value"][i], per_day["cash"][i] = book.value(market.last_close[d]), book.cash
        per_name["shares"][i] = book.shares
    return BookHistory(days=days, **per_day, **per_name)
