"""A-share rules and trading costs against hand-computed values (stockml.backtest.rules, .costs)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from stockml.backtest import rules
from stockml.backtest.config import CostConfig, LimitConfig
from stockml.backtest.costs import stamp_duty_rate, trade_costs


def test_boards_and_limit_fractions() -> None:
    codes = ["600000.SH", "000001.SZ", "300750.SZ", "301001.SZ", "688981.SH", "830799.BJ", "600001.SH"]
    names = ["PF Bank", "PA Bank", "CATL", "X", "SMIC", "Y", "*ST Foo"]
    got = rules.limit_fractions(codes, LimitConfig(), names)
    np.testing.assert_allclose(got, [0.10, 0.10, 0.20, 0.20, 0.20, 0.30, 0.05])
    # an ST name on ChiNext keeps the board's 20 %; the market column wins over the code
    assert rules.limit_fractions(["300001.SZ"], LimitConfig(), ["ST Bar"])[0] == pytest.approx(0.20)
    assert rules.limit_fractions(["600002.SH"], LimitConfig(), None, ["科创板"])[0] == pytest.approx(0.20)
    assert not rules.is_st(None) and rules.is_st("*ST Foo") and not rules.is_st("Stone")


def test_limit_prices_round_half_up_to_the_fen() -> None:
    # 10.15 * 1.1 = 11.165 -> 11.17 and 10.15 * 0.9 = 9.135 -> 9.14 (np.round would give 11.16, 9.13)
    up, down = rules.limit_prices(np.array([10.15, 10.00, 3.33]), np.array([0.10, 0.20, 0.05]))
    # 10 * 1.2 = 12, 10 * 0.8 = 8; ST 3.33 * 1.05 = 3.4965 -> 3.50, 3.33 * 0.95 = 3.1635 -> 3.16
    np.testing.assert_allclose(up, [11.17, 12.00, 3.50])
    np.testing.assert_allclose(down, [9.14, 8.00, 3.16])


def test_limit_and_suspension_block_trades() -> None:
    price = np.array([11.00, 10.99, 9.00, 9.01, 10.0, np.nan])
    up = np.array([11.00, 11.00, 11.00, 11.00, 11.00, 11.00])
    down = np.array([9.00, 9.00, 9.00, 9.00, 9.00, 9.00])
    tradable = ~rules.is_suspended(np.array([5.0, 5.0, 5.0, 5.0, 0.0, np.nan]))
    np.testing.assert_array_equal(tradable, [True, True, True, True, False, False])
    # at limit-up no buy; just below it a buy; at limit-down a buy is fine; suspended: nothing
    np.testing.assert_array_equal(rules.can_buy(price, up, tradable), [False, True, True, True, False, False])
    np.testing.assert_array_equal(
        rules.can_sell(price, down, tradable), [True, True, False, True, False, False]
    )
    # a NaN limit (no pre_close) blocks nothing
    assert rules.can_buy(np.array([11.0]), np.array([np.nan]), np.array([True]))[0]


def test_whole_lots() -> None:
    np.testing.assert_array_equal(
        rules.whole_lots(np.array([250.0, 99.0, 100.0, -30.0, np.nan]), 100), [200, 0, 100, 0, 0]
    )


@pytest.mark.parametrize(
    ("day", "rate"),
    [(dt.date(2023, 8, 25), 0.001), (dt.date(2023, 8, 28), 0.0005), (dt.date(2024, 1, 2), 0.0005)],
)
def test_stamp_duty_by_date(day: dt.date, rate: float) -> None:
    assert stamp_duty_rate(day, CostConfig()) == pytest.approx(rate)
    costs = trade_costs(np.array([100_000.0]), sell=True, day=day, cfg=CostConfig(slippage_bp=0.0))
    assert costs.stamp_duty[0] == pytest.approx(100_000 * rate)  # 100 or 50 CNY


def test_trade_costs_components_and_commission_minimum() -> None:
    cfg = CostConfig(commission_bp=2.5, min_commission=5.0, transfer_fee_bp=0.1, slippage_bp=5.0)
    value = np.array([10_000.0, 100_000.0, 0.0])
    buy = trade_costs(value, sell=False, day=dt.date(2024, 3, 1), cfg=cfg)
    # 10,000 * 2.5 bp = 2.50 < 5 -> 5; 100,000 * 2.5 bp = 25; nothing traded -> no minimum either
    np.testing.assert_allclose(buy.commission, [5.0, 25.0, 0.0])
    np.testing.assert_allclose(buy.stamp_duty, [0.0, 0.0, 0.0])  # buys pay none
    np.testing.assert_allclose(buy.transfer_fee, [0.1, 1.0, 0.0])  # 0.001 %
    np.testing.assert_allclose(buy.slippage, [5.0, 50.0, 0.0])
    np.testing.assert_allclose(buy.total, [10.1, 76.0, 0.0])
    sell = trade_costs(value, sell=True, day=dt.date(2024, 3, 1), cfg=cfg)
    np.testing.assert_allclose(sell.total, [10.1 + 5.0, 76.0 + 50.0, 0.0])  # + 0.05 % stamp duty
