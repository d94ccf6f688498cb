"""Prefect tasks around the training library: features, per-model evaluation, tracking, registry, forecast.

Tasks take and return plain library objects; no caching here (their inputs are frames, and the daily flow
runs once a day): the replay backfill adds its own cache keys.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from stockml.evaluation.run import EvalRun, assemble, feature_config_for, log_evaluation, walk_forward
from stockml.features import FeatureResult, build_feature_frame
from stockml.registry.lifecycle import (
    Champion,
    Registered,
    gate_challenger,
    refit_and_register,
    register_version,
)
from stockml.registry.promotion import Decision, GateConfig
from stockml.registry.tracking import TrackingConfig, load_forecaster
from stockml.serving.drift import drift_table, quality_summary
from stockml.serving.prediction import prediction_frame, with_target_dates
from stockml.sources.base import MarketData
from stockml.store.lake import Lake, read_market
from stockml.training.config import EvalConfig, TrainConfig
from stockml.training.walkforward import FoldOutput, merge_fold_outputs

PLAIN = {"cache_policy": NO_CACHE, "persist_result": False}


@task(name="features", **PLAIN)
def build_features(
    lake: Lake, start: dt.date, end: dt.date, universe: list[str] | None, eval_cfg: EvalConfig
) -> tuple[MarketData, FeatureResult]:
    data = read_market(lake, start, end, universe)
    return data, build_feature_frame(data, feature_config_for(eval_cfg))


@task(name="evaluate-model", **PLAIN)
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
    outputs = merge_fold_outputs(parts)
    done = tuple(m for m in eval_cfg.models if outputs and m in outputs[0].predictions)
    return assemble(outputs, data, features, eval_cfg.model_copy(update={"models": done}), train_cfg, info)


@task(name="log-evaluation", **PLAIN)
def log_to_mlflow(tracking: TrackingConfig, run: EvalRun, lineage: dict, name: str, tags: dict) -> str:
    return log_evaluation(tracking, run, lineage, name, tags)


@task(name="register-challenger", **PLAIN)
def register(
    tracking: TrackingConfig, registered_name: str, run: EvalRun, name: str, run_id: str
) -> Registered:
    return register_version(tracking, registered_name, run, name, run.outputs[-1], run_id)


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


@task(name="forecast", **PLAIN)
def forecast(
    tracking: TrackingConfig, model_uri: str, data: MarketData, as_of: dt.date, calendar: list[dt.date]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The model at ``model_uri`` forecasts from ``as_of``: (forecast table, drift table)."""
    model = load_forecaster(tracking, model_uri)
    forecaster = model.unwrap_python_model().forecaster
    frame = prediction_frame(data, forecaster.feature_config, forecaster.artifacts.sector_vocab)
    preds = model.predict(frame, params={"as_of": as_of.isoformat()})
    preds = with_target_dates(preds, calendar).assign(model_uri=model_uri)
    window = (forecaster.meta.train_start, forecaster.meta.train_end)
    return preds, drift_table(frame, forecaster.feature_columns, window)


@task(name="data-quality", **PLAIN)
def quality(features: FeatureResult, as_of: dt.date, universe: list[str] | None) -> dict:
    return quality_summary(features.frame, features.feature_columns, as_of, universe)
