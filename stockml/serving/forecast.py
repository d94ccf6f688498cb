"""Forecast with a registered model: the one path shared by ``stockml predict`` and the flows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from stockml.evaluation.calibration import AciState, learn
from stockml.registry.bundle import Forecaster
from stockml.serving.drift import drift_table
from stockml.serving.prediction import TARGET_DATE, prediction_frame, with_target_dates
from stockml.sources.base import MarketData
from stockml.training.walkforward import with_labels

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
    model: PyFuncModel,
    data: MarketData,
    as_of: dt.date,
    calendar: Sequence[dt.date],
    calibration: AciState | None = None,
    raw: bool = False,
) -> Forecast:
    """``model`` (from :func:`~stockml.registry.tracking.load_forecaster`) forecasts the next H trading
    days from ``as_of``, reading ``data``; ``calendar`` (open days) dates each horizon. The quantiles wear
    ``calibration`` (what the version learned since registration), else the bundle's own; ``raw``: none."""
    forecaster = model.unwrap_python_model().forecaster
    frame = prediction_frame(data, forecaster.feature_config, forecaster.artifacts.sector_vocab)
    params = {"as_of": as_of.isoformat(), "calibration": calibration_param(calibration, raw)}
    preds = model.predict(frame, params=params)
    return Forecast(with_target_dates(preds, calendar), frame, forecaster)


def calibration_param(calibration: AciState | None, raw: bool = False) -> str:
    """The pyfunc's ``calibration`` param: ``"raw"``, a learned state's JSON, or empty (the bundle's own)."""
    return "raw" if raw else (calibration.to_json() if calibration is not None else "")


def learned_calibration(
    start: AciState, published: pd.DataFrame, frame: pd.DataFrame, labels: list[str], as_of: dt.date
) -> AciState:
    """``start`` after learning from the outcomes known at ``as_of`` of the forecasts ``published`` with it
    (the lake's daily predictions of one version: ``ts_code``, ``as_of``, ``horizon``, ``target_date`` and
    the published quantiles); ``frame``'s ``labels`` (built up to ``as_of``) are the outcomes."""
    if published.empty:
        return start
    known = published[pd.to_datetime(published[TARGET_DATE]) <= pd.Timestamp(as_of)]
    rows = known.assign(date=pd.to_datetime(known["as_of"]))
    return learn(start, with_labels(rows, frame, labels))
