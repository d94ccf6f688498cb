"""Honest walk-forward evaluation: per fold, fit everything (normaliser, vocabulary, model) on that
fold's training dates only, predict its test block, and score every model and baseline on the same
rows. Returns long prediction frames (raw log-return quantiles) for the metrics.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from stockml.columns import quantile_column
from stockml.features import feature_groups, fit_normalizer, fit_symbol_vocab
from stockml.features.normalizer import NormParams
from stockml.features.vocab import Vocab
from stockml.models import MODELS, ModelSizes, build_config, build_model
from stockml.models.base import ForecastModel, cpu_state
from stockml.training.baselines import BASELINES
from stockml.training.config import EvalConfig, TrainConfig
from stockml.training.splits import DateRange, Fold, walk_forward_folds
from stockml.training.trainer import predict, seed_everything, train_model
from stockml.training.windows import WindowArrays, WindowDataset, build_window_arrays

log = logging.getLogger(__name__)


@dataclass
class FoldOutput:
    fold: Fold
    predictions: dict[str, pd.DataFrame]  # name -> long predictions of this fold's test block
    seconds: dict[str, dict[str, float]]  # name -> {"train_seconds", "predict_seconds"}
    history: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    # What was fitted on this fold's training dates: the trained models, the normaliser, the vocabulary.
    fitted: dict[str, ForecastModel] = field(default_factory=dict)
    norm: NormParams | None = None
    symbol_vocab: Vocab | None = None
    sizes: ModelSizes | None = None
    importances: dict[str, list[float]] = field(default_factory=dict)  # per feature, where a model has them
    weights: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # ensemble: member -> levels

    def __getstate__(self) -> dict:
        """Pickle the fitted models as (config, CPU state_dict): some modules (weight-normed convs) do
        not pickle, and a state_dict is what crosses processes (e.g. Dask workers) safely."""
        state = self.__dict__.copy()
        state["fitted"] = {
            name: (model.config.model_dump(mode="json"), cpu_state(model))
            for name, model in self.fitted.items()
        }
        return state

    def __setstate__(self, state: dict) -> None:
        fitted = state.pop("fitted")
        self.__dict__.update(state)
        self.fitted = {}
        for name, (config, weights) in fitted.items():
            assert self.sizes is not None
            model = build_model(model_of(name), self.sizes, config)
            model.load_state_dict(weights)
            self.fitted[name] = model.eval()


def merge_fold_outputs(parts: list[list[FoldOutput]]) -> list[FoldOutput]:
    """Join walk-forwards of different models over the same folds (e.g. one task per model) into one."""
    parts = [p for p in parts if p]
    if not parts:
        return []
    first = parts[0]
    for other in parts[1:]:
        if [o.fold for o in other] != [o.fold for o in first]:
            raise ValueError("walk-forward parts were run on different folds")
    merged = []
    for i, base in enumerate(first):
        out = FoldOutput(base.fold, {}, {}, {}, {}, base.norm, base.symbol_vocab, base.sizes)
        for part in parts:
            o = part[i]
            out.predictions.update(o.predictions)
            out.seconds.update(o.seconds)
            out.history.update(o.history)
            out.fitted.update(o.fitted)
            out.importances.update(o.importances)
            out.weights.update(o.weights)
        merged.append(out)
    return merged


def long_predictions(ds: WindowDataset, quantiles_raw: np.ndarray, levels: tuple[float, ...]) -> pd.DataFrame:
    """(N, H, Q) raw quantiles of a dataset's samples -> one row per (ts_code, date, horizon)."""
    a, rows = ds.arrays, ds.rows
    n, h, _ = quantiles_raw.shape
    frame = pd.DataFrame(
        {
            "ts_code": np.repeat(a.ts_code[rows], h),
            "date": np.repeat(a.date[rows], h),
            "horizon": np.tile(np.arange(1, h + 1), n),
        }
    )
    for j, level in enumerate(levels):
        frame[quantile_column(level)] = (
            quantiles_raw[:, :, j].reshape(-1).astype(np.float64)
        )  # (N, H) -> (N*H,)
    return frame


CHAMPION_SUFFIX = ".champion"  # MLflow metric keys allow no "@"


def model_of(name: str) -> str:
    """The model a report name runs: ``lstm.champion`` (the champion's config of ``lstm``, scored beside a
    new config of it) runs ``lstm``."""
    return name.removesuffix(CHAMPION_SUFFIX)


def seed_name(model: str, k: int) -> str:
    """The report name of ``model`` trained with seed offset ``k`` > 0 (e.g. ``lstm.seed1``)."""
    return f"{model}.seed{k}"


def new_model(
    name: str, sizes: ModelSizes, cfg: EvalConfig, seed: int, train: WindowDataset | None = None
) -> ForecastModel:
    """``name`` built from ``seed``: its initial weights never depend on what ran before it. A model class
    that sets part of its config from the training data (a ``fit_config(config, train)`` classmethod:
    ``hybrid21``'s size and groups) gets ``train``, so the fitted model's config records what it chose."""
    seed_everything(seed)
    model = model_of(name)
    config = build_config(model, cfg.model_configs.get(name))
    fit_config = getattr(MODELS[model], "fit_config", None)
    if train is not None and callable(fit_config):
        config = fit_config(config, train)
    return build_model(model, sizes, config)


def sizes_for(features: list[str], cfg: EvalConfig, vocab: Vocab, n_sectors: int) -> ModelSizes:
    """Sizes of models fed ``features``, their feature families included (for ``multibranch``)."""
    return ModelSizes(
        n_features=len(features),
        horizon=cfg.horizon,
        quantiles=cfg.quantiles,
        n_symbols=vocab.size,
        n_sectors=n_sectors,
        feature_groups=feature_groups(features),
    )


def fit_on_window(
    frame: pd.DataFrame,
    features: list[str],
    labels: list[str],
    window: DateRange,
    cfg: EvalConfig,
    n_sectors: int,
) -> tuple[NormParams, Vocab, WindowArrays, ModelSizes]:
    """Everything fitted on ``window``'s dates only: the normaliser (targets too), the symbol vocabulary,
    the normalised window arrays of the whole frame, and the model sizes."""
    start, end = window.start.date(), window.end.date()
    norm = fit_normalizer(
        frame,
        features,
        start,
        end,
        method=cfg.norm_method,
        label_columns=labels,
        normalize_target=True,
        target_vol_column=cfg.vol_column if cfg.target == "vol" else None,
    )
    vocab = fit_symbol_vocab(frame, start, end)
    arrays = build_window_arrays(frame, norm, vocab, features)
    return norm, vocab, arrays, sizes_for(features, cfg, vocab, n_sectors)


def _raw_forecast(model: ForecastModel, ds: WindowDataset) -> np.ndarray:
    """(N, H, Q) raw log-return quantiles of ``ds``'s samples, in dataset order."""
    scaled, order = predict(model, ds)
    raw = np.empty(scaled.shape, np.float64)
    raw[order] = ds.arrays.to_raw(scaled, ds.rows[order])
    return raw


def run_fold(
    frame: pd.DataFrame,
    features: list[str],
    labels: list[str],
    fold: Fold,
    cfg: EvalConfig,
    train_cfg: TrainConfig,
    n_sectors: int,
) -> FoldOutput:
    """Fit and predict every model and baseline on one fold."""
    norm, vocab, arrays, sizes = fit_on_window(frame, features, labels, fold.train, cfg, n_sectors)
    train = WindowDataset.for_segment(arrays, cfg.lookback, fold.train, history_before_start=True)
    valid = (
        WindowDataset.for_segment(arrays, cfg.lookback, fold.valid, history_before_start=True)
        if fold.valid
        else None
    )
    test = WindowDataset.for_segment(arrays, cfg.lookback, fold.test, history_before_start=True)
    out = FoldOutput(fold, {}, {}, norm=norm, symbol_vocab=vocab, sizes=sizes)
    codes, dates = arrays.ts_code[test.rows], arrays.date[test.rows]
    for name in cfg.baselines:
        began = time.perf_counter()
        quantiles = BASELINES[name](frame, labels, cfg.quantiles, fold.train, codes, dates)
        out.predictions[name] = long_predictions(test, quantiles, cfg.quantiles)
        out.seconds[name] = {"train_seconds": time.perf_counter() - began, "predict_seconds": 0.0}
    for name in cfg.models:
        for k in range(cfg.seeds):  # extra seeds: predictions only, named "<model>.seed<k>"
            key = name if k == 0 else seed_name(name, k)
            model = new_model(name, sizes, cfg, train_cfg.seed + k, train=train)
            result = train_model(
                model, train, valid, train_cfg.model_copy(update={"seed": train_cfg.seed + k})
            )
            began = time.perf_counter()
            out.predictions[key] = long_predictions(test, _raw_forecast(model, test), cfg.quantiles)
            out.seconds[key] = {
                "train_seconds": result.seconds,
                "predict_seconds": time.perf_counter() - began,
            }
            out.history[key] = result.history
            log.info("fold %d %s: %d epochs, best %s, %.1f s", fold.index + 1, key, len(result.history),
                     result.best_epoch, result.seconds)  # fmt: skip
            if k == 0:
                out.fitted[name] = model
                importance = getattr(model, "feature_importance", None)  # PTFT, lightgbm, ensembles
                values = importance() if callable(importance) else None
                if values is not None:
                    out.importances[name] = [float(v) for v in values.cpu()]
                table = getattr(model, "weight_table", None)  # ensembles: weights; hybrid21: its gate
                if callable(table):
                    out.weights[name] = table()
    return out


def run_walk_forward(
    frame: pd.DataFrame,
    features: list[str],
    labels: list[str],
    cfg: EvalConfig,
    train_cfg: TrainConfig,
    n_sectors: int,
) -> list[FoldOutput]:
    """Every fold in time order."""
    dates = pd.DatetimeIndex(sorted(frame["trade_date"].unique()))
    folds = walk_forward_folds(
        dates,
        cfg.folds,
        cfg.test_days,
        cfg.horizon,
        mode=cfg.mode,
        min_train_days=cfg.min_train_days,
        valid_days=cfg.valid_days,
    )
    outputs = []
    for fold in folds:
        log.info("fold %d/%d: train %s..%s, test %s..%s, models %s", fold.index + 1, len(folds),
                 fold.train.start.date(), fold.train.end.date(), fold.test.start.date(),
                 fold.test.end.date(), ", ".join(cfg.models) or "baselines only")  # fmt: skip
        outputs.append(run_fold(frame, features, labels, fold, cfg, train_cfg, n_sectors))
    return outputs


def with_labels(preds: pd.DataFrame, frame: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """``preds`` (``ts_code``, as-of ``date``, ``horizon``) with ``y_true``: the frame's ``label_h{horizon}``
    on that row (NaN where the frame does not know it)."""
    truth = frame[["ts_code", "trade_date", *labels]].melt(
        id_vars=["ts_code", "trade_date"], var_name="label", value_name="y_true"
    )
    truth["horizon"] = truth["label"].str.removeprefix("label_h").astype(int)
    truth = truth.rename(columns={"trade_date": "date"}).drop(columns="label")
    return preds.merge(truth, on=["ts_code", "date", "horizon"], how="left")


def with_truth(
    preds: pd.DataFrame, frame: pd.DataFrame, labels: list[str], closes: pd.DataFrame
) -> pd.DataFrame:
    """Attach ``y_true`` (the realised label) and ``last_close`` (raw close at the as-of date)."""
    merged = with_labels(preds, frame, labels)
    close = closes.rename(columns={"trade_date": "date", "close": "last_close"})[
        ["ts_code", "date", "last_close"]
    ]
    return merged.merge(close, on=["ts_code", "date"], how="left")
