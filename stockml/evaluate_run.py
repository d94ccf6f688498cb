"""``stockml evaluate``: features -> walk-forward evaluation -> report, logged as one MLflow run
(local SQLite store under ``mlruns/``, or the server given by ``--tracking-uri``)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
from pathlib import Path

from stockml.config import Settings
from stockml.data.base import MarketData
from stockml.features import FeatureConfig, build_feature_frame
from stockml.lake import Lake
from stockml.tracking import TrackingConfig, log_run
from stockml.training.config import EvalConfig, TrainConfig
from stockml.training.evaluate import Evaluation, build_report
from stockml.training.walkforward import run_walk_forward


def run_evaluation(settings: Settings, data: MarketData, args: argparse.Namespace, start: dt.date) -> dict:
    features = build_feature_frame(data, FeatureConfig(horizon=args.horizon))
    frame = features.frame
    eval_cfg = EvalConfig(
        models=args.models, horizon=args.horizon, folds=args.folds, test_days=args.test_days
    )
    train_cfg = TrainConfig(max_epochs=args.max_epochs, seed=args.seed)
    outputs = run_walk_forward(
        frame,
        features.feature_columns,
        features.label_columns,
        eval_cfg,
        train_cfg,
        features.sector_vocab.size,
    )
    data_info = {
        "source": settings.source,
        "symbols": sorted(frame["ts_code"].unique().tolist()),
        "start": str(start),
        "end": str(args.end),
        "rows": len(frame),
    }
    evaluation = build_report(
        outputs,
        frame,
        features.label_columns,
        data.bars[["ts_code", "trade_date", "close"]],
        data_info=data_info,
        horizon=args.horizon,
        quantiles=eval_cfg.quantiles,
    )
    if not args.no_mlflow:
        lineage = {
            "lake_hashes": {
                t: Lake(settings.data_dir).table_hash(t) for t in Lake(settings.data_dir).tables()
            }
        }
        tracking = TrackingConfig(tracking_uri=args.tracking_uri)
        evaluation.report["mlflow_run_id"] = log_evaluation(
            tracking, evaluation, eval_cfg, train_cfg, features.summary, lineage
        )
    return evaluation.report


def log_evaluation(
    tracking: TrackingConfig,
    evaluation: Evaluation,
    eval_cfg: EvalConfig,
    train_cfg: TrainConfig,
    feature_summary: dict,
    lineage: dict,
) -> str:
    """One MLflow run per evaluation: config, lineage, every model's metrics (per horizon as steps),
    the report, the feature summary and the out-of-sample predictions (parquet)."""
    report = evaluation.report
    metrics = {
        f"{name}.{key}": value
        for name, result in report["results"].items()
        for key, value in result["metrics"].items()
        if isinstance(value, int | float)
    }
    steps = [
        (f"{name}.{key}_by_horizon", value, int(h))  # step = horizon
        for name, result in report["results"].items()
        for h, row in result["per_horizon"].items()
        for key, value in row.items()
        if key in ("crps", "rmse", "rank_ic", "coverage_90", "skill_crps") and isinstance(value, int | float)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "report.json").write_text(json.dumps(report, indent=2, default=str))
        (folder / "feature_summary.json").write_text(json.dumps(feature_summary, indent=2, default=str))
        for name, preds in evaluation.predictions.items():
            preds.to_parquet(folder / f"predictions_{name}.parquet", index=False)
        return log_run(
            tracking,
            run_name=f"evaluate-{'-'.join(eval_cfg.models)}",
            params={
                "eval": eval_cfg.model_dump(mode="json"),
                "train": train_cfg.model_dump(mode="json"),
                "data": report["data"] | {"symbols": len(report["data"]["symbols"])},
                "lineage": lineage,
                "folds": report["folds"],
            },
            metrics=metrics,
            step_metrics=steps,
            tags={"kind": "evaluation"},
            artifacts={"evaluation": folder},
        )
