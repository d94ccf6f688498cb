"""The whole backtest on hand-built price paths (stockml.backtest.run): every number is worked out.

Paths are (open, close) per day; ``pre_close`` is the previous bar's close. Forecasts put the quantiles
at fixed offsets around the median; the helper also writes horizon-2 rows with the opposite medians,
which the backtest must ignore (it trades horizon 1 only).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stockml.backtest.config import BacktestConfig, CostConfig, StrategyConfig
from stockml.backtest.run import BacktestResult, run_backtest

Bar = tuple[float, float] | None  # (open, close); None: no bar that day
NO_COSTS = CostConfig(
    commission_bp=0,
    min_commission=0,
    transfer_fee_bp=0,
    slippage_bp=0,
    stamp_duty_bp=0,
    stamp_duty_bp_before=0,
)
OFFSETS = {0.05: -0.03, 0.1: -0.02, 0.25: -0.01, 0.5: 0.0, 0.75: 0.01, 0.9: 0.02, 0.95: 0.03}


def make_bars(
    dates: list[str], paths: dict[str, list[Bar]], vol: dict[str, list[float]] | None = None
) -> pd.DataFrame:
    rows = []
    for code, path in paths.items():
        previous = None
        for i, (day, bar) in enumerate(zip(dates, path, strict=True)):
            if bar is None:
                continue
            volume = vol[code][i] if vol and code in vol else 1e5
            pre = previous if previous is not None else bar[0]
            rows.append((code, pd.Timestamp(day), bar[0], bar[1], pre, volume))
            previous = bar[1]
    return pd.DataFrame(rows, columns=["ts_code", "trade_date", "open", "close", "pre_close", "vol"])


def make_predictions(dates: list[str], medians: dict[str, list[float | None]]) -> pd.DataFrame:
    rows = []
    for code, values in medians.items():
        for day, median in zip(dates, values, strict=False):
            if median is None:
                continue
            for horizon, sign in ((1, 1.0), (2, -1.0)):
                qs = {f"q{q:g}": sign * median + off for q, off in OFFSETS.items()}
                rows.append({"ts_code": code, "date": pd.Timestamp(day), "horizon": horizon, **qs})
    return pd.DataFrame(rows)


def config(
    top_k: int = 1, drop_n: int | None = None, costs: CostConfig = NO_COSTS, **kw: object
) -> BacktestConfig:
    strategy = StrategyConfig(top_k=top_k, drop_n=drop_n, **kw.pop("strategy", {}))  # type: ignore[arg-type]
    return BacktestConfig(capital=100_000.0, strategy=strategy, costs=costs, **kw)  # type: ignore[arg-type]


def holdings_on(result: BacktestResult, day: str) -> dict[str, float]:
    at = result.holdings[result.holdings["trade_date"] == pd.Timestamp(day)]
    return dict(zip(at["ts_code"], at["shares"], strict=True))


# --- costs --------------------------------------------------------------------------------------------

AFTER_CUT = ["2023-08-23", "2023-08-24", "2023-08-25", "2023-08-28"]
BEFORE_CUT = ["2023-08-16", "2023-08-17", "2023-08-18", "2023-08-21"]


@pytest.mark.parametrize(("dates", "stamp"), [(AFTER_CUT, 54.45), (BEFORE_CUT, 108.90)])
def test_costs_add_up_on_a_three_day_path(dates: list[str], stamp: float) -> None:
    """Buy A at d1's open, hold, switch to B at d3's open; commission 2.5 bp (min 5), transfer 0.1 bp,
    slippage 10 bp, stamp duty 0.05 % from 2023-08-28 and 0.1 % before.

    d1: 100,000 / (10 * 1.00126) = 9,987.4 -> 9,900 A = 99,000; costs 24.75 + 0.99 + 99 = 124.74;
        cash 875.26; close 10.5 -> 875.26 + 103,950 = 104,825.26.
    d2: no trade; close 11 -> 875.26 + 108,900 = 109,775.26.
    d3: sell 9,900 A at 11 = 108,900; costs 27.225 + 1.089 + 108.9 + stamp (54.45 or 108.90);
        cash 875.26 + 108,900 - 137.214 - stamp; buy B at 20: 5,400 (54 lots) = 108,000, costs 27 + 1.08
        + 108 = 136.08; close 20.4 -> cash + 110,160.
    """
    bars = make_bars(
        dates,
        {
            "A.SH": [(10, 10), (10, 10.5), (10.5, 11), (11, 11)],
            "B.SH": [(20, 20), (20, 20), (20, 20), (20, 20.4)],
        },
    )
    preds = make_predictions(dates, {"A.SH": [0.02, 0.02, 0.00], "B.SH": [0.01, 0.01, 0.02]})
    costs = CostConfig(commission_bp=2.5, min_commission=5.0, transfer_fee_bp=0.1, slippage_bp=10.0)
    result = run_backtest(preds, bars, config(costs=costs))

    cash_d3 = 875.26 + 108_900 - 137.214 - stamp - 108_000 - 136.08
    np.testing.assert_allclose(result.daily["value"], [104_825.26, 109_775.26, cash_d3 + 110_160])
    np.testing.assert_allclose(result.daily["costs"], [124.74, 0.0, 137.214 + stamp + 136.08])
    assert result.metrics["total_costs"] == pytest.approx(124.74 + 137.214 + stamp + 136.08)
    trades = result.trades.set_index(["trade_date", "ts_code"])
    sell = trades.loc[(pd.Timestamp(dates[3]), "A.SH")]
    assert (sell["side"], sell["shares"], sell["price"]) == ("sell", 9_900, 11.0)
    assert sell["stamp_duty"] == pytest.approx(stamp)
    assert sell["commission"] == pytest.approx(27.225)
    assert trades.loc[(pd.Timestamp(dates[3]), "B.SH"), "shares"] == 5_400
    # the equal-weight benchmark: mean of close / pre_close - 1 of A and B
    np.testing.assert_allclose(result.daily["benchmark_return"], [0.025, (11 / 10.5 - 1) / 2, 0.01])


# --- A-share rules ------------------------------------------------------------------------------------

DAYS = ["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07"]


@pytest.mark.parametrize(
    ("code", "open_d1", "bought_d1"),
    [("600000.SH", 11.00, False), ("600000.SH", 10.99, True), ("300001.SZ", 11.00, True)],
)
def test_a_limit_up_open_blocks_the_buy(code: str, open_d1: float, bought_d1: bool) -> None:
    """pre_close 10: a main-board name opening at 11.00 (+10 %) cannot be bought; ChiNext's limit is 12."""
    bars = make_bars(DAYS[:3], {code: [(10, 10), (open_d1, 11.0), (11.5, 11.5)]})
    result = run_backtest(make_predictions(DAYS, {code: [0.01, 0.01]}), bars, config())
    first = result.trades.iloc[0]
    if bought_d1:  # 100,000 / 11.00 = 9,090.9 -> 9,000; / 10.99 = 9,099.2 -> 9,000
        assert (first["trade_date"], first["shares"]) == (pd.Timestamp(DAYS[1]), 9_000)
    else:  # nothing on d1; the next open (11.5, limit 12.10) fills: 100,000 / 11.5 = 8,695.7 -> 8,600
        assert result.daily["cash"].iloc[0] == 100_000
        assert (first["trade_date"], first["shares"], first["price"]) == (pd.Timestamp(DAYS[2]), 8_600, 11.5)


def test_a_limit_down_open_blocks_the_sell() -> None:
    """Hold A; on d2 the model prefers B but A opens at its limit-down 9.00: A stays, B waits for a slot."""
    bars = make_bars(DAYS, {"A.SH": [(10, 10), (10, 10), (9.0, 9.0), (9.0, 9.0)], "B.SH": [(10, 10)] * 4})
    preds = make_predictions(DAYS, {"A.SH": [0.02, 0.00, 0.00], "B.SH": [0.01, 0.02, 0.02]})
    result = run_backtest(preds, bars, config())
    assert holdings_on(result, DAYS[2]) == {"A.SH": 10_000}  # limit-down 9.00 = round(10 * 0.9, 2)
    assert holdings_on(result, DAYS[3]) == {"B.SH": 9_000}  # sold at 9.00 (pre_close 9, limit 8.10)


def suspended(path: list[Bar], day: int, how: str) -> tuple[list[Bar], list[float]]:
    """``path`` with no bar on ``day`` ("no bar") or a bar without volume ("zero volume"); volumes."""
    vol = [0.0 if i == day else 1e5 for i in range(len(path))]
    return ([None if i == day else bar for i, bar in enumerate(path)] if how == "no bar" else path), vol


@pytest.mark.parametrize("how", ["no bar", "zero volume"])
def test_a_suspended_day_blocks_the_buy(how: str) -> None:
    """A (preferred to B) does not trade on d1: the slot stays in cash (B is not bought instead)."""
    a_path, a_vol = suspended([(10, 10), (10, 10), (10, 10.5), (10.5, 11)], 1, how)
    bars = make_bars(DAYS, {"A.SH": a_path, "B.SH": [(10, 10)] * 4}, vol={"A.SH": a_vol})
    preds = make_predictions(DAYS, {"A.SH": [0.01, 0.01, 0.01], "B.SH": [0.0, 0.0, 0.0]})
    result = run_backtest(preds, bars, config())
    np.testing.assert_array_equal(result.daily["cash"], [100_000, 0, 0])
    np.testing.assert_allclose(result.daily["value"], [100_000, 105_000, 110_000])  # 10,000 A from d2


@pytest.mark.parametrize("how", ["no bar", "zero volume"])
def test_a_suspended_day_blocks_the_sell_and_keeps_the_last_close(how: str) -> None:
    """10,000 A bought on d1 (close 10.5); on d2 the model prefers B but A is suspended: A stays, valued
    at 10.5; on d3 A sells at 10.5 and 10,500 B are bought at 10."""
    a_path, a_vol = suspended([(10, 10), (10, 10.5), (10.5, 10.5), (10.5, 11)], 2, how)
    bars = make_bars(DAYS, {"A.SH": a_path, "B.SH": [(10, 10)] * 4}, vol={"A.SH": a_vol})
    preds = make_predictions(DAYS, {"A.SH": [0.01, 0.0, 0.0], "B.SH": [0.0, 0.01, 0.01]})
    result = run_backtest(preds, bars, config())
    assert holdings_on(result, DAYS[2]) == {"A.SH": 10_000}
    assert holdings_on(result, DAYS[3]) == {"B.SH": 10_500}
    np.testing.assert_allclose(result.daily["value"], [105_000, 105_000, 105_000])


def test_a_split_keeps_the_book_whole() -> None:
    """A 2-for-1 split on d2 (adj_factor 1 -> 2, price 10 -> 5): 10,000 shares become 20,000."""
    bars = make_bars(DAYS[:3], {"A.SH": [(10, 10), (10, 10), (5, 5.5)]})
    bars = bars.assign(adj_factor=[1.0, 1.0, 2.0], pre_close=[10.0, 10.0, 5.0])  # ex-rights pre_close
    result = run_backtest(make_predictions(DAYS, {"A.SH": [0.01, 0.01]}), bars, config())
    assert holdings_on(result, DAYS[2]) == {"A.SH": 20_000}
    np.testing.assert_allclose(result.daily["value"], [100_000, 110_000])


# --- timing and bounds --------------------------------------------------------------------------------

FIVE = ["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07", "2024-03-08"]
# open(d + 1) == close(d); open-to-open returns d1 -> d2: A +10 %, B 0; d2 -> d3: A 0, B +10 %;
# d3 -> d4: A +10 %, B 0
PATHS: dict[str, list[Bar]] = {
    "A.SH": [(10, 10), (10, 11), (11, 11), (11, 12.1), (12.1, 12.1)],
    "B.SH": [(20, 20), (20, 20), (20, 22), (22, 22), (22, 22)],
}


def test_perfect_foresight_earns_the_best_path() -> None:
    """Perfect foresight: A at 10 (10,000), B at 20 (5,500), A at 11 (11,000): 100,000 * 1.1 ** 3.
    A model with the opposite ranking ends flat: B 5,000 -> A 9,000 + 1,000 cash -> B 4,500 + 1,000."""
    bars = make_bars(FIVE, PATHS)
    right = make_predictions(FIVE, {"A.SH": [0.1, 0.0, 0.1], "B.SH": [0.0, 0.1, 0.0]})
    wrong = make_predictions(FIVE, {"A.SH": [0.0, 0.1, 0.0], "B.SH": [0.1, 0.0, 0.1]})
    good, bad = run_backtest(right, bars, config()), run_backtest(wrong, bars, config())
    # the last book is held one more day (d4: flat)
    np.testing.assert_allclose(good.daily["value"], [110_000, 121_000, 133_100, 133_100])
    assert good.metrics["total_return"] == pytest.approx(0.331)
    np.testing.assert_allclose(bad.daily["value"], [100_000] * 4)
    for result in (good, bad):  # the bound does not depend on the model's ranking
        assert result.metrics["perfect_total_return"] == pytest.approx(0.331)
        np.testing.assert_allclose(result.daily["perfect_return"], [0.1, 0.1, 0.1, 0.0])
        assert 0.0 <= result.metrics["random_total_return"] <= 0.331


def test_a_signal_trades_at_the_next_open_or_at_its_own_close() -> None:
    bars = make_bars(FIVE, PATHS)
    preds = make_predictions(FIVE, {"A.SH": [0.1], "B.SH": [0.0]})  # one forecast, made at d0's close
    at_open = run_backtest(preds, bars, config(trade_at="open")).trades
    at_close = run_backtest(preds, bars, config(trade_at="close")).trades
    assert (at_open["trade_date"].iloc[0], at_open["price"].iloc[0]) == (pd.Timestamp(FIVE[1]), 10.0)
    assert (at_close["trade_date"].iloc[0], at_close["price"].iloc[0]) == (pd.Timestamp(FIVE[0]), 10.0)
    assert len(at_open) == len(at_close) == 1


def test_a_forecast_changes_nothing_before_it_can_trade() -> None:
    """Changing d2's forecast (it trades at d3's open) leaves d1 and d2 as they were; d3 changes."""
    bars = make_bars(FIVE, PATHS)
    base = run_backtest(
        make_predictions(FIVE, {"A.SH": [0.1, 0.0, 0.1], "B.SH": [0.0, 0.1, 0.0]}), bars, config()
    )
    moved = run_backtest(
        make_predictions(FIVE, {"A.SH": [0.1, 0.0, 0.0], "B.SH": [0.0, 0.1, 0.1]}), bars, config()
    )
    np.testing.assert_array_equal(base.daily["value"][:2], moved.daily["value"][:2])
    assert moved.daily["value"].iloc[2] == 121_000  # d3: B (5,500 at 22) instead of A (11,000 at 12.1)
    assert base.daily["value"].iloc[2] == 133_100


def test_perfect_foresight_at_the_close_ranks_close_to_close() -> None:
    """Close to close: d0 -> d1 A +10 %; d1 -> d2 B +10 %; d2 -> d3 A +10 %: again 1.1 ** 3 (the book
    bought at d2's close is held through d3, the day after the last signal)."""
    bars = make_bars(FIVE, PATHS)
    preds = make_predictions(FIVE, {"A.SH": [0.0, 0.0, 0.0], "B.SH": [0.0, 0.0, 0.0]})
    result = run_backtest(preds, bars, config(trade_at="close"))
    assert result.metrics["perfect_total_return"] == pytest.approx(0.331)


# --- strategy ------------------------------------------------------------------------------------------


def test_drop_n_limits_turnover() -> None:
    """Flat prices, no costs, top 2. The forecasts flip every day between (A, B) and (C, D) on top.
    Without a drop limit the book is swapped whole every day; with drop_n=1 one name a day."""
    days = [str(d.date()) for d in pd.bdate_range("2024-03-04", periods=7)]
    bars = make_bars(days, {code: [(10, 10)] * 7 for code in "ABCD"})
    even, odd = [0.04, 0.03, 0.02, 0.01], [0.02, 0.01, 0.04, 0.03]
    medians = {code: [(even if i % 2 == 0 else odd)[j] for i in range(6)] for j, code in enumerate("ABCD")}
    preds = make_predictions(days, medians)  # type: ignore[arg-type]
    swap = run_backtest(preds, bars, config(top_k=2, drop_n=None))
    drop = run_backtest(preds, bars, config(top_k=2, drop_n=1))
    np.testing.assert_allclose(swap.daily["traded"], [100_000] + [200_000] * 5)
    np.testing.assert_allclose(drop.daily["traded"], [100_000] * 6)
    assert holdings_on(drop, days[2]) == {"A": 5_000, "C": 5_000}  # B (worst outside the top) went
    assert holdings_on(drop, days[3]) == {"A": 5_000, "B": 5_000}  # then C, the only one outside
    # annualised one-way turnover: mean(traded / 200,000) * 252 = (0.5 + 5 * 1.0) / 6 * 252 and 0.5 * 252
    assert swap.metrics["turnover"] == pytest.approx(5.5 / 6 * 252)
    assert drop.metrics["turnover"] == pytest.approx(0.5 * 252)


def test_inverse_vol_weights_and_the_var_budget() -> None:
    """Two names at 10 CNY, top 2. Widths 0.06 (A) and 0.12 (B) -> inverse-vol weights 2/3 and 1/3:
    66,666.7 -> 6,600 A and 33,333.3 -> 3,300 B. With a 1 % VaR budget (sum method): r_0.05 of both is
    exp(m - 0.03) - 1 or exp(m - 0.06) - 1 at m = 0: -2.9554 % and -5.8235 %; VaR = 2/3 * 2.9554 % +
    1/3 * 5.8235 % = 3.9114 %; scale 1 / 3.9114 = 0.25566: 17,044 -> 1,700 A, 8,522 -> 800 B."""
    bars = make_bars(DAYS[:2], {"A.SH": [(10, 10)] * 2, "B.SH": [(10, 10)] * 2})
    preds = make_predictions(DAYS, {"A.SH": [0.0], "B.SH": [0.0]})
    wide = preds["ts_code"] == "B.SH"
    preds.loc[wide, "q0.05"] -= 0.03  # B: -0.06 .. +0.06
    preds.loc[wide, "q0.95"] += 0.03
    inv = run_backtest(preds, bars, config(top_k=2, strategy={"weighting": "inverse_vol"}))
    assert holdings_on(inv, DAYS[1]) == {"A.SH": 6_600, "B.SH": 3_300}
    budget = {"weighting": "inverse_vol", "var_budget": 0.01, "resize_held": True}
    var = run_backtest(preds, bars, config(top_k=2, strategy=budget))
    assert holdings_on(var, DAYS[1]) == {"A.SH": 1_700, "B.SH": 800}


def test_an_index_benchmark_and_determinism() -> None:
    bars = make_bars(FIVE, PATHS)
    preds = make_predictions(FIVE, {"A.SH": [0.1, 0.0, 0.1], "B.SH": [0.0, 0.1, 0.0]})
    index = pd.Series([100.0, 101.0, 99.99, 99.99], index=pd.to_datetime(FIVE[:4]))
    first = run_backtest(preds, bars, config(), benchmark=index)
    # d4 is missing from the index: its close is carried over, a 0 return
    np.testing.assert_allclose(first.daily["benchmark_return"], [0.01, -0.01, 0.0, 0.0])
    np.testing.assert_allclose(first.daily["excess_return"], [0.09, 0.11, 0.1, 0.0])
    assert first.metrics["hit_rate"] == 0.75  # d4: 0 does not beat 0
    again = run_backtest(preds, bars, config(), benchmark=index)
    pd.testing.assert_frame_equal(first.daily, again.daily)
    np.testing.assert_equal(first.metrics, again.metrics)  # NaN == NaN here (sd 0: no Sharpe)


def test_a_forecast_that_ranks_nothing_holds_the_random_book() -> None:
    """Equal medians for every name (a zero-median baseline) rank nothing: ties are broken by the random
    book's numbers, so the book is the random one day for day, not the first name in code order (which
    here always rises 2 % a day and would look like skill)."""
    days = [str(d.date()) for d in pd.bdate_range("2024-03-04", periods=9)]
    rising = [(10 * 1.02**i, 10 * 1.02**i) for i in range(9)]
    falling = [(10 * 0.99**i, 10 * 0.99**i) for i in range(9)]
    bars = make_bars(days, {"A.SH": rising, "B.SH": falling, "C.SH": falling, "D.SH": falling})
    flat = make_predictions(days, {code: [0.0] * 8 for code in ("A.SH", "B.SH", "C.SH", "D.SH")})
    result = run_backtest(flat, bars, config(top_k=1, drop_n=1))
    np.testing.assert_allclose(result.daily["return"], result.daily["random_return"])
    assert result.metrics["total_return"] == pytest.approx(result.metrics["random_total_return"])
    held = {code for code in result.holdings["ts_code"]}
    assert len(held) > 1  # a different random name on some day, not A.SH throughout
