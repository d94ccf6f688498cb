"""Pure helpers of the daily flow: target trading days, drift and data quality, the markdown summary."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from stockml.serving.daily_report import daily_markdown
from stockml.serving.drift import drift_table, quality_summary
from stockml.serving.prediction import next_trading_days, with_target_dates

D = dt.date


def test_next_trading_days_use_the_calendar_then_weekdays() -> None:
    calendar = [D(2024, 9, 27), D(2024, 9, 30), D(2024, 10, 8), D(2024, 10, 9)]  # golden week closed
    assert next_trading_days(D(2024, 9, 27), 3, calendar) == (
        [D(2024, 9, 30), D(2024, 10, 8), D(2024, 10, 9)],
        False,
    )
    days, estimated = next_trading_days(D(2024, 10, 8), 3, calendar)
    assert estimated and days == [D(2024, 10, 9), D(2024, 10, 10), D(2024, 10, 11)]
    assert next_trading_days(D(2024, 10, 11), 2, []) == ([D(2024, 10, 14), D(2024, 10, 15)], True)


def test_with_target_dates_maps_each_horizon() -> None:
    preds = pd.DataFrame({"ts_code": "A", "as_of": D(2024, 9, 27), "horizon": [1, 2]})
    out = with_target_dates(preds, [D(2024, 9, 30), D(2024, 10, 8)])
    assert out["target_date"].tolist() == [D(2024, 9, 30), D(2024, 10, 8)]
    assert not out["target_date_estimated"].any()


def test_drift_flags_a_shifted_feature_and_quality_counts_symbols() -> None:
    dates = pd.bdate_range("2024-01-01", periods=60)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"ts_code": "A", "trade_date": dates, "f": rng.standard_normal(60)})
    frame["g"] = frame["f"]
    frame.loc[40:, "g"] += 5.0  # the last 20 days move by 5 training sds
    table = drift_table(frame, ["f", "g"], (dates[0].date(), dates[39].date()), recent_days=20)
    assert table["feature"].tolist() == ["g", "f"]
    g = table.iloc[0]
    assert g["alert"] and g["shift_sd"] > 4 and not table.iloc[1]["alert"]
    q = quality_summary(frame, ["f"], dates[-1].date(), ["A", "B"])
    assert q["symbols_present"] == 1 and q["symbols_missing"] == ["B"] and q["missing_values"] == 0
    text = daily_markdown({"as_of": "2024-03-22", "status": "completed", "decision": "promoted"}, None, table)
    assert "**Promotion:** promoted" in text and "| g |" in text
