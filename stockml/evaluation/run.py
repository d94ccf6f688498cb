"""``stockml evaluate`` and ``stockml train``: features -> walk-forward evaluation -> report, logged as one
MLflow run (local SQLite store under ``mlruns/``, or the server given by ``--tracking-uri``).

The run's artifacts: ``evaluation/`` (report.json, predictions_<name>.parquet with a ``fold`` column,
feature_summary.json, backtest_daily.parquet: each backtested book's daily rows with a ``name`` column),
``plots/`` (for every model and baseline calibration_<name>.png, pit_<name>.png and
coverage_by_fold_<name>.png with the rolling 90% coverage over ROLLING_DATES as-of dates; fan charts of a
few symbols for every model; backtest.png: every book's equity curve and drawdown), ``features/``
(feature_list.json, and the last fold's norm_params.json, symbol_vocab.json, sector_vocab.json) and
``importances/<model>.json`` where a model has them (PTFT).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from stockml.evaluation.aggregate import rolling_coverage
from stockml.evaluation.backtest import with_backtest
from stockml.evaluation.plots import calibration_plot, coverage_plot, equity_plot, fan_chart, pit_plot
from stockml.evaluation.report import FOLD_CALIBRATION_KEYS, PER_FOLD_KEYS, Evaluation, build_report
from stockml.evaluation.report_types import EvaluationReport
from stockml.features import FeatureArtifacts, FeatureConfig, FeatureResult, build_feature_frame
from stockml.registry.tracking import DatasetRef, TrackingConfig, log_run
from stockml.sources.base import MarketData
from stockml.training.config import EvalConfig, TrainConfig
from stockml.training.walkforward import FoldOutput, run_walk_forward

FAN_SYMBOLS = 3
ROLLING_DATES = 20  # as-of dates in the rolling coverage window of coverage_by_fold_<name>.png
FOLD_STEP_KEYS = ("crps", "rmse", "rank_ic", *FOLD_CALIBRATION_KEYS, "skill_crps")
HORIZON_STEP_KEYS = ("crps", "rmse", "rank_ic", "coverage_90", "skill_crps")


@dataclass(frozen=True)
class EvalRun:
    """Everything one evaluation produced (the fitted models of every fold included)."""

    features: FeatureResult
    feature_config: FeatureConfig
    eval_cfg: EvalConfig
    train_cfg: TrainConfig
    outputs: list[FoldOutput]
    evaluation: Evaluation


def feature_config_for(eval_cfg: EvalConfig) -> FeatureConfig:
    """The feature config a model evaluated under ``eval_cfg`` is bundled with (same horizon, lookback)."""
    return FeatureConfig(horizon=eval_cfg.horizon, lookback=eval_cfg.lookback, macro_mode=eval_cfg.macro_mode)


def pin_macro_series(cfg: FeatureConfig, features: FeatureResult) -> FeatureConfig:
    """``cfg`` naming the macro series this frame selected, so a bundle rebuilds the same columns later."""
    chosen = cast(list[dict[str, object]], features.summary.get("macro_series") or [])
    names = tuple(f"{m['table']}/{m['series']}" for m in chosen)
    return cfg.model_copy(update={"macro_series": names})


def data_info(source: str, frame: pd.DataFrame, start: object, end: object) -> dict:
    return {
        "source": source,
        "symbols": sorted(frame["ts_code"].unique().tolist()),
        "start": str(start),
        "end": str(end),
        "rows": len(frame),
    }


def evaluate(
    data: MarketData, eval_cfg: EvalConfig, train_cfg: TrainConfig, info: dict, features: FeatureResult | None
) -> EvalRun:
    """Walk-forward evaluation of ``eval_cfg.models`` and the baselines; ``features``: reuse a frame."""
    features = features or build_feature_frame(data, feature_config_for(eval_cfg))
    outputs = walk_forward(features, eval_cfg, train_cfg)
    return assemble(outputs, data, features, eval_cfg, train_cfg, info)


def walk_forward(features: FeatureResult, eval_cfg: EvalConfig, train_cfg: TrainConfig) -> list[FoldOutput]:
    """:func:`run_walk_forward` over a feature frame (all of ``eval_cfg``'s models and baselines)."""
    return run_walk_forward(
        features.frame,
        features.feature_columns,
        features.label_columns,
        eval_cfg,
        train_cfg,
        features.sector_vocab.size,
    )


def assemble(
    outputs: list[FoldOutput],
    data: MarketData,
    features: FeatureResult,
    eval_cfg: EvalConfig,
    train_cfg: TrainConfig,
    info: dict,
) -> EvalRun:
    """Score ``outputs`` into the report and bundle everything with the pinned feature config."""
    feature_cfg = pin_macro_series(feature_config_for(eval_cfg), features)
    evaluation = report_for(outputs, features, data, info, eval_cfg)
    return EvalRun(features, feature_cfg, eval_cfg, train_cfg, outputs, evaluation)


def report_for(
    outputs: list[FoldOutput], features: FeatureResult, data: MarketData, info: dict, eval_cfg: EvalConfig
) -> Evaluation:
    evaluation = build_report(
        outputs,
        features.frame,
        features.label_columns,
        data.bars[["ts_code", "trade_date", "close"]],
        data_info=info | {"rows": len(features.frame)},
        horizon=eval_cfg.horizon,
        quantiles=eval_cfg.quantiles,
        aci_gamma=eval_cfg.aci_gamma,
    )
    return with_backtest(evaluation, data, eval_cfg)


def write_artifacts(folder: Path, run: EvalRun) -> dict[str, Path]:
    """Every artifact of the run under ``folder``; ``{artifact_path: local folder}``."""
    report, quantiles = run.evaluation.report, run.eval_cfg.quantiles
    parts = {name: folder / name for name in ("evaluation", "plots", "features", "importances")}
    for path in parts.values():
        path.mkdir(parents=True, exist_ok=True)
    (parts["evaluation"] / "report.json").write_text(json.dumps(report.to_dict(), indent=2, default=str))
    (parts["evaluation"] / "feature_summary.json").write_text(
        json.dumps(run.features.summary, indent=2, default=str)
    )
    columns = run.features.feature_columns
    (parts["features"] / "feature_list.json").write_text(json.dumps(columns, indent=1))
    last = run.outputs[-1] if run.outputs else None
    if last is not None and last.norm is not None and last.symbol_vocab is not None:
        FeatureArtifacts(last.norm, last.symbol_vocab, run.features.sector_vocab).save(parts["features"])
    for name, preds in run.evaluation.predictions.items():
        preds.to_parquet(parts["evaluation"] / f"predictions_{name}.parquet", index=False)
        calibration_plot(preds, quantiles, parts["plots"] / f"calibration_{name}.png", f"{name}: calibration")
        pit_plot(preds, quantiles, parts["plots"] / f"pit_{name}.png", f"{name}: PIT")
        per_fold = [{"fold": row.fold, **row.metrics} for row in report.results[name].per_fold]
        folds = pd.DataFrame(per_fold, columns=["fold", *PER_FOLD_KEYS])
        rolling = rolling_coverage(preds, quantiles, window=ROLLING_DATES)
        coverage_path = parts["plots"] / f"coverage_by_fold_{name}.png"
        coverage_plot(folds, rolling, ROLLING_DATES, coverage_path, f"{name}: coverage by fold")
        if report.results[name].kind != "model":
            continue
        for symbol in sorted(preds["ts_code"].unique())[:FAN_SYMBOLS]:
            fan_chart(
                preds, quantiles, symbol, parts["plots"] / f"fan_{name}_{symbol}.png", f"{name}: {symbol}"
            )
    if run.evaluation.backtests:
        daily = pd.concat([d.assign(name=n) for n, d in run.evaluation.backtests.items()], ignore_index=True)
        daily.to_parquet(parts["evaluation"] / "backtest_daily.parquet", index=False)
        equity_plot(run.evaluation.backtests, parts["plots"] / "backtest.png", _backtest_title(report))
    for name in run.eval_cfg.models:
        found = [o.importances[name] for o in run.outputs if name in o.importances]
        if found:
            mean = np.mean(np.asarray(found), axis=0)
            ranked = sorted(zip(columns, mean.tolist(), strict=True), key=lambda kv: -kv[1])
            (parts["importances"] / f"{name}.json").write_text(json.dumps(dict(ranked), indent=1))
    return {name: path for name, path in parts.items() if any(path.iterdir())}


def fitted_configs(run: EvalRun) -> dict[str, dict]:
    """Per model, the config fields its last fold was built with that differ from the requested config
    (a size the model resolved from the number of training samples, e.g. ``hybrid21``'s)."""
    last = run.outputs[-1] if run.outputs else None
    out: dict[str, dict] = {}
    for name, model in (last.fitted if last is not None else {}).items():
        built = model.config.model_dump(mode="json")
        asked = type(model).config_class.model_validate(run.eval_cfg.model_configs.get(name, {}))
        requested = asked.model_dump(mode="json")
        changed = {k: v for k, v in built.items() if requested.get(k) != v}
        if changed:
            out[name] = changed
    return out


def _backtest_title(report: EvaluationReport) -> str:
    settings = report.backtest.settings if report.backtest is not None else {}
    book = f"top {settings.get('top_k')}, drop {settings.get('drop_n')}, at the {settings.get('trade_at')}"
    return f"Backtest after costs ({book}) against the {settings.get('benchmark')}"


def lake_datasets(lineage: dict) -> list[DatasetRef]:
    """The lake tables a run read, from its lineage (:func:`~stockml.store.lake.lake_lineage`'s
    ``lake_hashes``, or the replay's ``bars_hash`` of its window's bars), as datasets known by their hash.
    Their source is ``<lake_root>/<table>`` (``lake/<table>`` when the lineage does not name the root)."""
    hashes = dict(lineage.get("lake_hashes") or {})
    if "bars_hash" in lineage:
        hashes.setdefault("bars", lineage["bars_hash"])
    root = str(lineage.get("lake_root") or "lake").rstrip("/")
    return [DatasetRef(table, str(digest), f"{root}/{table}") for table, digest in sorted(hashes.items())]


def log_evaluation(
    tracking: TrackingConfig,
    run: EvalRun,
    lineage: dict,
    run_name: str,
    tags: dict | None = None,
    started_at: float | None = None,
) -> str:
    """One MLflow run per evaluation: config, lineage (params, and the lake tables as dataset inputs), every
    model's metrics (aggregated at horizon 1, per horizon and per fold as steps), and the artifacts above.
    ``started_at`` (epoch seconds, e.g. before the features were built): the run's start, so its duration
    in the UI covers the training. Returns the run id."""
    report = run.evaluation.report
    metrics = {
        f"{name}.{key}": value
        for name, result in report.results.items()
        for key, value in result.metrics.items()
        if isinstance(value, int | float)
    }
    if report.backtest is not None:  # what each forecast's book earned: <name>.bt_<metric>
        metrics |= {
            f"{name}.bt_{key}": value
            for name, row in report.backtest.results.items()
            for key, value in row.items()
            if isinstance(value, int | float)
        }
    steps = [
        (f"{name}.{key}_by_horizon", value, h)  # step = horizon
        for name, result in report.results.items()
        for h, row in result.per_horizon.items()
        for key, value in row.items()
        if key in HORIZON_STEP_KEYS and isinstance(value, int | float)
    ]
    steps += [
        (f"{name}.{key}_by_fold", value, row.fold)  # step = fold index
        for name, result in report.results.items()
        for row in result.per_fold
        for key, value in row.metrics.items()
        if key in FOLD_STEP_KEYS and isinstance(value, int | float)
    ]
    steps += [
        (f"{name}.weight_{member.replace(':', '-')}_by_fold", float(np.mean(levels)), fold)
        for name, result in report.results.items()
        for fold, table in enumerate(result.weights or ())
        for member, levels in table.items()
    ]
    with tempfile.TemporaryDirectory() as tmp:
        return log_run(
            tracking,
            run_name=run_name,
            params={
                "eval": run.eval_cfg.model_dump(mode="json"),
                "train": run.train_cfg.model_dump(mode="json"),
                "features": run.feature_config.model_dump(mode="json"),
                "data": report.data.to_dict() | {"symbols": len(report.data.symbols)},
                "lineage": lineage,
                "folds": [fold.to_dict() for fold in report.folds],
                "fitted": fitted_configs(run),
            },
            metrics=metrics,
            step_metrics=steps,
            tags={"kind": "evaluation", "seed": run.train_cfg.seed, **(tags or {})},
            artifacts=write_artifacts(Path(tmp), run),
            datasets=lake_datasets(lineage),
            started_at=started_at,
        )
