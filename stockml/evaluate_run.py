"""``stockml evaluate``: features -> walk-forward evaluation -> report (and MLflow run)."""

from __future__ import annotations

import argparse
import datetime as dt

from stockml.config import Settings
from stockml.data.base import MarketData
from stockml.features import FeatureConfig, build_feature_frame
from stockml.training.config import EvalConfig, TrainConfig
from stockml.training.evaluate import build_report
from stockml.training.walkforward import run_walk_forward


def run_evaluation(settings: Settings, data: MarketData, args: argparse.Namespace, start: dt.date) -> dict:
    features = build_feature_frame(data, FeatureConfig(horizon=args.horizon))
    frame = features.frame
    eval_cfg = EvalConfig(models=args.models, horizon=args.horizon, folds=args.folds, test_days=args.test_days)
    train_cfg = TrainConfig(max_epochs=args.max_epochs, seed=args.seed)
    outputs = run_walk_forward(frame, features.feature_columns, features.label_columns, eval_cfg, train_cfg,
                               features.sector_vocab.size)
    data_info = {
        "source": settings.source,
        "symbols": sorted(frame["ts_code"].unique().tolist()),
        "start": str(start),
        "end": str(args.end),
        "rows": len(frame),
    }
    evaluation = build_report(outputs, frame, features.label_columns, data.bars[["ts_code", "trade_date", "close"]],
                              data_info=data_info, horizon=args.horizon, quantiles=eval_cfg.quantiles)
    return evaluation.report
