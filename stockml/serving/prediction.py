"""Forecast tables: a forecaster's output with the trading day each horizon lands on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd

from stockml.columns import TRADE_DATE, TS_CODE
from stockml.features import FeatureConfig, build_feature_frame
from stockml.features.vocab import Vocab
from stockml.sources.base import MarketData

TARGET_DATE = "target_date"


def next_trading_days(as_of: dt.date, n: int, calendar: Sequence[dt.date]) -> tuple[list[dt.date], bool]:
    """The ``n`` trading days after ``as_of``: from ``calendar`` (open days), topped up with weekdays
    where the calendar ends too early. The flag says whether any day had to be estimated that way."""
    days = sorted(d for d in set(calendar) if d > as_of)[:n]
    estimated = len(days) < n
    cursor = days[-1] if days else as_of
    while len(days) < n:
        cursor += dt.timedelta(days=1)
        if cursor.weekday() < 5:
            days.append(cursor)
    return days, estimated


def with_target_dates(preds: pd.DataFrame, calendar: Sequence[dt.date]) -> pd.DataFrame:
    """Add ``target_date`` (the trading day ``horizon`` days after ``as_of``) and whether it is estimated."""
    out = preds.copy()
    targets: dict[dt.date, tuple[list[dt.date], bool]] = {}
    horizon = int(out["horizon"].max()) if len(out) else 0
    for day in pd.unique(out["as_of"]):
        targets[day] = next_trading_days(day, horizon, calendar)
    out[TARGET_DATE] = [targets[a][0][h - 1] for a, h in zip(out["as_of"], out["horizon"], strict=True)]
    out[f"{TARGET_DATE}_estimated"] = [targets[a][1] for a in out["as_of"]]
    return out


def prediction_frame(data: MarketData, feature_cfg: FeatureConfig, sector_vocab: Vocab) -> pd.DataFrame:
    """The feature frame a bundle predicts from, with each bar's raw ``close`` (the base of the price
    quantiles). Labels are dropped: at the forecast date they are unknown."""
    result = build_feature_frame(data, feature_cfg, sector_vocab=sector_vocab)
    frame = result.frame.drop(columns=result.label_columns)
    closes = data.bars[[TS_CODE, TRADE_DATE, "close"]]
    return frame.merge(closes, on=[TS_CODE, TRADE_DATE], how="left", validate="one_to_one")
