"""What trades cost: commission (with its minimum), stamp duty on sells, transfer fee and slippage.

Every component is a CNY amount on the quoted value ``shares * price`` of one trade (one name, one
side, one day). Slippage is charged as a cost rather than moved into the price, so the fills keep the
quoted prices and every CNY lost to trading is visible in one place.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from stockml.backtest.config import CostConfig

BP = 1e-4


@dataclass(frozen=True)
class TradeCosts:
    """(N,) CNY per component; ``total`` is their sum."""

    commission: np.ndarray
    stamp_duty: np.ndarray
    transfer_fee: np.ndarray
    slippage: np.ndarray

    @property
    def total(self) -> np.ndarray:
        return self.commission + self.stamp_duty + self.transfer_fee + self.slippage


def stamp_duty_rate(day: dt.date, cfg: CostConfig) -> float:
    """Stamp duty on sells as a fraction: 0.1 % before 2023-08-28, 0.05 % from that day (defaults)."""
    return (cfg.stamp_duty_bp if day >= cfg.stamp_duty_cut else cfg.stamp_duty_bp_before) * BP


def proportional_buy_rate(cfg: CostConfig) -> float:
    """Cost of a buy per CNY traded above the commission minimum (commission, transfer fee, slippage)."""
    return (cfg.commission_bp + cfg.transfer_fee_bp + cfg.slippage_bp) * BP


def trade_costs(value: np.ndarray, sell: bool, day: dt.date, cfg: CostConfig) -> TradeCosts:
    """Costs of trades of quoted ``value`` (CNY, 0 where nothing trades) on ``day``."""
    value = np.asarray(value, dtype=np.float64)
    traded = value > 0
    commission = np.where(traded, np.maximum(value * cfg.commission_bp * BP, cfg.min_commission), 0.0)
    stamp = value * stamp_duty_rate(day, cfg) if sell else np.zeros_like(value)
    return TradeCosts(
        commission=commission,
        stamp_duty=stamp,
        transfer_fee=value * cfg.transfer_fee_bp * BP,
        slippage=value * cfg.slippage_bp * BP,
    )
