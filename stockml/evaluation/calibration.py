"""Calibrated rows of the walk-forward report: each model's out-of-sample forecasts run through the online
calibration of :mod:`stockml.serving.calibration` (adaptive conformal on each quantile's spread), causally,
from no adjustment at the first as-of date. The state it ends in is what a registered version starts from."""

from __future__ import annotations

import pandas as pd

from stockml.serving.calibration import AciState, calibrate_history

SUFFIX = ".aci"  # the report name of a model's calibrated forecasts: "lstm.aci"


def aci_spread(preds: pd.DataFrame, quantiles: tuple[float, ...], gamma: float) -> pd.DataFrame:
    """``preds`` (one row per ts_code, as-of ``date`` and ``horizon``, quantile columns and ``y_true``)
    with online-calibrated quantile columns; rows and other columns unchanged."""
    return aci_history(preds, quantiles, gamma)[0]


def aci_history(
    preds: pd.DataFrame, quantiles: tuple[float, ...], gamma: float
) -> tuple[pd.DataFrame, AciState]:
    """:func:`aci_spread` and the calibration state after learning every as-of date's outcomes."""
    horizon = int(preds["horizon"].max()) if len(preds) else 1
    return calibrate_history(preds, AciState.start(tuple(quantiles), horizon, gamma))
