"""Forecast with a registered model: the one path shared by ``stockml predict`` and the flows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from stockml.registry.bundle import Forecaster
from stockml.serving.drift import drift_table
from stockml.serving.prediction import prediction_frame, with_target_dates
from stockml.sources.base import MarketData

if TYPE_CHECKING:
    from mlflow.pyfunc import PyFuncModel


@dataclass(frozen=True)
class Forecast:
    """One forecast: the table to publish, and what it was computed from (for the drift check)."""

    predictions: pd.DataFrame  # one row per symbol and horizon, with the target trading day
    frame: pd.DataFrame  # the point-in-time feature frame the model read
    forecaster: Forecaster

    def drift(self) -> pd.DataFrame:
        """The frame's recent features against the model's training window (:func:`drift_table`)."""
        window = (self.forecaster.meta.train_start, self.forecaster.meta.train_end)
        return drift_table(self.frame, self.forecaster.feature_columns, window)


def forecast_with(
    model: PyFuncModel, data: MarketData, as_of: dt.date, calendar: Sequence[dt.date]
) -> Forecast:
    """``model`` (from :func:`~stockml.registry.tracking.load_forecaster`) forecasts the next H trading
    days from ``as_of``, reading ``data``; ``calendar`` (open days) dates each horizon."""
    forecaster = model.unwrap_python_model().forecaster
    frame = prediction_frame(data, forecaster.feature_config, forecaster.artifacts.sector_vocab)
    preds = model.predict(frame, params={"as_of": as_of.isoformat()})
    return Forecast(with_target_dates(preds, calendar), frame, forecaster)
