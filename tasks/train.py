"""Prefect tasks around the training library: features, per-model evaluation, tracking, registry, forecast.

Tasks take and return plain library objects; no caching here (their inputs are frames, and the daily flow
runs once a day): the replay backfill adds its own cache keys. Only the registry's reads retry: a retried
write could register or log twice.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from prefect import task

from stockml.evaluation.calibration import AciState
from stockml.evaluation.run import EvalRun, feature_config_for, log_evaluation, walk_forward
from stockml.features import FeatureResult, build_feature_frame
from stockml.registry.lifecycle import (
    Champion,
    Promoted,
    Registered,
    current_champion,
    gate_challenger,
    refit_and_register,
    register_baseline,
    register_challenger,
    score_parts,
)
from stockml.registry.promotion import Decision, GateConfig
from stockml.registry.tracking import (
    TrackingConfig,
    calibration_state,
    load_forecaster,
    set_calibration_state,
)
from stockml.serving.drift import quality_summary
from stockml.serving.forecast import forecast_with, learned_calibration
from stockml.sources.base import MarketData
from stockml.store.lake import Lake, read_market
from stockml.training.config import EvalConfig, TrainConfig
from stockml.training.walkforward import FoldOutput
from tasks import PLAIN

REGISTRY_READ_RETRIES = {"retries": 2, "retry_delay_seconds": 2}


@task(name="features", **PLAIN)
def build_features(
    lake: Lake, start: dt.date, end: dt.date, universe: list[str] | None, eval_cfg: EvalConfig
) -> tuple[MarketData, FeatureResult]:
    data = read_market(lake, start, end, universe)
    return data, build_feature_frame(data, feature_config_for(eval_cfg))


def evaluate_run_name(parameters: dict[str, Any]) -> str:
    """``evaluate-lstm`` for one model's part, ``evaluate-baselines`` for the baselines' (no models), so
    the flow graph names each walk-forward by what it evaluates."""
    models = parameters["eval_cfg"].models
    return f"evaluate-{'+'.join(models) or 'baselines'}"


@task(name="evaluate-model", task_run_name=evaluate_run_name, **PLAIN)
def evaluate_model(features: FeatureResult, eval_cfg: EvalConfig, train_cfg: TrainConfig) -> list[FoldOutput]:
    """Walk-forward of the models (or baselines) in ``eval_cfg``; one task per model in the daily flow."""
    return walk_forward(features, eval_cfg, train_cfg)


@task(name="score", **PLAIN)
def score(
    parts: list[list[FoldOutput]],
    data: MarketData,
    features: FeatureResult,
    eval_cfg: EvalConfig,
    train_cfg: TrainConfig,
    info: dict,
) -> EvalRun:
    """Join the per-model walk-forwards (same folds) and score everyone against ``random_walk``."""
    return score_parts(parts, data, features, eval_cfg, train_cfg, info)


@task(name="log-evaluation", **PLAIN)
def log_to_mlflow(
    tracking: TrackingConfig,
    run: EvalRun,
    lineage: dict,
    name: str,
    tags: dict,
    started_at: float | None = None,
) -> str:
    return log_evaluation(tracking, run, lineage, name, tags, started_at)


@task(name="champion", **REGISTRY_READ_RETRIES, **PLAIN)
def champion(tracking: TrackingConfig, registered_name: str) -> Champion | None:
    return current_champion(tracking, registered_name)


@task(name="register-challenger", **PLAIN)
def register(
    tracking: TrackingConfig, registered_name: str, run: EvalRun, requested: tuple[str, ...], run_id: str
) -> Registered | None:
    """The best requested model that was scored, as ``@challenger``; None when every one failed."""
    return register_challenger(tracking, registered_name, run, requested, run_id)


@task(name="promotion-gate", **PLAIN)
def gate(
    tracking: TrackingConfig,
    registered_name: str,
    challenger: Registered,
    champion: Champion | None,
    run: EvalRun,
    cfg: GateConfig,
) -> Decision:
    return gate_challenger(tracking, registered_name, challenger, champion, run.evaluation.report, cfg)


@task(name="baseline-champion", **PLAIN)
def baseline(
    tracking: TrackingConfig,
    registered_name: str,
    run: EvalRun,
    challenger: Registered,
    champion: Champion | None,
    decision: Decision,
    run_id: str,
) -> Promoted | None:
    """With no champion yet and the challenger rejected, the volatility baseline becomes ``@champion``."""
    return register_baseline(tracking, registered_name, run, challenger, champion, decision, run_id)


@task(name="refit", **PLAIN)
def refit(
    tracking: TrackingConfig,
    registered_name: str,
    run: EvalRun,
    promoted: Registered,
    decision: Decision,
    run_id: str,
) -> Registered:
    return refit_and_register(tracking, registered_name, run, promoted, decision, run_id)[0]


@task(name="learn-calibration", **PLAIN)
def learn_calibration(
    tracking: TrackingConfig,
    registered_name: str,
    version: int,
    published: pd.DataFrame,
    features: FeatureResult,
    as_of: dt.date,
) -> AciState | None:
    """Version ``version``'s online calibration (as learned so far, else as bundled) after the outcomes of
    its ``published`` forecasts known at ``as_of``, stored back on the version; None when it has none."""
    start = calibration_state(tracking, registered_name, version)
    if start is None:
        model = load_forecaster(tracking, f"models:/{registered_name}/{version}")
        start = model.unwrap_python_model().forecaster.calibration
    if start is None:
        return None
    state = learned_calibration(start, published, features.frame, features.label_columns, as_of)
    if state != start:
        set_calibration_state(tracking, registered_name, version, state)
    return state


@task(name="forecast", **PLAIN)
def forecast(
    tracking: TrackingConfig,
    model_uri: str,
    data: MarketData,
    as_of: dt.date,
    calendar: list[dt.date],
    calibration: AciState | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The model at ``model_uri`` forecasts from ``as_of`` wearing ``calibration`` (else its bundle's):
    (forecast table, drift table)."""
    result = forecast_with(load_forecaster(tracking, model_uri), data, as_of, calendar, calibration)
    return result.predictions.assign(model_uri=model_uri), result.drift()


@task(name="data-quality", **PLAIN)
def quality(features: FeatureResult, as_of: dt.date, universe: list[str] | None) -> dict:
    return quality_summary(features.frame, features.feature_columns, as_of, universe)
