"""Tomorrow's target book from one day's forecast (stockml.backtest.target)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from stockml.backtest.config import StrategyConfig
from stockml.backtest.target import COLUMNS, target_portfolio

DAY = dt.date(2024, 3, 8)


def forecast(medians: dict[str, float], width: float = 0.04) -> pd.DataFrame:
    rows = []
    for code, median in medians.items():
        for horizon, sign in ((1, 1.0), (2, -1.0)):  # horizon 2 must be ignored
            rows.append(
                {
                    "ts_code": code,
                    "as_of": DAY,
                    "horizon": horizon,
                    "q0.05": sign * median - width / 2,
                    "q0.5": sign * median,
                    "q0.95": sign * median + width / 2,
                }
            )
    return pd.DataFrame(rows)


MEDIANS = {"A.SH": 0.010, "B.SH": 0.030, "C.SZ": -0.010, "D.SZ": 0.020, "E.SZ": 0.000}


def test_from_cash_the_book_buys_the_top_k_equally() -> None:
    book = target_portfolio(forecast(MEDIANS), None, StrategyConfig(top_k=2, drop_n=1), DAY)
    assert list(book.columns) == list(COLUMNS)
    assert book["ts_code"].tolist() == ["B.SH", "D.SZ"]
    assert book["weight"].tolist() == [0.5, 0.5]
    assert book["rank"].tolist() == [1, 2]
    assert book["score"].tolist() == pytest.approx([0.03, 0.02])
    assert book["reason"].tolist() == ["buy: rank 1 of 5", "buy: rank 2 of 5"]


def test_drop_n_limits_what_leaves_the_previous_book() -> None:
    """Held A, C, E (top 3); today's top 3 is B, D, A: drop 1 sells the worst leaver (C) and buys the
    best newcomer (B); E stays, outside the top 3, by the drop limit."""
    previous = pd.DataFrame({"ts_code": ["A.SH", "C.SZ", "E.SZ"], "weight": [1 / 3] * 3})
    book = target_portfolio(forecast(MEDIANS), previous, StrategyConfig(top_k=3, drop_n=1), DAY)
    by_code = book.set_index("ts_code")
    assert by_code["weight"].to_dict() == pytest.approx(
        {"B.SH": 1 / 3, "A.SH": 1 / 3, "E.SZ": 1 / 3, "C.SZ": 0.0}
    )
    assert by_code.loc["C.SZ", "reason"] == "sell: rank 5 of 5, outside the top 3"
    assert by_code.loc["E.SZ", "reason"] == "hold: rank 4 of 5, outside the top 3 (drop limit)"
    assert by_code.loc["A.SH", "reason"] == "hold: rank 3 of 5"
    assert by_code.loc["B.SH", "reason"] == "buy: rank 1 of 5"


def test_a_held_name_without_a_forecast_is_sold() -> None:
    previous = pd.DataFrame({"ts_code": ["Z.SZ"], "weight": [1.0]})
    book = target_portfolio(forecast(MEDIANS), previous, StrategyConfig(top_k=1, drop_n=1), DAY)
    by_code = book.set_index("ts_code")
    assert by_code.loc["Z.SZ", "weight"] == 0.0
    assert by_code.loc["Z.SZ", "reason"] == "sell: no forecast today, outside the top 1"
    assert by_code.loc["B.SH", "weight"] == 1.0


def test_inverse_vol_weights_and_a_var_budget_shrink_the_book() -> None:
    fc = forecast({"A.SH": 0.02, "B.SH": 0.01})
    wide = fc["ts_code"] == "B.SH"
    fc.loc[wide, "q0.05"] -= 0.04  # B: width 0.12, A: 0.04 -> weights 3/4 and 1/4
    fc.loc[wide, "q0.95"] += 0.04
    inverse = target_portfolio(fc, None, StrategyConfig(top_k=2, weighting="inverse_vol"), DAY)
    assert inverse.set_index("ts_code")["weight"].to_dict() == pytest.approx({"A.SH": 0.75, "B.SH": 0.25})
    budget = StrategyConfig(top_k=2, weighting="inverse_vol", var_budget=0.001, resize_held=True)
    small = target_portfolio(fc, None, budget, DAY)
    assert small["weight"].sum() < 0.1  # a 0.1 % VaR budget leaves most of the book in cash


def test_equal_scores_are_a_seeded_random_pick_and_say_so() -> None:
    flat = forecast(dict.fromkeys(MEDIANS, 0.0))
    first = target_portfolio(flat, None, StrategyConfig(top_k=2), DAY)
    again = target_portfolio(flat, None, StrategyConfig(top_k=2), DAY)
    pd.testing.assert_frame_equal(first, again)
    assert all(
        r.endswith("the forecast ranks nothing (equal scores): a random pick") for r in first["reason"]
    )
    picks = {
        tuple(target_portfolio(flat, None, StrategyConfig(top_k=2), DAY + dt.timedelta(d))["ts_code"])
        for d in range(6)
    }
    assert len(picks) > 1  # another day, another pick
