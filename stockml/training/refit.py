"""Refitting a procedure on every labelled day, as the registry's champion is after a promotion: no
validation block, the epoch count carried over from the walk-forward's last fold."""

from __future__ import annotations

import pandas as pd

from stockml.training.config import EvalConfig, TrainConfig
from stockml.training.splits import DateRange, Fold
from stockml.training.trainer import train_model
from stockml.training.walkforward import FoldOutput, fit_on_window, new_model
from stockml.training.windows import WindowDataset


def refit_full(
    frame: pd.DataFrame,
    features: list[str],
    labels: list[str],
    name: str,
    eval_cfg: EvalConfig,
    train_cfg: TrainConfig,
    n_sectors: int,
    epochs: int,
) -> FoldOutput:
    """``name`` refitted on every labelled date (``full_train``: no validation, ``epochs`` epochs)."""
    labelled = frame.loc[frame[labels[-1]].notna(), "trade_date"]
    window = DateRange(pd.Timestamp(labelled.min()), pd.Timestamp(labelled.max()))
    norm, vocab, arrays, sizes = fit_on_window(frame, features, labels, window, eval_cfg, n_sectors)
    train = WindowDataset.for_segment(arrays, eval_cfg.lookback, window, history_before_start=True)
    model = new_model(name, sizes, eval_cfg, train_cfg.seed, train=train)
    cfg = train_cfg.model_copy(update={"full_train": True, "max_epochs": max(1, epochs)})
    train_model(model, train, None, cfg)
    fold = Fold(index=-1, train=window, test=window, valid=None)
    return FoldOutput(fold, {}, {}, fitted={name: model}, norm=norm, symbol_vocab=vocab, sizes=sizes)


def refit_epochs(outputs: list[FoldOutput], name: str, default: int) -> int:
    """Epochs for the refit: one more than the last fold's best epoch (0-based), else ``default``."""
    history = outputs[-1].history.get(name) if outputs else None
    if not history:
        return default
    best = min(range(len(history)), key=lambda i: history[i].get("valid_loss", float("inf")))
    return best + 1
