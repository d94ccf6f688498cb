"""Data quality and drift of the latest features against a model's training window (pure)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from stockml.columns import TRADE_DATE, TS_CODE

SHIFT_ALERT = 1.0  # |mean shift| in training standard deviations that flags a feature


def drift_table(
    frame: pd.DataFrame,
    features: list[str],
    train_window: tuple[dt.date, dt.date],
    recent_days: int = 20,
) -> pd.DataFrame:
    """Per feature: mean and sd over the training window, mean over the last ``recent_days`` trading
    days, the shift in training sds, the sd ratio, and the missing share in the recent window.
    Sorted by the absolute shift, largest first."""
    dates = pd.to_datetime(frame[TRADE_DATE])
    lo, hi = pd.Timestamp(train_window[0]), pd.Timestamp(train_window[1])
    reference = frame.loc[(dates >= lo) & (dates <= hi), features]
    days = np.sort(dates.unique())[-recent_days:]
    recent = frame.loc[dates.isin(days), features]
    ref_mean, ref_sd = reference.mean(), reference.std()
    table = pd.DataFrame(
        {
            "train_mean": ref_mean,
            "train_sd": ref_sd,
            "recent_mean": recent.mean(),
            "shift_sd": (recent.mean() - ref_mean) / ref_sd.replace(0.0, np.nan),
            "sd_ratio": recent.std() / ref_sd.replace(0.0, np.nan),
            "recent_missing": recent.isna().mean(),
        }
    )
    table["alert"] = table["shift_sd"].abs() > SHIFT_ALERT
    table.index.name = "feature"
    order = table["shift_sd"].abs().fillna(-1.0).sort_values(ascending=False).index
    return table.loc[order].reset_index()


def quality_summary(
    frame: pd.DataFrame, features: list[str], as_of: dt.date, universe: list[str] | None
) -> dict:
    """What the as-of day's cross-section looks like: symbols present and missing (against ``universe``,
    or every symbol of the frame when None), missing values."""
    universe = universe if universe is not None else sorted(frame[TS_CODE].unique())
    day = frame[pd.to_datetime(frame[TRADE_DATE]) == pd.Timestamp(as_of)]
    present = set(day[TS_CODE])
    return {
        "as_of": str(as_of),
        "symbols_expected": len(universe),
        "symbols_present": len(present),
        "symbols_missing": sorted(set(universe) - present),
        "missing_values": int(day[features].isna().sum().sum()),
    }
