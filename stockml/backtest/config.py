"""Settings of the portfolio backtest (frozen; defaults: a 1,000,000 CNY top-30 book, drop 5 a day)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class CostConfig(BaseModel):
    """What a trade costs in A-shares, every rate in basis points of the traded value (1 bp = 0.01 %)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    commission_bp: float = Field(default=2.5, ge=0)  # broker, both sides
    min_commission: float = Field(default=5.0, ge=0)  # CNY per trade (one name, one side, one day)
    stamp_duty_bp_before: float = Field(default=10.0, ge=0)  # sells before ``stamp_duty_cut``: 0.1 %
    stamp_duty_bp: float = Field(default=5.0, ge=0)  # sells from ``stamp_duty_cut`` on: 0.05 %
    stamp_duty_cut: dt.date = dt.date(2023, 8, 28)
    transfer_fee_bp: float = Field(default=0.1, ge=0)  # 0.001 %, both sides
    slippage_bp: float = Field(default=5.0, ge=0)  # charged as a cost on the quoted value, both sides


class LimitConfig(BaseModel):
    """Daily price limits as fractions of ``pre_close``, by board."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    main: float = Field(default=0.10, gt=0)  # Shanghai and Shenzhen main boards
    growth: float = Field(default=0.20, gt=0)  # ChiNext (300/301.SZ) and STAR (688/689.SH)
    bse: float = Field(default=0.30, gt=0)  # Beijing (.BJ)
    st: float = Field(default=0.05, gt=0)  # ST names on the main boards


class StrategyConfig(BaseModel):
    """Which names the book holds and how much of each.

    ``drop_n``: each day sell at most this many held names that left the top ``top_k`` (None: all of
    them). ``resize_held``: also trade continuing names back to their target weight every day (False:
    only dropped names are sold and only new names bought, Qlib's TopkDropout). ``var_budget``: the
    largest predicted one-day VaR at level ``1 - lower`` of the book, as a fraction of its value; it
    scales every target weight, so it needs ``resize_held``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    top_k: int = Field(default=30, ge=1)
    drop_n: int | None = Field(default=5, ge=1)
    score: Literal["median", "risk_adjusted"] = "median"  # q0.5, or q0.5 / (q_upper - q_lower)
    weighting: Literal["equal", "inverse_vol"] = "equal"
    resize_held: bool = False
    var_budget: float | None = Field(default=None, gt=0)
    var_method: Literal["sum", "independent"] = "sum"
    lower: float = Field(default=0.05, gt=0, lt=0.5)  # interval of the width (volatility) and of the VaR
    upper: float = Field(default=0.95, gt=0.5, lt=1)

    @model_validator(mode="after")
    def _var_needs_resizing(self) -> StrategyConfig:
        if self.var_budget is not None and not self.resize_held:
            raise ValueError("var_budget scales held names too: set resize_held=True")
        return self


class BacktestConfig(BaseModel):
    """One backtest: the book, when it trades, what trading costs and the bounds' seed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    capital: float = Field(default=1_000_000.0, gt=0)  # CNY
    trade_at: Literal["open", "close"] = "open"  # signal of day t trades at t+1's open or at t's close
    lot: int = Field(default=100, ge=1)  # shares per board lot
    risk_free: float = 0.0  # annual rate for the Sharpe ratio
    periods_per_year: int = Field(default=252, ge=1)
    seed: int = 0  # of the random portfolio
    strategy: StrategyConfig = StrategyConfig()
    costs: CostConfig = CostConfig()
    limits: LimitConfig = LimitConfig()
