"""A-share trading rules as array functions: price limits by board, who may trade today, board lots.

Limits follow the exchanges: ``round(pre_close * (1 +/- limit), 2)``, rounded half up to the fen.
A buy is refused at (or above) the limit-up price, a sell at (or below) the limit-down price, and a
suspended name (no bar, or ``vol == 0``) cannot trade at all. Not modelled: the unlimited first days of a
new listing, and ST status changing over time (``stock_basic``'s current name is used for every day).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stockml.backtest.config import LimitConfig

_EPS = 1e-9  # prices are in fen; this only absorbs float noise
GROWTH_PREFIXES = {"SZ": ("300", "301"), "SH": ("688", "689")}
# tushare ``stock_basic.market`` values that are not a main board
_MARKET_BOARD = {"创业板": "growth", "科创板": "growth", "北交所": "bse"}


def board_of(ts_code: str, market: str | None = None) -> str:
    """``"main"``, ``"growth"`` (ChiNext, STAR) or ``"bse"`` (Beijing); ``market`` wins when known."""
    if market is not None and market in _MARKET_BOARD:
        return _MARKET_BOARD[market]
    number, _, exchange = ts_code.partition(".")
    if exchange == "BJ":
        return "bse"
    return "growth" if number.startswith(GROWTH_PREFIXES.get(exchange, ())) else "main"


def is_st(name: str | None) -> bool:
    """Special treatment (``ST``, ``*ST``, ``S*ST`` ...) from the security's name (e.g. ``*ST康美``)."""
    return isinstance(name, str) and "ST" in name  # case-sensitive: "Stone" is not ST


def limit_fractions(
    codes: Sequence[str],
    cfg: LimitConfig,
    names: Sequence[str | None] | None = None,
    markets: Sequence[str | None] | None = None,
) -> np.ndarray:
    """(N,) daily limit of each code: 10 % main boards, 20 % ChiNext/STAR, 30 % Beijing, 5 % ST on a
    main board (ST names on ChiNext/STAR keep 20 %)."""
    names = names if names is not None else [None] * len(codes)
    markets = markets if markets is not None else [None] * len(codes)
    by_board = {"main": cfg.main, "growth": cfg.growth, "bse": cfg.bse}
    out = np.empty(len(codes))
    for i, (code, name, market) in enumerate(zip(codes, names, markets, strict=True)):
        board = board_of(code, market)
        out[i] = cfg.st if board == "main" and is_st(name) else by_board[board]
    return out


def round_fen(price: np.ndarray) -> np.ndarray:
    """Round half up to 0.01 CNY, as the exchanges do (``np.round`` would round halves to even)."""
    return np.floor(np.asarray(price, dtype=np.float64) * 100.0 + 0.5 + _EPS) / 100.0


def limit_prices(pre_close: np.ndarray, fraction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(limit-up, limit-down) prices; ``fraction`` broadcasts against ``pre_close`` (NaN stays NaN)."""
    return round_fen(pre_close * (1.0 + fraction)), round_fen(pre_close * (1.0 - fraction))


def is_suspended(vol: np.ndarray) -> np.ndarray:
    """No bar (NaN volume) or no volume: the name cannot trade that day."""
    vol = np.asarray(vol, dtype=np.float64)
    return ~(vol > 0)


def can_buy(price: np.ndarray, up_limit: np.ndarray, tradable: np.ndarray) -> np.ndarray:
    """Tradable, has a price and is below the limit-up price (a NaN limit does not block)."""
    at_limit = price >= up_limit - _EPS  # False where the limit is NaN
    return tradable & np.isfinite(price) & ~at_limit


def can_sell(price: np.ndarray, down_limit: np.ndarray, tradable: np.ndarray) -> np.ndarray:
    """Tradable, has a price and is above the limit-down price (a NaN limit does not block)."""
    at_limit = price <= down_limit + _EPS
    return tradable & np.isfinite(price) & ~at_limit


def whole_lots(shares: np.ndarray, lot: int) -> np.ndarray:
    """Shares rounded down to whole board lots (never negative)."""
    shares = np.nan_to_num(np.asarray(shares, dtype=np.float64), nan=0.0)
    return np.floor(np.maximum(shares, 0.0) / lot + _EPS) * lot
